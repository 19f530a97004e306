"""Sans-IO RTP and RTCP: no sockets, no reactor, no clock reads (time is
passed in as ``now``, in seconds).

Where things live:

- :mod:`~telavox.rtp.errors`: :class:`RtpError`, the one error for bad bytes.
- :mod:`~telavox.rtp.packet`: RTP packets (RFC 3550 §5.1) and the per-packet
  peeks :func:`header_fields` and :func:`payload_span`; :func:`is_rtcp`
  for rtcp-mux (RFC 5761 §4).
- :mod:`~telavox.rtp.extension`: header extensions and RFC 8285 elements.
- :mod:`~telavox.rtp.rtcp`: SR, RR, SDES, BYE, APP, RFC 4585 feedback and
  compound packets (RFC 3550 §6).
- :mod:`~telavox.rtp.rtcprewrite`: SSRC rewriting in compound RTCP.
- :mod:`~telavox.rtp.ntp`: NTP timestamps of sender reports.
- :mod:`~telavox.rtp.seqnum`: per-source sequence validation, loss and
  jitter (RFC 3550 A.1, A.3, A.8).
- :mod:`~telavox.rtp.continuity`: one continuous outgoing stream spliced
  from relayed and local sources.
- :mod:`~telavox.rtp.dtmf`: RFC 4733 telephone events, receiver and sender.
- :mod:`telavox.rtp.codecs`: G.711 and the static payload types; imported
  on its own, as it loads numpy.
"""

from __future__ import annotations

from telavox.rtp.continuity import StreamRewriter
from telavox.rtp.dtmf import (
    DigitEnd,
    DigitEvent,
    DigitStart,
    EndCause,
    EventPacket,
    EventReceiver,
    TelephoneEvent,
    event_packets,
)
from telavox.rtp.errors import RtpError
from telavox.rtp.extension import ExtensionElement, HeaderExtension
from telavox.rtp.ntp import ntp_from_unix, ntp_short, ntp_to_unix
from telavox.rtp.packet import RtpPacket, header_fields, is_rtcp, payload_span
from telavox.rtp.rtcp import (
    App,
    Feedback,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SdesType,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_compound,
    serialize_compound,
)
from telavox.rtp.rtcprewrite import rewrite_rtcp
from telavox.rtp.seqnum import SeqVerdict, SourceState

__all__ = [
    "App",
    "DigitEnd",
    "DigitEvent",
    "DigitStart",
    "EndCause",
    "EventPacket",
    "EventReceiver",
    "ExtensionElement",
    "Feedback",
    "Goodbye",
    "HeaderExtension",
    "ReceiverReport",
    "ReportBlock",
    "RtcpPacket",
    "RtpError",
    "RtpPacket",
    "SdesChunk",
    "SdesItem",
    "SdesType",
    "SenderReport",
    "SeqVerdict",
    "SourceDescription",
    "SourceState",
    "StreamRewriter",
    "TelephoneEvent",
    "UnknownRtcp",
    "event_packets",
    "header_fields",
    "is_rtcp",
    "ntp_from_unix",
    "ntp_short",
    "ntp_to_unix",
    "parse_compound",
    "payload_span",
    "rewrite_rtcp",
    "serialize_compound",
]
