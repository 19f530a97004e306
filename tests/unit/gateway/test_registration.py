"""The trunk registration client against a scripted carrier: what it sends,
when (on a fake clock), and what state it reports."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.task import Clock

from telavox.gateway.registration import (
    MAX_AUTH_ROUNDS,
    MAX_RETRY,
    RegistrationState,
    TrunkRegistration,
    backoff_delay,
    refresh_delay,
)
from telavox.sip.digest import DigestServer, ha1, parse_credentials
from telavox.sip.hdrtypes import NameAddr, Via
from telavox.sip.message import Request, Response, make_response, new_branch
from telavox.sip.parser import parse_message
from telavox.sip.transaction import Action, Destination, ResponseIn, Source, TimedOut
from telavox.sip.transaction.events import TransportFailed
from telavox.sip.uri import SipUri

CARRIER = Destination("udp", "192.0.2.50", 5060)
OTHER = Destination("udp", "192.0.2.51", 5060)
REALM = "carrier.example"
CONTACT = NameAddr(uri=SipUri(host="198.51.100.7", port=5080, user="trunk1"))


class Sent:
    """One client transaction the registration started."""

    def __init__(self, request: Request, dest: Destination,
                 on_event: Callable[[Action], None]) -> None:
        self.request = request
        self.dest = dest
        self.on_event = on_event

    def answer(self, status: int, *extra: tuple[str, str]) -> None:
        """Deliver a response from the carrier (serialised and re-parsed)."""
        built = make_response(self.request, status, to_tag="c4rr13r", extra=extra)
        parsed = parse_message(built.serialize())
        assert isinstance(parsed, Response)
        self.on_event(ResponseIn(self, parsed, Source("udp", self.dest.host,  # type: ignore[arg-type]
                                                      self.dest.port)))

    def time_out(self) -> None:
        self.on_event(TimedOut(self))  # type: ignore[arg-type]


class Host:
    """A RegistrationHost recording its requests, on a twisted Clock."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.sent: list[Sent] = []

    def send_request(self, request: Request, dest: Destination,
                     on_event: Callable[[Action], None]) -> Any:
        txn = Sent(request, dest, on_event)
        self.sent.append(txn)
        return txn

    def via_for(self, dest: Destination) -> Via:
        return Via("UDP", "198.51.100.7", 5080, (("branch", new_branch()),))

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return self.clock.callLater(delay, fn)

    def now(self) -> float:
        return self.clock.seconds()

    @property
    def last(self) -> Sent:
        return self.sent[-1]


class Middle(random.Random):
    """A random source whose jitter is always none."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


class Carrier:
    """The carrier's digest checking, to challenge and verify answers."""

    def __init__(self, realm: str = REALM, password: str = "s3cret") -> None:
        self.server = DigestServer(b"0123456789abcdef", realm, algorithms=("MD5",))
        self.password = password
        self.realm = realm

    def challenge(self, *, stale: bool = False, proxy: bool = False) -> tuple[str, str]:
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        return (name, self.server.challenge(0.0, stale=stale)[0])

    def accepts(self, request: Request, field: str = "Authorization") -> bool:
        value = request.headers.get(field)
        assert value is not None
        creds = parse_credentials(value)
        key = ha1(creds.username, self.realm, self.password, creds.algorithm)
        return self.server.verify(creds, request.method, key, 0.0).ok


def setup(*, password: str = "s3cret", username: str = "trunk1", realm: str = "",
          expires: int = 600, dest: Callable[[], Destination | None] = lambda: CARRIER,
          rng: random.Random | None = None,
          ) -> tuple[Host, TrunkRegistration, list[RegistrationState]]:
    host = Host()
    changes: list[RegistrationState] = []
    reg = TrunkRegistration(
        host, aor=SipUri(host=REALM, user="trunk1"), registrar=SipUri(host=REALM), dest=dest,
        contact=CONTACT, username=username, password=password, realm=realm, expires=expires,
        on_change=changes.append, user_agent="telavox-test", rng=rng or Middle())
    return host, reg, changes


def register(host: Host, reg: TrunkRegistration, granted: int = 300) -> None:
    """Start and get through a challenge to a 200 granting ``granted`` s."""
    reg.start()
    host.last.answer(401, Carrier().challenge())
    host.last.answer(200, ("Contact", f"{CONTACT};expires={granted}"))


def test_first_register() -> None:
    """The first REGISTER follows §10.2 and carries no credentials."""
    host, reg, changes = setup()
    reg.start()
    assert len(host.sent) == 1
    r = host.last.request
    assert host.last.dest == CARRIER
    assert r.method == "REGISTER"
    assert r.uri_text == "sip:carrier.example"
    assert str(r.to.uri) == str(r.from_.uri) == "sip:trunk1@carrier.example"
    assert r.from_tag and r.to_tag is None
    assert r.call_id == reg.call_id
    assert r.cseq.seq == 1
    assert r.headers.get("Expires") == "600"
    assert r.contacts[0].uri == CONTACT.uri
    assert r.headers.get("User-Agent") == "telavox-test"
    assert "Authorization" not in r.headers
    assert reg.state == RegistrationState(False, "not registered")
    assert changes == []
    reg.start()
    assert len(host.sent) == 1, "start() twice sends once"


def test_challenge_answered() -> None:
    """A 401 gets one REGISTER with Authorization the carrier accepts, with
    the same Call-ID and From tag, CSeq one higher and a new branch."""
    host, reg, _ = setup()
    carrier = Carrier()
    reg.start()
    first = host.last.request
    host.last.answer(401, carrier.challenge())
    assert len(host.sent) == 2
    second = host.last.request
    assert carrier.accepts(second)
    assert second.call_id == first.call_id
    assert second.from_tag == first.from_tag
    assert second.cseq.seq == first.cseq.seq + 1
    assert second.top_via.branch != first.top_via.branch
    assert second.headers.get("Expires") == "600"


def test_proxy_challenge_answered() -> None:
    """A 407 is answered in Proxy-Authorization."""
    host, reg, _ = setup()
    carrier = Carrier()
    reg.start()
    host.last.answer(407, carrier.challenge(proxy=True))
    second = host.last.request
    assert "Authorization" not in second.headers
    assert carrier.accepts(second, "Proxy-Authorization")
    assert second.cseq.seq == 2


def test_registered_and_refreshed() -> None:
    """A 200 granting 300 s registers; the refresh goes out at 240 s (before
    expiry), as a new cycle on the same Call-ID with the next CSeq."""
    host, reg, changes = setup()
    register(host, reg, 300)
    assert reg.state == RegistrationState(True, "registered for 300 s", 300.0)
    assert changes == [reg.state]
    host.clock.advance(239)
    assert len(host.sent) == 2
    host.clock.advance(1)
    assert len(host.sent) == 3
    refresh = host.last.request
    assert refresh.call_id == reg.call_id
    assert refresh.cseq.seq == 3
    assert "Authorization" not in refresh.headers
    host.last.answer(401, Carrier().challenge())
    host.last.answer(200, ("Contact", f"{CONTACT};expires=300"))
    assert host.last.request.cseq.seq == 4
    assert reg.state == RegistrationState(True, "registered for 300 s", 540.0)
    assert len(changes) == 1, "the same outcome again is no change"


def test_refresh_delay_rule() -> None:
    """Refreshes come before expiry: half for short, 60 s before for middling,
    at most 90 % for long registrations."""
    assert refresh_delay(60) == 30
    assert refresh_delay(300) == 240
    assert refresh_delay(600) == 540
    assert refresh_delay(3600) == 3240
    for granted in (1, 10, 100, 119, 120, 121, 599, 601, 86400):
        assert 0 < refresh_delay(granted) <= 0.9 * granted


@pytest.mark.parametrize(("fields", "granted"), [
    ((("Contact", "<sip:other@192.0.2.9>;expires=100"),
      ("Contact", "<sip:trunk1@198.51.100.7:5080>;expires=120"), ("Expires", "50")), 120),
    ((("Contact", "<sip:other@192.0.2.9>;expires=100"), ("Expires", "50")), 50),
    ((), 600),
])
def test_granted_expiry(fields: tuple[tuple[str, str], ...], granted: int) -> None:
    """The lifetime is our Contact's expires, else Expires, else what we asked."""
    host, reg, _ = setup()
    reg.start()
    host.last.answer(200, *fields)
    assert reg.state == RegistrationState(True, f"registered for {granted} s", granted)


def test_wrong_password() -> None:
    """A second challenge for the same realm without stale=true means wrong
    credentials: down with that reason, no third REGISTER until the backoff,
    then a fresh cycle without credentials."""
    host, reg, changes = setup(password="wrong")
    carrier = Carrier()
    reg.start()
    host.last.answer(401, carrier.challenge())
    assert not carrier.accepts(host.last.request)
    host.last.answer(401, carrier.challenge())
    assert len(host.sent) == 2
    assert reg.state == RegistrationState(False, "wrong credentials (401)")
    assert changes == [reg.state]
    host.clock.advance(29.9)
    assert len(host.sent) == 2
    host.clock.advance(0.1)
    assert len(host.sent) == 3
    assert "Authorization" not in host.last.request.headers
    assert host.last.request.cseq.seq == 3


def test_stale_nonce_answered_again() -> None:
    """A stale=true challenge after our answer gets a new answer, but
    challenges stop being answered after MAX_AUTH_ROUNDS in one cycle."""
    host, reg, _ = setup()
    carrier = Carrier()
    reg.start()
    for _ in range(MAX_AUTH_ROUNDS):
        host.last.answer(401, carrier.challenge(stale=True))
        assert carrier.accepts(host.last.request)
    assert len(host.sent) == 1 + MAX_AUTH_ROUNDS
    host.last.answer(401, carrier.challenge(stale=True))
    assert len(host.sent) == 1 + MAX_AUTH_ROUNDS
    assert reg.state.reason == "too many challenges (401)"


def test_forbidden() -> None:
    """403 is reported as wrong credentials."""
    host, reg, _ = setup()
    reg.start()
    host.last.answer(403)
    assert reg.state == RegistrationState(False, "wrong credentials (403)")


def test_interval_too_brief() -> None:
    """423 makes the next REGISTER ask for Min-Expires at once, and later
    cycles too; a second 423 in the cycle is a failure."""
    host, reg, _ = setup(expires=60)
    reg.start()
    host.last.answer(423, ("Min-Expires", "1200"))
    assert len(host.sent) == 2
    assert host.last.request.headers.get("Expires") == "1200"
    assert host.last.request.cseq.seq == 2
    assert reg.expires == 1200
    host.last.answer(423, ("Min-Expires", "3600"))
    assert len(host.sent) == 2
    assert reg.state == RegistrationState(False, "carrier answered 423")


def test_interval_too_brief_without_min_expires() -> None:
    """A 423 without a usable Min-Expires is a failure, not a retry."""
    host, reg, _ = setup()
    reg.start()
    host.last.answer(423)
    assert len(host.sent) == 1
    assert reg.state.reason == "carrier answered 423"


def test_timeout_backs_off() -> None:
    """No response is reported as 408; retries wait 30 s doubling to 1800 s,
    and success resets the wait."""
    host, reg, changes = setup()
    reg.start()
    waits = []
    for _ in range(8):
        host.last.time_out()
        assert reg.state == RegistrationState(False, "no response (408)")
        count = len(host.sent)
        waited = 0.0
        while len(host.sent) == count:
            host.clock.advance(1)
            waited += 1
        waits.append(waited)
    assert waits == [30, 60, 120, 240, 480, 960, 1800, 1800]
    assert len(changes) == 1
    assert [s.request.cseq.seq for s in host.sent] == list(range(1, 10))
    host.last.answer(200)
    assert reg.state.registered
    host.clock.advance(540)
    host.last.time_out()
    host.clock.advance(30)
    assert len(host.sent) == 11


def test_backoff_jitter() -> None:
    """Waits are spread within ±20 % of the base, never above 1800 s × 1.2,
    and at least a Retry-After."""
    rng = random.Random(7)
    for failures, base in ((1, 30), (2, 60), (7, 1800), (30, 1800)):
        for _ in range(50):
            assert 0.8 * base <= backoff_delay(failures, rng) <= 1.2 * base
    assert backoff_delay(1, Middle(), 120) == 120
    assert backoff_delay(1, Middle(), 99999) == MAX_RETRY


def test_transport_failure_and_retry_after() -> None:
    """A transport failure is a 503 made up locally; a carrier's 503 with
    Retry-After waits that long."""
    host, reg, _ = setup()
    reg.start()
    host.last.on_event(TransportFailed(host.last))  # type: ignore[arg-type]
    assert reg.state.reason == "transport failure (503)"
    host.clock.advance(30)
    host.last.answer(503, ("Retry-After", "300 (maintenance)"))
    assert reg.state.reason == "carrier answered 503"
    host.clock.advance(299)
    assert len(host.sent) == 2
    host.clock.advance(1)
    assert len(host.sent) == 3


def test_expires_without_refresh() -> None:
    """A registration whose refresh gets no answer before expiry is reported
    down when it runs out, and the late timeout then says why."""
    host, reg, changes = setup()
    register(host, reg, 300)
    host.clock.advance(240)
    assert len(host.sent) == 3
    host.clock.advance(60)
    assert reg.state == RegistrationState(False, "registration expired")
    host.last.time_out()
    assert reg.state == RegistrationState(False, "no response (408)")
    assert [c.reason for c in changes] == ["registered for 300 s", "registration expired",
                                           "no response (408)"]


def test_stop_unregisters() -> None:
    """stop() sends one REGISTER with Expires: 0 on the same Call-ID, answers
    its challenge once, and leaves no timers."""
    host, reg, changes = setup()
    carrier = Carrier()
    register(host, reg, 300)
    reg.stop()
    assert len(host.sent) == 3
    bye = host.last.request
    assert bye.headers.get("Expires") == "0"
    assert bye.call_id == reg.call_id and bye.cseq.seq == 3
    assert bye.contacts[0].uri == CONTACT.uri
    assert host.clock.getDelayedCalls() == []
    assert reg.state == RegistrationState(False, "stopped")
    host.last.answer(401, carrier.challenge())
    assert len(host.sent) == 4
    assert carrier.accepts(host.last.request)
    assert host.last.request.headers.get("Expires") == "0"
    host.last.answer(401, carrier.challenge())
    host.last.answer(200)
    assert len(host.sent) == 4
    assert changes[-1] == RegistrationState(False, "stopped")
    reg.stop()
    assert len(host.sent) == 4


def test_stop_when_down_sends_nothing() -> None:
    """Stopping a registration that is down only cancels its retry."""
    host, reg, _ = setup()
    reg.stop()
    assert host.sent == []
    reg.start()
    host.last.answer(500)
    reg.stop()
    assert len(host.sent) == 1
    assert host.clock.getDelayedCalls() == []


def test_stale_responses_ignored() -> None:
    """A response to a REGISTER from before stop() changes nothing."""
    host, reg, _ = setup()
    reg.start()
    first = host.last
    reg.stop()
    assert len(host.sent) == 2  # outstanding: unregistered to be safe
    first.answer(200)
    assert reg.state == RegistrationState(False, "stopped")
    assert host.clock.getDelayedCalls() == []


def test_no_credentials_or_other_realm() -> None:
    """Without a user name, or with a realm the carrier does not challenge
    for, a challenge is a failure with its own reason."""
    host, reg, _ = setup(username="")
    reg.start()
    host.last.answer(401, Carrier().challenge())
    assert reg.state.reason == "carrier asks for credentials (401)"
    host, reg, _ = setup(realm="elsewhere.example")
    reg.start()
    host.last.answer(401, Carrier().challenge())
    assert reg.state.reason == "no challenge for realm 'elsewhere.example' (401)"
    assert len(host.sent) == 1
    host, reg, _ = setup(realm=REALM)
    reg.start()
    host.last.answer(401, Carrier(realm="elsewhere.example").challenge(),
                     Carrier().challenge())
    assert Carrier().accepts(host.last.request)


def test_destination_follows_failover() -> None:
    """Each cycle asks where the carrier is now; none is a failure."""
    where: list[Destination | None] = [None]
    host, reg, _ = setup(dest=lambda: where[0])
    reg.start()
    assert host.sent == []
    assert reg.state == RegistrationState(False, "no route to the carrier")
    where[0] = OTHER
    host.clock.advance(30)
    assert host.last.dest == OTHER
