"""The AstDB: Asterisk's small family/key → value database for scripts.

Owns the :class:`~telavox.scriptserver.interfaces.IAstDB` the DATABASE
commands use: :class:`StoreAstDB`, kept in the platform's store so values
outlive a restart as Asterisk's do, and :class:`MemoryAstDB` (tests, and
scripts run without a store).  Keys are ``/family/key`` paths as in
Asterisk, so DELTREE removes ``/family/keytree`` and everything under it
(a family may itself contain ``/``).
"""

from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from telavox.interfaces import IStore
from telavox.scriptserver.interfaces import IAstDB

__all__ = ["STORE_FAMILY", "MemoryAstDB", "StoreAstDB"]

STORE_FAMILY = "astdb"
"""The store's key-value family the AstDB's paths live in."""


def _path(family: str, key: str) -> str:
    return f"/{family}/{key}"


def _root(family: str, keytree: str) -> str:
    return _path(family, keytree) if keytree else f"/{family}"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


@implementer(IAstDB)
class MemoryAstDB:
    """An :class:`IAstDB` in a dict, lost at exit."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, family: str, key: str) -> defer.Deferred[str | None]:
        return defer.succeed(self.data.get(_path(family, key)))

    def put(self, family: str, key: str, value: str) -> defer.Deferred[None]:
        self.data[_path(family, key)] = value
        return defer.succeed(None)

    def delete(self, family: str, key: str) -> defer.Deferred[bool]:
        return defer.succeed(self.data.pop(_path(family, key), None) is not None)

    def deltree(self, family: str, keytree: str = "") -> defer.Deferred[int]:
        root = _root(family, keytree)
        doomed = [k for k in self.data if _under(k, root)]
        for k in doomed:
            del self.data[k]
        return defer.succeed(len(doomed))


@implementer(IAstDB)
class StoreAstDB:
    """An :class:`IAstDB` in the platform's store (one row per path, in the
    key-value family :data:`STORE_FAMILY`): written at once, kept across
    restarts."""

    def __init__(self, store: IStore) -> None:
        self.store = store

    def get(self, family: str, key: str) -> defer.Deferred[str | None]:
        return self.store.kv_get(STORE_FAMILY, _path(family, key))

    def put(self, family: str, key: str, value: str) -> defer.Deferred[None]:
        return self.store.kv_put(STORE_FAMILY, _path(family, key), value)

    def delete(self, family: str, key: str) -> defer.Deferred[bool]:
        return self.store.kv_delete(STORE_FAMILY, _path(family, key))

    def deltree(self, family: str, keytree: str = "") -> defer.Deferred[int]:
        return defer.ensureDeferred(self._deltree(_root(family, keytree)))

    async def _deltree(self, root: str) -> int:
        keys = await self.store.kv_keys(STORE_FAMILY, root)
        removed = 0
        for path in keys:
            if _under(path, root) and await self.store.kv_delete(STORE_FAMILY, path):
                removed += 1
        return removed
