"""Make the platform's spoken prompts: ``python -m telavox.sounds.generate``.

The prompts under ``telavox/sounds/<language>/`` are 8 kHz 16-bit mono WAV
files, named as Asterisk names its sounds (``digits/5``, ``vm-intro``,
``conf-onlyperson``...) so that AGI scripts written for Asterisk find them.
They are spoken by espeak-ng (Debian package ``espeak-ng``), resampled from
its 22.05 kHz output with the project's own resampler and trimmed of
leading and trailing silence; ``beep`` is a 1 kHz tone.  The files are kept
in the repository, so running the platform never needs espeak-ng; run this
again after changing :data:`PROMPTS`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from telavox.audio.resample import resample
from telavox.audio.tones import Tone, ToneGenerator
from telavox.audio.wavfile import decode_wav, write_wav
from telavox.scriptserver.saying import NATO_ALPHABET

HERE = Path(__file__).resolve().parent

PROMPTS: dict[str, str] = {
    **{f"digits/{n}": word for n, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))},
    "digits/star": "star",
    "digits/pound": "pound",
    "digits/10": "ten", "digits/11": "eleven", "digits/12": "twelve",
    "digits/13": "thirteen", "digits/14": "fourteen", "digits/15": "fifteen",
    "digits/16": "sixteen", "digits/17": "seventeen", "digits/18": "eighteen",
    "digits/19": "nineteen", "digits/20": "twenty", "digits/30": "thirty",
    "digits/40": "forty", "digits/50": "fifty", "digits/60": "sixty",
    "digits/70": "seventy", "digits/80": "eighty", "digits/90": "ninety",
    "digits/hundred": "hundred", "digits/thousand": "thousand",
    "digits/million": "million", "digits/minus": "minus",
    "demo-echotest": "This is the echo test. What you say is played back to you. "
                     "Press the pound key when you are done.",
    "demo-echodone": "The echo test has ended.",
    "welcome": "Welcome.",
    "goodbye": "Goodbye.",
    "invalid": "That is not a valid entry.",
    "pls-try-again": "Please try again.",
    "pbx-invalid": "I am sorry, that is not a valid extension.",
    "ivr-main-menu": "For sales, press one. For support, press two. "
                     "To leave a message, press three.",
    "please-hold": "Please hold while I try that extension.",
    "vm-intro": "Please leave your message after the tone. When done, hang up, "
                "or press the pound key.",
    "vm-theperson": "The person at extension",
    "vm-isunavail": "is unavailable.",
    "vm-isonphone": "is on the phone.",
    "vm-password": "Please enter your password, followed by the pound key.",
    "vm-incorrect": "Login incorrect.",
    "vm-youhave": "You have",
    "vm-message": "message",
    "vm-messages": "messages",
    "vm-INBOX": "new",
    "vm-no": "no",
    "vm-first": "First",
    "vm-nomore": "No more messages.",
    "vm-options": "To hear the message again, press one. For the next message, press "
                  "three. To delete it, press seven. To record your greeting, press "
                  "five.",
    "vm-deleted": "Message deleted.",
    "vm-msgsaved": "Your message has been saved.",
    "vm-rec-greeting": "After the tone, say your greeting, then press the pound key.",
    "vm-greeting-saved": "Your greeting has been saved.",
    "conf-getpin": "Please enter the conference PIN, followed by the pound key.",
    "conf-invalidpin": "That PIN is not valid.",
    "conf-onlyperson": "You are currently the only person in this conference.",
    "conf-hasjoin": "A participant has joined.",
    "conf-hasleft": "A participant has left.",
    "conf-muted": "You are now muted.",
    "conf-unmuted": "You are no longer muted.",
    "pickup-none": "There is no call to pick up.",
    "park-slot": "Your call is parked at",
    "vm-login": "Please enter your mailbox number, followed by the pound key.",
    "vm-received": "Received",
    "vm-from-phonenumber": "from phone number",
    "vm-unknown-caller": "from an unknown caller",
    "digits/today": "today", "digits/yesterday": "yesterday", "digits/at": "at",
    "digits/a-m": "A M", "digits/p-m": "P M", "digits/oh": "oh", "digits/oclock": "o'clock",
    **{f"digits/day-{n}": day for n, day in enumerate(
        ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"))},
    **{f"letters/{c}": c.upper() for c in "abcdefghijklmnopqrstuvwxyz"},
    "letters/at": "at", "letters/dot": "dot", "letters/dash": "dash",
    **{f"phonetic/{chr(ord('a') + n)}_p": word for n, word in enumerate(NATO_ALPHABET)},
    **{f"digits/h-{n}": word for n, word in enumerate((
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
        "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth",
        "twenty-first", "twenty-second", "twenty-third", "twenty-fourth", "twenty-fifth",
        "twenty-sixth", "twenty-seventh", "twenty-eighth", "twenty-ninth", "thirtieth",
        "thirty-first"), start=1)},
    **{f"digits/mon-{n}": month for n, month in enumerate(
        ("January", "February", "March", "April", "May", "June", "July", "August",
         "September", "October", "November", "December"))},
}
"""Sound name → what espeak-ng says (English)."""

RATE = 8000
VOICE_RATE = 22050


def _speak(text: str, espeak: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "speech.wav"
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(out), text],
                       check=True, capture_output=True, timeout=60)
        samples, rate = decode_wav(out.read_bytes())
    audio = resample(samples, rate, RATE)
    return _trim(audio)


def _trim(samples: np.ndarray, threshold: int = 200, margin: int = 400) -> np.ndarray:
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > threshold)[0]
    if not len(loud):
        return samples
    start = max(0, int(loud[0]) - margin)
    end = min(len(samples), int(loud[-1]) + margin)
    return samples[start:end]


def beep() -> np.ndarray:
    """The tone before a recording: 1 kHz for a quarter of a second."""
    return ToneGenerator(Tone.parse("1000/250"), sample_rate=RATE).samples(RATE // 4)


def music() -> np.ndarray:
    """The default music on hold: a slow arpeggio of soft sine notes with a
    gentle attack and decay, eight seconds, looping cleanly."""
    notes = (261.63, 329.63, 392.00, 523.25, 392.00, 329.63, 293.66, 349.23,
             440.00, 587.33, 440.00, 349.23, 246.94, 293.66, 392.00, 493.88)
    length = RATE // 2
    t = np.arange(length) / RATE
    envelope = np.minimum(1.0, t / 0.03) * np.exp(-3.0 * t)
    out = [(np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)) * envelope
           for f in notes]
    return (np.concatenate(out) * 6000).astype(np.int16)


def generate(language_dir: Path, espeak: str) -> list[Path]:
    """Write every prompt (and ``beep``) under ``language_dir``."""
    written = []
    for name, text in sorted(PROMPTS.items()):
        path = language_dir / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, _speak(text, espeak), RATE)
        written.append(path)
    path = language_dir / "beep.wav"
    write_wav(path, beep(), RATE)
    written.append(path)
    path = HERE / "moh.wav"
    write_wav(path, music(), RATE)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "en",
                        help="folder of the English prompts (default: %(default)s)")
    args = parser.parse_args(argv)
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("espeak-ng is needed: apt-get install espeak-ng", file=sys.stderr)
        return 2
    for path in generate(args.out, espeak):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
