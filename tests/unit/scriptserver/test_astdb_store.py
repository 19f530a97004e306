"""The AstDB kept in the platform's SQLite store: Asterisk's paths and
trees, and values that outlive a restart (the store closed and opened
again), with a real store on its thread pool."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, reactor
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from telavox.scriptserver import StoreAstDB
from telavox.scriptserver.interfaces import IAstDB
from telavox.store import DATABASE_FILE, SqliteStore


class StoreAstDBTest(unittest.TestCase):
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _use_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    @defer.inlineCallbacks
    def open_store(self) -> Generator[Any, Any, SqliteStore]:
        store = SqliteStore(self.tmp_path / DATABASE_FILE, reactor)  # type: ignore[arg-type]
        yield store.open()
        return store

    @defer.inlineCallbacks
    def test_trees_as_asterisk_and_values_kept_across_a_restart(self) -> Any:
        store = yield self.open_store()
        db = StoreAstDB(store)
        verifyObject(IAstDB, db)
        for key in ("a", "a/b", "ab", "c"):
            yield db.put("fam", key, f"v-{key}")
        yield db.put("fam/sub", "x", "deep")  # a family with a slash, as Asterisk allows
        yield db.put("other", "a", "kept")
        removed = yield db.deltree("fam", "a")
        self.assertEqual(removed, 2)
        value = yield db.get("fam", "ab")
        self.assertEqual(value, "v-ab")
        gone = yield db.get("fam", "a/b")
        self.assertIsNone(gone)
        deleted = yield db.delete("fam", "c")
        again = yield db.delete("fam", "c")
        self.assertEqual((deleted, again), (True, False))
        yield store.close()
        # a restart: a new store on the same file
        store = yield self.open_store()
        self.addCleanup(store.close)
        db = StoreAstDB(store)
        value = yield db.get("fam", "ab")
        self.assertEqual(value, "v-ab")
        removed = yield db.deltree("fam")  # the family and what lies under it
        self.assertEqual(removed, 2)
        deep = yield db.get("fam/sub", "x")
        kept = yield db.get("other", "a")
        self.assertEqual((deep, kept), (None, "kept"))
