"""SIP dialogs (RFC 3261 §12), sans-IO.

Owns :class:`DialogId`, :class:`Dialog` (the state one user agent keeps for a
peer-to-peer relationship: §12.1 creation, §12.2 requests inside it, §12.3
termination) and :class:`DialogSet` (the dialogs one INVITE creates when a
proxy forks it, §12.1.2 and §13.2.2.4).

Theory of operation.  A dialog is identified from our side by the Call-ID,
our tag and the peer's tag (:class:`DialogId`): for a request we receive that
is (Call-ID, To tag, From tag), for a response to a request we sent
(Call-ID, From tag, To tag).  The UAC builds its dialog from the request it
sent and a 1xx (early) or 2xx (confirmed) response carrying a To tag
(:meth:`Dialog.from_uac`: route set = Record-Route reversed, remote target =
the response's Contact); the UAS builds it from the request it received
(:meth:`Dialog.from_uas`: route set = Record-Route in order, remote target =
the request's Contact).  Afterwards:

* :meth:`Dialog.create_request` builds requests inside the dialog (§12.2.1.1):
  Request-URI and Route from the route set (loose routing when its first
  element carries ``lr``, else strict routing with the remote target pushed as
  the last Route), the local CSeq incremented (ACK and CANCEL reuse the
  INVITE's), our tag in From and the peer's in To;
* :meth:`Dialog.ack_for` builds the ACK of a 2xx to an INVITE (§13.2.2.4),
  once per CSeq number, so retransmitted 2xx get the very same ACK;
* :meth:`Dialog.receive_request` applies §12.2.2 to a request from the peer
  (500 when its CSeq is lower than the last one, target refresh);
* :meth:`Dialog.update_from_response` applies §12.2.1.2 and §13.2.2.4 to a
  response to one of our requests (early → confirmed with the route set
  recomputed from the 2xx, target refresh, 408/481 end the dialog).

Nothing here sends, resolves or times anything: the caller picks the Via,
sends the messages and decides when the dialog ends (BYE, §15).  Dialog state
is mutable and owned by one user agent.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence

import attrs

from telavox.sip.hdrtypes import HeaderError, NameAddr, Via
from telavox.sip.headers import Headers
from telavox.sip.message import Request, Response
from telavox.sip.uri import SipUri, Uri

__all__ = [
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogError",
    "DialogId",
    "DialogSet",
    "DialogState",
]

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
"""Methods whose Contact replaces the remote target (RFC 3261 §12.2, RFC 3311,
RFC 6665 §4.1.2.1 and §4.2.1, RFC 3515 §2.4.1)."""

Extra = Sequence[tuple[str, str]]


class DialogError(ValueError):
    """A message that cannot create, or does not belong to, a dialog, or a
    request the dialog cannot build in its state."""


class DialogState(enum.Enum):
    """Dialog states (RFC 3261 §12)."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@attrs.frozen(slots=True)
class DialogId:
    """Call-ID, local tag and remote tag (§12): the key of a dialog, seen from
    our side.  A tag missing from an RFC 2543 peer is the empty string."""

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_request(cls, request: Request) -> DialogId:
        """The id a request we received names: (Call-ID, To tag, From tag)."""
        return cls(request.call_id, request.to_tag or "", request.from_tag or "")

    @classmethod
    def of_response(cls, response: Response) -> DialogId:
        """The id a response to our request names: (Call-ID, From tag, To tag)."""
        return cls(response.call_id, response.from_tag or "", response.to_tag or "")


def _initial_seq() -> int:
    """A first local CSeq number for a UAS that never sent a request (§8.1.1.5)."""
    return int.from_bytes(os.urandom(2), "big") + 1


def _checked_routes(values: list[str]) -> list[str]:
    for value in values:
        try:
            NameAddr.parse(value)
        except HeaderError as e:
            raise DialogError(f"bad Record-Route {value[:60]!r}: {e}") from None
    return [v.strip() for v in values]


def _first_contact(message: Request | Response) -> Uri | None:
    try:
        contacts = message.contacts
    except HeaderError as e:
        raise DialogError(f"bad Contact: {e}") from None
    return contacts[0].uri if contacts else None


def _without_tag(value: NameAddr) -> NameAddr:
    return value.without_param("tag")


def _strict_uri(uri: Uri) -> Uri:
    """A route URI turned Request-URI: without headers and ``method`` (§19.1.1)."""
    if not isinstance(uri, SipUri):
        return uri
    params = tuple(p for p in uri.params if p[0].lower() != "method")
    return attrs.evolve(uri, params=params, headers=())


def _contact_text(contact: NameAddr | Uri | str) -> str:
    if isinstance(contact, str):
        return contact
    if isinstance(contact, NameAddr):
        return str(contact)
    return f"<{contact}>"


@attrs.define(eq=False)
class Dialog:
    """One dialog (RFC 3261 §12.1): identity, state, addresses, route set and
    sequence numbers.

    ``route_set`` holds the Route values (name-addr text) in the order they go
    into requests; ``local_seq``/``remote_seq`` are None while empty;
    ``local_contact`` is the Contact we advertise (sent again in target
    refresh requests); ``invite_seq`` the CSeq number of the last INVITE we
    sent in it, which ACK and CANCEL reuse.
    """

    id: DialogId
    state: DialogState
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: Uri
    route_set: list[str] = attrs.Factory(list)
    local_seq: int | None = None
    remote_seq: int | None = None
    secure: bool = False
    local_contact: str | None = None
    invite_seq: int | None = None
    _ack: Request | None = attrs.field(default=None, init=False, repr=False)

    # -- creation ------------------------------------------------------------------

    @classmethod
    def from_uac(cls, request: Request, response: Response, *,
                 secure: bool | None = None) -> Dialog:
        """The dialog a 101–299 response with a To tag creates for the UAC (§12.1.2).

        Early for a 1xx, confirmed for a 2xx.  Route set: the response's
        Record-Route reversed; remote target: its Contact (the Request-URI
        when a provisional response has none).  ``secure`` defaults to the
        Request-URI being ``sips:``.  Raises DialogError when the response
        creates no dialog or does not answer ``request``.
        """
        if not 100 < response.status < 300:
            raise DialogError(f"a {response.status} response creates no dialog")
        remote_tag = response.to_tag
        local_tag = request.from_tag
        if not remote_tag:
            raise DialogError("response without To tag creates no dialog")
        if not local_tag:
            raise DialogError("request without From tag")
        if response.call_id != request.call_id or response.from_tag != local_tag:
            raise DialogError("response does not answer this request")
        target = _first_contact(response) or request.uri
        seq = request.cseq.seq
        if secure is None:
            secure = isinstance(request.uri, SipUri) and request.uri.secure
        contact = request.headers.first_value("Contact")
        return cls(
            id=DialogId(request.call_id, local_tag, remote_tag),
            state=DialogState.CONFIRMED if response.success else DialogState.EARLY,
            local_uri=_without_tag(request.from_),
            remote_uri=_without_tag(response.to),
            remote_target=target,
            route_set=_checked_routes(list(reversed(response.headers.values("Record-Route")))),
            local_seq=seq,
            secure=secure,
            local_contact=contact,
            invite_seq=seq if request.method == "INVITE" else None,
        )

    @classmethod
    def from_uas(cls, request: Request, local_tag: str, local_contact: NameAddr | Uri | str,
                 *, secure: bool | None = None, confirmed: bool = False) -> Dialog:
        """The dialog the UAS creates when it answers ``request`` with a 1xx
        or 2xx carrying ``local_tag`` (§12.1.1).

        Route set: the request's Record-Route in order; remote target: its
        Contact; remote CSeq: its CSeq; local CSeq empty.  Early unless
        ``confirmed``.  Raises DialogError when the request has no Contact.
        """
        target = _first_contact(request)
        if target is None:
            raise DialogError("request without Contact creates no dialog")
        if secure is None:
            secure = isinstance(request.uri, SipUri) and request.uri.secure
        return cls(
            id=DialogId(request.call_id, local_tag, request.from_tag or ""),
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=target,
            route_set=_checked_routes(request.headers.values("Record-Route")),
            remote_seq=request.cseq.seq,
            secure=secure,
            local_contact=_contact_text(local_contact),
        )

    # -- views ---------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self.id.call_id

    @property
    def local_tag(self) -> str:
        """Our tag."""
        return self.id.local_tag

    @property
    def remote_tag(self) -> str:
        """The peer's tag."""
        return self.id.remote_tag

    @property
    def early(self) -> bool:
        """True in the early state."""
        return self.state is DialogState.EARLY

    @property
    def confirmed(self) -> bool:
        """True in the confirmed state."""
        return self.state is DialogState.CONFIRMED

    @property
    def terminated(self) -> bool:
        """True once the dialog has ended."""
        return self.state is DialogState.TERMINATED

    @property
    def next_hop(self) -> Uri:
        """Where requests in the dialog go first (§8.1.2): the first route
        when there is a route set, else the remote target."""
        if self.route_set:
            return NameAddr.parse(self.route_set[0]).uri
        return self.remote_target

    # -- state changes -----------------------------------------------------------------

    def confirm(self) -> None:
        """Early → confirmed (a UAS sending its 2xx)."""
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        """End the dialog (BYE sent or received, §15; a failure, §12.3)."""
        self.state = DialogState.TERMINATED

    # -- requests we send ---------------------------------------------------------------

    def _target(self) -> tuple[Uri, list[str]]:
        """Request-URI and Route values (§12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        first = NameAddr.parse(self.route_set[0])
        if not isinstance(first.uri, SipUri) or first.uri.lr:
            return self.remote_target, list(self.route_set)
        # strict routing: the first route becomes the Request-URI and the
        # remote target goes last in Route
        return _strict_uri(first.uri), [*self.route_set[1:], f"<{self.remote_target}>"]

    def _build(self, method: str, seq: int, via: Via | str, contact: str | None,
               body: bytes, content_type: str | None, extra: Extra) -> Request:
        uri, routes = self._target()
        h = Headers()
        h.add("Via", str(via))
        h.add("Max-Forwards", "70")
        for route in routes:
            h.add("Route", route)
        remote = self.remote_uri
        h.add("To", str(remote.with_tag(self.remote_tag) if self.remote_tag else remote))
        h.add("From", str(self.local_uri.with_tag(self.local_tag)))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{seq} {method}")
        if contact is not None:
            h.add("Contact", contact)
        for name, value in extra:
            h.add(name, value)
        if body and content_type:
            h.add("Content-Type", content_type)
        return Request(method, uri, h, body)

    def create_request(self, method: str, *, via: Via | str,
                       contact: NameAddr | Uri | str | None = None, body: bytes = b"",
                       content_type: str | None = None, extra: Extra = ()) -> Request:
        """A request inside the dialog (§12.2.1.1), Max-Forwards 70.

        The local CSeq is incremented (chosen at random first when empty),
        except for ACK and CANCEL, which take the number of the last INVITE
        sent in the dialog (prefer :meth:`ack_for` for the ACK of a 2xx and
        :func:`~telavox.sip.message.make_cancel` for a CANCEL, which must
        keep the INVITE's branch).  ``contact`` is written when given; a
        target refresh request without one gets :attr:`local_contact`, and
        one with one makes it the new local contact.  Raises DialogError on a
        terminated dialog, or for ACK/CANCEL before any INVITE.
        """
        method = method.upper()
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"cannot send {method} in a terminated dialog")
        if method in ("ACK", "CANCEL"):
            if self.invite_seq is None:
                raise DialogError(f"no INVITE in this dialog for {method}")
            seq = self.invite_seq
        else:
            seq = self.local_seq + 1 if self.local_seq is not None else _initial_seq()
            self.local_seq = seq
            if method == "INVITE":
                self.invite_seq = seq
        text = None if contact is None else _contact_text(contact)
        if method in TARGET_REFRESH_METHODS:
            if text is None:
                text = self.local_contact
            else:
                self.local_contact = text
        return self._build(method, seq, via, text, body, content_type, extra)

    def ack_for(self, response: Response, *, via: Via | str, body: bytes = b"",
                content_type: str | None = None, extra: Extra = ()) -> Request:
        """The ACK of a 2xx to an INVITE (§13.2.2.4).

        Built like any request of the dialog but with the INVITE's CSeq
        number and method ACK, and a new transaction (``via`` carries a fresh
        branch).  Put the INVITE's Authorization fields in ``extra`` (§22.1).
        The ACK is remembered: a retransmission of the same 2xx gets the same
        ACK back (``via`` and the rest are then ignored).  Raises DialogError
        for anything but a 2xx to an INVITE.
        """
        cseq = response.cseq
        if cseq.method != "INVITE" or not response.success:
            raise DialogError(f"no ACK for a {response.status} to {cseq.method}")
        ack = self._ack
        if ack is not None and ack.cseq.seq == cseq.seq:
            return ack
        ack = self._build("ACK", cseq.seq, via, None, body, content_type, extra)
        self._ack = ack
        return ack

    # -- messages from the peer -------------------------------------------------------

    def receive_request(self, request: Request) -> int | None:
        """Apply §12.2.2 to a request the peer sent in this dialog.

        Returns the status to reject it with, or None to go on: 481 when the
        dialog has ended or the request names another dialog, 500 when its
        CSeq is lower than the remote sequence number (out of order), 400 for
        a malformed Contact.  Otherwise records its CSeq and, for a target
        refresh request (:data:`TARGET_REFRESH_METHODS`), takes its Contact
        as the new remote target.  ACK and CANCEL are not sequenced.  Ending
        the dialog on BYE is left to the caller.
        """
        if self.state is DialogState.TERMINATED or DialogId.of_request(request) != self.id:
            return 481
        method = request.method
        if method in ("ACK", "CANCEL"):
            return None
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return 500
        if method in TARGET_REFRESH_METHODS:
            try:
                target = _first_contact(request)
            except DialogError:
                return 400
            if target is not None:
                self.remote_target = target
        self.remote_seq = seq
        return None

    def update_from_response(self, response: Response) -> None:
        """Apply a response to one of our requests in this dialog (§12.2.1.2,
        §13.2.2.4).

        A 2xx to the INVITE of an early dialog confirms it and recomputes the
        route set from its Record-Route; a 1xx to the INVITE of an early
        dialog, or a 2xx to any target refresh request, takes its Contact as
        the remote target; a 3xx–6xx to the INVITE of an early dialog, and any 408 or
        481, end it.  Raises DialogError for a 1xx/2xx of another dialog.
        """
        if self.state is DialogState.TERMINATED:
            return
        status = response.status
        if status in (408, 481):
            self.terminate()
            return
        method = response.cseq.method
        if status >= 300:
            if method == "INVITE" and self.state is DialogState.EARLY:
                self.terminate()
            return
        if status == 100:
            return
        if DialogId.of_response(response) != self.id:
            raise DialogError("response of another dialog")
        early = self.state is DialogState.EARLY
        refresh = response.success and method in TARGET_REFRESH_METHODS
        if method == "INVITE" and early:
            refresh = True
            if response.success:
                self.state = DialogState.CONFIRMED
                self.route_set = _checked_routes(
                    list(reversed(response.headers.values("Record-Route"))))
        if refresh:
            target = _first_contact(response)
            if target is not None:
                self.remote_target = target


class DialogSet:
    """The dialogs created by one request we sent, keyed by the peer's tag.

    A forking proxy may return provisional and 2xx responses from several
    UASs (§12.1.2, §13.2.2.4): each To tag makes its own dialog.  Every 2xx
    must be ACKed (:meth:`Dialog.ack_for`); a UAC that wants one call keeps
    the first confirmed dialog and may send BYE on the others
    (:meth:`extras`).
    """

    def __init__(self, request: Request) -> None:
        self.request = request
        self.dialogs: dict[str, Dialog] = {}

    def on_response(self, response: Response) -> Dialog | None:
        """Feed a response to the request; returns the dialog it belongs to.

        A 1xx/2xx with a To tag creates the dialog of that tag or updates it;
        a 3xx–6xx ends every early dialog (§13.2.2.3) and returns None, as do
        responses without a To tag.
        """
        if response.status >= 300:
            for dialog in self.dialogs.values():
                if dialog.early:
                    dialog.terminate()
            return None
        tag = response.to_tag
        if response.status == 100 or not tag:
            return None
        known = self.dialogs.get(tag)
        if known is not None:
            known.update_from_response(response)
            return known
        dialog = Dialog.from_uac(self.request, response)
        self.dialogs[tag] = dialog
        return dialog

    @property
    def early(self) -> list[Dialog]:
        """The early dialogs, in order of creation."""
        return [d for d in self.dialogs.values() if d.early]

    @property
    def confirmed(self) -> list[Dialog]:
        """The confirmed dialogs, in order of creation."""
        return [d for d in self.dialogs.values() if d.confirmed]

    def extras(self, keep: Dialog) -> list[Dialog]:
        """The confirmed dialogs other than ``keep``: the ones to end with BYE."""
        return [d for d in self.confirmed if d is not keep]

    def finish(self) -> list[Dialog]:
        """The transaction is over (Timer M or a final response): end the
        dialogs still early and return them."""
        ended = self.early
        for dialog in ended:
            dialog.terminate()
        return ended
