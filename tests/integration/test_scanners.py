"""The scanners attackers point at SIP servers (SIPVicious, Debian package
``sipvicious``) against the platform: ``svwar`` looking for extensions and
``svcrack`` guessing a password.  svwar must find nothing (a real extension
and a made-up one get the same answer); svcrack must not find the password
even when it is in its dictionary (the pair is blocked after a few wrong
guesses), while the office behind the same address goes on working: another
user there registers, and the attacked user registers from elsewhere."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers.phones import PhonesMixin, wait
from helpers.process import PlatformProcess, free_port
from helpers.sipserver import sip_server_platform
from helpers.tools import require_tool
from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from telavox.sip.transaction import Destination
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.useragent import Identity, UserAgent

pytestmark = pytest.mark.integration

DOMAIN = "scan.example.test"
PASSWORDS = {"1001": "pw-1001", "1002": "tr0ub4dor-1002", "1003": "pw-1003"}


class ScannersTest(PhonesMixin, unittest.TestCase):
    """One platform for the class; the scanners run from 127.0.0.1."""

    platform: ClassVar[PlatformProcess]
    proxy_port: ClassVar[int]
    folder: ClassVar[Path]
    domain = DOMAIN
    timeout = 120

    @classmethod
    def setUpClass(cls) -> None:
        cls.svwar = require_tool("svwar", "sipvicious")
        cls.svcrack = require_tool("svcrack", "sipvicious")
        cls.folder = Path(tempfile.mkdtemp(prefix="telavox-scan-"))
        cls.proxy_port = free_port()
        cls.platform = sip_server_platform(
            cls.folder, domain=DOMAIN, passwords=PASSWORDS, proxy_port=cls.proxy_port,
            rtp_ports=(32200, 32299))
        cls.platform.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.platform.stop_clean()

    def scan(self, *args: str) -> Any:
        """Run a scanner against the proxy; fires with its output."""
        command = [*args, "-t", "0.02", f"udp://127.0.0.1:{self.proxy_port}"]

        def run() -> str:
            done = subprocess.run(command, capture_output=True, text=True, timeout=90,
                                  check=False)
            return done.stdout + done.stderr
        return threads.deferToThread(run)

    @defer.inlineCallbacks
    def test_svwar_finds_no_extension(self) -> Any:
        """REGISTER, INVITE and OPTIONS scans over 990-1010 (1001-1003 exist),
        also forced past svwar's own sanity check, find nothing."""
        for method in ("REGISTER", "INVITE", "OPTIONS"):
            for force in ((), ("--force",)):
                output = yield self.scan(self.svwar, "-e990-1010", "-m", method, *force)
                self.assertIn("found nothing", output, (method, force, output))
                for extension in PASSWORDS:
                    self.assertNotIn(f"| {extension} ", output, (method, force, output))

    @defer.inlineCallbacks
    def test_svcrack_is_blocked_and_the_office_goes_on(self) -> Any:
        """A dictionary of twelve wrong guesses, then the right password:
        svcrack finds nothing, the pair (127.0.0.1, 1002) is blocked (even
        the right password is refused from there), 1001 registers from the
        same address, and 1002 registers from another."""
        words = self.folder / "words.txt"
        words.write_text("\n".join([*(f"guess{i}" for i in range(12)), PASSWORDS["1002"]])
                         + "\n")
        output = yield self.scan(self.svcrack, "-u1002", "-d", str(words))
        self.assertIn("found nothing", output, output)
        self.assertNotIn(PASSWORDS["1002"], output)
        self.platform.wait_for_log("blocked: 1002 from 127.0.0.1")
        blocked = yield self.register("1002", "127.0.0.1")
        self.assertEqual(blocked, 401)
        neighbour = yield self.register("1001", "127.0.0.1")
        self.assertEqual(neighbour, 200)
        elsewhere = yield self.register("1002", "127.0.0.3")
        self.assertEqual(elsewhere, 200)

    @defer.inlineCallbacks
    def register(self, user: str, host: str) -> Any:
        """REGISTER ``user`` with its password from ``host``; fires with the
        final status."""
        endpoint = SipEndpoint(f"phone-{user}-{host}", [ListenAddress("udp", host, 0)], None,
                               reactor)  # type: ignore[arg-type]
        agent = UserAgent(endpoint, Identity(user, DOMAIN, f"User {user}"),
                          (user, PASSWORDS[user]))
        agent.start()
        self.agents.append(agent)
        response = yield wait(agent.register(
            f"sip:{DOMAIN}", Destination("udp", "127.0.0.1", self.proxy_port), 60))
        return response.status
