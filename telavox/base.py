"""What every base application shares: the Twisted service plus
:class:`~telavox.interfaces.IBaseApplication` plumbing.

Owns :class:`BaseApplication` (name, default health, stats and the rule that
a reconfiguration touching a restart-only key is refused as a whole) and
:class:`Platform`, the platform-wide services every component receives in its
constructor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
from twisted.application.service import Service
from twisted.internet import defer
from zope.interface import implementer

from telavox.interfaces import IBaseApplication, IEventBus, IStore
from telavox.records import Health, ReconfigureError
from telavox.sip.timers import TimerConfig
from telavox.transport.endpoint import EndpointOptions
from telavox.transport.local import LocalNetwork
from telavox.transport.tls import TlsFiles


@attrs.frozen(eq=False)
class Platform:
    """Services that no component owns, handed to each one.

    ``reactor`` is the reactor (never imported by components), ``store`` the
    persistent data, ``bus`` the event bus, ``network`` the in-process SIP
    transport, ``config`` the whole configuration (read-only; each component
    keeps its own section), ``providers`` the interfaces components built so
    far provide to the ones built after them (:meth:`provide`,
    :meth:`require`).
    """

    reactor: Any
    store: IStore
    bus: IEventBus
    network: LocalNetwork
    config: Any
    providers: dict[Any, Any] = attrs.field(factory=dict)

    def provide(self, interface: Any, provider: Any) -> None:
        """Register ``provider`` of ``interface`` for components built later."""
        if not interface.providedBy(provider):
            raise TypeError(f"{provider!r} does not provide {interface.__name__}")
        if interface in self.providers:
            raise ValueError(f"{interface.__name__} is already provided")
        self.providers[interface] = provider

    def require(self, interface: Any) -> Any:
        """The provider of ``interface`` (components are built in dependency
        order by :mod:`telavox.assembly`, so it exists)."""
        try:
            return self.providers[interface]
        except KeyError:
            raise LookupError(f"nothing provides {interface.__name__}") from None

    def endpoint_options(self) -> EndpointOptions:
        """SIP endpoint tunables from the ``[sip]`` and ``[platform]`` sections."""
        sip = self.config.sip
        return EndpointOptions(
            timers=TimerConfig(t1=sip.t1, t2=sip.t2, t4=sip.t4),
            max_message=sip.max_message_size,
            udp_mtu=sip.udp_mtu,
            idle_timeout=sip.tcp_idle_timeout,
            max_connections=sip.tcp_max_connections,
            log_messages=self.logs("debug"),
            log_transactions=self.logs("info"),
        )

    def logs(self, level: str) -> bool:
        """True when lines at ``level`` (debug, info, warn, error) are to be
        written, per ``[platform] log_level``: busy paths check this before
        building a log event at all."""
        order = ("debug", "info", "warn", "error", "critical")
        configured = self.config.platform.log_level
        return order.index(level) >= order.index(configured)

    def tls_files(self) -> TlsFiles | None:
        """The ``[tls]`` certificate files, or None when not configured."""
        tls = self.config.tls
        if not tls.configured:
            return None
        return TlsFiles(tls.cert_file, tls.key_file, tls.ca_file or None,
                        verify_server=tls.verify_server,
                        require_client_cert=tls.require_client_cert)


@implementer(IBaseApplication)
class BaseApplication(Service):
    """A component: a Twisted service with name, health, stats and live
    reconfiguration.

    Subclasses set ``restart_keys`` (section keys whose change needs a restart)
    and override :meth:`apply` to take a new section live.
    """

    restart_keys: ClassVar[tuple[str, ...]] = ()
    config_section: ClassVar[str | None] = None  # defaults to the component's name
    name: str  # type: ignore[assignment]

    def __init__(self, name: str, platform: Platform, section: Any) -> None:
        self.name = name
        self.platform = platform
        self.section = section

    def health(self) -> Health:
        """OK while running, DOWN otherwise."""
        return Health.ok() if self.running else Health.down("not running")

    def stats(self) -> Mapping[str, float]:
        """No counters by default."""
        return {}

    def reconfigure(self, section: Any) -> defer.Deferred[None]:
        """Refuse if a restart-only key changed; else :meth:`apply` it."""
        changed = [key for key in self.restart_keys
                   if getattr(section, key) != getattr(self.section, key)]
        if changed:
            return defer.fail(ReconfigureError(
                f"{self.name}: changing {', '.join(changed)} needs a restart",
                tuple(changed)))
        try:
            result = self.apply(section)
        except Exception as e:
            return defer.fail(e)
        return defer.maybeDeferred(lambda: result).addCallback(self._applied, section)

    def _applied(self, _: object, section: Any) -> None:
        self.section = section

    def apply(self, section: Any) -> defer.Deferred[None] | None:
        """Put ``section`` in force (called by :meth:`reconfigure`)."""
        return None

    def config_changed(self, config: Any) -> defer.Deferred[None] | None:
        """The whole configuration was reloaded (its restart-only shared
        sections kept as they were at start): a component that reads other
        sections than its own (the registrar reads ``[[users]]``) takes them
        here.  Default: nothing."""
        return None
