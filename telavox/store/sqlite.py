"""The embedded store: :class:`telavox.interfaces.IStore` kept in one SQLite file.

This module owns :class:`SqliteStore`.  Every database operation runs on a
single dedicated worker thread (a one-thread
:class:`twisted.python.threadpool.ThreadPool`), which also creates the
``sqlite3`` connection, so the reactor thread never touches the database
and the operations run one at a time in the order they were requested.
Multi-row operations run inside one transaction each.  The SQL and the
row/record mapping come from :mod:`telavox.store.schema`.
"""

from __future__ import annotations

import enum
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from telavox.interfaces import IStore
from telavox.records import BindingRecord, CdrRecord, ConfigVersion, UserRecord, VoicemailRecord
from telavox.store.schema import (
    SQLITE,
    Statements,
    binding_to_row,
    cdr_to_row,
    pending_migrations,
    row_to_binding,
    row_to_cdr,
    row_to_config_version,
    row_to_user,
    row_to_voicemail,
    user_to_row,
    voicemail_to_row,
)

__all__ = ["SqliteStore", "StoreNotOpenError"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_MEMORY = ":memory:"


class StoreNotOpenError(Exception):
    """The store was not opened yet, failed to open, or is closing/closed."""


class _State(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction: commit on success, else roll back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative int, not {limit!r}")


@implementer(IStore)
class SqliteStore:
    """The platform's persistent data in the SQLite file ``path``.

    ``reactor`` receives the results from the worker thread.  ``threadpool``
    is the one-thread pool to run the database work on; by default the store
    creates its own, starts it in :meth:`open` and stops it in :meth:`close`
    (a pool passed in is started and stopped by its owner).  ``clock``
    returns wall-clock seconds and stamps configuration versions and
    migrations; it is called on the worker thread.

    Every method returns a Deferred; errors (including those of sqlite3)
    fail it.  When the reactor provides ``IReactorCore`` the store also
    closes itself before reactor shutdown, so queued writes are not lost;
    an owner that closes it itself after its own shutdown work (the
    platform, once every component has written what it holds) passes
    ``close_at_shutdown=False``, since "before shutdown" triggers run in no
    order the owner controls.
    """

    _log = Logger()

    def __init__(
        self,
        path: str | os.PathLike[str],
        reactor: IReactorFromThreads,
        threadpool: ThreadPool | None = None,
        clock: Callable[[], float] = time.time,
        *,
        close_at_shutdown: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self._close_at_shutdown_wanted = close_at_shutdown
        self._reactor = reactor
        if threadpool is None:
            threadpool = ThreadPool(minthreads=1, maxthreads=1, name="telavox-store")
            self._owns_pool = True
        else:
            if threadpool.max != 1:
                raise ValueError("the store's thread pool must have exactly one thread")
            self._owns_pool = False
        self._pool = threadpool
        self._clock = clock
        self._sql = Statements(SQLITE)
        self._state = _State.NEW
        self._shutdown_trigger: Any = None
        self._close_waiters: list[Deferred[None]] = []
        # Only ever read or written on the worker thread.
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<SqliteStore {self.path!r} {self._state.value}>"

    # --- life cycle ---------------------------------------------------------------

    def open(self) -> Deferred[None]:
        """Create the database (and its directory) or migrate it to the
        current schema.  Fires with None; fails with
        :class:`telavox.store.schema.SchemaTooNewError` for a database
        written by a newer version, in which case the store is closed.
        Opening an open store again only re-checks the schema."""
        if self._state in (_State.CLOSING, _State.CLOSED):
            return fail(StoreNotOpenError(f"store {self.path!r} is closed"))
        first = self._state is _State.NEW
        if first:
            self._state = _State.OPEN
            if self._owns_pool:
                self._pool.start()
            core = IReactorCore(self._reactor, None)
            if core is not None and self._close_at_shutdown_wanted:
                self._shutdown_trigger = core.addSystemEventTrigger(
                    "before", "shutdown", self._close_at_shutdown
                )

        def opened(version: int) -> None:
            self._log.info(
                "Store {path} open at schema version {version}", path=self.path, version=version
            )

        def failed(failure: Failure) -> Deferred[None]:
            if not first:
                return fail(failure)
            self._log.error(
                "Store {path} failed to open: {error}", path=self.path, error=failure.value
            )

            def reraise(_: None) -> Deferred[None]:
                return fail(failure)

            return self.close().addCallback(reraise)

        d = deferToThreadPool(self._reactor, self._pool, self._open_on_worker)
        return d.addCallback(opened).addErrback(failed)

    def close(self) -> Deferred[None]:
        """Let every operation requested so far finish, then close the
        database and stop the store's own thread pool.  Fires with None.
        Idempotent; operations requested afterwards fail with
        :class:`StoreNotOpenError`."""
        if self._state is _State.NEW:
            self._state = _State.CLOSED
        if self._state is _State.CLOSED:
            return succeed(None)
        if self._state is _State.CLOSING:
            waiter: Deferred[None] = Deferred()
            self._close_waiters.append(waiter)
            return waiter
        self._state = _State.CLOSING
        if self._shutdown_trigger is not None:
            core = IReactorCore(self._reactor)
            core.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        d = deferToThreadPool(self._reactor, self._pool, self._close_on_worker)

        def finished(result: Failure | None) -> Failure | None:
            if self._owns_pool:
                self._pool.stop()
            self._state = _State.CLOSED
            waiters, self._close_waiters = self._close_waiters, []
            for waiter in waiters:
                waiter.callback(None)
            if isinstance(result, Failure):
                self._log.failure("Store {path} failed to close", result, path=self.path)
            else:
                self._log.info("Store {path} closed", path=self.path)
            return result

        d.addBoth(finished)
        return d

    def _close_at_shutdown(self) -> Deferred[None]:
        self._shutdown_trigger = None
        return self.close()

    # --- users ----------------------------------------------------------------------

    def sync_users(self, users: Iterable[UserRecord]) -> Deferred[None]:
        """Make the stored users exactly ``users``, in one transaction."""
        try:
            batch = tuple(users)
        except TypeError:
            return fail()
        return self._run(self._sync_users, batch)

    def get_user(self, extension: str) -> Deferred[UserRecord | None]:
        """Fires with the UserRecord of ``extension`` or None."""
        return self._run(self._get_user, extension)

    def list_users(self) -> Deferred[list[UserRecord]]:
        """Fires with every UserRecord, ordered by extension."""
        return self._run(self._list_users)

    # --- bindings --------------------------------------------------------------------

    def save_bindings(
        self, upserts: Iterable[BindingRecord], removals: Iterable[tuple[str, str]]
    ) -> Deferred[None]:
        """In one transaction, delete each ``(aor, contact)`` of ``removals``
        then insert or replace each BindingRecord of ``upserts`` (so a key
        named in both ends up stored)."""
        try:
            upsert_batch = tuple(upserts)
            removal_batch = tuple((aor, contact) for aor, contact in removals)
        except (TypeError, ValueError):
            return fail()
        return self._run(self._save_bindings, upsert_batch, removal_batch)

    def load_bindings(self) -> Deferred[list[BindingRecord]]:
        """Fires with every stored BindingRecord, ordered by aor then contact."""
        return self._run(self._load_bindings)

    # --- cdrs --------------------------------------------------------------------------

    def add_cdrs(self, cdrs: Iterable[CdrRecord]) -> Deferred[None]:
        """Append CdrRecords in one transaction."""
        try:
            batch = tuple(cdrs)
        except TypeError:
            return fail()
        return self._run(self._add_cdrs, batch)

    def list_cdrs(self, since: float | None = None, limit: int = 100) -> Deferred[list[CdrRecord]]:
        """Fires with up to ``limit`` CdrRecords whose end_time >= ``since``
        (every one when None), newest end_time first (ties: last added first)."""
        try:
            _check_limit(limit)
        except ValueError:
            return fail()
        return self._run(self._list_cdrs, since, limit)

    # --- kv ------------------------------------------------------------------------------

    def kv_get(self, family: str, key: str) -> Deferred[str | None]:
        """Fires with the str value of ``family``/``key`` or None."""
        return self._run(self._kv_get, family, key)

    def kv_put(self, family: str, key: str, value: str) -> Deferred[None]:
        """Set the str value of ``family``/``key``."""
        return self._run(self._kv_put, family, key, value)

    def kv_delete(self, family: str, key: str) -> Deferred[bool]:
        """Fires with True when a value was deleted, False when none existed."""
        return self._run(self._kv_delete, family, key)

    def kv_keys(self, family: str, prefix: str = "") -> Deferred[list[str]]:
        """Fires with the keys of ``family`` starting with ``prefix``, sorted
        by code point (as Python sorts str)."""
        return self._run(self._kv_keys, family, prefix)

    # --- voicemail ---------------------------------------------------------------------

    def add_voicemail(self, record: VoicemailRecord) -> Deferred[int]:
        """Store a VoicemailRecord (its id is ignored).  Fires with the new id;
        ids are never reused."""
        return self._run(self._add_voicemail, record)

    def list_voicemail(
        self, box: str, folder: str | None = None
    ) -> Deferred[list[VoicemailRecord]]:
        """Fires with the box's VoicemailRecords, oldest first, optionally of
        one folder."""
        return self._run(self._list_voicemail, box, folder)

    def update_voicemail(
        self, message_id: int, folder: str | None = None, read: bool | None = None
    ) -> Deferred[bool]:
        """Move the message to ``folder`` and/or set its ``read`` flag (None
        leaves a field alone).  Fires with True if the message exists."""
        return self._run(self._update_voicemail, message_id, folder, read)

    def delete_voicemail(self, message_id: int) -> Deferred[VoicemailRecord | None]:
        """Fires with the deleted VoicemailRecord, or None if there was none."""
        return self._run(self._delete_voicemail, message_id)

    # --- configuration versions -------------------------------------------------------

    def add_config_version(self, text: str, source: str) -> Deferred[ConfigVersion]:
        """Store ``text`` as a new version unless it equals the newest one.
        Fires with the ConfigVersion now newest (the existing one when the
        text is unchanged)."""
        return self._run(self._add_config_version, text, source)

    def get_config_version(self, version: int) -> Deferred[ConfigVersion | None]:
        """Fires with the ConfigVersion numbered ``version`` or None."""
        return self._run(self._get_config_version, version)

    def list_config_versions(self, limit: int = 20) -> Deferred[list[ConfigVersion]]:
        """Fires with up to ``limit`` ConfigVersions, newest first."""
        try:
            _check_limit(limit)
        except ValueError:
            return fail()
        return self._run(self._list_config_versions, limit)

    # --- running on the worker ---------------------------------------------------------

    def _run(
        self,
        work: Callable[Concatenate[sqlite3.Connection, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> Deferred[_R]:
        """Queue ``work(connection, *args)`` for the worker thread."""
        if self._state is not _State.OPEN:
            return fail(StoreNotOpenError(f"store {self.path!r} is {self._state.value}"))

        def on_worker() -> _R:
            conn = self._conn
            if conn is None:
                raise StoreNotOpenError(f"store {self.path!r} is not open")
            return work(conn, *args, **kwargs)

        return deferToThreadPool(self._reactor, self._pool, on_worker)

    def _open_on_worker(self) -> int:
        """On the worker: connect (once), migrate, set the pragmas; return
        the schema version."""
        conn = self._conn
        if conn is not None:
            return self._migrate(conn)
        if self.path != _MEMORY:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            version = self._migrate(conn)
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return version

    def _migrate(self, conn: sqlite3.Connection) -> int:
        """On the worker: apply the pending migrations in one transaction."""
        sql = self._sql
        with _transaction(conn):
            conn.execute(sql.schema_version_ddl)
            (current,) = conn.execute(sql.current_schema_version).fetchone()
            version = int(current)
            for target, statements in pending_migrations(version, sql.dialect, self.path):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(sql.record_schema_version, (target, self._clock()))
                version = target
        return version

    def _close_on_worker(self) -> None:
        """On the worker: close the connection, if any."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # Each of the following runs on the worker with the open connection.

    def _sync_users(self, conn: sqlite3.Connection, users: Sequence[UserRecord]) -> None:
        rows = [user_to_row(user) for user in users]
        with _transaction(conn):
            conn.execute(self._sql.delete_all_users)
            conn.executemany(self._sql.insert_user, rows)

    def _get_user(self, conn: sqlite3.Connection, extension: str) -> UserRecord | None:
        row = conn.execute(self._sql.get_user, (extension,)).fetchone()
        return None if row is None else row_to_user(row)

    def _list_users(self, conn: sqlite3.Connection) -> list[UserRecord]:
        return [row_to_user(row) for row in conn.execute(self._sql.list_users)]

    def _save_bindings(
        self,
        conn: sqlite3.Connection,
        upserts: Sequence[BindingRecord],
        removals: Sequence[tuple[str, str]],
    ) -> None:
        rows = [binding_to_row(binding) for binding in upserts]
        with _transaction(conn):
            conn.executemany(self._sql.delete_binding, removals)
            conn.executemany(self._sql.upsert_binding, rows)

    def _load_bindings(self, conn: sqlite3.Connection) -> list[BindingRecord]:
        return [row_to_binding(row) for row in conn.execute(self._sql.load_bindings)]

    def _add_cdrs(self, conn: sqlite3.Connection, cdrs: Sequence[CdrRecord]) -> None:
        rows = [cdr_to_row(cdr) for cdr in cdrs]
        with _transaction(conn):
            conn.executemany(self._sql.insert_cdr, rows)

    def _list_cdrs(
        self, conn: sqlite3.Connection, since: float | None, limit: int
    ) -> list[CdrRecord]:
        if since is None:
            cursor = conn.execute(self._sql.list_cdrs, (limit,))
        else:
            cursor = conn.execute(self._sql.list_cdrs_since, (since, limit))
        return [row_to_cdr(row) for row in cursor]

    def _kv_get(self, conn: sqlite3.Connection, family: str, key: str) -> str | None:
        row = conn.execute(self._sql.kv_get, (family, key)).fetchone()
        return None if row is None else str(row[0])

    def _kv_put(self, conn: sqlite3.Connection, family: str, key: str, value: str) -> None:
        conn.execute(self._sql.kv_put, (family, key, value))

    def _kv_delete(self, conn: sqlite3.Connection, family: str, key: str) -> bool:
        return conn.execute(self._sql.kv_delete, (family, key)).rowcount > 0

    def _kv_keys(self, conn: sqlite3.Connection, family: str, prefix: str) -> list[str]:
        cursor = conn.execute(self._sql.kv_keys, (family, len(prefix), prefix))
        return sorted(str(row[0]) for row in cursor)

    def _add_voicemail(self, conn: sqlite3.Connection, record: VoicemailRecord) -> int:
        cursor = conn.execute(self._sql.insert_voicemail, voicemail_to_row(record))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _list_voicemail(
        self, conn: sqlite3.Connection, box: str, folder: str | None
    ) -> list[VoicemailRecord]:
        if folder is None:
            cursor = conn.execute(self._sql.list_voicemail, (box,))
        else:
            cursor = conn.execute(self._sql.list_voicemail_folder, (box, folder))
        return [row_to_voicemail(row) for row in cursor]

    def _update_voicemail(
        self, conn: sqlite3.Connection, message_id: int, folder: str | None, read: bool | None
    ) -> bool:
        flag = None if read is None else bool(read)
        cursor = conn.execute(self._sql.update_voicemail, (folder, flag, message_id))
        return cursor.rowcount > 0

    def _delete_voicemail(
        self, conn: sqlite3.Connection, message_id: int
    ) -> VoicemailRecord | None:
        with _transaction(conn):
            row = conn.execute(self._sql.get_voicemail, (message_id,)).fetchone()
            if row is None:
                return None
            conn.execute(self._sql.delete_voicemail, (message_id,))
        return row_to_voicemail(row)

    def _add_config_version(
        self, conn: sqlite3.Connection, text: str, source: str
    ) -> ConfigVersion:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with _transaction(conn):
            row = conn.execute(self._sql.newest_config_version).fetchone()
            if row is not None:
                newest = row_to_config_version(row)
                if newest.sha256 == digest and newest.text == text:
                    return newest
            created_at = float(self._clock())
            cursor = conn.execute(
                self._sql.insert_config_version, (created_at, source, text, digest)
            )
            assert cursor.lastrowid is not None
            version = cursor.lastrowid
        return ConfigVersion(
            version=version, created_at=created_at, source=source, text=text, sha256=digest
        )

    def _get_config_version(self, conn: sqlite3.Connection, version: int) -> ConfigVersion | None:
        row = conn.execute(self._sql.get_config_version, (version,)).fetchone()
        return None if row is None else row_to_config_version(row)

    def _list_config_versions(self, conn: sqlite3.Connection, limit: int) -> list[ConfigVersion]:
        cursor = conn.execute(self._sql.list_config_versions, (limit,))
        return [row_to_config_version(row) for row in cursor]
