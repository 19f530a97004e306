"""What the call tests' own phones need: an RTP socket, the media address
of an SDP body, bounded waits on the reactor, and a trial mixin that makes
registered phones and cleans them up."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol
from unit.mediaserver.support import sine

from telavox.rtp.codecs import PCMU
from telavox.rtp.dtmf import TelephoneEvent, event_of
from telavox.sip.sdp import parse_sdp
from telavox.sip.transaction import Destination
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.useragent import Call, CallError, Identity, UserAgent


def wait(d: defer.Deferred[Any], timeout: float = 10.0) -> defer.Deferred[Any]:
    """``d`` bounded in time, so a lost message fails the test instead of hanging it."""
    return d.addTimeout(timeout, reactor)


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


class RtpPhone(DatagramProtocol):
    """A phone's RTP socket: sends numbered PCMU packets, keeps what arrives."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.sources: set[tuple[str, int]] = set()
        self.port = 0
        self.host = "127.0.0.1"

    def start(self, host: str = "127.0.0.1") -> int:
        listening = reactor.listenUDP(0, self, interface=host)
        self.port = listening.getHost().port
        self.host = host
        self.listening = listening
        return self.port

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        self.sources.add(addr)

    def send(self, host: str, port: int, count: int, ssrc: int, marker: int) -> None:
        assert self.transport is not None
        for i in range(count):
            header = struct.pack("!BBHII", 0x80, 0, 1000 + i, 160 * i, ssrc)
            self.transport.write(header + bytes([marker, i]) * 80, (host, port))

    def send_payload(self, host: str, port: int, payload: bytes, *, seq: int, ts: int,
                     ssrc: int = 0x4444, pt: int = 0) -> None:
        """Send one RTP packet carrying ``payload``."""
        assert self.transport is not None
        header = struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        self.transport.write(header + payload, (host, port))

    def send_dtmf(self, host: str, port: int, digit: str, ssrc: int = 0x3333,
                  pt: int = 101) -> None:
        """Send ``digit`` as RFC 4733 telephone-events: three packets of a
        growing duration, then three end packets (as phones do), all with the
        event's start timestamp."""
        assert self.transport is not None
        self._dtmf_ts = getattr(self, "_dtmf_ts", 100000) + 8000
        self._dtmf_seq = getattr(self, "_dtmf_seq", 5000)
        event = event_of(digit)
        for i, end in enumerate((False, False, False, True, True, True)):
            duration = 400 * min(i + 1, 4)
            payload = TelephoneEvent(event, end=end, volume=10,
                                     duration=duration).serialize()
            marker = 0x80 if i == 0 else 0
            header = struct.pack("!BBHII", 0x80, marker | pt, self._dtmf_seq & 0xFFFF,
                                 self._dtmf_ts, ssrc)
            self._dtmf_seq += 1
            self.transport.write(header + payload, (host, port))

    def sdp(self, user: str) -> bytes:
        return (f"v=0\r\no={user} 1 1 IN IP4 {self.host}\r\ns=-\r\nc=IN IP4 {self.host}\r\n"
                f"t=0 0\r\nm=audio {self.port} RTP/AVP 0 8 101\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n").encode()


def media_target(body: bytes) -> tuple[str, int]:
    sd = parse_sdp(body)
    connection = sd.media[0].connection or sd.connection
    assert connection is not None
    return connection.address, sd.media[0].port




@defer.inlineCallbacks
def hear_each_other(a: RtpPhone, a_target: tuple[str, int], b: RtpPhone,
                    b_target: tuple[str, int], wanted: int = 20) -> Any:
    """Send marked packets from each phone to its media target until each
    has ``wanted`` of the other's (bounded); fires with (packets of ``a`` at
    ``b``, packets of ``b`` at ``a``)."""
    def counts() -> tuple[int, int]:
        return (sum(p[12] == 0xA1 for p in b.received),
                sum(p[12] == 0xB2 for p in a.received))

    for _ in range(50):
        a.send(*a_target, 2, 0x1111, 0xA1)
        b.send(*b_target, 2, 0x2222, 0xB2)
        yield sleep(0.02)
        if min(counts()) >= wanted:
            break
    return counts()


class PhonesMixin:
    """For a trial TestCase whose class has ``domain``, ``proxy_port`` and
    ``phone_host``: :meth:`new_phone` makes phones (user agent plus RTP
    socket) that the test's tearDown stops."""

    domain: str
    proxy_port: int
    phone_host = "127.0.0.1"

    def setUp(self) -> None:
        self.agents: list[UserAgent] = []
        self.rtp: list[RtpPhone] = []

    @defer.inlineCallbacks
    def tearDown(self) -> Any:
        for agent in self.agents:
            yield agent.stop()
        for phone in self.rtp:
            yield phone.listening.stopListening()

    @property
    def proxy(self) -> Destination:
        return Destination("udp", self.phone_host, self.proxy_port)

    @defer.inlineCallbacks
    def answering_phone(self, user: str, password: str) -> Any:
        """A registered phone for ``user`` that answers every call with its
        RTP socket's address; fires with ``(agent, answered)``, the list of
        the calls it has answered so far."""
        answered: list[Call] = []
        agent: Any = None

        def on_invite(call: Call) -> None:
            answered.append(call)
            call.answer(agent.rtp.sdp(user)).addErrback(lambda f: None)

        agent = yield self.new_phone(user, password, on_invite)
        return agent, answered

    @defer.inlineCallbacks
    def new_phone(self, user: str, password: str, on_invite: Any = None,
                  register: bool = True) -> Any:
        """A user agent for ``user`` with an RTP socket (``agent.rtp``),
        registered with ``password`` unless ``register`` is false."""
        endpoint = SipEndpoint(f"phone-{user}", [ListenAddress("udp", self.phone_host, 0)],
                               None, reactor)  # type: ignore[arg-type]
        agent = UserAgent(endpoint, Identity(user, self.domain, f"User {user}"),
                          (user, password), on_invite=on_invite)
        agent.start()
        self.agents.append(agent)
        rtp = RtpPhone()
        rtp.start(self.phone_host)
        self.rtp.append(rtp)
        agent.rtp = rtp  # type: ignore[attr-defined]
        if register:
            response = yield wait(agent.register(f"sip:{self.domain}", self.proxy, 60))
            assert response.status == 200, response
        return agent


@defer.inlineCallbacks
def send_tones(phones: Mapping[str, Any], targets: Mapping[str, tuple[str, int]],
               tones: Mapping[str, float], packets: int = 100) -> Any:
    """Each phone (an agent with ``rtp``) sends its own sine tone as PCMU
    to its media target, one 20 ms packet per tick, for ``packets``
    packets; what arrived before is forgotten."""
    for phone in phones.values():
        phone.rtp.received.clear()
    for i in range(packets):
        for user, phone in phones.items():
            payload = PCMU.encode(sine(tones[user], start=160 * i))
            phone.rtp.send_payload(*targets[user], payload, seq=1000 + i, ts=160 * i)
        yield sleep(0.02)
    yield sleep(0.2)


def tone_levels(phone: RtpPhone, freqs: Iterable[float], frames: int = 60) -> dict[float, float]:
    """How loud each of ``freqs`` is in the last ``frames`` PCMU packets
    ``phone`` received (FFT with a Hann window, peak of five bins)."""
    audio = np.concatenate([PCMU.decode(p[12:]) for p in phone.received
                            if len(p) == 172 and p[1] & 0x7F == 0][-frames:])
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    out = {}
    for freq in freqs:
        k = round(freq * len(audio) / 8000)
        out[freq] = float(spectrum[k - 2:k + 3].max())
    return out


@defer.inlineCallbacks
def refused(d: defer.Deferred[Any]) -> Any:
    """Fires with the CallError of a call that must not come about (fails
    the test when it was answered)."""
    try:
        call = yield d
    except CallError as e:
        return e
    raise AssertionError(f"the call was answered: {call!r}")


@defer.inlineCallbacks
def transfer_blindly(answered: list[Any], target: str, domain: str, transferor: str) -> Any:
    """The callee (the first call in ``answered``, filled by its phone's
    on_invite) transfers its caller to ``target`` with REFER, as user
    ``transferor``: checks the 202, the platform's BYE and the last NOTIFY
    saying 200."""
    for _ in range(50):
        if answered and answered[0].state == "confirmed":
            break
        yield sleep(0.02)
    call = answered[0]
    response = yield wait(call.send_request(
        "REFER", extra=(("Refer-To", f"<sip:{target}@{domain}>"),
                        ("Referred-By", f"<sip:{transferor}@{domain}>"))))
    assert response.status == 202, response
    reason = yield wait(call.ended)
    assert reason == "remote BYE", reason
    assert call.notifies[-1].body.startswith(b"SIP/2.0 200"), call.notifies
