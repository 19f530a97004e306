"""The component table, the base application contract and reconfiguration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from twisted.application.service import IService
from twisted.internet.error import ReactorNotRunning
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from telavox.assembly import COMPONENTS, build_platform
from telavox.config import parse_config
from telavox.interfaces import IBaseApplication, IEventBus, IStore
from telavox.records import HealthStatus, ReconfigureError
from telavox.transport.interfaces import ISipHandler


def _platform(tmp_path: Path, extra: str = "") -> object:
    config = parse_config(f"[platform]\ndata_dir = '{tmp_path}'\n{extra}")
    return build_platform(config, Clock(), config_text="", config_source="test")


def test_every_component_provides_its_interfaces(tmp_path: Path) -> None:
    """Each built component is a named IService and IBaseApplication; a SIP
    server or gateway hosted here is one component named after its entry."""
    root = _platform(tmp_path, "[[sipservers]]\nname = 'sip1'\n"
                               "listen = 'udp:127.0.0.1:5070'\n"
                               "[[gateways]]\nname = 'gw1'\nlisten = 'udp:127.0.0.1:5090'\n"
                               "carrier_listen = 'udp:127.0.0.1:5091'\n"
                               "[[gateways.trunks]]\nname = 'a'\n"
                               "address = 'sip:127.0.0.1:5080'\n")
    components = root.components  # type: ignore[attr-defined]
    assert [spec.name for spec in COMPONENTS] == [
        "registrar", "tlb", "sipproxy", "scriptserver", "sipserver", "gateway"]
    assert [c.name for c in components] == [
        "registrar", "tlb", "sipproxy", "scriptserver", "sip1", "gw1"]
    for component in components:
        assert verifyObject(IBaseApplication, component)
        assert verifyObject(IService, component)
        assert root.getServiceNamed(component.name) is component  # type: ignore[attr-defined]
    platform = root.platform  # type: ignore[attr-defined]
    assert verifyObject(IStore, platform.store)
    assert verifyObject(IEventBus, platform.bus)


def test_sipproxy_is_a_sip_handler(tmp_path: Path) -> None:
    """The proxy provides ISipHandler for its endpoint; stopped, it says it is down."""
    root = _platform(tmp_path)
    proxy = root.getServiceNamed("sipproxy")  # type: ignore[attr-defined]
    assert verifyObject(ISipHandler, proxy)
    assert proxy.health().status is HealthStatus.DOWN
    stats = proxy.stats()
    assert stats["options_answered"] == 0
    assert all(isinstance(v, (int, float)) for v in stats.values())


def test_reconfigure_live_key(tmp_path: Path) -> None:
    """A change of a live key is applied and becomes the component's section."""
    root = _platform(tmp_path)
    proxy = root.getServiceNamed("sipproxy")  # type: ignore[attr-defined]
    new = attrs.evolve(proxy.section, user_agent="Other")
    results: list[object] = []
    proxy.reconfigure(new).addBoth(results.append)
    assert results == [None]
    assert proxy.section.user_agent == "Other"


def test_reconfigure_restart_key_is_refused(tmp_path: Path) -> None:
    """A change of a restart-only key fails with ReconfigureError naming it
    and leaves the old section in force."""
    root = _platform(tmp_path)
    proxy = root.getServiceNamed("sipproxy")  # type: ignore[attr-defined]
    old = proxy.section
    other = parse_config("[sipproxy]\nlisten = ['udp:127.0.0.1:5999']").sipproxy
    failures: list[object] = []
    proxy.reconfigure(attrs.evolve(other, user_agent="x")).addErrback(failures.append)
    (failure,) = failures
    error = failure.value  # type: ignore[attr-defined]
    assert isinstance(error, ReconfigureError)
    assert error.restart_keys == ("listen",)
    assert proxy.section is old


def test_reconfigure_takes_authentication_and_limits_live(tmp_path: Path) -> None:
    """The guards' and the authenticator's keys change without a restart:
    the rate limiter, the brute-force guard and the digest server take the
    new values."""
    root = _platform(tmp_path)
    proxy = root.getServiceNamed("sipproxy")  # type: ignore[attr-defined]
    new = attrs.evolve(proxy.section, rate_limit=5.0, rate_burst=7, max_failures=2,
                       max_failed_users=3, block_time=60.0,
                       auth_algorithms=("SHA-256", "MD5"), nonce_lifetime=30.0)
    results: list[object] = []
    proxy.reconfigure(new).addBoth(results.append)
    assert results == [None]
    assert proxy.section is new
    assert (proxy.limiter.rate, proxy.limiter.burst) == (5.0, 7)
    guard = proxy.guard
    assert (guard.max_failures, guard.max_failed_users, guard.block_time) == (2, 3, 60.0)
    assert proxy.auth.server.algorithms == ("SHA-256", "MD5")


def test_reconfigure_refused_by_the_digest_server_changes_nothing(tmp_path: Path) -> None:
    """A list of algorithms the digest server refuses (a repeat) fails the
    reconfiguration and leaves every setting as it was."""
    root = _platform(tmp_path)
    proxy = root.getServiceNamed("sipproxy")  # type: ignore[attr-defined]
    old = proxy.section
    failures: list[object] = []
    proxy.reconfigure(attrs.evolve(old, auth_algorithms=("MD5", "MD5"), rate_limit=5.0)
                      ).addErrback(failures.append)
    (failure,) = failures
    assert isinstance(failure.value, ValueError)  # type: ignore[attr-defined]
    assert proxy.section is old
    assert proxy.auth.server.algorithms == tuple(old.auth_algorithms)
    assert proxy.limiter.rate == old.rate_limit


@pytest.mark.parametrize("spec", COMPONENTS, ids=[s.name for s in COMPONENTS])
def test_factories_import(spec: object) -> None:
    """Every factory named in the table can be imported."""
    assert callable(spec.load())  # type: ignore[attr-defined]


class _StoppingClock(Clock):
    """A fake reactor that stops like Twisted's: a second stop raises."""

    def __init__(self) -> None:
        super().__init__()
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1
        if self.stops > 1:
            raise ReactorNotRunning("Can't stop reactor that isn't running.")

    def callFromThread(self, f: Any, *args: Any) -> None:
        f(*args)


def test_a_second_stop_signal_stops_nothing_more(tmp_path: Path) -> None:
    """SIGTERM or SIGINT stops the reactor once; another one while stopping
    is logged and leaves the reactor alone (no ReactorNotRunning)."""
    config = parse_config(f"[platform]\ndata_dir = '{tmp_path}'\n")
    clock = _StoppingClock()
    root = build_platform(config, clock, config_text="", config_source="test")
    root._stop_once("SIGTERM")  # type: ignore[attr-defined]
    root._stop_once("SIGTERM")  # type: ignore[attr-defined]
    root._stop_once("SIGINT")  # type: ignore[attr-defined]
    assert clock.stops == 1
