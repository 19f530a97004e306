"""Voicemail through the whole platform: a caller leaves a message on a
``[[dialplan]]`` voicemail number (a 400 Hz tone sent as RTP after the
beep, ended by # as an RFC 4733 event) and it is filed as a WAV of about
the length sent; then the box's owner calls the voicemailmain number,
enters the PIN as RFC 4733 events and hears the tone played back.  The
phones are the project's own user agents with RTP sockets."""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import tempfile
import time
import wave
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from helpers.phones import PhonesMixin, RtpPhone, media_target, sleep, wait
from helpers.process import PlatformProcess, free_port
from helpers.sipserver import sip_server_platform
from twisted.internet import defer, task
from twisted.trial import unittest

from telavox.rtp.codecs.g711 import PCMU

pytestmark = pytest.mark.integration

DOMAIN = "voicemail.example.test"
PASSWORDS = {"1001": "pw-1001", "1002": "pw-1002", "1003": "pw-1003"}
PIN = "4321"
TONE_HZ = 400
BEEP_HZ = 1000
FRAME = 160
SENT_SECONDS = 3.0
TOLERANCE = 1.5


def tone_frame() -> bytes:
    """20 ms of a 400 Hz tone in PCMU (a whole number of periods, so every
    frame is the same)."""
    t = np.arange(FRAME) / 8000.0
    return PCMU.encode((np.sin(2 * math.pi * TONE_HZ * t) * 8000).astype(np.int16))


def is_tone(packet: bytes, hz: int = TONE_HZ) -> bool:
    """True when an RTP packet (PCMU) carries (mostly) a tone of ``hz``."""
    if len(packet) != 12 + FRAME or packet[1] & 0x7F != 0:
        return False
    samples = PCMU.decode(packet[12:]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    total = spectrum.sum()
    return bool(total > 0 and spectrum[hz * FRAME // 8000] > 0.8 * total)


class ToneSender:
    """Sends the tone from ``phone`` to ``target`` every 20 ms, with
    increasing sequence numbers and timestamps, until stopped."""

    def __init__(self, phone: RtpPhone, target: tuple[str, int]) -> None:
        self.phone, self.target = phone, target
        self.seq = 0
        self.payload = tone_frame()
        self.loop = task.LoopingCall(self._send)

    def _send(self) -> None:
        assert self.phone.transport is not None
        header = struct.pack("!BBHII", 0x80, 0, (2000 + self.seq) & 0xFFFF, FRAME * self.seq,
                             0x5151)
        self.seq += 1
        self.phone.transport.write(header + self.payload, self.target)

    def start(self) -> None:
        self.loop.start(0.02)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()


class VoicemailTest(PhonesMixin, unittest.TestCase):
    """One platform with a voicemail number for 1002 and a voicemailmain number."""

    platform: ClassVar[PlatformProcess]
    folder: ClassVar[Path]
    proxy_port: ClassVar[int]
    domain = DOMAIN
    timeout = 90

    @classmethod
    def setUpClass(cls) -> None:
        cls.folder = Path(tempfile.mkdtemp(prefix="telavox-voicemail-"))
        cls.proxy_port = free_port()
        cls.platform = sip_server_platform(
            cls.folder, domain=DOMAIN, passwords={"1001": PASSWORDS["1001"]},
            proxy_port=cls.proxy_port, rtp_ports=(30500, 30599), extra=f"""
[[dialplan]]
number = "*97"
app = "voicemailmain"

[[dialplan]]
number = "*981002"
app = "voicemail"
args = ["1002", "u"]

[[users]]
extension = "1002"
password = "{PASSWORDS['1002']}"
voicemail_pin = "{PIN}"

[[users]]
extension = "1003"
password = "{PASSWORDS['1003']}"
forward_busy = "*981002"
""")
        cls.platform.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.platform.stop_clean()
        shutil.rmtree(cls.folder, ignore_errors=True)  # kept when something failed

    @property
    def inbox(self) -> Path:
        return self.folder / "var" / "voicemail" / "1002" / "INBOX"

    @defer.inlineCallbacks
    def _after_beep(self, phone: RtpPhone, limit: float) -> Any:
        """Wait for the 1 kHz beep to start and end (recording runs from
        then on); the time it ended."""
        deadline = time.monotonic() + limit
        seen = 0
        while time.monotonic() < deadline:
            yield sleep(0.02)
            packets = phone.received[seen:]
            seen += len(packets)
            beeps = [is_tone(p, BEEP_HZ) for p in packets]
            if any(beeps):
                break
        else:
            self.fail(f"no beep in {limit} s ({len(phone.received)} packets)")
        while time.monotonic() < deadline:
            packets = phone.received[seen:]
            seen += len(packets)
            if packets and not is_tone(packets[-1], BEEP_HZ):
                return time.monotonic()
            yield sleep(0.02)
        self.fail("the beep did not end")

    @defer.inlineCallbacks
    def test_leave_and_listen(self) -> Any:
        """1001 calls *981002: after the announcement and the beep it sends
        3 s of tone and presses #; a WAV of that length (±1.5 s) with its
        metadata is in 1002's INBOX.  1002 calls *97, types the PIN as RFC
        4733 events and hears the tone played back; the message moves to Old."""
        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:*981002@{DOMAIN}", self.proxy,
                                       alice.rtp.sdp("a")))
        target = media_target(call.remote_sdp)
        sender = ToneSender(alice.rtp, target)
        sender.start()
        try:
            # the announcement, vm-intro, then the beep
            started = yield self._after_beep(alice.rtp, limit=40)
            yield sleep(SENT_SECONDS - (time.monotonic() - started))
            pressed = time.monotonic()
            alice.rtp.send_dtmf(*target, "#")
            expected = pressed - started
            reason = yield wait(call.ended, 20)  # vm-msgsaved, goodbye, BYE
        finally:
            sender.stop()
        self.assertEqual(reason, "remote BYE")
        files = sorted(self.inbox.glob("msg*.wav"))
        self.assertEqual([f.name for f in files], ["msg0000.wav"])
        with wave.open(str(files[0])) as w:
            seconds = w.getnframes() / w.getframerate()
        self.assertLess(abs(seconds - expected), TOLERANCE, (seconds, expected))
        meta = json.loads((self.inbox / "msg0000.json").read_text())
        self.assertEqual(meta["caller"], "1001")
        self.assertLess(abs(meta["duration"] - seconds), 0.1)

        bob = yield self.new_phone("1002", PASSWORDS["1002"])
        call = yield wait(bob.invite(f"sip:*97@{DOMAIN}", self.proxy, bob.rtp.sdp("b")))
        target = media_target(call.remote_sdp)
        yield sleep(1.0)  # vm-password is playing; digits stop it
        for digit in PIN + "#":
            bob.rtp.send_dtmf(*target, digit)
            yield sleep(0.25)
        tone: list[bytes] = []
        for _ in range(400):  # "you have 1 new message", "first message", the message
            yield sleep(0.05)
            tone = [p for p in bob.rtp.received if is_tone(p)]
            if len(tone) >= 50:
                break
        self.assertGreaterEqual(len(tone), 50, f"no tone in {len(bob.rtp.received)} packets")
        old = self.inbox.parent / "Old" / "msg0000.wav"
        for _ in range(100):
            if old.exists():
                break
            yield sleep(0.1)
        self.assertTrue(old.exists(), "the message was not moved to Old")
        bob.rtp.send_dtmf(*target, "#")  # leave the menu: goodbye and BYE
        reason = yield wait(call.ended, 20)
        self.assertEqual(reason, "remote BYE")

    @defer.inlineCallbacks
    def test_busy_forwards_to_voicemail(self) -> Any:
        """1003 is busy and forwards busy calls to 1002's voicemail number:
        1001's call to 1003 is answered by the voicemail script, which
        plays its prompts and records after the beep."""
        def busy(call: Any) -> None:
            call.reject(486)

        yield self.new_phone("1003", PASSWORDS["1003"], busy)
        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:1003@{DOMAIN}", self.proxy,
                                       alice.rtp.sdp("alice")), 20)
        self.assertEqual(call.state, "confirmed")
        yield self._after_beep(alice.rtp, 30)
        yield wait(call.bye())
        self.platform.wait_for_log("goes on in script voicemail")

    @defer.inlineCallbacks
    def test_message_waiting_indication(self) -> Any:
        """1002's phone subscribes to message-summary through sipproxy and
        gets a NOTIFY with its box's counts at once; a new message for 1002
        brings another NOTIFY saying a message waits (RFC 3842)."""
        bob = yield self.new_phone("1002", PASSWORDS["1002"])
        response = yield wait(bob.subscribe(f"sip:1002@{DOMAIN}", self.proxy,
                                            "message-summary", 600,
                                            "application/simple-message-summary"))
        self.assertEqual(response.status, 200, response)
        for _ in range(100):
            if bob.notifications:
                break
            yield sleep(0.05)
        first = bob.notifications[0]
        self.assertEqual(first.headers.get("Event"), "message-summary")
        self.assertTrue(first.headers.get("Subscription-State").startswith("active"))
        counts = re.search(rb"Voice-Message: (\d+)/(\d+)", first.body)
        assert counts is not None
        new_before = int(counts.group(1))

        alice = yield self.new_phone("1001", PASSWORDS["1001"])
        call = yield wait(alice.invite(f"sip:*981002@{DOMAIN}", self.proxy,
                                       alice.rtp.sdp("a")))
        target = media_target(call.remote_sdp)
        sender = ToneSender(alice.rtp, target)
        sender.start()
        try:
            yield self._after_beep(alice.rtp, limit=40)
            yield sleep(2.0)
            alice.rtp.send_dtmf(*target, "#")
            yield wait(call.ended, 20)
        finally:
            sender.stop()
        expected = f"Voice-Message: {new_before + 1}/".encode()
        for _ in range(100):
            if any(expected in n.body for n in bob.notifications[1:]):
                break
            yield sleep(0.05)
        later = [n for n in bob.notifications[1:] if expected in n.body]
        self.assertTrue(later, [n.body for n in bob.notifications])
        self.assertIn(b"Messages-Waiting: yes", later[0].body)
