"""mediaserver: the RTP side of a SIP server.

Endpoints with even/odd RTP/RTCP port pairs, symmetric-RTP latching, relay
between two connected endpoints (payload-type translation, G.711 µ-law ↔
A-law transcoding, RFC 4733 passthrough and reporting, RTCP with SSRCs
rewritten, one continuous SSRC/sequence/timestamp line per outgoing
stream), conference rooms (a mix-minus per participant), playback of
prompts, tones and DTMF, stereo recording, and inactivity detection.

:mod:`.ports`, :mod:`.formats`, :mod:`.stream`, :mod:`.relay`,
:mod:`.inband`, :mod:`.playback`, :mod:`.recording` and :mod:`.conference`
are sans-IO (time
passed in); :mod:`.prompts` reads prompt files;
:mod:`.server` is the Twisted edge and provides
:class:`~telavox.interfaces.IMediaServer`.
"""

from __future__ import annotations

from telavox.mediaserver.conference import Conference, Room
from telavox.mediaserver.playback import EncodedPlayer, EventPlayer, Player, TonePlayer
from telavox.mediaserver.ports import DEFAULT_QUARANTINE, PortPool
from telavox.mediaserver.recording import Recorder
from telavox.mediaserver.relay import MediaCore
from telavox.mediaserver.server import MediaServer, MediaSubscription

__all__ = [
    "DEFAULT_QUARANTINE",
    "Conference",
    "EncodedPlayer",
    "EventPlayer",
    "MediaCore",
    "MediaServer",
    "MediaSubscription",
    "Player",
    "PortPool",
    "Recorder",
    "Room",
    "TonePlayer",
]
