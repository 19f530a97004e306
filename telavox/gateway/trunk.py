"""One carrier trunk of a gateway, as the gateway runs it.

Owns :class:`Trunk`: the trunk's configuration with what it has learnt at
run time (the carrier's resolved addresses, its health from OPTIONS
keep-alives and registration), the carrier's view of numbers (the trunk's
number rules), and the answers to the carrier's digest challenges.

A trunk is usable when its address resolved to at least one target, its
keep-alives are answered (``down_after`` unanswered or 5xx/408 in a row mark
it down, one answer brings it back) and, when it registers, its
registration is current.  Its state changes are reported through
``on_change`` with a reason a person can act on ("wrong credentials (403)",
"no answer to OPTIONS", "sip.carrier.test did not resolve").
"""

from __future__ import annotations

from collections.abc import Callable

from telavox.config.model import PlatformConfig, TrunkConfig
from telavox.gateway.numbers import from_carrier, to_carrier
from telavox.gateway.resolver import Target
from telavox.sip.hdrtypes import Via
from telavox.sip.message import Request, Response
from telavox.sip.ua import authorize, new_cnonce
from telavox.sip.uri import SipUri, parse_uri
from telavox.tlb.health import HealthTracker
from telavox.transport.policy import PeerPolicy

__all__ = ["Trunk"]

DOWN_AFTER = 2
"""Unanswered keep-alives in a row before a trunk is marked down."""


class Trunk:
    """See the module docstring.  ``gateway`` names the owning gateway."""

    def __init__(self, gateway: str, config: TrunkConfig, platform: PlatformConfig,
                 on_change: Callable[[Trunk], None] | None = None) -> None:
        self.gateway = gateway
        self.config = config
        self.name = config.name
        self.platform = platform
        uri = parse_uri(config.address)
        assert isinstance(uri, SipUri)
        self.uri: SipUri = uri
        self.domain = config.from_domain or uri.host_bare
        """Domain of From/To/P-Asserted-Identity toward the carrier."""
        self.targets: list[Target] = []
        """The carrier's addresses in failover order (RFC 3263)."""
        self.resolved = False
        self.sources = PeerPolicy.from_networks(config.allow)
        """Where the carrier sends from: its targets and ``allow`` networks."""
        self._health = HealthTracker([config.name], down_after=DOWN_AFTER, up_after=1)
        self.registered: bool | None = None
        """None until a registration (if any) has an outcome."""
        self.probe_pending = False
        """An OPTIONS keep-alive is out and unanswered."""
        self.registration_reason = ""
        self.keepalive_reason = ""
        self._on_change = on_change
        self._last: tuple[bool, str] | None = None
        self.counters: dict[str, int] = dict.fromkeys(
            ("calls", "answered", "failed_over", "rejected", "full"), 0)
        self.active = 0
        """Calls on the trunk now (attempts in progress and answered calls)."""

    # -- state ------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """True when calls should be offered to this trunk first."""
        if self.resolved and not self.targets:
            return False
        if self.registered is False:
            return False
        return self._health.is_up(self.name)

    @property
    def reason(self) -> str:
        """Why the trunk is in its state, in words."""
        if self.resolved and not self.targets:
            return f"{self.uri.host_bare} did not resolve"
        if self.registered is False:
            return self.registration_reason or "not registered"
        if not self._health.is_up(self.name):
            return self.keepalive_reason or "no answer to OPTIONS"
        if self.registered:
            return self.registration_reason
        return "in service"

    def set_targets(self, targets: list[Target]) -> None:
        """The carrier's addresses, as resolved."""
        self.targets = list(targets)
        self.resolved = True
        self.sources = PeerPolicy.from_networks(
            (*(t.host for t in self.targets), *self.config.allow))
        self._changed()

    def sends_from(self, host: str) -> bool:
        """True when ``host`` is one of the carrier's addresses or ``allow``
        networks (so a request from it is this trunk's)."""
        return self.sources.allows_host(host)

    def keepalive(self, status: int | None, now: float, reason: str = "") -> None:
        """The outcome of an OPTIONS keep-alive (None: no answer)."""
        self._health.record(self.name, status, now, reason)
        self.keepalive_reason = self._health.members[self.name].last_outcome
        if status is not None and status != 408 and not 500 <= status <= 599:
            self.keepalive_reason = f"OPTIONS answered {status}"
        self._changed()

    def registration(self, registered: bool, reason: str) -> None:
        """The registration's state changed."""
        self.registered = registered
        self.registration_reason = reason
        self._changed()

    def _changed(self) -> None:
        """Report a change of up/down (or of the reason while down; a
        trunk that starts up is not news)."""
        now = (self.up, self.reason)
        last, self._last = self._last, now
        if last is None:
            news = not now[0]
        else:
            news = now[0] != last[0] or (not now[0] and now[1] != last[1])
        if news and self._on_change is not None:
            self._on_change(self)

    # -- channels ---------------------------------------------------------------------------

    def claim(self) -> bool:
        """Take a channel for a call; False (counted as ``full``) when the
        trunk carries ``max_calls`` already."""
        limit = self.config.max_calls
        if limit and self.active >= limit:
            self.counters["full"] += 1
            return False
        self.active += 1
        return True

    def release(self) -> None:
        """A call taken with :meth:`claim` is over (or moved to another trunk)."""
        if self.active > 0:
            self.active -= 1

    # -- numbers ----------------------------------------------------------------------------

    def to_carrier(self, e164: str) -> str:
        """``e164`` written the way this carrier wants it."""
        p = self.platform
        return to_carrier(e164, number_format=self.config.number_format,
                          tech_prefix=self.config.tech_prefix, country_code=p.country_code,
                          national_prefix=p.national_prefix,
                          international_prefix=p.international_prefix)

    def from_carrier(self, number: str) -> str | None:
        """A number from this carrier as E.164, or None when it is not one."""
        p = self.platform
        return from_carrier(number, number_format=self.config.number_format,
                            tech_prefix=self.config.tech_prefix, country_code=p.country_code,
                            national_prefix=p.national_prefix,
                            international_prefix=p.international_prefix)

    # -- authentication -------------------------------------------------------------------

    def authenticate(self, request: Request, response: Response, via: Via) -> Request | None:
        """The retry of ``request`` with this trunk's credentials for the
        challenge in ``response``, or None (no credentials, another realm,
        or the credentials were refused already)."""
        config = self.config
        if not config.username or not config.password:
            return None
        if config.realm and not _challenges_realm(response, config.realm):
            return None
        return authorize(request, response, username=config.username,
                         password=config.password, cnonce=new_cnonce(), via=via)


def _challenges_realm(response: Response, realm: str) -> bool:
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    wanted = f'realm="{realm}"'.lower()
    return any(wanted in value.lower() for value in response.headers.get_all(name))
