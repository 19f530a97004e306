"""The dial plan: what a dialled number means (sans-IO).

Owns :class:`Route` (the outcome) and :class:`DialPlan` (the matching).
Numbers are matched in a fixed, documented order:

1. the ``[[dialplan]]`` numbers (scripts such as ``*43`` echo, or aliases
   that ring a user), then the pickup prefix followed by an extension
   (``**1002`` answers the call ringing at 1002), the group pickup number
   (``*8`` answers the call ringing longest in the caller's pickup group),
   then the park lot and its
   slots (``700`` parks, ``701`` retrieves the call parked there);
2. users' extensions;
3. emergency numbers (always allowed, passed on as dialled);
4. external numbers: normalised to E.164 with the platform's country
   settings (``+46812345678``, ``0812345678`` and ``0046812345678`` are the
   same number in Sweden) and checked against the caller's class of service
   before any leg is created;
5. anything else: 404.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping

import attrs

from telavox.config.model import CLASSES_OF_SERVICE, DialPlanEntry, PlatformConfig, UserConfig

__all__ = ["DialPlan", "Route", "RouteKind", "normalise"]

_DIALLED = re.compile(r"^\+?[0-9]{1,20}$")


class RouteKind(enum.Enum):
    """What a number leads to."""

    USER = "user"
    SCRIPT = "script"
    EXTERNAL = "external"
    PICKUP = "pickup"
    """Answer the call ringing at ``target`` (directed call pickup), or with
    no target the one ringing longest in ``args[0]``, a pickup group."""
    PARK = "park"
    """The park lot (``target`` its number: the first free slot) or one slot."""
    ELSEWHERE = "elsewhere"
    """A script or park number (``target``) whose home is another SIP server
    of the pool (``home``, its transport:host:port): the call goes there."""
    REJECT = "reject"


@attrs.frozen
class Route:
    """The outcome of the dial plan: a user's extension, a script's name, an
    E.164 (or emergency) number, or a refusal with its SIP status."""

    kind: RouteKind
    target: str = ""
    args: tuple[str, ...] = ()
    """A script's arguments."""
    status: int = 0
    reason: str = ""
    emergency: bool = False
    number: str = ""
    """The number dialled, for a script (whose ``target`` is its name)."""
    home: str = ""
    """Where an ELSEWHERE route goes."""

    @classmethod
    def reject(cls, status: int, reason: str) -> Route:
        return cls(RouteKind.REJECT, status=status, reason=reason)


def normalise(dialled: str, country_code: str, national_prefix: str,
              international_prefix: str) -> str | None:
    """``dialled`` as E.164 (``+`` and digits), or None when it is not a
    number reachable outside (no prefix that says national or international)."""
    if not _DIALLED.match(dialled):
        return None
    if dialled.startswith("+"):
        number = dialled
    elif international_prefix and dialled.startswith(international_prefix):
        number = "+" + dialled[len(international_prefix):]
    elif national_prefix and dialled.startswith(national_prefix) and country_code:
        number = "+" + country_code + dialled[len(national_prefix):]
    else:
        return None
    digits = len(number) - 1
    if not 3 <= digits <= 15 or number[1] == "0":
        return None
    return number


class DialPlan:
    """Matches dialled numbers for the users of one configuration."""

    def __init__(self, platform: PlatformConfig, users: Iterable[UserConfig],
                 entries: Iterable[DialPlanEntry], *, emergency: Iterable[str] = (),
                 premium: Iterable[str] = (), pickup_prefix: str = "**",
                 group_pickup: str = "", park: Iterable[str] = ()) -> None:
        self.platform = platform
        self.users: Mapping[str, UserConfig] = {u.extension: u for u in users}
        self.entries: Mapping[str, DialPlanEntry] = {e.number: e for e in entries}
        self.emergency = frozenset(emergency)
        self.premium = tuple(sorted(premium, key=len, reverse=True))
        self.pickup_prefix = pickup_prefix
        self.group_pickup = group_pickup
        park = tuple(park)
        self.park = frozenset(park)
        """The park lot's number and its slots'."""
        self.park_lot = park[0] if park else ""

    def user(self, extension: str) -> UserConfig | None:
        """The user with ``extension``, or None."""
        return self.users.get(extension)

    def route(self, caller: UserConfig | None, dialled: str) -> Route:
        """Where ``dialled`` goes for ``caller`` (None: a caller from outside,
        e.g. a gateway, who may reach internal targets only)."""
        entry = self.entries.get(dialled)
        if entry is not None:
            if entry.app:
                return Route(RouteKind.SCRIPT, entry.app, args=entry.args, number=dialled)
            return Route(RouteKind.USER, entry.target)
        prefix = self.pickup_prefix
        if prefix and dialled.startswith(prefix) and dialled[len(prefix):] in self.users:
            if caller is None:
                return Route.reject(403, "Forbidden (pickup is for users)")
            return Route(RouteKind.PICKUP, dialled[len(prefix):])
        if self.group_pickup and dialled == self.group_pickup:
            if caller is None:
                return Route.reject(403, "Forbidden (pickup is for users)")
            if not caller.pickup_group:
                return Route.reject(403, "Forbidden (no pickup group)")
            return Route(RouteKind.PICKUP, args=(caller.pickup_group,))
        if dialled in self.park:
            if caller is None:
                return Route.reject(403, "Forbidden (parking is for users)")
            return Route(RouteKind.PARK, dialled)
        if dialled in self.users:
            return Route(RouteKind.USER, dialled)
        if dialled in self.emergency:
            return Route(RouteKind.EXTERNAL, dialled, emergency=True)
        p = self.platform
        number = normalise(dialled, p.country_code, p.national_prefix, p.international_prefix)
        if number is None:
            return Route.reject(404, "Not Found")
        if caller is None:
            return Route.reject(403, "Forbidden (no outside calls from outside)")
        allowed = self._allowed(caller.class_of_service, number)
        if not allowed:
            return Route.reject(403, "Forbidden (class of service)")
        return Route(RouteKind.EXTERNAL, number)

    def home_key(self, route: Route) -> str | None:
        """The name tlb places ``route``'s target by (one name for a park
        lot and all its slots, the number for a script), or None when the
        route goes to no shared target (a user, a number outside)."""
        if route.kind is RouteKind.SCRIPT:
            return route.number or None
        if route.kind is RouteKind.PARK:
            return self.park_lot or route.target
        return None

    def _allowed(self, cos: str, number: str) -> bool:
        rank = CLASSES_OF_SERVICE.index(cos)
        premium = any(number.startswith(prefix) for prefix in self.premium)
        if premium:
            return cos == "premium"
        if rank >= CLASSES_OF_SERVICE.index("international"):
            return True
        if rank >= CLASSES_OF_SERVICE.index("national"):
            return bool(self.platform.country_code) and number.startswith(
                "+" + self.platform.country_code)
        return False
