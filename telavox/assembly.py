"""The component table and the one function that builds the platform from a
configuration.

Owns :data:`COMPONENTS`: which base applications exist, which configuration
section each reads, when each is enabled, and the module that builds it
(imported only when enabled).  Components are built in table order, which is
their dependency order: each receives the platform-wide services
(:class:`~telavox.base.Platform`) in its constructor and takes the interfaces
of components built before it with ``platform.require``; no component imports
another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from telavox.base import BaseApplication, Platform
from telavox.config import Config
from telavox.eventbus import EventBus
from telavox.platform import PlatformService
from telavox.store import DATABASE_FILE, SqliteStore
from telavox.transport.local import LocalNetwork


@attrs.frozen
class ComponentSpec:
    """One kind of base application.

    ``factory`` is ``"module:callable"``; the callable takes the
    :class:`Platform` and a configuration section and returns a
    :class:`BaseApplication`.  ``instances`` turns the configuration into the
    sections to build (one for a singleton, several for e.g. SIP servers).
    """

    name: str
    factory: str
    instances: Callable[[Config], list[Any]]

    def load(self) -> Callable[[Platform, Any], BaseApplication]:
        """Import and return the factory."""
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


COMPONENTS: tuple[ComponentSpec, ...] = (
    ComponentSpec("registrar", "telavox.registrar.service:RegistrarService",
                  lambda config: [config.registrar]),
    ComponentSpec("tlb", "telavox.tlb.service:TlbService", lambda config: [config.tlb]),
    ComponentSpec("sipproxy", "telavox.sipproxy.service:SipProxyService",
                  lambda config: [config.sipproxy]),
    ComponentSpec("scriptserver", "telavox.scriptserver.service:ScriptServerService",
                  lambda config: [config.scriptserver]),
    ComponentSpec("sipserver", "telavox.tproxy.service:SipServerService",
                  lambda config: [m for m in config.sipservers if m.listen]),
    ComponentSpec("gateway", "telavox.gateway.service:GatewayService",
                  lambda config: [g for g in config.gateways if g.listen]),
)


def build_platform(config: Config, reactor: Any, *, config_text: str, config_source: str,
                   reload_config: Callable[[], tuple[Config, str]] | None = None
                   ) -> PlatformService:
    """The root service for ``config``: store, bus, in-process SIP network and
    every enabled component, in table order."""
    data_dir = Path(config.platform.data_dir)
    # the platform closes the store itself, after every component has stopped
    # and written what it holds (bindings, CDRs)
    store = SqliteStore(str(data_dir / DATABASE_FILE), reactor, close_at_shutdown=False)
    platform = Platform(reactor=reactor, store=store, bus=EventBus(reactor),
                        network=LocalNetwork(reactor), config=config)
    root = PlatformService(platform, config_text, config_source, reload_config)
    for spec in COMPONENTS:
        factory = spec.load()
        for section in spec.instances(config):
            component = factory(platform, section)
            component.setServiceParent(root)
    return root
