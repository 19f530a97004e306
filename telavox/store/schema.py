"""The store's database layout, independent of the database driver.

This module owns:

* the schema as numbered migrations (:data:`MIGRATIONS`), and the rule that
  a database whose ``schema_version`` is newer than this code is refused
  (:func:`pending_migrations`, :class:`SchemaTooNewError`);
* every SQL statement the store runs (:class:`Statements`), written once
  with the parameter placeholder of a :class:`Dialect` filled in at a
  single place, so that a PostgreSQL provider can reuse the text;
* the mapping between table rows and the frozen records of
  :mod:`telavox.records` (``*_to_row`` / ``row_to_*``).

The SQL keeps to standard types (``TEXT``, ``INTEGER``, ``DOUBLE PRECISION``,
``BOOLEAN``) and standard syntax (``ON CONFLICT ... DO UPDATE`` upserts);
the only per-database piece of DDL is the auto-incrementing key column.
Sequences of strings (user attributes, binding path) are stored as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from telavox.records import BindingRecord, CdrRecord, ConfigVersion, UserRecord, VoicemailRecord

__all__ = [
    "BINDING_COLUMNS",
    "CDR_COLUMNS",
    "CONFIG_COLUMNS",
    "LATEST_VERSION",
    "MIGRATIONS",
    "SQLITE",
    "USER_COLUMNS",
    "VOICEMAIL_COLUMNS",
    "Dialect",
    "SchemaError",
    "SchemaTooNewError",
    "Statements",
    "binding_to_row",
    "cdr_to_row",
    "pending_migrations",
    "row_to_binding",
    "row_to_cdr",
    "row_to_config_version",
    "row_to_user",
    "row_to_voicemail",
    "user_to_row",
    "voicemail_to_row",
]

Row = Sequence[Any]


@attrs.frozen
class Dialect:
    """What differs between databases in the store's SQL.

    ``param`` is the driver's positional parameter placeholder (``?`` for
    sqlite3, ``%s`` for psycopg); ``serial_key`` is the column definition of
    an auto-incrementing integer primary key whose values are never reused.
    """

    name: str
    param: str
    serial_key: str


#: The dialect of Python's sqlite3 module.
SQLITE = Dialect(
    name="sqlite",
    param="?",
    serial_key="INTEGER PRIMARY KEY AUTOINCREMENT",
)


class SchemaError(Exception):
    """The database's schema cannot be used by this code."""


class SchemaTooNewError(SchemaError):
    """The database was written by a newer version of the platform.

    ``found`` is the database's schema version, ``supported`` the newest one
    this code knows.  The database is left untouched.
    """

    def __init__(self, found: int, supported: int, where: str = "") -> None:
        place = f" {where}" if where else ""
        super().__init__(
            f"database{place} has schema version {found}, but this version of "
            f"telavox supports at most {supported}; upgrade telavox or use "
            f"another data directory"
        )
        self.found = found
        self.supported = supported


# --- migrations ----------------------------------------------------------------

#: DDL of the table recording the applied migrations (one row each).
SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " applied_at DOUBLE PRECISION NOT NULL)"
)

#: Migrations in order: migration ``n`` (1-based) is ``MIGRATIONS[n - 1]``,
#: a tuple of DDL templates where ``{serial_key}`` stands for the dialect's
#: auto-incrementing key column.  Never edit a released migration: append.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE users ("
        " extension TEXT NOT NULL PRIMARY KEY,"
        " display_name TEXT NOT NULL DEFAULT '',"
        " realm TEXT NOT NULL DEFAULT '',"
        " ha1_md5 TEXT NOT NULL DEFAULT '',"
        " ha1_sha256 TEXT NOT NULL DEFAULT '',"
        " attributes TEXT NOT NULL DEFAULT '[]')",
        "CREATE TABLE bindings ("
        " aor TEXT NOT NULL,"
        " contact TEXT NOT NULL,"
        " expires_at DOUBLE PRECISION NOT NULL,"
        " q DOUBLE PRECISION NOT NULL DEFAULT 1.0,"
        " call_id TEXT NOT NULL DEFAULT '',"
        " cseq INTEGER NOT NULL DEFAULT 0,"
        " source TEXT NOT NULL DEFAULT '',"
        " connection TEXT NOT NULL DEFAULT '',"
        " user_agent TEXT NOT NULL DEFAULT '',"
        " instance TEXT NOT NULL DEFAULT '',"
        " reg_id INTEGER NOT NULL DEFAULT 0,"
        " path TEXT NOT NULL DEFAULT '[]',"
        " PRIMARY KEY (aor, contact))",
        "CREATE TABLE cdrs ("
        " id {serial_key},"
        " correlation_id TEXT NOT NULL,"
        " call_id TEXT NOT NULL,"
        " caller TEXT NOT NULL,"
        " callee TEXT NOT NULL,"
        " start_time DOUBLE PRECISION NOT NULL,"
        " answer_time DOUBLE PRECISION,"
        " end_time DOUBLE PRECISION NOT NULL,"
        " disposition TEXT NOT NULL,"
        " codec TEXT NOT NULL DEFAULT '',"
        " sip_server TEXT NOT NULL DEFAULT '',"
        " hangup_cause TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX cdrs_end_time ON cdrs (end_time)",
        "CREATE TABLE kv ("
        " family TEXT NOT NULL,"
        " key TEXT NOT NULL,"
        " value TEXT NOT NULL,"
        " PRIMARY KEY (family, key))",
        "CREATE TABLE voicemail ("
        " id {serial_key},"
        " box TEXT NOT NULL,"
        " caller TEXT NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL,"
        " duration DOUBLE PRECISION NOT NULL,"
        " path TEXT NOT NULL,"
        " folder TEXT NOT NULL DEFAULT 'INBOX',"
        " read BOOLEAN NOT NULL DEFAULT FALSE)",
        "CREATE INDEX voicemail_box ON voicemail (box)",
        "CREATE TABLE config_versions ("
        " version {serial_key},"
        " created_at DOUBLE PRECISION NOT NULL,"
        " source TEXT NOT NULL,"
        " text TEXT NOT NULL,"
        " sha256 TEXT NOT NULL)",
    ),
)

#: The schema version this code writes and reads.
LATEST_VERSION = len(MIGRATIONS)


def pending_migrations(
    current: int, dialect: Dialect, where: str = ""
) -> list[tuple[int, tuple[str, ...]]]:
    """The migrations to apply to a database at schema version ``current``,
    as ``(version, statements)`` in order, rendered for ``dialect``.

    Raises :class:`SchemaTooNewError` (naming the database ``where``) when
    ``current`` is newer than :data:`LATEST_VERSION`.
    """
    if current > LATEST_VERSION:
        raise SchemaTooNewError(current, LATEST_VERSION, where)
    return [
        (
            version,
            tuple(sql.format(serial_key=dialect.serial_key) for sql in MIGRATIONS[version - 1]),
        )
        for version in range(current + 1, LATEST_VERSION + 1)
    ]


# --- statements ------------------------------------------------------------------

USER_COLUMNS = ("extension", "display_name", "realm", "ha1_md5", "ha1_sha256", "attributes")
BINDING_COLUMNS = (
    "aor",
    "contact",
    "expires_at",
    "q",
    "call_id",
    "cseq",
    "source",
    "connection",
    "user_agent",
    "instance",
    "reg_id",
    "path",
)
CDR_COLUMNS = (
    "correlation_id",
    "call_id",
    "caller",
    "callee",
    "start_time",
    "answer_time",
    "end_time",
    "disposition",
    "codec",
    "sip_server",
    "hangup_cause",
)
VOICEMAIL_COLUMNS = ("box", "caller", "created_at", "duration", "path", "folder", "read")
CONFIG_COLUMNS = ("created_at", "source", "text", "sha256")


def _names(columns: Sequence[str]) -> str:
    return ", ".join(columns)


class Statements:
    """Every SQL statement of the store, rendered for one :class:`Dialect`.

    This is the only place where parameter placeholders are written.  Each
    attribute is one statement; its parameters are documented beside it and
    follow the column tuples of this module.
    """

    def __init__(self, dialect: Dialect) -> None:
        p = dialect.param

        def params(count: int) -> str:
            return ", ".join([p] * count)

        def insert(table: str, columns: Sequence[str]) -> str:
            return f"INSERT INTO {table} ({_names(columns)}) VALUES ({params(len(columns))})"

        self.dialect = dialect

        # schema_version
        self.schema_version_ddl = SCHEMA_VERSION_DDL
        #: () -> (version,)
        self.current_schema_version = "SELECT COALESCE(MAX(version), 0) FROM schema_version"
        #: (version, applied_at)
        self.record_schema_version = (
            f"INSERT INTO schema_version (version, applied_at) VALUES ({p}, {p})"
        )

        # users
        #: ()
        self.delete_all_users = "DELETE FROM users"
        #: user_to_row(user)
        self.insert_user = insert("users", USER_COLUMNS)
        #: (extension,) -> user row
        self.get_user = f"SELECT {_names(USER_COLUMNS)} FROM users WHERE extension = {p}"
        #: () -> user rows
        self.list_users = f"SELECT {_names(USER_COLUMNS)} FROM users ORDER BY extension"

        # bindings
        updates = ", ".join(f"{c} = excluded.{c}" for c in BINDING_COLUMNS[2:])
        #: binding_to_row(binding)
        self.upsert_binding = (
            f"{insert('bindings', BINDING_COLUMNS)}"
            f" ON CONFLICT (aor, contact) DO UPDATE SET {updates}"
        )
        #: (aor, contact)
        self.delete_binding = f"DELETE FROM bindings WHERE aor = {p} AND contact = {p}"
        #: () -> binding rows
        self.load_bindings = f"SELECT {_names(BINDING_COLUMNS)} FROM bindings ORDER BY aor, contact"

        # cdrs
        #: cdr_to_row(cdr)
        self.insert_cdr = insert("cdrs", CDR_COLUMNS)
        #: (limit,) -> cdr rows
        self.list_cdrs = (
            f"SELECT {_names(CDR_COLUMNS)} FROM cdrs ORDER BY end_time DESC, id DESC LIMIT {p}"
        )
        #: (since, limit) -> cdr rows
        self.list_cdrs_since = (
            f"SELECT {_names(CDR_COLUMNS)} FROM cdrs WHERE end_time >= {p}"
            f" ORDER BY end_time DESC, id DESC LIMIT {p}"
        )

        # kv
        #: (family, key) -> (value,)
        self.kv_get = f"SELECT value FROM kv WHERE family = {p} AND key = {p}"
        #: (family, key, value)
        self.kv_put = (
            f"{insert('kv', ('family', 'key', 'value'))}"
            " ON CONFLICT (family, key) DO UPDATE SET value = excluded.value"
        )
        #: (family, key)
        self.kv_delete = f"DELETE FROM kv WHERE family = {p} AND key = {p}"
        #: (family, len(prefix), prefix) -> (key,) rows, unsorted
        self.kv_keys = f"SELECT key FROM kv WHERE family = {p} AND substr(key, 1, {p}) = {p}"

        # voicemail
        vm_columns = ("id", *VOICEMAIL_COLUMNS)
        #: voicemail_to_row(record); the new id is the driver's last row id
        self.insert_voicemail = insert("voicemail", VOICEMAIL_COLUMNS)
        #: (box,) -> voicemail rows
        self.list_voicemail = (
            f"SELECT {_names(vm_columns)} FROM voicemail WHERE box = {p} ORDER BY created_at, id"
        )
        #: (box, folder) -> voicemail rows
        self.list_voicemail_folder = (
            f"SELECT {_names(vm_columns)} FROM voicemail WHERE box = {p} AND folder = {p}"
            " ORDER BY created_at, id"
        )
        #: (id,) -> voicemail row
        self.get_voicemail = f"SELECT {_names(vm_columns)} FROM voicemail WHERE id = {p}"
        #: (folder or None, read or None, id)
        self.update_voicemail = (
            f"UPDATE voicemail SET folder = COALESCE({p}, folder), read = COALESCE({p}, read)"
            f" WHERE id = {p}"
        )
        #: (id,)
        self.delete_voicemail = f"DELETE FROM voicemail WHERE id = {p}"

        # config versions
        cv_columns = ("version", *CONFIG_COLUMNS)
        #: config row minus version; the new version is the driver's last row id
        self.insert_config_version = insert("config_versions", CONFIG_COLUMNS)
        #: () -> config row
        self.newest_config_version = (
            f"SELECT {_names(cv_columns)} FROM config_versions ORDER BY version DESC LIMIT 1"
        )
        #: (version,) -> config row
        self.get_config_version = (
            f"SELECT {_names(cv_columns)} FROM config_versions WHERE version = {p}"
        )
        #: (limit,) -> config rows
        self.list_config_versions = (
            f"SELECT {_names(cv_columns)} FROM config_versions ORDER BY version DESC LIMIT {p}"
        )


# --- rows and records ----------------------------------------------------------------


def _dump_strings(values: Sequence[Any]) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def user_to_row(user: UserRecord) -> tuple[Any, ...]:
    """The parameters of ``insert_user`` for ``user`` (USER_COLUMNS order)."""
    return (
        user.extension,
        user.display_name,
        user.realm,
        user.ha1_md5,
        user.ha1_sha256,
        _dump_strings([[k, v] for k, v in user.attributes]),
    )


def row_to_user(row: Row) -> UserRecord:
    """The UserRecord of a row selected with USER_COLUMNS."""
    return UserRecord(
        extension=row[0],
        display_name=row[1],
        realm=row[2],
        ha1_md5=row[3],
        ha1_sha256=row[4],
        attributes=tuple((k, v) for k, v in json.loads(row[5])),
    )


def binding_to_row(binding: BindingRecord) -> tuple[Any, ...]:
    """The parameters of ``upsert_binding`` for ``binding`` (BINDING_COLUMNS order)."""
    return (
        binding.aor,
        binding.contact,
        binding.expires_at,
        binding.q,
        binding.call_id,
        binding.cseq,
        binding.source,
        binding.connection,
        binding.user_agent,
        binding.instance,
        binding.reg_id,
        _dump_strings(list(binding.path)),
    )


def row_to_binding(row: Row) -> BindingRecord:
    """The BindingRecord of a row selected with BINDING_COLUMNS."""
    return BindingRecord(
        aor=row[0],
        contact=row[1],
        expires_at=float(row[2]),
        q=float(row[3]),
        call_id=row[4],
        cseq=int(row[5]),
        source=row[6],
        connection=row[7],
        user_agent=row[8],
        instance=row[9],
        reg_id=int(row[10]),
        path=tuple(json.loads(row[11])),
    )


def cdr_to_row(cdr: CdrRecord) -> tuple[Any, ...]:
    """The parameters of ``insert_cdr`` for ``cdr`` (CDR_COLUMNS order)."""
    return (
        cdr.correlation_id,
        cdr.call_id,
        cdr.caller,
        cdr.callee,
        cdr.start_time,
        cdr.answer_time,
        cdr.end_time,
        cdr.disposition,
        cdr.codec,
        cdr.sip_server,
        cdr.hangup_cause,
    )


def row_to_cdr(row: Row) -> CdrRecord:
    """The CdrRecord of a row selected with CDR_COLUMNS."""
    return CdrRecord(
        correlation_id=row[0],
        call_id=row[1],
        caller=row[2],
        callee=row[3],
        start_time=float(row[4]),
        answer_time=None if row[5] is None else float(row[5]),
        end_time=float(row[6]),
        disposition=row[7],
        codec=row[8],
        sip_server=row[9],
        hangup_cause=row[10],
    )


def voicemail_to_row(record: VoicemailRecord) -> tuple[Any, ...]:
    """The parameters of ``insert_voicemail`` for ``record`` (its id left out)."""
    return (
        record.box,
        record.caller,
        record.created_at,
        record.duration,
        record.path,
        record.folder,
        bool(record.read),
    )


def row_to_voicemail(row: Row) -> VoicemailRecord:
    """The VoicemailRecord of a row selected with ``id`` + VOICEMAIL_COLUMNS."""
    return VoicemailRecord(
        id=int(row[0]),
        box=row[1],
        caller=row[2],
        created_at=float(row[3]),
        duration=float(row[4]),
        path=row[5],
        folder=row[6],
        read=bool(row[7]),
    )


def row_to_config_version(row: Row) -> ConfigVersion:
    """The ConfigVersion of a row selected with ``version`` + CONFIG_COLUMNS."""
    return ConfigVersion(
        version=int(row[0]),
        created_at=float(row[1]),
        source=row[2],
        text=row[3],
        sha256=row[4],
    )
