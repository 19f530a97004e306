"""REGISTER with digest authentication and authenticated calls through the
proxy, driven by SIPp over UDP, beside Kamailio doing the same work.

What is measured (bench/sipp/):

* ``register_auth.xml``: REGISTER, 401, REGISTER with credentials, 200; one
  operation is one such registration (two transactions).
* ``uac_auth_call.xml``: INVITE, 407, ACK, INVITE with credentials, 100/180,
  200, ACK, one second of call, BYE, 200; the proxy relays the call to a pool
  member, ``uas_call.xml`` (a SIPp UAS on 127.0.0.2), with Record-Route, and
  the ACK and BYE follow the Route set.  One operation is one call.

The callers are users 2000..2999 (:data:`USERS`), password ``pw`` followed by
the user (:func:`password_for`), in the realm :data:`DOMAIN`; SIPp reads them
from a CSV file (:func:`write_users_csv`).  The Kamailio reference
(``kamailio-registrar-proxy.cfg``) computes the same passwords in its script.

The figure that travels between machines is the server's CPU time per
operation: utime+stime of its processes from /proc over a step, divided by
the successful operations.  A step places ``rate`` operations per second for
``seconds`` seconds; it passes with at least 99.9% successful operations and
at least 95% of the target rate achieved (SIPp's cumulative call rate while
it was still placing calls, from its statistics file, so that the last calls'
duration does not count against it).  Every external program runs under
coreutils ``timeout`` and is stopped in ``finally``.

SIPp 3.6.1 answers only MD5 (and AKA) challenges, and only the first
challenge header of a 401/407: a server that offers SHA-256 first fails every
call.  The digest ``uri`` SIPp sends is forced to the Request-URI with
``-auth_uri``.
"""

from __future__ import annotations

import csv
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.measure import descendants, process_times, stop_process
from tests.helpers.process import PlatformProcess, free_port, udp_exchange

HERE = Path(__file__).resolve().parent
SIPP_DIR = HERE / "sipp"
REGISTER_SCENARIO = SIPP_DIR / "register_auth.xml"
CALL_SCENARIO = SIPP_DIR / "uac_auth_call.xml"
UAS_SCENARIO = SIPP_DIR / "uas_call.xml"
KAMAILIO_CFG = HERE / "kamailio-registrar-proxy.cfg"
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

DOMAIN = "bench.telavox.test"
"""The platform domain and digest realm of the benchmark."""
CALLEE = "pool"
"""User part of the Request-URI of the benchmark's calls."""
USERS = range(2000, 3000)
"""The benchmark's users (extensions)."""
PHONE_HOST = "127.0.0.1"
POOL_HOST = "127.0.0.2"
"""The pool member (SIPp UAS) listens here, apart from the phones."""

REGISTER = "register"
CALL = "call"
KINDS = (REGISTER, CALL)

STEP_SECONDS = 20
"""Duration of a step of the stepped search (BENCHMARKS.md)."""
MAX_STEP_SECONDS = 30
MAX_STEPS = 8
CALL_SECONDS = 1.0
"""Time between the ACK and the BYE in uac_auth_call.xml."""
RECV_TIMEOUT = 10
"""SIPp's -recv_timeout (seconds) for the uac scenarios."""

KAMAILIO_REGISTER_STEPS = (2000, 5000, 10000, 15000, 20000, 25000, 30000, 40000)
KAMAILIO_CALL_STEPS = (500, 1000, 2000, 3000, 4000, 5000, 6000, 8000)
TELAVOX_REGISTER_STEPS = (300, 700, 1000, 1500, 2000, 2500, 3000, 3500)
TELAVOX_CALL_STEPS = (200, 400, 600, 800, 1000, 1200, 1400, 1600)
"""Starting points for the stepped searches (rates per second)."""


def password_for(user: int | str) -> str:
    """The benchmark password of ``user``: ``pw`` followed by the user."""
    return f"pw{user}"


def users_csv(users: Iterable[int | str] = USERS) -> str:
    """SIPp injection file text: ``SEQUENTIAL`` then ``user;password;`` lines."""
    lines = ["SEQUENTIAL"]
    lines += [f"{u};{password_for(u)};" for u in users]
    return "\n".join(lines) + "\n"


def write_users_csv(path: Path, users: Iterable[int | str] = USERS) -> Path:
    """Write :func:`users_csv` to ``path`` and return it."""
    path.write_text(users_csv(users))
    return path


def read_users_csv(path: Path) -> list[tuple[str, str]]:
    """The (user, password) pairs of a SIPp injection file."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.reader(f, delimiter=";"):
            if len(row) >= 2 and row[0] not in ("SEQUENTIAL", "RANDOM", "USER"):
                rows.append((row[0], row[1]))
    return rows


# --- SIPp ----------------------------------------------------------------------


def _sipp() -> str:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp not found: install the Debian package sip-tester")
    return sipp


def _final_count(output: str, label: str) -> int:
    found = re.findall(rf"{label}\s+\|\s+\d+\s+\|\s+(\d+)", output)
    return int(found[-1]) if found else 0


def _final_rate(output: str) -> float:
    found = re.findall(r"Call Rate\s+\|\s+[\d.]+ cps\s+\|\s+([\d.]+) cps", output)
    return float(found[-1]) if found else 0.0


def placing_rate(stat_csv: str, total: int) -> float | None:
    """SIPp's cumulative call rate at its last statistics row before it had
    placed all ``total`` calls (None when no such row was written).

    SIPp's final screen divides by the whole run, the last calls' duration
    included, which understates the rate a step of calls achieved.
    """
    rows = list(csv.reader(stat_csv.splitlines(), delimiter=";"))
    if len(rows) < 2:
        return None
    header = rows[0]
    try:
        created = header.index("OutgoingCall(C)")
        rate = header.index("CallRate(C)")
    except ValueError:
        return None
    best = None
    for row in rows[1:]:
        try:
            placed = int(row[created])
            value = float(row[rate])
        except (IndexError, ValueError):
            continue
        if 0 < placed < total:
            best = value
    return best


@dataclass(frozen=True)
class StepResult:
    """One step: ``rate`` operations per second for ``seconds`` seconds."""

    kind: str
    rate: int
    seconds: int
    attempted: int
    successful: int
    failed: int
    achieved_rate: float
    cpu_seconds: float
    output: str = ""
    system_seconds: float = 0.0
    """The part of ``cpu_seconds`` spent in the kernel (system calls, the
    loopback's delivery of what was sent)."""

    @property
    def passed(self) -> bool:
        """≥ 99.9% successful and ≥ 95% of the target rate achieved."""
        return (self.successful >= self.attempted * 0.999
                and self.achieved_rate >= self.rate * 0.95)

    @property
    def cpu_per_operation(self) -> float:
        """Server CPU seconds per successful operation (inf when none)."""
        return self.cpu_seconds / self.successful if self.successful else float("inf")

    def summary(self) -> str:
        """One line for logs and errors."""
        return (f"{self.kind} {self.rate}/s × {self.seconds} s: {self.successful} of "
                f"{self.attempted} ok, {self.failed} failed, {self.achieved_rate:.0f}/s placed, "
                f"{self.cpu_per_operation * 1e6:.0f} µs CPU each"
                f"{self._system_share()}")

    def _system_share(self) -> str:
        if not self.successful:
            return ""
        return f" ({self.system_seconds / self.successful * 1e6:.0f} µs in the kernel)"


def _uac_command(kind: str, target_port: int, rate: int, total: int, inf: Path,
                 stat_file: str, target_host: str = PHONE_HOST,
                 callee: str = CALLEE) -> list[str]:
    if kind == REGISTER:
        scenario, auth_uri, extra = REGISTER_SCENARIO, DOMAIN, []
        limit = max(100, rate * 3)
    elif kind == CALL:
        scenario, auth_uri, extra = CALL_SCENARIO, f"{callee}@{DOMAIN}", ["-s", callee]
        limit = max(100, int(rate * (CALL_SECONDS + 3)))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return [_sipp(), "-sf", str(scenario), "-inf", str(inf), "-key", "domain", DOMAIN,
            "-auth_uri", auth_uri, *extra,
            "-r", str(rate), "-m", str(total), "-l", str(limit),
            "-t", "u1", "-i", PHONE_HOST, "-p", str(free_port(PHONE_HOST)),
            "-cp", str(free_port()), "-buff_size", "4194304", "-nostdin",
            "-default_behaviors", "all,-abortunexp", "-recv_timeout", f"{RECV_TIMEOUT}s",
            "-trace_stat", "-stf", stat_file, "-fd", "1",
            f"{target_host}:{target_port}"]


def run_sipp_step(kind: str, target_port: int, rate: int, seconds: int, inf: Path,
                  pids: Callable[[], Sequence[int]], callee: str = CALLEE) -> StepResult:
    """Place ``rate`` registrations or calls per second for ``seconds`` seconds
    toward the proxy at 127.0.0.1:``target_port``; CPU of ``pids()`` over it.

    The proxy must relay calls to a running pool member (:func:`sipp_uas`).
    """
    if seconds > MAX_STEP_SECONDS:
        raise ValueError(f"a step lasts at most {MAX_STEP_SECONDS} s")
    total = rate * seconds
    budget = seconds + CALL_SECONDS + RECV_TIMEOUT + 15
    with tempfile.TemporaryDirectory(prefix="telavox-bench-") as folder:
        stat_file = str(Path(folder) / "stat.csv")
        command = _uac_command(kind, target_port, rate, total, inf, stat_file, callee=callee)
        command[1:1] = ["-timeout", f"{int(budget)}s"]
        watched = list(pids())
        before = _times(watched)
        result = subprocess.run(["timeout", "-k", "5", str(int(budget) + 5), *command],
                                capture_output=True, cwd=folder, text=True, errors="replace")
        after = _times(watched)
        try:
            stats = Path(stat_file).read_text(errors="replace")
        except FileNotFoundError:
            stats = ""
    output = result.stdout + result.stderr
    achieved = placing_rate(stats, total)
    if achieved is None:
        achieved = _final_rate(output)
    return StepResult(kind=kind, rate=rate, seconds=seconds, attempted=total,
                      successful=_final_count(output, "Successful call"),
                      failed=_final_count(output, "Failed call"),
                      achieved_rate=achieved, cpu_seconds=sum(after) - sum(before),
                      system_seconds=after[1] - before[1], output=_screens(output))


def _screens(output: str) -> str:
    """SIPp's last scenario screen (messages, retransmissions, timeouts,
    unexpected messages) and the end of its output."""
    start = output.rfind("Scenario Screen")
    screen = output[max(0, start - 40):output.find("Statistics Screen", start)] \
        if start >= 0 else ""
    return (screen + "\n...\n" + output[-1500:])[-4000:]


def _times(pids: Sequence[int]) -> tuple[float, float]:
    """Summed (user, system) CPU seconds of ``pids``; a process gone counts 0."""
    user = system = 0.0
    for pid in pids:
        try:
            u, s = process_times(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        user += u
        system += s
    return user, system


@contextmanager
def sipp_uas(budget: float, host: str = POOL_HOST, scenario: Path = UAS_SCENARIO,
             extra: Sequence[str] = ()) -> Iterator[tuple[str, int]]:
    """A SIPp UAS running ``scenario`` (default ``uas_call.xml``: the pool
    member) with ``extra`` arguments for at most ``budget`` seconds.  Yields
    its (host, port)."""
    port = free_port(host)
    with tempfile.TemporaryDirectory(prefix="telavox-bench-uas-") as folder:
        proc = subprocess.Popen(
            ["timeout", "-k", "5", str(int(budget)), _sipp(), "-sf", str(scenario),
             "-t", "u1", "-i", host, "-p", str(port), "-cp", str(free_port()), *extra,
             "-buff_size", "4194304", "-nostdin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
        try:
            time.sleep(1.0)
            if proc.poll() is not None:
                raise RuntimeError(f"the SIPp UAS exited with {proc.returncode}")
            yield host, port
        finally:
            stop_process(proc)


# --- steps, search, medians -------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A running proxy under test: its SIP port on 127.0.0.1 and how to find
    the processes whose CPU time counts."""

    port: int
    pids: Callable[[], Sequence[int]]
    callee: str = CALLEE


def step(target: Target, kind: str, rate: int, seconds: int, inf: Path) -> StepResult:
    """One step against ``target``."""
    return run_sipp_step(kind, target.port, rate, seconds, inf, target.pids, target.callee)


def max_sustained(target: Target, kind: str, rates: Sequence[int], inf: Path,
                  seconds: int = STEP_SECONDS) -> tuple[StepResult | None, list[StepResult]]:
    """Raise the rate through ``rates`` (at most :data:`MAX_STEPS` steps)
    until a step fails; the last passing step, and every step run."""
    best = None
    done: list[StepResult] = []
    for rate in list(rates)[:MAX_STEPS]:
        result = step(target, kind, rate, seconds, inf)
        done.append(result)
        if not result.passed:
            break
        best = result
        time.sleep(2.0)             # let the last transactions' timers drain
    return best, done


def median_cost(target: Target, kind: str, rate: int, inf: Path, seconds: int = 10,
                runs: int = 3) -> tuple[float, list[StepResult]]:
    """Median CPU seconds per operation over ``runs`` steps at ``rate``.

    Raises RuntimeError when a step fails the step rule.
    """
    results = []
    for _ in range(runs):
        result = step(target, kind, rate, seconds, inf)
        if not result.passed:
            raise RuntimeError(f"step failed: {result.summary()}\n{result.output}")
        results.append(result)
        time.sleep(1.0)
    return statistics.median(r.cpu_per_operation for r in results), results


# --- Kamailio -------------------------------------------------------------------


def kamailio_binary() -> str | None:
    """Path of the kamailio binary, or None."""
    found = shutil.which("kamailio")
    if found is None and Path("/usr/sbin/kamailio").exists():
        found = "/usr/sbin/kamailio"
    return found


def kamailio_config(port: int, pool: tuple[str, int], children: int = 2,
                    modules: str = KAMAILIO_MODULES) -> str:
    """``kamailio-registrar-proxy.cfg`` with its placeholders filled in."""
    host, pool_port = pool
    text = KAMAILIO_CFG.read_text()
    for key, value in (("@MODULES@", modules), ("@PORT@", str(port)), ("@DOMAIN@", DOMAIN),
                       ("@POOL_HOST@", host), ("@POOL@", f"{host}:{pool_port}"),
                       ("@CHILDREN@", str(children))):
        text = text.replace(key, value)
    return text


def _wait_sip(port: int, timeout: float = 10.0) -> None:
    """Wait until something answers an OPTIONS on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        probe = (f"OPTIONS sip:{DOMAIN} SIP/2.0\r\n"
                 f"Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-probe-{n}\r\n"
                 f"Max-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag=p{n}\r\n"
                 f"To: <sip:{DOMAIN}>\r\nCall-ID: probe-{n}@bench\r\nCSeq: 1 OPTIONS\r\n"
                 "Content-Length: 0\r\n\r\n").encode()
        if udp_exchange(port, probe, timeout=0.5) is not None:
            return
    raise RuntimeError(f"nothing answers SIP on 127.0.0.1:{port}")


@contextmanager
def kamailio(pool: tuple[str, int], budget: float, children: int = 2) -> Iterator[Target]:
    """Kamailio with the registrar-proxy configuration (``-x tlsf -m 1024``)
    for at most ``budget`` seconds, relaying calls to ``pool``."""
    binary = kamailio_binary()
    if binary is None:
        raise RuntimeError("kamailio not installed")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="telavox-bench-kam-") as folder:
        cfg = Path(folder) / "kamailio.cfg"
        cfg.write_text(kamailio_config(port, pool, children))
        log = open(Path(folder) / "kamailio.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            ["timeout", "-k", "5", str(int(budget)), binary, "-f", str(cfg), "-DD", "-E",
             "-x", "tlsf", "-m", "1024", "-M", "64", "-P", f"{folder}/kamailio.pid"],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        log.close()
        try:
            try:
                _wait_sip(port)
            except RuntimeError:
                raise RuntimeError("Kamailio did not start:\n" + (Path(folder) / "kamailio.log")
                                   .read_text(errors="replace")[-2000:]) from None
            below = [p for p in descendants(proc.pid) if p != proc.pid]
            yield Target(port, lambda: below)
        finally:
            stop_process(proc)


# --- reports ---------------------------------------------------------------------


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs CPU"


def _runs(results: Sequence[StepResult]) -> str:
    return ", ".join(f"{r.cpu_per_operation * 1e6:.0f}" for r in results)


def measure(target: Target, name: str, inf: Path, *, register_rate: int, call_rate: int,
            seconds: int, runs: int, register_steps: Sequence[int] = (),
            call_steps: Sequence[int] = ()) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) for one running target: medians at fixed
    rates, then the stepped searches (skipped when no steps are given)."""
    rows = []
    reg, reg_runs = median_cost(target, REGISTER, register_rate, inf, seconds, runs)
    rows.append((f"{name}: REGISTER with digest auth (401, REGISTER, 200)", _us(reg),
                 f"SIPp UDP, {register_rate}/s for {seconds} s, median of {runs}; "
                 f"runs {_runs(reg_runs)} µs"))
    call, call_runs = median_cost(target, CALL, call_rate, inf, seconds, runs)
    rows.append((f"{name}: call with proxy auth (INVITE, 407, ACK, INVITE, 180, 200, ACK, "
                 "BYE), 1 s", _us(call),
                 f"SIPp UDP to a SIPp UAS pool member, {call_rate}/s for {seconds} s, median "
                 f"of {runs}; runs {_runs(call_runs)} µs"))
    for kind, rates in ((REGISTER, register_steps), (CALL, call_steps)):
        if not rates:
            continue
        best, done = max_sustained(target, kind, rates, inf)
        figure = f"{best.rate:,}/s" if best else f"< {rates[0]}/s"
        tried = ", ".join(f"{r.rate}{'' if r.passed else ' (failed)'}" for r in done)
        cost = f"; {_us(best.cpu_per_operation)} per operation there" if best else ""
        rows.append((f"{name}: highest {kind} rate sustained", figure,
                     f"steps of {STEP_SECONDS} s: {tried}{cost}"))
    return rows


def run_against_kamailio(register_rate: int = 500, call_rate: int = 100, seconds: int = 10,
                         runs: int = 3, register_steps: Sequence[int] = (),
                         call_steps: Sequence[int] = (),
                         children: int = 2) -> list[tuple[str, str, str]]:
    """The Kamailio reference rows, or one "not measured" row without Kamailio."""
    if kamailio_binary() is None:
        return [("Kamailio registrar-proxy reference", "not measured", "kamailio not installed")]
    budget = _budget(seconds, runs, register_steps, call_steps)
    with tempfile.TemporaryDirectory(prefix="telavox-bench-") as folder:
        inf = write_users_csv(Path(folder) / "users.csv")
        with sipp_uas(budget + 30) as pool, kamailio(pool, budget + 20, children) as target:
            return measure(target, f"Kamailio 5.6 ({children} workers)", inf,
                           register_rate=register_rate, call_rate=call_rate, seconds=seconds,
                           runs=runs, register_steps=register_steps, call_steps=call_steps)


def _budget(seconds: int, runs: int, register_steps: Sequence[int],
            call_steps: Sequence[int]) -> float:
    per_step = MAX_STEP_SECONDS + RECV_TIMEOUT + 10
    steps = 2 * runs + min(len(register_steps), MAX_STEPS) + min(len(call_steps), MAX_STEPS)
    return 60 + steps * max(per_step, seconds + RECV_TIMEOUT + 10)


def telavox_config(config_text: str, port: int, pool: tuple[str, int], data_dir: Path) -> str:
    """``config_text`` with ``@PORT@``, ``@POOL@``, ``@POOL_HOST@``,
    ``@POOL_PORT@``, ``@DOMAIN@`` and ``@DATA_DIR@`` filled in."""
    host, pool_port = pool
    if "@PROBE_PORT@" in config_text:
        config_text = config_text.replace("@PROBE_PORT@", str(free_port()))
    for key, value in (("@PORT@", str(port)), ("@POOL_HOST@", host),
                       ("@POOL_PORT@", str(pool_port)), ("@POOL@", f"{host}:{pool_port}"),
                       ("@DOMAIN@", DOMAIN), ("@DATA_DIR@", str(data_dir))):
        config_text = config_text.replace(key, value)
    return config_text


def run_against_telavox(config_text: str, users_csv_path: Path, *, register_rate: int = 500,
                        call_rate: int = 100, seconds: int = 10, runs: int = 3,
                        register_steps: Sequence[int] = (), call_steps: Sequence[int] = (),
                        ready: str = "telavox started") -> list[tuple[str, str, str]]:
    """The same measurements against the platform (``twistd -n telavox``).

    What it expects:

    * ``config_text`` is a telavox TOML configuration with placeholders that
      are filled in here: ``@PORT@`` (the sipproxy listens on
      ``udp:127.0.0.1:@PORT@``), ``@DOMAIN@`` (``[platform] domain``, also
      the digest realm: :data:`DOMAIN`), ``@DATA_DIR@`` (a fresh folder for
      ``[platform] data_dir``), and ``@POOL@`` = ``@POOL_HOST@:@POOL_PORT@``,
      the SIP server pool's only member: the SIPp UAS (``uas_call.xml``) on
      127.0.0.2 that this function starts;
    * the users of ``users_csv_path`` (``user;password;`` lines, as
      :func:`write_users_csv` writes them: 2000..2999 with ``pw<user>``) are
      provisioned in the realm :data:`DOMAIN` by that configuration (or
      beforehand in its data folder);
    * the sipproxy challenges REGISTER with 401 and INVITE from phones with
      407, lists the **MD5 challenge first** (SIPp 3.6.1 takes the first
      challenge and knows only MD5), accepts a digest ``uri`` equal to the
      Request-URI (``sip:@DOMAIN@`` for REGISTER, ``sip:pool@@DOMAIN@`` for
      INVITE), relays authenticated INVITEs to ``@POOL@`` with Record-Route
      and routes in-dialog requests by Route;
    * every request comes from 127.0.0.1, so the proxy's per-source rate
      limit (telavox.sipproxy.guard, 100/s by default) must be raised above
      the rates measured (a call is four requests, a registration two) or
      switched off in that configuration.

    Rows are as :func:`measure` returns them, named "telavox".
    """
    budget = _budget(seconds, runs, register_steps, call_steps)
    with telavox(config_text, budget, ready) as target:
        return measure(target, "telavox", users_csv_path,
                       register_rate=register_rate, call_rate=call_rate, seconds=seconds,
                       runs=runs, register_steps=register_steps, call_steps=call_steps)


@contextmanager
def telavox(config_text: str, budget: float,
            ready: str = "telavox started") -> Iterator[Target]:
    """``twistd -n telavox`` on ``config_text`` (as :func:`run_against_telavox`
    describes it) with its pool member, the SIPp UAS, running for at most
    ``budget`` seconds; yields the Target whose CPU counts (the one process)."""
    with tempfile.TemporaryDirectory(prefix="telavox-bench-") as folder, \
            sipp_uas(budget + 60) as pool:
        port = free_port()
        data_dir = Path(folder) / "var"
        process = PlatformProcess(Path(folder), telavox_config(config_text, port, pool,
                                                               data_dir))
        process.start(ready)
        try:
            assert process.proc is not None
            pid = process.proc.pid
            yield Target(port, lambda: [pid])
        finally:
            process.stop()


def run(telavox_config_text: str | None = None, *, register_rate: int = 500,
        call_rate: int = 100, seconds: int = 10, runs: int = 3,
        search: bool = False) -> list[tuple[str, str, str]]:
    """Rows of the whole benchmark: Kamailio, and telavox when a configuration
    (see :func:`run_against_telavox`) is given, at the same fixed rates, with
    the ratios; the stepped searches too with ``search``."""
    rows = run_against_kamailio(
        register_rate, call_rate, seconds, runs,
        KAMAILIO_REGISTER_STEPS if search else (), KAMAILIO_CALL_STEPS if search else ())
    if telavox_config_text is None:
        return rows
    with tempfile.TemporaryDirectory(prefix="telavox-bench-") as folder:
        inf = write_users_csv(Path(folder) / "users.csv")
        ours = run_against_telavox(
            telavox_config_text, inf, register_rate=register_rate, call_rate=call_rate,
            seconds=seconds, runs=runs,
            register_steps=TELAVOX_REGISTER_STEPS if search else (),
            call_steps=TELAVOX_CALL_STEPS if search else ())
    rows += ours
    for label, index in (("REGISTER with auth", 0), ("call with auth", 1)):
        if len(rows) > index and rows[index][1].endswith("µs CPU"):
            theirs = float(rows[index][1].split()[0])
            mine = float(ours[index][1].split()[0])
            rows.append((f"ratio telavox / Kamailio, {label}", f"{mine / theirs:.1f}×",
                         "same run, same rate"))
    return rows


TELAVOX_CONFIG = HERE / "telavox-proxy.toml"


def telavox_config_text(users: Iterable[int] = USERS) -> str:
    """The benchmark's platform configuration with its users."""
    lines = [TELAVOX_CONFIG.read_text()]
    for user in users:
        lines.append(f'[[users]]\nextension = "{user}"\npassword = "{password_for(user)}"\n')
    return "\n".join(lines)


def smoke(register_rate: int = 200, call_rate: int = 50, seconds: int = 5,
          runs: int = 1) -> list[tuple[str, str, str]]:
    """A short run of the Kamailio reference at a modest rate (about a minute)."""
    return run_against_kamailio(register_rate, call_rate, seconds, runs)


def fixed_steps(kind: str, rates: Sequence[int], seconds: int, *,
                reference: bool = False) -> Iterator[StepResult]:
    """One step per rate in ``rates`` against one platform process (or, with
    ``reference``, Kamailio), a few registrations first so the users'
    credentials are warm: for looking at one rate closely, where
    :func:`run` gives the medians and searches of ``make bench``."""
    budget = 60 + len(rates) * (seconds + RECV_TIMEOUT + 15)
    with tempfile.TemporaryDirectory(prefix="telavox-bench-") as folder:
        inf = write_users_csv(Path(folder) / "users.csv")
        with ExitStack() as stack:
            if reference:
                pool = stack.enter_context(sipp_uas(budget + 30))
                target = stack.enter_context(kamailio(pool, budget + 20))
            else:
                target = stack.enter_context(telavox(telavox_config_text(), budget))
            step(target, REGISTER, 200, 2, inf)
            for rate in rates:
                yield step(target, kind, rate, seconds, inf)
                time.sleep(2.0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.proxy_load``: fixed-rate steps, one line each."""
    import argparse

    parser = argparse.ArgumentParser(description="CPU per authenticated call or "
                                     "registration at fixed rates (one process, "
                                     "steps in a row)")
    parser.add_argument("--kind", choices=KINDS, default=CALL)
    parser.add_argument("--rates", default="800,800,800",
                        help="comma-separated operations per second, one step each")
    parser.add_argument("--seconds", type=int, default=10, help="length of each step")
    parser.add_argument("--kamailio", action="store_true",
                        help="measure the Kamailio reference instead")
    parser.add_argument("--section", action="store_true",
                        help="the whole benchmark section of make bench instead "
                        "(medians, searches, Kamailio side by side; about 12 minutes)")
    args = parser.parse_args(argv)
    if args.section:
        from bench.__main__ import table
        print(table(run(telavox_config_text(), search=True)), flush=True)
        return 0
    rates = [int(r) for r in args.rates.split(",") if r]
    costs = []
    for result in fixed_steps(args.kind, rates, args.seconds, reference=args.kamailio):
        print(("pass " if result.passed else "FAIL ") + result.summary(), flush=True)
        if result.passed:
            costs.append(result.cpu_per_operation)
    if costs:
        print(f"median of the passing steps: {statistics.median(costs) * 1e6:.0f} µs CPU")
    return 0 if len(costs) == len(rates) else 1


if __name__ == "__main__":
    raise SystemExit(main())
