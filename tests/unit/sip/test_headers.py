"""The header section (RFC 3261 §7.3): case-insensitive lookups, compact
forms, list splitting, and the editing a proxy does on Via and Route."""

from __future__ import annotations

import pytest

from telavox.sip.grammar import GrammarError, split_commas
from telavox.sip.headers import COMPACT_FORMS, Headers, canonical_name, header_key, is_list_header


def test_lookup_is_case_insensitive() -> None:
    """get, get_all and ``in`` ignore the case of field names."""
    h = Headers.of(("call-id", "abc"), ("X-Custom", "1"), ("x-custom", "2"))
    assert h.get("Call-ID") == h.get("CALL-ID") == "abc"
    assert "CALL-id" in h and "x-CUSTOM" in h and "Missing" not in h
    assert h.get_all("X-CUSTOM") == ["1", "2"]
    assert h.get("Missing") is None and h.get("Missing", "dflt") == "dflt"
    assert 42 not in h


def test_compact_forms_are_the_same_fields() -> None:
    """A compact name (in either case) finds the long one and the other way round."""
    h = Headers.of(("v", "SIP/2.0/UDP a"), ("Via", "SIP/2.0/UDP b"), ("i", "id"), ("L", "0"))
    assert h.get_all("Via") == h.get_all("V") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert h.get("Call-ID") == "id" and h.get("content-length") == "0"
    assert h.remove("v") == 2 and "Via" not in h


def test_known_names_are_written_canonically() -> None:
    """Known names take their canonical spelling (compact forms expanded); others keep theirs."""
    h = Headers.of(("v", "x"), ("cseq", "1 A"), ("WWW-authenticate", "y"), ("X-MiXeD", "z"),
                   ("f", "a"), ("t", "b"), ("m", "c"))
    assert [name for name, _ in h] == ["Via", "CSeq", "WWW-Authenticate", "X-MiXeD", "From",
                                       "To", "Contact"]
    assert canonical_name("l") == "Content-Length"
    assert canonical_name("CALL-ID") == "Call-ID"
    assert canonical_name("X-Odd") == "X-Odd"
    assert header_key("K") == ("supported", "Supported")
    assert header_key("A") == ("accept-contact", "Accept-Contact")


def test_every_compact_form_expands_to_a_known_name() -> None:
    """Each compact form maps to a long name that maps to itself."""
    for short, long in COMPACT_FORMS.items():
        assert len(short) == 1
        assert canonical_name(short) == canonical_name(short.upper()) == long
        assert canonical_name(long.lower()) == long


def test_list_headers() -> None:
    """Via, Route, Contact and option tags are lists; From, Call-ID and unknown fields are not."""
    for name in ("Via", "v", "Route", "Record-Route", "Contact", "m", "Supported", "Allow"):
        assert is_list_header(name)
    for name in ("From", "To", "Call-ID", "CSeq", "Subject", "X-List"):
        assert not is_list_header(name)


def test_values_split_lists_at_top_level_commas() -> None:
    """values() splits every line at top-level commas only, dropping empty elements."""
    h = Headers.of(
        ("Contact", '"Doe, Jane" <sip:jane@example.test;x=a,b>;q=0.5, <sip:j@192.0.2.1>'),
        ("Contact", "sip:third@example.test"),
        ("Contact", ""),
        ("Contact", ", ,"),
        ("Via", "SIP/2.0/UDP a (comment, with comma), SIP/2.0/UDP b"),
        ("Subject", "not, a list"),
    )
    assert h.values("Contact") == [
        '"Doe, Jane" <sip:jane@example.test;x=a,b>;q=0.5',
        "<sip:j@192.0.2.1>",
        "sip:third@example.test",
    ]
    assert h.values("Via") == ["SIP/2.0/UDP a (comment, with comma)", "SIP/2.0/UDP b"]
    assert h.values("Subject") == ["not, a list"]
    assert h.values("Route") == []


def test_parentheses_inside_a_uri_are_not_comments() -> None:
    """'(' in a URI (a legal user-part character) does not hide the next comma."""
    assert split_commas("<sip:a(b@example.test>, <sip:c@example.test>") == [
        "<sip:a(b@example.test>", "<sip:c@example.test>"]


@pytest.mark.parametrize("text", ['"unterminated, x', "<sip:a@b, c", '"a", "b'])
def test_split_commas_rejects_unbalanced_text(text: str) -> None:
    """An unterminated quote or '<' raises GrammarError."""
    with pytest.raises(GrammarError):
        split_commas(text)


def test_split_commas_checks_quotes_without_commas() -> None:
    """A lone element is still checked for an unterminated quote."""
    assert split_commas(' "a" <sip:x> ') == ['"a" <sip:x>']
    with pytest.raises(GrammarError):
        split_commas('"a <sip:x>')


def test_first_value_is_the_first_list_element() -> None:
    """first_value gives values()[0]: lines without elements are passed over."""
    h = Headers.of(("Route", ", "), ("Route", ""), ("Route", "<sip:p1;lr>, <sip:p2;lr>"))
    assert h.first_value("Route") == "<sip:p1;lr>" == h.values("Route")[0]
    assert h.first_value("Via") is None
    assert Headers.of(("Subject", "a, b")).first_value("Subject") == "a, b"


def test_pop_first_value_keeps_the_rest_of_the_line() -> None:
    """pop_first_value takes the first element only; the line goes once it is empty."""
    h = Headers.of(("Via", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("Max-Forwards", "70"),
                   ("Via", "SIP/2.0/UDP c"))
    assert h.pop_first_value("Via") == "SIP/2.0/UDP a"
    assert list(h) == [("Via", "SIP/2.0/UDP b"), ("Max-Forwards", "70"), ("Via", "SIP/2.0/UDP c")]
    assert h.pop_first_value("v") == "SIP/2.0/UDP b"
    assert list(h) == [("Max-Forwards", "70"), ("Via", "SIP/2.0/UDP c")]
    assert h.pop_first_value("Via") == "SIP/2.0/UDP c"
    assert h.pop_first_value("Via") is None
    assert list(h) == [("Max-Forwards", "70")]


def test_pop_first_value_skips_and_drops_empty_lines() -> None:
    """Lines without elements before the first element go with it."""
    h = Headers.of(("Route", ","), ("Route", "<sip:p1;lr>"), ("Route", "<sip:p2;lr>"))
    assert h.pop_first_value("Route") == "<sip:p1;lr>"
    assert h.get_all("Route") == ["<sip:p2;lr>"]
    assert Headers.of(("Route", ", ,")).pop_first_value("Route") is None


def test_pop_first_value_of_a_single_valued_field() -> None:
    """For a field that is not a list, the whole first line is popped."""
    h = Headers.of(("Subject", "a, b"), ("Subject", "c"))
    assert h.pop_first_value("Subject") == "a, b"
    assert h.get_all("Subject") == ["c"]


def test_replace_first_value() -> None:
    """replace_first_value changes the first element only; False when absent."""
    h = Headers.of(("Route", ""), ("Route", "<sip:p1;lr>, <sip:p2;lr>"))
    assert h.replace_first_value("Route", "<sip:new;lr>")
    assert h.get_all("Route") == ["", "<sip:new;lr>, <sip:p2;lr>"]
    h2 = Headers.of(("Via", "SIP/2.0/UDP a"))
    assert h2.replace_first_value("v", "SIP/2.0/TCP b")
    assert list(h2) == [("Via", "SIP/2.0/TCP b")]
    assert not h2.replace_first_value("Route", "<sip:x>")


def test_set_replaces_every_field_where_the_first_stood() -> None:
    """set leaves one field of the name, at the first one's place; appends if absent."""
    h = Headers.of(("X-A", "1"), ("Expires", "10"), ("X-B", "2"), ("expires", "20"))
    h.set("EXPIRES", "30")
    assert list(h) == [("X-A", "1"), ("Expires", "30"), ("X-B", "2")]
    h.set("Max-Forwards", "70")
    assert list(h)[-1] == ("Max-Forwards", "70")


def test_remove_counts_and_keeps_the_rest_in_order() -> None:
    """remove deletes every field of the name and says how many."""
    h = Headers.of(("X-A", "1"), ("Route", "r1"), ("X-B", "2"), ("route", "r2"))
    assert h.remove("ROUTE") == 2
    assert h.remove("Route") == 0
    assert list(h) == [("X-A", "1"), ("X-B", "2")]


def test_add_first_and_insert_at_top() -> None:
    """add(first=True) precedes fields of its name; insert_at_top precedes all fields."""
    h = Headers.of(("Max-Forwards", "70"), ("Route", "<sip:b>"), ("To", "x"))
    h.add("Route", "<sip:a>", first=True)
    h.add("Contact", "<sip:c>", first=True)  # no Contact yet: appended
    h.insert_at_top("Via", "SIP/2.0/UDP top")
    assert list(h) == [("Via", "SIP/2.0/UDP top"), ("Max-Forwards", "70"), ("Route", "<sip:a>"),
                       ("Route", "<sip:b>"), ("To", "x"), ("Contact", "<sip:c>")]


def test_order_of_different_fields_is_kept() -> None:
    """Fields come out in the order they went in, whatever their names."""
    pairs = [("X-Z", "1"), ("Via", "v"), ("X-A", "2"), ("Via", "w"), ("X-M", "3")]
    h = Headers.of(*pairs)
    assert list(h) == pairs and len(h) == 5
    assert [k for k, _, _ in h.entries()] == ["x-z", "via", "x-a", "via", "x-m"]


def test_equality_and_copy() -> None:
    """Equality compares keys and values in order, not spellings; copies are independent."""
    a = Headers.of(("v", "x"), ("X-A", "1"))
    assert a == Headers.of(("Via", "x"), ("x-a", "1"))
    assert a != Headers.of(("X-A", "1"), ("Via", "x"))
    assert a != Headers.of(("Via", "x"), ("X-A", "2"))
    b = a.copy()
    b.add("X-B", "2")
    assert len(a) == 2 and len(b) == 3
    assert (a == "Via: x") is False
    assert "Via" in repr(a)
