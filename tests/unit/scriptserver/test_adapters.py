"""Unit tests of the Twisted edges, on fakes and a fake clock:
:mod:`telavox.scriptserver.process` (what the program gets on stdin, when it
gets SIGHUP and SIGKILL, when ``run`` fires) and
:mod:`telavox.scriptserver.fastagi` (the network environment, the HANGUP
lines, closing and cutting off the connection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import error
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from telavox.scriptserver import AgiOptions, AgiServices, FastAgiClient, ProcessAgi
from telavox.scriptserver.fastagi import _FastAgiProtocol
from telavox.scriptserver.session import environment_for

from .fakechannel import FakeChannel
from .support import make_sounds


class FakeProcess:
    """The transport of a spawned process: stdin bytes and signals kept."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.pid = 4242
        self.stdin = bytearray()
        self.signals: list[str] = []
        self.stdin_closed = False
        self.lost = False

    def write(self, data: bytes) -> None:
        self.stdin += data

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)

    def closeStdin(self) -> None:
        self.stdin_closed = True

    def loseConnection(self) -> None:
        self.lost = True

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self.stdin)
        self.stdin.clear()
        return out

    def exit(self, code: int | None = 0, signal: int | None = None) -> None:
        """The process ends: its pipes close, then it is reaped."""
        self.protocol.childConnectionLost(1)
        reason = (error.ProcessDone(0) if code == 0 and signal is None
                  else error.ProcessTerminated(code, signal))
        self.protocol.processEnded(Failure(reason))


class ProcessReactor(Clock):
    """A clock that "spawns" FakeProcesses."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[str, list[str], FakeProcess]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], *rest: Any,
                     **options: Any) -> FakeProcess:
        process = FakeProcess(protocol)
        self.spawned.append((executable, args, process))
        protocol.makeConnection(process)
        return process


def program(tmp_path: Path) -> str:
    path = tmp_path / "script.agi"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def process_setup(tmp_path: Path, channel: FakeChannel | None = None
                  ) -> tuple[ProcessReactor, ProcessAgi, FakeChannel, list[Any], FakeProcess]:
    reactor = ProcessReactor()
    services = AgiServices.create(AgiOptions(sound_dirs=(str(make_sounds(tmp_path / "s")),),
                                             idle_timeout=10, kill_after=3))
    agis = ProcessAgi(reactor, services)
    channel = channel or FakeChannel()
    done: list[Any] = []
    agis.run(program(tmp_path), channel, ("x", "y")).addBoth(done.append)
    executable, args, process = reactor.spawned[0]
    assert (executable, args) == (program(tmp_path), [program(tmp_path), "x", "y"])
    return reactor, agis, channel, done, process


def test_process_gets_env_and_replies_and_ends_cleanly(tmp_path: Path) -> None:
    """The environment goes to stdin, commands come from stdout; the
    program closing its stdout and exiting ends everything, no signal."""
    reactor, agis, _, done, process = process_setup(tmp_path)
    assert process.take().startswith(b"agi_request: ") and list(agis.running) == [4242]
    process.protocol.childDataReceived(1, b"ANSWER\n")
    process.protocol.childDataReceived(2, b"a complaint\n")
    assert process.take() == b"200 result=0\n"
    process.exit(0)
    assert done == [None] and process.signals == [] and agis.running == {}
    assert reactor.getDelayedCalls() == []


def test_process_gets_sighup_when_the_caller_hangs_up(tmp_path: Path) -> None:
    """The caller hanging up: SIGHUP (not a line on stdin)."""
    _, _, channel, done, process = process_setup(tmp_path)
    process.take()
    channel.caller_hangs_up()
    assert process.signals == ["HUP"] and process.take() == b""
    process.exit(0)
    assert done == [None]


def test_agisighup_no_means_no_signal(tmp_path: Path) -> None:
    """AGISIGHUP=no: neither at the hang-up nor at the end."""
    channel = FakeChannel(variables={"AGISIGHUP": "no"})
    reactor, _, _, done, process = process_setup(tmp_path, channel)
    channel.caller_hangs_up()
    reactor.advance(10)  # idle timeout
    assert process.signals == [] and process.stdin_closed
    reactor.advance(3)
    assert process.signals == ["KILL"]
    process.exit(None, 9)
    assert done == [None]


def test_silent_process_is_timed_out_hung_up_and_killed(tmp_path: Path) -> None:
    """No command for idle_timeout: the channel is hung up, the program gets
    SIGHUP and its stdin closed, then SIGKILL kill_after later; run fires
    when it is reaped."""
    reactor, _, channel, done, process = process_setup(tmp_path)
    reactor.advance(10)
    assert channel.names() == ["hangup"]
    assert process.signals == ["HUP"] and process.stdin_closed and done == []
    reactor.advance(3)
    assert process.signals == ["HUP", "KILL"] and process.lost and done == []
    process.exit(None, 9)
    assert done == [None] and reactor.getDelayedCalls() == []


def test_process_exiting_after_sighup_is_not_killed(tmp_path: Path) -> None:
    """A program that exits when told is not killed."""
    reactor, _, _, done, process = process_setup(tmp_path)
    process.protocol.childDataReceived(1, b"failure\n")
    assert process.signals == ["HUP"]
    process.exit(1)
    reactor.advance(10)
    assert process.signals == ["HUP"] and done == [None]


def test_process_closing_stdout_but_running_is_killed(tmp_path: Path) -> None:
    """stdout closed (session over) but the process lingers: SIGKILL later,
    no SIGHUP (as Asterisk, which then waits for it)."""
    reactor, _, _, done, process = process_setup(tmp_path)
    process.protocol.childConnectionLost(1)
    assert process.stdin_closed and process.signals == []
    reactor.advance(3)
    assert process.signals == ["KILL"]
    process.protocol.processEnded(Failure(error.ProcessTerminated(None, 9)))
    assert done == [None]


def test_process_command_lines(tmp_path: Path) -> None:
    """An interpreter is used for its suffix; a non-executable file without
    one is refused."""
    agis = ProcessAgi(Clock(), AgiServices.create(), interpreters={".py": ["/usr/bin/py"]})
    script = tmp_path / "a.py"
    script.write_text("")
    assert agis.command(str(script)) == ["/usr/bin/py", str(script)]
    other = tmp_path / "a.sh"
    other.write_text("")
    assert agis.command(str(other)) is None
    assert agis.command(str(tmp_path / "missing")) is None


# -- FastAGI ------------------------------------------------------------------------------------


def fastagi_setup(tmp_path: Path, channel: FakeChannel | None = None
                  ) -> tuple[Clock, FastAgiClient, _FastAgiProtocol, StringTransport, list[Any]]:
    clock = Clock()
    services = AgiServices.create(AgiOptions(sound_dirs=(str(make_sounds(tmp_path / "s")),),
                                             idle_timeout=10, kill_after=3))
    client = FastAgiClient(clock, services)
    channel = channel or FakeChannel()
    env = environment_for(channel, "agi://h/menu", ("1",), "v", network_script="menu",
                          threadid=1)
    protocol = _FastAgiProtocol(client, channel, env, "test")
    done: list[Any] = []
    protocol.finished.addBoth(done.append)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return clock, client, protocol, transport, done


def take(transport: StringTransport) -> bytes:
    out = transport.value()
    transport.clear()
    return out


def test_fastagi_sends_network_env_and_hangup_lines(tmp_path: Path) -> None:
    """agi_network lines first; HANGUP when the caller hangs up and again at
    the end; then the connection closes and run fires."""
    _, client, protocol, transport, done = fastagi_setup(tmp_path)
    assert take(transport).startswith(b"agi_network: yes\nagi_network_script: menu\n"
                                      b"agi_request: agi://h/menu\n")
    assert client.connections == {protocol}
    protocol.dataReceived(b"ANSWER\n")
    assert take(transport) == b"200 result=0\n"
    protocol.session.channel.caller_hangs_up()
    assert take(transport) == b"HANGUP\n"
    protocol.dataReceived(b"STREAM FILE x \"\"\n")
    assert take(transport) == b"511 Command Not Permitted on a dead channel\n"
    protocol.connectionLost(Failure(error.ConnectionDone()))
    assert done == [None] and client.connections == set()


def test_fastagi_timeout_closes_and_cuts_off(tmp_path: Path) -> None:
    """The idle timeout: HANGUP, loseConnection; a peer that does not let go
    is aborted kill_after later."""
    clock, _, protocol, transport, done = fastagi_setup(tmp_path)
    take(transport)
    clock.advance(10)
    assert take(transport) == b"HANGUP\n" and transport.disconnecting and done == []
    clock.advance(3)
    assert transport.disconnected  # abortConnection
    protocol.connectionLost(Failure(error.ConnectionLost()))
    assert done == [None] and clock.getDelayedCalls() == []


def test_fastagi_connection_failure(tmp_path: Path) -> None:
    """A connection that cannot be made: run fires, nothing is written."""
    clock = Clock()
    client = FastAgiClient(clock, AgiServices.create())
    channel = FakeChannel()
    env = environment_for(channel, "agi://h", (), "v", network_script="")
    protocol = _FastAgiProtocol(client, channel, env, "test")
    done: list[Any] = []
    protocol.finished.addBoth(done.append)
    protocol.failed(Failure(error.ConnectionRefusedError()))
    assert done == [None] and channel.calls == []
