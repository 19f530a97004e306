"""Calls through the whole platform with SIPp as the phones: a call answered
and hung up, hold and resume (re-INVITE with sendonly/sendrecv relayed to
the other side), and a blind transfer (REFER from the callee to a third
phone).  Every phone SIPp plays registers with its password first."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.process import free_port
from helpers.sipp import BENCH_SCENARIOS, TEST_SCENARIOS, Sipp
from helpers.sipserver import read_cdrs, sip_server_platform
from helpers.tools import require_tool

pytestmark = pytest.mark.integration
DOMAIN = "sipp-calls.example.test"
PASSWORDS = {"1001": "pw-a-1001", "1002": "pw-b-1002", "1003": "pw-c-1003"}


class Platform:
    """The platform process with one hosted SIP server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process = sip_server_platform(folder, domain=DOMAIN, passwords=PASSWORDS,
                                           proxy_port=self.port, rtp_ports=(32000, 32199))

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cdrs(self) -> list[dict[str, str]]:
        return read_cdrs(self.folder)

    def wait_cdr(self, callee: str, limit: float = 5.0) -> dict[str, str]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            rows = [r for r in self.cdrs() if r["callee"] == callee]
            if rows:
                return rows[-1]
            time.sleep(0.1)
        raise AssertionError(f"no CDR for {callee}: {self.cdrs()}")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    require_tool("sipp", "sip-tester")
    p = Platform(tmp_path_factory.mktemp("sipp-calls"))
    p.process.start()
    yield p
    p.process.stop()
    assert "Traceback" not in p.process.log(), p.process.log()


def phone(platform: Platform, user: str, scenario: Path, folder: Path,
          extra: tuple[str, ...] = ()) -> Sipp:
    """A SIPp phone running ``scenario`` in the background, registered as ``user``."""
    port = free_port()
    sipp = Sipp(scenario, platform.target, folder=folder, port=port, timeout=40,
                extra=("-s", user, "-key", "domain", DOMAIN, *extra)).start()
    register = Sipp(TEST_SCENARIOS / "register.xml", platform.target, folder=folder,
                    extra=("-s", user, "-au", user, "-ap", PASSWORDS[user],
                           "-key", "domain", DOMAIN, "-key", "contact_port", str(port)))
    assert register.run() == 0, register.report()
    return sipp


def caller(platform: Platform, folder: Path, scenario: Path, callee: str) -> Sipp:
    inf = folder / "caller.csv"
    inf.write_text(f"SEQUENTIAL\n1001;{PASSWORDS['1001']}\n")
    return Sipp(scenario, platform.target, folder=folder, timeout=40,
                extra=("-s", callee, "-key", "domain", DOMAIN, "-inf", str(inf),
                       "-auth_uri", f"{callee}@{DOMAIN}"))


def test_call_answered_and_hung_up(platform: Platform, tmp_path: Path) -> None:
    """SIPp 1001 calls SIPp 1002 (registered): 407, INVITE with credentials,
    180, 200, ACK, BYE; the callee's scenario sees the whole dialog and the
    CDR says answered."""
    callee = phone(platform, "1002", BENCH_SCENARIOS / "uas_call.xml", tmp_path)
    try:
        uac = caller(platform, tmp_path, BENCH_SCENARIOS / "uac_auth_call.xml", "1002")
        assert uac.run() == 0, uac.report()
        assert callee.wait(20) == 0, callee.report()
    finally:
        callee.stop()
    assert platform.wait_cdr("1002")["disposition"] == "answered"


def test_hold_and_resume(platform: Platform, tmp_path: Path) -> None:
    """The caller holds (re-INVITE sendonly, answered recvonly) and resumes
    (sendrecv); the callee receives the re-offers with the same directions."""
    callee = phone(platform, "1002", TEST_SCENARIOS / "uas_hold.xml", tmp_path)
    try:
        uac = caller(platform, tmp_path, TEST_SCENARIOS / "uac_hold.xml", "1002")
        assert uac.run() == 0, uac.report()
        assert callee.wait(20) == 0, callee.report()
    finally:
        callee.stop()


def test_blind_transfer(platform: Platform, tmp_path: Path) -> None:
    """1001 calls 1002, who transfers the call to 1003 with REFER: 1002 gets
    202, NOTIFYs up to 200 and a BYE; 1003 is called and answers; 1001's BYE
    then ends the call with 1003; the CDR names 1003."""
    target = phone(platform, "1003", BENCH_SCENARIOS / "uas_call.xml", tmp_path)
    transferor = phone(platform, "1002", TEST_SCENARIOS / "uas_transfer.xml", tmp_path,
                       extra=("-key", "target", "1003"))
    try:
        uac = caller(platform, tmp_path, BENCH_SCENARIOS / "uac_auth_call.xml", "1002")
        assert uac.run() == 0, uac.report()
        assert transferor.wait(20) == 0, transferor.report()
        assert target.wait(20) == 0, target.report()
    finally:
        transferor.stop()
        target.stop()
    cdr = platform.wait_cdr("1003")
    assert cdr["disposition"] == "answered"
    assert cdr["caller"] == "1001"
