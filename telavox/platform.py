"""The root service: the platform-wide services and the components, one
reactor, live reconfiguration on SIGHUP.

Owns :class:`PlatformService`.  It opens the store, starts the components
(their ports are bound synchronously, so a port in use stops the start with a
clear message), records the configuration text as a version, and on SIGHUP
re-reads the file and hands each component its new section
(:meth:`~telavox.interfaces.IBaseApplication.reconfigure`).  A file that no
longer parses, or a component that refuses its section, leaves the old
configuration in force and says why in the log.  SIGTERM and SIGINT stop
the reactor once: a second one while stopping (a supervisor and a shell
both passing it on) is logged, not a traceback.
"""

from __future__ import annotations

import contextlib
import gc
import signal
from collections.abc import Callable
from typing import Any

import attrs
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.error import CannotListenError, ReactorNotRunning
from twisted.logger import Logger
from twisted.python.failure import Failure

from telavox.base import BaseApplication, Platform
from telavox.config import Config, ConfigError
from telavox.records import ComponentEvent, ReconfigureError
from telavox.transport.tls import TlsError

SHARED_SECTIONS = ("platform", "sip", "tls")
"""Sections every component reads at start; changing them needs a restart."""

GC_THRESHOLDS = (50_000, 100, 20)
"""Collector thresholds while serving.  A SIP server keeps every transaction
alive for up to 64*T1 (at 800 calls/s about a million tracked objects), and
ended transactions, calls and media endpoints leave no reference cycles
(tests prove each), so under call traffic the collector's passes find
nothing and only cost: with CPython's defaults (700, 10, 10) they cost more
CPU than the SIP work itself, and each pass of the second generation over
the held transactions took about half a second, a pause for the RTP relay
in the same process.  The first generation is collected after 50,000 net
new objects (rarely once the load is steady, as frees count against it),
the second after 100 of those, so cycles left by other work still go."""


def _tune_gc() -> None:
    """Freeze what start-up created and collect less often while serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class PlatformService(MultiService):
    """Root of the service tree: ``platform`` services plus every component.

    ``reload_config`` re-reads the configuration (raising ConfigError); it is
    None when the platform runs on a fixed configuration.
    """

    log = Logger(namespace="telavox.platform")

    def __init__(self, platform: Platform, config_text: str, config_source: str,
                 reload_config: Callable[[], tuple[Config, str]] | None) -> None:
        super().__init__()
        self.platform = platform
        self.config: Config = platform.config
        self._config_text = config_text
        self._config_source = config_source
        self._reload_config = reload_config
        self._previous_hup: Any = None
        self._stopping = False
        self.ready: defer.Deferred[None] = defer.Deferred()

    @property
    def components(self) -> list[BaseApplication]:
        """The base applications, in start order."""
        return [s for s in self if isinstance(s, BaseApplication)]

    def startService(self) -> None:
        try:
            super().startService()
        except CannotListenError as e:
            raise SystemExit(
                f"telavox: cannot listen on {e.interface or '*'}:{e.port}: {e.socketError}"
            ) from None
        except TlsError as e:
            raise SystemExit(f"telavox: TLS: {e}") from None
        self._install_sighup()
        when_running = getattr(self.platform.reactor, "callWhenRunning", None)
        if when_running is not None:  # after the reactor's own handlers
            when_running(self._install_stop_signals)
        _tune_gc()
        d = self.platform.store.open()
        d.addCallback(lambda _: self.platform.store.add_config_version(
            self._config_text, f"start {self._config_source}"))
        d.addCallbacks(self._store_ready, self._store_failed)

    def _store_ready(self, version: Any) -> None:
        self.log.info("telavox started: {components}; configuration version {version}",
                      components=", ".join(c.name for c in self.components),
                      version=getattr(version, "version", "?"))
        self.ready.callback(None)

    def _store_failed(self, failure: Failure) -> None:
        self.log.failure("telavox: the store could not be opened; stopping", failure)
        reactor = self.platform.reactor
        reactor.callLater(0, reactor.stop)

    def stopService(self) -> defer.Deferred[None]:
        self._remove_sighup()
        d: defer.Deferred[Any] = defer.maybeDeferred(super().stopService)
        d.addBoth(lambda _: self.platform.store.close())
        d.addErrback(lambda f: self.log.failure("closing the store", f))
        return d.addCallback(lambda _: self.log.info("telavox stopped"))

    # -- SIGHUP -------------------------------------------------------------------

    def _install_sighup(self) -> None:
        if self._reload_config is None or not hasattr(signal, "SIGHUP"):
            return
        reactor = self.platform.reactor

        def on_hup(signum: int, frame: object) -> None:
            reactor.callFromThread(self.reload)

        try:
            self._previous_hup = signal.signal(signal.SIGHUP, on_hup)
        except ValueError:  # not the main thread (tests)
            self._previous_hup = None

    def _install_stop_signals(self) -> None:
        reactor = self.platform.reactor

        def on_stop(signum: int, frame: object) -> None:
            reactor.callFromThread(self._stop_once, signal.Signals(signum).name)

        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (tests)
                signal.signal(signum, on_stop)

    def _stop_once(self, name: str) -> None:
        """Stop the reactor on the first SIGTERM or SIGINT; note the others."""
        if self._stopping:
            self.log.info("Received {signal} while stopping: already stopping", signal=name)
            return
        self._stopping = True
        self.log.info("Received {signal}, shutting down.", signal=name)
        with contextlib.suppress(ReactorNotRunning):
            self.platform.reactor.stop()

    def _remove_sighup(self) -> None:
        if self._previous_hup is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGHUP, self._previous_hup)
            self._previous_hup = None

    def reload(self) -> defer.Deferred[list[str]]:
        """Re-read the configuration and reconfigure every component.

        Every component is handed its section (changed or not) and either
        takes it or keeps its old one; changes to the sections every component
        reads at start (:data:`SHARED_SECTIONS`) are reported as needing a
        restart.  Fires with the names of the components that took their
        section.
        """
        if self._reload_config is None:
            return defer.succeed([])
        try:
            config, text = self._reload_config()
        except ConfigError as e:
            self.log.error("configuration not reloaded: {error}", error=str(e))
            return defer.succeed([])
        shared = [name for name in SHARED_SECTIONS
                  if getattr(config, name) != getattr(self.config, name)]
        if shared:
            self.log.warn("changes to {sections} take effect after a restart",
                          sections=", ".join(f"[{name}]" for name in shared))
        attempts: list[defer.Deferred[Any]] = []
        current = attrs.evolve(config, **{name: getattr(self.config, name)
                                          for name in SHARED_SECTIONS})
        for component in self.components:
            changed: defer.Deferred[Any] = defer.maybeDeferred(
                component.config_changed, current)
            changed.addErrback(self._config_failed, component)
            attempts.append(changed.addCallback(lambda _: ""))
        for component in self.components:
            section_name = component.config_section or component.name
            new = getattr(config, section_name, None)
            if new is None:
                continue
            d = component.reconfigure(new)
            d.addCallbacks(self._reconfigured, self._refused,
                           callbackArgs=(component,), errbackArgs=(component,))
            attempts.append(d)
        self.config = config
        self._config_text = text
        done: defer.Deferred[Any] = defer.gatherResults(attempts)
        done.addCallback(lambda names: [n for n in names if n])
        done.addCallback(self._record_version, text)
        return done

    def _config_failed(self, failure: Failure, component: BaseApplication) -> None:
        self.log.failure("{component}: applying the reloaded configuration failed", failure,
                         component=component.name)

    def _reconfigured(self, _: object, component: BaseApplication) -> str:
        self.log.info("{component}: configuration in force", component=component.name)
        self.platform.bus.publish(ComponentEvent(
            component=component.name, what="reconfigured",
            timestamp=self.platform.reactor.seconds()))
        return component.name

    def _refused(self, failure: Failure, component: BaseApplication) -> str:
        error = failure.value
        if isinstance(error, ReconfigureError):
            self.log.warn("{component}: kept the old configuration: {why}",
                          component=component.name, why=error.message)
        else:
            self.log.failure("{component}: reconfiguration failed; old configuration kept",
                             failure, component=component.name)
        return ""

    def _record_version(self, names: list[str], text: str) -> defer.Deferred[list[str]]:
        d = self.platform.store.add_config_version(text, f"reload {self._config_source}")
        d.addErrback(lambda f: self.log.failure("recording the configuration version", f))
        return d.addCallback(lambda _: names)
