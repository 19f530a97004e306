"""Message-waiting indication: phones subscribe to their voicemail box's
state (RFC 3265/6665 SUBSCRIBE/NOTIFY, event package ``message-summary``,
RFC 3842) at their SIP server.

Owns :class:`MwiNotifier` and :func:`summary_body`.

Theory of operation.  sipproxy routes a phone's authenticated SUBSCRIBE
for ``message-summary`` to the user's SIP server, asserting the user
(P-Asserted-Identity).  A user may subscribe to its own box only (403
otherwise); the subscription lasts ``Expires`` seconds (default and most
:data:`MAX_EXPIRES`, at least :data:`MIN_EXPIRES`, else 423).  The 200 is
followed at once by a NOTIFY with the box's counts, and by one more
whenever they change; a refresh (SUBSCRIBE in the dialog) restarts the
clock and is answered with a NOTIFY too; ``Expires: 0`` or the end of the
time ends it with a final NOTIFY (``Subscription-State: terminated``).  A
NOTIFY answered 481 (or not answered) ends the subscription.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.logger import Logger

from telavox.b2bua.endpoint import SafeCall
from telavox.b2bua.leg import LegHost
from telavox.sip.dialog import Dialog, DialogError
from telavox.sip.hdrtypes import HeaderError, NameAddr
from telavox.sip.message import Request, make_response, new_tag
from telavox.sip.transaction import Action, ServerTransaction, client_response
from telavox.sip.uri import SipUri

__all__ = ["EVENT", "MAX_EXPIRES", "MIN_EXPIRES", "MwiNotifier", "summary_body"]

EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
MAX_EXPIRES = 3600
MIN_EXPIRES = 60

Counts = Callable[[str], tuple[int, int]]
"""A mailbox's (new, old) message counts."""


def summary_body(account: str, new: int, old: int) -> bytes:
    """An RFC 3842 message summary for ``account`` (a SIP URI)."""
    waiting = "yes" if new else "no"
    return (f"Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\n"
            f"Voice-Message: {new}/{old} (0/0)\r\n").encode()


@attrs.define(eq=False)
class _Subscription:
    mailbox: str
    dialog: Dialog
    expires_at: float
    timer: Any = None


class MwiNotifier:
    """The message-summary subscriptions of one SIP server (see the module
    docstring).  ``legs`` sends the NOTIFYs, ``counts`` reads a box,
    ``contact`` is our Contact, ``now`` the clock."""

    log = Logger()

    def __init__(self, legs: LegHost, counts: Counts, contact: Callable[[], NameAddr],
                 domain: str, now: Callable[[], float]) -> None:
        self.legs = legs
        self.counts = counts
        self.contact = contact
        self.domain = domain
        self.now = now
        self._subs: dict[tuple[str, str], _Subscription] = {}

    def __len__(self) -> int:
        return len(self._subs)

    def owns(self, request: Request) -> bool:
        """True when ``request`` belongs to one of our subscription dialogs."""
        return (request.call_id, request.to_tag or "") in self._subs

    # -- SUBSCRIBE -------------------------------------------------------------------------

    def subscribe(self, request: Request, txn: ServerTransaction, subscriber: str | None
                  ) -> None:
        """A new SUBSCRIBE for ``message-summary`` from the user ``subscriber``
        (the asserted identity, None when there is none)."""
        uri = request.uri
        mailbox = uri.user if isinstance(uri, SipUri) and uri.user else ""
        if not mailbox or subscriber != mailbox:
            self._reply(txn, request, 403, "Forbidden (not your mailbox)")
            return
        expires = self._expires(request, txn)
        if expires is None:
            return
        local_tag = new_tag()
        try:
            dialog = Dialog.from_uas(request, local_tag, self.contact())
        except (DialogError, HeaderError) as e:
            self._reply(txn, request, 400, f"Bad Request ({e})")
            return
        dialog.confirm()
        key = (request.call_id, local_tag)
        self.legs.respond(txn, make_response(request, 200, to_tag=local_tag, extra=(
            ("Expires", str(expires)), ("Contact", str(self.contact())))))
        if expires == 0:
            self._notify(dialog, mailbox, "terminated;reason=timeout")
            dialog.terminate()
            return
        sub = _Subscription(mailbox, dialog, self.now() + expires)
        self._subs[key] = sub
        self._arm(key, sub, expires)
        self._notify(dialog, mailbox, f"active;expires={expires}")

    def refresh(self, request: Request, txn: ServerTransaction) -> None:
        """A SUBSCRIBE inside one of our dialogs: refresh or end it."""
        key = (request.call_id, request.to_tag or "")
        sub = self._subs.get(key)
        if sub is None:
            self._reply(txn, request, 481)
            return
        status = sub.dialog.receive_request(request)
        if status is not None:
            self._reply(txn, request, status)
            return
        if request.method != "SUBSCRIBE":
            self._reply(txn, request, 405, extra=(("Allow", "SUBSCRIBE"),))
            return
        expires = self._expires(request, txn)
        if expires is None:
            return
        self._reply(txn, request, 200, extra=(("Expires", str(expires)),))
        if expires == 0:
            self._end(key, "timeout")
            return
        sub.expires_at = self.now() + expires
        self._arm(key, sub, expires)
        self._notify(sub.dialog, sub.mailbox, f"active;expires={expires}")

    def _expires(self, request: Request, txn: ServerTransaction) -> int | None:
        text = request.headers.get("Expires")
        try:
            expires = MAX_EXPIRES if text is None else int(text)
        except ValueError:
            self._reply(txn, request, 400, "Bad Request (Expires)")
            return None
        if expires < 0:
            self._reply(txn, request, 400, "Bad Request (Expires)")
            return None
        if 0 < expires < MIN_EXPIRES:
            self._reply(txn, request, 423, "Interval Too Brief",
                        extra=(("Min-Expires", str(MIN_EXPIRES)),))
            return None
        return min(expires, MAX_EXPIRES)

    def _reply(self, txn: ServerTransaction, request: Request, status: int,
               reason: str | None = None, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.legs.respond(txn, make_response(request, status, reason, to_tag=request.to_tag
                                             or new_tag(), extra=extra))

    # -- NOTIFY ----------------------------------------------------------------------------

    def changed(self, mailbox: str) -> None:
        """The box's counts changed: tell its subscribers."""
        for sub in [s for s in self._subs.values() if s.mailbox == mailbox]:
            remaining = max(1, int(sub.expires_at - self.now()))
            self._notify(sub.dialog, mailbox, f"active;expires={remaining}")

    def _notify(self, dialog: Dialog, mailbox: str, state: str) -> None:
        new, old = self.counts(mailbox)
        body = summary_body(f"sip:{mailbox}@{self.domain}", new, old)
        dest = self.legs.destination_for(dialog.next_hop)
        request = dialog.create_request("NOTIFY", via=self.legs.via_for(dest), extra=(
            ("Event", EVENT), ("Subscription-State", state)), body=body,
            content_type=CONTENT_TYPE)
        key = (dialog.call_id, dialog.local_tag)

        def answered(event: Action) -> None:
            response = client_response(request, event)
            if response is None or response.status < 200:
                return
            if response.status in (408, 481) or response.status >= 500:
                self._forget(key)

        self.legs.send_request(request, dest, answered)

    def _arm(self, key: tuple[str, str], sub: _Subscription, expires: int) -> None:
        if sub.timer is not None:
            sub.timer.cancel()
        sub.timer = SafeCall(self.legs.call_later(expires, lambda: self._end(key, "timeout")))

    def _end(self, key: tuple[str, str], reason: str) -> None:
        sub = self._subs.get(key)
        if sub is None:
            return
        self._notify(sub.dialog, sub.mailbox, f"terminated;reason={reason}")
        self._forget(key)

    def _forget(self, key: tuple[str, str]) -> None:
        sub = self._subs.pop(key, None)
        if sub is None:
            return
        if sub.timer is not None:
            sub.timer.cancel()
        sub.dialog.terminate()

    def stop(self) -> None:
        """End every subscription (shutdown): final NOTIFYs."""
        for key in list(self._subs):
            self._end(key, "noresource")
