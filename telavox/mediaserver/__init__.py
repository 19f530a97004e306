"""mediaserver: the RTP side of a SIP server.

Endpoints with even/odd RTP/RTCP port pairs, symmetric-RTP latching, relay
between two connected endpoints (payload-type translation, G.711 µ-law ↔
A-law transcoding, RFC 4733 passthrough and reporting, RTCP with SSRCs
rewritten, one continuous SSRC/sequence/timestamp line per outgoing
stream), playback of prompts, tones and DTMF, stereo recording, and
inactivity detection.

:mod:`.ports`, :mod:`.formats`, :mod:`.stream`, :mod:`.relay`,
:mod:`.inband`, :mod:`.playback` and :mod:`.recording` are sans-IO (time
passed in); :mod:`.prompts` reads prompt files;
:mod:`.server` is the Twisted edge and provides
:class:`~telavox.interfaces.IMediaServer`.
"""

from __future__ import annotations

from telavox.mediaserver.playback import EncodedPlayer, EventPlayer, Player, TonePlayer
from telavox.mediaserver.ports import DEFAULT_QUARANTINE, PortPool
from telavox.mediaserver.recording import Recorder
from telavox.mediaserver.relay import MediaCore
from telavox.mediaserver.server import MediaServer, MediaSubscription

__all__ = [
    "DEFAULT_QUARANTINE",
    "EncodedPlayer",
    "EventPlayer",
    "MediaCore",
    "MediaServer",
    "MediaSubscription",
    "Player",
    "PortPool",
    "Recorder",
    "TonePlayer",
]
