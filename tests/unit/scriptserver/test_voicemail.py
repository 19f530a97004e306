"""Unit tests of the voicemail scripts (:mod:`telavox.scriptserver.voicemail`)
run by a real :class:`~telavox.scriptserver.runner.ScriptRunner` on the
in-process AGI against a scripted :class:`FakeChannel`: leaving a message,
the PIN check, listening (messages move to Old), deleting, recording the
greeting, and the EXEC applications; plus the service's wiring."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from telavox.config import parse_config
from telavox.config.model import UserConfig
from telavox.interfaces import ChannelHungUp, IMailboxes
from telavox.scriptserver import AgiOptions, AgiServices, AgiSession, ScriptRunner
from telavox.scriptserver.apps import voicemail_applications
from telavox.scriptserver.builtins import BUILTINS, make_builtins
from telavox.scriptserver.mailbox import OLD, MailboxStore
from telavox.scriptserver.voicemail import VoicemailContext, envelope, parse_mailbox_options
from telavox.sounds import SOUNDS_DIR

from .fakechannel import HANGUP, TIMEOUT, FakeChannel
from .support import first, write_wav

USERS = {u.extension: u for u in (UserConfig(extension="1002", voicemail_pin="1234"),
                                  UserConfig(extension="1003"))}
PIN = ["1", "2", "3", "4", "#"]


class World:
    """A runner with the voicemail scripts on a store under ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.changes: list[tuple[str, int, int]] = []
        self.store = MailboxStore(tmp_path / "voicemail", clock=self.clock.seconds,
                                  on_change=lambda *a: self.changes.append(a))
        self.context = VoicemailContext(self.store, USERS.get)
        options = AgiOptions(sound_dirs=(str(SOUNDS_DIR),))
        self.runner = ScriptRunner(self.clock, options=options,
                                   applications=voicemail_applications(self.context))
        for name, script in make_builtins(self.context).items():
            self.runner.register(name, script)

    def call(self, script: str, args: Iterable[str], inputs: Iterable[str] = (), *,
             caller_id: str = "1001", seconds: float = 3.0,
             channel: FakeChannel | None = None) -> FakeChannel:
        """Run ``script`` to its end on a channel; the channel."""
        channel = channel or FakeChannel(inputs, clock=self.clock, caller_id=caller_id)
        channel.record_seconds = seconds
        first(self.runner.run(script, channel, tuple(args)))
        return channel

    def leave(self, box: str = "1002", caller: str = "1001", seconds: float = 3.0) -> None:
        self.call("voicemail", [box, "u"], caller_id=caller, seconds=seconds)
        self.clock.advance(60)


def sounds(channel: FakeChannel) -> list[str]:
    """What the caller heard and did: sound names (a path under the store is
    shown relative to its box), "record", "answer", "hangup"."""
    out: list[str] = []
    for call in channel.calls:
        if call[0] == "play":
            for path in call[1]:
                p = Path(path).with_suffix("")
                out.append(str(p.relative_to(SOUNDS_DIR / "en")) if p.is_relative_to(SOUNDS_DIR)
                           else "/".join(p.parts[-2:]))
        elif call[0] in ("record", "answer", "hangup"):
            out.append(call[0])
    return out


def test_leave_a_message(tmp_path: Path) -> None:
    """voicemail 1002 u: "the person at extension 1 0 0 2 is unavailable",
    the instructions, a beep and a recording of at most 180 s ended by #
    (silence detection asked for), then "saved" and goodbye; the message is
    filed with the caller's number and name, time and duration; VMSTATUS
    is SUCCESS and on_change is told."""
    w = World(tmp_path)
    channel = w.call("voicemail", ["1002", "u"], seconds=3.0)
    assert sounds(channel) == [
        "answer", "vm-theperson", "digits/1", "digits/0", "digits/0", "digits/2",
        "vm-isunavail", "vm-intro", "beep", "record", "vm-msgsaved", "goodbye", "hangup"]
    record = next(c for c in channel.calls if c[0] == "record")
    assert record[2:] == ("#", 180.0, 10.0, False)
    [message] = w.store.messages("1002")
    assert (message.caller, message.caller_name, message.duration) == ("1001", "Alice", 3.0)
    assert message.time == 1_700_000_000
    assert os.path.getsize(message.path) > 40_000
    assert channel.variables["VMSTATUS"] == "SUCCESS"
    assert w.changes == [("1002", 1, 0)]
    assert os.listdir(tmp_path / "voicemail" / "1002" / "tmp") == []


def test_busy_greeting_and_skipping(tmp_path: Path) -> None:
    """b says "is on the phone"; a recorded greeting replaces the whole
    announcement; # during it skips the instructions, straight to the beep."""
    w = World(tmp_path)
    busy = w.call("voicemail", ["1002", "b"])
    assert "vm-isonphone" in sounds(busy) and "vm-isunavail" not in sounds(busy)
    write_wav(w.store.greeting_path("1002"), 2)
    greeted = w.call("voicemail", ["1002", "u"])
    assert sounds(greeted)[:5] == ["answer", "1002/greet", "vm-intro", "beep", "record"]
    skipped = w.call("voicemail", ["1002", "u"], ["#"])
    assert sounds(skipped)[:4] == ["answer", "1002/greet", "beep", "record"]
    assert w.store.counts("1002") == (3, 0)


def test_too_short_message_is_dropped(tmp_path: Path) -> None:
    """A recording under a second is not kept: no "saved", VMSTATUS FAILED,
    nothing in the box, no notice."""
    w = World(tmp_path)
    channel = w.call("voicemail", ["1002", "u"], seconds=0.4)
    assert sounds(channel)[-3:] == ["record", "goodbye", "hangup"]
    assert w.store.messages("1002") == [] and w.changes == []
    assert channel.variables["VMSTATUS"] == "FAILED"


class HangsUpWhileRecording(FakeChannel):
    """A caller who hangs up while recording (the usual way to finish)."""

    def record(self, path: str, escape_digits: str = "", timeout: float = -1.0,
               silence: float = 0.0, beep: bool = False) -> defer.Deferred[str]:
        super().record(path, escape_digits, timeout, silence, beep)
        self.caller_hangs_up()
        return defer.fail(ChannelHungUp(self.name))


def test_hang_up_while_recording_keeps_the_message(tmp_path: Path) -> None:
    """Hanging up ends the recording and the message is kept, as Asterisk
    does; nothing more is played."""
    w = World(tmp_path)
    channel = w.call("voicemail", ["1002", "u"], channel=HangsUpWhileRecording(clock=w.clock))
    assert sounds(channel)[-1] == "record"
    assert w.store.counts("1002") == (1, 0)
    assert channel.variables["VMSTATUS"] == "SUCCESS"


def test_unknown_box(tmp_path: Path) -> None:
    """A box no user has: VMSTATUS FAILED, the call is not answered, no
    folder is made; a name that could escape the store is treated alike."""
    w = World(tmp_path)
    for box in ("1099", "../1002"):
        channel = w.call("voicemail", [box, "u"])
        assert sounds(channel) == ["hangup"]
        assert channel.variables["VMSTATUS"] == "FAILED"
    assert not (tmp_path / "voicemail").exists()


def test_listen_with_the_right_pin(tmp_path: Path) -> None:
    """voicemailmain 1002: the PIN, "you have 2 new messages", the first
    message played in full then the menu; 3 plays the next; after it, no key
    for a round, then # leaves: goodbye.  Both moved to Old."""
    w = World(tmp_path)
    w.leave(caller="1001")
    w.leave(caller="1003")
    channel = w.call("voicemailmain", ["1002"], [*PIN, TIMEOUT, "3", TIMEOUT, TIMEOUT, "#"],
                     caller_id="1001")
    t0, now = 1_700_000_000, w.clock.seconds()
    assert sounds(channel) == [
        "answer", "vm-password", "vm-youhave", "digits/2", "vm-INBOX", "vm-messages",
        "vm-first", "vm-message", *envelope(t0, now), "vm-from-phonenumber",
        "digits/1", "digits/0", "digits/0", "digits/1", "INBOX/msg0000",
        "vm-options", "vm-options", "vm-message", "digits/2", *envelope(t0 + 60, now),
        "vm-from-phonenumber", "digits/1", "digits/0", "digits/0", "digits/3",
        "INBOX/msg0001", "vm-options", "vm-options", "vm-options", "goodbye", "hangup"]
    assert w.store.counts("1002") == (0, 2)
    assert [m.caller for m in w.store.messages("1002", OLD)] == ["1001", "1003"]
    assert w.changes[-2:] == [("1002", 1, 1), ("1002", 0, 2)]


def test_replay_nomore_and_old_messages(tmp_path: Path) -> None:
    """1 plays the message again; 3 after the last says "no more messages";
    heard messages are played after the new ones next time."""
    w = World(tmp_path)
    w.leave(caller="1001")
    w.call("voicemailmain", ["1002"], [*PIN, "#"])  # # during "first message": not heard
    assert w.store.counts("1002") == (1, 0)
    channel = w.call("voicemailmain", ["1002"], [*PIN, TIMEOUT, "1", TIMEOUT, "3", "#"])
    heard = sounds(channel)
    assert [s for s in heard if "msg" in s] == ["INBOX/msg0000", "Old/msg0000"]
    assert "vm-nomore" in heard
    assert w.store.counts("1002") == (0, 1)
    w.leave(caller="1003")
    again = w.call("voicemailmain", ["1002"], [*PIN, TIMEOUT, "3", TIMEOUT, "#"])
    assert [s for s in sounds(again) if "msg" in s] == ["INBOX/msg0000", "Old/msg0000"]
    assert "digits/1" in sounds(again)  # "you have 1 new message"
    assert "vm-message" in sounds(again)[sounds(again).index("digits/1"):]


def test_delete(tmp_path: Path) -> None:
    """7 deletes the message just heard ("deleted") and the next one plays."""
    w = World(tmp_path)
    w.leave(caller="1001")
    w.leave(caller="1003")
    channel = w.call("voicemailmain", ["1002"], [*PIN, TIMEOUT, "7", TIMEOUT, "#"])
    assert "vm-deleted" in sounds(channel)
    assert sounds(channel).count("INBOX/msg0001") == 1
    assert [m.caller for m in w.store.messages("1002", OLD)] == ["1003"]
    assert w.store.counts("1002") == (0, 1)


def test_wrong_pin_three_times(tmp_path: Path) -> None:
    """Three wrong PINs: "login incorrect" each time, then goodbye; the box
    is not opened."""
    w = World(tmp_path)
    w.leave()
    wrong = ["9", "9", "#"]
    channel = w.call("voicemailmain", ["1002"], wrong * 3)
    assert sounds(channel) == ["answer"] + ["vm-password", "vm-incorrect"] * 3 + [
        "goodbye", "hangup"]
    assert w.store.counts("1002") == (1, 0)
    # right on the third try
    late = w.call("voicemailmain", ["1002"], wrong * 2 + PIN + ["#"])
    assert sounds(late)[:8] == ["answer"] + ["vm-password", "vm-incorrect"] * 2 + [
        "vm-password", "vm-youhave", "digits/1"]


def test_unknown_box_sounds_like_a_wrong_pin(tmp_path: Path) -> None:
    """Asking for a box that does not exist gives exactly the prompts of a
    wrong PIN: the caller cannot tell which boxes exist."""
    w = World(tmp_path)
    unknown = w.call("voicemailmain", ["1099"], PIN * 3)
    wrong = w.call("voicemailmain", ["1002"], ["9", "#"] * 3)
    assert sounds(unknown) == sounds(wrong)


def test_box_without_pin(tmp_path: Path) -> None:
    """A box with no PIN opens without a prompt from its own extension (the
    caller id, also when no box is named) and never from elsewhere, even
    with an empty PIN."""
    w = World(tmp_path)
    w.leave(box="1003", caller="1001")
    own = w.call("voicemailmain", [], ["#"], caller_id="1003")
    assert sounds(own)[:3] == ["answer", "vm-youhave", "digits/1"]
    elsewhere = w.call("voicemailmain", ["1003"], ["#"] * 3, caller_id="1001")
    assert sounds(elsewhere) == ["answer"] + ["vm-password", "vm-incorrect"] * 3 + [
        "goodbye", "hangup"]


def test_record_greeting(tmp_path: Path) -> None:
    """5 records the greeting after a beep until # ("greeting saved"); the
    next caller hears it."""
    w = World(tmp_path)
    channel = w.call("voicemailmain", ["1002"], [*PIN, "5", "#", "#"], seconds=2.0)
    assert sounds(channel) == [
        "answer", "vm-password", "vm-youhave", "vm-no", "vm-INBOX", "vm-messages",
        "vm-options", "vm-rec-greeting", "beep", "record", "vm-greeting-saved", "vm-options",
        "goodbye", "hangup"]
    record = next(c for c in channel.calls if c[0] == "record")
    assert record[2:] == ("#", 60.0, 10.0, False)
    assert w.store.has_greeting("1002")
    assert "1002/greet" in sounds(w.call("voicemail", ["1002", "u"]))


def test_hang_up_in_the_menu(tmp_path: Path) -> None:
    """The caller hanging up during the messages ends the script; what was
    heard is in Old."""
    w = World(tmp_path)
    w.leave()
    w.leave()
    channel = w.call("voicemailmain", ["1002"], [*PIN, TIMEOUT, HANGUP])
    assert channel.state() == 0 and "goodbye" not in sounds(channel)
    assert w.store.counts("1002") == (1, 1)


def test_exec_voicemail_applications(tmp_path: Path) -> None:
    """EXEC VoiceMail(1002@default,b) and VoiceMailMain(1002) from an AGI
    script run the same flows on the channel: 0 when done (the channel is
    left up), -1 once the caller has hung up."""
    w = World(tmp_path)
    channel = FakeChannel([*PIN, TIMEOUT, "#"], clock=w.clock)
    session = AgiSession(channel, w.runner.services, w.clock, label="agi")
    reply = first(session.execute('EXEC VoiceMail "1002@default,b"'))
    assert reply.to_bytes() == b"200 result=0\n"
    assert "vm-isonphone" in sounds(channel) and "hangup" not in sounds(channel)
    assert w.store.counts("1002") == (1, 0)
    assert first(session.execute("EXEC VoiceMailMain 1002")).to_bytes() == b"200 result=0\n"
    assert w.store.counts("1002") == (0, 1)
    channel.caller_hangs_up()
    assert first(session.execute("EXEC VoiceMailMain 1002")).to_bytes() == b"200 result=-1\n"
    assert parse_mailbox_options("1002@ctx&1003,us") == ("1002", "us")
    bare = AgiSession(FakeChannel(), AgiServices.create(), w.clock)
    assert first(bare.execute("EXEC VoiceMail 1002")).to_bytes() == b"200 result=-2\n"


def test_make_builtins() -> None:
    """Without a context only the context-free scripts; with one, voicemail
    and voicemailmain too."""
    assert make_builtins() == dict(BUILTINS)
    store = MailboxStore("/nonexistent")
    assert set(make_builtins(VoicemailContext(store, USERS.get))) == {
        "echo", "conference", "ringgroup", "voicemail", "voicemailmain"}


def test_service_wiring(tmp_path: Path) -> None:
    """ScriptServerService registers the voicemail scripts and applications
    on a store under <data_dir>/voicemail, provides IMailboxes over it,
    looks users up in the configuration and takes a reloaded
    configuration's users."""
    from telavox.assembly import build_platform

    text = f"""[platform]
data_dir = '{tmp_path}'
[[users]]
extension = "1002"
password = "secret"
voicemail_pin = "1234"
"""
    root: Any = build_platform(parse_config(text), Clock(), config_text="",
                               config_source="test")
    service = root.getServiceNamed("scriptserver")
    assert {"voicemail", "voicemailmain", "echo"} <= set(service.runner.scripts)
    assert {"voicemail", "voicemailmain"} <= set(service.runner.services.applications)
    assert service.mailboxes.root == tmp_path / "voicemail"
    assert root.platform.require(IMailboxes) is service.indicator
    assert service.mailboxes.on_change == service.indicator.changed
    assert service.user("1002").voicemail_pin == "1234"
    assert service.voicemail.user("1003") is None
    service.config_changed(parse_config(text.replace("1002", "1003")))
    assert service.user("1002") is None and service.voicemail.user("1003") is not None


def test_envelope_says_when_as_asterisk(monkeypatch: Any) -> None:
    """app_voicemail's "'vm-received' q 'digits/at' IMp" in local time:
    nothing for today, yesterday, the weekday within a week, else the date."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        now = 1_700_000_000.0  # Tuesday 14 November 2023, 22:13:20 UTC
        assert envelope(now - 60, now) == [
            "vm-received", "digits/at", "digits/10", "digits/12", "digits/p-m"]
        assert envelope(now - 86400 - (22 * 3600 + 13 * 60 + 20), now) == [  # Monday 00:00
            "vm-received", "digits/yesterday", "digits/at", "digits/12", "digits/oclock",
            "digits/a-m"]
        assert envelope(now - 3 * 86400 - 12 * 3600 - 9 * 60, now) == [  # Saturday 10:04
            "vm-received", "digits/day-6", "digits/at", "digits/10", "digits/oh",
            "digits/4", "digits/a-m"]
        assert envelope(now - 20 * 86400, now)[:7] == [  # Wednesday 25 October 2023
            "vm-received", "digits/day-3", "digits/mon-9", "digits/h-25", "digits/2",
            "digits/thousand", "digits/20"]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_voicemailmain_asks_an_outside_caller_for_the_box(tmp_path: Path) -> None:
    """Called from a number that is no box (an outside caller through the
    IVR): "mailbox?" then the PIN; an unknown box gets the same prompts."""
    w = World(tmp_path)
    w.leave(caller="1001")
    channel = w.call("voicemailmain", [], ["1", "0", "0", "2", "#", *PIN, "#"],
                     caller_id="+46701234567")
    assert sounds(channel)[:4] == ["answer", "vm-login", "vm-password", "vm-youhave"]
    stranger = w.call("voicemailmain", [], ["1", "0", "9", "9", "#", *PIN, *PIN, *PIN],
                      caller_id="+46701234567")
    assert sounds(stranger) == ["answer", "vm-login", "vm-password", "vm-incorrect",
                                "vm-password", "vm-incorrect", "vm-password",
                                "vm-incorrect", "goodbye", "hangup"]
