"""A call routed to a script: the caller's leg and one media endpoint, as
the scriptserver drives them.

Owns :class:`ScriptChannel`, tproxy's :class:`~telavox.interfaces.IChannel`
(and the :class:`~telavox.b2bua.leg.LegListener` of the caller's leg).

Theory of operation.  The caller's offer is answered from one mediaserver
endpoint as soon as it exists (a bad offer is refused 488/400 before any
script runs); the answer is sent when the script answers.  The channel is
then what AGI calls a channel: plays go to the mediaserver and end on its
``play_done`` event or on an escape digit; digits come from the
mediaserver (RFC 4733 events, in-band tones) and from SIP INFO
(``application/dtmf-relay`` and ``application/dtmf``), in arrival order,
and wait in a queue until an operation takes them; recordings are mono
files of what the caller says.  The caller hanging up fails every pending
and later operation with :class:`~telavox.interfaces.ChannelHungUp`; the
script finishing hangs up a channel that is still up.  Every way the call
ends goes through :meth:`ScriptChannel.end`: the endpoint is released and
one CDR written.
"""

from __future__ import annotations

import collections
import itertools
import re
import time
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from telavox.b2bua.endpoint import let_go
from telavox.b2bua.leg import IncomingLeg, Leg, OutgoingLeg
from telavox.config.model import UserConfig
from telavox.interfaces import ChannelHungUp, IChannel, IScriptServer, MediaError
from telavox.records import CdrRecord, MediaEndpoint, MediaEvent, PlaySource, new_correlation_id
from telavox.sip.hdrtypes import NameAddr
from telavox.sip.message import Request, Response
from telavox.sip.transaction import ServerTransaction
from telavox.sip.uri import SipUri
from telavox.tproxy.dial import Dial, DialGroup
from telavox.tproxy.media import (
    LocalSession,
    SdpProblemError,
    answer_offer,
    make_offer,
    parse_body,
    remote_from_answer,
)

__all__ = ["DIGITS", "ScriptChannel"]

DIGITS = frozenset("0123456789*#ABCD")
"""The DTMF digits a channel knows."""
_counter = itertools.count(1)
_RELAY_SIGNAL = re.compile(rb"^\s*Signal\s*=\s*([0-9*#A-Da-d])", re.MULTILINE)


_STATES = {"ringing": 4, "up": 6, "down": 0}
"""Channel states as AGI's CHANNEL STATUS numbers them."""


@implementer(IChannel)
class ScriptChannel:
    """A call to a script (see the module docstring).  ``host`` is the SIP
    server (a :class:`~telavox.tproxy.call.CallHost`); ``scripts`` runs the
    script named ``app`` with ``args``."""

    log = Logger()

    def __init__(self, host: Any, a_leg: IncomingLeg | OutgoingLeg, caller: UserConfig | None,
                 caller_uri: NameAddr, dialled: str, app: str, args: Sequence[str],
                 scripts: IScriptServer, call_id: str | None = None) -> None:
        self.host = host
        self.a = a_leg
        a_leg.listener = self
        a_leg.user_data = self
        self.scripts = scripts
        self.app = app
        self.args = tuple(args)
        uri = caller_uri.uri
        number = caller.extension if caller is not None else (
            uri.user if isinstance(uri, SipUri) and uri.user else "")
        self.caller_id = number or "unknown"
        self.caller_name = (caller.name if caller is not None and caller.name
                            else caller_uri.display_name or "unknown")
        self.extension = dialled
        self.callee = dialled
        self.context = "default"
        self.language = "en"
        self.variables: dict[str, str] = {}
        invite = a_leg.invite
        self.call_id = call_id or (a_leg.dialog.call_id if a_leg.dialog is not None
                                   else invite.call_id if invite is not None else "")
        """What the call is known by: its INVITE's Call-ID, or for a party
        handed over from a call, that call's (its media endpoint's owner,
        under which media events arrive)."""
        self.correlation_id = new_correlation_id()
        sequence = next(_counter)
        self.name = f"SIP/{self.caller_id}-{sequence:08x}"
        self.start_time = time.time()
        self.unique_id = f"{int(self.start_time)}.{sequence}"
        self.answer_time: float | None = None
        self.hung_up: defer.Deferred[None] = defer.Deferred()
        self.state_name = "ringing"
        self.endpoint: MediaEndpoint | None = None
        self.session = LocalSession(host.media_address)
        self.a_answer = b""
        """Our SDP for the caller: the answer to its offer, or our offer
        when its INVITE had none (``late_offer``: the answer is in its ACK)."""
        self.late_offer = False
        self.codec = ""
        self._answering: list[defer.Deferred[None]] | None = None
        """Who waits for the caller's ACK once our 200 is sent (None: not sent)."""
        self._digits: collections.deque[str] = collections.deque()
        self._digit_wait: tuple[defer.Deferred[str], frozenset[str] | None, Any] | None = None
        self._play_wait: defer.Deferred[str] | None = None
        self._escape: frozenset[str] = frozenset()
        """The digits that end the play in progress."""
        self._recording: tuple[defer.Deferred[str], frozenset[str], Any] | None = None
        self._recording_id = ""
        self._dial: Dial | DialGroup | None = None
        self.caller = caller
        self._ended = False

    def __repr__(self) -> str:
        return f"<ScriptChannel {self.name} {self.app} {self.state_name}>"

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Answer the caller's offer from a new endpoint, then run the script."""
        leg = self.a
        assert isinstance(leg, IncomingLeg), "a call to a script starts with its INVITE"
        self.host.register_leg(leg)
        try:
            offer = parse_body(leg.remote_sdp) if leg.remote_sdp else None
        except SdpProblemError as e:
            self._refuse(e.status, e.reason)
            return

        def allocated(endpoint: MediaEndpoint) -> None:
            self.endpoint = endpoint
            if self._ended:
                self._release()
                return
            if offer is None:
                # a late offer (RFC 3261 §13.2.1): ours goes in the 200, the
                # caller answers in its ACK
                self.late_offer = True
                self.a_answer = make_offer(endpoint, self.session)
                leg.provisional(180)
                self._run_script()
                return
            via = leg.invite.top_via
            try:
                body, streams, codec = answer_offer(offer, endpoint, self.session,
                                                    via.param("received") or via.host)
            except SdpProblemError as e:
                self._refuse(e.status, e.reason)
                return
            self.a_answer, self.codec = body, codec
            self.host.media.set_remote(endpoint.endpoint_id, streams)
            leg.provisional(180)
            self._run_script()

        def failed(failure: Any) -> None:
            error = failure.value
            if isinstance(error, MediaError):
                self._refuse(error.status, f"Service Unavailable ({error.reason})")
            else:
                self.log.failure("{channel}: setup failed", failure, channel=self.name)
                self._refuse(500, "Server Internal Error")

        self.host.media.allocate(self.call_id, ("audio",)).addCallbacks(allocated, failed)

    def adopt(self, endpoint: MediaEndpoint, session: LocalSession, answer: bytes,
              codec: str, *, late_offer: bool = False, answered: bool = False) -> None:
        """Take over a call's party (a caller forwarded to a script, e.g.
        voicemail when nobody answers; with ``answered``, a party already in
        an answered dialog, e.g. transferred to an IVR): its endpoint,
        session and answer (our offer, with ``late_offer``), as they are;
        then run the script."""
        self.host.register_leg(self.a)
        self.endpoint, self.session, self.a_answer, self.codec = (endpoint, session, answer,
                                                                   codec)
        self.late_offer = late_offer
        if answered:
            self.state_name = "up"
            self.answer_time = time.time()
        self._run_script()

    def _run_script(self) -> None:
        d = defer.maybeDeferred(self.scripts.run, self.app, self, self.args)
        d.addErrback(lambda f: self.log.failure("{channel}: script {app} failed", f,
                                                channel=self.name, app=self.app))
        d.addBoth(self._script_done)

    def _script_done(self, _: object) -> None:
        if not self._ended:
            self.hangup_now("script finished")

    def _refuse(self, status: int, reason: str) -> None:
        if isinstance(self.a, IncomingLeg):
            self.a.reject(status, reason)
        else:
            self.a.hangup(reason)
        self.end(f"{status} {reason}")

    # -- IChannel ---------------------------------------------------------------------------

    def state(self) -> int:
        return _STATES[self.state_name]

    def _check(self) -> None:
        if self._ended:
            raise ChannelHungUp(self.name)

    def answer(self) -> defer.Deferred[None]:
        if self._ended:
            return defer.fail(ChannelHungUp(self.name))
        if self.state_name == "up":
            return defer.succeed(None)
        if self._answering is None:
            if not isinstance(self.a, IncomingLeg):
                return defer.succeed(None)  # an adopted party is answered already
            self._answering = []
            self.a.answer(self.a_answer)
        d: defer.Deferred[None] = defer.Deferred()
        self._answering.append(d)
        return d

    def hangup(self) -> defer.Deferred[None]:
        self.hangup_now("script hung up")
        return defer.succeed(None)

    def hangup_now(self, reason: str) -> None:
        """End the call from here."""
        if self._ended:
            return
        if isinstance(self.a, IncomingLeg) and self.a.state.value == "proceeding":
            self.a.reject(480, "Temporarily Unavailable")
        else:
            self.a.hangup(reason)
        self.end(reason)

    def play(self, paths: Sequence[str], escape_digits: str = "") -> defer.Deferred[str]:
        return defer.ensureDeferred(self._play(list(paths), frozenset(escape_digits)))

    async def _play(self, paths: list[str], escape: frozenset[str]) -> str:
        await self.answer()
        for path in paths:
            digit = self._take_digit(escape)
            if digit:
                return digit
            self._check()
            done: defer.Deferred[str] = defer.Deferred()
            self._play_wait = done
            self._escape = escape
            assert self.endpoint is not None
            try:
                await self.host.media.play(self.endpoint.endpoint_id, PlaySource(path=path))
            except MediaError as e:
                self._play_wait = None
                self.log.warn("{channel}: cannot play {path}: {reason}", channel=self.name,
                              path=path, reason=e.reason)
                continue
            digit = await done
            if digit:
                return digit
        return ""

    def play_tone(self, tone: str) -> defer.Deferred[None]:
        if self._ended or self.endpoint is None:
            return defer.fail(ChannelHungUp(self.name))
        source = PlaySource(tone=tone, loop=True)
        return self.host.media.play(self.endpoint.endpoint_id, source).addCallback(
            lambda _: None)

    def stop_tone(self) -> defer.Deferred[None]:
        if self._ended or self.endpoint is None:
            return defer.succeed(None)
        return self.host.media.stop_play(self.endpoint.endpoint_id).addCallback(lambda _: None)

    def wait_digit(self, timeout: float) -> defer.Deferred[str]:
        if self._ended:
            return defer.fail(ChannelHungUp(self.name))
        digit = self._take_digit(None)
        if digit:
            return defer.succeed(digit)
        d: defer.Deferred[str] = defer.Deferred()
        timer = self.host.call_later(timeout, self._digit_timeout) if timeout >= 0 else None
        self._digit_wait = (d, None, timer)
        return d

    def _digit_timeout(self) -> None:
        wait, self._digit_wait = self._digit_wait, None
        if wait is not None:
            wait[0].callback("")

    def record(self, path: str, escape_digits: str = "", timeout: float = -1.0,
               silence: float = 0.0, beep: bool = False) -> defer.Deferred[str]:
        return defer.ensureDeferred(self._record(path, frozenset(escape_digits), timeout,
                                                 beep))

    async def _record(self, path: str, escape: frozenset[str], timeout: float,
                      beep: bool) -> str:
        await self.answer()
        if beep:
            await self._beep()
        self._check()
        assert self.endpoint is not None
        self._recording_id = await self.host.media.record(self.endpoint.endpoint_id, path,
                                                          received_only=True)
        done: defer.Deferred[str] = defer.Deferred()
        timer = (self.host.call_later(timeout, lambda: self._record_stop(""))
                 if timeout >= 0 else None)
        self._recording = (done, escape, timer)
        digit = self._take_digit(escape)
        if digit:
            self._record_stop(digit)
        return await done

    async def _beep(self) -> None:
        assert self.endpoint is not None
        done: defer.Deferred[str] = defer.Deferred()
        self._play_wait = done
        self._escape = frozenset()
        await self.host.media.play(self.endpoint.endpoint_id, PlaySource(tone="!1000/250"))
        await done

    def _record_stop(self, digit: str) -> None:
        recording, self._recording = self._recording, None
        if recording is None:
            return
        done, _, timer = recording
        if timer is not None and timer.active():
            timer.cancel()
        recording_id, self._recording_id = self._recording_id, ""

        def finished(_: object) -> None:
            if not done.called:
                done.callback(digit)

        self.host.media.stop_record(recording_id).addBoth(finished)

    def send_digits(self, digits: str) -> defer.Deferred[None]:
        if self._ended or self.endpoint is None:
            return defer.fail(ChannelHungUp(self.name))
        return self.host.media.play(self.endpoint.endpoint_id,
                                    PlaySource(digits=digits)).addCallback(lambda _: None)

    def echo(self, escape_digits: str = "#") -> defer.Deferred[str]:
        return defer.ensureDeferred(self._echo(frozenset(escape_digits)))

    async def _echo(self, escape: frozenset[str]) -> str:
        await self.answer()
        self._check()
        assert self.endpoint is not None
        endpoint_id = self.endpoint.endpoint_id
        self.host.media.connect(endpoint_id, endpoint_id)
        try:
            while True:
                digit = await self.wait_digit(-1)
                if digit in escape:
                    return digit
        finally:
            if self.endpoint is not None:
                self.host.media.disconnect(endpoint_id).addErrback(lambda f: None)

    def conference(self, room: str, muted: bool = False, leave_digits: str = "#",
                   mute_digits: str = "*") -> defer.Deferred[str]:
        return defer.ensureDeferred(self._conference(room, muted, frozenset(leave_digits),
                                                     frozenset(mute_digits)))

    async def _conference(self, room: str, muted: bool, leave: frozenset[str],
                          mute: frozenset[str]) -> str:
        await self.answer()
        self._check()
        assert self.endpoint is not None
        endpoint_id = self.endpoint.endpoint_id
        media = self.host.media
        room_id = f"{self.host.name}/{room}"
        await media.join_room(room_id, endpoint_id, muted)
        try:
            while True:
                digit = await self.wait_digit(-1)
                if digit in leave:
                    return digit
                if digit in mute:
                    muted = not muted
                    await media.mute(endpoint_id, muted)
        finally:
            if self.endpoint is not None:
                media.leave_room(endpoint_id).addErrback(lambda f: None)

    def dial(self, target: str, timeout: float) -> defer.Deferred[str]:
        if self._ended:
            return defer.fail(ChannelHungUp(self.name))
        if self._dial is not None:
            return defer.succeed("CHANUNAVAIL")
        seconds = timeout if timeout > 0 else self.host.no_answer_timeout
        targets = [t for t in target.split("&") if t]
        if not targets:
            return defer.succeed("CHANUNAVAIL")
        routes = [self.host.route(self.caller, t) for t in targets]
        dial: Dial | DialGroup = (Dial(self, routes[0], seconds) if len(routes) == 1
                                  else DialGroup(self, routes, seconds))
        self._dial = dial

        def done(status: str) -> str:
            self._dial = None
            self.log.info("{channel}: Dial({target}) ended {status}", channel=self.name,
                          target=target, status=status)
            return status

        return dial.start().addCallback(done)

    @property
    def ended(self) -> bool:
        """The call is over."""
        return self._ended

    def set_caller_id(self, number: str, name: str = "") -> None:
        self.caller_id = number
        if name:
            self.caller_name = name

    # -- digits and media events -------------------------------------------------------------

    def _take_digit(self, accept: frozenset[str] | None) -> str:
        """The first queued digit when it is accepted (any with None); a
        queued digit that is not accepted is dropped, as Asterisk does."""
        while self._digits:
            digit = self._digits.popleft()
            if accept is None or digit in accept:
                return digit
        return ""

    def digit(self, digit: str) -> None:
        """A digit from the caller (any source)."""
        digit = digit.upper()
        if digit not in DIGITS or self._ended:
            return
        wait = self._digit_wait
        if wait is not None:
            self._digit_wait = None
            d, _, timer = wait
            if timer is not None and timer.active():
                timer.cancel()
            d.callback(digit)
            return
        play = self._play_wait
        if play is not None:
            # Asterisk drops the digits a stream does not stop on
            if digit in self._escape:
                self._play_wait = None
                if self.endpoint is not None:
                    self.host.media.stop_play(self.endpoint.endpoint_id).addErrback(
                        lambda f: None)
                play.callback(digit)
            return
        recording = self._recording
        if recording is not None:
            if digit in recording[1]:
                self._record_stop(digit)
            return
        self._digits.append(digit)

    def media_event(self, event: MediaEvent) -> None:
        """What the mediaserver saw on this call's endpoint."""
        if event.kind == "dtmf":
            self.digit(event.digit)
        elif event.kind == "play_done":
            play, self._play_wait = self._play_wait, None
            if play is not None and not play.called:
                play.callback("")
        elif event.kind == "inactive":
            self.log.info("{channel}: ended: no RTP", channel=self.name)
            self.hangup_now("RTP timeout")

    # -- what the leg reports ---------------------------------------------------------------

    def leg_provisional(self, leg: OutgoingLeg, response: Response) -> None:
        pass

    def leg_answered(self, leg: OutgoingLeg, response: Response) -> None:
        pass

    def leg_failed(self, leg: OutgoingLeg, response: Response) -> None:
        pass

    def leg_confirmed(self, leg: IncomingLeg) -> None:
        if self._ended:
            return
        if self.late_offer and not self._late_answer(leg):
            return
        self.state_name = "up"
        self.answer_time = time.time()
        answering, self._answering = self._answering or [], None
        for d in answering:
            d.callback(None)

    def _late_answer(self, leg: IncomingLeg) -> bool:
        """The caller's answer (in the ACK) to the offer of our 200; False
        (and the call hung up) when it is missing or unusable."""
        self.late_offer = False
        endpoint = self.endpoint
        via = leg.invite.top_via
        try:
            if endpoint is None or not leg.remote_sdp:
                raise SdpProblemError(488, "no SDP in the ACK")
            streams = remote_from_answer(self.session, leg.remote_sdp,
                                         via.param("received") or via.host, endpoint)
        except SdpProblemError as e:
            self.log.info("{channel}: unusable answer in the caller's ACK: {reason}",
                          channel=self.name, reason=e.reason)
            self.hangup_now("bad SDP in ACK")
            return False
        self.host.media.set_remote(endpoint.endpoint_id, streams)
        if streams and streams[0].formats:
            self.codec = streams[0].formats[0].name
        return True

    def leg_cancelled(self, leg: IncomingLeg) -> None:
        self.end("caller cancelled", disposition="cancelled")

    def leg_ended(self, leg: Leg, reason: str) -> None:
        self.end(f"caller: {reason}")

    def leg_acked(self, leg: Leg, ack: Request) -> None:
        """Nothing to do: a re-INVITE was answered from our endpoint."""

    def leg_request(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        method = request.method
        if method == "INFO":
            digit = _info_digit(request)
            if digit is None:
                leg.respond(request, txn, 415, "Unsupported Media Type",
                            extra=(("Accept", "application/dtmf-relay, application/dtmf"),))
                return
            leg.respond(request, txn, 200)
            self.digit(digit)
        elif method in ("INVITE", "UPDATE"):
            self._session_change(leg, request, txn)
        elif method == "OPTIONS":
            leg.respond(request, txn, 200)
        else:
            leg.respond(request, txn, 501)

    def _session_change(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        endpoint = self.endpoint
        if endpoint is None:
            leg.respond(request, txn, 500, "Server Internal Error (no media)")
            return
        if not request.body:
            leg.respond(request, txn, 200, body=self.a_answer, content_type="application/sdp")
            return
        try:
            offer = parse_body(request.body)
            via = request.top_via
            body, streams, _ = answer_offer(offer, endpoint, self.session,
                                            via.param("received") or via.host)
        except SdpProblemError as e:
            leg.respond(request, txn, e.status, e.reason)
            return
        self.a_answer = body
        self.host.media.set_remote(endpoint.endpoint_id, streams)
        leg.respond(request, txn, 200, body=body, content_type="application/sdp")

    # -- the end ----------------------------------------------------------------------------

    def end(self, reason: str, *, disposition: str = "") -> None:
        """Release the media, fail what waits, write the CDR (once)."""
        if self._ended:
            return
        self._ended = True
        self.state_name = "down"
        if self._dial is not None:
            self._dial.caller_gone()
        self._release()
        self.host.unregister_leg(self.a)
        let_go(self, self.a)
        for waiter in self._waiters():
            if not waiter.called:
                waiter.errback(ChannelHungUp(self.name))
        if not self.hung_up.called:
            self.hung_up.callback(None)
        cdr = CdrRecord(
            correlation_id=self.correlation_id, call_id=self.call_id, caller=self.caller_id,
            callee=self.callee, start_time=self.start_time, answer_time=self.answer_time,
            end_time=time.time(),
            disposition="answered" if self.answer_time else (disposition or "failed"),
            codec=self.codec, sip_server=self.host.name, hangup_cause=reason)
        self.host.call_ended(self, cdr)

    def _waiters(self) -> list[defer.Deferred[Any]]:
        out: list[defer.Deferred[Any]] = []
        if self._answering is not None:
            out.extend(self._answering)
            self._answering = None
        if self._digit_wait is not None:
            d, _, timer = self._digit_wait
            if timer is not None and timer.active():
                timer.cancel()
            out.append(d)
            self._digit_wait = None
        if self._play_wait is not None:
            out.append(self._play_wait)
            self._play_wait = None
        if self._recording is not None:
            done, _, timer = self._recording
            if timer is not None and timer.active():
                timer.cancel()
            out.append(done)
            self._recording = None
        return out

    def _release(self) -> None:
        if self.endpoint is not None:
            self.host.media.release(self.endpoint.endpoint_id).addErrback(lambda f: None)
            self.endpoint = None


def _info_digit(request: Request) -> str | None:
    """The digit of a SIP INFO (``application/dtmf-relay``: ``Signal=5``;
    ``application/dtmf``: ``5``), or None when it carries none."""
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    body = request.body
    if content_type == "application/dtmf-relay":
        match = _RELAY_SIGNAL.search(body)
        return match.group(1).decode().upper() if match else None
    if content_type == "application/dtmf":
        text = body.decode("ascii", "replace").strip().upper()
        return text if len(text) == 1 and text in DIGITS else None
    return None

