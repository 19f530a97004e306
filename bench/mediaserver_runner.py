"""One :class:`telavox.mediaserver.MediaServer` relaying N two-way calls, in
a process of its own so that bench/rtp_relay.py can read its CPU time.

Run as ``python -m bench.mediaserver_runner FAR_PORTS_FILE LOW HIGH
[LOG_FILE]``.  ``FAR_PORTS_FILE`` holds the UDP ports of the far ends on
127.0.0.1, whitespace-separated, an even number: ports 2k and 2k+1 are the
two far ends of call k.  The runner allocates one audio endpoint per far end
from the RTP range ``LOW``-``HIGH``, describes the far end to it (PCMU only,
no telephone-event, sendrecv), connects the endpoints of each call, prints
one JSON line ``{"pid": ..., "ports": [...]}`` (the endpoint's RTP port per
far end, in the file's order) and serves until SIGTERM.  Logs go to
``LOG_FILE`` (default: nowhere).

The collector is set up as the platform sets it up when serving
(``telavox.platform.GC_THRESHOLDS``, start-up objects frozen).
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from bench.measure import raise_nofile, read_far_ports, serve_ports
from telavox.mediaserver import MediaServer
from telavox.records import MediaEndpoint, MediaFormat, RemoteStream

PCMU = MediaFormat(0, "PCMU", 8000)
HOST = "127.0.0.1"


def _fired(deferred: Any) -> Any:
    """The result of an already-fired Deferred (the mediaserver's are)."""
    results: list[Any] = []
    deferred.addBoth(results.append)
    if not results:
        raise RuntimeError("the mediaserver's Deferred did not fire at once")
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def setup(server: MediaServer, far_ports: list[int]) -> list[int]:
    """Endpoints for ``far_ports`` connected in pairs; their RTP ports."""
    ports = []
    ids = []
    for index, far in enumerate(far_ports):
        endpoint: MediaEndpoint = _fired(server.allocate(f"bench-call-{index // 2}"))
        _fired(server.set_remote(endpoint.endpoint_id, [RemoteStream(
            kind="audio", address=HOST, port=far, formats=(PCMU,),
            signalling_address=HOST)]))
        ids.append(endpoint.endpoint_id)
        ports.append(endpoint.streams[0].rtp_port)
    for a, b in zip(ids[::2], ids[1::2], strict=True):
        _fired(server.connect(a, b))
    return ports


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    far_ports = read_far_ports(argv[0])
    if far_ports is None:
        return 2
    low, high = int(argv[1]), int(argv[2])
    raise_nofile()
    if len(argv) == 4:
        log = open(argv[3], "a")  # noqa: SIM115 -- open for the life of the process
        globalLogBeginner.beginLoggingTo([FilteringLogObserver(
            textFileLogObserver(log), [LogLevelFilterPredicate(LogLevel.info)])],
            redirectStandardIO=False)
    else:
        globalLogBeginner.beginLoggingTo([], redirectStandardIO=False)
    server = MediaServer(reactor, name="bench", address=HOST, rtp_ports=(low, high),
                         inactivity_timeout=0, inband_dtmf=False)
    server.start()
    ports = setup(server, far_ports)
    return serve_ports(reactor, ports)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
