"""Audio codecs for the media server, on numpy arrays of int16 samples.

:mod:`~telavox.rtp.codecs.g711` (PCMU, PCMA by lookup tables) and
:mod:`~telavox.rtp.codecs.registry` (static payload types, the
:class:`AudioCodec` protocol, :func:`codec_by_name`).  Importing this
package imports numpy; :mod:`telavox.rtp` itself does not.
"""

from __future__ import annotations

from telavox.rtp.codecs.g711 import PCMA, PCMU, G711Codec
from telavox.rtp.codecs.registry import (
    STATIC_PAYLOAD_TYPES,
    AudioCodec,
    PayloadFormat,
    codec_by_name,
)

__all__ = [
    "PCMA",
    "PCMU",
    "STATIC_PAYLOAD_TYPES",
    "AudioCodec",
    "G711Codec",
    "PayloadFormat",
    "codec_by_name",
]
