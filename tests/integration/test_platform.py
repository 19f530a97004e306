"""The running ``twistd telavox`` process: OPTIONS over UDP, TCP and TLS
(SIPp, openssl and the project's own stack as peers), malformed input, live
reconfiguration, bad configurations and clean shutdown."""

from __future__ import annotations

import itertools
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.certs import Pki, make_pki
from helpers.handlers import Recorder
from helpers.process import PlatformProcess, free_port, twistd_command, udp_exchange
from helpers.tools import require_tool
from twisted.internet import defer, reactor
from twisted.trial import unittest

from telavox.sip.message import Request, Response
from telavox.sip.parser import parse_message
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.tls import TlsFiles

pytestmark = pytest.mark.integration
SIPP_DIR = Path(__file__).parent / "sipp"


def platform_config(folder: Path, port: int, tls_port: int, pki: Pki) -> str:
    return f"""
[platform]
domain = "pbx.example.test"
data_dir = "{folder / 'var'}"

[sip]
t1 = 0.5

[tls]
cert_file = "{pki.server_cert}"
key_file = "{pki.server_key}"
ca_file = "{pki.ca_cert}"

[sipproxy]
listen = ["udp:127.0.0.1:{port}", "tcp:127.0.0.1:{port}", "tls:127.0.0.1:{tls_port}"]
user_agent = "Telavox test"

[tlb]
http_listen = ""
"""


class Platform:
    """A running platform with its ports and test PKI."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.tls_port = free_port()
        self.pki = make_pki(folder / "pki")
        self.process = PlatformProcess(folder, platform_config(folder, self.port,
                                                               self.tls_port, self.pki))


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform process for the module; checks it stops cleanly on SIGTERM
    (status 0; -SIGTERM too, as twistd's own handler would end)."""
    p = Platform(tmp_path_factory.mktemp("platform"))
    p.process.start()
    yield p
    status = p.process.stop()
    log = p.process.log()
    assert status in (0, -signal.SIGTERM), log
    assert "telavox stopped" in log and "Server Shut Down" in log
    assert "Traceback" not in log, log


_branches = itertools.count()


def options_request(port: int, transport: str = "UDP", extra: str = "",
                    call_id: str = "opt-1@127.0.0.1") -> bytes:
    """An OPTIONS to the platform (a new transaction each time)."""
    branch = f"z9hG4bK-{next(_branches)}-{call_id}"
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5999;rport;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:probe@127.0.0.1>;tag=abc\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def parse_response(data: bytes | None) -> Response:
    assert data is not None, "no answer"
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def status_line(data: bytes | None) -> tuple[int, str]:
    """Status code and reason phrase of a response, read without the checks
    of the parser (an answer to a broken request copies its broken fields)."""
    assert data is not None, "no answer"
    line = data.split(b"\r\n", 1)[0].decode()
    version, code, reason = line.split(" ", 2)
    assert version == "SIP/2.0"
    return int(code), reason


# --- OPTIONS --------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_options(platform: Platform, transport: str, tmp_path: Path) -> None:
    """SIPp's OPTIONS keep-alives over UDP and TCP get 200 with Allow,
    Accept and Supported."""
    sipp = require_tool("sipp", "sip-tester")
    result = subprocess.run(
        ["timeout", "60", sipp, "-sf", str(SIPP_DIR / "options.xml"), "-m", "20", "-r", "50",
         "-t", transport, "-i", "127.0.0.1", "-p", "0", "-cp", str(free_port()),
         "-nostdin", "-timeout", "30s", "-trace_err", "-error_file",
         str(tmp_path / "sipp.err"), f"127.0.0.1:{platform.port}"],
        cwd=tmp_path, capture_output=True, timeout=90)
    errors = (tmp_path / "sipp.err").read_text() if (tmp_path / "sipp.err").exists() else ""
    assert result.returncode == 0, result.stdout.decode()[-2000:] + errors


def test_options_headers(platform: Platform) -> None:
    """The 200 carries Allow, Accept, Supported and the configured Server."""
    response = parse_response(udp_exchange(platform.port, options_request(platform.port)))
    assert response.status == 200
    assert "INVITE" in response.headers.values("Allow")
    assert "application/sdp" in response.headers.get("Accept", "")
    assert response.headers.get("Supported")
    assert response.headers.get("Server") == "Telavox test"
    assert response.to_tag


def test_options_over_tls_with_openssl(platform: Platform) -> None:
    """openssl s_client (checking the server certificate against the test CA)
    speaks TLS to the tls: listener; the OPTIONS gets 200."""
    openssl = require_tool("openssl", "openssl")
    request = options_request(platform.tls_port, "TLS", call_id="tls-openssl@127.0.0.1")
    proc = subprocess.Popen(
        [openssl, "s_client", "-connect", f"127.0.0.1:{platform.tls_port}", "-quiet",
         "-CAfile", platform.pki.ca_cert, "-verify_return_error", "-ign_eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(request)
        proc.stdin.flush()
        received = b""
        deadline = time.monotonic() + 15
        while b"\r\n\r\n" not in received and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65535)
                if not chunk:
                    break
                received += chunk
    finally:
        proc.kill()
        proc.wait(5)
    assert received.startswith(b"SIP/2.0 200 OK"), received[:300]


def test_options_over_tls_with_python_ssl(platform: Platform) -> None:
    """A TLS client that checks the server certificate against the test CA
    gets 200 on one connection, twice (connection reuse)."""
    context = ssl.create_default_context(cafile=platform.pki.ca_cert)
    with socket.create_connection(("127.0.0.1", platform.tls_port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        for n in range(2):
            tls.sendall(options_request(platform.tls_port, "TLS", call_id=f"tls-{n}@x"))
            data = b""
            while b"\r\n\r\n" not in data:
                data += tls.recv(65535)
            assert parse_response(data).status == 200


@pytest.mark.usefixtures("platform_for_class")
class OwnStackTests(unittest.TestCase):
    """The project's own SIP endpoint talks to the platform over real sockets."""

    platform: Platform

    def _endpoint(self, transport: str) -> SipEndpoint:
        pki = self.platform.pki
        endpoint = SipEndpoint(
            "probe", [ListenAddress.parse(f"{transport}:127.0.0.1:0")], Recorder(405), reactor,
            tls=TlsFiles(pki.client_cert, pki.client_key, pki.ca_cert))
        endpoint.start()
        self.addCleanup(endpoint.stop)
        return endpoint

    @defer.inlineCallbacks
    def _options(self, transport: str, port: int) -> Iterator[defer.Deferred[Response]]:
        endpoint = self._endpoint(transport)
        dest = endpoint.destination(transport, "127.0.0.1", port)
        request = parse_message(options_request(port, transport.upper(),
                                                call_id=f"own-{transport}@probe"))
        assert isinstance(request, Request)
        request.headers.set("Via", str(endpoint.via_for(dest)))
        response = yield endpoint.request(request, dest).addTimeout(10, reactor)
        self.assertEqual(response.status, 200)
        self.assertIn("INVITE", response.headers.values("Allow"))

    def test_udp(self) -> defer.Deferred[None]:
        """OPTIONS over UDP from the project's endpoint gets 200."""
        return self._options("udp", self.platform.port)  # type: ignore[return-value]

    def test_tcp(self) -> defer.Deferred[None]:
        """OPTIONS over TCP from the project's endpoint gets 200."""
        return self._options("tcp", self.platform.port)  # type: ignore[return-value]

    def test_tls(self) -> defer.Deferred[None]:
        """OPTIONS over TLS (server certificate checked against the CA) gets 200."""
        return self._options("tls", self.platform.tls_port)  # type: ignore[return-value]


@pytest.fixture()
def platform_for_class(request: pytest.FixtureRequest, platform: Platform) -> None:
    request.cls.platform = platform


# --- bad input ------------------------------------------------------------------------

MALFORMED = [
    ("missing Call-ID", lambda p: options_request(p).replace(b"Call-ID: opt-1@127.0.0.1\r\n", b""),
     400, "Call-ID"),
    ("CSeq mismatch", lambda p: options_request(p).replace(b"1 OPTIONS", b"1 INVITE"),
     400, "CSeq"),
    ("NUL byte", lambda p: options_request(p, extra="X-Bad: a\x00b\r\n"), 400, "NUL"),
    ("negative Content-Length",
     lambda p: options_request(p).replace(b"Content-Length: 0", b"Content-Length: -5"),
     400, "Content-Length"),
    ("Content-Length beyond the body",
     lambda p: options_request(p).replace(b"Content-Length: 0", b"Content-Length: 900"),
     400, "Content-Length"),
    ("huge CSeq", lambda p: options_request(p).replace(b"1 OPTIONS", b"99999999999999 OPTIONS"),
     400, "CSeq"),
    ("unterminated quote in From",
     lambda p: options_request(p).replace(b"From: <sip:probe", b'From: "Probe <sip:probe'),
     400, "From"),
    ("bad Request-URI", lambda p: options_request(p).replace(
        f"OPTIONS sip:127.0.0.1:{p}".encode(), b"OPTIONS sip:[::1:bad"), 400, "Request-URI"),
    ("SIP/3.0", lambda p: options_request(p).replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1),
     505, "Version"),
    ("Max-Forwards 0 on INVITE", lambda p: options_request(p).replace(
        b"OPTIONS sip", b"INVITE sip").replace(b"1 OPTIONS", b"1 INVITE").replace(
        b"Max-Forwards: 70", b"Max-Forwards: 0"), 483, "Hops"),
    ("unsupported Proxy-Require", lambda p: options_request(p, extra="Proxy-Require: foo\r\n"),
     420, "Extension"),
]


@pytest.mark.parametrize(("what", "build", "status", "phrase"), MALFORMED,
                         ids=[m[0] for m in MALFORMED])
def test_malformed_requests_get_clear_answers(platform: Platform, what: str, build: object,
                                              status: int, phrase: str) -> None:
    """Each malformed request gets its status and a reason phrase naming the
    problem; the platform keeps answering afterwards."""
    data = build(platform.port)  # type: ignore[operator]
    code, reason = status_line(udp_exchange(platform.port, data))
    assert code == status, reason
    assert phrase.lower() in reason.lower()
    assert parse_response(udp_exchange(platform.port, options_request(platform.port))).status \
        == 200


@pytest.mark.parametrize("data", [
    b"", b"\x00" * 100, b"garbage", b"INVITE\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n",
    bytes(range(256)) * 4, b"OPTIONS sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n",
    b"\r\n\r\n", b"A" * 65000,
], ids=["empty", "nul", "garbage", "no-headers", "bare-response", "binary", "bad-via",
        "keepalive", "64k-junk"])
def test_garbage_is_dropped_and_logged(platform: Platform, data: bytes) -> None:
    """Bytes that cannot be answered are dropped (no answer, no crash)."""
    assert udp_exchange(platform.port, data, timeout=0.5) is None
    assert parse_response(udp_exchange(platform.port, options_request(platform.port))).status \
        == 200
    assert platform.process.alive()


def _tcp_talk(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` over TCP; return what came back and whether the peer closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        try:
            while True:
                chunk = sock.recv(65535)
                if not chunk:
                    return received, True
                received += chunk
                if received.count(b"\r\n\r\n") >= 1 and b"Content-Length: 0" in received:
                    return received, False
        except TimeoutError:
            return received, False


def test_tcp_endless_header_is_cut_off(platform: Platform) -> None:
    """A TCP peer sending a header section over the 64 KiB limit is disconnected."""
    data = b"OPTIONS sip:x SIP/2.0\r\nX-Long: " + b"a" * 70000
    with socket.create_connection(("127.0.0.1", platform.port), timeout=5) as sock:
        sock.sendall(data)
        sock.settimeout(5)
        try:
            while sock.recv(65535):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
    assert platform.process.alive()


def test_tcp_oversized_body_gets_413_and_close(platform: Platform) -> None:
    """A Content-Length beyond the limit is answered 413 and the connection closed."""
    data = options_request(platform.port, "TCP").replace(
        b"Content-Length: 0", b"Content-Length: 10000000")
    with socket.create_connection(("127.0.0.1", platform.port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65535)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"SIP/2.0 413 "), received[:200]


def test_tcp_messages_split_and_batched(platform: Platform) -> None:
    """Several messages in one segment and one message over many segments
    are all answered on one TCP connection; CRLFCRLF pings get a CRLF pong."""
    reqs = [options_request(platform.port, "TCP", call_id=f"batch-{n}@x") for n in range(3)]
    with socket.create_connection(("127.0.0.1", platform.port), timeout=5) as sock:
        sock.sendall(b"\r\n\r\n" + reqs[0] + reqs[1])
        for i in range(0, len(reqs[2]), 7):
            sock.sendall(reqs[2][i:i + 7])
        received = b""
        while received.count(b"SIP/2.0 200 OK") < 3:
            chunk = sock.recv(65535)
            assert chunk, received
            received += chunk
    assert received.startswith(b"\r\nSIP/2.0 200 OK")
    for n in range(3):
        assert f"batch-{n}@x".encode() in received


# --- configuration -----------------------------------------------------------------------


def test_sighup_reconfigures_live(platform: Platform) -> None:
    """SIGHUP applies a changed section live; a change that needs a restart
    is refused with a log line and the old settings stay."""
    process = platform.process
    original = process.config.read_text()
    offset = len(process.log())
    process.config.write_text(original.replace('user_agent = "Telavox test"',
                                               'user_agent = "Telavox reloaded"'))
    process.signal(signal.SIGHUP)
    process.wait_for_log("sipproxy: configuration in force", after=offset)
    response = parse_response(udp_exchange(platform.port, options_request(platform.port)))
    assert response.headers.get("Server") == "Telavox reloaded"

    offset = len(process.log())
    process.config.write_text(original.replace("tcp:127.0.0.1", "tcp:127.0.0.2"))
    process.signal(signal.SIGHUP)
    process.wait_for_log("changing listen needs a restart", after=offset)

    offset = len(process.log())
    process.config.write_text(original.replace("t1 = 0.5", "t1 = 0.25"))
    process.signal(signal.SIGHUP)
    process.wait_for_log("changes to [sip] take effect after a restart", after=offset)

    offset = len(process.log())
    process.config.write_text("[sip]\nt1 = -1\n")
    process.signal(signal.SIGHUP)
    process.wait_for_log("configuration not reloaded", after=offset)
    process.config.write_text(original)
    assert parse_response(udp_exchange(platform.port, options_request(platform.port))).status \
        == 200


def test_sighup_changes_the_rate_limit_live(platform: Platform) -> None:
    """[sipproxy] rate_limit and rate_burst change on SIGHUP, without a
    restart: a source sending three OPTIONS at once under a new limit of
    one per second with a burst of two gets 200, 200 and 503 with
    Retry-After; back to the old limit, it is served again."""
    process = platform.process
    original = process.config.read_text()
    limited = original.replace('user_agent = "Telavox test"',
                               'user_agent = "Telavox test"\nrate_limit = 1.0\nrate_burst = 2')
    assert limited != original

    def three_options(tag: str) -> list[int]:
        statuses = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3.0)
            sock.bind(("127.0.0.9", 0))  # a source of its own: its own bucket
            for n in range(3):
                sock.sendto(options_request(platform.port, call_id=f"{tag}-{n}@x"),
                            ("127.0.0.1", platform.port))
                response = parse_response(sock.recv(65535))
                statuses.append(response.status)
                if response.status == 503:
                    assert response.headers.get("Retry-After") is not None
                    assert "rate limit" in response.reason
        return statuses

    offset = len(process.log())
    process.config.write_text(limited)
    process.signal(signal.SIGHUP)
    process.wait_for_log("sipproxy: configuration in force", after=offset)
    assert "rate_limit=1.0" in process.log()[offset:]
    try:
        assert three_options("limited") == [200, 200, 503]
    finally:
        offset = len(process.log())
        process.config.write_text(original)
        process.signal(signal.SIGHUP)
        process.wait_for_log("sipproxy: configuration in force", after=offset)
    time.sleep(0.1)  # the bucket refills at the old rate
    assert three_options("restored") == [200, 200, 200]


@pytest.mark.parametrize(("text", "key"), [
    ("[sipproxy]\nlisten = ['udp:127.0.0.1:99999']\n", "sipproxy.listen[0]"),
    ("[platform]\nlog_level = 'loud'\n", "platform.log_level"),
    ("[sip]\nt1 = 'fast'\n", "sip.t1"),
    ("[nonsense]\n", "nonsense"),
    ("[platform\n", "not valid TOML"),
])
def test_invalid_config_stops_start_with_a_clear_error(tmp_path: Path, text: str,
                                                       key: str) -> None:
    """An invalid file stops the start with one message naming the file and
    the key, and no traceback."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run(twistd_command("--config", str(path)), capture_output=True,
                            timeout=60, cwd=tmp_path)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode != 0
    assert str(path) in output and key in output, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_a_second_stop_signal_while_stopping_is_no_error(tmp_path: Path,
                                                          signum: int) -> None:
    """Two stop signals at once (``make run`` under a supervisor: both make
    and the supervisor pass the signal on) stop the platform once, cleanly,
    with a log line for the second and no traceback."""
    port = free_port()
    process = PlatformProcess(tmp_path, f"[platform]\ndata_dir = '{tmp_path}/var'\n"
                                        f"[sipproxy]\nlisten = ['udp:127.0.0.1:{port}']\n"
                                        "[tlb]\nhttp_listen = ''\n")
    process.start()
    process.signal(signum)
    time.sleep(0.002)  # two at once would be one to Python
    process.signal(signum)
    assert process.proc is not None
    status = process.proc.wait(15)
    log = process.log()
    assert "Traceback" not in log, log
    assert status in (0, -signum), log
    assert log.count("telavox stopped") == 1, log
    name = signal.Signals(signum).name
    assert log.count(f"Received {name}") in (1, 2), log


def test_port_in_use_stops_start_clearly(tmp_path: Path) -> None:
    """A listen address already taken stops the start with a message naming it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        path = tmp_path / "busy.toml"
        path.write_text(f"[platform]\ndata_dir = '{tmp_path}/var'\n"
                        f"[sipproxy]\nlisten = ['udp:127.0.0.1:{port}']\n"
                        "[tlb]\nhttp_listen = ''\n")
        result = subprocess.run(twistd_command("--config", str(path)), capture_output=True,
                                timeout=60, cwd=tmp_path)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode != 0
    assert re.search(rf"cannot listen on 127\.0\.0\.1:{port}", output), output


def test_twistd_lists_the_plugin() -> None:
    """``twistd --help`` lists the telavox plugin."""
    twistd = str(Path(sys.executable).parent / "twistd")
    result = subprocess.run([twistd, "--help"], capture_output=True, timeout=60)
    assert b"telavox" in result.stdout
