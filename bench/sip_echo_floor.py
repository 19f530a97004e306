"""The floor under any Twisted SIP server: a UDP protocol that answers an
OPTIONS with a canned 200 by copying five header lines, no parsing.

Run as ``python bench/sip_echo_floor.py PORT``; bench/options_load.py
measures its CPU per answered OPTIONS beside the platform's.
"""

from __future__ import annotations

import sys

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

COPIED = (b"Via:", b"From", b"To: ", b"Call", b"CSeq")
TAIL = [b"Allow: INVITE, ACK", b"Accept: application/sdp", b"Supported: path",
        b"Content-Length: 0", b"", b""]


class CannedOk(DatagramProtocol):
    """Answers every datagram with 200 OK built from its copied lines."""

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        kept = [line for line in head[1:] if line[:4] in COPIED]
        self.transport.write(b"\r\n".join([b"SIP/2.0 200 OK", *kept, *TAIL]), addr)  # type: ignore[union-attr]


if __name__ == "__main__":
    reactor.listenUDP(int(sys.argv[1]), CannedOk(), interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
