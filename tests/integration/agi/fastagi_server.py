#!/usr/bin/env python3
"""A FastAGI server for the integration tests: listens on 127.0.0.1 on a
free port, prints the port, and serves connections one after another in
its main thread (pyst2's AGI installs a SIGHUP handler, which Python
allows only there), running the scenario of scenarios.py named by
agi_network_script.  After each connection it prints a line saying how it
ended.  It runs until it is terminated."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scenarios


def serve(conn: socket.socket) -> str:
    raw_in = conn.makefile("rb", buffering=0)
    env = scenarios.read_env(raw_in)
    name = env.get("agi_network_script", "")
    if name == "pyst":
        with conn.makefile("r", encoding="utf-8", newline="\n") as text_in, \
                conn.makefile("w", encoding="utf-8", newline="\n") as text_out:
            # a failing script closes its files, so the connection closes
            scenarios.pyst(scenarios.PreparsedAGI(env, text_in, text_out, sys.stderr))
            text_out.flush()
            _done_writing(conn)
            rest = text_in.read().encode()
    else:
        wfile = conn.makefile("wb", buffering=0)
        try:
            heard = scenarios.RAW[name](env, raw_in, wfile)
        except scenarios.CrashError:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return f"{name}: crashed"
        _done_writing(conn)
        rest = heard + (raw_in.readall() or b"")
    return f"{name}: done, then {rest!r}"


def _done_writing(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                outcome = serve(conn)
            except Exception as e:  # report it and serve the next
                outcome = f"error: {e!r}"
        print(outcome, flush=True)


if __name__ == "__main__":
    main()
