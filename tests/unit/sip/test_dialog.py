"""Dialogs of RFC 3261 §12: creation on both sides, route sets (loose and
strict), CSeq rules, target refresh, the ACK of a 2xx and forking."""

from __future__ import annotations

import pytest
from helpers.sipmsg import request

from telavox.sip.dialog import Dialog, DialogError, DialogId, DialogSet, DialogState
from telavox.sip.hdrtypes import NameAddr, Via
from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import parse_message
from telavox.sip.uri import SipUri, parse_uri

CALL_ID = "a84b4c76e66710@pc33.atlanta.example.com"
ALICE_TAG = "1928301774"
BOB_CONTACT = "<sip:bob@192.0.2.4>"
P1 = "<sip:p1.example.com;lr>"
P2 = "<sip:p2.example.com;lr>"
VIA = "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnew1"


def answer(req: Request, status: int, tag: str | None = "bobtag", *,
           record_route: tuple[str, ...] = (), contact: str | None = BOB_CONTACT) -> Response:
    """A response as the UAS would send it, with Record-Route and Contact, re-parsed."""
    extra: list[tuple[str, str]] = [("Record-Route", rr) for rr in record_route]
    if contact is not None and status > 100:
        extra.append(("Contact", contact))
    resp = make_response(req, status, to_tag=tag, extra=tuple(extra))
    parsed = parse_message(resp.serialize())
    assert isinstance(parsed, Response)
    return parsed


def reparse(req: Request) -> Request:
    parsed = parse_message(req.serialize())
    assert isinstance(parsed, Request)
    return parsed


def uac_dialog(status: int = 200, record_route: tuple[str, ...] = (P1, P2)) -> Dialog:
    invite = request("INVITE", cseq=1)
    return Dialog.from_uac(invite, answer(invite, status, record_route=record_route))


def uas_dialog(record_route: tuple[str, ...] = (P1, P2), cseq: int = 7) -> Dialog:
    extra = "".join(f"Record-Route: {rr}\r\n" for rr in record_route)
    invite = request("INVITE", cseq=cseq, extra=extra)
    return Dialog.from_uas(invite, "bobtag", NameAddr(uri=parse_uri("sip:bob@192.0.2.4")))


# --- creation -------------------------------------------------------------------


def test_uac_dialog_from_2xx_reverses_record_route_and_targets_contact() -> None:
    """§12.1.2: a 2xx confirms; route set = Record-Route reversed, target = Contact."""
    dialog = uac_dialog(200)
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.id == DialogId(CALL_ID, ALICE_TAG, "bobtag")
    assert dialog.route_set == [P2, P1]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.4"
    assert dialog.local_seq == 1 and dialog.remote_seq is None
    assert dialog.invite_seq == 1
    assert str(dialog.local_uri.uri) == "sip:alice@atlanta.example.com"
    assert dialog.local_uri.tag is None and dialog.remote_uri.tag is None
    assert not dialog.secure


def test_uac_dialog_from_1xx_with_tag_is_early() -> None:
    """§12.1.2: a provisional response with a To tag creates an early dialog."""
    assert uac_dialog(180).state is DialogState.EARLY


@pytest.mark.parametrize(("status", "tag"), [(100, None), (180, None), (486, "x"), (200, None)])
def test_uac_dialog_needs_101_to_299_with_to_tag(status: int, tag: str | None) -> None:
    """Only a 101–299 response carrying a To tag creates a dialog."""
    invite = request("INVITE")
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, answer(invite, status, tag))


def test_uas_dialog_keeps_record_route_order_and_remote_cseq() -> None:
    """§12.1.1: route set = Record-Route in order, target = Contact, remote CSeq set."""
    dialog = uas_dialog()
    assert dialog.state is DialogState.EARLY
    assert dialog.id == DialogId(CALL_ID, "bobtag", ALICE_TAG)
    assert dialog.route_set == [P1, P2]
    assert str(dialog.remote_target) == "sip:alice@pc33.atlanta.example.com"
    assert dialog.remote_seq == 7 and dialog.local_seq is None
    assert dialog.local_contact == "<sip:bob@192.0.2.4>"
    assert str(dialog.local_uri.uri) == "sip:bob@biloxi.example.com"


def test_uas_dialog_needs_contact() -> None:
    """A request without Contact cannot create a dialog on the UAS side."""
    invite = request("INVITE")
    invite.headers.remove("Contact")
    with pytest.raises(DialogError):
        Dialog.from_uas(invite, "t", "<sip:bob@192.0.2.4>")


def test_sips_request_uri_makes_a_secure_dialog() -> None:
    """§12.1.2: a sips: Request-URI gives a secure dialog."""
    invite = request("INVITE", uri="sips:bob@biloxi.example.com")
    assert Dialog.from_uac(invite, answer(invite, 200)).secure


# --- requests inside the dialog ----------------------------------------------------


def test_loose_route_set_keeps_remote_target_as_request_uri() -> None:
    """§12.2.1.1 loose routing: Request-URI = remote target, Route = route set."""
    bye = reparse(uac_dialog().create_request("BYE", via=VIA))
    assert bye.uri_text == "sip:bob@192.0.2.4"
    assert bye.headers.values("Route") == [P2, P1]
    assert bye.int_header("Max-Forwards") == 70
    assert bye.to_tag == "bobtag" and bye.from_tag == ALICE_TAG
    assert bye.call_id == CALL_ID
    assert str(bye.cseq) == "2 BYE"
    assert bye.top_via.branch == "z9hG4bKnew1"


def test_no_route_set_sends_to_remote_target_without_route() -> None:
    """With an empty route set the request goes to the remote target, no Route."""
    dialog = uac_dialog(record_route=())
    bye = dialog.create_request("BYE", via=VIA)
    assert bye.uri_text == "sip:bob@192.0.2.4"
    assert "Route" not in bye.headers
    assert str(dialog.next_hop) == "sip:bob@192.0.2.4"


def test_strict_route_set_puts_first_route_in_request_uri() -> None:
    """§12.2.1.1 strict routing: first route is the Request-URI, target the last Route."""
    strict = "<sip:strict.example.com;method=INVITE;transport=udp?Subject=x>"
    dialog = uac_dialog(record_route=(P1, strict))
    assert dialog.route_set == [strict, P1]
    bye = reparse(dialog.create_request("BYE", via=VIA))
    assert bye.uri_text == "sip:strict.example.com;transport=udp"
    assert bye.headers.values("Route") == [P1, "<sip:bob@192.0.2.4>"]
    assert isinstance(dialog.next_hop, SipUri)
    assert dialog.next_hop.host == "strict.example.com"


def test_cseq_increments_but_ack_and_cancel_reuse_the_invite() -> None:
    """§12.2.1.1: CSeq grows per request; ACK and CANCEL reuse the INVITE's number."""
    dialog = uac_dialog()
    assert dialog.create_request("INFO", via=VIA).cseq.seq == 2
    reinvite = dialog.create_request("INVITE", via=VIA, contact="<sip:alice@192.0.2.9>")
    assert reinvite.cseq.seq == 3
    assert dialog.create_request("ACK", via=VIA).cseq.seq == 3
    assert str(dialog.create_request("CANCEL", via=VIA).cseq) == "3 CANCEL"
    assert dialog.create_request("BYE", via=VIA).cseq.seq == 4
    assert dialog.local_seq == 4


def test_uas_first_request_picks_a_sequence_number_then_increments() -> None:
    """§12.2.1.1: an empty local CSeq gets an initial value, then grows by one."""
    dialog = uas_dialog()
    first = dialog.create_request("BYE", via=VIA).cseq.seq
    assert 0 < first < 2**31
    assert dialog.create_request("INFO", via=VIA).cseq.seq == first + 1


def test_uas_request_uses_our_tag_in_from_and_peer_tag_in_to() -> None:
    """In a request the UAS sends, From carries its tag and To the caller's."""
    bye = uas_dialog().create_request("BYE", via=VIA)
    assert bye.from_tag == "bobtag" and bye.to_tag == ALICE_TAG
    assert bye.uri_text == "sip:alice@pc33.atlanta.example.com"
    assert bye.headers.values("Route") == [P1, P2]


def test_target_refresh_request_carries_local_contact() -> None:
    """Target refresh requests carry (and may replace) the local contact; BYE none."""
    dialog = uas_dialog()
    assert dialog.create_request("INVITE", via=VIA).headers.get("Contact") == (
        "<sip:bob@192.0.2.4>")
    dialog.create_request("UPDATE", via=VIA, contact="<sip:bob@198.51.100.1>")
    assert dialog.local_contact == "<sip:bob@198.51.100.1>"
    assert dialog.create_request("BYE", via=VIA).headers.get("Contact") is None


def test_body_gets_content_type_and_extra_headers_follow() -> None:
    """A body is sent with its Content-Type; extra fields are appended."""
    req = uac_dialog().create_request("INFO", via=VIA, body=b"x=1", content_type="text/plain",
                                      extra=(("Subject", "hi"),))
    again = reparse(req)
    assert again.body == b"x=1" and again.content_type == "text/plain"
    assert again.headers.get("Subject") == "hi"


def test_terminated_dialog_sends_nothing() -> None:
    """A terminated dialog refuses to build requests; ACK needs an INVITE."""
    dialog = uas_dialog()
    with pytest.raises(DialogError):
        dialog.create_request("ACK", via=VIA)
    dialog.terminate()
    with pytest.raises(DialogError):
        dialog.create_request("BYE", via=VIA)


# --- the ACK of a 2xx ---------------------------------------------------------------


def test_ack_for_2xx_has_invite_cseq_new_branch_and_route_set() -> None:
    """§13.2.2.4: ACK of a 2xx: INVITE's CSeq number, new branch, dialog routing."""
    invite = request("INVITE", cseq=41)
    ok = answer(invite, 200, record_route=(P1,))
    dialog = Dialog.from_uac(invite, ok)
    ack = reparse(dialog.ack_for(ok, via=VIA, extra=(("Authorization", "Digest x=y"),)))
    assert ack.method == "ACK"
    assert str(ack.cseq) == "41 ACK"
    assert ack.top_via.branch == "z9hG4bKnew1" != invite.top_via.branch
    assert ack.uri_text == "sip:bob@192.0.2.4"
    assert ack.headers.values("Route") == [P1]
    assert ack.to_tag == "bobtag"
    assert ack.headers.get("Authorization") == "Digest x=y"
    assert dialog.local_seq == 41


def test_ack_for_retransmitted_2xx_is_the_same_ack() -> None:
    """A retransmitted 2xx gets the very same ACK; a 2xx to a later re-INVITE a new one."""
    invite = request("INVITE", cseq=1)
    ok = answer(invite, 200)
    dialog = Dialog.from_uac(invite, ok)
    first = dialog.ack_for(ok, via=VIA)
    assert dialog.ack_for(ok, via="SIP/2.0/UDP h;branch=z9hG4bKother") is first
    reinvite = dialog.create_request("INVITE", via=VIA)
    ok2 = answer(reinvite, 200, tag=None)
    second = dialog.ack_for(ok2, via="SIP/2.0/UDP h;branch=z9hG4bKthird")
    assert second is not first and second.cseq.seq == 2


@pytest.mark.parametrize(("method", "status"), [("INVITE", 180), ("INVITE", 486), ("BYE", 200)])
def test_ack_for_refuses_other_responses(method: str, status: int) -> None:
    """Only a 2xx to an INVITE has an end-to-end ACK."""
    dialog = uac_dialog()
    resp = answer(request(method), status)
    with pytest.raises(DialogError):
        dialog.ack_for(resp, via=VIA)


# --- requests from the peer ---------------------------------------------------------


def peer_request(method: str, cseq: int, contact: str | None = None) -> Request:
    """A request Alice sends in the UAS dialog of uas_dialog()."""
    extra = f"Contact: {contact}\r\n" if contact else ""
    req = request(method, cseq=cseq, to_tag="bobtag", extra=extra)
    if contact:
        values = req.headers.get_all("Contact")
        req.headers.remove("Contact")
        req.headers.add("Contact", values[-1])
    return req


def test_lower_cseq_is_rejected_with_500() -> None:
    """§12.2.2: a CSeq lower than the remote one gets 500; others are recorded."""
    dialog = uas_dialog(cseq=7)
    assert dialog.receive_request(peer_request("INFO", 6)) == 500
    assert dialog.remote_seq == 7
    assert dialog.receive_request(peer_request("INFO", 9)) is None
    assert dialog.remote_seq == 9
    assert dialog.receive_request(peer_request("BYE", 8)) == 500


def test_ack_is_not_sequenced() -> None:
    """The ACK carries the INVITE's CSeq and is neither checked nor recorded."""
    dialog = uas_dialog(cseq=7)
    dialog.receive_request(peer_request("INFO", 9))
    assert dialog.receive_request(peer_request("ACK", 7)) is None
    assert dialog.remote_seq == 9


def test_reinvite_refreshes_remote_target_but_bye_does_not() -> None:
    """§12.2.2: a re-INVITE's Contact becomes the remote target; a BYE's does not."""
    dialog = uas_dialog(cseq=7)
    assert dialog.receive_request(peer_request("INVITE", 8, "<sip:alice@198.51.100.7>")) is None
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7"
    assert dialog.receive_request(peer_request("BYE", 9, "<sip:alice@203.0.113.1>")) is None
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7"


def test_request_of_other_dialog_or_after_end_gets_481() -> None:
    """A request naming another dialog, or arriving after the end, gets 481."""
    dialog = uas_dialog()
    other = request("BYE", cseq=9, to_tag="nottag")
    assert dialog.receive_request(other) == 481
    dialog.terminate()
    assert dialog.receive_request(peer_request("BYE", 9)) == 481


# --- responses to our requests ---------------------------------------------------------


def test_2xx_confirms_early_dialog_and_recomputes_route_set() -> None:
    """§13.2.2.4: a 2xx confirms an early dialog and recomputes route set and target."""
    invite = request("INVITE")
    dialog = Dialog.from_uac(invite, answer(invite, 183, record_route=(P1,)))
    assert dialog.route_set == [P1]
    dialog.update_from_response(answer(invite, 200, record_route=(P1, P2),
                                       contact="<sip:bob@192.0.2.44>"))
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.route_set == [P2, P1]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.44"


def test_2xx_to_reinvite_refreshes_target_but_keeps_route_set() -> None:
    """§12.2.1.2: a 2xx to a re-INVITE refreshes the remote target only."""
    dialog = uac_dialog()
    reinvite = dialog.create_request("INVITE", via=VIA)
    ok = answer(reinvite, 200, tag=None, record_route=(P1,), contact="<sip:bob@192.0.2.99>")
    dialog.update_from_response(ok)
    assert str(dialog.remote_target) == "sip:bob@192.0.2.99"
    assert dialog.route_set == [P2, P1]


def test_provisional_to_reinvite_leaves_the_target() -> None:
    """§12.2.1.2: a 1xx to a re-INVITE does not refresh a confirmed dialog's target."""
    dialog = uac_dialog()
    reinvite = dialog.create_request("INVITE", via=VIA)
    dialog.update_from_response(answer(reinvite, 180, tag=None, contact="<sip:bob@192.0.2.98>"))
    assert str(dialog.remote_target) == "sip:bob@192.0.2.4"


def test_failure_ends_early_dialog_and_481_ends_confirmed() -> None:
    """§12.3, §12.2.1.2: a failure ends an early dialog; only 408/481 end a confirmed one."""
    invite = request("INVITE")
    early = Dialog.from_uac(invite, answer(invite, 180))
    early.update_from_response(answer(invite, 486))
    assert early.terminated
    dialog = uac_dialog()
    info = dialog.create_request("INFO", via=VIA)
    dialog.update_from_response(answer(info, 415, tag=None))
    assert dialog.confirmed
    dialog.update_from_response(answer(info, 481, tag=None))
    assert dialog.terminated


def test_response_of_another_dialog_is_refused() -> None:
    """A 2xx with another To tag belongs to another dialog (a fork)."""
    invite = request("INVITE")
    dialog = Dialog.from_uac(invite, answer(invite, 180, tag="a"))
    with pytest.raises(DialogError):
        dialog.update_from_response(answer(invite, 200, tag="b"))


# --- forking --------------------------------------------------------------------------


def test_forked_2xx_give_two_dialogs_each_acked_and_the_extra_to_bye() -> None:
    """§13.2.2.4: forked 2xx give two dialogs, each ACKed, the second one to BYE."""
    invite = request("INVITE", cseq=5)
    forks = DialogSet(invite)
    first = forks.on_response(answer(invite, 200, tag="fork-a", contact="<sip:bob@192.0.2.1>"))
    second = forks.on_response(answer(invite, 200, tag="fork-b", contact="<sip:bob@192.0.2.2>"))
    assert first is not None and second is not None and first is not second
    assert [d.remote_tag for d in forks.confirmed] == ["fork-a", "fork-b"]
    ok_a, ok_b = (answer(invite, 200, tag=t) for t in ("fork-a", "fork-b"))
    ack_a = first.ack_for(ok_a, via=VIA)
    ack_b = second.ack_for(ok_b, via="SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKb")
    assert (ack_a.to_tag, ack_a.uri_text) == ("fork-a", "sip:bob@192.0.2.1")
    assert (ack_b.to_tag, ack_b.uri_text) == ("fork-b", "sip:bob@192.0.2.2")
    assert ack_a.cseq.seq == ack_b.cseq.seq == 5
    assert forks.extras(first) == [second]
    bye = second.create_request("BYE", via=VIA)
    assert bye.to_tag == "fork-b" and bye.cseq.seq == 6


def test_fork_retransmission_updates_the_same_dialog() -> None:
    """A 1xx then 2xx with the same tag feed one dialog; the 2xx confirms it."""
    invite = request("INVITE")
    forks = DialogSet(invite)
    early = forks.on_response(answer(invite, 180, tag="a"))
    assert forks.on_response(answer(invite, 100, tag=None)) is None
    assert forks.on_response(answer(invite, 200, tag="a")) is early
    assert early is not None and early.confirmed
    assert len(forks.dialogs) == 1


def test_early_forks_end_on_final_failure_or_when_the_transaction_ends() -> None:
    """§13.2.2.3: early forks end on a 3xx–6xx or finish(); confirmed ones stay."""
    invite = request("INVITE")
    forks = DialogSet(invite)
    forks.on_response(answer(invite, 180, tag="a"))
    forks.on_response(answer(invite, 180, tag="b"))
    assert forks.on_response(answer(invite, 480, tag="b")) is None
    assert forks.early == []
    forks = DialogSet(invite)
    ringing = forks.on_response(answer(invite, 180, tag="a"))
    answered = forks.on_response(answer(invite, 200, tag="b"))
    assert forks.finish() == [ringing]
    assert answered is not None and answered.confirmed
    assert ringing is not None and ringing.terminated


def test_dialog_id_of_request_and_response_agree() -> None:
    """DialogId: (Call-ID, To, From) for requests in, (Call-ID, From, To) for responses."""
    bye = request("BYE", to_tag="bobtag")
    assert DialogId.of_request(bye) == DialogId(CALL_ID, "bobtag", ALICE_TAG)
    ok = answer(request("INVITE"), 200)
    assert DialogId.of_response(ok) == DialogId(CALL_ID, ALICE_TAG, "bobtag")


def test_via_object_is_accepted() -> None:
    """create_request takes a Via value as well as its text."""
    via = Via.build("udp", "192.0.2.1", 5060, "z9hG4bKvia")
    assert uac_dialog().create_request("BYE", via=via).top_via.branch == "z9hG4bKvia"
