"""Tests of :class:`telavox.store.SqliteStore` against a real SQLite file.

Every operation goes through the store's real worker thread and the global
reactor; the test methods return Deferreds that trial waits for.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, reactor
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from telavox.interfaces import IStore
from telavox.records import BindingRecord, CdrRecord, ConfigVersion, UserRecord, VoicemailRecord
from telavox.store import (
    DATABASE_FILE,
    LATEST_VERSION,
    SchemaTooNewError,
    SqliteStore,
    StoreNotOpenError,
    open_store,
)

Gen = Generator[Any, Any, None]

NOW = 1_700_000_000.125


def user(extension: str, **changes: Any) -> UserRecord:
    fields: dict[str, Any] = {
        "extension": extension,
        "display_name": f"User {extension} \u00e9\u00e8",
        "realm": "pbx.example.org",
        "ha1_md5": hashlib.md5(extension.encode()).hexdigest(),
        "ha1_sha256": hashlib.sha256(extension.encode()).hexdigest(),
        "attributes": (("language", "fr"), ("voicemail", "yes")),
    }
    fields.update(changes)
    return UserRecord(**fields)


def binding(aor: str, contact: str, **changes: Any) -> BindingRecord:
    fields: dict[str, Any] = {
        "aor": aor,
        "contact": contact,
        "expires_at": NOW + 3600.000001,
        "q": 0.7,
        "call_id": "a84b4c76e66710@pc33.example.org",
        "cseq": 314159,
        "source": "tls:192.0.2.4:5061",
        "connection": "flow-17",
        "user_agent": "Softphone/1.0",
        "instance": '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
        "reg_id": 2,
        "path": ("<sip:edge1.example.org;lr>", "<sip:edge2.example.org;lr>"),
    }
    fields.update(changes)
    return BindingRecord(**fields)


def cdr(n: int, end_time: float, answer_time: float | None = 0.0, **changes: Any) -> CdrRecord:
    fields: dict[str, Any] = {
        "correlation_id": f"{n:032x}",
        "call_id": f"call-{n}@example.org",
        "caller": "1001",
        "callee": "1002",
        "start_time": end_time - 60.5,
        "answer_time": None if answer_time is None else end_time - 50.25,
        "end_time": end_time,
        "disposition": "ANSWERED" if answer_time is not None else "NO ANSWER",
        "codec": "PCMA",
        "sip_server": "sip1",
        "hangup_cause": "16",
    }
    fields.update(changes)
    return CdrRecord(**fields)


def voicemail(box: str, created_at: float, **changes: Any) -> VoicemailRecord:
    fields: dict[str, Any] = {
        "id": None,
        "box": box,
        "caller": '"Alice" <sip:1001@example.org>',
        "created_at": created_at,
        "duration": 12.345,
        "path": f"/var/spool/vm/{box}/{created_at}.wav",
        "folder": "INBOX",
        "read": False,
    }
    fields.update(changes)
    return VoicemailRecord(**fields)


def schema_versions(path: Path) -> list[int]:
    """The applied migration numbers, read with a plain connection."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        conn.close()


@implementer(IReactorCore, IReactorFromThreads)
class TriggerReactor:
    """Records system event triggers; hands thread results to the real reactor."""

    def __init__(self) -> None:
        self.triggers: dict[object, tuple[str, str, Any]] = {}

    def callFromThread(self, f: Any, *args: Any, **kwargs: Any) -> None:
        reactor.callFromThread(f, *args, **kwargs)

    def addSystemEventTrigger(self, phase: str, event: str, f: Any) -> object:
        handle = object()
        self.triggers[handle] = (phase, event, f)
        return handle

    def removeSystemEventTrigger(self, handle: object) -> None:
        del self.triggers[handle]


class StoreTestCase(unittest.TestCase):
    """Base: a fresh temporary directory and stores closed after each test."""

    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _use_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    @property
    def db_path(self) -> Path:
        return self.tmp_path / "data" / DATABASE_FILE

    def make_store(self, path: Path | None = None, **kwargs: Any) -> SqliteStore:
        kwargs.setdefault("reactor", reactor)
        store = SqliteStore(path or self.db_path, **kwargs)
        self.addCleanup(store.close)
        return store

    @defer.inlineCallbacks
    def open_store(
        self, path: Path | None = None, **kwargs: Any
    ) -> Generator[Any, Any, SqliteStore]:
        store = self.make_store(path, **kwargs)
        yield store.open()
        return store


class LifeCycleTests(StoreTestCase):
    """Opening, migrating, refusing, closing."""

    @defer.inlineCallbacks
    def test_provides_istore(self) -> Gen:
        """SqliteStore provides every method of IStore."""
        store = yield self.open_store()
        self.assertTrue(verifyObject(IStore, store))

    @defer.inlineCallbacks
    def test_open_creates_directory_wal_and_schema(self) -> Gen:
        """open creates the missing directory and the schema, in WAL mode."""
        path = self.tmp_path / "a" / "b" / "c.sqlite3"
        store = yield self.open_store(path)
        yield store.close()
        self.assertTrue(path.exists())
        self.assertEqual(schema_versions(path), list(range(1, LATEST_VERSION + 1)))
        conn = sqlite3.connect(path)
        try:
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        finally:
            conn.close()
        self.assertEqual(mode, "wal")

    @defer.inlineCallbacks
    def test_open_twice_is_idempotent(self) -> Gen:
        """Reopening a database keeps data and applies no migration twice."""
        store = yield self.open_store()
        yield store.kv_put("fam", "k", "v")
        yield store.open()
        yield store.close()
        again = yield self.open_store()
        value = yield again.kv_get("fam", "k")
        self.assertEqual(value, "v")
        yield again.close()
        self.assertEqual(schema_versions(self.db_path), list(range(1, LATEST_VERSION + 1)))

    @defer.inlineCallbacks
    def test_open_store_helper(self) -> Gen:
        """open_store opens the database file of a data directory."""
        store = yield open_store(self.tmp_path / "dir", reactor)
        self.addCleanup(store.close)
        self.assertIsInstance(store, SqliteStore)
        self.assertEqual(store.path, str(self.tmp_path / "dir" / DATABASE_FILE))
        yield store.kv_put("f", "k", "v")

    @defer.inlineCallbacks
    def test_newer_schema_refused(self) -> Gen:
        """A newer schema_version is refused, left untouched, and the store closed."""
        store = yield self.open_store()
        yield store.close()
        conn = sqlite3.connect(self.db_path)
        with conn:
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, 0)",
                (LATEST_VERSION + 1,),
            )
        conn.close()
        newer = self.make_store()
        error = yield self.assertFailure(newer.open(), SchemaTooNewError)
        self.assertEqual(error.found, LATEST_VERSION + 1)
        self.assertEqual(error.supported, LATEST_VERSION)
        self.assertIn(str(self.db_path), str(error))
        yield self.assertFailure(newer.kv_get("f", "k"), StoreNotOpenError)
        yield newer.close()
        self.assertEqual(schema_versions(self.db_path)[-1], LATEST_VERSION + 1)

    @defer.inlineCallbacks
    def test_not_a_database_fails_open(self) -> Gen:
        """Opening a file that is not SQLite fails the Deferred with sqlite's error."""
        self.db_path.parent.mkdir(parents=True)
        self.db_path.write_bytes(b"this is not a database file, not at all" * 100)
        store = self.make_store()
        yield self.assertFailure(store.open(), sqlite3.DatabaseError)

    @defer.inlineCallbacks
    def test_use_before_open_and_after_close_fails(self) -> Gen:
        """Use outside open..close fails with StoreNotOpenError; close is idempotent."""
        store = self.make_store()
        yield self.assertFailure(store.list_users(), StoreNotOpenError)
        yield store.open()
        first, second = store.close(), store.close()
        yield self.assertFailure(store.kv_put("f", "k", "v"), StoreNotOpenError)
        yield defer.gatherResults([first, second])
        yield store.close()
        yield self.assertFailure(store.open(), StoreNotOpenError)
        yield self.assertFailure(store.list_users(), StoreNotOpenError)

    @defer.inlineCallbacks
    def test_close_waits_for_pending_writes(self) -> Gen:
        """Writes still pending when close is called all reach the database."""
        store = yield self.open_store()
        writes = [store.kv_put("fam", f"k{n:03d}", str(n)) for n in range(200)]
        writes.append(store.add_cdrs([cdr(n, NOW + n) for n in range(50)]))
        writes.append(store.add_voicemail(voicemail("200", NOW)))
        closed = store.close()
        self.assertFalse(closed.called)
        results = yield defer.gatherResults(writes)
        yield closed
        self.assertEqual(results[-1], 1)
        again = yield self.open_store()
        keys = yield again.kv_keys("fam")
        self.assertEqual(keys, [f"k{n:03d}" for n in range(200)])
        cdrs = yield again.list_cdrs(limit=1000)
        self.assertEqual(len(cdrs), 50)
        messages = yield again.list_voicemail("200")
        self.assertEqual(len(messages), 1)

    @defer.inlineCallbacks
    def test_database_work_runs_on_one_worker_thread(self) -> Gen:
        """Connecting and every SQL statement run on one worker, not the reactor."""
        reactor_thread = threading.get_ident()
        threads: list[int] = []
        real_connect = sqlite3.connect

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            threads.append(threading.get_ident())
            conn = real_connect(*args, **kwargs)
            conn.set_trace_callback(lambda statement: threads.append(threading.get_ident()))
            return conn

        self.patch(sqlite3, "connect", connect)

        def clock() -> float:
            threads.append(threading.get_ident())
            return NOW

        store = yield self.open_store(clock=clock)
        yield store.sync_users([user("1001")])
        yield store.get_user("1001")
        yield store.add_config_version("a = 1\n", "test")
        yield store.kv_put("f", "k", "v")
        yield store.close()
        self.assertGreater(len(threads), 10)
        self.assertNotIn(reactor_thread, threads)
        self.assertEqual(len(set(threads)), 1)

    @defer.inlineCallbacks
    def test_closes_before_reactor_shutdown(self) -> Gen:
        """open adds a before-shutdown trigger that closes the store; close removes it."""
        fake = TriggerReactor()
        store = self.make_store(reactor=fake)
        yield store.open()
        ((phase, event, trigger),) = fake.triggers.values()
        self.assertEqual((phase, event), ("before", "shutdown"))
        pending = store.kv_put("f", "k", "v")
        yield trigger()
        yield pending
        yield self.assertFailure(store.kv_get("f", "k"), StoreNotOpenError)
        other = self.make_store(self.tmp_path / "other.sqlite3", reactor=fake)
        yield other.open()
        self.assertEqual(len(fake.triggers), 2)
        yield other.close()
        self.assertEqual(len(fake.triggers), 1)

    def test_threadpool_with_more_threads_refused(self) -> None:
        """A thread pool of more than one thread is refused."""
        from twisted.python.threadpool import ThreadPool

        with self.assertRaises(ValueError):
            SqliteStore(self.db_path, reactor, threadpool=ThreadPool(1, 4))


class UserTests(StoreTestCase):
    """sync_users, get_user, list_users."""

    @defer.inlineCallbacks
    def test_round_trip_every_field(self) -> Gen:
        """Every UserRecord field comes back equal, including attributes."""
        store = yield self.open_store()
        users = [user("1002"), user("1001", attributes=()), user("0100", display_name="")]
        yield store.sync_users(users)
        got = yield store.get_user("1002")
        self.assertEqual(got, users[0])
        listed = yield store.list_users()
        self.assertEqual(listed, sorted(users, key=lambda u: u.extension))
        missing = yield store.get_user("9999")
        self.assertIsNone(missing)

    @defer.inlineCallbacks
    def test_sync_replaces_the_set(self) -> Gen:
        """sync_users leaves exactly the given users, removing and updating others."""
        store = yield self.open_store()
        yield store.sync_users([user("1001"), user("1002"), user("1003")])
        changed = user("1002", display_name="Renamed", attributes=(("a", "b"),))
        yield store.sync_users([changed, user("1004")])
        listed = yield store.list_users()
        self.assertEqual(listed, [changed, user("1004")])
        yield store.sync_users([])
        listed = yield store.list_users()
        self.assertEqual(listed, [])

    @defer.inlineCallbacks
    def test_failed_sync_changes_nothing(self) -> Gen:
        """A sync sqlite rejects fails its Deferred and rolls back entirely."""
        store = yield self.open_store()
        yield store.sync_users([user("1001")])
        yield self.assertFailure(
            store.sync_users([user("2001"), user("2001")]), sqlite3.IntegrityError
        )
        listed = yield store.list_users()
        self.assertEqual(listed, [user("1001")])


class BindingTests(StoreTestCase):
    """save_bindings and load_bindings."""

    @defer.inlineCallbacks
    def test_round_trip_every_field(self) -> Gen:
        """Every BindingRecord field comes back equal, including floats and path."""
        store = yield self.open_store()
        records = [
            binding("sip:1001@example.org", "<sip:1001@192.0.2.10:5060>"),
            binding("sip:1001@example.org", "<sip:1001@192.0.2.11>", path=(), q=1.0),
            binding("sip:1002@example.org", "<sip:1002@[2001:db8::1]>", expires_at=0.1 + 0.2),
        ]
        yield store.save_bindings(records, [])
        loaded = yield store.load_bindings()
        self.assertEqual(loaded, records)
        self.assertEqual([type(b.expires_at) for b in loaded], [float] * 3)

    @defer.inlineCallbacks
    def test_upserts_and_removals_in_one_call(self) -> Gen:
        """One save_bindings call replaces, inserts and removes bindings."""
        store = yield self.open_store()
        aor = "sip:1001@example.org"
        a, b, c = (binding(aor, f"<sip:1001@192.0.2.{n}>") for n in (1, 2, 3))
        yield store.save_bindings([a, b, c], [])
        refreshed = binding(aor, a.contact, expires_at=NOW + 7200.5, cseq=314160, path=())
        d = binding("sip:1002@example.org", "<sip:1002@192.0.2.4>")
        yield store.save_bindings(
            [refreshed, d], [(aor, b.contact), ("sip:nobody@example.org", "<sip:x>")]
        )
        loaded = yield store.load_bindings()
        self.assertEqual(loaded, [refreshed, c, d])

    @defer.inlineCallbacks
    def test_key_in_both_upserts_and_removals_is_kept(self) -> Gen:
        """Removals apply before upserts, so a binding named in both stays."""
        store = yield self.open_store()
        a = binding("sip:1001@example.org", "<sip:1001@192.0.2.1>")
        yield store.save_bindings([a], [(a.aor, a.contact)])
        loaded = yield store.load_bindings()
        self.assertEqual(loaded, [a])


class CdrTests(StoreTestCase):
    """add_cdrs and list_cdrs."""

    @defer.inlineCallbacks
    def test_round_trip_every_field(self) -> Gen:
        """Every CdrRecord field comes back equal, including a None answer_time."""
        store = yield self.open_store()
        answered = cdr(1, NOW + 0.000123)
        unanswered = cdr(2, NOW + 1.5, answer_time=None, codec="", hangup_cause="")
        yield store.add_cdrs([answered, unanswered])
        listed = yield store.list_cdrs()
        self.assertEqual(listed, [unanswered, answered])
        self.assertIsNone(listed[0].answer_time)

    @defer.inlineCallbacks
    def test_order_limit_and_since(self) -> Gen:
        """list_cdrs is newest first and honours limit and since (end_time >= since)."""
        store = yield self.open_store()
        records = [cdr(n, NOW + n * 10) for n in (3, 1, 4, 0, 2)]
        yield store.add_cdrs(records[:2])
        yield store.add_cdrs(records[2:])
        everything = yield store.list_cdrs()
        self.assertEqual([c.end_time for c in everything], [NOW + n * 10 for n in (4, 3, 2, 1, 0)])
        two = yield store.list_cdrs(limit=2)
        self.assertEqual(two, everything[:2])
        recent = yield store.list_cdrs(since=NOW + 20)
        self.assertEqual(recent, everything[:3])
        recent_one = yield store.list_cdrs(since=NOW + 20, limit=1)
        self.assertEqual(recent_one, everything[:1])
        none = yield store.list_cdrs(limit=0)
        self.assertEqual(none, [])
        yield self.assertFailure(store.list_cdrs(limit=-1), ValueError)

    @defer.inlineCallbacks
    def test_same_end_time_newest_added_first(self) -> Gen:
        """CDRs ending at the same time list the last added first."""
        store = yield self.open_store()
        yield store.add_cdrs([cdr(1, NOW), cdr(2, NOW), cdr(3, NOW)])
        listed = yield store.list_cdrs()
        self.assertEqual([c.call_id for c in listed], [f"call-{n}@example.org" for n in (3, 2, 1)])


class KvTests(StoreTestCase):
    """kv_get, kv_put, kv_delete, kv_keys."""

    @defer.inlineCallbacks
    def test_put_get_overwrite_delete(self) -> Gen:
        """Values are per family, overwritten by put; delete reports existence."""
        store = yield self.open_store()
        missing = yield store.kv_get("cidname", "1001")
        self.assertIsNone(missing)
        yield store.kv_put("cidname", "1001", "Alice")
        yield store.kv_put("blacklist", "1001", "1")
        yield store.kv_put("cidname", "1001", "Alice B.")
        value = yield store.kv_get("cidname", "1001")
        self.assertEqual(value, "Alice B.")
        other = yield store.kv_get("blacklist", "1001")
        self.assertEqual(other, "1")
        deleted = yield store.kv_delete("cidname", "1001")
        self.assertTrue(deleted)
        deleted_again = yield store.kv_delete("cidname", "1001")
        self.assertFalse(deleted_again)
        gone = yield store.kv_get("cidname", "1001")
        self.assertIsNone(gone)

    @defer.inlineCallbacks
    def test_values_stay_strings(self) -> Gen:
        """Numeric-looking and empty strings come back as the same str."""
        store = yield self.open_store()
        for key, value in (("a", "007"), ("b", "1e3"), ("c", ""), ("d", " 12 ")):
            yield store.kv_put("f", key, value)
            got = yield store.kv_get("f", key)
            self.assertEqual(got, value)

    @defer.inlineCallbacks
    def test_keys_by_family_and_prefix(self) -> Gen:
        """kv_keys sorts one family's keys, matching the prefix literally."""
        store = yield self.open_store()
        keys = ["b/2", "a/1", "a/10", "A/3", "a_x", "a%y", "ab", "\u00e9t\u00e9"]
        for key in keys:
            yield store.kv_put("fam", key, "v")
        yield store.kv_put("other", "a/99", "v")
        everything = yield store.kv_keys("fam")
        self.assertEqual(everything, sorted(keys))
        under_a = yield store.kv_keys("fam", "a/")
        self.assertEqual(under_a, ["a/1", "a/10"])
        underscore = yield store.kv_keys("fam", "a_")
        self.assertEqual(underscore, ["a_x"])
        percent = yield store.kv_keys("fam", "a%")
        self.assertEqual(percent, ["a%y"])
        accent = yield store.kv_keys("fam", "\u00e9")
        self.assertEqual(accent, ["\u00e9t\u00e9"])
        nothing = yield store.kv_keys("empty")
        self.assertEqual(nothing, [])


class VoicemailTests(StoreTestCase):
    """add_voicemail, list_voicemail, update_voicemail, delete_voicemail."""

    @defer.inlineCallbacks
    def test_round_trip_and_folders(self) -> Gen:
        """Voicemail comes back with new ids, oldest first, folder-filtered, equal."""
        store = yield self.open_store()
        newer = voicemail("200", NOW + 60, read=True, folder="Old")
        older = voicemail("200", NOW, id=12345)
        elsewhere = voicemail("201", NOW)
        newer_id = yield store.add_voicemail(newer)
        older_id = yield store.add_voicemail(older)
        yield store.add_voicemail(elsewhere)
        self.assertNotEqual(older_id, 12345)
        listed = yield store.list_voicemail("200")
        self.assertEqual(
            listed,
            [
                voicemail("200", NOW, id=older_id),
                voicemail("200", NOW + 60, id=newer_id, read=True, folder="Old"),
            ],
        )
        inbox = yield store.list_voicemail("200", folder="INBOX")
        self.assertEqual([m.id for m in inbox], [older_id])
        empty = yield store.list_voicemail("999")
        self.assertEqual(empty, [])

    @defer.inlineCallbacks
    def test_update_moves_and_marks(self) -> Gen:
        """update_voicemail changes only given fields and reports existence."""
        store = yield self.open_store()
        message_id = yield store.add_voicemail(voicemail("200", NOW))
        moved = yield store.update_voicemail(message_id, folder="Work")
        self.assertTrue(moved)
        (message,) = yield store.list_voicemail("200")
        self.assertEqual((message.folder, message.read), ("Work", False))
        marked = yield store.update_voicemail(message_id, read=True)
        self.assertTrue(marked)
        (message,) = yield store.list_voicemail("200")
        self.assertEqual((message.folder, message.read), ("Work", True))
        both = yield store.update_voicemail(message_id, folder="INBOX", read=False)
        self.assertTrue(both)
        (message,) = yield store.list_voicemail("200")
        self.assertEqual((message.folder, message.read), ("INBOX", False))
        untouched = yield store.update_voicemail(message_id)
        self.assertTrue(untouched)
        missing = yield store.update_voicemail(message_id + 1000, read=True)
        self.assertFalse(missing)

    @defer.inlineCallbacks
    def test_delete_returns_record_and_ids_not_reused(self) -> Gen:
        """delete_voicemail returns the record once, and ids are never reused."""
        store = yield self.open_store()
        first_id = yield store.add_voicemail(voicemail("200", NOW))
        second_id = yield store.add_voicemail(voicemail("200", NOW + 1))
        deleted = yield store.delete_voicemail(second_id)
        self.assertEqual(deleted, voicemail("200", NOW + 1, id=second_id))
        again = yield store.delete_voicemail(second_id)
        self.assertIsNone(again)
        third_id = yield store.add_voicemail(voicemail("200", NOW + 2))
        self.assertGreater(third_id, second_id)
        remaining = yield store.list_voicemail("200")
        self.assertEqual([m.id for m in remaining], [first_id, third_id])


class ConfigVersionTests(StoreTestCase):
    """add_config_version, get_config_version, list_config_versions."""

    @defer.inlineCallbacks
    def test_add_dedupes_against_newest(self) -> Gen:
        """Identical text returns the newest version; any change adds a version."""
        now = [NOW]
        store = yield self.open_store(clock=lambda: now[0])
        first = yield store.add_config_version("a = 1\n", "boot")
        now[0] += 1
        self.assertEqual(
            first,
            ConfigVersion(
                version=first.version,
                created_at=NOW,
                source="boot",
                text="a = 1\n",
                sha256=hashlib.sha256(b"a = 1\n").hexdigest(),
            ),
        )
        same = yield store.add_config_version("a = 1\n", "reload")
        self.assertEqual(same, first)
        second = yield store.add_config_version("a = 2\n", "api")
        self.assertEqual((second.version, second.created_at), (first.version + 1, NOW + 1))
        back = yield store.add_config_version("a = 1\n", "rollback")
        self.assertEqual((back.version, back.source), (second.version + 1, "rollback"))
        listed = yield store.list_config_versions()
        self.assertEqual(listed, [back, second, first])

    @defer.inlineCallbacks
    def test_get_and_list_limit(self) -> Gen:
        """Versions are found by number and listed newest first up to limit."""
        store = yield self.open_store(clock=lambda: NOW)
        added = []
        for n in range(5):
            version = yield store.add_config_version(f"n = {n}\n# \u00fcber\n", "test")
            added.append(version)
        got = yield store.get_config_version(added[2].version)
        self.assertEqual(got, added[2])
        missing = yield store.get_config_version(999)
        self.assertIsNone(missing)
        listed = yield store.list_config_versions(limit=3)
        self.assertEqual(listed, added[::-1][:3])
        yield self.assertFailure(store.list_config_versions(limit=-5), ValueError)

    @defer.inlineCallbacks
    def test_versions_survive_reopen(self) -> Gen:
        """Stored versions, and the dedupe against the newest, persist."""
        store = yield self.open_store(clock=lambda: NOW)
        first = yield store.add_config_version("x = 1\n", "boot")
        yield store.close()
        again = yield self.open_store(clock=lambda: NOW + 5)
        same = yield again.add_config_version("x = 1\n", "boot")
        self.assertEqual(same, first)
