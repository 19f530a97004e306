"""FastAGI: AGI over TCP to a script server (``agi://host[:port][/name]``).

Owns :class:`FastAgiClient`.  As Asterisk's ``launch_netscript``: connect
to the host (port 4573 by default) within ``connect_timeout`` seconds, send
``agi_network: yes`` and ``agi_network_script: <name>`` (when there is a
name) in front of the environment block, whose ``agi_request`` is the whole
URL, then read commands.  When the caller hangs up the server gets a
``HANGUP`` line (unless ``AGISIGHUP`` is false), after the reply of any
command in progress; when the session ends it gets another ``HANGUP`` line
(same condition) and the connection is closed; a server that does not let
it close within ``kill_after`` seconds is cut off.  A connection that
cannot be made is logged and ``run`` fires, leaving the channel for the
caller to hang up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall, ITCPTransport
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from telavox.scriptserver.agi import AgiEnvironment, parse_agi_url
from telavox.scriptserver.services import AgiServices
from telavox.scriptserver.session import AgiSession, EndReason, environment_for

__all__ = ["FastAgiClient"]


class _FastAgiProtocol(Protocol):
    """One FastAGI connection and its session."""

    log = Logger()

    def __init__(self, owner: FastAgiClient, channel: Any, env: AgiEnvironment,
                 label: str) -> None:
        self.owner = owner
        self.env = env
        self.label = label
        self.session = AgiSession(channel, owner.services, owner.reactor, label=label,
                                  write=self._write, notify_hangup=self._hangup)
        self.finished: defer.Deferred[None] = defer.Deferred()
        self.connected = False
        self._closed = False
        self._abort_timer: IDelayedCall | None = None
        self.session.done.addCallback(self._session_done)

    def connectionMade(self) -> None:
        self.connected = True
        self.owner.connections.add(self)
        self.session.producer = self.transport  # type: ignore[assignment]
        self.session.start(self.env)

    def dataReceived(self, data: bytes) -> None:
        self.session.data_received(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closed = True
        self.owner.connections.discard(self)
        if self._abort_timer is not None and self._abort_timer.active():
            self._abort_timer.cancel()
        self.session.input_ended()
        self._finish()

    def _write(self, data: bytes) -> None:
        if self.connected and not self._closed and self.transport is not None:
            self.transport.write(data)

    def _hangup(self) -> None:
        self._write(b"HANGUP\n")

    def _session_done(self, reason: EndReason) -> EndReason:
        if self.connected and not self._closed:
            if self.session.send_sighup:
                self._write(b"HANGUP\n")
            transport: ITCPTransport = self.transport  # type: ignore[assignment]
            transport.loseConnection()
            self._abort_timer = self.owner.reactor.callLater(
                self.owner.services.options.kill_after, transport.abortConnection)
        self._finish()
        return reason

    def _finish(self) -> None:
        if self.session.ended and (self._closed or not self.connected) and \
                not self.finished.called:
            self.finished.callback(None)

    def failed(self, failure: Failure) -> None:
        """The connection could not be made."""
        self.log.warn("{label}: FastAGI connection failed: {reason}", label=self.label,
                      reason=failure.getErrorMessage())
        self.session.stop(EndReason.CLOSED)


class FastAgiClient:
    """Runs FastAGI scripts on channels (see the module docstring)."""

    log = Logger()

    def __init__(self, reactor: Any, services: AgiServices) -> None:
        self.reactor = reactor
        self.services = services
        self.connections: set[_FastAgiProtocol] = set()
        """The connections open now."""

    def run(self, url: str, channel: Any, args: Sequence[str] = ()) -> defer.Deferred[None]:
        """Run the FastAGI script at ``url`` on ``channel``; fires (never
        fails) when its session is over and the connection closed."""
        try:
            target = parse_agi_url(url)
        except ValueError as e:
            self.log.warn("Cannot run {url}: {error}", url=url, error=e)
            return defer.succeed(None)
        env = environment_for(channel, url, tuple(args), self.services.options.version,
                              network_script=target.script)
        protocol = _FastAgiProtocol(self, channel, env, f"FastAGI {url} on {channel.name}")
        endpoint = HostnameEndpoint(self.reactor, target.host, target.port,
                                    timeout=self.services.options.connect_timeout)
        connectProtocol(endpoint, protocol).addErrback(protocol.failed)
        return protocol.finished
