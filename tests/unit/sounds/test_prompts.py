"""The shipped prompts: one 8 kHz mono WAV per name the generator knows,
each with sound in it."""

from __future__ import annotations

import numpy as np

from telavox.audio.wavfile import decode_wav
from telavox.sounds import SOUNDS_DIR
from telavox.sounds.generate import PROMPTS, RATE


def test_every_prompt_is_shipped_as_8khz_mono_with_speech() -> None:
    """Each prompt of the generator's list (and the beep) exists under
    sounds/en as 8 kHz mono and is not silent: the files match the list."""
    for name in [*PROMPTS, "beep"]:
        path = SOUNDS_DIR / "en" / f"{name}.wav"
        assert path.is_file(), f"{name}: run python -m telavox.sounds.generate"
        samples, rate = decode_wav(path.read_bytes())
        assert rate == RATE and samples.ndim == 1, name
        assert len(samples) > RATE // 10 and np.abs(samples).max() > 1000, name


def test_music_on_hold_is_shipped() -> None:
    """The default music on hold is an 8 kHz mono file of several seconds."""
    from telavox.sounds import MUSIC_ON_HOLD

    samples, rate = decode_wav(MUSIC_ON_HOLD.read_bytes())
    assert rate == RATE and samples.ndim == 1 and len(samples) >= 5 * RATE
