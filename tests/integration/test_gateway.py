"""Calls to and from carriers through a gateway hosted in the platform, with
SIPp as the carriers and the project's own phones on real UDP sockets.

Addresses keep the inside and the outside apart so that a capture of the
carrier side can show that nothing of the inside leaks: phones, sipproxy,
the SIP server and the gateway's platform side live on 127.0.0.1, the
gateway faces carriers on 127.0.0.4, the carriers (SIPp and a silent
socket) are on 127.0.0.5 and the mediaserver's RTP address is 127.0.0.6.

Outbound: user 1001 dials ``0812345678``; the first trunk never answers
(skipped after its ``invite_timeout``), the second answers 503, the third
challenges with digest and takes the call with the number in its format
(``46812345678``); RTP sent by the phone reaches the carrier's RTP sink from
the mediaserver.  Inbound: a carrier calls the DID ``+46812345600`` in its
own format and user 1002's phone rings with the caller's E.164 number.  A
stranger's INVITE to the carrier side is refused 403, an unknown DID 404.
Trunk registration and the OPTIONS keep-alive run on a second platform.
"""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers.certs import Pki, make_pki
from helpers.dnsserver import DnsServer
from helpers.phones import PhonesMixin, RtpPhone, media_target, refused, sleep, wait
from helpers.process import PlatformProcess, free_port
from helpers.sipp import TEST_SCENARIOS, Sipp
from helpers.sipserver import read_cdrs, sip_server_platform
from helpers.tools import require_tool
from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from telavox.sip.transaction import Destination
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.tls import TlsFiles
from telavox.transport.useragent import Call, CallError, Identity, UserAgent

pytestmark = pytest.mark.integration

DOMAIN = "inside.example.test"
PASSWORDS = {"1002": "pw-1002"}
INTERNAL_PASSWORD = "pw-1003"
CALLER_PASSWORD = "pw-1001"
INSIDE = "127.0.0.1"
GATEWAY_OUTSIDE = "127.0.0.4"
CARRIER = "127.0.0.5"
MEDIA = "127.0.0.6"
TRUNK_USER = "gw-account"
TRUNK_PASSWORD = "trunk-secret"
RTP = (30000, 30199)


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Silent:
    """A carrier that never answers properly: it keeps what it receives and,
    given ``reply``, answers every request with those (malformed) bytes."""

    def __init__(self, reply: bytes = b"") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((CARRIER, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.messages: list[bytes] = []
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, source = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            self.messages.append(data)
            if self.reply:
                self.sock.sendto(self.reply, source)

    def received(self) -> list[bytes]:
        return list(self.messages)

    def close(self) -> None:
        self._running = False
        self._thread.join(5)
        self.sock.close()


class GatewayPlatform(PhonesMixin, unittest.TestCase):
    """What the gateway tests share: a platform process started by the
    subclass's setUpClass, phones, RTP sinks and SIPp carriers."""

    platform: ClassVar[PlatformProcess]
    folder: ClassVar[Path]
    proxy_port: ClassVar[int]
    outside_port: ClassVar[int]
    silent: ClassVar[Silent]
    port_good: ClassVar[int]
    timeout = 90
    domain = DOMAIN
    phone_host = INSIDE

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            cls.platform.stop_clean()
        finally:
            cls.silent.close()

    def phone(self, user: str, password: str, on_invite: Any = None) -> Any:
        return self.new_phone(user, password, on_invite)

    def sink(self) -> RtpPhone:
        sink = RtpPhone()
        sink.start(CARRIER)
        self.rtp.append(sink)
        return sink

    def carrier(self, scenario: str, port: int, *extra: str) -> Sipp:
        return Sipp(TEST_SCENARIOS / scenario, f"{GATEWAY_OUTSIDE}:{self.outside_port}",
                    folder=self.folder, host=CARRIER, port=port, timeout=40,
                    extra=("-trace_msg", *extra))


class GatewayCallsTest(GatewayPlatform):
    """One platform with a hosted gateway of three trunks for the class."""

    port_503: ClassVar[int]
    inside_port: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        require_tool("sipp", "sip-tester")
        cls.folder = Path(tempfile.mkdtemp(prefix="telavox-gateway-"))
        cls.proxy_port = free_port()
        cls.outside_port = free_udp_port(GATEWAY_OUTSIDE)
        # answers with a response that does not parse (no Via, no CSeq)
        cls.silent = Silent(reply=b"SIP/2.0 180 Ringing\r\nCSeq: banana\r\n\r\n")
        cls.port_503 = free_udp_port(CARRIER)
        cls.inside_port = free_port()
        cls.port_good = free_udp_port(CARRIER)
        extra = f"""
{gateway_toml("gw1", cls.outside_port, cls.inside_port)}
[[gateways.trunks]]
name = "silent"
address = "sip:{CARRIER}:{cls.silent.port}"
invite_timeout = 1.0
options_interval = 0

[[gateways.trunks]]
name = "overloaded"
address = "sip:{CARRIER}:{cls.port_503}"
invite_timeout = 1.0
options_interval = 0

[[gateways.trunks]]
name = "carrier"
address = "sip:{CARRIER}:{cls.port_good}"
username = "{TRUNK_USER}"
password = "{TRUNK_PASSWORD}"
from_domain = "carrier.test"
number_format = "digits"
options_interval = 0

[[dids]]
number = "+46812345600"
target = "1002"

[[dids]]
number = "+46812345643"
target = "*43"

[[dialplan]]
number = "*43"
app = "echo"

[[users]]
extension = "1001"
password = "{CALLER_PASSWORD}"
name = "Alice Inside"
class_of_service = "international"
external_number = "+46812345699"

[[users]]
extension = "1003"
password = "{INTERNAL_PASSWORD}"
class_of_service = "internal"

[[users]]
extension = "1004"
password = "{INTERNAL_PASSWORD}"
name = "Hidden Harry"
class_of_service = "international"
external_number = "+46812345644"
caller_id_withheld = true
"""
        cls.platform = sip_server_platform(
            cls.folder, domain=DOMAIN, passwords=PASSWORDS, proxy_port=cls.proxy_port,
            rtp_ports=RTP, extra=extra, media_address=MEDIA)
        cls.platform.start()

    @defer.inlineCallbacks
    def test_outbound_call_fails_over_and_reaches_the_carrier_in_its_format(self) -> Any:
        """1001 dials 0812345678: the trunk that answers only garbage is
        skipped after 1 s (its malformed 180 is dropped, never taken), the
        overloaded one answers 503, the third challenges, gets our
        credentials and the number as 46812345678, and answers; the phone's
        RTP reaches the carrier's sink from the mediaserver; the BYE reaches
        the carrier; nothing of the inside is in what the carriers got."""
        sink = self.sink()
        good = self.carrier("carrier_uas.xml", self.port_good, "-key", "user", TRUNK_USER,
                            "-key", "password", TRUNK_PASSWORD,
                            "-key", "sink_ip", CARRIER, "-key", "sink_port",
                            str(sink.port)).start()
        overloaded = self.carrier("carrier_503.xml", self.port_503).start()
        try:
            yield sleep(0.3)
            alice = yield self.phone("1001", CALLER_PASSWORD)
            call = yield wait(alice.invite(f"sip:0812345678@{DOMAIN}", self.proxy,
                                           alice.rtp.sdp("alice")), 20)
            self.assertEqual(call.state, "confirmed")
            host, port = media_target(call.remote_sdp)
            self.assertEqual(host, MEDIA)
            for _ in range(25):
                alice.rtp.send(host, port, 5, 0x1111, 0xA1)
                yield sleep(0.02)
                if len(sink.received) >= 50:
                    break
            self.assertGreaterEqual(len(sink.received), 50)
            self.assertEqual({h for h, _ in sink.sources}, {MEDIA})
            self.assertTrue(all(p[12] == 0xA1 for p in sink.received))
            response = yield wait(call.bye())
            self.assertEqual(response.status, 200)
            status = yield threads.deferToThread(good.wait)
            self.assertEqual(status, 0, good.report())
            status = yield threads.deferToThread(overloaded.wait)
            self.assertEqual(status, 0, overloaded.report())
        finally:
            good.stop()
            overloaded.stop()
        silent = self.silent.received()
        self.assertTrue(silent and silent[0].startswith(b"INVITE sip:+46812345678@"), silent)
        captured = b"".join(silent).decode()
        for path in [*self.folder.glob("carrier_uas_*_messages.log"),
                     *self.folder.glob("carrier_503_*_messages.log")]:
            captured += path.read_text(errors="replace")
        self.assertIn("P-Asserted-Identity: <sip:46812345699@carrier.test>", captured)
        self.assertEqual(set(re.findall(r"^INVITE sip:([^@]*)@", captured, re.M)),
                         {"+46812345678", "46812345678"})  # e164 and digits trunks
        self.assertIn("Authorization: Digest", captured)
        for secret in (DOMAIN, INSIDE, "1001", call.request.call_id):
            self.assertNotIn(secret, _without_media_and_log_lines(captured), secret)
        rows: list[dict[str, str]] = []
        for _ in range(30):
            yield sleep(0.1)
            rows = [r for r in read_cdrs(self.folder) if r["callee"] == "+46812345678"]
            if rows:
                break
        self.assertEqual(rows[-1]["disposition"], "answered", rows)

    @defer.inlineCallbacks
    def test_withheld_caller_id(self) -> Any:
        """A user who withholds the caller ID reaches the carrier as
        Anonymous, with the external number only in P-Asserted-Identity and
        Privacy: id (RFC 3323/3325)."""
        sink = self.sink()
        good = self.carrier("carrier_uas.xml", self.port_good, "-key", "user", TRUNK_USER,
                            "-key", "password", TRUNK_PASSWORD, "-key", "sink_ip", CARRIER,
                            "-key", "sink_port", str(sink.port)).start()
        try:
            yield sleep(0.3)
            harry = yield self.phone("1004", INTERNAL_PASSWORD)
            call = yield wait(harry.invite(f"sip:0046701234567@{DOMAIN}", self.proxy,
                                           harry.rtp.sdp("harry")), 20)
            yield wait(call.bye())
            status = yield threads.deferToThread(good.wait)
            self.assertEqual(status, 0, good.report())
        finally:
            good.stop()
        log = max(self.folder.glob("carrier_uas_*_messages.log"),
                  key=lambda p: p.stat().st_mtime).read_text(errors="replace")
        invite = log[log.index("INVITE sip:46701234567@"):]
        invite = invite[:invite.index("\n\n")]
        self.assertIn('From: "Anonymous" <sip:anonymous@anonymous.invalid>', invite)
        self.assertIn("P-Asserted-Identity: <sip:46812345644@carrier.test>", invite)
        self.assertIn("Privacy: id", invite)
        self.assertNotIn("Harry", invite)

    @defer.inlineCallbacks
    def test_inbound_call_to_a_did_rings_the_user(self) -> Any:
        """A carrier calls 46812345600 (its format for the DID +46812345600)
        from 0701234567: user 1002's phone rings with the caller as
        +46701234567, answers, and the carrier's BYE ends the call."""
        sink = self.sink()
        rung: list[Call] = []

        def on_invite(call: Call) -> None:
            rung.append(call)
            call.ring()
            call.answer(bob.rtp.sdp("bob")).addErrback(lambda f: None)

        bob = yield self.phone("1002", PASSWORDS["1002"], on_invite)
        carrier = self.carrier("carrier_uac.xml", self.port_good, "-s", "46812345600",
                               "-key", "caller", "0701234567", "-key", "sink_ip", CARRIER,
                               "-key", "sink_port", str(sink.port), "-m", "1")
        status = yield threads.deferToThread(carrier.run)
        self.assertEqual(status, 0, carrier.report())
        self.assertEqual(len(rung), 1)
        request = rung[0].request
        assert request is not None
        self.assertEqual(request.from_.uri.user, "+46701234567")  # type: ignore[union-attr]
        self.assertEqual(request.uri.user, "1002")  # type: ignore[union-attr]
        reason = yield wait(rung[0].ended)
        self.assertEqual(reason, "remote BYE")

    @defer.inlineCallbacks
    def test_inbound_late_offer_carries_media(self) -> Any:
        """A carrier's INVITE without SDP: the 200 it gets carries the
        mediaserver's offer, its ACK's answer reaches the SIP server, and the
        phone's RTP arrives at the carrier's sink from the mediaserver."""
        sink = self.sink()
        rung: list[Call] = []

        def on_invite(call: Call) -> None:
            rung.append(call)
            call.answer(bob.rtp.sdp("bob")).addErrback(lambda f: None)

        bob = yield self.phone("1002", PASSWORDS["1002"], on_invite)
        carrier = self.carrier("carrier_uac_late.xml", self.port_good, "-s", "46812345600",
                               "-key", "caller", "0701234567", "-key", "sink_ip", CARRIER,
                               "-key", "sink_port", str(sink.port), "-m", "1")
        done = threads.deferToThread(carrier.run)
        for _ in range(100):
            yield sleep(0.02)
            if rung and rung[0].state == "confirmed":
                break
        self.assertTrue(rung and rung[0].state == "confirmed")
        host, port = media_target(rung[0].remote_sdp)
        for _ in range(40):
            bob.rtp.send(host, port, 5, 0x2222, 0xB2)
            yield sleep(0.02)
            if len(sink.received) >= 50:
                break
        status = yield done
        self.assertEqual(status, 0, carrier.report())
        self.assertGreaterEqual(len(sink.received), 50)
        self.assertEqual({h for h, _ in sink.sources}, {MEDIA})

    @defer.inlineCallbacks
    def test_inbound_late_offer_to_a_script(self) -> Any:
        """A carrier's INVITE without SDP to a number bound to a script (the
        echo test): the script answers with our offer in the 200, the ACK's
        answer points the channel's endpoint at the carrier's sink, and the
        prompt arrives there from the mediaserver."""
        sink = self.sink()
        carrier = self.carrier("carrier_uac_late.xml", self.port_good, "-s", "46812345643",
                               "-key", "caller", "0701234567", "-key", "sink_ip", CARRIER,
                               "-key", "sink_port", str(sink.port), "-m", "1")
        status = yield threads.deferToThread(carrier.run)
        self.assertEqual(status, 0, carrier.report())
        self.assertGreaterEqual(len(sink.received), 50)  # 2 s of prompt at 50 packets/s
        self.assertEqual({h for h, _ in sink.sources}, {MEDIA})

    @defer.inlineCallbacks
    def test_stranger_and_unknown_number_are_refused(self) -> Any:
        """An INVITE from an address that is no trunk's gets 403, and so does
        one sent to the gateway's platform side by anything but a SIP server
        (a phone cannot skip the dial plan); from a carrier, one requiring an
        unknown extension gets 420 and one with a broken From 400; a
        carrier's call to a number that is no DID gets 404."""
        for source, target in (("127.0.0.7", (GATEWAY_OUTSIDE, self.outside_port)),
                               (INSIDE, (INSIDE, self.inside_port))):
            data = yield threads.deferToThread(_stranger_invite, source, target)
            self.assertTrue(data.startswith(b"SIP/2.0 403"), (target, data))
        # from the carrier's address but broken: an extension we lack, a From
        # that does not parse
        outside = (GATEWAY_OUTSIDE, self.outside_port)
        data = yield threads.deferToThread(_stranger_invite, CARRIER, outside,
                                           "Require: teleportation\r\n")
        self.assertTrue(data.startswith(b"SIP/2.0 420"), data)
        self.assertIn(b"Unsupported: teleportation", data)
        data = yield threads.deferToThread(_stranger_invite, CARRIER, outside, "",
                                           "<sip:broken@{source};tag=s2")
        self.assertTrue(data.startswith(b"SIP/2.0 400"), data)
        sink = self.sink()
        # its own port: the 404 is retransmitted (SIPp does not ACK what it
        # did not expect) and must not reach the carrier of the next test
        carrier = self.carrier("carrier_uac.xml", free_udp_port(CARRIER), "-s", "46899999999",
                               "-key", "caller", "0701234567", "-key", "sink_ip", CARRIER,
                               "-key", "sink_port", str(sink.port), "-m", "1")
        yield threads.deferToThread(carrier.run)
        messages = "".join(p.read_text(errors="replace")
                           for p in self.folder.glob("carrier_uac_*_messages.log"))
        self.assertIn("SIP/2.0 404", messages)
        self.platform.wait_for_log("unknown number 46899999999")

    @defer.inlineCallbacks
    def test_unauthorised_caller_never_reaches_a_carrier(self) -> Any:
        """An INVITE to an outside number without credentials is challenged
        by sipproxy and goes nowhere; a caller whose class of service is
        internal is refused 403 before any trunk is tried, also when it
        claims another user's identity or a transfer by one (Referred-By)."""
        before = len(self.silent.received())
        endpoint = SipEndpoint("intruder", [ListenAddress("udp", INSIDE, 0)], None,
                               reactor)  # type: ignore[arg-type]
        agent = UserAgent(endpoint, Identity("1002", DOMAIN, "x"), ("1002", "wrong"))
        agent.start()
        self.agents.append(agent)
        try:
            yield wait(agent.invite(f"sip:0812345678@{DOMAIN}", self.proxy, b""))
        except CallError as e:
            self.assertIn(e.status, (401, 403, 407))
        else:
            self.fail("an unauthenticated call was answered")
        carol = yield self.phone("1003", INTERNAL_PASSWORD)
        # claiming to be, or to be transferred by, a user with more rights
        # changes nothing: sipproxy asserts who authenticated, and the SIP
        # server believes Referred-By only from the pool's other servers
        claims = ((), (("P-Asserted-Identity", f"<sip:1001@{DOMAIN}>"),
                       ("Referred-By", f"<sip:1001@{DOMAIN}>")))
        for extra in claims:
            error = yield refused(wait(carol.invite(f"sip:0812345678@{DOMAIN}", self.proxy,
                                                    carol.rtp.sdp("c"), extra=extra)))
            self.assertEqual(error.status, 403, extra)
        yield sleep(0.2)
        self.assertEqual(self.silent.received()[before:], [])


class DnsTrunkTest(GatewayPlatform):
    """A trunk named by host name: the gateway resolves it per RFC 3263
    (NAPTR → SRV → A) with a DNS server of the test's own and fails over
    from the first SRV target (silent) to the second (SIPp)."""

    dns: ClassVar[DnsServer]

    @classmethod
    def setUpClass(cls) -> None:
        require_tool("sipp", "sip-tester")
        cls.folder = Path(tempfile.mkdtemp(prefix="telavox-gwdns-"))
        cls.proxy_port = free_port()
        cls.outside_port = free_udp_port(GATEWAY_OUTSIDE)
        cls.silent = Silent()
        cls.port_good = free_udp_port(CARRIER)
        cls.dns = DnsServer([
            ("carrier.test", "NAPTR", [10, 10, "s", "SIP+D2U", "", "_sip._udp.carrier.test"]),
            ("_sip._udp.carrier.test", "SRV", [10, 0, cls.silent.port, "dead.carrier.test"]),
            ("_sip._udp.carrier.test", "SRV", [20, 0, cls.port_good, "live.carrier.test"]),
            ("dead.carrier.test", "A", [CARRIER]),
            ("live.carrier.test", "A", [CARRIER]),
        ]).start()
        cls.platform = sip_server_platform(
            cls.folder, domain=DOMAIN, passwords={}, proxy_port=cls.proxy_port,
            rtp_ports=(30300, 30399), media_address=MEDIA,
            platform_keys=f'dns_servers = ["127.0.0.1:{cls.dns.port}"]', extra=f"""
{gateway_toml("gw3", cls.outside_port)}
[[gateways.trunks]]
name = "named"
address = "sip:carrier.test"
username = "{TRUNK_USER}"
password = "{TRUNK_PASSWORD}"
invite_timeout = 1.0
options_interval = 0
max_calls = 1

[[users]]
extension = "1001"
password = "{CALLER_PASSWORD}"
class_of_service = "international"
external_number = "+46812345699"
""")
        cls.platform.start()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        cls.dns.stop()

    @defer.inlineCallbacks
    def test_outbound_call_fails_over_across_resolved_targets(self) -> Any:
        """The call reaches the SIPp carrier at the second SRV target after
        the first one stayed silent; it holds the trunk's only channel
        (max_calls = 1), so a second call meanwhile is refused without
        reaching the carrier."""
        self.platform.wait_for_log("trunk named at udp:127.0.0.5")
        sink = self.sink()
        good = self.carrier("carrier_uas.xml", self.port_good, "-key", "user", TRUNK_USER,
                            "-key", "password", TRUNK_PASSWORD, "-key", "sink_ip", CARRIER,
                            "-key", "sink_port", str(sink.port)).start()
        try:
            yield sleep(0.3)
            alice = yield self.phone("1001", CALLER_PASSWORD)
            call = yield wait(alice.invite(f"sip:0812345678@{DOMAIN}", self.proxy,
                                           alice.rtp.sdp("alice")), 20)
            self.assertEqual(call.state, "confirmed")
            error = yield refused(wait(alice.invite(f"sip:0812345679@{DOMAIN}", self.proxy,
                                                    alice.rtp.sdp("alice")), 20))
            # the SIP server's 503 reaches the phone as 500: a proxy forwards
            # no 503 upstream (RFC 3261 §16.7)
            self.assertEqual(error.status, 500)
            self.platform.wait_for_log("every trunk at its call limit")
            yield wait(call.bye())
            status = yield threads.deferToThread(good.wait)
            self.assertEqual(status, 0, good.report())
        finally:
            good.stop()
        silent = self.silent.received()
        self.assertTrue(silent and silent[0].startswith(b"INVITE sip:+46812345678@carrier.test"),
                        silent)


class TlsTrunkTest(GatewayPlatform):
    """A trunk over TLS: the gateway's carrier side listens on UDP and on
    TLS, connects to the carrier checking its certificate against the
    configured CA (name or IP, RFC 5922), and the call goes through with a
    Contact on its TLS side; RTP flows as usual.  The carrier calls in over
    TLS too, and the trunk's single channel (max_calls = 1) refuses a second
    call while one is up."""

    tls_port: ClassVar[int]

    carrier_port: ClassVar[int]
    pki: ClassVar[Pki]

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = Path(tempfile.mkdtemp(prefix="telavox-gwtls-"))
        cls.pki = make_pki(cls.folder / "pki", more_ips=(GATEWAY_OUTSIDE, CARRIER))
        cls.proxy_port = free_port()
        cls.outside_port = free_port(GATEWAY_OUTSIDE)
        cls.tls_port = free_port(GATEWAY_OUTSIDE)
        cls.carrier_port = free_port(CARRIER)
        cls.silent = Silent()
        cls.platform = sip_server_platform(
            cls.folder, domain=DOMAIN, passwords={}, proxy_port=cls.proxy_port,
            rtp_ports=(30800, 30899), media_address=MEDIA, extra=f"""
[tls]
cert_file = "{cls.pki.server_cert}"
key_file = "{cls.pki.server_key}"
ca_file = "{cls.pki.ca_cert}"

[[gateways]]
name = "gw4"
listen = "udp:{INSIDE}:{free_port()}"
carrier_listen = ["udp:{GATEWAY_OUTSIDE}:{cls.outside_port}",
                  "tls:{GATEWAY_OUTSIDE}:{cls.tls_port}"]
prefixes = [""]

[[gateways.trunks]]
name = "secure"
address = "sip:{CARRIER}:{cls.carrier_port};transport=tls"
options_interval = 0
max_calls = 1

[[dids]]
number = "+46812345600"
target = "1002"

[[users]]
extension = "1002"
password = "{PASSWORDS['1002']}"

[[users]]
extension = "1001"
password = "{CALLER_PASSWORD}"
class_of_service = "international"
external_number = "+46812345699"
""")
        cls.platform.start()

    def carrier_agent(self, on_invite: Any, pki: Pki | None = None) -> UserAgent:
        """The carrier: the project's own user agent on a TLS listener with
        a certificate for its address, of the test CA (or of ``pki``'s)."""
        pki = pki or self.pki
        endpoint = SipEndpoint(
            "carrier", [ListenAddress("tls", CARRIER, self.carrier_port)], None,
            reactor,  # type: ignore[arg-type]
            tls=TlsFiles(pki.server_cert, pki.server_key, pki.ca_cert))
        agent = UserAgent(endpoint, Identity("carrier", "carrier.test", "Carrier"),
                          transport="tls", on_invite=on_invite)
        agent.start()
        self.agents.append(agent)
        return agent

    @defer.inlineCallbacks
    def test_outbound_call_over_tls(self) -> Any:
        """1001 dials 0812345678: the carrier gets the INVITE over TLS from
        the gateway (its Via says TLS), answers, the phone's RTP reaches the
        carrier's sink from the mediaserver, and BYE ends both sides."""
        sink = self.sink()
        answered: list[Call] = []

        def on_invite(call: Call) -> None:
            answered.append(call)
            call.answer(sink.sdp("carrier")).addErrback(lambda f: None)

        self.carrier_agent(on_invite)
        alice = yield self.phone("1001", CALLER_PASSWORD)
        call = yield wait(alice.invite(f"sip:0812345678@{DOMAIN}", self.proxy,
                                       alice.rtp.sdp("alice")), 20)
        self.assertEqual(call.state, "confirmed")
        request = answered[0].request
        assert request is not None
        self.assertEqual(request.top_via.transport, "TLS")
        self.assertEqual(request.uri.user, "+46812345678")  # type: ignore[union-attr]
        self.assertEqual([str(c.uri) for c in request.contacts],
                         [f"sip:{GATEWAY_OUTSIDE}:{self.tls_port};transport=tls"])
        host, port = media_target(call.remote_sdp)
        for _ in range(50):
            alice.rtp.send(host, port, 1, 0x3333, 0xE3)
            yield sleep(0.02)
            if len(sink.received) >= 10:
                break
        self.assertGreaterEqual(len(sink.received), 10)
        self.assertEqual({h for h, _ in sink.sources}, {MEDIA})
        yield wait(call.bye())
        reason = yield wait(answered[0].ended)
        self.assertEqual(reason, "remote BYE")

    @defer.inlineCallbacks
    def test_carrier_certificate_of_another_ca_is_refused(self) -> Any:
        """A carrier whose certificate the configured CA did not sign never
        gets the INVITE: the handshake fails, which is a transport failure
        of the attempt at once (not a wait for the trunk's invite_timeout),
        and the caller is refused (500: a proxy forwards no 503)."""
        stranger = make_pki(self.folder / "other-pki", more_ips=(CARRIER,))
        invited: list[Call] = []
        self.carrier_agent(invited.append, stranger)
        alice = yield self.phone("1001", CALLER_PASSWORD)
        error = yield refused(wait(alice.invite(f"sip:0812345678@{DOMAIN}", self.proxy,
                                                alice.rtp.sdp("alice")), 20))
        self.assertEqual(error.status, 500)
        self.assertEqual(invited, [])
        self.platform.wait_for_log("certificate verify failed")
        self.platform.wait_for_log("failed (503 Service Unavailable (transport failure))")


    @defer.inlineCallbacks
    def test_inbound_calls_over_tls_within_the_trunks_channels(self) -> Any:
        """The carrier calls +46812345600 over TLS (checking the gateway's
        certificate): 1002 answers.  A second call meanwhile finds the
        trunk's only channel taken and gets 503 with Retry-After; once the
        first call ends, the next one goes through."""
        _, rung = yield self.answering_phone("1002", PASSWORDS["1002"])
        carrier = self.carrier_agent(lambda call: None)
        target = f"sip:+46812345600@{GATEWAY_OUTSIDE}:{self.tls_port};transport=tls"
        gateway = Destination("tls", GATEWAY_OUTSIDE, self.tls_port)
        sink = self.sink()
        first = yield wait(carrier.invite(target, gateway, sink.sdp("carrier")), 20)
        self.assertEqual((first.state, len(rung)), ("confirmed", 1))
        error = yield refused(wait(carrier.invite(target, gateway, sink.sdp("carrier")), 20))
        self.assertEqual(error.status, 503)
        self.assertIn("call limit", error.response.reason)
        self.assertEqual(error.response.headers.get("Retry-After"), "5")
        self.assertEqual(len(rung), 1)
        yield wait(first.bye())
        yield wait(rung[0].ended)
        again = yield wait(carrier.invite(target, gateway, sink.sdp("carrier")), 20)
        self.assertEqual((again.state, len(rung)), ("confirmed", 2))
        yield wait(again.bye())

def gateway_toml(name: str, outside_port: int, inside_port: int = 0) -> str:
    """The ``[[gateways]]`` table of a gateway hosted in the platform under
    test: its platform side on INSIDE, its carrier side on GATEWAY_OUTSIDE,
    carrying every number (its trunks follow in the caller's text)."""
    return (f'[[gateways]]\nname = "{name}"\n'
            f'listen = "udp:{INSIDE}:{inside_port or free_port()}"\n'
            f'carrier_listen = "udp:{GATEWAY_OUTSIDE}:{outside_port}"\nprefixes = [""]\n')


def _stranger_invite(source: str, target: tuple[str, int], extra: str = "",
                     sender: str = "<sip:666@{source}>;tag=s1") -> bytes:
    """Send an INVITE for 46812345600 from ``source`` to ``target`` (with
    ``extra`` header lines and ``sender`` as From); the first answer that is
    not 100 Trying."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind((source, 0))
        stranger.settimeout(5)
        port = stranger.getsockname()[1]
        invite = (f"INVITE sip:46812345600@{target[0]} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK-stranger{port}\r\n"
                  f"From: {sender.format(source=source)}\r\nTo: <sip:46812345600@x>\r\n"
                  f"Call-ID: stranger-{port}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                  f"Contact: <sip:666@{source}:{port}>\r\n{extra}Content-Length: 0\r\n\r\n")
        stranger.sendto(invite.encode(), target)
        while True:
            answer = stranger.recv(65536)
            if not answer.startswith(b"SIP/2.0 100"):
                return answer


def _without_media_and_log_lines(text: str) -> str:
    """The carrier's capture minus SIPp's own log lines (which name the
    addresses it sent to and received from)."""
    lines = [line for line in text.splitlines()
             if not re.match(r"^(-{5,}|\s*(UDP|TCP) message (sent|received)|$)", line)]
    return "\n".join(lines)


class TrunkRegistrationTest(unittest.TestCase):
    """A trunk that registers with its carrier, and one whose carrier is dead."""

    timeout = 60

    def test_registration_and_keepalive(self) -> None:
        """The gateway registers with a carrier that challenges it (SIPp checks
        the credentials and grants 120 s); a trunk with a wrong password is
        reported down with "wrong credentials"; a trunk whose carrier never
        answers its OPTIONS is marked down and logged."""
        require_tool("sipp", "sip-tester")
        folder = Path(tempfile.mkdtemp(prefix="telavox-trunkreg-"))
        registrar_port = free_udp_port(CARRIER)
        outside = free_udp_port(GATEWAY_OUTSIDE)
        dead = Silent()
        registrar = Sipp(TEST_SCENARIOS / "carrier_registrar.xml",
                         f"{GATEWAY_OUTSIDE}:{outside}", folder=folder, host=CARRIER,
                         port=registrar_port, timeout=30,
                         extra=("-key", "user", TRUNK_USER, "-key", "password",
                                TRUNK_PASSWORD, "-m", "1", "-trace_msg")).start()
        refusing_port = free_udp_port(CARRIER)
        refusing = Sipp(TEST_SCENARIOS / "carrier_registrar.xml",
                        f"{GATEWAY_OUTSIDE}:{outside}", folder=folder, host=CARRIER,
                        port=refusing_port, timeout=30,
                        extra=("-key", "user", TRUNK_USER, "-key", "password",
                               TRUNK_PASSWORD, "-m", "1")).start()
        time.sleep(0.3)
        platform = sip_server_platform(folder, domain=DOMAIN, passwords=PASSWORDS,
                                       proxy_port=free_port(), rtp_ports=(30200, 30299),
                                       extra=f"""
{gateway_toml("gw2", outside)}
[[gateways.trunks]]
name = "registered"
address = "sip:{CARRIER}:{registrar_port}"
username = "{TRUNK_USER}"
password = "{TRUNK_PASSWORD}"
register = true
register_expires = 300
options_interval = 0

[[gateways.trunks]]
name = "badpass"
address = "sip:{CARRIER}:{refusing_port}"
username = "{TRUNK_USER}"
password = "not-the-password"
register = true
options_interval = 0

[[gateways.trunks]]
name = "dead"
address = "sip:{CARRIER}:{dead.port}"
options_interval = 0.3
""")
        platform.start()
        try:
            self.assertEqual(registrar.wait(), 0, registrar.report())
            platform.wait_for_log("trunk dead is down", timeout=15)
            platform.wait_for_log("trunk badpass is down: wrong credentials", timeout=15)
            messages = "".join(p.read_text(errors="replace")
                               for p in folder.glob("carrier_registrar_*_messages.log"))
            self.assertIn(f'username="{TRUNK_USER}"', messages)
            self.assertIn(f"Contact: <sip:{TRUNK_USER}@{GATEWAY_OUTSIDE}:{outside}>",
                          messages)
            self.assertTrue(any(m.startswith(b"OPTIONS ") for m in dead.received()))
        finally:
            registrar.stop()
            refusing.stop()
            status = platform.stop()
            dead.close()
        log = platform.log()
        self.assertNotIn("Traceback", log)
        self.assertIn(status, (0, -15))
        self.assertNotIn("trunk registered is down", log)
