"""Calls through the whole platform: SIPp UAC → sipproxy → tproxy (two
mediaserver endpoints allocated per call) → sipproxy → SIPp UAS registered
as a user, with sipproxy and tproxy in one process (the hop between them is
in memory).

One operation is one authenticated call of :data:`~bench.proxy_load.CALL_SECONDS`
(INVITE, 407, ACK, INVITE with credentials, 100, 180, 200, ACK, BYE, 200 on
the caller's side, and the same again between tproxy and the callee).  The
callers are the users of :mod:`bench.proxy_load`; the callee is user
:data:`CALLEE`, whose only binding is the SIPp UAS (registered once by a
digest exchange from this module).  The figure is the platform's CPU time
per call, measured as in :mod:`bench.proxy_load`; the Python reference is
sippy's B2BUA at 4.2-4.8 ms per call on this kind of machine, which
allocates no media endpoints.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import proxy_load as P  # noqa: N812
from telavox.sip.digest import answer_challenge, parse_challenge
from telavox.sip.message import Response
from telavox.sip.parser import parse_message
from tests.helpers.process import PlatformProcess, free_port

CALLEE = "3000"
CALLEE_PASSWORD = "pw3000"
HERE = Path(__file__).resolve().parent
CONFIG = HERE / "telavox-sipserver.toml"
CALL_STEPS = (100, 200, 300, 400, 500, 650)


def register_contact(proxy_port: int, contact: tuple[str, int]) -> None:
    """Bind :data:`CALLEE` to ``contact`` (REGISTER, 401, REGISTER, 200)."""
    host, port = contact

    def request(extra: str, cseq: int) -> bytes:
        return (f"REGISTER sip:{P.DOMAIN} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local};rport;"
                f"branch=z9hG4bK-r{cseq}{time.time_ns()}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{CALLEE}@{P.DOMAIN}>;tag=reg\r\n"
                f"To: <sip:{CALLEE}@{P.DOMAIN}>\r\nCall-ID: bench-callee-reg\r\n"
                f"CSeq: {cseq} REGISTER\r\nContact: <sip:{CALLEE}@{host}:{port}>\r\n"
                f"Expires: 3600\r\n{extra}Content-Length: 0\r\n\r\n").encode()

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        sock.sendto(request("", 1), ("127.0.0.1", proxy_port))
        first = parse_message(sock.recv(65535))
        assert isinstance(first, Response) and first.status == 401, first
        challenge = parse_challenge(first.headers.get_all("WWW-Authenticate")[0])
        creds = answer_challenge(challenge, method="REGISTER", uri=f"sip:{P.DOMAIN}",
                                 username=CALLEE, password=CALLEE_PASSWORD, cnonce="bench")
        sock.sendto(request(f"Authorization: {creds}\r\n", 2), ("127.0.0.1", proxy_port))
        second = parse_message(sock.recv(65535))
        if not isinstance(second, Response) or second.status != 200:
            raise RuntimeError(f"the callee could not register: {second!r}")


def config_text(user_extra: str = "") -> str:
    """The platform configuration of this benchmark with its users (each
    caller's ``[[users]]`` table ends with ``user_extra``, TOML lines)."""
    lines = [CONFIG.read_text()]
    for user in P.USERS:
        lines.append(f'[[users]]\nextension = "{user}"\npassword = "{P.password_for(user)}"\n'
                     f'{user_extra}')
    lines.append(f'[[users]]\nextension = "{CALLEE}"\npassword = "{CALLEE_PASSWORD}"\n')
    return "\n".join(lines)


def measure(target: P.Target, inf: Path, *, rate: int, seconds: int, runs: int,
            steps: Sequence[int], what: str, highest: str,
            note: str = "sippy B2BUA reference 4.2-4.8 ms"
            ) -> tuple[list[tuple[str, str, str]], float, P.StepResult | None]:
    """Calls against a running platform: rows for the median CPU per call of
    ``runs`` steps at ``rate`` (row ``what``, its detail ending with
    ``note``) and the highest rate of ``steps`` sustained (row ``highest``;
    no such row without steps), that median (seconds), and the highest step
    passed (None when none was).  Raises RuntimeError when a fixed-rate step
    fails."""
    results = []
    for _ in range(runs):
        result = P.step(target, P.CALL, rate, seconds, inf)
        if not result.passed:
            raise RuntimeError(f"step failed: {result.summary()}\n{result.output}")
        results.append(result)
        time.sleep(2.0)
    median = statistics.median(r.cpu_per_operation for r in results)
    rows = [(what, f"{median * 1e6:.0f} µs CPU",
             f"SIPp UDP, {rate}/s for {seconds} s, median of {runs}; runs "
             f"{', '.join(f'{r.cpu_per_operation * 1e6:.0f}' for r in results)} µs; {note}")]
    best = None
    if steps:
        best, done = P.max_sustained(target, P.CALL, steps, inf)
        tried = ", ".join(f"{r.rate}{'' if r.passed else ' (failed)'}" for r in done)
        figure = f"{best.rate:,}/s" if best else f"< {steps[0]}/s"
        cost = (f"; {best.cpu_per_operation * 1e6:.0f} µs CPU per call there"
                if best else "")
        rows.append((highest, figure, f"steps of {P.STEP_SECONDS} s: {tried}{cost}"))
    return rows, median, best


def run(rate: int = 100, seconds: int = 10, runs: int = 3, steps: Sequence[int] = CALL_STEPS
        ) -> list[tuple[str, str, str]]:
    """Rows: the median CPU per call at ``rate`` and the highest rate sustained."""
    budget = P._budget(seconds, runs, (), steps)
    with tempfile.TemporaryDirectory(prefix="telavox-bench-") as folder, \
            P.sipp_uas(budget + 60) as callee:
        inf = P.write_users_csv(Path(folder) / "users.csv")
        port = free_port()
        text = config_text().replace("@SIP1_PORT@", str(free_port()))
        process = PlatformProcess(Path(folder), P.telavox_config(text, port, callee,
                                                                 Path(folder) / "var"))
        process.start("telavox started")
        try:
            assert process.proc is not None
            pid = process.proc.pid
            register_contact(port, callee)
            target = P.Target(port, lambda: [pid], callee=CALLEE)
            rows, _, _ = measure(
                target, inf, rate=rate, seconds=seconds, runs=runs, steps=steps,
                what="telavox: call through sipproxy and tproxy with media endpoints, 1 s",
                highest="telavox: highest whole-path call rate sustained")
            return rows
        finally:
            process.stop()


if __name__ == "__main__":
    import sys

    quick = "--quick" in sys.argv
    for row in run(seconds=5 if quick else 10, runs=1 if quick else 3,
                   steps=() if quick else CALL_STEPS):
        print(" | ".join(row))
