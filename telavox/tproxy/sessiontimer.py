"""Session timers (RFC 4028) on the caller's side of a call, and the SIP
extensions a SIP server supports (sans-IO).

Owns :data:`SUPPORTED` (option tags we implement, for ``Supported`` and the
RFC 3261 §8.2.2.3 check of ``Require``), :func:`unsupported` (what a request
requires that we do not: answered 420 with ``Unsupported``) and
:func:`negotiate` (what our 2xx says about the session interval).

A caller that asks for a session timer (``Session-Expires``, RFC 4028 §9)
gets it: an interval below :data:`MIN_SE` is refused with 422 and
``Min-SE``; otherwise the 2xx carries ``Session-Expires`` with the
refresher.  The caller refreshes when it supports timers (``refresher=uac``,
``Require: timer``); otherwise the SIP server does (``refresher=uas``) with
a re-INVITE at half the interval.  With no refresh the session ends at the
interval minus min(32 s, interval/3) (§10).
"""

from __future__ import annotations

import contextlib

import attrs

from telavox.sip.message import Request

__all__ = ["MIN_SE", "SUPPORTED", "SessionTimer", "negotiate", "unsupported"]

SUPPORTED = ("100rel", "timer", "replaces")
"""Option tags the SIP servers implement."""

MIN_SE = 90
"""The smallest session interval accepted, seconds (RFC 4028 §4 default)."""


def _tags(request: Request, name: str) -> set[str]:
    return {t.strip().lower() for v in request.headers.get_all(name) for t in v.split(",")
            if t.strip()}


def unsupported(request: Request) -> list[str]:
    """The option tags of ``Require`` we do not implement (empty: fine)."""
    return sorted(_tags(request, "Require") - set(SUPPORTED))


@attrs.frozen
class SessionTimer:
    """The session interval agreed with the caller and who refreshes."""

    interval: int
    refresher: str  # "uac" or "uas"

    @property
    def header(self) -> str:
        """The Session-Expires value of our 2xx."""
        return f"{self.interval};refresher={self.refresher}"

    @property
    def expiry(self) -> float:
        """Seconds after a refresh at which the session is over (§10)."""
        return self.interval - min(32.0, self.interval / 3)

    @property
    def refresh_after(self) -> float:
        """Seconds after which the refresher refreshes (half the interval)."""
        return self.interval / 2


def negotiate(request: Request) -> SessionTimer | int | None:
    """The session timer for a request: None when none was asked for, a
    :class:`SessionTimer`, or the Min-SE to answer 422 with."""
    value = request.headers.get("Session-Expires")
    if not value:
        return None
    head, _, params = value.partition(";")
    try:
        interval = int(head.strip())
    except ValueError:
        return None
    min_se = MIN_SE
    text = request.headers.get("Min-SE")
    if text:
        with contextlib.suppress(ValueError):
            min_se = max(min_se, int(text.split(";")[0].strip()))
    if interval < min_se:
        return min_se
    refresher = ""
    for param in params.split(";"):
        name, _, v = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = v.strip().lower()
    if "timer" not in _tags(request, "Supported") | _tags(request, "Require"):
        refresher = "uas"
    elif refresher not in ("uac", "uas"):
        refresher = "uac"
    return SessionTimer(interval, refresher)
