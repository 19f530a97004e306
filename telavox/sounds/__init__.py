"""The platform's prompts: 8 kHz mono WAV files named as Asterisk names its
sounds, one folder per language (``en``), made by :mod:`.generate`."""

from pathlib import Path

SOUNDS_DIR = Path(__file__).resolve().parent
"""The folder holding one sub-folder of prompts per language."""

MUSIC_ON_HOLD = SOUNDS_DIR / "moh.wav"
"""The default music on hold (language-neutral)."""
