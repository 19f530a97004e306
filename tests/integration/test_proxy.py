"""Phones register and call through sipproxy; pool members reach
registered users; tlb fails over; brute force and floods are blocked.

The platform runs as a real process; SIPp plays the phones and the pool's
SIP servers (each pool member on its own 127.0.0.x address), and one test
registers a real softphone (baresip)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.process import PlatformProcess, free_port, udp_exchange
from helpers.sipp import BENCH_SCENARIOS, TEST_SCENARIOS, Sipp
from helpers.tools import require_tool

from telavox.sip.digest import answer_challenge, parse_challenge
from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import parse_message

pytestmark = pytest.mark.integration
DOMAIN = "pbx.example.test"
PASSWORDS = {"1001": "secret-1001", "1002": "secret-1002", "1003": "secret-1003",
             "1004": "secret-1004", "1005": "secret-1005", "1006": "secret-1006",
             "1007": "secret-1007"}


class Setup:
    """The platform and the addresses of its pool."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.api = free_port()
        self.sip1 = ("127.0.0.2", free_port("127.0.0.2"))
        self.sip2 = ("127.0.0.3", free_port("127.0.0.3"))
        users = "\n".join(
            f'[[users]]\nextension = "{u}"\npassword = "{p}"\nname = "User {u}"\n'
            + ('sipserver = "sip1"\n' if u == "1001" else "")
            for u, p in PASSWORDS.items())
        self.process = PlatformProcess(folder, f"""
[platform]
domain = "{DOMAIN}"
data_dir = "{folder / 'var'}"

[sipproxy]
listen = ["udp:127.0.0.1:{self.port}", "tcp:127.0.0.1:{self.port}"]
max_failures = 3
max_failed_users = 50
rate_limit = 100.0
rate_burst = 300

[registrar]
min_expires = 10

[tlb]
http_listen = "tcp:127.0.0.1:{self.api}"
probe_listen = "udp:127.0.0.1:{free_port()}"
probe_interval = 0.3
down_after = 2

[[sipservers]]
name = "sip1"
address = "udp:{self.sip1[0]}:{self.sip1[1]}"

[[sipservers]]
name = "sip2"
address = "udp:{self.sip2[0]}:{self.sip2[1]}"

{users}
""")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pool(self) -> dict[str, dict[str, object]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}/pool", timeout=5) as reply:
            return {m["name"]: m for m in json.load(reply)["pool"]}

    def wait_pool(self, name: str, up: bool, limit: float = 10.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.pool()[name]["up"] is up:
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} not {'up' if up else 'down'}: {self.pool()}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    require_tool("sipp", "sip-tester")
    s = Setup(tmp_path_factory.mktemp("proxy"))
    s.process.start()
    yield s
    s.process.stop()
    assert "Traceback" not in s.process.log(), s.process.log()


def pool_member(setup: Setup, member: tuple[str, int], folder: Path, calls: int) -> Sipp:
    """A SIPp pool member (answers probes and calls), tracing what it receives."""
    return Sipp(TEST_SCENARIOS / "pool_member.xml", setup.target, folder=folder,
                host=member[0], port=member[1], calls=calls, timeout=60,
                extra=("-trace_msg",)).start()


def received_invites(folder: Path) -> list[str]:
    """The INVITEs a traced pool member received."""
    text = "".join(p.read_text(errors="replace")
                   for p in folder.glob("pool_member_*_messages.log"))
    return [block for block in text.split("message received")
            if "\nINVITE sip:" in block or block.lstrip(" [0-9]bytes:\n").startswith("INVITE")]


def users_csv(folder: Path, *users: str) -> Path:
    path = folder / "users.csv"
    path.write_text("SEQUENTIAL\n" + "".join(f"{u};{PASSWORDS[u]}\n" for u in users))
    return path


def test_register_with_digest(setup: Setup, tmp_path: Path) -> None:
    """A SIPp phone registers with its password: 401, then 200 listing the binding."""
    port = free_port()
    sipp = Sipp(TEST_SCENARIOS / "register.xml", setup.target, folder=tmp_path, port=port,
                extra=("-s", "1005", "-au", "1005", "-ap", PASSWORDS["1005"],
                       "-key", "domain", DOMAIN, "-key", "contact_port", str(port)))
    assert sipp.run() == 0, sipp.report()


def _invite(port: int, user: str = "1001", extra: str = "") -> bytes:
    return (f"INVITE sip:+46812345678@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-{time.monotonic_ns()}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{DOMAIN}>;tag=abc\r\nTo: <sip:+46812345678@{DOMAIN}>\r\n"
            f"Call-ID: unauth-{time.monotonic_ns()}@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:{user}@127.0.0.1:5999>\r\n{extra}Content-Length: 0\r\n\r\n").encode()


def test_unauthenticated_invite_gets_407(setup: Setup) -> None:
    """An INVITE without credentials is challenged with 407 (MD5, the
    default) and goes nowhere."""
    response = parse_message(udp_exchange(setup.port, _invite(setup.port)) or b"")
    assert isinstance(response, Response)
    assert response.status == 407
    challenges = [parse_challenge(v) for v in response.headers.get_all("Proxy-Authenticate")]
    assert [c.algorithm for c in challenges] == ["MD5"]
    assert {c.realm for c in challenges} == {DOMAIN}


def test_wrong_password_and_unknown_user_look_alike(setup: Setup) -> None:
    """A wrong password and an unknown user both get the same 407 (fresh
    challenge, same fields), so extensions cannot be enumerated."""
    answers = []
    for user, password in (("1004", "wrong"), ("7777", "whatever")):
        first = parse_message(udp_exchange(setup.port, _invite(setup.port, user)) or b"")
        assert isinstance(first, Response) and first.status == 407
        challenge = parse_challenge(first.headers.get_all("Proxy-Authenticate")[-1])
        creds = answer_challenge(challenge, method="INVITE", uri=f"sip:+46812345678@{DOMAIN}",
                                 username=user, password=password, cnonce="c1")
        second = parse_message(udp_exchange(setup.port, _invite(
            setup.port, user, f"Proxy-Authorization: {creds}\r\n")) or b"")
        assert isinstance(second, Response)
        answers.append((second.status, second.reason,
                        [parse_challenge(v).algorithm
                         for v in second.headers.get_all("Proxy-Authenticate")],
                        sorted(k for k, _ in second.headers)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 407


def test_phone_call_reaches_pool_member(setup: Setup, tmp_path: Path) -> None:
    """An authenticated call from 1001 (pinned to sip1) reaches sip1 with
    P-Asserted-Identity, is answered, and ACK and BYE follow the
    Record-Route through the proxy."""
    member = pool_member(setup, setup.sip1, tmp_path, calls=1000)
    try:
        setup.wait_pool("sip1", True)
        uac = Sipp(BENCH_SCENARIOS / "uac_auth_call.xml", setup.target, folder=tmp_path,
                   calls=1, extra=("-s", "+46812345678", "-key", "domain", DOMAIN,
                                   "-inf", str(users_csv(tmp_path, "1001"))))
        assert uac.run() == 0, uac.report()
    finally:
        member.stop()
    invites = received_invites(tmp_path)
    assert len(invites) == 1
    assert f'P-Asserted-Identity: "User 1001" <sip:1001@{DOMAIN}>' in invites[0]
    assert "Record-Route: <sip:127.0.0.1:" in invites[0]


def test_pool_member_reaches_registered_user(setup: Setup, tmp_path: Path) -> None:
    """A SIPp phone registered as 1002 receives the INVITE a pool member sends
    to sip:1002@domain through the proxy, and the dialog completes (ACK and
    BYE along the Record-Route)."""
    phone_port = free_port()
    phone = Sipp(BENCH_SCENARIOS / "uas_call.xml", setup.target, folder=tmp_path,
                 port=phone_port, calls=1).start()
    try:
        register = Sipp(TEST_SCENARIOS / "register.xml", setup.target, folder=tmp_path,
                        extra=("-s", "1002", "-au", "1002", "-ap", PASSWORDS["1002"],
                               "-key", "domain", DOMAIN, "-key", "contact_port",
                               str(phone_port)))
        assert register.run() == 0, register.report()
        caller = Sipp(TEST_SCENARIOS / "pool_calls_user.xml", setup.target, folder=tmp_path,
                      host=setup.sip2[0], port=setup.sip2[1], extra=("-s", "1002"))
        assert caller.run() == 0, caller.report()
        assert phone.wait(30) == 0, phone.report()
    finally:
        phone.stop()


def test_unknown_user_and_no_binding(setup: Setup, tmp_path: Path) -> None:
    """From a pool member: an unknown user gets 404, a user without a
    registered phone 480."""
    for user, status in (("9999", 404), ("1003", 480)):
        request = (f"OPTIONS sip:{user}@127.0.0.1:{setup.port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {setup.sip2[0]}:{setup.sip2[1]};branch=z9hG4bK-{user}\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:pool@127.0.0.3>;tag=p\r\n"
                   f"To: <sip:{user}@{DOMAIN}>\r\nCall-ID: lookup-{user}\r\n"
                   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(setup.sip2)
            sock.settimeout(5)
            sock.sendto(request, ("127.0.0.1", setup.port))
            data, _ = sock.recvfrom(65535)
        response = parse_message(data)
        assert isinstance(response, Response) and response.status == status, response


def test_failover_when_pool_member_stops(setup: Setup, tmp_path: Path) -> None:
    """When sip1 stops answering OPTIONS it is marked down and the calls of
    its users (1001 is pinned there) go to sip2."""
    setup.wait_pool("sip1", False)  # nothing answers on sip1 outside its test
    member = pool_member(setup, setup.sip2, tmp_path, calls=1000)
    try:
        setup.wait_pool("sip2", True)
        uac = Sipp(BENCH_SCENARIOS / "uac_auth_call.xml", setup.target, folder=tmp_path,
                   calls=1, extra=("-s", "+46812345678", "-key", "domain", DOMAIN,
                                   "-inf", str(users_csv(tmp_path, "1001"))))
        assert uac.run() == 0, uac.report()
    finally:
        member.stop()
    assert len(received_invites(tmp_path)) == 1


def _register(port: int, user: str, password: str | None, source_port: int = 0,
              contact_port: int = 5998) -> int:
    """REGISTER, answer the challenge with ``password``; the final status."""
    def request(extra: str, cseq: int) -> bytes:
        return (f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{source_port or 5998};rport;"
                f"branch=z9hG4bK-{time.monotonic_ns()}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r{user}\r\n"
                f"To: <sip:{user}@{DOMAIN}>\r\nCall-ID: reg-{user}-{source_port}\r\n"
                f"CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{contact_port}>\r\n"
                f"Expires: 60\r\n{extra}Content-Length: 0\r\n\r\n").encode()

    first = parse_message(udp_exchange(port, request("", int(time.monotonic_ns() % 1e6)))
                          or b"")
    assert isinstance(first, Response) and first.status == 401
    challenge = parse_challenge(first.headers.get_all("WWW-Authenticate")[-1])
    creds = answer_challenge(challenge, method="REGISTER", uri=f"sip:{DOMAIN}", username=user,
                             password=password, cnonce="c2")
    second = parse_message(udp_exchange(port, request(
        f"Authorization: {creds}\r\n", int(time.monotonic_ns() % 1e6) + 1)) or b"")
    assert isinstance(second, Response)
    return second.status


def _next_message(sock: socket.socket, kind: type, skip_status: int = 100,
                  limit: float = 5.0) -> Any:
    """The next request (``kind`` Request) or response other than
    ``skip_status`` (``kind`` Response) on ``sock``; OPTIONS probes and
    anything else are answered by nobody and passed over.  TimeoutError
    after ``limit`` seconds (the probes keep coming, so the socket's own
    timeout would not end the wait)."""
    deadline = time.monotonic() + limit
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing but probes for {limit} s")
        data, _ = sock.recvfrom(65535)
        message = parse_message(data)
        if isinstance(message, kind) and not (
                isinstance(message, Response) and message.status == skip_status):
            return message


def test_retransmitted_2xx_passes_after_the_call_is_over(setup: Setup) -> None:
    """A pool member calls 1007 (a phone on a raw socket): the phone's 200
    goes up, and so do the phone's retransmissions of it (RFC 6026: the
    proxy passes every 2xx), including after the proxy has let the call go
    and handed its branch's transaction over."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as member:
        phone.bind(("127.0.0.1", 0))
        phone.settimeout(5)
        member.bind(setup.sip2)
        member.settimeout(5)
        phone_port = phone.getsockname()[1]
        assert _register(setup.port, "1007", PASSWORDS["1007"], contact_port=phone_port) == 200
        member.sendto((
            f"INVITE sip:1007@{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {setup.sip2[0]}:{setup.sip2[1]};branch=z9hG4bK-late2xx\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:pool@127.0.0.3>;tag=p7\r\n"
            f"To: <sip:1007@{DOMAIN}>\r\nCall-ID: late-2xx@127.0.0.3\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:pool@{setup.sip2[0]}:{setup.sip2[1]}>\r\n"
            "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", setup.port))
        invite = _next_message(phone, Request)
        assert invite.method == "INVITE"
        extra = tuple(("Record-Route", v) for v in invite.headers.get_all("Record-Route"))
        ok = make_response(invite, 200, "OK", to_tag="ph7", extra=(
            *extra, ("Contact", f"<sip:1007@127.0.0.1:{phone_port}>"))).serialize()
        phone.sendto(ok, ("127.0.0.1", setup.port))
        statuses = [_next_message(member, Response).status]
        for _ in range(2):
            time.sleep(0.2)
            phone.sendto(ok, ("127.0.0.1", setup.port))
            again = _next_message(member, Response)
            statuses.append(again.status)
            assert again.to_tag == "ph7" and len(again.headers.get_all("Via")) == 1
        # a 200 that keeps only the proxy's Via has nowhere to go: dropped
        head, _, rest = ok.partition(b"\r\n")
        lines = rest.split(b"\r\n")
        own_via = next(line for line in lines if line.startswith(b"Via:"))
        stripped = b"\r\n".join([head, own_via, *(line for line in lines
                                                    if not line.startswith(b"Via:"))])
        phone.sendto(stripped, ("127.0.0.1", setup.port))
        with pytest.raises(TimeoutError):
            _next_message(member, Response, limit=1.0)
        phone.sendto(ok, ("127.0.0.1", setup.port))
        statuses.append(_next_message(member, Response).status)
    assert statuses == [200, 200, 200, 200]


def test_brute_force_blocks_the_pair_not_the_office(setup: Setup) -> None:
    """After max_failures wrong passwords for 1003 from this address, even the
    right password is refused (with the same 401); 1004 from the same
    address still registers."""
    for _ in range(3):
        assert _register(setup.port, "1003", "guess") == 401
    assert _register(setup.port, "1003", PASSWORDS["1003"]) == 401
    assert _register(setup.port, "1004", PASSWORDS["1004"]) == 200
    assert "blocked" in setup.process.log()


def test_flood_gets_503_and_others_go_on(setup: Setup) -> None:
    """A source far over the rate limit gets 503 with Retry-After (or
    silence) while another source is served.  The source is answered no
    more than its token bucket allows: the burst (300) and the rate (100/s)
    over the time the flood took, however slow the box."""
    statuses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.9", 0))
        sock.settimeout(0.2)
        started = last = time.monotonic()
        for n in range(600):
            sock.sendto(_invite(setup.port).replace(b"abc", f"f{n}".encode()),
                        ("127.0.0.1", setup.port))
        try:
            while True:
                data, _ = sock.recvfrom(65535)
                last = time.monotonic()
                statuses.append(int(data.split(b" ", 2)[1]))
        except TimeoutError:
            pass
    assert 503 in statuses
    assert statuses.count(407) <= 300 + 100 * (last - started) + 1
    response = parse_message(udp_exchange(setup.port, _invite(setup.port)) or b"")
    assert isinstance(response, Response) and response.status == 407


def test_baresip_registers(setup: Setup, tmp_path: Path) -> None:
    """A real softphone (baresip) registers with its password."""
    baresip = require_tool("baresip", "baresip-core")
    config = tmp_path / "baresip"
    config.mkdir()
    port = free_port()
    (config / "accounts").write_text(
        f"<sip:1006@{DOMAIN};transport=udp>;auth_pass={PASSWORDS['1006']};"
        f"outbound=\"sip:127.0.0.1:{setup.port};lr\";regint=60\n")
    (config / "config").write_text(
        f"sip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\n"
        "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule_app account.so\n"
        "audio_player nil\naudio_source nil\n")
    (config / "contacts").write_text("")
    offset = len(setup.process.log())
    proc = subprocess.Popen([baresip, "-f", str(config), "-t", "8"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        setup.process.wait_for_log("sip:1006@" + DOMAIN + ": registered", timeout=15,
                                   after=offset)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert b"200 OK" in output, output.decode(errors="replace")
