"""The benchmark's authenticated call replayed through an in-process sipproxy,
without sockets: Python CPU per call and per message, with the transaction
timers firing on a fake clock at a chosen call rate (so 64*T1 of ended
transactions is held, as under load) and the cyclic collector accounted.

Not part of ``make bench``: a tool for working on the proxy's CPU figure.
The live figure (bench/proxy_load.py) adds the sockets, the reactor and the
kernel's loopback to what is measured here.

    .venv/bin/python -m bench.proxy_replay [--calls N] [--rate R] [--in-flight K]
                                           [--profile FILE] [--survivors]

Each call is INVITE, 407, ACK, INVITE with credentials, 100/180/200 from the
pool member, ACK, BYE and its 200, built as SIPp's uac_auth_call.xml and
uas_call.xml would; every message the proxy sends is checked.  As under the
benchmark's load, K other calls (the rate, for its 1 s calls) start between
a call's ACK and its BYE, so each call's state has gone cold by then; with
``--in-flight 0`` each call runs whole before the next.  Prints the
time the proxy spent per call (wall clock of its handling, on one otherwise
idle thread) in each round of N calls, per message kind and in the timers,
and the collector's runs per generation with their time.

``--survivors`` prints instead a figure that does not depend on how busy the
machine is: the objects per call, by type, that the cyclic collector finds
alive in its youngest generation (what each of its passes has to walk once:
the state a call leaves behind for more than about a second, such as the
transactions held for 64*T1).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.proxy_load import CALL_SECONDS, DOMAIN, telavox_config, telavox_config_text
from telavox import tap
from telavox.sip.digest import answer_challenge, parse_challenge

POOL = ("127.0.0.2", 5099)
UAC = ("127.0.0.1", 5070)
SDP = ("v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
       "t=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
       "a=sendrecv\r\n")
POOL_SDP = SDP.replace("user1", "pool")
TIMER_STEP = 0.02
"""Fake seconds between runs of the due transaction timers (the endpoint's grid)."""


def _lines(message: str, name: str) -> list[str]:
    return [line for line in message.split("\r\n") if line.lower().startswith(name.lower() + ":")]


class Replay:
    """One in-process platform (sipproxy, registrar, tlb) fed datagrams."""

    def __init__(self, rate: float) -> None:
        folder = Path(tempfile.mkdtemp(prefix="telavox-replay-"))
        config = folder / "telavox.toml"
        config.write_text(telavox_config(telavox_config_text(), 5098, POOL, folder / "var"))
        os.chdir(folder)
        options = tap.Options()
        options.parseOptions(["--config", str(config)])
        self.service = tap.makeService(options)
        self.service.startService()
        self.proxy = self._find_proxy(self.service)
        endpoint = self.proxy.endpoint
        self.endpoint = endpoint
        self.protocol = next(iter(endpoint._udp.values()))
        self.sent: list[tuple[bytes, str, int]] = []
        self.protocol.send = lambda data, host, port: self.sent.append((data, host, port))
        self.now = 1000.0
        endpoint.now = lambda: self.now
        endpoint._schedule = lambda: None  # timers are run by tick()
        self.rate = rate
        self.next_fire = self.now + TIMER_STEP
        self.kinds: dict[str, float] = {}
        self.elapsed = 0.0

    @staticmethod
    def _find_proxy(service: Any) -> Any:
        from telavox.sipproxy.service import SipProxyService

        stack = [service]
        while stack:
            s = stack.pop()
            if isinstance(s, SipProxyService):
                return s
            stack.extend(getattr(s, "services", []))
        raise RuntimeError("no sipproxy in the configuration")

    def _timed(self, kind: str, fn: Callable[[], object]) -> None:
        start = time.perf_counter()
        fn()
        spent = time.perf_counter() - start
        self.elapsed += spent
        self.kinds[kind] = self.kinds.get(kind, 0.0) + spent

    def deliver(self, data: bytes, source: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0"):
            cseq = data[data.find(b"CSeq:"):data.find(b"\r", data.find(b"CSeq:"))].split()
            kind = f"{data[8:11].decode()} {cseq[-1].decode()}"
        else:
            cseq = data[data.find(b"CSeq: ") + 6:data.find(b"\r", data.find(b"CSeq: "))].split()
            kind = f"{cseq[1].decode()} {cseq[0].decode()}"
        self._timed(kind, lambda: self.protocol.datagramReceived(data, source))

    def take(self, host: str) -> list[bytes]:
        out = [d for d, h, _ in self.sent if h == host]
        self.sent.clear()
        return out

    def tick(self) -> None:
        """One call's worth of fake time; the timers due run on their grid."""
        self.now += 1.0 / self.rate
        if self.now >= self.next_fire:
            self.next_fire += TIMER_STEP
            self._timed("timers", lambda: self.endpoint._run(
                self.endpoint.layer.fire(self.now)))

    def call(self, n: int) -> None:
        """One authenticated call, checked at each step."""
        self.hang_up(self.set_up(n))

    def set_up(self, n: int) -> Callable[[], None]:
        """The first part of call ``n``: INVITE, 407, ACK, INVITE with
        credentials, 100/180/200 from the pool member and the ACK, checked at
        each step.  Returns the rest of the call (BYE and its 200) to run
        later, when other calls have happened in between."""
        user = 2000 + n % 1000
        call_id, tag = f"{n}-4242@127.0.0.1", f"4242SIPpTag00{n}"
        from_ = f"From: <sip:{user}@{DOMAIN}>;tag={tag}"
        ruri = f"sip:pool@{DOMAIN}"
        contact = f"Contact: <sip:{user}@127.0.0.1:5070;transport=UDP>"

        def invite(cseq: int, branch: str, extra: str = "") -> bytes:
            return (f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};"
                    f"rport\r\nMax-Forwards: 70\r\n{from_}\r\nTo: <sip:pool@{DOMAIN}>\r\n"
                    f"Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n{contact}\r\n{extra}"
                    "User-Agent: telavox-bench\r\nContent-Type: application/sdp\r\n"
                    f"Content-Length: {len(SDP)}\r\n\r\n{SDP}").encode()

        first = f"z9hG4bK-4242-{n}-0"
        self.deliver(invite(1, first), UAC)
        challenge = self.take(UAC[0])[0].decode()
        assert challenge.startswith("SIP/2.0 407"), challenge
        self.deliver((f"ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={first};"
                      f"rport\r\nMax-Forwards: 70\r\n{from_}\r\n{_lines(challenge, 'To')[0]}\r\n"
                      f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode(),
                     UAC)
        asked = parse_challenge(_lines(challenge, "Proxy-Authenticate")[0].split(":", 1)[1])
        credentials = answer_challenge(asked, method="INVITE", uri=ruri, username=str(user),
                                       password=f"pw{user}", cnonce="abc", nc=1)
        self.deliver(invite(2, f"z9hG4bK-4242-{n}-2",
                            f"Proxy-Authorization: {credentials.format()}\r\n"), UAC)
        forwarded = self.take(POOL[0])[0].decode()
        assert forwarded.startswith("INVITE"), forwarded
        head = forwarded.split("\r\n\r\n")[0]
        vias = "\r\n".join(_lines(head, "Via"))
        record_route = "\r\n".join(_lines(head, "Record-Route"))
        to = _lines(head, "To")[0]
        tail = "\r\n".join(_lines(head, "Call-ID") + _lines(head, "CSeq"))
        from_pool = _lines(head, "From")[0]
        self.deliver(f"SIP/2.0 100 Trying\r\n{vias}\r\n{from_pool}\r\n{to}\r\n{tail}\r\n"
                     "Content-Length: 0\r\n\r\n".encode(), POOL)
        pool_contact = f"Contact: <sip:pool@{POOL[0]}:{POOL[1]};transport=UDP>"
        to_tagged = f"{to};tag=4242SIPpTag01{n}"
        self.deliver(f"SIP/2.0 180 Ringing\r\n{vias}\r\n{record_route}\r\n{from_pool}\r\n"
                     f"{to_tagged}\r\n{tail}\r\n{pool_contact}\r\nContent-Length: 0\r\n\r\n"
                     .encode(), POOL)
        self.deliver(f"SIP/2.0 200 OK\r\n{vias}\r\n{record_route}\r\n{from_pool}\r\n{to_tagged}"
                     f"\r\n{tail}\r\n{pool_contact}\r\nContent-Type: application/sdp\r\n"
                     f"Content-Length: {len(POOL_SDP)}\r\n\r\n{POOL_SDP}".encode(), POOL)
        upstream = self.take(UAC[0])
        assert len(upstream) == 2 and upstream[1].startswith(b"SIP/2.0 200"), upstream
        ok = upstream[1].decode().split("\r\n\r\n")[0]
        routes = ", ".join(line.split(":", 1)[1].strip() for line in _lines(ok, "Record-Route"))
        match = re.search(r"<([^>]*)>", _lines(ok, "Contact")[0])
        assert match is not None
        target = match.group(1)

        def in_dialog(method: str, cseq: int, branch: str) -> bytes:
            return (f"{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;"
                    f"branch={branch};rport\r\nRoute: {routes}\r\nMax-Forwards: 70\r\n"
                    f"{from_}\r\n{_lines(ok, 'To')[0]}\r\nCall-ID: {call_id}\r\n"
                    f"CSeq: {cseq} {method}\r\n{contact}\r\nContent-Length: 0\r\n\r\n").encode()

        self.deliver(in_dialog("ACK", 2, f"z9hG4bK-4242-{n}-5"), UAC)
        assert self.take(POOL[0])[0].startswith(b"ACK")
        self.tick()
        return lambda: self._bye(in_dialog("BYE", 3, f"z9hG4bK-4242-{n}-6"))

    def _bye(self, request: bytes) -> None:
        self.deliver(request, UAC)
        bye = self.take(POOL[0])[0].decode().split("\r\n\r\n")[0]
        assert bye.startswith("BYE"), bye
        echoed = "\r\n".join(_lines(bye, "Via") + _lines(bye, "From") + _lines(bye, "To")
                             + _lines(bye, "Call-ID") + _lines(bye, "CSeq"))
        self.deliver(f"SIP/2.0 200 OK\r\n{echoed}\r\nContent-Length: 0\r\n\r\n".encode(), POOL)
        last = self.take(UAC[0])
        assert len(last) == 1 and last[0].startswith(b"SIP/2.0 200"), last

    @staticmethod
    def hang_up(rest: Callable[[], None]) -> None:
        """End a call :meth:`set_up` started."""
        rest()


def count_survivors(one: Callable[[int], None], first: int, calls: int) -> None:
    """Run ``calls`` calls with the collector off, then one pass of its
    youngest generation, and print what that pass found alive per call."""
    gc.disable()
    gc.collect(0)
    before = {id(o) for o in gc.get_objects(generation=1)}
    for n in range(first, first + calls):
        one(n)
    gc.collect(0)
    new = [o for o in gc.get_objects(generation=1) if id(o) not in before]
    kinds: dict[str, int] = {}
    for o in new:
        name = type(o).__name__
        kinds[name] = kinds.get(name, 0) + 1
    print(f"objects left to the collector: {len(new) / calls:.1f} per call")
    print("  ".join(f"{name} {count / calls:.2f}" for name, count in
                    sorted(kinds.items(), key=lambda kv: -kv[1])[:16]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per round (8 rounds)")
    parser.add_argument("--rate", type=float, default=800.0,
                        help="calls per fake second (how long ended transactions are held)")
    parser.add_argument("--in-flight", type=int, default=None,
                        help="calls between a call's set-up and its BYE (default: the "
                        "rate, as with the benchmark's 1 s calls; 0: each call whole "
                        "before the next)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the rounds here")
    parser.add_argument("--survivors", action="store_true",
                        help="count the tracked objects each call leaves to the collector")
    args = parser.parse_args(argv)
    replay = Replay(args.rate)
    in_flight = int(args.rate * CALL_SECONDS) if args.in_flight is None else args.in_flight
    pending: deque[Callable[[], None]] = deque()

    def one(n: int) -> None:
        pending.append(replay.set_up(n))
        if len(pending) > in_flight:
            replay.hang_up(pending.popleft())
    generations = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
    started = [0.0]

    def collector(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            entry = generations[info["generation"]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started[0]

    warm = 50 + in_flight
    for n in range(warm):  # warm-up, and as many calls in progress as under load
        one(n)
    if args.survivors:
        count_survivors(one, warm, args.calls)
        return 0
    replay.kinds.clear()
    replay.elapsed = 0.0
    gc.callbacks.append(collector)
    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        profile.enable()
    rounds = []
    for r in range(8):
        before = replay.elapsed
        for n in range(warm + r * args.calls, warm + (r + 1) * args.calls):
            one(n)
        rounds.append((replay.elapsed - before) / args.calls * 1e6)
    if profile is not None:
        profile.disable()
        profile.dump_stats(str(args.profile))
    gc.callbacks.remove(collector)
    calls = 8 * args.calls
    print("µs per call, each round:", " ".join(f"{x:.0f}" for x in rounds))
    print("µs per call, by message:", "  ".join(
        f"{k}={v / calls * 1e6:.0f}" for k, v in replay.kinds.items()))
    print("collector:", ", ".join(f"gen{g} {n} runs {t * 1000:.0f} ms"
                                  for g, (n, t) in generations.items()),
          f"({sum(t for _, t in generations.values()) / calls * 1e6:.0f} µs per call, "
          "wall clock)")
    layer = replay.endpoint.layer
    print(f"held at the end: {layer.client_count} client and {layer.server_count} server "
          f"transactions, {len(gc.get_objects())} objects tracked")
    print(f"replay: {calls} calls, {in_flight} in progress, "
          f"{replay.elapsed / calls * 1e6:.1f} µs per call")
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # the store's thread pool is not worth a clean stop here
