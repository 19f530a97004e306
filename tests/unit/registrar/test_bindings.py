"""The location table, sans-IO: RFC 3261 §10.3 with RFC 5626 and RFC 3327,
driven by parsed REGISTER texts and explicit time."""

from __future__ import annotations

import attrs
import pytest

from telavox.records import BindingRecord
from telavox.registrar.bindings import (
    ChangeKind,
    LocationTable,
    Refusal,
    RegisterResult,
    Rules,
    canonical_aor,
    split_aor,
)
from telavox.sip.message import Request
from telavox.sip.parser import parse_message
from telavox.sip.transaction import Source

NOW = 1_700_000_000.0
DOMAIN = "pbx.example.test"
RULES = Rules(min_expires=60, max_expires=3600, default_expires=1800, max_contacts=3)
UDP = Source("udp", "192.0.2.10", 5060)
TCP = Source("tcp", "192.0.2.20", 40001, flow="flow-7")
INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'


def register(*contacts: str, call_id: str = "reg-1@phone", cseq: int = 1,
             expires: int | None = None, extra: str = "", user: str = "1001") -> Request:
    """A REGISTER for ``user`` with one Contact line per element."""
    lines = "".join(f"Contact: {c}\r\n" for c in contacts)
    exp = f"Expires: {expires}\r\n" if expires is not None else ""
    text = (
        f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"To: <sip:{user}@{DOMAIN}>\r\n"
        f"From: <sip:{user}@{DOMAIN}>;tag=f1\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} REGISTER\r\n"
        "User-Agent: Deskphone/2.1\r\n"
        f"{lines}{exp}{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(text)
    assert isinstance(msg, Request)
    return msg


def apply(table: LocationTable, request: Request, now: float = NOW,
          source: Source = UDP, rules: Rules = RULES) -> RegisterResult:
    return table.register(request, source, "1001", now, rules)


def kinds(result: RegisterResult) -> list[str]:
    return [c.kind.value for c in result.changes]


@pytest.fixture
def table() -> LocationTable:
    return LocationTable(DOMAIN)


# -- expiry values ---------------------------------------------------------------------


def test_new_binding_keeps_what_the_proxy_needs(table: LocationTable) -> None:
    """A first REGISTER adds a binding with source, User-Agent, Call-ID, CSeq, expiry."""
    result = apply(table, register("<sip:1001@192.0.2.10:5060>", expires=600))
    assert (result.status, result.reason) == (200, "OK")
    assert kinds(result) == ["registered"]
    (b,) = result.bindings
    assert b.aor == f"sip:1001@{DOMAIN}"
    assert str(b.contact) == "<sip:1001@192.0.2.10:5060>"
    assert b.expires_at == NOW + 600
    assert (b.source, b.flow, b.user_agent) == ("udp:192.0.2.10:5060", "", "Deskphone/2.1")
    assert (b.call_id, b.cseq) == ("reg-1@phone", 1)
    assert b.header_value(NOW + 100) == "<sip:1001@192.0.2.10:5060>;expires=500"


def test_default_expiry_when_none_given(table: LocationTable) -> None:
    """Without an expires parameter or Expires header the default applies."""
    (b,) = apply(table, register("<sip:1001@192.0.2.10>")).bindings
    assert b.expires_at == NOW + RULES.default_expires


def test_contact_parameter_beats_expires_header(table: LocationTable) -> None:
    """A contact's expires parameter wins over the Expires header (§10.3 step 7)."""
    result = apply(table, register("<sip:1001@a.example>;expires=120", "<sip:1001@b.example>",
                                   expires=300))
    assert sorted(b.expires_at - NOW for b in result.bindings) == [120, 300]


def test_longer_than_maximum_is_cut_down(table: LocationTable) -> None:
    """An expiry above max_expires is granted as max_expires."""
    (b,) = apply(table, register("<sip:1001@192.0.2.10>", expires=86400)).bindings
    assert b.expires_at == NOW + RULES.max_expires


def test_too_brief_is_423_with_min_expires(table: LocationTable) -> None:
    """A non-zero expiry below min_expires is refused with 423 and Min-Expires; nothing changes."""
    result = apply(table, register("<sip:1001@192.0.2.10>;expires=30"))
    assert (result.status, result.reason, result.min_expires) == (423, "Interval Too Brief", 60)
    assert result.refusal is Refusal.INTERVAL_TOO_BRIEF
    assert table.lookup("1001", NOW) == []
    assert table.take_changes() == ([], [])


def test_invalid_contact_wins_over_423(table: LocationTable) -> None:
    """A malformed contact is reported as 400 even next to a too brief one."""
    result = apply(table, register("<sip:1001@a.example>;expires=30", "<tel:+4611>"))
    assert (result.status, result.reason) == (400, "Invalid Contact")


def test_zero_is_never_too_brief_and_removes(table: LocationTable) -> None:
    """Expires 0 removes the binding instead of answering 423."""
    apply(table, register("<sip:1001@192.0.2.10>"))
    result = apply(table, register("<sip:1001@192.0.2.10>;expires=0", cseq=2))
    assert result.status == 200
    assert kinds(result) == ["removed"]
    assert result.bindings == ()
    assert table.aor_count == 0


def test_removing_an_unknown_contact_changes_nothing(table: LocationTable) -> None:
    """Expires 0 for a contact that is not bound is accepted and changes nothing."""
    result = apply(table, register("<sip:1001@192.0.2.10>", expires=0))
    assert (result.status, result.changes) == (200, ())


# -- Call-ID and CSeq ------------------------------------------------------------------


def test_refresh_with_higher_cseq(table: LocationTable) -> None:
    """Same Call-ID, higher CSeq: the binding is refreshed, not duplicated."""
    apply(table, register("<sip:1001@192.0.2.10>", expires=600))
    result = apply(table, register("<sip:1001@192.0.2.10>", expires=900, cseq=2), NOW + 300)
    assert kinds(result) == ["refreshed"]
    (b,) = result.bindings
    assert (b.expires_at, b.cseq) == (NOW + 1200, 2)


def test_same_call_id_without_higher_cseq_is_500(table: LocationTable) -> None:
    """Same Call-ID with a CSeq that is not higher aborts with 500 (§10.3 step 7)."""
    apply(table, register("<sip:1001@192.0.2.10>", cseq=5))
    for cseq in (5, 4):
        result = apply(table, register("<sip:1001@192.0.2.10>", expires=0, cseq=cseq))
        assert (result.status, result.reason) == (500, "Out-of-order CSeq")
    assert len(table.lookup("1001", NOW)) == 1


def test_different_call_id_replaces_whatever_the_cseq(table: LocationTable) -> None:
    """A different Call-ID (the phone restarted) updates the binding even with a lower CSeq."""
    apply(table, register("<sip:1001@192.0.2.10>", cseq=50))
    result = apply(table, register("<sip:1001@192.0.2.10>", call_id="reg-2@phone", cseq=1))
    assert kinds(result) == ["refreshed"]
    (b,) = result.bindings
    assert (b.call_id, b.cseq) == ("reg-2@phone", 1)


def test_a_failed_contact_undoes_the_whole_request(table: LocationTable) -> None:
    """When one contact is out of order, the others of the request are not applied."""
    apply(table, register("<sip:1001@a.example>", cseq=5))
    result = apply(table, register("<sip:1001@b.example>", "<sip:1001@a.example>", cseq=5))
    assert result.status == 500
    assert [str(b.contact) for b in table.lookup("1001", NOW)] == ["<sip:1001@a.example>"]


def test_one_contact_twice_in_a_request(table: LocationTable) -> None:
    """A contact listed twice in one REGISTER is not its own out-of-order update."""
    result = apply(table, register("<sip:1001@a.example>", "<sip:1001@A.EXAMPLE>;expires=90"))
    assert result.status == 200
    (b,) = result.bindings
    assert b.expires_at == NOW + 90


# -- matching --------------------------------------------------------------------------


def test_contacts_compare_as_uris(table: LocationTable) -> None:
    """Host case and transport case do not make a new binding; user case does (§19.1.4)."""
    apply(table, register("<sip:alice@PC33.example.com:5060;transport=tcp>"))
    result = apply(table, register("<sip:alice@pc33.example.com:5060;transport=TCP>", cseq=2))
    assert kinds(result) == ["refreshed"]
    result = apply(table, register("<sip:Alice@pc33.example.com:5060;transport=tcp>", cseq=3))
    assert kinds(result) == ["registered"]
    assert len(result.bindings) == 2


def test_q_orders_bindings(table: LocationTable) -> None:
    """Bindings are listed best q first; equal q keep registration order."""
    apply(table, register("<sip:1001@a.example>;q=0.5", "<sip:1001@b.example>;q=1.0",
                          "<sip:1001@c.example>;q=0.5"))
    names = [b.contact.uri.host for b in table.lookup("1001", NOW)]  # type: ignore[union-attr]
    assert names == ["b.example", "a.example", "c.example"]
    (best, second, _) = table.lookup("1001", NOW)
    assert best.header_value(NOW) == "<sip:1001@b.example>;expires=1800"
    assert second.header_value(NOW) == "<sip:1001@a.example>;q=0.5;expires=1800"


def test_outbound_instance_and_reg_id_replace_across_uris(table: LocationTable) -> None:
    """RFC 5626: the same +sip.instance and reg-id replace a binding whose URI differs."""
    first = f"<sip:1001@192.0.2.20:40001;transport=tcp>;+sip.instance={INSTANCE};reg-id=1"
    apply(table, register(first), source=TCP)
    moved = f"<sip:1001@198.51.100.7:50123;transport=tcp>;+sip.instance={INSTANCE};reg-id=1"
    result = apply(table, register(moved, call_id="new-call", cseq=1), source=TCP)
    assert result.status == 200
    assert kinds(result) == ["removed", "registered"]
    (b,) = table.lookup("1001", NOW)
    assert b.contact.uri.host == "198.51.100.7"  # type: ignore[union-attr]
    assert (b.instance, b.reg_id) == (INSTANCE, 1)
    upserts, removals = table.take_changes()
    assert [r.contact for r in upserts] == [moved]
    assert removals == [(f"sip:1001@{DOMAIN}", first)]


def test_outbound_other_reg_id_is_a_second_flow(table: LocationTable) -> None:
    """RFC 5626: another reg-id of the same instance is another binding, same URI or not."""
    contact = "<sip:1001@192.0.2.20:40001;transport=tcp>;+sip.instance={0};reg-id={1}"
    apply(table, register(contact.format(INSTANCE, 1)), source=TCP)
    result = apply(table, register(contact.format(INSTANCE, 2), cseq=2), source=TCP)
    assert kinds(result) == ["registered"]
    assert {b.reg_id for b in result.bindings} == {1, 2}


def test_reg_id_without_instance_is_plain(table: LocationTable) -> None:
    """A reg-id without +sip.instance is ignored: the contact binds by URI."""
    (b,) = apply(table, register("<sip:1001@a.example>;reg-id=1")).bindings
    assert b.reg_id == 0
    assert b.outbound is None


# -- Contact: * ------------------------------------------------------------------------


def test_star_with_expires_zero_removes_all(table: LocationTable) -> None:
    """Contact * with Expires: 0 removes every binding of the AOR."""
    apply(table, register("<sip:1001@a.example>", "<sip:1001@b.example>"))
    result = apply(table, register("*", expires=0, cseq=2))
    assert result.status == 200
    assert kinds(result) == ["removed", "removed"]
    assert table.lookup("1001", NOW) == []


def test_star_rules(table: LocationTable) -> None:
    """* must stand alone, needs Expires: 0, and obeys the CSeq check."""
    apply(table, register("<sip:1001@a.example>", cseq=3))
    result = apply(table, register("*", "<sip:1001@b.example>", expires=0, cseq=4))
    assert (result.status, result.reason) == (400, "Contact * with other contacts")
    for expires in (None, 60):
        result = apply(table, register("*", expires=expires, cseq=4))
        assert (result.status, result.reason) == (400, "Contact * needs Expires: 0")
    result = apply(table, register("*", expires=0, cseq=3))
    assert (result.status, result.reason) == (500, "Out-of-order CSeq")
    assert len(table.lookup("1001", NOW)) == 1


# -- limits and malformed input --------------------------------------------------------


def test_max_contacts_refuses_the_whole_request(table: LocationTable) -> None:
    """More contacts than max_contacts after the request: 403, nothing applied."""
    apply(table, register("<sip:1001@a.example>", "<sip:1001@b.example>"))
    result = apply(table, register("<sip:1001@c.example>", "<sip:1001@d.example>", cseq=2))
    assert (result.status, result.reason) == (403, "Too many contacts")
    assert len(table.lookup("1001", NOW)) == 2
    result = apply(table, register("<sip:1001@c.example>", "<sip:1001@a.example>;expires=0",
                                   "<sip:1001@d.example>", cseq=3))
    assert result.status == 200  # one removed, two added: three after the request
    assert len(result.bindings) == 3


def test_at_the_limit_refreshes_still_work(table: LocationTable) -> None:
    """A refresh that does not add a binding passes even above a lowered limit."""
    apply(table, register("<sip:1001@a.example>", "<sip:1001@b.example>"))
    result = apply(table, register("<sip:1001@a.example>", cseq=2),
                   rules=attrs.evolve(RULES, max_contacts=1))
    assert result.status == 200


@pytest.mark.parametrize("contact", [
    "<tel:+46812345678>",
    "<sip:1001@a.example>;expires=soon",
    "<sip:1001@a.example>;q=2",
    "<sip:1001@a.example>;q=high",
    f"<sip:1001@a.example>;+sip.instance={INSTANCE};reg-id=0",
    "<sip:1001@a.example",
])
def test_invalid_contact_is_400(table: LocationTable, contact: str) -> None:
    """Contacts that are not SIP URIs or carry bad parameters are refused with 400."""
    result = apply(table, register(contact))
    assert (result.status, result.reason) == (400, "Invalid Contact")


def test_malformed_expires_header_is_400(table: LocationTable) -> None:
    """A non-numeric Expires header is refused with 400."""
    result = apply(table, register("<sip:1001@a.example>", extra="Expires: later\r\n"))
    assert (result.status, result.reason) == (400, "Invalid Expires")


def test_query_lists_bindings_without_changes(table: LocationTable) -> None:
    """A REGISTER without Contact answers the current bindings and changes nothing."""
    apply(table, register("<sip:1001@a.example>", expires=600))
    table.take_changes()
    result = apply(table, register(cseq=2), NOW + 100)
    assert (result.status, result.changes) == (200, ())
    assert [b.remaining(NOW + 100) for b in result.bindings] == [500]
    assert table.take_changes() == ([], [])


# -- source, flow, Path ----------------------------------------------------------------


def test_path_flow_and_source_are_kept(table: LocationTable) -> None:
    """Path (in order), the TCP flow and the source address reach the binding and its record."""
    extra = ("Path: <sip:edge1.example;lr>\r\n"
             "Path: <sip:edge2.example;lr;ob>, <sip:edge3.example;lr>\r\n")
    (b,) = apply(table, register("<sip:1001@192.0.2.20;transport=tcp>", extra=extra),
                 source=TCP).bindings
    assert b.path == ("<sip:edge1.example;lr>", "<sip:edge2.example;lr;ob>",
                      "<sip:edge3.example;lr>")
    assert (b.source, b.flow) == ("tcp:192.0.2.20:40001", "flow-7")
    record = b.to_record()
    assert (record.connection, record.path, record.source) == ("flow-7", b.path, b.source)


# -- expiry ----------------------------------------------------------------------------


def test_expire_and_next_deadline(table: LocationTable) -> None:
    """next_deadline follows the earliest expiry; expire removes exactly the due bindings."""
    assert table.next_deadline() is None
    apply(table, register("<sip:1001@a.example>;expires=100", "<sip:1001@b.example>;expires=300"))
    assert table.next_deadline() == NOW + 100
    assert table.expire(NOW + 99.9) == []
    (gone,) = table.expire(NOW + 100)
    assert str(gone.contact) == "<sip:1001@a.example>"
    assert table.next_deadline() == NOW + 300
    assert table.binding_count == 1
    table.expire(NOW + 300)
    assert (table.next_deadline(), table.aor_count) == (None, 0)


def test_refresh_moves_the_deadline(table: LocationTable) -> None:
    """A refreshed binding's old deadline is skipped; it expires at the new one."""
    apply(table, register("<sip:1001@a.example>", expires=100))
    apply(table, register("<sip:1001@a.example>", expires=500, cseq=2), NOW + 50)
    assert table.next_deadline() == NOW + 550
    assert table.expire(NOW + 200) == []
    assert len(table.expire(NOW + 550)) == 1


def test_lookup_hides_expired_bindings_not_yet_collected(table: LocationTable) -> None:
    """lookup never returns an expired binding; a REGISTER reports it as expired."""
    apply(table, register("<sip:1001@a.example>", expires=100))
    assert table.lookup("1001", NOW + 100) == []
    result = apply(table, register("<sip:1001@b.example>", cseq=2), NOW + 150)
    assert kinds(result) == ["expired", "registered"]
    assert len(result.bindings) == 1


# -- store -----------------------------------------------------------------------------


def test_take_changes_upserts_then_removals(table: LocationTable) -> None:
    """take_changes hands upserts, then removals, once each."""
    apply(table, register("<sip:1001@a.example>;expires=100"))
    upserts, removals = table.take_changes()
    assert [(r.aor, r.contact, r.expires_at) for r in upserts] == [
        (f"sip:1001@{DOMAIN}", "<sip:1001@a.example>", NOW + 100)]
    assert removals == []
    assert table.take_changes() == ([], [])
    table.expire(NOW + 100)
    assert table.take_changes() == ([], [(f"sip:1001@{DOMAIN}", "<sip:1001@a.example>")])


def test_returned_changes_yield_to_newer_ones(table: LocationTable) -> None:
    """A failed write's changes come back unless the key changed again since."""
    apply(table, register("<sip:1001@a.example>", "<sip:1001@b.example>"))
    upserts, removals = table.take_changes()
    apply(table, register("<sip:1001@a.example>", expires=0, cseq=2))
    table.return_changes(upserts, removals)
    upserts, removals = table.take_changes()
    assert [r.contact for r in upserts] == ["<sip:1001@b.example>"]
    assert removals == [(f"sip:1001@{DOMAIN}", "<sip:1001@a.example>")]


def test_record_round_trip_and_restore(table: LocationTable) -> None:
    """Records restore into equal bindings; expired and unreadable ones leave the store."""
    contact = f"<sip:1001@192.0.2.20;transport=tcp>;+sip.instance={INSTANCE};reg-id=1"
    apply(table, register(f"{contact};q=0.7", "<sip:1001@b.example>;expires=60",
                          extra="Path: <sip:edge1.example;lr>\r\n"), source=TCP)
    records, _ = table.take_changes()
    broken = BindingRecord(aor="sip:1002@x", contact="<sip:", expires_at=NOW + 999)
    fresh = LocationTable(DOMAIN)
    restored = fresh.restore([*records, broken], NOW + 100)
    assert len(restored) == 1
    (b,) = fresh.lookup("1001", NOW + 100)
    (original,) = [x for x in table.lookup("1001", NOW) if x.reg_id]
    assert attrs.evolve(b, ident=0) == attrs.evolve(original, ident=0)
    assert b.q == 0.7 and b.path == ("<sip:edge1.example;lr>",)
    upserts, removals = fresh.take_changes()
    assert upserts == []
    assert sorted(removals) == [(f"sip:1001@{DOMAIN}", "<sip:1001@b.example>"),
                                ("sip:1002@x", "<sip:")]
    assert fresh.next_deadline() == NOW + RULES.default_expires


def test_restore_keeps_what_was_registered_since(table: LocationTable) -> None:
    """A stored binding that a REGISTER already replaced is not restored over it."""
    old = BindingRecord(aor=f"sip:1001@{DOMAIN}", contact="<sip:1001@A.example>",
                        expires_at=NOW + 500, call_id="old", cseq=9)
    apply(table, register("<sip:1001@a.example>"))
    table.take_changes()
    assert table.restore([old], NOW) == []
    (b,) = table.lookup("1001", NOW)
    assert b.call_id == "reg-1@phone"
    assert table.take_changes() == ([], [(old.aor, old.contact)])


def test_set_domain_rekeys_the_store(table: LocationTable) -> None:
    """A new domain renames the AOR of every binding and of its store row."""
    apply(table, register("<sip:1001@a.example>"))
    table.take_changes()
    table.set_domain("New.Example")
    upserts, removals = table.take_changes()
    assert [r.aor for r in upserts] == ["sip:1001@new.example"]
    assert removals == [(f"sip:1001@{DOMAIN}", "<sip:1001@a.example>")]
    assert table.lookup("sip:1001@new.example", NOW)


# -- AORs ------------------------------------------------------------------------------


def test_aor_forms() -> None:
    """AORs normalise to the user part (escapes decoded, case kept) and a lower-case domain."""
    assert split_aor("sip:1001@PBX.Example.TEST") == ("1001", "pbx.example.test")
    assert split_aor("<sips:%31001@pbx.example.test>") == ("1001", "pbx.example.test")
    assert split_aor("Alice@pbx") == ("Alice", "pbx")
    assert split_aor("1001") == ("1001", None)
    for bad in ("", "sip:pbx.example.test", "mailto:a@b"):
        with pytest.raises(ValueError):
            split_aor(bad)
    assert canonical_aor("a b", "PBX.example") == "sip:a%20b@pbx.example"


def test_lookup_by_any_aor_form(table: LocationTable) -> None:
    """lookup takes a full AOR or the user part; the user part is case-sensitive."""
    apply(table, register("<sip:1001@a.example>"))
    assert len(table.lookup(f"sip:1001@{DOMAIN.upper()}", NOW)) == 1
    assert len(table.lookup("1001", NOW)) == 1
    assert table.lookup("sip:1002@pbx.example.test", NOW) == []


def test_refusals_carry_status_and_reason() -> None:
    """Every refusal has a 4xx/5xx status and a reason phrase."""
    for refusal in Refusal:
        assert 400 <= refusal.status < 600 and refusal.reason
    assert {k.value for k in ChangeKind} == {"registered", "refreshed", "removed", "expired"}
