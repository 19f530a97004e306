"""Overload control of a real platform process.

The proxy's CPU limit is set so low (2% of a core) that a steady stream of
OPTIONS keep-alives crosses it: new INVITEs without credentials are then
turned away with 503 and Retry-After while the keep-alives and a REGISTER
answering its challenge still go through, and once the stream stops every
new request is taken again."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.process import PlatformProcess, free_port, udp_exchange

from telavox.sip.digest import answer_challenge, parse_challenge
from telavox.sip.message import Response
from telavox.sip.parser import parse_message

pytestmark = pytest.mark.integration
DOMAIN = "overload.example.test"
PASSWORD = "secret-1001"
OVERLOAD_REASON = "Service Unavailable (overload)"
AOR = f"sip:1001@{DOMAIN}"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[PlatformProcess, int]]:
    port = free_port()
    process = PlatformProcess(tmp_path, f"""
[platform]
domain = "{DOMAIN}"
data_dir = "{tmp_path / 'var'}"

[sipproxy]
listen = ["udp:127.0.0.1:{port}"]
rate_limit = 1000000.0
rate_burst = 10000000
overload_cpu = 0.02

[tlb]
http_listen = ""
probe_listen = "udp:127.0.0.1:{free_port()}"
probe_interval = 3600.0

[[sipservers]]
name = "sip1"
address = "udp:127.0.0.2:{free_port('127.0.0.2')}"

[[users]]
extension = "1001"
password = "{PASSWORD}"
""")
    process.start()
    try:
        yield process, port
    finally:
        process.stop_clean()


def _request(method: str, n: int, extra: str = "", uri: str = f"sip:1002@{DOMAIN}",
             cseq: int = 1, call_id: str = "", to: str = "") -> bytes:
    return (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-ov-{time.monotonic_ns()}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:1001@{DOMAIN}>;tag=ov{n}\r\n"
            f"To: <{to or uri}>\r\nCall-ID: {call_id or f'ov-{n}-{time.monotonic_ns()}'}\r\n"
            f"CSeq: {cseq} {method}\r\nContact: <sip:1001@127.0.0.1:5999>\r\n"
            f"{extra}Content-Length: 0\r\n\r\n").encode()


def _ask(port: int, data: bytes) -> Response:
    response = parse_message(udp_exchange(port, data) or b"")
    assert isinstance(response, Response)
    return response


class KeepAlives:
    """OPTIONS to the platform from one socket, a few hundred a second, every
    answer read (all must be 200)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.sent = 0
        self.answers: list[bytes] = []

    def burst(self, count: int = 10) -> None:
        for _ in range(count):
            self.sent += 1
            self.sock.sendto(_request("OPTIONS", self.sent, uri=f"sip:{DOMAIN}"),
                             ("127.0.0.1", self.port))
        time.sleep(0.02)
        while True:
            try:
                self.answers.append(self.sock.recv(65535))
            except BlockingIOError:
                return

    def close(self) -> None:
        self.sock.close()


def test_overload_turns_new_requests_away_and_lets_the_rest_through(
        platform: tuple[PlatformProcess, int]) -> None:
    process, port = platform
    # start-up work may cross so low a limit for a moment: wait for a 407
    deadline = time.monotonic() + 30
    while _ask(port, _request("INVITE", 0)).status != 407:
        assert time.monotonic() < deadline, process.log()[-3000:]
        time.sleep(0.25)
    register = _request("REGISTER", 0, uri=f"sip:{DOMAIN}", call_id="ov-reg", to=AOR)
    challenge = _ask(port, register)
    assert challenge.status == 401

    load = KeepAlives(port)
    try:
        refused = None
        deadline = time.monotonic() + 30
        n = 0
        while refused is None and time.monotonic() < deadline:
            load.burst()
            n += 1
            answer = _ask(port, _request("INVITE", n))
            if answer.status == 503:
                refused = answer
            else:
                assert answer.status == 407, answer
        assert refused is not None, f"never shed:\n{process.log()[-3000:]}"
        assert refused.reason == OVERLOAD_REASON
        assert 2 <= int(refused.headers.get("Retry-After") or "0") <= 9

        # still overloaded: eight REGISTERs in a row answering their challenge
        # all go through, then new INVITEs are still partly turned away
        # (admission is deterministic: at a share under 1, eight new requests
        # in a row cannot all be taken)
        asked = parse_challenge(challenge.headers.get("WWW-Authenticate") or "")
        for nc in range(1, 9):
            load.burst()
            creds = answer_challenge(asked, method="REGISTER", uri=f"sip:{DOMAIN}",
                                     username="1001", password=PASSWORD, cnonce="ov", nc=nc)
            registered = _ask(port, _request("REGISTER", 0, f"Authorization: {creds}\r\n"
                                             "Expires: 60\r\n", uri=f"sip:{DOMAIN}",
                                             cseq=1 + nc, call_id="ov-reg", to=AOR))
            assert registered.status == 200, registered
        load.burst()
        invites = [_ask(port, _request("INVITE", 20_000 + n)).status for n in range(8)]
        assert 503 in invites and set(invites) <= {503, 407}, invites
        # bad input still gets its own answer while shedding: a To whose tag
        # cannot be read is a 400, not a 503 or an error in the log
        bad_to = _request("BYE", 30_000).replace(
            f"To: <sip:1002@{DOMAIN}>".encode(), f'To: <sip:1002@{DOMAIN}>;tag="2'.encode())
        answer = _ask(port, bad_to)
        assert answer.status == 400, answer
    finally:
        load.close()
    assert load.answers and all(a.startswith(b"SIP/2.0 200 ") for a in load.answers), \
        sorted({a.split(b"\r\n", 1)[0] for a in load.answers})
    process.wait_for_log("Overloaded")

    # the load gone, every new request is taken again
    deadline = time.monotonic() + 30
    status = 503
    while status == 503 and time.monotonic() < deadline:
        time.sleep(0.25)
        status = _ask(port, _request("INVITE", 10_000)).status
    assert status == 407, process.log()[-3000:]
    process.wait_for_log("Load back under")
