"""Audio signal processing for the media server, sans-IO: numpy arrays in,
numpy arrays or events out; no Twisted, no sockets, no clock.

Audio is 16-bit signed linear PCM, mono, in one-dimensional ``int16``
arrays, at 8000 Hz unless a function says otherwise; a frame is 20 ms.

Where things live:

* :mod:`~telavox.audio.pcm` — the sample format, frame size and level
  reference (dBFS, dBm0) the other modules share.
* :mod:`~telavox.audio.wavfile` — reading WAV files (PCM, float, G.711,
  extensible, multichannel; total: samples or :class:`AudioFormatError`)
  and writing them, whole or streamed (:class:`WavWriter`).
* :mod:`~telavox.audio.resample` — polyphase windowed-sinc rate conversion
  to 8 or 16 kHz, one-shot or streamed.
* :mod:`~telavox.audio.tones` — Asterisk tone lists, the frame generator,
  country tone plans and DTMF synthesis.
* :mod:`~telavox.audio.dtmfdetect` — the in-band DTMF detector (Goertzel,
  ITU-T Q.24 checks), streaming.
* :mod:`~telavox.audio.level` — levels, the voice-activity / silence
  detector, and the int32-saturating mixers for conferences.
"""

from __future__ import annotations

from telavox.audio.dtmfdetect import DigitEvent, DtmfDetector, goertzel_power
from telavox.audio.level import (
    ActivityDetector,
    apply_gain,
    level_dbfs,
    level_dbm0,
    mix,
    mix_minus,
    rms,
)
from telavox.audio.pcm import (
    DBM0_PEAK,
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    WIDEBAND_RATE,
    Samples,
    dbm0_to_peak,
    frame_samples,
    to_int16,
)
from telavox.audio.resample import Resampler, resample
from telavox.audio.tones import (
    DTMF_DIGITS,
    DTMF_FREQUENCIES,
    TONE_PLANS,
    Tone,
    ToneElement,
    ToneError,
    ToneGenerator,
    TonePlan,
    dtmf_sequence,
    dtmf_tone,
    tone_plan,
)
from telavox.audio.wavfile import (
    AudioFormatError,
    WavWriter,
    decode_wav,
    encode_wav,
    encode_wav_stereo,
    load_wav,
    read_wav,
    write_wav,
)

__all__ = [
    "DBM0_PEAK",
    "DTMF_DIGITS",
    "DTMF_FREQUENCIES",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "TONE_PLANS",
    "WIDEBAND_RATE",
    "ActivityDetector",
    "AudioFormatError",
    "DigitEvent",
    "DtmfDetector",
    "Resampler",
    "Samples",
    "Tone",
    "ToneElement",
    "ToneError",
    "ToneGenerator",
    "TonePlan",
    "WavWriter",
    "apply_gain",
    "dbm0_to_peak",
    "decode_wav",
    "dtmf_sequence",
    "dtmf_tone",
    "encode_wav",
    "encode_wav_stereo",
    "frame_samples",
    "goertzel_power",
    "level_dbfs",
    "level_dbm0",
    "load_wav",
    "mix",
    "mix_minus",
    "read_wav",
    "resample",
    "rms",
    "to_int16",
    "tone_plan",
    "write_wav",
]
