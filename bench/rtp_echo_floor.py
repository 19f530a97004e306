"""The floor under any Twisted RTP relay: two UDP sockets per call, each
datagram that arrives on one is sent from the other to a fixed address
("A's socket -> B's address"), no parsing, no latching, no rewriting.

Run as ``python -m bench.rtp_echo_floor FAR_PORTS_FILE``: the file holds the
UDP ports of the far ends on 127.0.0.1, ports 2k and 2k+1 being the two far
ends of call k, as for bench/mediaserver_runner.py.  Prints one JSON line
``{"pid": ..., "ports": [...]}`` (the relay's port per far end) and serves
until SIGTERM.  bench/rtp_relay.py measures its CPU per relayed packet
beside the mediaserver's.  Sending writes the other socket directly, as the
mediaserver does; the collector is set up as the platform sets it up.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

from bench.measure import raise_nofile, read_far_ports, serve_ports

HOST = "127.0.0.1"


class Forward(DatagramProtocol):
    """Sends every datagram from the other socket of the pair to ``dest``."""

    noisy = False

    def __init__(self, dest: tuple[str, int]) -> None:
        self.dest = dest
        self.sendto: Any = None
        self.errors = 0

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:  # type: ignore[override]
        try:
            self.sendto(datagram, self.dest)
        except OSError:  # full buffer, ICMP port unreachable: dropped
            self.errors += 1


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    far = read_far_ports(argv[0])
    if far is None:
        return 2
    raise_nofile()
    ports = []
    for fa, fb in zip(far[::2], far[1::2], strict=True):
        # what arrives on A (from far end a) leaves B's socket for far end b
        to_b, to_a = Forward((HOST, fb)), Forward((HOST, fa))
        a = reactor.listenUDP(0, to_b, interface=HOST)  # type: ignore[attr-defined]
        b = reactor.listenUDP(0, to_a, interface=HOST)  # type: ignore[attr-defined]
        to_b.sendto = b.socket.sendto
        to_a.sendto = a.socket.sendto
        ports += [a.getHost().port, b.getHost().port]
    return serve_ports(reactor, ports)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
