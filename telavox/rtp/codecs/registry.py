"""The static RTP payload types the platform names (RFC 3551 §6) and the
codecs it can run.

Owns :class:`PayloadFormat`, :data:`STATIC_PAYLOAD_TYPES`, the
:class:`AudioCodec` protocol every codec module meets, and
:func:`codec_by_name`.  G.722 and G.729 are known by name and clock only:
no implementation here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

import attrs
import numpy as np
import numpy.typing as npt

from telavox.rtp.codecs.g711 import PCMA, PCMU

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "AudioCodec",
    "PayloadFormat",
    "codec_by_name",
]


@attrs.frozen(slots=True)
class PayloadFormat:
    """An RTP payload format: type number, encoding name, RTP clock rate, channels."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int = 1


STATIC_PAYLOAD_TYPES: Mapping[int, PayloadFormat] = MappingProxyType({
    0: PayloadFormat(0, "PCMU", 8000),
    8: PayloadFormat(8, "PCMA", 8000),
    9: PayloadFormat(9, "G722", 8000),  # samples at 16 kHz, clocks at 8 kHz (RFC 3551 §4.5.2)
    13: PayloadFormat(13, "CN", 8000),
    18: PayloadFormat(18, "G729", 8000),
})
"""The static payload types in use on the platform, by number."""


class AudioCodec(Protocol):
    """What a codec offers the media server."""

    @property
    def name(self) -> str:
        """The encoding name, as in SDP ``a=rtpmap``."""

    @property
    def payload_type(self) -> int:
        """The static payload type (or the default dynamic one)."""

    @property
    def clock_rate(self) -> int:
        """The RTP clock rate in Hz."""

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """The payload for 16-bit linear samples."""

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        """The 16-bit linear samples of a payload."""

    def samples_per_frame(self, ms: float) -> int:
        """Samples in a frame of ``ms`` milliseconds."""


_CODECS: dict[str, AudioCodec] = {"PCMU": PCMU, "PCMA": PCMA}


def codec_by_name(name: str) -> AudioCodec:
    """The codec for an encoding name (case-insensitive): ``PCMU`` or ``PCMA``.

    Raises LookupError for a name with no implementation.
    """
    codec = _CODECS.get(name.upper())
    if codec is None:
        raise LookupError(f"no codec implementation for {name!r}")
    return codec
