"""Calls between users through the whole platform: sipproxy → tproxy (with
its mediaserver) → sipproxy → phone, as a real ``twistd telavox`` process.

The phones are the project's own user agents on real UDP sockets, with RTP
sockets of their own: they register with their passwords, call each other,
and check that RTP sent to the mediaserver's address arrives at the other
phone, both ways.  Busy, no registration, unknown numbers, CANCEL, hold and
BYE are checked from both ends, with the CDR file and the release of the
media ports after each call."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers.phones import (
    PhonesMixin,
    hear_each_other,
    media_target,
    sleep,
    transfer_blindly,
    wait,
)
from helpers.process import PlatformProcess, free_port
from helpers.sipserver import read_cdrs, sip_server_platform
from twisted.internet import defer
from twisted.trial import unittest

from telavox.sip.message import Response
from telavox.transport.useragent import Call, CallError

pytestmark = pytest.mark.integration

DOMAIN = "calls.example.test"
PASSWORDS = {"1001": "pw-1001", "1002": "pw-1002", "1003": "pw-1003", "1004": "pw-1004"}
TIMEOUT = 10.0
RTP_LOW = 31000
RTP_HIGH = 31199


class CallsTest(PhonesMixin, unittest.TestCase):
    """One platform for the whole class; each test makes its own phones."""

    platform: ClassVar[PlatformProcess]
    proxy_port: ClassVar[int]
    domain = DOMAIN
    folder: ClassVar[Path]
    timeout = 60

    @classmethod
    def setUpClass(cls) -> None:
        import tempfile

        cls.folder = Path(tempfile.mkdtemp(prefix="telavox-calls-"))
        cls.proxy_port = free_port()
        cls.platform = sip_server_platform(
            cls.folder, domain=DOMAIN, passwords=PASSWORDS, proxy_port=cls.proxy_port,
            rtp_ports=(RTP_LOW, RTP_HIGH), names=True,
            user_keys={"1002": 'pickup_group = "team"\n', "1003": 'pickup_group = "team"\n'},
            extra="[tproxy]\nno_answer_timeout = 3.0\npark_lot = \"700\"\npark_slots = 5\n")
        cls.platform.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.platform.stop_clean()

    def phone(self, user: str, on_invite: Any = None, register: bool = True) -> Any:
        """A registered user agent for ``user`` with an RTP socket."""
        return self.new_phone(user, PASSWORDS[user], on_invite, register)

    def cdrs(self) -> list[dict[str, str]]:
        return read_cdrs(self.folder)

    def assert_port_free(self, port: int) -> None:
        """The mediaserver closed ``port``: it can be bound again."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))

    @defer.inlineCallbacks
    def test_call_with_rtp_both_ways_and_bye(self) -> Any:
        """1001 calls 1002: the call is answered, RTP sent by each phone to the
        mediaserver's address arrives at the other, the BYE of the caller ends
        both sides, the CDR says answered, and the media ports are closed."""
        answered: list[Call] = []

        def on_invite(call: Call) -> None:
            call.ring()
            answered.append(call)
            call.answer(bob.rtp.sdp("bob")).addErrback(lambda f: None)

        alice = yield self.phone("1001")
        bob = yield self.phone("1002", on_invite)
        call = yield wait(alice.invite(f"sip:1002@{DOMAIN}", self.proxy,
                                       alice.rtp.sdp("alice")))
        self.assertEqual(call.state, "confirmed")
        a_host, a_port = media_target(call.remote_sdp)
        b_host, b_port = media_target(answered[0].remote_sdp)
        self.assertEqual(a_host, "127.0.0.1")
        self.assertTrue(RTP_LOW <= a_port <= RTP_HIGH and RTP_LOW <= b_port <= RTP_HIGH)
        self.assertNotEqual(a_port, b_port)
        for _ in range(20):
            alice.rtp.send(a_host, a_port, 5, 0x1111, 0xA1)
            bob.rtp.send(b_host, b_port, 5, 0x2222, 0xB2)
            yield sleep(0.02)
            if len(alice.rtp.received) >= 50 and len(bob.rtp.received) >= 50:
                break
        self.assertGreaterEqual(len(bob.rtp.received), 50)
        self.assertGreaterEqual(len(alice.rtp.received), 50)
        self.assertTrue(all(p[12] == 0xA1 for p in bob.rtp.received))
        self.assertTrue(all(p[12] == 0xB2 for p in alice.rtp.received))
        response = yield wait(call.bye())
        self.assertEqual(response.status, 200)
        reason = yield wait(answered[0].ended)
        self.assertEqual(reason, "remote BYE")
        rows: list[dict[str, str]] = []
        for _ in range(40):  # CDRs are written in batches, once a second
            yield sleep(0.1)
            rows = [r for r in self.cdrs() if r["caller"] == "1001" and r["callee"] == "1002"
                    and r["disposition"] == "answered"]
            if rows:
                break
        self.assertTrue(rows, self.cdrs())
        self.assertEqual(rows[-1]["codec"], "PCMU")
        self.assert_port_free(a_port)
        self.assert_port_free(b_port)

    @defer.inlineCallbacks
    def test_busy_unregistered_and_unknown(self) -> Any:
        """486 from the callee reaches the caller; a user without a phone gives
        480 and an unknown number 404."""
        def busy(call: Call) -> None:
            call.reject(486)

        alice = yield self.phone("1001")
        yield self.phone("1004", busy)
        for target, status in (("1004", 486), ("1003", 480), ("5555", 404)):
            try:
                yield wait(alice.invite(f"sip:{target}@{DOMAIN}", self.proxy,
                                        alice.rtp.sdp("alice")))
            except CallError as e:
                self.assertEqual(e.status, status, target)
            else:
                self.fail(f"call to {target} was answered")

    @defer.inlineCallbacks
    def test_cancel_and_no_answer(self) -> Any:
        """The caller's CANCEL while it rings ends the callee's call; a call
        nobody answers ends with 480 after the no-answer timeout."""
        ringing: list[Call] = []

        def ring(call: Call) -> None:
            call.ring()
            ringing.append(call)

        alice = yield self.phone("1001")
        yield self.phone("1002", ring)
        provisional: defer.Deferred[None] = defer.Deferred()

        def on_provisional(call: Call, response: Response) -> None:
            if response.status == 180 and not provisional.called:
                provisional.callback(None)
                call.cancel()

        d = alice.invite(f"sip:1002@{DOMAIN}", self.proxy, alice.rtp.sdp("alice"),
                         on_provisional=on_provisional)
        yield wait(provisional)
        try:
            yield wait(d)
        except CallError as e:
            self.assertEqual(e.status, 487)
        else:
            self.fail("the cancelled call was answered")
        reason = yield wait(ringing[0].ended)
        self.assertEqual(reason, "cancelled")
        started = time.monotonic()
        try:
            yield wait(alice.invite(f"sip:1002@{DOMAIN}", self.proxy, alice.rtp.sdp("alice")))
        except CallError as e:
            self.assertEqual(e.status, 480)
        else:
            self.fail("the unanswered call was answered")
        self.assertGreaterEqual(time.monotonic() - started, 2.5)
        yield wait(ringing[1].ended)

    @defer.inlineCallbacks
    def test_directed_pickup(self) -> Any:
        """1001 calls 1002, whose phone rings; 1003 dials **1002 and gets the
        call: 1002's ringing stops (CANCEL), 1001 and 1003 are answered and
        hear each other."""
        alice, ringing, calling = yield self.ringing_at_1002()
        carol = yield self.phone("1003")
        yield self.picked_up(alice, ringing, calling, carol, "**1002")

    @defer.inlineCallbacks
    def ringing_at_1002(self) -> Any:
        """1001's phone, 1002's ringing calls, and 1001's call ringing there."""
        ringing: list[Call] = []

        def ring(call: Call) -> None:
            call.ring()
            ringing.append(call)

        alice = yield self.phone("1001")
        yield self.phone("1002", ring)
        provisional: defer.Deferred[None] = defer.Deferred()

        def on_provisional(call: Call, response: Response) -> None:
            if response.status == 180 and not provisional.called:
                provisional.callback(None)

        calling = alice.invite(f"sip:1002@{DOMAIN}", self.proxy, alice.rtp.sdp("alice"),
                               on_provisional=on_provisional)
        yield wait(provisional)
        return alice, ringing, calling

    @defer.inlineCallbacks
    def picked_up(self, alice: Any, ringing: list[Call], calling: Any, picker: Any,
                  number: str) -> Any:
        """``picker`` dials ``number`` and gets 1001's call: 1002 stops
        ringing, the two hear each other, 1001's BYE ends it."""
        picked = yield wait(picker.invite(f"sip:{number}@{DOMAIN}", self.proxy,
                                          picker.rtp.sdp("picker")))
        original = yield wait(calling)
        self.assertEqual((picked.state, original.state), ("confirmed", "confirmed"))
        reason = yield wait(ringing[0].ended)
        self.assertEqual(reason, "cancelled")
        heard = yield hear_each_other(alice.rtp, media_target(original.remote_sdp),
                                      picker.rtp, media_target(picked.remote_sdp))
        self.assertGreaterEqual(min(heard), 20, heard)
        yield wait(original.bye())
        reason = yield wait(picked.ended)
        self.assertEqual(reason, "remote BYE")

    @defer.inlineCallbacks
    def test_group_pickup(self) -> Any:
        """1001 calls 1002, whose phone rings; 1004 (in no pickup group)
        dialling *8 is refused; 1003, in 1002's group, dials *8 and gets
        the call: 1002's ringing stops and 1001 and 1003 hear each other."""
        alice, ringing, calling = yield self.ringing_at_1002()
        carol = yield self.phone("1003")
        dave = yield self.phone("1004")
        try:
            yield wait(dave.invite(f"sip:*8@{DOMAIN}", self.proxy, dave.rtp.sdp("dave")))
        except CallError as e:
            self.assertEqual(e.status, 403)
        else:
            self.fail("a user in no pickup group picked a call up")
        yield self.picked_up(alice, ringing, calling, carol, "*8")

    @defer.inlineCallbacks
    def test_park_by_blind_transfer_and_retrieve(self) -> Any:
        """1001 calls 1002, who transfers the call to the park lot (REFER to
        700): 1002 hears NOTIFY 200 and gets BYE; 1001 hears its slot and
        the music (RTP from the mediaserver while nobody talks to it); 1003
        dials 701, is answered, and 1001 and 1003 hear each other."""
        answered: list[Call] = []

        def on_invite(call: Call) -> None:
            answered.append(call)
            call.answer(bob.rtp.sdp("bob")).addErrback(lambda f: None)

        alice = yield self.phone("1001")
        bob = yield self.phone("1002", on_invite)
        carol = yield self.phone("1003")
        original = yield wait(alice.invite(f"sip:1002@{DOMAIN}", self.proxy,
                                           alice.rtp.sdp("alice")))
        yield transfer_blindly(answered, "700", DOMAIN, "1002")
        alice.rtp.received.clear()
        yield sleep(0.6)
        announced = [p for p in alice.rtp.received if p[12] != 0xB2]
        self.assertGreaterEqual(len(announced), 15)  # ~50 packets/s of prompt
        self.assertGreater(len(set(p[12:] for p in announced)), 5)  # not one silence frame
        picked = yield wait(carol.invite(f"sip:701@{DOMAIN}", self.proxy,
                                         carol.rtp.sdp("carol")))
        self.assertEqual(picked.state, "confirmed")
        heard = yield hear_each_other(alice.rtp, media_target(original.remote_sdp),
                                      carol.rtp, media_target(picked.remote_sdp))
        self.assertGreaterEqual(min(heard), 20, heard)
        yield wait(picked.bye())
        reason = yield wait(original.ended)
        self.assertEqual(reason, "remote BYE")
        rows: list[dict[str, str]] = []
        for _ in range(40):
            yield sleep(0.1)
            rows = [r for r in self.cdrs() if r["caller"] == "1001" and r["callee"] == "1003"]
            if rows:
                break
        self.assertTrue(rows, self.cdrs())
