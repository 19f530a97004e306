"""The tlb component over real loopback sockets: OPTIONS health probes of
SIP endpoints and SIPp, failover and return of users, drain, events, and the
HTTP JSON API."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from helpers.handlers import Recorder
from helpers.process import free_port
from helpers.tools import require_tool
from twisted.internet import defer, reactor, task
from twisted.internet.error import CannotListenError
from twisted.trial import unittest
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from zope.interface.verify import verifyObject

from telavox.base import Platform
from telavox.config.model import Config, GatewayConfig, PoolMemberConfig, TlbConfig, UserConfig
from telavox.eventbus import EventBus
from telavox.interfaces import ITlb
from telavox.records import Event, HealthStatus, MemberEvent, PoolMember, ReconfigureError
from telavox.tlb.service import TlbService
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.local import LocalNetwork

pytestmark = pytest.mark.integration
SIPP_DIR = Path(__file__).parent / "sipp"
USERS = [str(2000 + i) for i in range(200)]
INTERVAL = 0.2


def tlb_config(sipservers: Sequence[tuple[str, str]], gateways: Sequence[tuple[str, str, tuple[
        str, ...]]] = (), *, http_listen: str = "", token: str = "",
        pins: dict[str, str] | None = None, users: Sequence[UserConfig] = ()) -> Config:
    """A configuration with the given pool, probing every INTERVAL seconds."""
    section = TlbConfig(http_listen=http_listen, token=token,
                        probe_listen=ListenAddress.parse("udp:127.0.0.1:0"),
                        probe_interval=INTERVAL, down_after=2, up_after=1, pins=pins or {})
    return Config(tlb=section,
                  sipservers=tuple(PoolMemberConfig(n, a) for n, a in sipservers),
                  gateways=tuple(GatewayConfig(n, a, p) for n, a, p in gateways),
                  users=tuple(users))


def name_of(member: PoolMember | None) -> str | None:
    """The member's name, None for no member."""
    return None if member is None else member.name


class TlbTests(unittest.TestCase):
    """A TlbService probing real SIP endpoints."""

    def setUp(self) -> None:
        self.events: list[Event] = []
        # runs last: lets the event bus and closed sockets finish their turn
        self.addCleanup(task.deferLater, reactor, 0.05, lambda: None)

    def member(self, host: str, port: int = 0, status: int = 200) -> SipEndpoint:
        """A SIP endpoint answering every request with ``status``."""
        endpoint = SipEndpoint(f"member-{host}", [ListenAddress.parse(f"udp:{host}:{port}")],
                               Recorder(status), reactor)
        endpoint.start()
        self.addCleanup(endpoint.stop)
        return endpoint

    @staticmethod
    def up(service: TlbService, name: str) -> bool:
        member = service.router.member(name)
        assert member is not None
        return member.up

    @staticmethod
    def address(endpoint: SipEndpoint) -> str:
        (bound,) = endpoint.listeners.values()
        return str(bound)

    def service(self, config: Config) -> TlbService:
        """A started TlbService on ``config``, recording its MemberEvents."""
        bus = EventBus(reactor)
        platform = Platform(reactor=reactor, store=None, bus=bus,  # type: ignore[arg-type]
                            network=LocalNetwork(reactor), config=config)
        service = TlbService(platform, config.tlb)
        self.assertIs(platform.require(ITlb), service)
        subscription = bus.subscribe(self.events.append, topics={"pool"})
        self.addCleanup(subscription.cancel)
        service.startService()
        self.addCleanup(service.stopService)
        return service

    @defer.inlineCallbacks
    def wait_for(self, predicate: Callable[[], bool], what: str,
                 timeout: float = 5.0) -> Generator[Any, Any, float]:
        """Poll ``predicate`` until true; fails after ``timeout`` seconds.
        Returns the time waited."""
        start = reactor.seconds()
        while not predicate():
            if reactor.seconds() - start > timeout:
                self.fail(f"{what}: not within {timeout}s")
            yield task.deferLater(reactor, 0.05, lambda: None)
        return reactor.seconds() - start

    def member_events(self) -> list[MemberEvent]:
        events = [e for e in self.events if isinstance(e, MemberEvent)]
        self.assertEqual(len(events), len(self.events))
        return events

    def what(self) -> list[tuple[str, str]]:
        return [(e.name, e.what) for e in self.member_events()]

    def answered(self, service: TlbService, name: str) -> float:
        stats = service.stats()
        return stats[f"member.{name}.probes"] - stats[f"member.{name}.probe_failures"]

    def placement(self, service: TlbService) -> dict[str, str | None]:
        out = {}
        for user in USERS:
            member = service.locate_user(f"sip:{user}@pbx.example.test")
            out[user] = None if member is None else member.name
        return out

    @defer.inlineCallbacks
    def two_members(self) -> Generator[Any, Any, tuple[TlbService, SipEndpoint, SipEndpoint]]:
        a = self.member("127.0.0.2")
        b = self.member("127.0.0.3")
        service = self.service(tlb_config([("sipA", self.address(a)),
                                           ("sipB", self.address(b))]))
        yield self.wait_for(lambda: min(self.answered(service, "sipA"),
                                        self.answered(service, "sipB")) >= 2,
                            "two answered probes of each member")
        return service, a, b

    # -- probes, failover ------------------------------------------------------------

    @defer.inlineCallbacks
    def test_both_members_up(self) -> Generator[Any, Any, None]:
        """Answering members stay up, share users and are known by address."""
        service, a, b = yield self.two_members()
        self.assertEqual([(m.name, m.up) for m in service.pool()],
                         [("sipA", True), ("sipB", True)])
        self.assertEqual(service.health().status, HealthStatus.OK)
        self.assertTrue(verifyObject(ITlb, service))
        recorder = a.handler
        assert isinstance(recorder, Recorder)
        self.assertEqual({r.method for r in recorder.requests}, {"OPTIONS"})
        self.assertEqual(set(self.placement(service).values()), {"sipA", "sipB"})
        (bound,) = b.listeners.values()
        found = service.member_for_source(bound.host, bound.port)
        self.assertEqual(found.name if found else None, "sipB")
        self.assertIsNone(service.member_for_source(bound.host, bound.port + 1))
        found = service.member_for_source(bound.host, None)  # a TCP peer: host only
        self.assertEqual(found.name if found else None, "sipB")
        self.assertIsNone(service.member_for_source("127.0.0.9", None))
        self.assertEqual(self.events, [])

    @defer.inlineCallbacks
    def test_member_down_and_back(self) -> Generator[Any, Any, None]:
        """A dead member goes down fast, only its users move, and return with it."""
        service, a, _b = yield self.two_members()
        before = self.placement(service)
        (bound,) = a.listeners.values()
        yield a.stop()
        waited = yield self.wait_for(lambda: not self.up(service, "sipA"),
                                     "sipA marked down")
        # down_after=2 unanswered rounds, judged one interval after sending
        self.assertLess(waited, 2.0)
        during = self.placement(service)
        self.assertEqual(set(during.values()), {"sipB"})
        self.assertEqual({u for u in USERS if during[u] != before[u]},
                         {u for u in USERS if before[u] == "sipA"})
        self.assertEqual(service.health().status, HealthStatus.DEGRADED)
        yield self.wait_for(lambda: bool(self.events), "down event delivered")
        self.assertEqual(self.what(), [("sipA", "down")])
        self.assertIn("no answer", self.member_events()[0].reason)

        self.member(bound.host, bound.port)
        yield self.wait_for(lambda: self.up(service, "sipA"), "sipA up again")
        self.assertEqual(self.placement(service), before)
        yield self.wait_for(lambda: len(self.events) == 2, "up event delivered")
        self.assertEqual(self.what()[1], ("sipA", "up"))
        self.assertEqual(service.health().status, HealthStatus.OK)

    @defer.inlineCallbacks
    def test_all_down_and_failing_answers(self) -> Generator[Any, Any, None]:
        """503 means down, 404 alive; with all servers down nothing is located."""
        a = self.member("127.0.0.2", status=503)
        b = self.member("127.0.0.3", status=404)
        service = self.service(tlb_config([("sipA", self.address(a)),
                                           ("sipB", self.address(b))]))
        yield self.wait_for(lambda: not self.up(service, "sipA"), "sipA down")
        yield self.wait_for(lambda: self.answered(service, "sipB") >= 3, "sipB answers")
        self.assertTrue(self.up(service, "sipB"))
        self.assertEqual(set(self.placement(service).values()), {"sipB"})
        yield b.stop()
        yield self.wait_for(lambda: not self.up(service, "sipB"), "sipB down")
        self.assertIsNone(service.locate_user("1001"))
        self.assertEqual(service.health().status, HealthStatus.DOWN)

    @defer.inlineCallbacks
    def test_drain(self) -> Generator[Any, Any, None]:
        """A drained member gets no users, is still probed, and events are published."""
        service, _a, _b = yield self.two_members()
        before = self.placement(service)
        self.assertTrue(service.drain("sipA"))
        self.assertEqual(set(self.placement(service).values()), {"sipB"})
        probes = service.stats()["member.sipA.probes"]
        yield self.wait_for(lambda: service.stats()["member.sipA.probes"] > probes,
                            "drained member still probed")
        self.assertTrue(service.drain("sipA", False))
        self.assertEqual(self.placement(service), before)
        self.assertFalse(service.drain("nosuch"))
        yield self.wait_for(lambda: len(self.events) == 2, "drain events delivered")
        self.assertEqual(self.what(), [("sipA", "drained"), ("sipA", "undrained")])

    @defer.inlineCallbacks
    def test_pins_and_gateways(self) -> Generator[Any, Any, None]:
        """Pins win; numbers go to longest-prefix gateways; dead gateways drop out."""
        a = self.member("127.0.0.2")
        b = self.member("127.0.0.3")
        gw1 = self.member("127.0.0.4")
        gw2 = self.member("127.0.0.5")
        config = tlb_config(
            [("sipA", self.address(a)), ("sipB", self.address(b))],
            [("tdc1", self.address(gw1), ("+46",)), ("any", self.address(gw2), ("",))],
            pins={"800": "sipB"},
            users=[UserConfig(extension="1001", password="x", sipserver="sipA"),
                   UserConfig(extension="1002", password="x", sipserver="sipB")])
        service = self.service(config)
        self.assertEqual(name_of(service.locate_user("1001")), "sipA")
        self.assertEqual(name_of(service.locate_user("sip:1002@pbx.example.test")), "sipB")
        self.assertEqual(name_of(service.locate_target("800")), "sipB")
        self.assertEqual([g.name for g in service.locate_number("+46812345678")],
                         ["tdc1", "any"])
        self.assertEqual([g.name for g in service.locate_number("+4412345")], ["any"])
        yield gw1.stop()
        yield self.wait_for(lambda: not self.up(service, "tdc1"), "tdc1 down")
        self.assertEqual([g.name for g in service.locate_number("+46812345678")], ["any"])
        self.assertEqual(service.health().status, HealthStatus.DEGRADED)

    @defer.inlineCallbacks
    def test_reconfigure(self) -> Generator[Any, Any, None]:
        """Pins and interval change live; a new probe_listen needs a restart."""
        service, _a, _b = yield self.two_members()
        hashed = name_of(service.locate_user("1001"))
        other = "sipB" if hashed == "sipA" else "sipA"
        yield service.reconfigure(attrs.evolve(service.section, pins={"1001": other},
                                               probe_interval=0.3))
        self.assertEqual(name_of(service.locate_user("1001")), other)
        self.assertEqual(service.section.probe_interval, 0.3)
        probes = service.stats()["member.sipA.probes"]
        yield self.wait_for(lambda: service.stats()["member.sipA.probes"] >= probes + 2,
                            "probes go on at the new interval")
        error = yield self.assertFailure(service.reconfigure(attrs.evolve(
            service.section, probe_listen=ListenAddress.parse("udp:127.0.0.1:1"))),
            ReconfigureError)
        self.assertEqual(error.restart_keys, ("probe_listen",))
        self.assertEqual(service.section.pins, {"1001": other})

    def test_empty_pool(self) -> None:
        """An empty pool locates nothing, is degraded and opens no probe port."""
        service = self.service(tlb_config([]))
        self.assertIsNone(service.locate_user("1001"))
        self.assertEqual(service.locate_number("+46812345678"), [])
        self.assertEqual(service.health().status, HealthStatus.DEGRADED)
        self.assertEqual(service.endpoint.listeners, {})

        # -- HTTP API --------------------------------------------------------------------------

    @defer.inlineCallbacks
    def get(self, url: str, method: bytes = b"GET", token: str | None = None
            ) -> Generator[Any, Any, tuple[int, Any, Any]]:
        headers = Headers()
        if token is not None:
            headers.addRawHeader(b"Authorization", f"Bearer {token}".encode())
        response = yield Agent(reactor).request(method, url.encode(), headers).addTimeout(
            5, reactor)
        with warnings.catch_warnings():
            # a body already received in full has a transport without abortConnection
            warnings.simplefilter("ignore", DeprecationWarning)
            reading = readBody(response)
        body = yield reading
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [b"application/json"])
        return response.code, json.loads(body), response.headers

    @defer.inlineCallbacks
    def http_service(self, token: str = "") -> Generator[Any, Any, tuple[TlbService, str]]:
        a = self.member("127.0.0.2")
        b = self.member("127.0.0.3")
        gw = self.member("127.0.0.4")
        port = free_port()
        service = self.service(tlb_config(
            [("sipA", self.address(a)), ("sipB", self.address(b))],
            [("tdc1", self.address(gw), ("+46",))],
            http_listen=f"tcp:127.0.0.1:{port}", token=token))
        yield self.wait_for(lambda: self.answered(service, "tdc1") >= 1, "gateway probed")
        return service, f"http://127.0.0.1:{port}"

    @defer.inlineCallbacks
    def test_http_api(self) -> Generator[Any, Any, None]:
        """locate, pool, drain and 404/405/503 JSON errors over a real socket."""
        service, base = yield self.http_service()
        code, body, _ = yield self.get(f"{base}/locate/user/sip%3A1001%40pbx.example.test")
        self.assertEqual(code, 200)
        self.assertEqual(body["member"]["name"], name_of(service.locate_user("1001")))
        self.assertEqual(set(body["member"]), {"name", "address", "up", "drained"})
        code, body, _ = yield self.get(f"{base}/locate/target/800")
        self.assertEqual((code, body["member"]["name"]),
                         (200, name_of(service.locate_target("800"))))
        code, body, _ = yield self.get(f"{base}/locate/number/%2B46812345678")
        self.assertEqual(code, 200)
        self.assertEqual([g["name"] for g in body["gateways"]], ["tdc1"])
        code, body, _ = yield self.get(f"{base}/locate/number/+46812345678")
        self.assertEqual((code, [g["name"] for g in body["gateways"]]), (200, ["tdc1"]))
        code, body, _ = yield self.get(f"{base}/locate/number/%2B4412345")
        self.assertEqual((code, body), (404, {"error": "no gateway carries +4412345"}))
        code, body, _ = yield self.get(f"{base}/pool")
        self.assertEqual([(m["name"], m["kind"], m["up"]) for m in body["pool"]],
                         [("sipA", "sipserver", True), ("sipB", "sipserver", True),
                          ("tdc1", "gateway", True)])
        code, body, _ = yield self.get(f"{base}/nosuch")
        self.assertEqual((code, body), (404, {"error": "not found"}))
        code, body, headers = yield self.get(f"{base}/pool", b"POST")
        self.assertEqual(code, 405)
        self.assertEqual(headers.getRawHeaders(b"allow"), [b"GET, HEAD"])
        code, _, _ = yield self.get(f"{base}/drain/sipA")
        self.assertEqual(code, 405)
        code, body, _ = yield self.get(f"{base}/drain/sipA", b"POST")
        self.assertEqual((code, body["member"]["drained"]), (200, True))
        code, body, _ = yield self.get(f"{base}/drain/sipB", b"POST")
        code, body, _ = yield self.get(f"{base}/locate/user/1001")
        self.assertEqual((code, body), (503, {"error": "no SIP server available"}))
        code, body, _ = yield self.get(f"{base}/undrain/sipB", b"POST")
        self.assertEqual((code, body["member"]["drained"]), (200, False))
        code, body, _ = yield self.get(f"{base}/locate/user/1001")
        self.assertEqual((code, body["member"]["name"]), (200, "sipB"))
        code, body, _ = yield self.get(f"{base}/drain/nosuch", b"POST")
        self.assertEqual(code, 404)
        service.drain("tdc1")
        code, body, _ = yield self.get(f"{base}/locate/number/%2B46812345678")
        self.assertEqual((code, body), (503, {"error": "no gateway available for +46812345678"}))
        self.assertGreaterEqual(service.stats()["http_requests"], 14)

    @defer.inlineCallbacks
    def test_http_token(self) -> Generator[Any, Any, None]:
        """With a token set, missing or wrong bearer tokens get 401 first."""
        _service, base = yield self.http_service(token="s3cret")
        for token in (None, "wrong", "s3cret2", ""):
            code, body, headers = yield self.get(f"{base}/pool", token=token)
            self.assertEqual((code, body), (401, {"error": "missing or wrong bearer token"}))
            self.assertTrue(headers.getRawHeaders(b"www-authenticate"))
        code, _, _ = yield self.get(f"{base}/nosuch", token="wrong")
        self.assertEqual(code, 401)
        code, body, _ = yield self.get(f"{base}/pool", token="s3cret")
        self.assertEqual((code, len(body["pool"])), (200, 3))

    @defer.inlineCallbacks
    def test_http_port_in_use(self) -> Generator[Any, Any, None]:
        """A taken HTTP port raises CannotListenError and closes the probe port."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            config = tlb_config([("sipA", "udp:127.0.0.2:5070")],
                                http_listen=f"tcp:127.0.0.1:{port}")
            platform = Platform(reactor=reactor, store=None,  # type: ignore[arg-type]
                                bus=EventBus(reactor), network=LocalNetwork(reactor),
                                config=config)
            service = TlbService(platform, config.tlb)
            self.assertRaises(CannotListenError, service.startService)
        self.assertFalse(service.running)
        yield task.deferLater(reactor, 0.05, lambda: None)
        (bound,) = service.endpoint.listeners.values()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((bound.host, bound.port))

    # -- SIPp ------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_sipp_member(self) -> Generator[Any, Any, None]:
        """SIPp answering OPTIONS is a live member, and down once it exits."""
        sipp = require_tool("sipp", "sip-tester")
        folder = tempfile.mkdtemp(prefix="tlb-sipp-")
        self.addCleanup(shutil.rmtree, folder, True)
        port = free_port()
        proc = subprocess.Popen(
            [sipp, "-sf", str(SIPP_DIR / "uas_options.xml"), "-i", "127.0.0.1",
             "-p", str(port), "-cp", str(free_port()), "-nostdin", "-trace_err",
             "-error_file", str(Path(folder) / "sipp.err")],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_process, proc)
        service = self.service(tlb_config([("sipp", f"udp:127.0.0.1:{port}")]))
        yield self.wait_for(lambda: self.answered(service, "sipp") >= 3,
                            "SIPp answering probes", timeout=10)
        self.assertTrue(self.up(service, "sipp"))
        self.assertEqual(name_of(service.locate_user("1001")), "sipp")
        self.stop_process(proc)
        yield self.wait_for(lambda: not self.up(service, "sipp"), "SIPp member down")
        self.assertIsNone(service.locate_user("1001"))

    @staticmethod
    def stop_process(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
