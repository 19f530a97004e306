"""A SIP server hosted in this process: tproxy (call control) and its
mediaserver, as one base application per ``[[sipservers]]`` entry with a
``listen`` address.

Owns :class:`SipServerService`: the SIP endpoint on the member's listen
address (accepting only sipproxy, the tlb prober and the gateways), the
table of calls and legs, the dial plan, CDRs (store and CSV) and call
events; its legs live in a :class:`~telavox.b2bua.endpoint.LegTable`.
"""

from __future__ import annotations

import csv
import fnmatch
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from telavox.b2bua.endpoint import EndpointLegHost, LegHandlers, LegTable
from telavox.b2bua.leg import IncomingLeg, Leg, LegHost
from telavox.base import BaseApplication, Platform
from telavox.config.model import PoolMemberConfig, TproxyConfig, UserConfig
from telavox.interfaces import IMailboxes, IMediaServer, IScriptServer, ITlb
from telavox.records import (
    CallEvent,
    CdrRecord,
    Health,
    MediaEvent,
    PlaySource,
)
from telavox.scriptserver.sounds import SoundLibrary
from telavox.sip.hdrtypes import HeaderError, NameAddr
from telavox.sip.message import Request, new_tag
from telavox.sip.transaction import (
    Destination,
    RequestIn,
)
from telavox.sip.uri import SipUri
from telavox.sounds import MUSIC_ON_HOLD, SOUNDS_DIR
from telavox.tproxy.call import ALLOW, Call, Handover
from telavox.tproxy.dialplan import DialPlan, Route, RouteKind
from telavox.tproxy.mwi import EVENT as MWI_EVENT
from telavox.tproxy.mwi import MwiNotifier
from telavox.tproxy.parking import ParkingLot
from telavox.tproxy.pickup import call_to_pick_up
from telavox.tproxy.script import ScriptChannel
from telavox.tproxy.sessiontimer import SUPPORTED, negotiate, unsupported
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler
from telavox.transport.policy import PeerPolicy

__all__ = ["CDR_FIELDS", "SipServerService"]

CDR_FIELDS = ("start_time", "answer_time", "end_time", "caller", "callee", "disposition",
              "codec", "sip_server", "hangup_cause", "call_id", "correlation_id")
"""Columns of the CDR CSV file, in order."""
CDR_FLUSH_INTERVAL = 1.0
"""Seconds between batched CDR writes (a crash loses at most this much)."""



def music_source(setting: str) -> PlaySource | None:
    """What ``[tproxy] music_on_hold`` says to play (None: silence)."""
    if not setting:
        return None
    if setting == "default":
        return PlaySource(path=str(MUSIC_ON_HOLD), loop=True)
    if setting.startswith("tone:"):
        return PlaySource(tone=setting[5:], loop=True)
    return PlaySource(path=setting, loop=True)


@implementer(ISipHandler)
class SipServerService(LegHandlers, BaseApplication):
    """One hosted SIP server (see the module docstring)."""

    log = Logger()
    restart_keys = ("listen",)

    def __init__(self, platform: Platform, section: PoolMemberConfig,
                 media: IMediaServer | None = None) -> None:
        super().__init__(section.name, platform, section)
        config = platform.config
        self.reactor = platform.reactor
        self.tproxy = config.tproxy
        self.domain = config.platform.domain
        self.tlb: ITlb = platform.require(ITlb)
        self.listen = ListenAddress.parse(section.listen)
        self.proxy_addresses = list(config.sipproxy.listen)
        gateways = [ListenAddress.parse(g.sip_address).peer for g in config.gateways
                    if g.sip_address]
        peers = [a.peer for a in self.proxy_addresses]
        peers.append(config.tlb.probe_listen.peer)
        peers += gateways
        pool = [ListenAddress.parse(m.sip_address).peer for m in config.sipservers
                if m.sip_address and m.name != section.name]
        peers += pool
        self.endpoint = SipEndpoint(
            section.name, [self.listen], self, platform.reactor,
            options=platform.endpoint_options(), policy=PeerPolicy.only(peers),
            tls=platform.tls_files(), network=platform.network)
        self.legs: LegHost = EndpointLegHost(self.endpoint, platform.reactor,
                                             self.listen.transport)
        self.media: IMediaServer = media if media is not None else self._mediaserver(platform)
        self.media_address = config.mediaserver.address
        self.carrier_media_address = config.mediaserver.carrier_address or self.media_address
        self.gateway_peers = PeerPolicy.only(gateways)
        """Who counts as a gateway (calls from carriers)."""
        self.pool_peers = PeerPolicy.only(pool)
        """The other SIP servers of the pool (calls for targets homed here)."""
        self.no_answer_timeout = self.tproxy.no_answer_timeout
        self.max_forward_hops = self.tproxy.max_forward_hops
        self.user_agent = self.tproxy.user_agent
        self.music_on_hold = music_source(self.tproxy.music_on_hold)
        self.dialplan = self._dialplan(config)
        self.parking: ParkingLot[Call] | None = None
        self.park_timeout = self.tproxy.park_timeout
        self._set_parking(config.tproxy)
        folders = [str(Path(config.platform.data_dir) / d)
                   for d in config.scriptserver.sounds_dirs]
        self.sounds = SoundLibrary((*folders, str(SOUNDS_DIR)))
        self.language = config.scriptserver.language
        self.calls: dict[str, Call | ScriptChannel] = {}
        self.table = LegTable(platform.reactor.callLater, self.legs.timers.timeout)
        self.mwi = MwiNotifier(self.legs, self._mailbox_counts, self.contact, self.domain,
                               platform.reactor.seconds)
        self._mailbox_subscription: Any = None
        self._cdrs: list[CdrRecord] = []
        self._cdr_loop: task.LoopingCall | None = None
        self._cdr_file: IO[str] | None = None
        self._cdr_writer: Any = None
        self._media_subscription: Any = None
        self.counters: dict[str, int] = dict.fromkeys((
            "calls", "answered", "failed", "cancelled", "refused"), 0)

    # -- construction -----------------------------------------------------------------------

    def _mediaserver(self, platform: Platform) -> IMediaServer:
        from telavox.mediaserver import MediaServer

        config = platform.config
        section = config.mediaserver
        hosted = [m.name for m in config.sipservers if m.listen]
        low, high = section.rtp_ports
        share = (high - low + 1) // max(1, len(hosted))
        index = hosted.index(self.name)
        first = low + index * share
        first += first % 2
        last = first + share - 1
        return MediaServer(  # type: ignore[no-any-return]
            platform.reactor, name=self.name, address=section.address,
            bind_host=section.bind_host or section.address, rtp_ports=(first, last),
            inactivity_timeout=section.inactivity_timeout, country=section.country,
            logs=platform.logs)

    def _dialplan(self, config: Any) -> DialPlan:
        return DialPlan(config.platform, config.users, config.dialplan,
                        emergency=self.tproxy.emergency_numbers,
                        premium=self.tproxy.premium_prefixes,
                        pickup_prefix=config.tproxy.pickup_prefix,
                        group_pickup=config.tproxy.group_pickup_number,
                        park=(config.tproxy.park_lot, *config.tproxy.park_numbers())
                        if config.tproxy.park_lot else ())

    # -- service ----------------------------------------------------------------------------

    def startService(self) -> None:
        """Open the SIP port and the mediaserver; open the CDR file."""
        start = getattr(self.media, "start", None)
        if start is not None:
            start()
        self._media_subscription = self.media.subscribe(self._media_event)
        mailboxes = self.platform.providers.get(IMailboxes)
        if mailboxes is not None:
            self._mailbox_subscription = mailboxes.subscribe(self.mwi.changed)
        try:
            self.endpoint.start()
        except Exception:
            stop = getattr(self.media, "stop", None)
            if stop is not None:
                stop()
            raise
        if self.tproxy.cdr_csv:
            path = Path(self.platform.config.platform.data_dir) / self.tproxy.cdr_csv
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists() or path.stat().st_size == 0
            self._cdr_file = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115
            self._cdr_writer = csv.writer(self._cdr_file)
            if new:
                self._cdr_writer.writerow(CDR_FIELDS)
                self._cdr_file.flush()
        self._cdr_loop = task.LoopingCall(self._flush_cdrs)
        self._cdr_loop.clock = self.reactor
        self._cdr_loop.start(CDR_FLUSH_INTERVAL, now=False)
        super().startService()
        self.log.info("{server}: SIP server listening on {listen}", server=self.name,
                      listen=str(self.listen))

    def _mailbox_counts(self, extension: str) -> tuple[int, int]:
        mailboxes = self.platform.providers.get(IMailboxes)
        return mailboxes.counts(extension) if mailboxes is not None else (0, 0)

    def stopService(self) -> defer.Deferred[Any]:
        """End every call and subscription, close the SIP port and the mediaserver."""
        super().stopService()
        self.mwi.stop()
        if self._mailbox_subscription is not None:
            self._mailbox_subscription.cancel()
        for call in list(self.calls.values()):
            if isinstance(call, ScriptChannel):
                call.hangup_now("shutdown")
            else:
                call.hangup("shutdown")
        if self._media_subscription is not None:
            self._media_subscription.cancel()
        deferreds = [self.endpoint.stop()]
        stop = getattr(self.media, "stop", None)
        if stop is not None:
            deferreds.append(defer.maybeDeferred(stop))
        if self._cdr_loop is not None and self._cdr_loop.running:
            self._cdr_loop.stop()
        deferreds.append(self._flush_cdrs())
        if self._cdr_file is not None:
            self._cdr_file.close()
            self._cdr_file = None
        return defer.gatherResults(deferreds, consumeErrors=True).addCallback(lambda _: None)

    def config_changed(self, config: Any) -> None:
        """New users, dial plan and park lot apply to new calls (parked
        calls stay where they are)."""
        self.dialplan = self._dialplan(config)
        self._set_parking(config.tproxy)

    def _set_parking(self, section: TproxyConfig) -> None:
        self.park_timeout = section.park_timeout
        slots = section.park_numbers()
        lot = self.parking
        if lot is not None and lot.lot == section.park_lot and lot.slots == slots:
            return
        self.parking = ParkingLot(section.park_lot, slots) if section.park_lot else None

    def health(self) -> Health:
        return Health.ok() if self.running else Health.down("not running")

    def stats(self) -> Mapping[str, float]:
        out: dict[str, float] = dict(self.counters)
        out["active_calls"] = len(self.calls)
        out["legs"] = len(self.table)
        out["mwi_subscriptions"] = len(self.mwi)
        out["media_endpoints"] = len(self.media.endpoint_ids())
        out["parked"] = len(self.parking) if self.parking is not None else 0
        return out

    # -- CallHost -------------------------------------------------------------------------

    def user(self, extension: str) -> UserConfig | None:
        return self.dialplan.user(extension)

    def route(self, caller: UserConfig | None, dialled: str) -> Route:
        return self._homed(self.dialplan.route(caller, dialled))

    def _homed(self, route: Route) -> Route:
        """``route`` itself, or ELSEWHERE when it leads to a script or park
        slot that tlb places on another SIP server of the pool: a room, a
        mailbox or a park lot lives on one server, whichever server the
        caller's own calls are on."""
        key = self.dialplan.home_key(route)
        if key is None:
            return route
        member = self.tlb.locate_target(key)
        if member is None or member.name == self.name or not member.address:
            return route
        number = route.number or route.target
        self.log.info("{server}: call for {number} goes to {home}, its home", server=self.name,
                      number=number, home=member.name)
        return Route(RouteKind.ELSEWHERE, number, home=member.address)

    def route_destinations(self, route: Route) -> list[Destination]:
        if route.kind is RouteKind.ELSEWHERE:
            home = ListenAddress.parse(route.home)
            return [self.endpoint.destination(home.transport, home.host, home.port)]
        if route.kind is RouteKind.USER:
            proxy = next((a for a in self.proxy_addresses
                          if a.transport == self.listen.transport), self.proxy_addresses[0])
            return [self.endpoint.destination(proxy.transport, proxy.via_host, proxy.via_port)]
        out = []
        if route.kind is RouteKind.EXTERNAL:
            for gateway in self.tlb.locate_number(route.target):
                if gateway.address:
                    a = ListenAddress.parse(gateway.address)
                    out.append(self.endpoint.destination(a.transport, a.host, a.port))
        return out

    def contact(self) -> NameAddr:
        return NameAddr(uri=self.endpoint.contact_uri(self.listen.transport))

    def passed_headers(self, request: Request) -> tuple[tuple[str, str], ...]:
        patterns = [p.lower() for p in self.tproxy.pass_headers]
        out = []
        for name, value in request.headers:
            lowered = name.lower()
            if any(fnmatch.fnmatchcase(lowered, p) for p in patterns):
                out.append((name, value))
        return tuple(out)

    def register_leg(self, leg: Leg) -> None:
        self.table.register(leg)

    def unregister_leg(self, leg: Leg) -> None:
        self.table.unregister(leg)

    def find_leg(self, call_id: str, local_tag: str) -> Leg | None:
        """The live leg whose dialog has ``call_id`` and our tag ``local_tag``."""
        return self.table.find(call_id, local_tag)

    def call_ended(self, call: Call | ScriptChannel, cdr: CdrRecord) -> None:
        if self.calls.get(call.call_id) is call:  # a script may have its Call-ID now
            del self.calls[call.call_id]
        kind = {"answered": "answered", "cancelled": "cancelled"}.get(cdr.disposition, "failed")
        self.counters[kind] += 1
        self._cdrs.append(cdr)
        if not self.platform.logs("info"):
            return
        self.log.info("{server}: call {call_id} {caller} → {callee} ended: {disposition} "
                      "({cause})", server=self.name, call_id=cdr.call_id, caller=cdr.caller,
                      callee=cdr.callee, disposition=cdr.disposition, cause=cdr.hangup_cause)

    def _flush_cdrs(self) -> defer.Deferred[None]:
        """Write the CDRs of the calls ended since the last flush: one store
        transaction and one CSV write per interval, never one per call."""
        batch, self._cdrs = self._cdrs, []
        if not batch:
            return defer.succeed(None)
        if self._cdr_writer is not None and self._cdr_file is not None:
            self._cdr_writer.writerows(
                [getattr(cdr, name) if getattr(cdr, name) is not None else ""
                 for name in CDR_FIELDS] for cdr in batch)
            self._cdr_file.flush()
        d = self.platform.store.add_cdrs(batch)
        d.addErrback(lambda f: self.log.failure("{server}: {count} CDRs not stored", f,
                                                server=self.name, count=len(batch)))
        return d

    def publish(self, call: Call, what: str) -> None:
        legs = tuple(leg.dialog.call_id for leg in (call.a, call.b)
                     if leg is not None and leg.dialog is not None)
        self.platform.bus.publish(CallEvent(
            correlation_id=call.correlation_id, what=what, call_id=call.call_id,
            caller=call._caller_user(), callee=call.callee, sip_server=self.name, legs=legs,
            detail=call.state))

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return self.reactor.callLater(delay, fn)

    def _media_event(self, event: MediaEvent) -> None:
        call = self.calls.get(event.owner)
        if call is not None:
            call.media_event(event)

    # -- ISipHandler -------------------------------------------------------------------------

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        """New requests from sipproxy or a gateway."""
        request = event.request
        if request.to_tag and self.mwi.owns(request):
            self.mwi.refresh(request, event.txn)
            return
        if request.method == "SUBSCRIBE" and not request.to_tag:
            package = (request.headers.get("Event") or "").split(";")[0].strip().lower()
            if package != MWI_EVENT:
                endpoint.reply(event, 489, "Bad Event", to_tag=new_tag(),
                               extra=(("Allow-Events", MWI_EVENT),))
                return
            caller = self._caller(request)
            user = caller.uri.user if caller is not None and isinstance(
                caller.uri, SipUri) else None
            self.mwi.subscribe(request, event.txn, user)
            return
        self.table.dispatch(endpoint, event, self._invite, ALLOW,
                            (("Supported", ", ".join(SUPPORTED)),))

    def _invite(self, event: RequestIn) -> None:
        request = event.request
        caller_uri = self._caller(request)
        caller = None
        if caller_uri is not None and isinstance(caller_uri.uri, SipUri) and caller_uri.uri.user:
            caller = self.dialplan.user(caller_uri.uri.user)
        uri = request.uri
        dialled = uri.user if isinstance(uri, SipUri) and uri.user else ""
        self.counters["calls"] += 1
        leg = LegTable.incoming(self.legs, self.endpoint, event, self.contact())
        if leg is None:
            self.counters["refused"] += 1
            return
        if request.call_id in self.calls:
            self.counters["refused"] += 1
            leg.reject(482, "Loop Detected")
            return
        missing = unsupported(request)
        if missing:
            self.counters["refused"] += 1
            leg.reject(420, "Bad Extension", extra=(("Unsupported", ", ".join(missing)),))
            return
        timer = negotiate(request)
        if isinstance(timer, int):
            self.counters["refused"] += 1
            leg.reject(422, "Session Interval Too Small", extra=(("Min-SE", str(timer)),))
            return
        from_pool = self.pool_peers.allows(event.source)
        referrer = self._user_of(request.headers.get("Referred-By")) if from_pool else None
        # a transfer made on another SIP server is routed with the
        # transferor's rights, as it would have been there
        router = caller or (self.dialplan.user(referrer) if referrer else None)
        route = self.dialplan.route(router, dialled)
        if not from_pool:
            route = self._homed(route)  # from another SIP server: homed here already
        if route.kind is RouteKind.SCRIPT:
            self._script(leg, caller, caller_uri or request.from_, dialled, route)
            return
        if route.kind is RouteKind.PICKUP:
            self._pickup(leg, caller, route.target, route.args[0] if route.args else "")
            return
        parked = self.parking.occupant(route.target) if (
            route.kind is RouteKind.PARK and self.parking is not None) else None
        if parked is not None and caller is not None:
            parked.retrieve(leg, caller)
            return
        call = Call(self, leg, caller, caller_uri or request.from_, dialled, timer,
                    from_carrier=self.gateway_peers.allows(event.source))
        if route.kind is RouteKind.PARK:
            # parked here by a transfer on another SIP server: ring its
            # transferor back when nobody takes the call
            call.parker = referrer
        self.calls[call.call_id] = call
        call.start(route)

    def _pickup(self, leg: IncomingLeg, picker: UserConfig | None, target: str,
                group: str) -> None:
        """``**<ext>`` (``target``) or the group pickup number (``group``):
        the ringing call :func:`call_to_pick_up` names is answered by ``leg``."""
        calls = (c for c in self.calls.values() if isinstance(c, Call))
        ringing = call_to_pick_up(calls, picker, extension=target, group=group,
                                  user=self.dialplan.user) if picker is not None else None
        if ringing is None or picker is None:
            self.counters["refused"] += 1
            leg.reject(480, "Temporarily Unavailable (no call to pick up)")
            return
        self.log.info("{server}: {picker} picks up call {call_id} ringing at {target}",
                      server=self.name, picker=picker.extension, call_id=ringing.call_id,
                      target=ringing.callee)
        ringing.picked_up(leg, picker.extension)

    def prompt(self, name: str) -> str | None:
        return self.sounds.find(name, self.language)

    def hand_over(self, handover: Handover) -> bool:
        """A caller forwarded to a script, or a transferee sent to one, goes
        on on a ScriptChannel."""
        scripts = self.platform.providers.get(IScriptServer)
        if scripts is None:
            return False
        # known by the Call-ID its endpoint belongs to: media events find it
        channel = ScriptChannel(self, handover.leg, handover.caller, handover.caller_uri,
                                handover.dialled, handover.route.target, handover.route.args,
                                scripts, call_id=handover.endpoint.owner)
        self.calls[channel.call_id] = channel
        self.log.info("{server}: call {call_id} goes on in script {app}", server=self.name,
                      call_id=channel.call_id, app=handover.route.target)
        channel.adopt(handover.endpoint, handover.session, handover.answer, handover.codec,
                      late_offer=handover.late_offer, answered=handover.answered)
        return True

    def _script(self, leg: IncomingLeg, caller: UserConfig | None, caller_uri: NameAddr,
                dialled: str, route: Route) -> None:
        """A call to a [[dialplan]] number bound to a script."""
        scripts = self.platform.providers.get(IScriptServer)
        if scripts is None:
            self.counters["refused"] += 1
            leg.reject(501, f"Not Implemented (no scriptserver for {route.target})")
            return
        channel = ScriptChannel(self, leg, caller, caller_uri, dialled, route.target,
                                route.args, scripts)
        self.calls[channel.call_id] = channel
        channel.start()

    def _user_of(self, value: str | None) -> str | None:
        """The extension of a user named by a header value, or None."""
        try:
            uri = NameAddr.parse(value).uri if value else None
        except HeaderError:
            return None
        if isinstance(uri, SipUri) and uri.user and self.dialplan.user(uri.user):
            return uri.user
        return None

    @staticmethod
    def _caller(request: Request) -> NameAddr | None:
        value = request.headers.get("P-Asserted-Identity")
        if value:
            try:
                return NameAddr.parse(value.split(",")[0])
            except HeaderError:
                return None
        return None

