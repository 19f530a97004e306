"""The voicemail boxes on disk, laid out as Asterisk's ``app_voicemail``
lays out its spool.

Owns :class:`MailboxStore`, :class:`Message`, the errors
:class:`MailboxError` / :class:`MailboxFullError`, and
:class:`MailboxIndicator`, the :class:`~telavox.interfaces.IMailboxes`
the SIP servers read for message-waiting indication.  One folder per box
under the store's root (``<data_dir>/voicemail``)::

    <root>/<extension>/INBOX/msg0000.wav    a new message
    <root>/<extension>/INBOX/msg0000.json   its caller, caller name, time, duration
    <root>/<extension>/Old/msg0000.wav      a message listened to (and .json)
    <root>/<extension>/greet.wav            the user's greeting (optional)
    <root>/<extension>/tmp/<token>.wav      recordings not committed yet

Theory of operation.  A recording goes to ``tmp/`` first
(:meth:`MailboxStore.new_message_path` gives its path and a token);
:meth:`~MailboxStore.commit` then moves it into ``INBOX`` under the next
free number with its metadata written beside it, or drops it when it is
shorter than ``min_seconds`` (Asterisk's ``minsecs``), so a half-recorded
message is never listed.  Only files with both ``.wav`` and ``.json`` count
as messages.  Every change to the messages of a box calls ``on_change(box,
new, old)`` with the counts after it (the SIP server turns that into MWI
NOTIFYs); a failing callback is logged, never raised.

Names that reach the file system are checked, never joined unchecked: a
box is an extension as the configuration allows it (letters, digits and
``_.+*#-``, not starting with ``.``), a folder is ``INBOX`` or ``Old``, a
message ``msgNNNN``, a token 32 hex digits.  Anything else raises
:class:`MailboxError` (a :class:`ValueError`).

The operations are synchronous file operations: the files are small and
local, and each runs in one reactor turn.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from telavox.audio.wavfile import AudioFormatError, read_wav
from telavox.interfaces import IMailboxes, ISubscription

__all__ = ["FOLDERS", "INBOX", "OLD", "MailboxError", "MailboxFullError", "MailboxIndicator",
           "MailboxStore", "Message", "valid_box"]

INBOX = "INBOX"
"""The folder of new messages."""
OLD = "Old"
"""The folder of messages listened to."""
FOLDERS = (INBOX, OLD)

_BOX = re.compile(r"^[A-Za-z0-9_+*#-][A-Za-z0-9_.+*#-]{0,63}$")
_MESSAGE = re.compile(r"^msg(\d{4})$")
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_MAX_NUMBER = 9999

OnChange = Callable[[str, int, int], object]
"""``on_change(box, new, old)``."""


class MailboxError(ValueError):
    """A name that is not a box, folder, message or token of the store."""


class MailboxFullError(Exception):
    """The box holds ``max_messages`` new messages already."""


def valid_box(box: str) -> bool:
    """True when ``box`` is a name a mailbox folder may have."""
    return bool(_BOX.match(box)) if isinstance(box, str) else False


@attrs.frozen
class Message:
    """One message of a box: ``name`` (``msg0000``) in ``folder``, its WAV
    file ``path``, and what :meth:`MailboxStore.commit` wrote about it."""

    box: str
    folder: str
    name: str
    path: str
    caller: str = ""
    caller_name: str = ""
    time: float = 0.0
    duration: float = 0.0

    @property
    def number(self) -> int:
        """The number in ``name``."""
        return int(self.name[3:])

    @property
    def sound(self) -> str:
        """``path`` without ``.wav``: the name STREAM FILE plays."""
        return self.path[:-4]


class MailboxStore:
    """The voicemail boxes under ``root`` (see the module docstring).
    ``clock`` gives the time stamped on messages (the reactor's
    ``seconds``); ``min_seconds`` is the shortest message kept;
    ``max_messages`` the most new messages a box takes."""

    log = Logger()

    def __init__(self, root: str | os.PathLike[str], *, on_change: OnChange | None = None,
                 clock: Callable[[], float] = time.time, min_seconds: float = 1.0,
                 max_messages: int = 100) -> None:
        self.root = Path(root)
        self.on_change = on_change
        """Called as ``on_change(box, new, old)`` after each change; may be
        set later."""
        self.clock = clock
        self.min_seconds = min_seconds
        self.max_messages = max_messages

    # -- paths ---------------------------------------------------------------------------------

    def box_path(self, box: str) -> Path:
        """The folder of ``box`` (not created)."""
        if not valid_box(box):
            raise MailboxError(f"not a mailbox: {box!r}")
        return self.root / box

    def _folder(self, box: str, folder: str) -> Path:
        if folder not in FOLDERS:
            raise MailboxError(f"not a voicemail folder: {folder!r}")
        return self.box_path(box) / folder

    def _message_path(self, box: str, folder: str, name: str) -> Path:
        if not isinstance(name, str) or not _MESSAGE.match(name):
            raise MailboxError(f"not a message name: {name!r}")
        return self._folder(box, folder) / name

    def _tmp_path(self, box: str, token: str) -> Path:
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise MailboxError(f"not a recording token: {token!r}")
        return self.box_path(box) / "tmp" / f"{token}.wav"

    def greeting_path(self, box: str) -> Path:
        """Where the greeting of ``box`` is (it may not exist)."""
        return self.box_path(box) / "greet.wav"

    def has_greeting(self, box: str) -> bool:
        """True when ``box`` has a greeting."""
        return self.greeting_path(box).is_file()

    # -- recording -----------------------------------------------------------------------------

    def new_message_path(self, box: str) -> tuple[str, str]:
        """``(wav path, token)`` for recording a message into ``box``; the
        folder exists.  Raises :class:`MailboxFullError`
        when the box has ``max_messages`` new messages."""
        if len(self._names(box, INBOX)) >= self.max_messages:
            raise MailboxFullError(f"mailbox {box} is full")
        return self.new_recording_path(box)

    def new_recording_path(self, box: str) -> tuple[str, str]:
        """``(wav path, token)`` for a recording into ``box`` whatever its
        fill (a greeting); the folder exists."""
        token = secrets.token_hex(16)
        path = self._tmp_path(box, token)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path), token

    def discard(self, box: str, token: str) -> None:
        """Remove the recording ``token`` (nothing when there is none)."""
        self._tmp_path(box, token).unlink(missing_ok=True)

    def commit(self, box: str, token: str, caller: str, caller_name: str = "",
               duration: float | None = None) -> Message | None:
        """File the recording ``token`` as the newest message of ``INBOX``
        with its metadata (``duration`` None: read from the file) and
        notify; None, and the recording removed, when it is missing or
        shorter than ``min_seconds``.  Raises :class:`MailboxFullError`."""
        source = self._tmp_path(box, token)
        length = _wav_seconds(source) if duration is None else float(duration)
        if not source.is_file() or length < self.min_seconds:
            self.log.info("voicemail {box}: message of {seconds:.1f} s dropped (shorter than "
                          "{min} s)", box=box, seconds=length, min=self.min_seconds)
            self.discard(box, token)
            return None
        names = self._names(box, INBOX)
        if len(names) >= self.max_messages:
            self.discard(box, token)
            raise MailboxFullError(f"mailbox {box} is full")
        number = self._next_number(box, INBOX)
        message = Message(box, INBOX, f"msg{number:04d}",
                          str(self._message_path(box, INBOX, f"msg{number:04d}")) + ".wav",
                          caller=caller, caller_name=caller_name, time=self.clock(),
                          duration=round(length, 3))
        os.replace(source, message.path)
        self._write_meta(message)
        self.log.info("voicemail {box}: new message {name} from {caller} ({seconds:.1f} s)",
                      box=box, name=message.name, caller=caller, seconds=length)
        self._changed(box)
        return message

    def save_greeting(self, box: str, token: str) -> bool:
        """Make the recording ``token`` the greeting of ``box``; False (and
        the recording removed) when it is shorter than ``min_seconds``."""
        source = self._tmp_path(box, token)
        if not source.is_file() or _wav_seconds(source) < self.min_seconds:
            self.discard(box, token)
            return False
        os.replace(source, self.greeting_path(box))
        return True

    # -- reading and changing ------------------------------------------------------------------

    def messages(self, box: str, folder: str = INBOX) -> list[Message]:
        """The messages of ``folder``, oldest first."""
        out = [self._load(box, folder, name) for name in self._names(box, folder)]
        return sorted(out, key=lambda m: (m.time, m.number))

    def message(self, box: str, name: str, folder: str = INBOX) -> Message | None:
        """One message, or None when there is no such message."""
        if name not in self._names(box, folder):
            self._message_path(box, folder, name)  # a bad name raises
            return None
        return self._load(box, folder, name)

    def counts(self, box: str) -> tuple[int, int]:
        """``(new, old)``: how many messages are in INBOX and Old."""
        return len(self._names(box, INBOX)), len(self._names(box, OLD))

    def mark_heard(self, box: str, name: str) -> Message:
        """Move the message ``name`` from INBOX to Old (as its newest) and
        notify; returns it as it is now.  A message already moved (not in
        INBOX but in Old under that name) is returned unchanged.  Raises
        KeyError when there is no such message."""
        current = self.message(box, name, INBOX)
        if current is None:
            old = self.message(box, name, OLD)
            if old is None:
                raise KeyError(f"{box}: no message {name}")
            return old
        number = self._next_number(box, OLD)
        target = self._message_path(box, OLD, f"msg{number:04d}")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = self._message_path(box, INBOX, name)
        os.replace(f"{source}.json", f"{target}.json")
        os.replace(f"{source}.wav", f"{target}.wav")
        self._changed(box)
        return attrs.evolve(current, folder=OLD, name=target.name, path=f"{target}.wav")

    def delete(self, box: str, name: str, folder: str = INBOX) -> bool:
        """Remove a message and notify; False when there was none."""
        path = self._message_path(box, folder, name)
        if name not in self._names(box, folder):
            return False
        Path(f"{path}.wav").unlink(missing_ok=True)
        Path(f"{path}.json").unlink(missing_ok=True)
        self.log.info("voicemail {box}: {folder}/{name} deleted", box=box, folder=folder,
                      name=name)
        self._changed(box)
        return True

    # -- internals -----------------------------------------------------------------------------

    def _names(self, box: str, folder: str) -> list[str]:
        """The complete messages (``.wav`` and ``.json``) of a folder."""
        where = self._folder(box, folder)
        try:
            entries = set(os.listdir(where))
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = [entry[:-4] for entry in entries
                 if entry.endswith(".wav") and _MESSAGE.match(entry[:-4])
                 and f"{entry[:-4]}.json" in entries]
        return sorted(names)

    def _next_number(self, box: str, folder: str) -> int:
        where = self._folder(box, folder)
        where.mkdir(parents=True, exist_ok=True)
        used = [int(m.group(1)) for m in (_MESSAGE.match(e.split(".", 1)[0])
                                          for e in os.listdir(where)) if m]
        number = max(used, default=-1) + 1
        if number > _MAX_NUMBER:
            raise MailboxFullError(f"mailbox {box}: no message number left in {folder}")
        return number

    def _write_meta(self, message: Message) -> None:
        meta = {"caller": message.caller, "caller_name": message.caller_name,
                "time": message.time, "duration": message.duration}
        target = Path(message.sound + ".json")
        scratch = target.with_suffix(".json.part")
        scratch.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        os.replace(scratch, target)

    def _load(self, box: str, folder: str, name: str) -> Message:
        path = self._message_path(box, folder, name)
        try:
            meta = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        return Message(box, folder, name, f"{path}.wav",
                       caller=str(meta.get("caller", "")),
                       caller_name=str(meta.get("caller_name", "")),
                       time=_number(meta.get("time")), duration=_number(meta.get("duration")))

    def _changed(self, box: str) -> None:
        callback = self.on_change
        if callback is None:
            return
        new, old = self.counts(box)
        try:
            callback(box, new, old)
        except Exception:
            self.log.failure("voicemail {box}: on_change failed", box=box)


@implementer(ISubscription)
class _Subscription:
    """One :meth:`MailboxIndicator.subscribe` callback (delivered at once:
    nothing is ever queued or dropped)."""

    def __init__(self, indicator: MailboxIndicator, callback: Callable[[str], object]) -> None:
        self._indicator: MailboxIndicator | None = indicator
        self.callback = callback
        self.delivered = 0
        self.dropped = 0
        self.queued = 0

    def cancel(self) -> None:
        indicator, self._indicator = self._indicator, None
        if indicator is not None:
            indicator._subscriptions.remove(self)


@implementer(IMailboxes)
class MailboxIndicator:
    """:class:`~telavox.interfaces.IMailboxes` over a :class:`MailboxStore`:
    ``counts`` reads the store ((0, 0) for a name no box can have), and
    :meth:`changed`, given to the store as its ``on_change``, calls each
    subscriber with the box's extension (a failing one is logged)."""

    log = Logger()

    def __init__(self, store: MailboxStore) -> None:
        self.store = store
        self._subscriptions: list[_Subscription] = []

    def counts(self, extension: str) -> tuple[int, int]:
        """IMailboxes: ``(new, old)`` of the box of ``extension``."""
        if not valid_box(extension):
            return 0, 0
        return self.store.counts(extension)

    def subscribe(self, callback: Callable[[str], object]) -> ISubscription:
        """IMailboxes: ``callback(extension)`` after each change of a box."""
        subscription = _Subscription(self, callback)
        self._subscriptions.append(subscription)
        return subscription

    def changed(self, box: str, new: int, old: int) -> None:
        """The store's ``on_change``: tell every subscriber."""
        for subscription in list(self._subscriptions):
            subscription.delivered += 1
            try:
                subscription.callback(box)
            except Exception:
                self.log.failure("voicemail {box}: a mailbox subscriber failed", box=box)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _wav_seconds(path: Path) -> float:
    """The length of a WAV file in seconds (0 when it cannot be read)."""
    try:
        samples, rate = read_wav(path)
    except (OSError, AudioFormatError, ValueError):
        return 0.0
    return len(samples) / rate if rate else 0.0
