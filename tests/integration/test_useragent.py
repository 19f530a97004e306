"""Two user agents on real endpoints over loopback (UDP and TCP): a call from
INVITE to BYE, CANCEL, rejection, OPTIONS, 481 for unknown dialogs, and
digest retries against a small in-test registrar and a challenging callee."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest
from zope.interface import implementer

from telavox.sip.digest import DigestServer, VerdictKind, ha1, parse_credentials
from telavox.sip.message import Request, Response, new_tag
from telavox.sip.transaction import Destination, RequestIn
from telavox.sip.ua import new_request, uas_response
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler
from telavox.transport.useragent import Call, CallError, Identity, UserAgent

pytestmark = pytest.mark.integration

SECRET = b"integration-secret-0123456789"
REALM = "example.test"
PASSWORD = "s3cret"
ALICE_SDP = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n" \
            b"t=0 0\r\nm=audio 49170 RTP/AVP 0\r\n"
BOB_SDP = ALICE_SDP.replace(b"alice", b"bob").replace(b"49170", b"3456")
TIMEOUT = 5.0


def wait(d: defer.Deferred[Any]) -> defer.Deferred[Any]:
    """``d`` bounded in time, so a lost message fails the test instead of hanging it."""
    return d.addTimeout(TIMEOUT, reactor)


def challenge_values(server: DigestServer, stale: bool = False) -> list[str]:
    return server.challenge(reactor.seconds(), stale=stale)


def check(server: DigestServer, value: str | None, request: Request) -> VerdictKind | None:
    """The verdict on the credentials in ``value`` (None when there are none)."""
    if value is None:
        return None
    creds = parse_credentials(value)
    if creds.uri != request.uri_text:
        return VerdictKind.BAD_RESPONSE
    stored = ha1(creds.username, REALM, PASSWORD, creds.algorithm)
    return server.verify(creds, request.method, stored, reactor.seconds()).kind


@implementer(ISipHandler)
class Registrar:
    """Accepts REGISTER only with credentials DigestServer verifies."""

    def __init__(self) -> None:
        self.digest = DigestServer(SECRET, REALM)
        self.seen: list[Request] = []
        self.verdicts: list[VerdictKind | None] = []
        self.bindings: dict[str, str] = {}

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        request = event.request
        self.seen.append(request)
        verdict = check(self.digest, request.headers.get("Authorization"), request)
        self.verdicts.append(verdict)
        if verdict is VerdictKind.OK:
            contact = request.headers.get("Contact") or ""
            self.bindings[str(request.to.uri)] = contact
            expires = request.headers.get("Expires") or "3600"
            endpoint.reply(event, 200, to_tag=new_tag(),
                           extra=(("Contact", f"{contact};expires={expires}"),))
            return
        stale = verdict is VerdictKind.STALE
        endpoint.reply(event, 401, to_tag=new_tag(), extra=tuple(
            ("WWW-Authenticate", v) for v in challenge_values(self.digest, stale)))

    def handle_ack(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to do."""

    def handle_stray_response(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to do."""

    def handle_server_failure(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to do."""


@implementer(ISipHandler)
class ForkingCallee:
    """Answers an INVITE with two 200s of different To tags, as two UASs behind
    a forking proxy would; records ACKs and answers BYEs."""

    def __init__(self) -> None:
        self.contact = ""
        self.acks: list[Request] = []
        self.byes: list[Request] = []
        self.bye_seen: defer.Deferred[None] = defer.Deferred()

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        request = event.request
        if request.method == "INVITE":
            for tag in ("fork-a", "fork-b"):
                endpoint.respond(event.txn, uas_response(
                    request, 200, to_tag=tag, contact=self.contact, body=BOB_SDP,
                    content_type="application/sdp"))
        elif request.method == "BYE":
            self.byes.append(request)
            endpoint.reply(event, 200)
            if not self.bye_seen.called:
                self.bye_seen.callback(None)
        else:
            endpoint.reply(event, 405)

    def handle_ack(self, endpoint: SipEndpoint, event: Any) -> None:
        self.acks.append(event.request)

    def handle_stray_response(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to do."""

    def handle_server_failure(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to do."""


class GuardedUserAgent(UserAgent):
    """A callee that answers a first INVITE with 407 and records ACKs."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.digest = DigestServer(SECRET, REALM)
        self.verdicts: list[VerdictKind | None] = []
        self.acks: list[Request] = []

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        request = event.request
        if request.method == "INVITE" and not request.to_tag:
            verdict = check(self.digest, request.headers.get("Proxy-Authorization"), request)
            self.verdicts.append(verdict)
            if verdict is not VerdictKind.OK:
                endpoint.reply(event, 407, to_tag=new_tag(), extra=tuple(
                    ("Proxy-Authenticate", v) for v in challenge_values(self.digest)))
                return
        super().handle_request(endpoint, event)

    def handle_ack(self, endpoint: SipEndpoint, event: Any) -> None:
        self.acks.append(event.request)
        super().handle_ack(endpoint, event)


class UserAgentUdpTests(unittest.TestCase):
    """Over UDP."""

    transport = "udp"

    def endpoint(self, name: str, handler: Any) -> SipEndpoint:
        return SipEndpoint(name, [ListenAddress(self.transport, "127.0.0.1", 0)], handler,
                           reactor)

    def agent(self, user: str, cls: type[UserAgent] = UserAgent, **kw: Any) -> UserAgent:
        ua = cls(lambda handler: self.endpoint(user, handler),
                 Identity(user, REALM, user.title()), (user, PASSWORD),
                 transport=self.transport, **kw)
        ua.start()
        self.addCleanup(ua.stop)
        return ua

    def address(self, ua: UserAgent) -> tuple[str, Destination]:
        """The URI that reaches ``ua`` and where to send to it."""
        uri = ua.endpoint.contact_uri(self.transport, ua.identity.user)
        return str(uri), ua.destination_for(uri)

    def answering(self, behaviour: str = "answer") -> tuple[list[Call], list[defer.Deferred]]:
        """An on_invite callback that rings and then answers, only rings, or rejects."""
        calls: list[Call] = []
        acked: list[defer.Deferred] = []

        def on_invite(call: Call) -> None:
            calls.append(call)
            if behaviour == "reject":
                call.reject(486)
                return
            call.ring()
            if behaviour == "answer":
                acked.append(call.answer(BOB_SDP))

        self.on_invite = on_invite
        return calls, acked

    @defer.inlineCallbacks
    def test_call_from_invite_to_bye(self) -> Any:
        """INVITE → 180 → 200 → ACK → BYE → 200 over real sockets, SDP both ways."""
        incoming, acked = self.answering()
        bob = self.agent("bob", on_invite=self.on_invite)
        alice = self.agent("alice")
        uri, dest = self.address(bob)
        ringing: list[int] = []
        call = yield wait(alice.invite(uri, dest, ALICE_SDP,
                                       on_provisional=lambda c, r: ringing.append(r.status)))
        self.assertEqual(ringing, [180])
        self.assertEqual(call.state, "confirmed")
        self.assertEqual(call.remote_sdp, BOB_SDP)
        bob_call = yield wait(acked[0])
        self.assertIs(bob_call, incoming[0])
        self.assertEqual(bob_call.remote_sdp, ALICE_SDP)
        self.assertEqual(bob_call.dialog.id.remote_tag, call.dialog.id.local_tag)
        response = yield wait(call.bye())
        self.assertEqual(response.status, 200)
        reason = yield wait(bob_call.ended)
        self.assertEqual(reason, "remote BYE")
        self.assertEqual((call.state, bob_call.state), ("ended", "ended"))
        self.assertEqual((alice.calls, bob.calls), ({}, {}))

    @defer.inlineCallbacks
    def test_callee_hangs_up(self) -> Any:
        """The callee's BYE reaches the caller at its Contact and ends its call."""
        _, acked = self.answering()
        bob = self.agent("bob", on_invite=self.on_invite)
        alice = self.agent("alice")
        call = yield wait(alice.invite(*self.address(bob), ALICE_SDP))
        bob_call = yield wait(acked[0])
        response = yield wait(bob_call.bye())
        self.assertEqual(response.status, 200)
        self.assertEqual((yield wait(call.ended)), "remote BYE")

    @defer.inlineCallbacks
    def test_forked_answers_are_each_acked_and_the_extra_ended(self) -> Any:
        """§13.2.2.4: both forked 2xx are ACKed; the first is kept, the second BYEd."""
        callee = ForkingCallee()
        endpoint = self.endpoint("forks", callee)
        endpoint.start()
        self.addCleanup(endpoint.stop)
        uri = endpoint.contact_uri(self.transport, "bob")
        callee.contact = f"<{uri}>"
        alice = self.agent("alice")
        call = yield wait(alice.invite(str(uri), alice.destination_for(uri), ALICE_SDP))
        self.assertEqual(call.dialog.remote_tag, "fork-a")
        yield wait(callee.bye_seen)
        self.assertEqual(sorted(ack.to_tag for ack in callee.acks), ["fork-a", "fork-b"])
        self.assertEqual({ack.cseq.seq for ack in callee.acks}, {call.request.cseq.seq})
        self.assertEqual([bye.to_tag for bye in callee.byes], ["fork-b"])
        self.assertEqual(call.state, "confirmed")
        response = yield wait(call.bye())
        self.assertEqual(response.status, 200)
        self.assertEqual([bye.to_tag for bye in callee.byes], ["fork-b", "fork-a"])

    @defer.inlineCallbacks
    def test_options_answered(self) -> Any:
        """OPTIONS outside a dialog gets 200 with Allow and Accept."""
        bob = self.agent("bob")
        alice = self.agent("alice")
        response = yield wait(alice.options(*self.address(bob)))
        self.assertEqual(response.status, 200)
        self.assertIn("BYE", response.headers.get("Allow"))
        self.assertEqual(response.headers.get("Accept"), "application/sdp")

    @defer.inlineCallbacks
    def test_register_answers_digest_challenge(self) -> Any:
        """REGISTER passes the registrar's digest challenge; refresh keeps Call-ID."""
        registrar = Registrar()
        endpoint = self.endpoint("registrar", registrar)
        endpoint.start()
        self.addCleanup(endpoint.stop)
        alice = self.agent("alice")
        port = next(iter(endpoint.listeners.values())).port
        dest = Destination(self.transport, "127.0.0.1", port)
        response = yield wait(alice.register(f"sip:{REALM}", dest, expires=60))
        self.assertEqual(response.status, 200)
        self.assertEqual(registrar.verdicts, [None, VerdictKind.OK])
        first, second = registrar.seen
        self.assertEqual(first.call_id, second.call_id)
        self.assertEqual((first.cseq.seq, second.cseq.seq), (1, 2))
        self.assertEqual(registrar.bindings[f"sip:alice@{REALM}"], str(alice.contact()))
        yield wait(alice.register(f"sip:{REALM}", dest, expires=60))
        self.assertEqual(registrar.seen[2].call_id, first.call_id)
        self.assertEqual(registrar.seen[2].cseq.seq, 3)

    @defer.inlineCallbacks
    def test_register_with_wrong_password_stops(self) -> Any:
        """A wrong password is sent once; the second 401 ends the attempt."""
        registrar = Registrar()
        endpoint = self.endpoint("registrar", registrar)
        endpoint.start()
        self.addCleanup(endpoint.stop)
        alice = self.agent("alice")
        alice.credentials = ("alice", "wrong")
        port = next(iter(endpoint.listeners.values())).port
        response = yield wait(alice.register(f"sip:{REALM}",
                                             Destination(self.transport, "127.0.0.1", port)))
        self.assertEqual(response.status, 401)
        self.assertEqual(registrar.verdicts, [None, VerdictKind.BAD_RESPONSE])

    @defer.inlineCallbacks
    def test_invite_answers_proxy_challenge(self) -> Any:
        """A 407 to INVITE is answered; the call is set up and the ACK has the credentials."""
        _, acked = self.answering()
        bob = self.agent("bob", GuardedUserAgent, on_invite=self.on_invite)
        alice = self.agent("alice")
        call = yield wait(alice.invite(*self.address(bob), ALICE_SDP))
        yield wait(acked[0])
        assert isinstance(bob, GuardedUserAgent)
        self.assertEqual(bob.verdicts, [None, VerdictKind.OK])
        self.assertEqual(call.request.cseq.seq, 2)
        self.assertEqual(bob.acks[0].headers.get("Proxy-Authorization"),
                         call.request.headers.get("Proxy-Authorization"))
        self.assertEqual(bob.acks[0].cseq.seq, 2)
        yield wait(call.bye())

    @defer.inlineCallbacks
    def test_cancel_ringing_call(self) -> Any:
        """CANCEL of a ringing call: the caller fails with 487, the callee's call ends."""
        incoming, _ = self.answering("ring")
        bob = self.agent("bob", on_invite=self.on_invite)
        alice = self.agent("alice")
        d = alice.invite(*self.address(bob), ALICE_SDP,
                         on_provisional=lambda call, response: call.cancel())
        failure = yield wait(self.assertFailure(d, CallError))
        self.assertEqual(failure.status, 487)
        self.assertEqual((yield wait(incoming[0].ended)), "cancelled")

    @defer.inlineCallbacks
    def test_rejected_call_fails_with_its_status(self) -> Any:
        """A callee's 486 fails the caller's Deferred with that status."""
        incoming, _ = self.answering("reject")
        bob = self.agent("bob", on_invite=self.on_invite)
        alice = self.agent("alice")
        failure = yield wait(self.assertFailure(
            alice.invite(*self.address(bob), ALICE_SDP), CallError))
        self.assertEqual(failure.status, 486)
        self.assertEqual(incoming[0].state, "ended")

    @defer.inlineCallbacks
    def test_unknown_dialog_gets_481(self) -> Any:
        """A BYE naming no dialog of the callee gets 481."""
        bob = self.agent("bob")
        alice = self.agent("alice")
        uri, dest = self.address(bob)
        bye = new_request("BYE", uri, from_=alice.identity.name_addr(),
                          to=f"<{uri}>;tag=nosuchtag", via=alice.endpoint.via_for(dest))
        response: Response = yield wait(alice.send(bye, dest))
        self.assertEqual(response.status, 481)


class UserAgentTcpTests(UserAgentUdpTests):
    """Over TCP."""

    transport = "tcp"
