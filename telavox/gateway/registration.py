"""Keeping one trunk registered with its carrier (sans-IO).

Owns :class:`RegistrationHost` (what the client needs from the SIP endpoint
it lives on), :class:`RegistrationState` (what it reports) and
:class:`TrunkRegistration` (the client), plus the timing rules
:func:`refresh_delay` and :func:`backoff_delay`.

Theory of operation (RFC 3261 §10.2 registration, §22.2/§22.3 digest,
RFC 5626 §4.5 retry timing).  A registration is a series of *cycles*; each
cycle is a fresh REGISTER without credentials and the retries it leads to:

* 401/407 is answered once per challenge with
  :func:`telavox.sip.ua.authorize` (Authorization or Proxy-Authorization),
  at most :data:`MAX_AUTH_ROUNDS` times in a cycle.  ``authorize`` declines
  a second challenge for a realm we already answered unless it is
  ``stale=true`` with a new nonce: that is a wrong password, so the cycle
  fails with "wrong credentials (401)" instead of looping.  With ``realm``
  set, only challenges of that realm are answered.
* 423 Interval Too Brief: the registration asks for ``Min-Expires`` from
  then on and the cycle sends a fresh REGISTER at once (once per cycle).
* 2xx: the granted lifetime is our Contact's ``expires`` in the 200
  (matched by URI, §19.1.4), else the Expires header, else what we asked;
  it counts from when the REGISTER was sent.  The next cycle starts after
  :func:`refresh_delay`, and a timer reports the registration down when it
  expires without a refresh having succeeded.
* Any other final response, and the 408/503 that
  :func:`~telavox.sip.transaction.client_response` makes up for a timeout
  or transport failure, fails the cycle: the registration is reported down
  with the reason and the next cycle starts after :func:`backoff_delay`
  (30 s doubling per consecutive failure up to 1800 s, ±20 % jitter, or a
  longer Retry-After).  Redirects are not followed.

Every REGISTER has the same Call-ID, From (with one tag) and To, and a CSeq
one higher than the last (§10.2).  ``stop()`` cancels the timers and, when
registered or while a REGISTER is outstanding, sends one REGISTER with
``Expires: 0`` (answering one challenge to it), reporting nothing more.

The client does no I/O and reads no clock itself: it acts through its
:class:`RegistrationHost`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

import attrs

from telavox.b2bua.leg import Cancellable
from telavox.sip.digest import parse_challenges
from telavox.sip.hdrtypes import HeaderError, NameAddr, Via
from telavox.sip.message import Request, Response, new_tag
from telavox.sip.transaction import (
    Action,
    Destination,
    TimedOut,
    TransportFailed,
    client_response,
)
from telavox.sip.ua import authorize, new_call_id, new_cnonce, new_request
from telavox.sip.uri import SipUri

__all__ = [
    "MAX_AUTH_ROUNDS",
    "MAX_RETRY",
    "MIN_RETRY",
    "RegistrationHost",
    "RegistrationState",
    "TrunkRegistration",
    "backoff_delay",
    "refresh_delay",
]

MIN_RETRY = 30.0
"""Seconds before the first retry after a failure (RFC 5626 §4.5 base time)."""
MAX_RETRY = 1800.0
"""The longest wait between retries (RFC 5626 §4.5 upper bound)."""
JITTER = 0.2
"""Retry waits are spread by ±20 %."""
MAX_AUTH_ROUNDS = 3
"""Challenges answered in one cycle (a proxy's 407 and a registrar's 401,
and a stale nonce, fit)."""

_CHALLENGE_FIELDS = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}
_ANSWER_FIELDS = ("Authorization", "Proxy-Authorization")


class RegistrationHost(Protocol):
    """What a registration needs from the SIP endpoint it lives on."""

    def send_request(self, request: Request, dest: Destination,
                     on_event: Callable[[Action], None]) -> object:
        """Start a client transaction; ``on_event`` gets its responses and
        its TimedOut/TransportFailed."""

    def via_for(self, dest: Destination) -> Via:
        """Our Via (with a fresh branch) for a request to ``dest``."""

    def call_later(self, delay: float, fn: Callable[[], object]) -> Cancellable:
        """Run ``fn`` after ``delay`` seconds."""

    def now(self) -> float:
        """The current time, seconds (the clock ``call_later`` runs on)."""


@attrs.frozen
class RegistrationState:
    """Whether the trunk is registered, and why (or why not).

    ``reason`` is text for operators: "registered for 600 s", "wrong
    credentials (403)", "no response (408)", "carrier answered 503", …;
    ``expires_at`` is when the current registration ends (host clock), None
    when not registered.
    """

    registered: bool
    reason: str
    expires_at: float | None = None


def refresh_delay(granted: float) -> float:
    """Seconds after sending a REGISTER granted ``granted`` seconds at which
    the next one is sent: half of it up to 120 s, then 60 s before expiry,
    but never later than 90 % of it (so ``min(max(g/2, g-60), 0.9 g)``:
    300 → 240, 600 → 540, 3600 → 3240)."""
    return min(max(granted / 2, granted - 60), 0.9 * granted)


def backoff_delay(failures: int, rng: random.Random,
                  retry_after: float | None = None) -> float:
    """Seconds to wait after ``failures`` (≥ 1) consecutive failed cycles:
    :data:`MIN_RETRY` doubled per earlier failure up to :data:`MAX_RETRY`,
    times a factor drawn from ``rng`` in [0.8, 1.2]; at least
    ``retry_after`` (cut to :data:`MAX_RETRY`) when the carrier sent one."""
    base = min(MIN_RETRY * 2.0 ** max(failures - 1, 0), MAX_RETRY)
    delay = base * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY))
    return delay


class TrunkRegistration:
    """Keeps ``aor`` registered at ``registrar`` with ``contact`` (see the
    module docstring for the behaviour).

    ``dest`` gives the carrier address to use for each new cycle (it may
    change on failover; None counts as a failure).  ``on_change`` is called
    with the new :class:`RegistrationState` whenever ``registered`` or
    ``reason`` changes.  ``username`` empty: challenges are not answered.
    ``realm`` empty: any realm is answered.  ``rng`` draws the retry jitter.
    """

    def __init__(
        self,
        host: RegistrationHost,
        *,
        aor: SipUri,
        registrar: SipUri,
        dest: Callable[[], Destination | None],
        contact: NameAddr,
        username: str,
        password: str,
        realm: str = "",
        expires: int = 600,
        on_change: Callable[[RegistrationState], None],
        user_agent: str = "",
        rng: random.Random | None = None,
    ) -> None:
        if expires <= 0:
            raise ValueError("expires must be a positive number of seconds")
        self._host = host
        self._registrar = registrar
        self._dest = dest
        self._contact = contact.without_param("expires")
        self._username = username
        self._password = password
        self._realm = realm
        self._expires = expires
        self._on_change = on_change
        self._user_agent = user_agent
        self._rng = rng if rng is not None else random.Random()
        self._call_id = new_call_id()
        self._from = NameAddr(uri=aor).with_tag(new_tag())
        self._to = NameAddr(uri=aor)
        self._cseq = 0
        self._state = RegistrationState(False, "not registered")
        self._running = False
        self._failures = 0
        # the REGISTER in flight, where it went, when, and what it asked for
        self._pending: Request | None = None
        self._pending_dest: Destination | None = None
        self._sent_at = 0.0
        self._asked = 0
        self._unregistering = False
        self._auth_rounds = 0
        self._interval_retried = False
        self._timer: Cancellable | None = None  # next cycle (refresh or retry)
        self._expiry: Cancellable | None = None  # the registration runs out

    @property
    def state(self) -> RegistrationState:
        """The current state."""
        return self._state

    @property
    def call_id(self) -> str:
        """The Call-ID of every REGISTER of this registration."""
        return self._call_id

    @property
    def expires(self) -> int:
        """The lifetime asked for (raised by a 423's Min-Expires)."""
        return self._expires

    def start(self) -> None:
        """Send the first REGISTER (no-op when already started)."""
        if self._running:
            return
        self._running = True
        self._unregistering = False
        self._cycle()

    def stop(self) -> None:
        """Cancel the timers and unregister (``Expires: 0``, sent once) when
        registered or while a REGISTER is outstanding; the state becomes
        "stopped".  No-op when not started."""
        if not self._running:
            return
        self._running = False
        self._cancel_timers()
        bound = self._state.registered or self._pending is not None
        self._pending = None
        if bound:
            dest = self._dest()
            if dest is not None:
                self._unregistering = True
                self._auth_rounds = MAX_AUTH_ROUNDS - 1  # one challenge answered
                self._send(self._register(0, dest), dest, 0)
        self._set(False, "stopped")

    # -- cycles ------------------------------------------------------------------

    def _cycle(self) -> None:
        """Start a cycle: a fresh REGISTER without credentials."""
        self._timer = None
        if not self._running:
            return
        self._auth_rounds = 0
        self._interval_retried = False
        self._send_fresh()

    def _send_fresh(self) -> None:
        dest = self._dest()
        if dest is None:
            self._failed("no route to the carrier")
            return
        self._send(self._register(self._expires, dest), dest, self._expires)

    def _register(self, expires: int, dest: Destination) -> Request:
        self._cseq += 1
        return new_request(
            "REGISTER", self._registrar, from_=self._from, to=self._to,
            via=self._host.via_for(dest), contact=self._contact, call_id=self._call_id,
            cseq=self._cseq, extra=(("Expires", str(expires)),),
            user_agent=self._user_agent or None)

    def _send(self, request: Request, dest: Destination, asked: int) -> None:
        self._pending = request
        self._pending_dest = dest
        self._sent_at = self._host.now()
        self._asked = asked
        self._host.send_request(request, dest, lambda event: self._on_event(request, event))

    def _on_event(self, request: Request, event: Action) -> None:
        if request is not self._pending:
            return  # a request we no longer care about (stopped, restarted)
        response = client_response(request, event)
        if response is None or response.provisional:
            return
        self._pending = None
        if response.status in _CHALLENGE_FIELDS:
            retry = self._answer(request, response)
            if isinstance(retry, Request):
                assert self._pending_dest is not None
                self._send(retry, self._pending_dest, self._asked)
                return
            if not self._unregistering:
                self._failed(retry)
            return
        if self._unregistering:
            return
        if response.success:
            self._registered(response)
        elif response.status == 423 and self._interval_too_brief(response):
            self._send_fresh()
        else:
            self._failed(_failure_reason(response, event), _retry_after(response))

    def _answer(self, request: Request, response: Response) -> Request | str:
        """The retry answering a 401/407, or why there is none."""
        status = response.status
        if not self._username:
            return f"carrier asks for credentials ({status})"
        if self._auth_rounds >= MAX_AUTH_ROUNDS:
            return f"too many challenges ({status})"
        challenged = self._in_realm(response)
        if challenged is None:
            return f"no challenge for realm {self._realm!r} ({status})"
        assert self._pending_dest is not None
        retry = authorize(request, challenged, username=self._username,
                          password=self._password, cnonce=new_cnonce(),
                          via=self._host.via_for(self._pending_dest))
        if retry is None:
            if any(name in request.headers for name in _ANSWER_FIELDS):
                return f"wrong credentials ({status})"
            return f"cannot answer the challenge ({status})"
        self._auth_rounds += 1
        self._cseq = retry.cseq.seq
        return retry

    def _in_realm(self, response: Response) -> Response | None:
        """``response`` with only the challenges of our realm (all when none
        is configured), or None when none is left."""
        if not self._realm:
            return response
        name = _CHALLENGE_FIELDS[response.status]
        values = [v for v in response.headers.get_all(name)
                  if any(c.realm == self._realm for c in parse_challenges([v]))]
        if not values:
            return None
        narrowed = response.copy()
        narrowed.headers.remove(name)
        for value in values:
            narrowed.headers.add(name, value)
        return narrowed

    def _interval_too_brief(self, response: Response) -> bool:
        """Take a 423's Min-Expires (True) unless it was done in this cycle
        or the 423 gives no usable, longer one."""
        minimum = _int_field(response, "Min-Expires")
        if self._interval_retried or minimum is None or minimum <= self._asked:
            return False
        self._interval_retried = True
        self._auth_rounds = 0
        self._expires = minimum
        return True

    def _registered(self, response: Response) -> None:
        granted = self._granted(response)
        if granted <= 0:
            self._failed("carrier granted no time (0 s)")
            return
        now = self._host.now()
        expires_at = self._sent_at + granted
        self._failures = 0
        self._cancel_timers()
        self._timer = self._host.call_later(
            max(self._sent_at + refresh_delay(granted) - now, 0.0), self._cycle)
        self._expiry = self._host.call_later(max(expires_at - now, 0.0), self._expired)
        self._set(True, f"registered for {granted} s", expires_at)

    def _granted(self, response: Response) -> int:
        """Our contact's ``expires`` in the 2xx, else Expires, else what we asked."""
        try:
            contacts = response.contacts
        except HeaderError:
            contacts = []
        for contact in contacts:
            if contact.uri.equivalent(self._contact.uri):
                value = contact.param("expires")
                if value is not None and value.isascii() and value.isdigit():
                    return int(value)
        header = _int_field(response, "Expires")
        return self._asked if header is None else header

    def _expired(self) -> None:
        self._expiry = None
        if self._state.registered:
            self._set(False, "registration expired")

    def _failed(self, reason: str, retry_after: float | None = None) -> None:
        self._cancel_timers()
        self._failures += 1
        delay = backoff_delay(self._failures, self._rng, retry_after)
        self._timer = self._host.call_later(delay, self._cycle)
        self._set(False, reason)

    # -- helpers -----------------------------------------------------------------

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._expiry):
            if timer is not None:
                timer.cancel()
        self._timer = self._expiry = None

    def _set(self, registered: bool, reason: str, expires_at: float | None = None) -> None:
        old = self._state
        self._state = RegistrationState(registered, reason, expires_at)
        if (old.registered, old.reason) != (registered, reason):
            self._on_change(self._state)


def _failure_reason(response: Response, event: Action) -> str:
    if isinstance(event, TimedOut):
        return "no response (408)"
    if isinstance(event, TransportFailed):
        return "transport failure (503)"
    if response.status == 403:
        return "wrong credentials (403)"
    return f"carrier answered {response.status}"


def _int_field(response: Response, name: str) -> int | None:
    try:
        return response.int_header(name)
    except HeaderError:
        return None


def _retry_after(response: Response) -> float | None:
    """The seconds of a Retry-After (comment and parameters ignored)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    digits = value.strip().split(";", 1)[0].split("(", 1)[0].strip()
    return float(digits) if digits.isascii() and digits.isdigit() else None
