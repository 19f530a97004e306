"""Where things live: rendezvous hashing over the SIP server pool, pins, and
the longest-prefix match of numbers over the gateways.  Sans-IO.

Owns :class:`Router`, the routing state of tlb (members with their up and
drained flags, pins, the gateways' prefixes), and the pure functions it is
made of: :func:`user_part`, :func:`weight`, :func:`rank`, :func:`pick`.

Users and targets (``"1001"``, ``"800"``, ``"main"``) are spread over the SIP
servers by rendezvous (highest-random-weight) hashing: every member gets a
weight for a key from a stable hash of the member's name and the key
(BLAKE2b, never Python's salted ``hash()``), and the key lives on the
available member with the highest weight.  So the members agree across
processes and restarts, the keys spread evenly, and when a member goes down
or is drained only its own keys move (each to its second choice), and they
come back when it returns.  A pin (``[[users]] sipserver``, ``[tlb] pins``)
wins while the pinned member is available; otherwise the key is hashed.

A number goes to the gateways of the longest prefix it starts with
(prefixes and numbers are compared as written: tproxy hands over E.164 with
``+``; the prefix ``""`` matches every number).  **Choice:** the result lists
the available gateways of the longest matching prefix in configuration
order, then, as further fallbacks, the available gateways of each shorter
matching prefix (each gateway once, at its longest matching prefix), so a
catch-all gateway backs up a specific carrier that is down.  A router built
with ``prefix_fallback=False`` returns the longest prefix's gateways only.

Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import unquote

import attrs

from telavox.records import PoolMember

__all__ = ["Router", "pick", "rank", "user_part", "weight"]

_SCHEMES = ("sip:", "sips:", "tel:")


def user_part(aor: str) -> str:
    """The key of an address-of-record: ``sip:1001@domain``,
    ``"Alice" <sips:1001@d>``, ``1001@domain`` and ``1001`` all give ``"1001"``.

    Percent-escapes in the user part are decoded (``%31001`` is ``11001``);
    parameters and headers after the host are dropped.  Text without ``@``
    after the scheme is taken whole (``sip:800`` gives ``"800"``).
    """
    text = aor.strip()
    start, end = text.find("<"), text.rfind(">")
    if 0 <= start < end:
        text = text[start + 1:end].strip()
    lowered = text.lower()
    for scheme in _SCHEMES:
        if lowered.startswith(scheme):
            text = text[len(scheme):]
            break
    user, at, _host = text.partition("@")
    if not at:
        user = user.split(";", 1)[0].split("?", 1)[0]
    return unquote(user)


def weight(name: str, key: str) -> int:
    """The rendezvous weight of member ``name`` for ``key``: 64 bits of
    BLAKE2b over both, the same in every process."""
    digest = hashlib.blake2b(name.encode("utf-8") + b"\x00" + key.encode("utf-8"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rank(key: str, members: Iterable[PoolMember]) -> list[PoolMember]:
    """Every member of ``members``, the one ``key`` prefers first (ties, which
    need a 64-bit collision, go by name)."""
    return sorted(members, key=lambda m: (weight(m.name, key), m.name), reverse=True)


def pick(key: str, members: Iterable[PoolMember]) -> PoolMember | None:
    """The available member with the highest weight for ``key``, or None."""
    best: PoolMember | None = None
    best_weight = (-1, "")
    for member in members:
        if not member.available:
            continue
        candidate = (weight(member.name, key), member.name)
        if candidate > best_weight:
            best, best_weight = member, candidate
    return best


class Router:
    """The routing state: SIP servers and gateways with their flags, pins and
    the gateways' prefixes.

    ``sipservers`` and ``gateways`` are the members in configuration order
    (names unique across both); ``prefixes`` maps a gateway's name to its
    prefixes; ``pins`` maps a key to the SIP server it is pinned to.
    """

    def __init__(self, sipservers: Sequence[PoolMember], gateways: Sequence[PoolMember] = (),
                 prefixes: Mapping[str, Sequence[str]] | None = None,
                 pins: Mapping[str, str] | None = None, *,
                 prefix_fallback: bool = True) -> None:
        self._members: dict[str, PoolMember] = {}
        for member in (*sipservers, *gateways):
            if member.name in self._members:
                raise ValueError(f"member name {member.name!r} is used twice")
            self._members[member.name] = member
        self.sipservers: tuple[str, ...] = tuple(m.name for m in sipservers)
        self.gateways: tuple[str, ...] = tuple(m.name for m in gateways)
        self.prefix_fallback = prefix_fallback
        self._by_prefix: dict[str, list[str]] = {}
        for name in self.gateways:
            for prefix in dict.fromkeys((prefixes or {}).get(name, ())):
                self._by_prefix.setdefault(prefix, []).append(name)
        self._pins: dict[str, str] = {}
        self.set_pins(pins or {})

    # -- state ----------------------------------------------------------------------

    def member(self, name: str) -> PoolMember | None:
        """The current record of SIP server or gateway ``name``, or None."""
        return self._members.get(name)

    def pool(self) -> list[PoolMember]:
        """Every SIP server, then every gateway, in configuration order."""
        return [self._members[name] for name in (*self.sipservers, *self.gateways)]

    def set_up(self, name: str, up: bool) -> bool:
        """Record the health verdict of ``name``; True when it changed.
        Raises KeyError for an unknown name."""
        member = self._members[name]
        if member.up == up:
            return False
        self._members[name] = attrs.evolve(member, up=up)
        return True

    def set_drained(self, name: str, drained: bool) -> bool:
        """Drain (or undrain) ``name``; True when it changed.  Raises KeyError
        for an unknown name."""
        member = self._members[name]
        if member.drained == drained:
            return False
        self._members[name] = attrs.evolve(member, drained=drained)
        return True

    def set_pins(self, pins: Mapping[str, str]) -> None:
        """Replace the pins (key → SIP server name).  Pins to a name that is
        not a SIP server of the pool are ignored."""
        servers = set(self.sipservers)
        self._pins = {key: name for key, name in pins.items() if name in servers}

    @property
    def pins(self) -> Mapping[str, str]:
        """The pins in force (key → SIP server name)."""
        return dict(self._pins)

    # -- users and targets --------------------------------------------------------------

    def locate(self, aor: str) -> PoolMember | None:
        """The SIP server hosting ``aor`` (user part, AOR or target name): its
        pinned member while that is available, else the rendezvous choice
        among the available SIP servers; None when none is available."""
        key = user_part(aor)
        pinned = self._pins.get(key)
        if pinned is not None:
            member = self._members[pinned]
            if member.available:
                return member
        return pick(key, (self._members[name] for name in self.sipservers))

    # -- numbers ------------------------------------------------------------------

    def gateways_for(self, number: str) -> list[PoolMember]:
        """Every gateway whose prefixes match ``number``, whatever its state,
        in failover order (see the module documentation)."""
        number = number.strip()
        seen: set[str] = set()
        out: list[PoolMember] = []
        for length in range(len(number), -1, -1):
            names = self._by_prefix.get(number[:length])
            if not names:
                continue
            if out and not self.prefix_fallback:
                break
            for name in names:
                if name not in seen:
                    seen.add(name)
                    out.append(self._members[name])
        return out

    def locate_number(self, number: str) -> list[PoolMember]:
        """The available gateways for ``number`` in failover order; empty
        when no prefix matches or none of the matching gateways is available."""
        return [m for m in self.gateways_for(number) if m.available]
