"""The one error of the RTP core.

Owns :class:`RtpError`: raised for bytes that are not a well-formed RTP or
RTCP packet (or RFC 4733 event payload) and for values that cannot be put on
the wire.  Its message names the problem; a relay drops the datagram and logs
the message once.  Being a ``ValueError``, it is what every parser of the
package raises and the only thing it raises for bad input.
"""

from __future__ import annotations

__all__ = ["RtpError"]


class RtpError(ValueError):
    """Malformed RTP/RTCP bytes, or a value out of range for its field."""
