"""Numbers between the platform's E.164 and a carrier's format (sans-IO).

Owns :func:`to_carrier` (an E.164 number written the way a trunk's
``number_format`` asks) and :func:`from_carrier` (a number a carrier sent,
calling or called, back to E.164).  Both are pure functions of the number
and the trunk's and platform's settings; the prefix rules are those of
:func:`telavox.tproxy.dialplan.normalise`.

The formats (``+46812345678`` in Sweden: country code 46, national prefix
0, international prefix 00):

=============== =================== ========================================
format          written             note
=============== =================== ========================================
e164            ``+46812345678``
international   ``0046812345678``   the international prefix and the digits
national        ``0812345678``      numbers of the platform's country only;
                                    others are written in international form
digits          ``46812345678``     country code and number, no prefix
=============== =================== ========================================

The trunk's tech prefix goes before whatever is written.
"""

from __future__ import annotations

import re

from telavox.tproxy.dialplan import normalise

__all__ = ["NUMBER_FORMATS", "from_carrier", "is_e164", "to_carrier"]

NUMBER_FORMATS = ("e164", "international", "national", "digits")
"""The values of ``TrunkConfig.number_format``."""

_E164 = re.compile(r"\+[1-9][0-9]{2,14}\Z")
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


def is_e164(number: str) -> bool:
    """True for ``+`` and 3–15 digits, the first not 0."""
    return _E164.match(number) is not None


def _check_format(number_format: str) -> None:
    if number_format not in NUMBER_FORMATS:
        raise ValueError(f"unknown number format {number_format!r}; "
                         f"expected one of {', '.join(NUMBER_FORMATS)}")


def to_carrier(e164: str, *, number_format: str, tech_prefix: str, country_code: str,
               national_prefix: str, international_prefix: str) -> str:
    """``e164`` as the trunk writes numbers, with ``tech_prefix`` in front.

    * ``e164``: as given;
    * ``international``: ``international_prefix`` and the digits (the E.164
      form when the platform has no international prefix);
    * ``national``: ``national_prefix`` and the national number when the
      number has the platform's country code and that form reads back as the
      same number (:func:`from_carrier`); otherwise the international form;
    * ``digits``: the digits without ``+``.

    A number that is not E.164 (an emergency or short number such as
    ``112``) is passed on as given, after the tech prefix.  Raises
    ValueError for an unknown ``number_format``.
    """
    _check_format(number_format)
    return tech_prefix + _written(e164, number_format, country_code, national_prefix,
                                  international_prefix)


def _written(e164: str, number_format: str, country_code: str, national_prefix: str,
             international_prefix: str) -> str:
    """:func:`to_carrier` without the tech prefix."""
    if not is_e164(e164) or number_format == "e164":
        return e164
    digits = e164[1:]
    if number_format == "digits":
        return digits
    international = international_prefix + digits if international_prefix else e164
    if number_format == "international":
        return international
    # national
    if country_code and national_prefix and digits.startswith(country_code):
        national = national_prefix + digits[len(country_code):]
        back = _read(national, number_format, country_code, national_prefix,
                     international_prefix)
        if back == e164:
            return national
    return international


def from_carrier(number: str, *, number_format: str, tech_prefix: str, country_code: str,
                 national_prefix: str, international_prefix: str) -> str | None:
    """A number the carrier sent (the user part of a URI, unescaped) as
    E.164, or None when it is not one or its meaning cannot be decided.

    In order:

    1. URI parameters (``;phone-context=…``, ``;npdi``) and the visual
       separators of RFC 3966 (``-``, ``.``, ``(``, ``)``) are dropped, then
       ``tech_prefix`` when the number starts with it;
    2. ``+…`` is E.164 already;
    3. on a ``digits`` trunk, plain digits are country code and number
       (``46812345678`` → ``+46812345678``) when that is valid E.164;
    4. the international prefix becomes ``+`` and the national prefix
       ``+<country code>`` (:func:`~telavox.tproxy.dialplan.normalise`), on
       any trunk (a carrier often writes calling numbers its own way);
    5. on an ``e164`` trunk, plain digits are taken as a number whose ``+``
       was dropped (``46812345678``), as on a ``digits`` trunk;
    6. anything else is None: plain digits without a prefix on an
       ``international`` or ``national`` trunk are a local number whose area
       the platform cannot know.

    The result is always valid E.164 (3–15 digits, the first not 0).
    :func:`from_carrier` reads back what :func:`to_carrier` writes with the
    same settings.  Raises ValueError for an unknown ``number_format``.
    """
    _check_format(number_format)
    text = number.split(";", 1)[0].translate(_VISUAL_SEPARATORS)
    if tech_prefix and text.startswith(tech_prefix):
        text = text[len(tech_prefix):]
    return _read(text, number_format, country_code, national_prefix, international_prefix)


def _read(text: str, number_format: str, country_code: str, national_prefix: str,
          international_prefix: str) -> str | None:
    """Steps 2–6 of :func:`from_carrier`."""
    if text.startswith("+"):
        return text if is_e164(text) else None
    if not (text.isascii() and text.isdigit()):
        return None
    if number_format == "digits" and is_e164("+" + text):
        return "+" + text
    found = normalise(text, country_code, national_prefix, international_prefix)
    if found is not None:
        return found
    if number_format == "e164" and is_e164("+" + text):
        return "+" + text
    return None
