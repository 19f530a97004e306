"""NTP timestamps as RTCP carries them (RFC 3550 §4, §6.4.1).

Owns the conversions between seconds (any clock the caller keeps, on the
Unix epoch) and the 64-bit NTP format of sender reports, and the "middle 32
bits" short form used by the LSR and DLSR fields of report blocks.  Nothing
here reads a clock.
"""

from __future__ import annotations

__all__ = [
    "NTP_UNIX_OFFSET",
    "ntp_from_unix",
    "ntp_short",
    "ntp_to_unix",
    "short_seconds",
]

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900) to the Unix epoch (1970)."""


def ntp_from_unix(seconds: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point) of Unix time ``seconds``."""
    return round((seconds + NTP_UNIX_OFFSET) * 2**32) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_to_unix(ntp: int) -> float:
    """Unix seconds of a 64-bit NTP timestamp (era 0, i.e. before 2036)."""
    return ntp / 2**32 - NTP_UNIX_OFFSET


def ntp_short(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (16.16 fixed point), as in LSR."""
    return (ntp >> 16) & 0xFFFF_FFFF


def short_seconds(value: int) -> float:
    """Seconds of a 16.16 fixed-point quantity such as DLSR."""
    return value / 65536
