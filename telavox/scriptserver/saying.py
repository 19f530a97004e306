"""What Asterisk's ``say.c`` says in English: the sound names for digits,
numbers, letters, dates and times.

Owns :func:`number_files` (``ast_say_number_full_en``), :data:`DIGIT_FILES`,
:func:`alpha_files` (``ast_say_character_str``), :func:`phonetic_files`
(``ast_say_phonetic_str``), :func:`date_files`
(``ast_say_date_en``), :func:`time_files` (``ast_say_time_en``) and
:func:`datetime_files` (``ast_say_date_with_format_en``: the format letters
A a B b h d e Y I l H k M S p P Q q R T and quoted sound names).  Times are
local (the process's time zone).  Pure functions; the SAY commands and the
voicemail envelope play what they return.
"""

from __future__ import annotations

import datetime
import time
import zoneinfo

__all__ = ["DATETIME_FORMAT", "DIGIT_FILES", "NATO_ALPHABET", "alpha_files", "date_files",
           "datetime_files", "number_files", "phonetic_files", "time_files"]

DIGIT_FILES = {"*": "digits/star", "#": "digits/pound", "-": "digits/minus",
               **{d: f"digits/{d}" for d in "0123456789"}}
"""The sound of each character SAY DIGITS says."""

DATETIME_FORMAT = "ABdY 'digits/at' IMp"
"""SAY DATETIME's format when the script gives none (Asterisk's for English)."""

NATO_ALPHABET = ("alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                 "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
                 "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
                 "x-ray", "yankee", "zulu")
"""The words of ``phonetic/a_p`` … ``phonetic/z_p``."""

_SYMBOLS = {"@": "letters/at", ".": "letters/dot", "-": "letters/dash", "*": "digits/star",
            "#": "digits/pound"}


def number_files(number: int) -> list[str] | None:
    """The sounds that say ``number`` (Asterisk's ``ast_say_number_full_en``),
    or None when it is too big (≥ 10⁹)."""
    if number == 0:
        return ["digits/0"]
    files: list[str] = []
    if number < 0:
        files.append("digits/minus")
        number = -number
    if number >= 1_000_000_000:
        return None
    if number >= 1_000_000:
        files += number_files(number // 1_000_000) or []
        files.append("digits/million")
        number %= 1_000_000
    if number >= 1000:
        files += number_files(number // 1000) or []
        files.append("digits/thousand")
        number %= 1000
    if number >= 100:
        files += [f"digits/{number // 100}", "digits/hundred"]
        number %= 100
    if number >= 20:
        files.append(f"digits/{number // 10 * 10}")
        number %= 10
    if number:
        files.append(f"digits/{number}")
    return files


def alpha_files(text: str) -> list[str]:
    """SAY ALPHA: each letter (``letters/a``), digit and known symbol in
    turn; other characters are passed over, as Asterisk does for those it
    has no sound for."""
    return _spelled(text, "letters/{}")


def phonetic_files(text: str) -> list[str]:
    """SAY PHONETIC: as :func:`alpha_files` with each letter's word of the
    NATO alphabet (``phonetic/a_p``, "alfa")."""
    return _spelled(text, "phonetic/{}_p")


def _spelled(text: str, letter: str) -> list[str]:
    out = []
    for c in text.lower():
        if "a" <= c <= "z":
            out.append(letter.format(c))
        elif c in DIGIT_FILES and c not in "*#-":
            out.append(DIGIT_FILES[c])
        elif c in _SYMBOLS:
            out.append(_SYMBOLS[c])
    return out


def date_files(when: float) -> list[str]:
    """SAY DATE: weekday, month, day, year (``ast_say_date_en``)."""
    t = time.localtime(when)
    return [f"digits/day-{(t.tm_wday + 1) % 7}", f"digits/mon-{t.tm_mon - 1}",
            *(number_files(t.tm_mday) or []), *(number_files(t.tm_year) or [])]


def time_files(when: float) -> list[str]:
    """SAY TIME: the hour of a 12-hour clock, the minutes ("oh five"),
    A M or P M (``ast_say_time_en``)."""
    t = time.localtime(when)
    out = number_files(t.tm_hour % 12 or 12) or []
    if t.tm_min > 9:
        out += number_files(t.tm_min) or []
    elif t.tm_min:
        out += ["digits/oh", f"digits/{t.tm_min}"]
    out.append("digits/a-m" if t.tm_hour < 12 else "digits/p-m")
    return out


def datetime_files(when: float, fmt: str = DATETIME_FORMAT, now: float | None = None,
                   zone: str | None = None) -> list[str]:
    """SAY DATETIME / ``ast_say_date_with_format_en``: the sounds of ``fmt``
    for ``when`` in the time zone ``zone`` (an IANA name such as
    "Europe/Stockholm"; None, empty or unknown: the process's); ``now``
    (default: the clock) decides "today" and "yesterday" for Q and q.
    Unknown letters are passed over."""
    t = local_time(when, zone)
    out: list[str] = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        i += 1
        if c == "'":
            end = fmt.find("'", i)
            end = len(fmt) if end < 0 else end
            if fmt[i:end]:
                out.append(fmt[i:end])
            i = end + 1
        elif c in "Aa":
            out.append(f"digits/day-{(t.tm_wday + 1) % 7}")
        elif c in "Bbh":
            out.append(f"digits/mon-{t.tm_mon - 1}")
        elif c in "de":
            out.append(f"digits/h-{t.tm_mday}")
        elif c == "Y":
            out += number_files(t.tm_year) or []
        elif c in "Il":
            out += number_files(t.tm_hour % 12 or 12) or []
        elif c in "Hk":
            out += _two_digits(t.tm_hour, c == "H")
        elif c == "M":
            out += ["digits/oclock"] if t.tm_min == 0 else _minutes(t.tm_min)
        elif c == "S":
            out += _minutes(t.tm_sec) if t.tm_sec else ["digits/0"]
        elif c in "pP":
            out.append("digits/a-m" if t.tm_hour < 12 else "digits/p-m")
        elif c in "Qq":
            out += _relative_day(when, time.time() if now is None else now, c == "Q", zone)
        elif c == "R":
            out += datetime_files(when, "HM", now, zone)
        elif c == "T":
            out += datetime_files(when, "HMS", now, zone)
    return out


def _minutes(n: int) -> list[str]:
    return ["digits/oh", f"digits/{n}"] if n < 10 else number_files(n) or []


def _two_digits(n: int, leading_zero: bool) -> list[str]:
    if n < 10 and leading_zero:
        return ["digits/0", f"digits/{n}"]
    return number_files(n) or []


def local_time(when: float, zone: str | None = None) -> time.struct_time:
    """``when`` as a date and time in ``zone`` (None, empty or a name the
    system's zone database lacks: the process's own zone, as Asterisk falls
    back to the system's)."""
    if zone:
        try:
            return datetime.datetime.fromtimestamp(when, zoneinfo.ZoneInfo(zone)).timetuple()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return time.localtime(when)


def _day_number(t: time.struct_time) -> int:
    """Days since year 1 of the date in ``t``."""
    return datetime.date(t.tm_year, t.tm_mon, t.tm_mday).toordinal()


def _relative_day(when: float, now: float, say_today: bool,
                  zone: str | None = None) -> list[str]:
    """Q: "today", "yesterday", else weekday, month, day, year; q: nothing
    for today, "yesterday", the weekday within the last week, else the same
    as Q."""
    days = _day_number(local_time(now, zone)) - _day_number(local_time(when, zone))
    if days == 0:
        return ["digits/today"] if say_today else []
    if days == 1:
        return ["digits/yesterday"]
    if not say_today and 1 < days < 7:
        return datetime_files(when, "A", zone=zone)
    return datetime_files(when, "ABdY", zone=zone)
