"""The AstDB: Asterisk's small family/key → value database for scripts.

Owns :class:`MemoryAstDB`, the in-memory
:class:`~telavox.scriptserver.interfaces.IAstDB` the DATABASE commands
use.  Keys are ``/family/key`` paths as in Asterisk, so DELTREE removes
``/family/keytree`` and everything under it.
"""

from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from telavox.scriptserver.interfaces import IAstDB

__all__ = ["MemoryAstDB"]


def _path(family: str, key: str) -> str:
    return f"/{family}/{key}"


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
        root = _path(family, keytree) if keytree else f"/{family}"
        doomed = [k for k in self.data if k == root or k.startswith(root + "/")]
        for k in doomed:
            del self.data[k]
        return defer.succeed(len(doomed))
