"""The platform's persistent data: the embedded SQLite provider of
:class:`telavox.interfaces.IStore`.

:class:`SqliteStore` keeps users, location bindings, call detail records,
script key/value data, voicemail metadata and configuration versions in one
SQLite file; :func:`open_store` creates and opens it under a data directory.
The schema and SQL live in :mod:`telavox.store.schema` so that another
database provider can share them.
"""

from __future__ import annotations

import os

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads

from telavox.store.schema import LATEST_VERSION, SchemaError, SchemaTooNewError
from telavox.store.sqlite import SqliteStore, StoreNotOpenError

__all__ = [
    "DATABASE_FILE",
    "LATEST_VERSION",
    "SchemaError",
    "SchemaTooNewError",
    "SqliteStore",
    "StoreNotOpenError",
    "open_store",
]

#: Name of the database file inside the data directory.
DATABASE_FILE = "telavox.sqlite3"


def open_store(
    data_dir: str | os.PathLike[str], reactor: IReactorFromThreads
) -> Deferred[SqliteStore]:
    """Open (creating or migrating) the store of ``data_dir``.

    Fires with the open :class:`SqliteStore` whose file is
    ``data_dir/telavox.sqlite3``; fails as :meth:`SqliteStore.open` does.
    """
    store = SqliteStore(os.path.join(os.fspath(data_dir), DATABASE_FILE), reactor)
    return store.open().addCallback(lambda _: store)
