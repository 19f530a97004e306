"""Dial from a script: Asterisk's Dial application on a script's channel.

Owns :class:`Dial`: one outgoing leg toward a dial-plan target, with its
own media endpoint bridged to the channel's once answered, and the
DIALSTATUS it ends with.

Theory of operation.  The target is routed by the SIP server's dial plan
with the caller's class of service (a user through sipproxy, an external
number through the gateways; a refusal is ``CHANUNAVAIL``).  While it
rings the caller hears ringback (a 180) or the callee's early media (a
183 with SDP: the endpoints are connected at once).  The answer connects
the endpoints; the dial then lasts until either side hangs up, and ends
``ANSWER``.  A busy callee ends ``BUSY``; no answer in ``timeout``
seconds (the leg is cancelled) or a 408/480/487 ``NOANSWER``; 5xx
``CONGESTION``; other refusals ``CHANUNAVAIL``; the caller hanging up
first ``CANCEL``.  In-dialog requests from the callee (hold, resume) are
answered from its endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from telavox.b2bua.leg import IncomingLeg, Leg, OutgoingLeg
from telavox.interfaces import MediaError
from telavox.records import MediaEndpoint
from telavox.sip.message import Request, Response
from telavox.sip.transaction import ServerTransaction
from telavox.tproxy.call import place_b_leg
from telavox.tproxy.dialplan import Route, RouteKind
from telavox.tproxy.media import (
    LocalSession,
    SdpProblemError,
    answer_offer,
    parse_body,
    remote_from_answer,
)

__all__ = ["Dial", "DialGroup", "dial_status"]


def dial_status(status: int) -> str:
    """Asterisk's DIALSTATUS for a final SIP ``status`` of the callee."""
    if status in (486, 600):
        return "BUSY"
    if status in (408, 480, 487):
        return "NOANSWER"
    if 500 <= status < 600:
        return "CONGESTION"
    return "CHANUNAVAIL"


class Dial:
    """One Dial (see the module docstring).  ``channel`` is the script's
    :class:`~telavox.tproxy.script.ScriptChannel`; :attr:`done` fires with
    the DIALSTATUS."""

    log = Logger()

    def __init__(self, channel: Any, route: Route, timeout: float,
                 claim: Callable[[Dial], bool] | None = None) -> None:
        self.channel = channel
        self.host = channel.host
        self.route = route
        self.timeout = timeout
        self.claim = claim
        """For a dial among several: asked on an answer, False when another
        dial won (the answer is then hung up); early media is not taken."""
        self.done: defer.Deferred[str] = defer.Deferred()
        self.leg: OutgoingLeg | None = None
        self.endpoint: MediaEndpoint | None = None
        self.session: LocalSession | None = None
        self.answered = False
        self.connected = False
        self._timer: Any = None

    def start(self) -> defer.Deferred[str]:
        """Route, allocate the callee's endpoint and send the INVITE."""
        route = self.route
        if route.kind is RouteKind.REJECT or route.kind is RouteKind.SCRIPT:
            self.log.info("{channel}: Dial({target}) refused: {status} {reason}",
                          channel=self.channel.name, target=route.target,
                          status=route.status, reason=route.reason)
            return self._finish("CHANUNAVAIL")
        dests = self.host.route_destinations(route)
        if not dests:
            return self._finish("CHANUNAVAIL")

        def allocated(endpoint: MediaEndpoint) -> None:
            self.endpoint = endpoint
            if self.done.called or self.channel.ended:
                self._release()
                return
            self.leg, self.session = place_b_leg(
                self.host, self, route, dests[0], endpoint, caller_user=self.channel.caller_id,
                display_name=None if self.channel.caller_name == "unknown"
                else self.channel.caller_name, codec=self.channel.codec)
            if self.timeout > 0:
                self._timer = self.host.call_later(self.timeout, self._no_answer)

        def failed(failure: Any) -> None:
            if not failure.check(MediaError):
                self.log.failure("{channel}: Dial failed", failure, channel=self.channel.name)
            self._finish("CONGESTION")

        self.host.media.allocate(self.channel.call_id, ("audio",)).addCallbacks(
            allocated, failed)
        return self.done

    def cancel(self) -> None:
        """Another dial won: stop ringing this one."""
        if self.leg is not None and not self.leg.ended and not self.answered:
            self.leg.abandon("answered elsewhere")
        if not self.answered:
            self._finish("CANCEL")

    def caller_gone(self) -> None:
        """The script's caller hung up: end the callee's side."""
        if self.leg is not None and not self.leg.ended:
            self.leg.abandon("caller hung up")
        self._finish("ANSWER" if self.answered else "CANCEL")

    # -- what the leg reports -------------------------------------------------------------

    def leg_provisional(self, leg: OutgoingLeg, response: Response) -> None:
        if self.done.called:
            return
        if response.body and self.claim is None and self._connect(response.body):
            return
        if response.status == 180:
            self.channel.play_tone("ring").addErrback(lambda f: None)

    def leg_answered(self, leg: OutgoingLeg, response: Response) -> None:
        if self.done.called or (self.claim is not None and not self.claim(self)):
            leg.hangup("not wanted")
            self._finish("CANCEL")
            return
        self._stop_timer()
        if not self._connect(response.body):
            leg.hangup("unusable SDP")
            self._finish("CHANUNAVAIL")
            return
        self.answered = True
        # Dial answers the caller when the callee answers
        self.channel.answer().addErrback(lambda f: None)

    def leg_failed(self, leg: OutgoingLeg, response: Response) -> None:
        self._stop_timer()
        self._finish(dial_status(response.status))

    def leg_ended(self, leg: Leg, reason: str) -> None:
        self._finish("ANSWER" if self.answered else "CANCEL")

    def leg_confirmed(self, leg: IncomingLeg) -> None:
        pass

    def leg_cancelled(self, leg: IncomingLeg) -> None:
        pass

    def leg_acked(self, leg: Leg, ack: Request) -> None:
        """Nothing to do: re-INVITEs are answered from the callee's endpoint."""

    def leg_request(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        endpoint, session = self.endpoint, self.session
        if request.method in ("INVITE", "UPDATE") and endpoint and session and request.body:
            try:
                via = request.top_via
                body, streams, _ = answer_offer(parse_body(request.body), endpoint, session,
                                                via.param("received") or via.host)
            except SdpProblemError as e:
                leg.respond(request, txn, e.status, e.reason)
                return
            self.host.media.set_remote(endpoint.endpoint_id, streams)
            leg.respond(request, txn, 200, body=body, content_type="application/sdp")
        elif request.method in ("INFO", "OPTIONS"):
            leg.respond(request, txn, 200)
        else:
            leg.respond(request, txn, 501)

    # -- media and the end ------------------------------------------------------------------

    def _connect(self, body: bytes) -> bool:
        """Take the callee's answer and bridge the two endpoints."""
        if self.connected:
            return True
        endpoint, session, mine = self.endpoint, self.session, self.channel.endpoint
        if endpoint is None or session is None or mine is None or not body:
            return False
        try:
            streams = remote_from_answer(session, body, None, endpoint)
        except SdpProblemError as e:
            self.log.info("{channel}: unusable answer from {target}: {reason}",
                          channel=self.channel.name, target=self.route.target,
                          reason=e.reason)
            return False
        media = self.host.media
        media.set_remote(endpoint.endpoint_id, streams)
        self.channel.stop_tone()
        media.connect(mine.endpoint_id, endpoint.endpoint_id)
        self.connected = True
        return True

    def _no_answer(self) -> None:
        self._timer = None
        if self.leg is not None and not self.answered:
            self.leg.abandon("no answer")
            self._finish("NOANSWER")

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _finish(self, status: str) -> defer.Deferred[str]:
        if not self.done.called:
            self._stop_timer()
            if self.leg is not None:
                self.host.unregister_leg(self.leg)
            self._release()
            self.done.callback(status)
        return self.done

    def _release(self) -> None:
        mine = self.channel.endpoint
        if self.connected and mine is not None:
            self.host.media.disconnect(mine.endpoint_id).addErrback(lambda f: None)
        if self.endpoint is not None:
            self.host.media.release(self.endpoint.endpoint_id).addErrback(lambda f: None)
            self.endpoint = None
        self.connected = False


class DialGroup:
    """Several dials at once (Asterisk's ``Dial(SIP/a&SIP/b)``): the first
    to answer wins and the others are cancelled.  :attr:`done` fires with
    the winner's DIALSTATUS, or, when none answered, NOANSWER if any rang
    out, BUSY if all were busy, else CONGESTION or CHANUNAVAIL."""

    def __init__(self, channel: Any, routes: list[Route], timeout: float) -> None:
        self.dials = [Dial(channel, route, timeout, claim=self._claim) for route in routes]
        self.winner: Dial | None = None
        self.done: defer.Deferred[str] = defer.Deferred()
        self._statuses: list[str] = []

    def start(self) -> defer.Deferred[str]:
        """Ring every member."""
        for dial in self.dials:
            dial.start().addCallback(self._ended, dial)
        return self.done

    def _claim(self, dial: Dial) -> bool:
        if self.winner is not None:
            return False
        self.winner = dial
        for other in self.dials:
            if other is not dial:
                other.cancel()
        return True

    def _ended(self, status: str, dial: Dial) -> None:
        if dial is self.winner:
            if not self.done.called:
                self.done.callback(status)
            return
        self._statuses.append(status)
        if self.winner is None and len(self._statuses) == len(self.dials):
            self.done.callback(_group_status(self._statuses))

    def caller_gone(self) -> None:
        """The script's caller hung up: end every member."""
        for dial in self.dials:
            dial.caller_gone()


def _group_status(statuses: list[str]) -> str:
    if "NOANSWER" in statuses:
        return "NOANSWER"
    if all(s == "BUSY" for s in statuses):
        return "BUSY"
    if "CONGESTION" in statuses:
        return "CONGESTION"
    if "CANCEL" in statuses:
        return "CANCEL"
    return "CHANUNAVAIL"
