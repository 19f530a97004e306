#!/usr/bin/env python3
"""An AGI program for the integration tests: runs the scenario of
scenarios.py named by its first argument (agi_arg_1 is also argv[1], as
Asterisk passes AGI arguments)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scenarios

if __name__ == "__main__":
    name = sys.argv[1]
    if name == "pyst":
        scenarios.pyst(scenarios.AGI())
        sys.exit(0)
    rfile, wfile = sys.stdin.buffer, sys.stdout.buffer
    env = scenarios.read_env(rfile)
    try:
        scenarios.RAW[name](env, rfile, wfile)
    except scenarios.CrashError:
        os._exit(3)
