"""Bad input and exhaustion on calls through a SIP server: malformed and
unusable SDP, a caller that never ACKs the 200, and a port range too small
for another call.  The platform answers with the right status, cleans up on
the transaction timers, and never disturbs the calls in progress; after each
scenario no media port is left open."""

from __future__ import annotations

import socket
import struct
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers.process import PlatformProcess, free_port
from helpers.sipserver import sip_server_platform
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from telavox.sip.sdp import parse_sdp
from telavox.sip.transaction import Destination
from telavox.transport import useragent
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.useragent import Call, CallError, Identity, UserAgent

pytestmark = pytest.mark.integration

DOMAIN = "abuse.example.test"
PASSWORDS = {"1001": "pw-1001-x", "1002": "pw-1002-x"}
RTP_LOW, RTP_HIGH = 31600, 31607  # four port pairs: two calls' worth of endpoints
T1 = 0.05                         # 64*T1 = 3.2 s: the wait for a missing ACK


def wait(d: defer.Deferred[Any], timeout: float = 10.0) -> defer.Deferred[Any]:
    return d.addTimeout(timeout, reactor)


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


def sdp(port: int, formats: str = "0 101", extra: str = "") -> bytes:
    return (f"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"{extra}").encode()


class Sink(DatagramProtocol):
    """An RTP socket that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.received.append(data)


class AbuseTest(unittest.TestCase):
    """One platform for the class (small port range, short T1)."""

    platform: ClassVar[PlatformProcess]
    proxy_port: ClassVar[int]
    timeout = 60

    @classmethod
    def setUpClass(cls) -> None:
        folder = Path(tempfile.mkdtemp(prefix="telavox-abuse-"))
        cls.proxy_port = free_port()
        cls.platform = sip_server_platform(
            folder, domain=DOMAIN, passwords=PASSWORDS, proxy_port=cls.proxy_port,
            rtp_ports=(RTP_LOW, RTP_HIGH), extra=f"[sip]\nt1 = {T1}\nt2 = 0.4\n")
        cls.platform.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.platform.stop()
        log = cls.platform.log()
        assert "Traceback" not in log, log

    def setUp(self) -> None:
        self.agents: list[UserAgent] = []
        self.ports: list[Any] = []

    @defer.inlineCallbacks
    def tearDown(self) -> Any:
        for agent in self.agents:
            yield agent.stop()
        for port in self.ports:
            yield port.stopListening()
        yield self.assert_media_ports_free()

    @defer.inlineCallbacks
    def assert_media_ports_free(self) -> Any:
        """Every port of the mediaserver's range can be bound: no endpoint
        is left (the release may take a reactor turn after the call ends)."""
        for _ in range(50):
            busy = []
            for port in range(RTP_LOW, RTP_HIGH + 1):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    try:
                        sock.bind(("127.0.0.1", port))
                    except OSError:
                        busy.append(port)
            if not busy:
                return
            yield sleep(0.1)
        self.fail(f"media ports still open: {busy}")

    @property
    def proxy(self) -> Destination:
        return Destination("udp", "127.0.0.1", self.proxy_port)

    def sink(self) -> tuple[Sink, int]:
        sink = Sink()
        port = reactor.listenUDP(0, sink, interface="127.0.0.1")
        self.ports.append(port)
        return sink, port.getHost().port

    @defer.inlineCallbacks
    def agent(self, user: str, on_invite: Any = None) -> Any:
        endpoint = SipEndpoint(f"phone-{user}", [ListenAddress("udp", "127.0.0.1", 0)],
                               None, reactor)  # type: ignore[arg-type]
        agent = UserAgent(endpoint, Identity(user, DOMAIN), (user, PASSWORDS[user]),
                          on_invite=on_invite)
        agent.start()
        self.agents.append(agent)
        response = yield wait(agent.register(f"sip:{DOMAIN}", self.proxy, 60))
        self.assertEqual(response.status, 200)
        return agent

    @defer.inlineCallbacks
    def expect_failure(self, agent: UserAgent, body: bytes, status: int) -> Any:
        try:
            yield wait(agent.invite(f"sip:1002@{DOMAIN}", self.proxy, body))
        except CallError as e:
            self.assertEqual(e.status, status, e)
            return e
        self.fail(f"the call with {body!r} was answered")

    @defer.inlineCallbacks
    def test_bad_sdp(self) -> Any:
        """Unparsable SDP gets 400 and an offer with no codec in common 488,
        each with a reason phrase; the callee's phone never rings."""
        rang: list[Call] = []
        alice = yield self.agent("1001")
        yield self.agent("1002", rang.append)
        e = yield self.expect_failure(alice, b"v=0\r\nthis is not sdp\r\n", 400)
        self.assertIn("SDP", e.response.reason)
        e = yield self.expect_failure(alice, sdp(4000, "18").replace(
            b"a=rtpmap:101 telephone-event/8000\r\n", b""), 488)
        self.assertTrue(e.response.reason)
        self.assertEqual(rang, [])

    @defer.inlineCallbacks
    def test_caller_that_never_acks(self) -> Any:
        """A caller that never ACKs the 200: after 64*T1 the SIP server ends
        the call (BYE to the callee) and releases both endpoints."""
        answered: list[Call] = []

        def answer(call: Call) -> None:
            answered.append(call)
            call.answer(sdp(4010)).addErrback(lambda f: None)

        alice = yield self.agent("1001")
        yield self.agent("1002", answer)
        original = useragent.Call._ack
        useragent.Call._ack = lambda self, dialog, response: None  # type: ignore[method-assign]
        try:
            d = alice.invite(f"sip:1002@{DOMAIN}", self.proxy, sdp(4012))
            d.addErrback(lambda f: None)
            for _ in range(50):
                if answered:
                    break
                yield sleep(0.05)
            self.assertEqual(len(answered), 1)
            reason = yield wait(answered[0].ended, 15)
        finally:
            useragent.Call._ack = original  # type: ignore[method-assign]
        self.assertEqual(reason, "remote BYE")

    @defer.inlineCallbacks
    def test_port_range_exhausted(self) -> Any:
        """With every port pair in use, a new call is refused (the SIP server
        answers 503, which sipproxy turns into 500 as RFC 3261 §16.7 asks)
        and the calls in progress keep relaying RTP."""
        yield sleep(5.2)  # the pairs of earlier tests leave their quarantine
        answered: list[Call] = []
        sink_b, port_b = self.sink()
        sink_a, port_a = self.sink()

        def answer(call: Call) -> None:
            answered.append(call)
            call.answer(sdp(port_b)).addErrback(lambda f: None)

        alice = yield self.agent("1001")
        yield self.agent("1002", answer)
        calls = []
        for _ in range(2):  # two calls take the four pairs
            call = yield wait(alice.invite(f"sip:1002@{DOMAIN}", self.proxy, sdp(port_a)))
            calls.append(call)
        yield self.expect_failure(alice, sdp(port_a), 500)
        self.assertIn("RTP port range 31600-31607 exhausted", self.platform.log())
        # the first call still relays: A → mediaserver → B
        media = parse_sdp(calls[0].remote_sdp)
        target = (media.connection.address if media.connection else "127.0.0.1",  # type: ignore[union-attr]
                  media.media[0].port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            for i in range(5):
                packet = struct.pack("!BBHII", 0x80, 0, i, 160 * i, 0x5151) + b"\xff" * 160
                sock.sendto(packet, target)
            # the relay latched to this socket's address: RTP from the SDP
            # address may latch (127.0.0.1), any port
            for _ in range(40):
                if sink_b.received:
                    break
                yield sleep(0.05)
        self.assertTrue(sink_b.received, "the call in progress stopped relaying")
        for call in calls:
            yield wait(call.bye())
        del sink_a

    def test_sip_server_refuses_strangers(self) -> None:
        """The SIP server's port answers only sipproxy, the tlb prober and
        the gateways: an INVITE sent to it directly from elsewhere gets 403
        and starts no call."""
        import re

        from helpers.process import udp_exchange

        from telavox.sip.message import Response
        from telavox.sip.parser import parse_message

        found = re.search(r'name = "sip1"\nlisten = "udp:127\.0\.0\.1:(\d+)"',
                          self.platform.config.read_text())
        assert found is not None
        invite = (f"INVITE sip:1002@{DOMAIN} SIP/2.0\r\n"
                  "Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-stranger\r\n"
                  f"Max-Forwards: 70\r\nFrom: <sip:1001@{DOMAIN}>;tag=s\r\n"
                  f"To: <sip:1002@{DOMAIN}>\r\nCall-ID: stranger-1\r\nCSeq: 1 INVITE\r\n"
                  "Contact: <sip:1001@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n").encode()
        response = parse_message(udp_exchange(int(found.group(1)), invite) or b"")
        self.assertIsInstance(response, Response)
        assert isinstance(response, Response)
        self.assertEqual(response.status, 403)
        self.assertIn("not a configured peer", response.reason)
        self.assertNotIn("call stranger-1", self.platform.log())  # no call was started
