"""RTP header extensions: the RFC 3550 §5.3.1 block and the RFC 8285
elements inside it.

Owns :class:`HeaderExtension` (the 16-bit profile word and the raw data,
kept byte for byte so a packet re-serialises exactly) and
:class:`ExtensionElement`, read on demand by
:meth:`HeaderExtension.elements` from either RFC 8285 form: one-byte headers
(profile ``0xBEDE``: 4-bit ID, 4-bit length-minus-one) or two-byte headers
(profile ``0x100X``: 8-bit ID, 8-bit length).  :meth:`HeaderExtension.build`
writes elements back, choosing the one-byte form when every element fits it.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from telavox.rtp.errors import RtpError

__all__ = [
    "ONE_BYTE_PROFILE",
    "TWO_BYTE_PROFILE",
    "ExtensionElement",
    "HeaderExtension",
]

ONE_BYTE_PROFILE = 0xBEDE
"""The "defined by profile" word of the RFC 8285 one-byte form."""

TWO_BYTE_PROFILE = 0x1000
"""The RFC 8285 two-byte form: ``0x100`` in the top 12 bits, 4 application bits below."""


@attrs.frozen(slots=True)
class ExtensionElement:
    """One RFC 8285 element: its local identifier and its data."""

    id: int
    data: bytes


@attrs.frozen(slots=True)
class HeaderExtension:
    """The header extension of an RTP packet (RFC 3550 §5.3.1).

    ``profile`` is the 16-bit "defined by profile" word; ``data`` is the
    extension body, a whole number of 32-bit words, kept as it came.
    """

    profile: int
    data: bytes

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise RtpError(f"header extension profile {self.profile} is not 16 bits")
        if len(self.data) % 4:
            raise RtpError(f"header extension of {len(self.data)} bytes is not whole words")
        if len(self.data) > 4 * 0xFFFF:
            raise RtpError("header extension longer than 65535 words")

    @property
    def is_one_byte(self) -> bool:
        """True for the RFC 8285 one-byte form."""
        return self.profile == ONE_BYTE_PROFILE

    @property
    def is_two_byte(self) -> bool:
        """True for the RFC 8285 two-byte form (any application bits)."""
        return self.profile & 0xFFF0 == TWO_BYTE_PROFILE

    def elements(self) -> tuple[ExtensionElement, ...]:
        """The RFC 8285 elements in order, padding skipped.

        Raises :class:`RtpError` for an extension in neither RFC 8285 form
        or whose elements overrun the data.  In the one-byte form, ID 15
        ends the list (RFC 8285 §4.2).
        """
        if self.is_one_byte:
            return _one_byte_elements(self.data)
        if self.is_two_byte:
            return _two_byte_elements(self.data)
        raise RtpError(f"header extension profile 0x{self.profile:04X} is not RFC 8285")

    def element(self, ident: int) -> bytes | None:
        """The data of the first element with local identifier ``ident``, or None."""
        for element in self.elements():
            if element.id == ident:
                return element.data
        return None

    @classmethod
    def build(cls, elements: Iterable[ExtensionElement], *, two_byte: bool | None = None,
              appbits: int = 0) -> HeaderExtension:
        """An RFC 8285 extension holding ``elements``, zero-padded to whole words.

        The one-byte form is used when every element fits it (ID 1–14, 1–16
        bytes of data) unless ``two_byte`` is True; the two-byte form takes
        IDs 1–255 and 0–255 bytes, with ``appbits`` in its profile word.
        """
        items = list(elements)
        fits_one = all(1 <= e.id <= 14 and 1 <= len(e.data) <= 16 for e in items)
        if two_byte is None:
            two_byte = not fits_one
        out = bytearray()
        if two_byte:
            if not 0 <= appbits <= 15:
                raise RtpError(f"application bits {appbits} are not 4 bits")
            for e in items:
                if not 1 <= e.id <= 255 or len(e.data) > 255:
                    raise RtpError(f"element {e.id} with {len(e.data)} bytes does not fit "
                                   "the two-byte form")
                out += bytes((e.id, len(e.data))) + e.data
            profile = TWO_BYTE_PROFILE | appbits
        else:
            if not fits_one:
                raise RtpError("an element does not fit the one-byte form")
            for e in items:
                out.append(e.id << 4 | (len(e.data) - 1))
                out += e.data
            profile = ONE_BYTE_PROFILE
        out += bytes(-len(out) % 4)
        return cls(profile, bytes(out))


def _one_byte_elements(data: bytes) -> tuple[ExtensionElement, ...]:
    out = []
    i = 0
    n = len(data)
    while i < n:
        head = data[i]
        if head == 0:  # padding
            i += 1
            continue
        ident = head >> 4
        if ident == 15:  # reserved: stop here (RFC 8285 §4.2)
            break
        if ident == 0:
            raise RtpError(f"one-byte extension element with ID 0 and length {head & 15}")
        end = i + 2 + (head & 0x0F)
        if end > n:
            raise RtpError(f"one-byte extension element {ident} overruns the extension")
        out.append(ExtensionElement(ident, data[i + 1:end]))
        i = end
    return tuple(out)


def _two_byte_elements(data: bytes) -> tuple[ExtensionElement, ...]:
    out = []
    i = 0
    n = len(data)
    while i < n:
        ident = data[i]
        if ident == 0:  # padding
            i += 1
            continue
        if i + 2 > n:
            raise RtpError(f"two-byte extension element {ident} has no length")
        end = i + 2 + data[i + 1]
        if end > n:
            raise RtpError(f"two-byte extension element {ident} overruns the extension")
        out.append(ExtensionElement(ident, data[i + 2:end]))
        i = end
    return tuple(out)
