"""Sans-IO SIP core: parser throughput and transaction-layer CPU per message.

Run with the fake clock: no sockets, no reactor; what is measured is pure
Python work per message, on one core.
"""

from __future__ import annotations

from pathlib import Path

from bench.measure import cpu_loop, median_of
from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import parse_message
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction import Destination, Source, TransactionLayer

INVITE = (Path(__file__).resolve().parents[1] / "tests/data/sip/invite_sdp.msg").read_bytes()
# the same INVITE without its Proxy-Authorization: a typical ~900-byte INVITE
TYPICAL = b"\r\n".join(line for line in INVITE.split(b"\r\n")
                        if not line.startswith(b"Proxy-Authorization:"))
SOURCE = Source("udp", "192.0.2.10", 5060)
DEST = Destination("udp", "192.0.2.20", 5060)


def parse_only(data: bytes = INVITE) -> float:
    return cpu_loop(lambda: parse_message(data), 20000)


def parse_and_serialize(data: bytes = INVITE) -> float:
    return cpu_loop(lambda: parse_message(data).serialize(), 20000)


def _big_message(headers: int) -> bytes:
    """A request with ``headers`` extra header lines (and some folding)."""
    lines = [f"X-Extra-{i}: value {i};param=\"quoted, text\"" for i in range(headers)]
    folded = [f"X-Folded-{i}: part one\r\n  part two" for i in range(headers // 10)]
    head = TYPICAL.split(b"\r\n\r\n", 1)
    extra = "\r\n".join(lines + folded).encode()
    return head[0] + b"\r\n" + extra + b"\r\n\r\n" + head[1]


def scaling() -> list[tuple[str, str, str]]:
    """Parse+serialise cost per KiB for growing messages: flat means linear."""
    rows = []
    for count in (10, 200, 1500):
        data = _big_message(count)
        cost = cpu_loop(lambda data=data: parse_message(data).serialize(), 300)
        rows.append((f"parse + serialise, {len(data) / 1024:.1f} KiB message",
                     f"{cost * 1e6 / (len(data) / 1024):.1f} µs/KiB",
                     f"{cost * 1e6:.0f} µs per message; flat µs/KiB = linear work"))
    return rows


def _invite(via: str) -> Request:
    """The INVITE as it arrives from the network (parsed, with ``via``)."""
    text = INVITE.replace(
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---0a1b2c3d4e5f6071;rport",
        f"Via: {via}".encode())
    assert text != INVITE
    message = parse_message(text)
    assert isinstance(message, Request)
    return message


def _parsed(message: Response) -> Response:
    """A response as it arrives from the network."""
    parsed = parse_message(message.serialize())
    assert isinstance(parsed, Response)
    return parsed


def _server_transactions(n: int) -> float:
    """Per message: an INVITE in, 100/180/200 out, a retransmission in, the
    L timer; 5 messages per transaction (parsing excluded)."""
    requests = [_invite(f"SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-bench-{i};rport")
                for i in range(n)]
    responses = [(make_response(r, 100), make_response(r, 180, to_tag="t"),
                  make_response(r, 200, to_tag="t")) for r in requests]
    layer = TransactionLayer(TimerConfig(trying_delay=None))
    import time
    start = time.process_time()
    now = 0.0
    for r, (trying, ringing, ok) in zip(requests, responses, strict=True):
        event = layer.receive(r, SOURCE, now)[0]
        layer.respond(event.txn, trying, now)  # type: ignore[union-attr]
        layer.respond(event.txn, ringing, now)  # type: ignore[union-attr]
        layer.respond(event.txn, ok, now)  # type: ignore[union-attr]
        layer.receive(r, SOURCE, now)
        now += 0.001
    layer.fire(now + 100)
    elapsed = time.process_time() - start
    assert layer.server_count == 0
    return elapsed / (n * 5)


def _client_transactions(n: int) -> float:
    """Per message: an INVITE sent, 180 and 200 received, the M timer."""
    requests = [_invite(f"SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-c{i}") for i in range(n)]
    answers = [(_parsed(make_response(r, 180, to_tag="t")),
                _parsed(make_response(r, 200, to_tag="t"))) for r in requests]
    layer = TransactionLayer(TimerConfig(trying_delay=None))
    import time
    start = time.process_time()
    now = 0.0
    for r, (ringing, ok) in zip(requests, answers, strict=True):
        layer.send_request(r, DEST, now)
        layer.receive(ringing, SOURCE, now)
        layer.receive(ok, SOURCE, now)
        now += 0.001
    layer.fire(now + 100)
    elapsed = time.process_time() - start
    assert layer.client_count == 0
    return elapsed / (n * 3)


def run(runs: int = 5) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) of the SIP core benchmark."""
    size = len(INVITE)
    typical, _ = median_of(runs, lambda: parse_and_serialize(TYPICAL))
    parse, _ = median_of(runs, parse_only)
    both, _ = median_of(runs, parse_and_serialize)
    server, _ = median_of(runs, lambda: _server_transactions(20000))
    client, _ = median_of(runs, lambda: _client_transactions(20000))
    return [
        (f"parse + serialise a {len(TYPICAL)}-byte INVITE with SDP", f"{typical * 1e6:.1f} µs",
         f"{1 / typical:,.0f} per second on one core (target ≥ 50,000)"),
        (f"parse a {size}-byte INVITE with SDP and credentials", f"{parse * 1e6:.1f} µs",
         f"{1 / parse:,.0f} per second on one core"),
        ("parse + serialise the same INVITE", f"{both * 1e6:.1f} µs",
         f"{1 / both:,.0f} per second on one core"),
        ("server INVITE transaction, per message", f"{server * 1e6:.1f} µs",
         "INVITE in, 100/180/200 out, 1 retransmission in, Timer L (target ≤ 10 µs)"),
        ("client INVITE transaction, per message", f"{client * 1e6:.1f} µs",
         "INVITE out, 180 and 200 in, Timer M"),
        *scaling(),
    ]
