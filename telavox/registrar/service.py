"""The registrar base application ("userdata"): users and the location service.

Owns :class:`RegistrarService`, the Twisted side of
:class:`~telavox.registrar.bindings.LocationTable` and
:class:`~telavox.registrar.users.UserDirectory`.  It provides
:class:`~telavox.interfaces.IUserDirectory` and
:class:`~telavox.interfaces.ILocationService` to the components built after
it, answers the REGISTERs the proxy hands it (RFC 3261 §10.3) from memory,
publishes :class:`~telavox.records.RegistrationEvent` on the bus, and keeps
the store in step behind the requests:

* at start, the users are synced to the store and the stored bindings that
  have not expired are restored;
* every ``flush_interval`` seconds the changes since the previous write go
  to the store in one ``save_bindings`` call, never more than one at a time
  (a REGISTER never waits for the disk); a failed write is retried with the
  next one, and the last write happens when the service stops;
* one ``callLater`` follows the table's next expiry, so bindings expire on
  time without traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from telavox.base import BaseApplication, Platform
from telavox.interfaces import ILocationService, IUserDirectory
from telavox.records import BindingRecord, Health, RegistrationEvent, UserRecord
from telavox.registrar.bindings import (
    Change,
    ChangeKind,
    LocationTable,
    RegisterResult,
    Rules,
    split_aor,
)
from telavox.registrar.users import UserDirectory
from telavox.sip.errors import StatusEnum
from telavox.sip.hdrtypes import HeaderError
from telavox.sip.message import Request, Response, make_response, new_tag
from telavox.sip.transaction import Source
from telavox.sip.uri import SipUri, unescape
from telavox.transport.address import is_ip_address

__all__ = ["AorRefusal", "RegistrarService"]


class AorRefusal(StatusEnum):
    """Why the To header of a REGISTER is refused (RFC 3261 §10.3 step 5)."""

    INVALID_TO = (400, "Invalid To")
    ANOTHER_USER = (403, "Cannot register another user")
    NOT_OUR_DOMAIN = (404, "Not our domain")
    UNKNOWN_USER = (404, "Unknown user")


def rules_of(section: Any) -> Rules:
    """The binding rules of a ``[registrar]`` section."""
    return Rules(min_expires=section.min_expires, max_expires=section.max_expires,
                 default_expires=section.default_expires, max_contacts=section.max_contacts)



@implementer(IUserDirectory, ILocationService)
class RegistrarService(BaseApplication):
    """Users, their credentials and their registered contacts."""

    log = Logger(namespace="telavox.registrar")

    def __init__(self, platform: Platform, section: Any) -> None:
        super().__init__("registrar", platform, section)
        config = platform.config
        self.domain: str = config.platform.domain.lower()
        self.users = UserDirectory.from_config(config)
        self.table = LocationTable(self.domain)
        self.rules = rules_of(section)
        self.counters = dict.fromkeys(
            ("registers_ok", "registers_failed", "expired", "store_writes", "store_errors"), 0)
        self.ready: defer.Deferred[None] = defer.Deferred()
        self._log_info = platform.logs("info")
        self._date_cache: tuple[int, str] = (-1, "")
        self._log_debug = platform.logs("debug")
        self._store_problem = ""
        self._writing: defer.Deferred[None] | None = None
        self._idle_waiters: list[defer.Deferred[None]] = []
        self._flusher: LoopingCall | None = None
        self._timer: Any = None
        self._timer_at: float | None = None
        self._loading: Any = None
        platform.provide(IUserDirectory, self)
        platform.provide(ILocationService, self)

    # -- service -------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        # the platform opens the store once its services are started
        self._loading = self.platform.reactor.callLater(0, self._load)
        self._start_flusher()
        self._arm()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        if self._loading is not None and self._loading.active():
            self._loading.cancel()
        self._loading = None
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        self._flusher = None
        self._disarm()
        return self._when_idle().addCallback(lambda _: self.flush())

    def _load(self) -> None:
        self._loading = None
        store = self.platform.store
        d = store.sync_users(self.users.records())
        d.addErrback(self._store_failed, "syncing the users")
        d.addCallback(lambda _: store.load_bindings())
        d.addCallbacks(self._restore, self._store_failed, errbackArgs=("loading bindings",))
        d.addBoth(self._loaded)

    def _loaded(self, result: object) -> None:
        if isinstance(result, Failure):
            self.log.failure("registrar: restoring bindings failed", result)
        if not self.ready.called:
            self.ready.callback(None)

    def _restore(self, records: list[BindingRecord]) -> None:
        restored = self.table.restore(records, self.platform.reactor.seconds())
        self.log.info("restored {count} bindings of {stored} stored", count=len(restored),
                      stored=len(records))
        self._arm()

    def apply(self, section: Any) -> None:
        """Every ``[registrar]`` key is live."""
        self.rules = rules_of(section)
        if section.flush_interval != self.section.flush_interval and self._flusher is not None:
            self._flusher.stop()
            self._start_flusher(section.flush_interval)

    def config_changed(self, config: Any) -> defer.Deferred[None]:
        """A reloaded configuration: take its users (SIGHUP)."""
        return self.reload_users(config)

    def reload_users(self, config: Any = None) -> defer.Deferred[None]:
        """Take the users and domain of ``config`` (default: the platform's);
        when they changed, sync the store's users.  Fires with None."""
        config = config if config is not None else self.platform.config
        directory = UserDirectory.from_config(config)
        domain = config.platform.domain.lower()
        changed = domain != self.domain or directory.records() != self.users.records()
        self.users = directory
        if domain != self.domain:
            self.domain = domain
            self.table.set_domain(domain)
        if not changed:
            return defer.succeed(None)
        self.log.info("users reloaded: {count} users in {domain}", count=len(directory),
                      domain=domain)
        d = self.platform.store.sync_users(directory.records())
        return d.addErrback(self._store_failed, "syncing the users")

    # -- IBaseApplication ----------------------------------------------------------

    def health(self) -> Health:
        if not self.running:
            return Health.down("not running")
        if self._store_problem:
            return Health.degraded(f"store writes failing: {self._store_problem}")
        return Health.ok()

    def stats(self) -> Mapping[str, float]:
        out: dict[str, float] = {"aors": self.table.aor_count,
                                 "bindings": self.table.binding_count, "users": len(self.users)}
        out.update(self.counters)
        return out

    # -- IUserDirectory ---------------------------------------------------------------

    @property
    def realm(self) -> str:
        """The digest realm: the platform domain."""
        return self.users.realm

    def get_user(self, extension: str) -> UserRecord | None:
        return self.users.get_user(extension)

    def ha1(self, username: str, algorithm: str) -> str | None:
        return self.users.ha1(username, algorithm)

    # -- ILocationService ---------------------------------------------------------------

    def is_our_domain(self, host: str) -> bool:
        """True for the platform domain (any case) or an IP address literal."""
        host = host.lower().strip("[]")
        return host == self.domain or is_ip_address(host)

    def register(self, request: Request, source: Source, user: str) -> Response:
        now = self.platform.reactor.seconds()
        refusal = self._check_to(request, user)
        if refusal is not None:
            result = RegisterResult(refusal.status, refusal.reason)
        else:
            result = self.table.register(request, source, user, now, self.rules)
        if result.ok:
            self.counters["registers_ok"] += 1
        else:
            self.counters["registers_failed"] += 1
            self.log.info("REGISTER of {user} from {source} refused: {status} {reason}",
                          user=user, source=str(source), status=result.status,
                          reason=result.reason)
        if result.changes:
            self._publish(result.changes, now)
            self._arm()
        return self._response(request, result, now)

    def lookup(self, aor: str) -> list[BindingRecord]:
        try:
            _, domain = split_aor(aor)
        except ValueError:
            return []
        if domain is not None and not self.is_our_domain(domain):
            return []
        now = self.platform.reactor.seconds()
        return [b.to_record() for b in self.table.lookup(aor, now)]

    def _check_to(self, request: Request, user: str) -> AorRefusal | None:
        try:
            uri = request.to.uri
        except (HeaderError, KeyError):
            return AorRefusal.INVALID_TO
        if not isinstance(uri, SipUri):
            return AorRefusal.INVALID_TO
        if uri.user is None or unescape(uri.user) != user:
            return AorRefusal.ANOTHER_USER
        if not self.is_our_domain(uri.host):
            return AorRefusal.NOT_OUR_DOMAIN
        if self.users.get_user(user) is None:
            return AorRefusal.UNKNOWN_USER
        return None

    def _date(self, now: float) -> str:
        """The Date header value (RFC 1123), formatted once a second."""
        second = int(now)
        if self._date_cache[0] != second:
            self._date_cache = (second, formatdate(second, usegmt=True))
        return self._date_cache[1]

    def _response(self, request: Request, result: RegisterResult, now: float) -> Response:
        extra: list[tuple[str, str]] = [("Date", self._date(now))]
        if result.ok:
            extra += [("Contact", b.header_value(now)) for b in result.bindings]
            try:
                supported = request.option_tags("Supported")
                path = request.headers.values("Path")
            except ValueError:
                supported, path = [], []
            if path and "path" in supported:
                extra.append(("Path", ", ".join(path)))
            if "outbound" in supported and any(
                    c.binding.outbound is not None for c in result.changes
                    if c.kind in (ChangeKind.REGISTERED, ChangeKind.REFRESHED)):
                extra.append(("Require", "outbound"))
        if result.min_expires is not None:
            extra.append(("Min-Expires", str(result.min_expires)))
        return make_response(request, result.status, result.reason, to_tag=new_tag(),
                             extra=tuple(extra))

    # -- events ----------------------------------------------------------------------------

    def _publish(self, changes: tuple[Change, ...] | list[Change], now: float) -> None:
        bus = self.platform.bus
        for change in changes:
            binding = change.binding
            live = change.kind in (ChangeKind.REGISTERED, ChangeKind.REFRESHED)
            if change.kind is ChangeKind.REFRESHED:
                if self._log_debug:
                    self.log.debug("{aor}: refreshed {contact}", aor=binding.aor,
                                   contact=str(binding.contact))
            elif self._log_info:
                self.log.info("{aor}: {what} {contact} from {source} ({user_agent})",
                              aor=binding.aor, what=change.kind.value,
                              contact=str(binding.contact), source=binding.source,
                              user_agent=binding.user_agent)
            bus.publish(RegistrationEvent(
                aor=binding.aor, contact=str(binding.contact), what=change.kind.value,
                expires=binding.remaining(now) if live else 0, source=binding.source,
                user_agent=binding.user_agent, timestamp=now))

    # -- expiry ------------------------------------------------------------------------------

    def _arm(self) -> None:
        """Keep one timer at the table's next deadline."""
        if not self.running:
            return
        deadline = self.table.next_deadline()
        if deadline is not None and deadline == self._timer_at and self._timer is not None:
            return
        self._disarm()
        if deadline is None:
            return
        reactor = self.platform.reactor
        self._timer = reactor.callLater(max(0.0, deadline - reactor.seconds()), self._expire)
        self._timer_at = deadline

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _expire(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.platform.reactor.seconds()
        expired = self.table.expire(now)
        if expired:
            self.counters["expired"] += len(expired)
            self._publish([Change(ChangeKind.EXPIRED, b) for b in expired], now)
        self._arm()

    # -- write-behind --------------------------------------------------------------------------

    def _start_flusher(self, interval: float | None = None) -> None:
        flusher = LoopingCall(self.flush)
        flusher.clock = self.platform.reactor
        self._flusher = flusher
        done = flusher.start(interval or self.section.flush_interval, now=False)
        done.addErrback(lambda f: self.log.failure("the binding writer stopped", f))

    def flush(self) -> defer.Deferred[None]:
        """Write the changes made since the previous write, unless a write is
        in flight (the changes then wait for the next one).  Fires with None
        when this write is done; never fails."""
        if self._writing is not None:
            return defer.succeed(None)
        upserts, removals = self.table.take_changes()
        if not upserts and not removals:
            return defer.succeed(None)
        d = self.platform.store.save_bindings(upserts, removals)
        self._writing = d
        d.addCallbacks(self._written, self._write_failed, errbackArgs=(upserts, removals))
        d.addBoth(self._write_done)
        return d

    def _written(self, _: object) -> None:
        self.counters["store_writes"] += 1
        self._store_problem = ""

    def _write_failed(self, failure: Failure, upserts: list[BindingRecord],
                      removals: list[tuple[str, str]]) -> None:
        self.table.return_changes(upserts, removals)
        self._store_failed(failure, "writing bindings")

    def _write_done(self, _: object) -> None:
        self._writing = None
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _when_idle(self) -> defer.Deferred[None]:
        if self._writing is None:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def _store_failed(self, failure: Failure, what: str) -> None:
        self.counters["store_errors"] += 1
        self._store_problem = str(failure.value) or failure.type.__name__
        self.log.error("registrar: {what} failed: {error}", what=what,
                       error=self._store_problem)

