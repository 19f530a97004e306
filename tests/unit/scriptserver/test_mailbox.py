"""Unit tests of :class:`telavox.scriptserver.mailbox.MailboxStore`: the
Asterisk-like layout on disk, committing and dropping recordings, the
folders, counts and change notices, and names that must never reach the
file system; and of its IMailboxes adapter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from telavox.interfaces import IMailboxes, ISubscription
from telavox.scriptserver.mailbox import (
    INBOX,
    OLD,
    MailboxError,
    MailboxFullError,
    MailboxIndicator,
    MailboxStore,
    valid_box,
)

from .support import write_wav


class Clock:
    """A settable time source."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def store_at(tmp_path: Path, **kw: object) -> tuple[MailboxStore, list[tuple[str, int, int]],
                                                    Clock]:
    changes: list[tuple[str, int, int]] = []
    clock = Clock()
    store = MailboxStore(tmp_path / "voicemail", clock=clock,
                         on_change=lambda *a: changes.append(a), **kw)  # type: ignore[arg-type]
    return store, changes, clock


def leave(store: MailboxStore, box: str, seconds: float = 2.0, caller: str = "1001",
          duration: float | None = None) -> object:
    path, token = store.new_message_path(box)
    write_wav(Path(path), seconds)
    return store.commit(box, token, caller, f"User {caller}", duration)


def test_commit_files_the_message_with_metadata(tmp_path: Path) -> None:
    """A recording in tmp/ becomes INBOX/msg0000.wav with msg0000.json beside
    it (caller, name, time, duration read from the file); the next one is
    msg0001; tmp/ is left empty; on_change hears the counts."""
    store, changes, clock = store_at(tmp_path)
    path, token = store.new_message_path("1002")
    assert Path(path).parent == tmp_path / "voicemail" / "1002" / "tmp"
    assert Path(path).parent.is_dir() and len(token) == 32
    write_wav(Path(path), 2.5)
    message = store.commit("1002", token, "1001", "Alice")
    assert message is not None
    inbox = tmp_path / "voicemail" / "1002" / "INBOX"
    assert message.path == str(inbox / "msg0000.wav") and message.name == "msg0000"
    meta = json.loads((inbox / "msg0000.json").read_text())
    assert meta == {"caller": "1001", "caller_name": "Alice", "time": clock.now,
                    "duration": 2.5}
    assert os.listdir(Path(path).parent) == []
    clock.now += 60
    second = leave(store, "1002", duration=3.25)
    assert second is not None and second.name == "msg0001"  # type: ignore[attr-defined]
    assert second.duration == 3.25  # type: ignore[attr-defined]
    assert changes == [("1002", 1, 0), ("1002", 2, 0)]
    assert store.counts("1002") == (2, 0)


def test_short_recording_is_dropped(tmp_path: Path) -> None:
    """A message shorter than min_seconds (Asterisk's minsecs) is removed and
    not listed; nothing is notified.  So is a missing recording."""
    store, changes, _ = store_at(tmp_path)
    assert leave(store, "1002", seconds=0.5) is None
    path, token = store.new_message_path("1002")
    assert store.commit("1002", token, "1001") is None  # never written
    assert store.messages("1002") == [] and changes == []
    assert os.listdir(Path(path).parent) == []
    assert not (tmp_path / "voicemail" / "1002" / "INBOX").exists()


def test_discard(tmp_path: Path) -> None:
    """discard removes the recording; discarding twice is harmless."""
    store, _, _ = store_at(tmp_path)
    path, token = store.new_message_path("1002")
    write_wav(Path(path), 2)
    store.discard("1002", token)
    store.discard("1002", token)
    assert not Path(path).exists()


def test_messages_oldest_first_and_incomplete_files_ignored(tmp_path: Path) -> None:
    """messages() lists complete messages (.wav and .json) oldest first; a
    WAV without metadata (a crash mid-commit) or a stray file is no message."""
    store, _, clock = store_at(tmp_path)
    for caller in ("1001", "1003", "1004"):
        leave(store, "1002", caller=caller)
        clock.now += 10
    inbox = tmp_path / "voicemail" / "1002" / "INBOX"
    write_wav(inbox / "msg0007.wav")
    (inbox / "notes.txt").write_text("x")
    assert [m.caller for m in store.messages("1002")] == ["1001", "1003", "1004"]
    assert store.counts("1002") == (3, 0)
    assert store.message("1002", "msg0007") is None
    assert store.messages("1099") == [] and store.counts("1099") == (0, 0)


def test_mark_heard_and_delete(tmp_path: Path) -> None:
    """mark_heard moves a message to Old as its newest (metadata kept);
    marking it again returns it unchanged; delete removes it from its folder;
    each change is notified with the counts after it."""
    store, changes, _ = store_at(tmp_path)
    leave(store, "1002", caller="1001")
    leave(store, "1002", caller="1003")
    heard = store.mark_heard("1002", "msg0000")
    assert (heard.folder, heard.name, heard.caller) == (OLD, "msg0000", "1001")
    assert Path(heard.path).is_file() and heard.path.endswith("/Old/msg0000.wav")
    assert store.mark_heard("1002", "msg0000") == heard
    again = store.mark_heard("1002", "msg0001")
    assert again.name == "msg0001" and again.caller == "1003"
    assert store.counts("1002") == (0, 2)
    with pytest.raises(KeyError):
        store.mark_heard("1002", "msg0042")
    assert store.delete("1002", "msg0000", OLD)
    assert not store.delete("1002", "msg0000", OLD)
    assert [m.caller for m in store.messages("1002", OLD)] == ["1003"]
    assert changes == [("1002", 1, 0), ("1002", 2, 0), ("1002", 1, 1), ("1002", 0, 2),
                       ("1002", 0, 1)]


def test_greeting(tmp_path: Path) -> None:
    """A recording saved as the greeting becomes greet.wav (replacing the
    old one); a too short one is dropped and the old greeting kept."""
    store, changes, _ = store_at(tmp_path)
    assert not store.has_greeting("1002")
    assert store.greeting_path("1002") == tmp_path / "voicemail" / "1002" / "greet.wav"
    path, token = store.new_recording_path("1002")
    write_wav(Path(path), 2)
    assert store.save_greeting("1002", token) and store.has_greeting("1002")
    path, token = store.new_recording_path("1002")
    write_wav(Path(path), 0.3)
    assert not store.save_greeting("1002", token) and not Path(path).exists()
    assert store.has_greeting("1002") and changes == []


def test_full_box(tmp_path: Path) -> None:
    """A box with max_messages new messages takes no more (a greeting still
    can be recorded)."""
    store, _, _ = store_at(tmp_path, max_messages=2)
    leave(store, "1002")
    leave(store, "1002")
    with pytest.raises(MailboxFullError):
        store.new_message_path("1002")
    store.new_recording_path("1002")


@pytest.mark.parametrize("box", ["..", ".", "../1002", "1002/../../etc", "", "/etc",
                                 ".hidden", "a b", "1002\x00", "x" * 65, "10\\02"])
def test_path_tricks_are_refused(tmp_path: Path, box: str) -> None:
    """Box names that could leave the store's folder are refused by every
    operation before any file is touched."""
    store, _, _ = store_at(tmp_path)
    assert not valid_box(box)
    for call in (lambda: store.new_message_path(box), lambda: store.counts(box),
                 lambda: store.messages(box), lambda: store.greeting_path(box),
                 lambda: store.delete(box, "msg0000")):
        with pytest.raises(MailboxError):
            call()
    assert not (tmp_path / "voicemail").exists()


def test_bad_message_folder_and_token_names_are_refused(tmp_path: Path) -> None:
    """Message names, folders and tokens are checked too."""
    store, _, _ = store_at(tmp_path)
    leave(store, "1002")
    for name in ("../greet", "msg0000.wav", "msg1", "../../1003/INBOX/msg0000"):
        with pytest.raises(MailboxError):
            store.delete("1002", name)
    with pytest.raises(MailboxError):
        store.messages("1002", "../1003/INBOX")
    for token in ("../../x", "0" * 31, "G" * 32):
        with pytest.raises(MailboxError):
            store.commit("1002", token, "1001")
        with pytest.raises(MailboxError):
            store.discard("1002", token)
    assert store.counts("1002") == (1, 0)
    assert valid_box("1002") and valid_box("*98") and valid_box("sales.team")


def test_failing_on_change_is_logged_not_raised(tmp_path: Path) -> None:
    """A broken on_change does not stop the change."""
    def broken(box: str, new: int, old: int) -> None:
        raise RuntimeError("mwi down")

    store = MailboxStore(tmp_path, on_change=broken)
    assert leave(store, "1002") is not None
    assert store.counts("1002") == (1, 0)
    assert store.messages("1002", INBOX)[0].caller == "1001"


def test_indicator_is_imailboxes(tmp_path: Path) -> None:
    """MailboxIndicator provides IMailboxes: counts from the store ((0, 0)
    for a name no box can have), and each change of a box reaches every
    subscriber with the box's extension until it cancels; a failing
    subscriber does not stop the others."""
    store = MailboxStore(tmp_path)
    indicator = MailboxIndicator(store)
    store.on_change = indicator.changed
    assert verifyObject(IMailboxes, indicator)
    seen: list[str] = []

    def broken(box: str) -> None:
        raise RuntimeError("gone")

    indicator.subscribe(broken)
    subscription = indicator.subscribe(seen.append)
    assert verifyObject(ISubscription, subscription)
    leave(store, "1002")
    store.mark_heard("1002", "msg0000")
    assert seen == ["1002", "1002"] and subscription.delivered == 2
    assert indicator.counts("1002") == (0, 1)
    assert indicator.counts("..") == (0, 0) and indicator.counts("1099") == (0, 0)
    subscription.cancel()
    subscription.cancel()
    leave(store, "1002")
    assert seen == ["1002", "1002"]
