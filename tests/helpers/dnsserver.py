"""A DNS server of the tests' own, on loopback, in its own process.

``DnsServer(records).start()`` runs this file as a script: a twisted.names
server answering from the records given (A, AAAA, SRV, NAPTR) on a free UDP
port of 127.0.0.1, which it writes to a file once it listens.  A platform
process under test points ``[platform] dns_servers`` at it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

Record = tuple[str, str, list[Any]]
"""(name, type, arguments): ("sip.carrier.test", "A", ["127.0.0.5"]),
("_sip._udp.carrier.test", "SRV", [priority, weight, port, target]),
("carrier.test", "NAPTR", [order, preference, flags, service, regexp, replacement])."""


class DnsServer:
    """The server process (see the module docstring)."""

    def __init__(self, records: list[Record]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="telavox-dns-"))
        self.records = records
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> DnsServer:
        zone = self.folder / "zone.json"
        zone.write_text(json.dumps(self.records))
        port_file = self.folder / "port"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(zone), str(port_file)],
            stdout=open(self.folder / "log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                self.port = int(port_file.read_text())
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"DNS server did not start: {self.log()}")

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _serve(zone_path: str, port_path: str) -> None:
    from twisted.internet import reactor
    from twisted.names import authority, dns, server

    types = {"A": dns.Record_A, "AAAA": dns.Record_AAAA, "SRV": dns.Record_SRV,
             "NAPTR": dns.Record_NAPTR}
    records: list[Record] = json.loads(Path(zone_path).read_text())

    class Zone(authority.FileAuthority):
        def loadFile(self, origin: Any) -> None:
            self.soa = (origin.encode(), dns.Record_SOA(mname=f"ns.{origin}",
                                                        rname=f"admin.{origin}", serial=1))
            self.records = {origin.encode(): [self.soa[1]]}
            for name, kind, args in records:
                if name == origin or name.endswith("." + origin):
                    encoded = [a.encode() if isinstance(a, str) and kind != "A"
                               and kind != "AAAA" else a for a in args]
                    self.records.setdefault(name.lower().encode(), []).append(
                        types[kind](*encoded))

    origins = sorted({".".join(name.split(".")[-2:]) for name, _, _ in records})
    factory = server.DNSServerFactory(authorities=[Zone(o) for o in origins])
    port = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory),  # type: ignore[attr-defined]
                             interface="127.0.0.1")
    Path(port_path).write_text(str(port.getHost().port))
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
