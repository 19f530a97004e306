"""``make bench``: run every benchmark and write docs/benchmarks.md.

Each scenario bounds its own work (fixed rates and durations).  Figures are
CPU time per operation, medians of several runs, with references measured in
the same run where one exists.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from bench import options_load, sip_core
from bench.measure import machine

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "benchmarks.md"


def table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| what | figure | detail |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    sections = []
    print("SIP core (sans-IO, fake clock) ...", flush=True)
    core = sip_core.run()
    print(table(core), flush=True)
    sections.append(("SIP core: parser and transaction layer", "make bench  (bench/sip_core.py)",
                     core))
    print("OPTIONS under load (SIPp) ...", flush=True)
    try:
        load = options_load.run()
    except RuntimeError as e:
        print(f"skipped: {e}", flush=True)
        load = [("OPTIONS under load", "not measured", str(e).splitlines()[0])]
    print(table(load), flush=True)
    sections.append(("sipproxy: OPTIONS keep-alives over UDP",
                     "make bench  (bench/options_load.py)", load))
    stamp = datetime.date.today().isoformat()
    text = [
        "# Benchmarks",
        "",
        f"Measured {stamp} on {machine()}, Python {sys.version.split()[0]}.",
        "The portable figure is CPU time per operation; rates depend on the box.",
        "Regenerate with `make bench` (it rewrites this file).",
        "",
    ]
    for title, command, rows in sections:
        text += [f"## {title}", "", f"Command: `{command}`", "", table(rows), ""]
    OUTPUT.write_text("\n".join(text))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
