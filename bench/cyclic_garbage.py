"""How much cyclic garbage calls leave: the platform with one SIP server,
run in this process with the cyclic collector off, takes SIPp calls
through sipproxy → tproxy → a SIPp UAS; once every transaction has ended
(64*T1), one collection counts what only the collector could free.

Not part of ``make bench``: a check for work on memory and the collector
(``GC_THRESHOLDS`` in telavox/platform.py assumes calls leave none).

    .venv/bin/python -m bench.cyclic_garbage [RATE] [SECONDS]

Prints the SIPp step, the objects found per call and their types.  Takes
about a minute (40 s of it waiting for the transactions to end).
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import reactor, threads

from bench import call_load as C  # noqa: N812
from bench import proxy_load as P  # noqa: N812
from telavox import tap
from tests.helpers.process import free_port

SETTLE = 40.0
"""Seconds after the last call for every transaction to end (64*T1 = 32 s)."""


def main(rate: int = 100, seconds: int = 10) -> None:
    folder = Path(tempfile.mkdtemp(prefix="telavox-gc-"))
    inf = P.write_users_csv(folder / "users.csv")
    with P.sipp_uas(seconds + SETTLE + 60) as callee:
        port = free_port()
        text = C.config_text().replace("@SIP1_PORT@", str(free_port()))
        config = folder / "telavox.toml"
        config.write_text(P.telavox_config(text, port, callee, folder / "var"))
        os.chdir(folder)
        options = tap.Options()
        options.parseOptions(["--config", str(config)])
        service = tap.makeService(options)
        step: list[str] = []

        def drive() -> None:
            time.sleep(1)
            C.register_contact(port, callee)
            target = P.Target(port, lambda: [os.getpid()], callee=C.CALLEE)
            step.append(P.step(target, P.CALL, rate, seconds, inf).summary())
            time.sleep(SETTLE)

        def report(result: object) -> None:
            print(step[0] if step else result)
            gc.set_debug(gc.DEBUG_SAVEALL)
            found = gc.collect()
            print(f"cyclic garbage: {found} objects, {found / (rate * seconds):.1f} per call")
            print(collections.Counter(type(o).__name__ for o in gc.garbage).most_common(20))
            reactor.stop()  # type: ignore[attr-defined]

        def start() -> None:
            service.startService()
            gc.collect()
            gc.disable()
            threads.deferToThread(drive).addBoth(report)

        reactor.callWhenRunning(start)  # type: ignore[attr-defined]
        reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
    sys.stdout.flush()
    os._exit(0)  # the store's thread pool is not worth a clean stop here
