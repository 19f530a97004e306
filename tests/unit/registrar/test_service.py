"""The registrar service on a real SQLite store, the real reactor and the
real event bus: responses, events, write-behind, restore and expiry.

Test methods return Deferreds that trial waits for; waits are bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import attrs
import pytest
from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from telavox.base import Platform
from telavox.config import parse_config
from telavox.eventbus import EventBus
from telavox.interfaces import IBaseApplication, ILocationService, IUserDirectory
from telavox.records import HealthStatus, RegistrationEvent
from telavox.registrar.service import RegistrarService
from telavox.sip.message import Request, Response
from telavox.sip.parser import parse_message
from telavox.sip.transaction import Source
from telavox.store import DATABASE_FILE, SqliteStore
from telavox.transport.local import LocalNetwork

Gen = Generator[Any, Any, None]

DOMAIN = "pbx.example.test"
PHONE = Source("udp", "192.0.2.10", 5060)

CONFIG = """
[platform]
domain = "pbx.example.test"
data_dir = "{data_dir}"

[registrar]
min_expires = {min_expires}
default_expires = 60
max_expires = 3600
flush_interval = 0.1

[[users]]
extension = "1001"
password = "alice-pw"
name = "Alice"

[[users]]
extension = "1002"
password = "bob-pw"
{more}
"""


def register(contact: str = "<sip:1001@192.0.2.10:5060>", *, to: str = f"sip:1001@{DOMAIN}",
             cseq: int = 1, extra: str = "") -> Request:
    text = (
        f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg;rport=5060\r\n"
        "Max-Forwards: 70\r\n"
        f"To: <{to}>\r\n"
        f"From: <{to}>;tag=f1\r\n"
        "Call-ID: reg-1@phone\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        "User-Agent: Deskphone/2.1\r\n"
        f"Contact: {contact}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(text)
    assert isinstance(msg, Request)
    return msg


@defer.inlineCallbacks
def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Generator[Any, Any, float]:
    """Poll ``condition`` (which may return a Deferred) until it is true;
    returns the seconds waited, fails after ``timeout``."""
    start = time.monotonic()
    while True:
        value = yield defer.maybeDeferred(condition)
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        yield task.deferLater(reactor, 0.02, lambda: None)


class RegistrarTestCase(unittest.TestCase):
    """Each test gets its own data directory and store."""

    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _use_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def config(self, min_expires: int = 1, more: str = "") -> Any:
        return parse_config(CONFIG.format(data_dir=self.tmp_path, min_expires=min_expires,
                                          more=more))

    @defer.inlineCallbacks
    def open_store(self) -> Generator[Any, Any, SqliteStore]:
        store = SqliteStore(self.tmp_path / DATABASE_FILE, reactor)  # type: ignore[arg-type]
        self.addCleanup(store.close)
        yield store.open()
        return store

    @defer.inlineCallbacks
    def start(self, store: SqliteStore, config: Any = None
              ) -> Generator[Any, Any, RegistrarService]:
        """A started registrar on a platform built as telavox.assembly does."""
        config = config or self.config()
        platform = Platform(reactor=reactor, store=store, bus=EventBus(reactor),
                            network=LocalNetwork(reactor), config=config)
        service = RegistrarService(platform, config.registrar)
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        yield service.ready
        return service

    def events(self, service: RegistrarService) -> list[RegistrationEvent]:
        seen: list[RegistrationEvent] = []
        service.platform.bus.subscribe(seen.append, topics=["registration"])  # type: ignore[arg-type]
        return seen


class ServiceTests(RegistrarTestCase):
    """REGISTER through the service."""

    @defer.inlineCallbacks
    def test_provides_its_interfaces(self) -> Gen:
        """The service provides its three interfaces and is the platform's provider of two."""
        store = yield self.open_store()
        service = yield self.start(store)
        for interface in (IUserDirectory, ILocationService, IBaseApplication):
            self.assertTrue(verifyObject(interface, service))
        self.assertIs(service.platform.require(IUserDirectory), service)
        self.assertIs(service.platform.require(ILocationService), service)
        self.assertEqual(service.realm, DOMAIN)
        self.assertIs(service.health().status, HealthStatus.OK)

    @defer.inlineCallbacks
    def test_users_synced_at_start(self) -> Gen:
        """At start the store's users become the configured ones (HA1 only)."""
        store = yield self.open_store()
        service = yield self.start(store)
        users = yield store.list_users()
        self.assertEqual(users, service.users.records())
        self.assertNotIn("alice-pw", repr(users))

    @defer.inlineCallbacks
    def test_register_answers_200_and_publishes(self) -> Gen:
        """A REGISTER gets a 200 listing the binding and publishes 'registered' with source."""
        store = yield self.open_store()
        service = yield self.start(store)
        seen = self.events(service)
        response = service.register(register(), PHONE, "1001")
        self.assertIsInstance(response, Response)
        self.assertEqual((response.status, response.reason), (200, "OK"))
        self.assertEqual(response.headers.get_all("Contact"),
                         ["<sip:1001@192.0.2.10:5060>;expires=60"])
        self.assertTrue(response.headers.get("Date", "").endswith(" GMT"))
        self.assertTrue(response.to_tag)
        yield wait_for(lambda: seen)
        (event,) = seen
        self.assertEqual((event.what, event.aor, event.contact, event.expires),
                         ("registered", f"sip:1001@{DOMAIN}", "<sip:1001@192.0.2.10:5060>", 60))
        self.assertEqual((event.source, event.user_agent), ("udp:192.0.2.10:5060",
                                                             "Deskphone/2.1"))
        (record,) = service.lookup(f"sip:1001@{DOMAIN.upper()}")
        self.assertEqual(record.contact, "<sip:1001@192.0.2.10:5060>")
        self.assertEqual(service.lookup("1001"), [record])
        self.assertEqual(service.stats()["registers_ok"], 1)

    @defer.inlineCallbacks
    def test_another_users_aor_is_403(self) -> Gen:
        """Another user's AOR gets 403, a foreign domain 404; an IP-address domain is ours."""
        store = yield self.open_store()
        service = yield self.start(store)
        response = service.register(register(), PHONE, "1002")
        self.assertEqual((response.status, response.reason),
                         (403, "Cannot register another user"))
        response = service.register(register(to="sip:1001@elsewhere.example"), PHONE, "1001")
        self.assertEqual((response.status, response.reason), (404, "Not our domain"))
        response = service.register(register(to="sip:1001@192.0.2.1"), PHONE, "1001")
        self.assertEqual(response.status, 200)
        self.assertEqual(service.stats()["registers_failed"], 2)
        self.assertEqual(len(service.lookup("1001")), 1)

    @defer.inlineCallbacks
    def test_too_brief_carries_min_expires(self) -> Gen:
        """A 423 carries Min-Expires; a live reconfiguration moves the minimum."""
        store = yield self.open_store()
        service = yield self.start(store, self.config(min_expires=30))
        response = service.register(register("<sip:1001@192.0.2.10>;expires=10"), PHONE, "1001")
        self.assertEqual((response.status, response.headers.get("Min-Expires")), (423, "30"))
        yield service.reconfigure(attrs.evolve(service.section, min_expires=5,
                                               flush_interval=0.2))
        response = service.register(register("<sip:1001@192.0.2.10>;expires=10"), PHONE, "1001")
        self.assertEqual(response.status, 200)

    @defer.inlineCallbacks
    def test_path_and_outbound_echoed(self) -> Gen:
        """With Supported: path and outbound, the 200 echoes Path and requires outbound."""
        store = yield self.open_store()
        service = yield self.start(store)
        contact = ('<sip:1001@192.0.2.10;transport=tcp>;reg-id=1;'
                   '+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"')
        extra = "Supported: path, outbound\r\nPath: <sip:edge.example;lr;ob>\r\n"
        response = service.register(register(contact, extra=extra),
                                    Source("tcp", "192.0.2.10", 40000, flow="f1"), "1001")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers.get("Path"), "<sip:edge.example;lr;ob>")
        self.assertEqual(response.headers.get("Require"), "outbound")
        (record,) = service.lookup("1001")
        self.assertEqual((record.connection, record.path, record.reg_id),
                         ("f1", ("<sip:edge.example;lr;ob>",), 1))


class StoreTests(RegistrarTestCase):
    """Write-behind, restore and expiry."""

    @defer.inlineCallbacks
    def test_write_behind_and_restore(self) -> Gen:
        """Bindings are written within the flush interval and at stop, and restored at start."""
        store = yield self.open_store()
        service = yield self.start(store)
        service.register(register("<sip:1001@192.0.2.10>"), PHONE, "1001")
        service.register(register("<sip:1001@192.0.2.11>", cseq=2), PHONE, "1001")

        def stored() -> defer.Deferred[bool]:
            return store.load_bindings().addCallback(lambda rows: len(rows) == 2)

        waited = yield wait_for(stored, timeout=2.0)
        self.assertLess(waited, 1.0)
        service.register(register("<sip:1001@192.0.2.11>;expires=0", cseq=3), PHONE, "1001")
        yield service.stopService()
        rows = yield store.load_bindings()
        self.assertEqual([r.contact for r in rows], ["<sip:1001@192.0.2.10>"])
        again = yield self.start(store)
        (record,) = again.lookup("1001")
        self.assertEqual((record.contact, record.user_agent), ("<sip:1001@192.0.2.10>",
                                                               "Deskphone/2.1"))
        self.assertGreaterEqual(service.stats()["store_writes"], 2)
        self.assertEqual(service.stats()["store_errors"], 0)

    @defer.inlineCallbacks
    def test_expiry_without_traffic(self) -> Gen:
        """A binding expires on time without traffic, publishes 'expired', leaves the store."""
        store = yield self.open_store()
        service = yield self.start(store)
        seen = self.events(service)
        service.register(register("<sip:1001@192.0.2.10>;expires=1"), PHONE, "1001")
        waited = yield wait_for(lambda: [e for e in seen if e.what == "expired"], timeout=3.0)
        self.assertGreater(waited, 0.5)
        self.assertEqual([e.what for e in seen], ["registered", "expired"])
        self.assertEqual(service.lookup("1001"), [])
        self.assertEqual(service.stats()["expired"], 1)

        def gone() -> defer.Deferred[bool]:
            return store.load_bindings().addCallback(lambda rows: rows == [])

        yield wait_for(gone, timeout=2.0)

    @defer.inlineCallbacks
    def test_restore_drops_expired(self) -> Gen:
        """Bindings that expired while the service was down are not restored."""
        store = yield self.open_store()
        service = yield self.start(store)
        service.register(register("<sip:1001@192.0.2.10>;expires=1"), PHONE, "1001")
        yield service.stopService()
        yield task.deferLater(reactor, 1.1, lambda: None)
        again = yield self.start(store)
        self.assertEqual(again.lookup("1001"), [])
        yield again.flush()
        rows = yield store.load_bindings()
        self.assertEqual(rows, [])

    @defer.inlineCallbacks
    def test_failing_store_degrades_health_and_keeps_changes(self) -> Gen:
        """A failed write degrades health, counts an error and keeps the changes for later."""
        store = yield self.open_store()
        service = yield self.start(store)
        yield store.close()
        response = service.register(register(), PHONE, "1001")
        self.assertEqual(response.status, 200)  # never waits for the disk
        yield service.flush()
        self.assertIs(service.health().status, HealthStatus.DEGRADED)
        self.assertGreaterEqual(service.stats()["store_errors"], 1)
        upserts, _ = service.table.take_changes()
        self.assertEqual([r.contact for r in upserts], ["<sip:1001@192.0.2.10:5060>"])

    @defer.inlineCallbacks
    def test_reload_users(self) -> Gen:
        """reload_users takes new users into the directory and the store."""
        store = yield self.open_store()
        service = yield self.start(store)
        more = '[[users]]\nextension = "1003"\npassword = "carol-pw"\n'
        yield service.reload_users(self.config(more=more))
        self.assertIsNotNone(service.get_user("1003"))
        users = yield store.list_users()
        self.assertEqual([u.extension for u in users], ["1001", "1002", "1003"])
        writes = service.stats()["store_errors"]
        yield service.reload_users(self.config(more=more))
        self.assertEqual(service.stats()["store_errors"], writes)
