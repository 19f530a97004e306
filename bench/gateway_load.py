"""Outbound calls through the whole platform to a carrier: SIPp UAC as a
phone → sipproxy → tproxy (two mediaserver endpoints per call) → the
gateway → SIPp UAS as the carrier, with sipproxy, tproxy and the gateway in
one process.

The phones are the users of :mod:`bench.proxy_load` (2000..2999, here of
class of service ``international`` with an external number); each dials
:data:`NUMBER` with ``uac_auth_call.xml`` (INVITE, 407, ACK, INVITE with
credentials, 100/180, 200, ACK, 1 s, BYE, 200).  The platform's dial plan
turns it into +46812345678 and tproxy sends the call to the gateway
(``telavox-gateway.toml``, appended to the configuration of
:mod:`bench.call_load`), whose only trunk is the SIPp carrier
(``carrier_uas_auth.xml``): it challenges every INVITE with a 401, checks
the credentials of the second INVITE, answers 100/180/200 with SDP and the
BYE.  So one call is, inside the process: sipproxy's digest check and
relay, tproxy's two dialogs and four media sockets, the gateway's two
dialogs (the number in the trunk's format, the caller asserted, topology
hidden) and its answer to the carrier's challenge.

Addresses, all loopback: phones, sipproxy, the SIP server and the gateway's
platform side on 127.0.0.1, the gateway's carrier side on
:data:`GATEWAY_OUTSIDE`, the carrier on :data:`CARRIER_HOST`.

Figures as in :mod:`bench.call_load`: the platform's CPU time per call (a
median of steps at a fixed rate) and the highest rate sustained for
:data:`~bench.proxy_load.STEP_SECONDS` s with ≥ 99.9% of calls successful.
The target is :data:`TARGET_SECONDS` per call; the floor is to beat sippy's
B2BUA, 4.2-4.8 ms per call for one hop without media.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from bench import call_load as C  # noqa: N812
from bench import proxy_load as P  # noqa: N812
from tests.helpers.process import PlatformProcess, free_port

HERE = Path(__file__).resolve().parent
GATEWAY_CONFIG = HERE / "telavox-gateway.toml"
CARRIER_SCENARIO = P.SIPP_DIR / "carrier_uas_auth.xml"

NUMBER = "0812345678"
"""What the phones dial (national format; +46812345678 in E.164)."""
EXTERNAL_NUMBER = "+46812345699"
"""The callers' external number (their caller ID toward the carrier)."""
GATEWAY_OUTSIDE = "127.0.0.4"
CARRIER_HOST = "127.0.0.5"
TRUNK_USER = "gw-account"
TRUNK_PASSWORD = "trunk-secret"

GATEWAY_STEPS = (100, 150, 200, 250, 300, 400)
"""Rates of the stepped search (calls per second)."""
TARGET_SECONDS = 2e-3
"""Target CPU per call."""
FLOOR_SECONDS = 4.2e-3
"""sippy's B2BUA, one hop without media: 4.2-4.8 ms per call (the floor to beat)."""


def config_text(gateway_port: int, outside_port: int, carrier: tuple[str, int]) -> str:
    """The platform of :mod:`bench.call_load` (``@SIP1_PORT@`` still to fill
    in) with international callers and the gateway toward ``carrier``."""
    user_extra = f'class_of_service = "international"\nexternal_number = "{EXTERNAL_NUMBER}"\n'
    text = GATEWAY_CONFIG.read_text()
    for key, value in (("@GW_PORT@", str(gateway_port)), ("@GW_OUTSIDE@", GATEWAY_OUTSIDE),
                       ("@GW_OUTSIDE_PORT@", str(outside_port)),
                       ("@CARRIER@", f"{carrier[0]}:{carrier[1]}"),
                       ("@TRUNK_USER@", TRUNK_USER), ("@TRUNK_PASSWORD@", TRUNK_PASSWORD)):
        text = text.replace(key, value)
    return C.config_text(user_extra) + "\n" + text


def carrier_uas(budget: float, host: str = CARRIER_HOST
                ) -> AbstractContextManager[tuple[str, int]]:
    """A SIPp UAS running ``carrier_uas_auth.xml`` (checking the trunk's
    credentials) for at most ``budget`` seconds.  Yields its (host, port)."""
    return P.sipp_uas(budget, host, CARRIER_SCENARIO,
                      ("-key", "user", TRUNK_USER, "-key", "password", TRUNK_PASSWORD))


def verdict(median: float, best: float | None) -> tuple[str, str, str]:
    """The row saying whether the target and the floor are met by the
    ``median`` CPU per call at the fixed rate (``best``: at the highest rate)."""
    if median <= TARGET_SECONDS:
        figure = "target and floor met"
    elif median < FLOOR_SECONDS:
        figure = "floor met, target missed"
    else:
        figure = "neither met"
    there = f"; {best * 1e6:.0f} µs at the highest rate" if best is not None else ""
    return ("telavox: outbound gateway call against target and floor", figure,
            f"median {median * 1e6:.0f} µs CPU per call{there}; target ≤ "
            f"{TARGET_SECONDS * 1e6:.0f} µs, floor < {FLOOR_SECONDS * 1e6:.0f} µs "
            "(sippy B2BUA, one hop, 4.2-4.8 ms)")


def run(rate: int = 100, seconds: int = 10, runs: int = 3,
        steps: Sequence[int] = GATEWAY_STEPS) -> list[tuple[str, str, str]]:
    """Rows: the median CPU per call at ``rate``, the highest rate sustained
    over ``steps``, and the verdict against the target and the floor."""
    budget = P._budget(seconds, runs, (), steps)
    with tempfile.TemporaryDirectory(prefix="telavox-bench-") as folder, \
            carrier_uas(budget + 60) as carrier:
        inf = P.write_users_csv(Path(folder) / "users.csv")
        port = free_port()
        text = config_text(free_port(), free_port(GATEWAY_OUTSIDE), carrier)
        text = text.replace("@SIP1_PORT@", str(free_port()))
        process = PlatformProcess(Path(folder), P.telavox_config(text, port, carrier,
                                                                 Path(folder) / "var"))
        process.start("telavox started")
        try:
            assert process.proc is not None
            pid = process.proc.pid
            target = P.Target(port, lambda: [pid], callee=NUMBER)
            rows, median, best = C.measure(
                target, inf, rate=rate, seconds=seconds, runs=runs, steps=steps,
                what="telavox: outbound call through sipproxy, tproxy (media endpoints) and "
                     "the gateway to a carrier that challenges, 1 s",
                highest="telavox: highest outbound gateway call rate sustained",
                note=f"{NUMBER} dialled, sent as 46812345678 after the carrier's 401")
        finally:
            process.stop()
    return [*rows, verdict(median, best.cpu_per_operation if best else None)]


if __name__ == "__main__":
    import sys

    quick = "--quick" in sys.argv
    for row in run(seconds=5 if quick else 10, runs=1 if quick else 3,
                   steps=() if quick else GATEWAY_STEPS):
        print(" | ".join(row))
