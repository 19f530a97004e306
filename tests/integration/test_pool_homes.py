"""Targets that live on one SIP server of a pool of two, through the whole
platform: users pinned to different SIP servers reach a conference room
homed on one of them and hear each other in the same mix, and a call
parked by a transfer on one server waits in the park lot homed on the
other, where a user of the first server retrieves it.  The phones are the
project's own user agents with RTP sockets."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
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
from twisted.internet import defer
from twisted.trial import unittest

from telavox.transport.useragent import Call

pytestmark = pytest.mark.integration

DOMAIN = "pool.example.test"
PASSWORDS = {"1001": "pw-1001", "1002": "pw-1002", "1003": "pw-1003"}


class PoolHomesTest(PhonesMixin, unittest.TestCase):
    """sip1 hosts 1001 and 1003, sip2 hosts 1002, the room 900 and the
    park lot 700."""

    platform: ClassVar[PlatformProcess]
    proxy_port: ClassVar[int]
    domain = DOMAIN
    timeout = 60

    @classmethod
    def setUpClass(cls) -> None:
        folder = Path(tempfile.mkdtemp(prefix="telavox-pool-"))
        cls.proxy_port = free_port()
        users = "\n".join(f'[[users]]\nextension = "{u}"\npassword = "{p}"\n'
                          for u, p in PASSWORDS.items())
        cls.platform = PlatformProcess(folder, f"""
[platform]
domain = "{DOMAIN}"
data_dir = "{folder / 'var'}"

[sipproxy]
listen = ["udp:127.0.0.1:{cls.proxy_port}"]

[tlb]
http_listen = ""
probe_listen = "udp:127.0.0.1:{free_port()}"
pins = {{ "1001" = "sip1", "1003" = "sip1", "1002" = "sip2", "900" = "sip2", "700" = "sip2" }}

[mediaserver]
address = "127.0.0.1"
rtp_ports = [30600, 30799]

[tproxy]
park_lot = "700"
park_slots = 3

[[sipservers]]
name = "sip1"
listen = "udp:127.0.0.1:{free_port()}"

[[sipservers]]
name = "sip2"
listen = "udp:127.0.0.1:{free_port()}"

[[dialplan]]
number = "900"
app = "conference"
args = ["room1"]

{users}
""")
        cls.platform.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.platform.stop_clean()

    def phone(self, user: str, on_invite: Any = None) -> Any:
        return self.new_phone(user, PASSWORDS[user], on_invite)

    @defer.inlineCallbacks
    def test_callers_of_two_servers_meet_in_one_room(self) -> Any:
        """1001 (sip1) and 1002 (sip2) call 900: both calls end up in the
        room on sip2, so each hears the other's tone and not its own."""
        tones = {"1001": 500.0, "1002": 900.0}
        phones: dict[str, Any] = {}
        targets: dict[str, tuple[str, int]] = {}
        calls = []
        for user in tones:
            phone = yield self.phone(user)
            call = yield wait(phone.invite(f"sip:900@{DOMAIN}", self.proxy,
                                           phone.rtp.sdp(user)))
            phones[user], targets[user] = phone, media_target(call.remote_sdp)
            calls.append(call)
        yield sleep(0.5)
        yield send_tones(phones, targets, tones)
        for user, phone in phones.items():
            levels = tone_levels(phone.rtp, tones.values())
            other = next(f for u, f in tones.items() if u != user)
            self.assertGreater(levels[other], 10 * levels[tones[user]], (user, levels))
        log = self.platform.log()
        self.assertIn("call for 900 goes to sip2", log)
        for call in calls:
            yield wait(call.bye())

    @defer.inlineCallbacks
    def test_park_on_the_lot_of_the_other_server(self) -> Any:
        """1003 (sip1) calls 1001 (sip1), who transfers the call to 700: the
        lot lives on sip2, so 1003 is parked there (the slot announced);
        1001 gets NOTIFY 200 and BYE; 1002 (sip2) takes the call from 701
        and talks with 1003."""
        answered: list[Call] = []

        def on_invite(call: Call) -> None:
            answered.append(call)
            call.answer(alice.rtp.sdp("alice")).addErrback(lambda f: None)

        alice = yield self.phone("1001", on_invite)
        bob = yield self.phone("1002")
        carol = yield self.phone("1003")
        original = yield wait(carol.invite(f"sip:1001@{DOMAIN}", self.proxy,
                                           carol.rtp.sdp("carol")))
        yield transfer_blindly(answered, "700", DOMAIN, "1001")
        carol.rtp.received.clear()
        yield sleep(0.6)
        self.assertGreaterEqual(len(carol.rtp.received), 15)  # the announcement
        taken = yield wait(bob.invite(f"sip:701@{DOMAIN}", self.proxy, bob.rtp.sdp("bob")))
        heard = yield hear_each_other(carol.rtp, media_target(original.remote_sdp),
                                      bob.rtp, media_target(taken.remote_sdp))
        self.assertGreaterEqual(min(heard), 20, heard)
        log = self.platform.log()
        self.assertIn("parked in 701", log)
        yield wait(taken.bye())
        reason = yield wait(original.ended)
        self.assertEqual(reason, "remote BYE")
