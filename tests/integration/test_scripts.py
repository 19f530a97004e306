"""Calls to numbers bound to scripts, through the whole platform: the
built-in echo test (the caller hears a prompt, then itself, until it presses
#), a pyst2 script behind a FastAGI server reading the digits the phone
sends as RFC 4733 events, an IVR menu whose option dials a user, and a
conference room where three callers hear each other.  The phones are the
project's own user agents with RTP sockets."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers.agi import FastAgiServer
from helpers.phones import (
    PhonesMixin,
    hear_each_other,
    media_target,
    send_tones,
    sleep,
    tone_levels,
    transfer_blindly,
    wait,
)
from helpers.process import PlatformProcess, free_port
from helpers.sipserver import read_cdrs, sip_server_platform
from twisted.internet import defer, threads
from twisted.trial import unittest

from telavox.sounds import SOUNDS_DIR
from telavox.transport.useragent import Call

pytestmark = pytest.mark.integration

DOMAIN = "scripts.example.test"
PASSWORDS = {"1001": "pw-1001", "1002": "pw-1002", "1003": "pw-1003"}


class ScriptCallsTest(PhonesMixin, unittest.TestCase):
    """One platform with an echo number and a FastAGI number."""

    platform: ClassVar[PlatformProcess]
    folder: ClassVar[Path]
    proxy_port: ClassVar[int]
    agi: ClassVar[FastAgiServer]
    domain = DOMAIN
    timeout = 60

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = Path(tempfile.mkdtemp(prefix="telavox-scripts-"))
        cls.proxy_port = free_port()
        cls.agi = FastAgiServer()
        # the pyst2 scenario's sounds, in the site's own sound folder
        site = cls.folder / "var" / "sounds" / "en"
        site.mkdir(parents=True)
        shutil.copy(SOUNDS_DIR / "en" / "welcome.wav", site / "hello.wav")
        shutil.copy(SOUNDS_DIR / "en" / "vm-password.wav", site / "enter-number.wav")
        cls.platform = sip_server_platform(
            cls.folder, domain=DOMAIN, passwords=PASSWORDS, proxy_port=cls.proxy_port,
            rtp_ports=(30400, 30499), extra=f"""
[[dialplan]]
number = "*43"
app = "echo"

[[dialplan]]
number = "700"
app = "agi://127.0.0.1:{cls.agi.port}/pyst"
args = ["first", "second"]

[[ivr]]
name = "main"
prompt = "ivr-main-menu"
options = {{ "1" = "1002" }}

[[dialplan]]
number = "8000"
app = "ivr"
args = ["main"]

[[dialplan]]
number = "900"
app = "conference"
args = ["room1"]
""")
        cls.platform.start()

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            cls.platform.stop_clean()
        finally:
            cls.agi.stop()

    @defer.inlineCallbacks
    def test_echo_test(self) -> Any:
        """*43 answers and plays the echo test prompt; then what the phone
        sends comes back to it; # ends the echo, the platform says goodbye
        and hangs up; the CDR says answered."""
        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:*43@{DOMAIN}", self.proxy, alice.rtp.sdp("a")))
        host, port = media_target(call.remote_sdp)
        echoed: list[bytes] = []
        for _ in range(600):  # the prompt plays for about six seconds first
            alice.rtp.send(host, port, 1, 0x1111, 0xE1)
            yield sleep(0.02)
            echoed = [p for p in alice.rtp.received if p[12:14] == b"\xe1\x00"]
            if len(echoed) >= 10:
                break
        self.assertGreaterEqual(len(echoed), 10, "nothing echoed")
        prompt = [p for p in alice.rtp.received if p[12] != 0xE1]
        self.assertGreater(len(prompt), 100)  # the prompt was heard before
        alice.rtp.send_dtmf(host, port, "#")
        reason = yield wait(call.ended, 15)
        self.assertEqual(reason, "remote BYE")
        rows: list[dict[str, str]] = []
        for _ in range(30):
            yield sleep(0.1)
            rows = [r for r in read_cdrs(self.folder) if r["callee"] == "*43"]
            if rows:
                break
        self.assertEqual(rows[-1]["disposition"], "answered", rows)

    @defer.inlineCallbacks
    def test_blind_transfer_to_the_echo_test(self) -> Any:
        """1001 calls 1002, who transfers the call to *43 (REFER): 1002 gets
        NOTIFY 200 and BYE; 1001 stays on the same media address, hears the
        echo prompt and then its own packets; # ends it.  The first call's CDR
        says transferred, the script's its own."""
        _, answered = yield self.answering_phone("1002", PASSWORDS["1002"])
        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:1002@{DOMAIN}", self.proxy, alice.rtp.sdp("a")))
        yield transfer_blindly(answered, "*43", DOMAIN, "1002")
        yield self.echo_until_hash(alice, call, 0xE2)
        rows: list[dict[str, str]] = []
        for _ in range(30):
            yield sleep(0.1)
            rows = [r for r in read_cdrs(self.folder) if r["caller"] == "1001"
                    and r["callee"] in ("1002", "*43")]
            if len(rows) == 2:
                break
        causes = {r["callee"]: (r["disposition"], r["hangup_cause"]) for r in rows}
        self.assertEqual(causes.get("1002"), ("answered", "transferred"), rows)
        self.assertEqual(causes.get("*43", ("",))[0], "answered", rows)

    @defer.inlineCallbacks
    def test_caller_transfers_the_callee_to_the_echo_test(self) -> Any:
        """The other way round: 1001 (the caller) transfers 1002 to *43;
        1002's own packets come back to it after the prompt (the prompt's end
        and the digits reach the script although 1002's leg is not the one
        the call began with)."""
        bob, answered = yield self.answering_phone("1002", PASSWORDS["1002"])
        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:1002@{DOMAIN}", self.proxy, alice.rtp.sdp("a")))
        response = yield wait(call.send_request(
            "REFER", extra=(("Refer-To", f"<sip:*43@{DOMAIN}>"),
                            ("Referred-By", f"<sip:1001@{DOMAIN}>"))))
        self.assertEqual(response.status, 202)
        reason = yield wait(call.ended)
        self.assertEqual(reason, "remote BYE")
        self.assertEqual(answered[0].state, "confirmed")
        yield self.echo_until_hash(bob, answered[0], 0xE4)

    @defer.inlineCallbacks
    def echo_until_hash(self, phone: Any, call: Call, marker: int) -> Any:
        """``phone`` on ``call`` (in the echo test) sends packets until ten
        of its own come back (after the prompt), then # ends the call."""
        host, port = media_target(call.remote_sdp)
        echoed: list[bytes] = []
        for _ in range(600):  # the prompt plays for about six seconds first
            phone.rtp.send(host, port, 1, 0x2222 + marker, marker)
            yield sleep(0.02)
            echoed = [p for p in phone.rtp.received if p[12:14] == bytes([marker, 0])]
            if len(echoed) >= 10:
                break
        self.assertGreaterEqual(len(echoed), 10, "nothing echoed")
        phone.rtp.send_dtmf(host, port, "#")
        reason = yield wait(call.ended, 15)
        self.assertEqual(reason, "remote BYE")

    @defer.inlineCallbacks
    def test_pyst2_fastagi_script_reads_digits(self) -> Any:
        """700 runs a pyst2 script over FastAGI: it answers, plays a sound of
        the site's folder, reads three digits the phone sends as RFC 4733
        events while the next one plays, and hangs up."""
        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:700@{DOMAIN}", self.proxy, alice.rtp.sdp("a")))
        host, port = media_target(call.remote_sdp)
        # digits during the first sound (STREAM FILE without escape digits)
        # are dropped, as Asterisk does: type once it is over
        yield sleep(1.5)
        for digit in "427":
            alice.rtp.send_dtmf(host, port, digit)
            yield sleep(0.2)
        reason = yield wait(call.ended, 15)
        self.assertEqual(reason, "remote BYE")
        outcome = yield threads.deferToThread(self.agi.readline)
        self.assertTrue(outcome.startswith("pyst: done"), outcome)
        self.platform.wait_for_log("collected 427")


    @defer.inlineCallbacks
    def test_ivr_option_dials_a_user(self) -> Any:
        """8000 plays the menu; 1 (pressed during the prompt) dials 1002,
        whose phone rings and answers; the two phones then hear each other."""
        answered: list[Call] = []

        def on_invite(call: Call) -> None:
            answered.append(call)
            call.ring()
            call.answer(bob.rtp.sdp("bob")).addErrback(lambda f: None)

        bob = yield self.new_phone("1002", PASSWORDS["1002"], on_invite)
        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:8000@{DOMAIN}", self.proxy, alice.rtp.sdp("a")))
        host, port = media_target(call.remote_sdp)
        yield sleep(0.5)
        alice.rtp.send_dtmf(host, port, "1")
        for _ in range(100):
            yield sleep(0.05)
            if answered and answered[0].state == "confirmed":
                break
        self.assertTrue(answered and answered[0].state == "confirmed")
        heard = yield hear_each_other(alice.rtp, (host, port), bob.rtp,
                                      media_target(answered[0].remote_sdp))
        self.assertGreaterEqual(min(heard), 20, heard)
        yield wait(call.bye())
        reason = yield wait(answered[0].ended, 15)
        self.assertEqual(reason, "remote BYE")

    @defer.inlineCallbacks
    def test_conference_room_mixes_three_callers(self) -> Any:
        """Three callers in room 900 each send a tone of their own; each
        hears the other two tones and not its own."""
        tones = {"1001": 400.0, "1002": 700.0, "1003": 1100.0}
        phones: dict[str, Any] = {}
        targets: dict[str, tuple[str, int]] = {}
        calls = []
        for user in tones:
            phone = yield self.new_phone(user, PASSWORDS[user])
            call = yield wait(phone.invite(f"sip:900@{DOMAIN}", self.proxy,
                                           phone.rtp.sdp(user)))
            phones[user], targets[user] = phone, media_target(call.remote_sdp)
            calls.append(call)
        yield sleep(0.5)  # each caller joins the room once answered
        yield send_tones(phones, targets, tones)
        for user, phone in phones.items():
            levels = tone_levels(phone.rtp, tones.values())
            others = [levels[f] for u, f in tones.items() if u != user]
            self.assertGreater(min(others), 10 * levels[tones[user]], user)
        for call in calls:
            yield wait(call.bye())
