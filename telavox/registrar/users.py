"""The user directory: the ``[[users]]`` of the configuration as digest
credentials, in memory.

Owns :class:`UserDirectory`, the platform's
:class:`~telavox.interfaces.IUserDirectory`.  A password is used once, to
derive the HA1 (``H(user:realm:password)``, RFC 7616 §3.4.2) of every
algorithm this Python can hash (MD5, SHA-256, SHA-512-256) with the platform
domain as realm, and is not kept: the directory holds only HA1 values and
:class:`~telavox.records.UserRecord` values.  A user given as precomputed
``ha1_md5``/``ha1_sha256`` keeps those (for the realm they were computed
with).  Everything is synchronous; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zope.interface import implementer

from telavox.interfaces import IUserDirectory
from telavox.records import UserRecord
from telavox.sip.digest import SUPPORTED_ALGORITHMS, DigestError, canonical_algorithm, ha1

__all__ = ["HA1_ALGORITHMS", "UserDirectory", "user_record"]

HA1_ALGORITHMS = tuple(a for a in ("MD5", "SHA-256", "SHA-512-256") if a in SUPPORTED_ALGORITHMS)
"""The algorithms an HA1 is derived for from a password (those hashlib offers)."""


def _derive(user: Any, realm: str) -> dict[str, str]:
    """The HA1 values of one ``UserConfig``, by algorithm."""
    if user.password:
        return {alg: ha1(user.extension, realm, user.password, alg) for alg in HA1_ALGORITHMS}
    given = {"MD5": user.ha1_md5, "SHA-256": user.ha1_sha256}
    return {alg: value.lower() for alg, value in given.items() if value}


def user_record(user: Any, realm: str, hashes: Mapping[str, str]) -> UserRecord:
    """The :class:`UserRecord` of a ``UserConfig`` with its HA1 ``hashes``
    (name and sipserver also as sorted attribute pairs; no password)."""
    attributes = sorted((key, value) for key, value in (
        ("name", user.name), ("sipserver", user.sipserver)) if value)
    return UserRecord(extension=user.extension, display_name=user.name, realm=realm,
                      ha1_md5=hashes.get("MD5", ""), ha1_sha256=hashes.get("SHA-256", ""),
                      attributes=tuple(attributes))


@implementer(IUserDirectory)
class UserDirectory:
    """The users of the platform and their HA1 values for ``realm``.

    ``users`` are ``telavox.config.model.UserConfig`` values; build a new
    directory when the users or the realm change, since
    passwords are not kept to derive from again.
    """

    def __init__(self, users: Iterable[Any], realm: str) -> None:
        self.realm = realm
        self._records: dict[str, UserRecord] = {}
        self._ha1: dict[str, dict[str, str]] = {}
        for user in users:
            hashes = _derive(user, realm)
            self._ha1[user.extension] = hashes
            self._records[user.extension] = user_record(user, realm, hashes)

    @classmethod
    def from_config(cls, config: Any) -> UserDirectory:
        """The directory of a whole configuration: its users, realm = domain."""
        return cls(config.users, config.platform.domain)

    def records(self) -> list[UserRecord]:
        """Every user, ordered by extension (what the store is synced to)."""
        return [self._records[ext] for ext in sorted(self._records)]

    def __len__(self) -> int:
        return len(self._records)

    def get_user(self, extension: str) -> UserRecord | None:
        """The user of ``extension`` or None."""
        return self._records.get(extension)

    def ha1(self, username: str, algorithm: str) -> str | None:
        """The hex HA1 of ``username`` for ``algorithm`` (a ``-sess`` variant
        uses its base's), or None when unknown."""
        hashes = self._ha1.get(username)
        if hashes is None:
            return None
        try:
            name = canonical_algorithm(algorithm)
        except DigestError:
            return None
        return hashes.get(name.removesuffix("-sess"))
