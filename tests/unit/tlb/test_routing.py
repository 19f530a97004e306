"""Unit tests of :mod:`telavox.tlb.routing`: rendezvous hashing, pins, AOR
forms and the longest-prefix match of numbers."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from telavox.records import PoolMember
from telavox.tlb.routing import Router, pick, rank, user_part, weight

KEYS = [str(1000 + i) for i in range(3000)]


def servers(*names: str) -> list[PoolMember]:
    return [PoolMember(name, f"udp:127.0.0.{i + 1}:5070") for i, name in enumerate(names)]


def router(**kw: object) -> Router:
    gateways = [PoolMember(name, f"udp:127.0.1.{i + 1}:5080")
                for i, name in enumerate(("tdc1", "tdc2", "intl", "nordic"))]
    prefixes = {"tdc1": ["+46"], "tdc2": ["+46"], "intl": [""], "nordic": ["+4", "+4687"]}
    return Router(servers("sip1", "sip2", "sip3"), gateways, prefixes, **kw)  # type: ignore[arg-type]


def placement(r: Router) -> dict[str, str | None]:
    out = {}
    for key in KEYS:
        member = r.locate(key)
        out[key] = None if member is None else member.name
    return out


def test_weight_is_stable() -> None:
    """The weight is a fixed function of name and key (not Python's salted hash)."""
    assert weight("sip1", "1001") == weight("sip1", "1001")
    assert weight("sip1", "1001") != weight("sip2", "1001")
    assert weight("sip1", "1001") != weight("sip1", "1002")


def test_weight_known_value() -> None:
    """The weight is BLAKE2b-64 of name NUL key, so every process agrees."""
    expected = int.from_bytes(hashlib.blake2b(b"sip1\x001001", digest_size=8).digest(), "big")
    assert weight("sip1", "1001") == expected


def test_distribution_roughly_even() -> None:
    """3,000 keys over 3 members land within 10% of an even third each."""
    counts = Counter(placement(router()).values())
    assert set(counts) == {"sip1", "sip2", "sip3"}
    for n in counts.values():
        assert 900 <= n <= 1100, counts


def test_only_keys_of_a_down_member_move_and_return() -> None:
    """Only a down member's keys move, all others stay, and they return with it."""
    r = router()
    before = placement(r)
    assert r.set_up("sip2", False)
    during = placement(r)
    for key in KEYS:
        if before[key] == "sip2":
            assert during[key] in ("sip1", "sip3")
        else:
            assert during[key] == before[key]
    moved = Counter(during[k] for k in KEYS if before[k] == "sip2")
    assert min(moved.values()) > 0.3 * sum(moved.values())  # spread, not dumped on one
    assert r.set_up("sip2", True)
    assert placement(r) == before


def test_drained_member_takes_no_keys() -> None:
    """A drained member takes no keys and gets them back when undrained."""
    r = router()
    before = placement(r)
    assert r.set_drained("sip1", True)
    assert "sip1" not in placement(r).values()
    assert not r.set_drained("sip1", True)
    r.set_drained("sip1", False)
    assert placement(r) == before


def test_no_member_available_gives_none() -> None:
    """With every SIP server down (or none configured) nothing is located."""
    r = router()
    for name in ("sip1", "sip2", "sip3"):
        r.set_up(name, False)
    assert r.locate("1001") is None
    assert Router([]).locate("1001") is None
    assert pick("1001", []) is None


def test_rank_orders_every_member() -> None:
    """rank lists every member, the key's choice first (what pick returns)."""
    members = servers("a", "b", "c", "d")
    ranked = rank("1001", members)
    assert sorted(m.name for m in ranked) == ["a", "b", "c", "d"]
    assert pick("1001", members) == ranked[0]


def test_pins_win_and_fall_back() -> None:
    """A pin wins while its member is available, else the key is hashed."""
    r = router()
    hashed = r.locate("1001")
    assert hashed is not None
    other = next(n for n in ("sip1", "sip2", "sip3") if n != hashed.name)
    r.set_pins({"1001": other, "800": other})
    assert r.locate("1001").name == other  # type: ignore[union-attr]
    assert r.locate("sip:800@pbx.example.test").name == other  # type: ignore[union-attr]
    r.set_up(other, False)
    assert r.locate("1001") == hashed
    r.set_up(other, True)
    r.set_drained(other, True)
    assert r.locate("1001") == hashed
    r.set_drained(other, False)
    assert r.locate("1001").name == other  # type: ignore[union-attr]


def test_pins_to_unknown_members_are_ignored() -> None:
    """A pin naming no SIP server of the pool (e.g. a gateway) is not used."""
    r = router(pins={"1001": "nosuch", "1002": "tdc1"})
    assert r.pins == {}
    assert r.locate("1001") is not None


@pytest.mark.parametrize("aor", ["1001", "1001@pbx.example.test", "sip:1001@pbx.example.test",
                                 "SIP:1001@pbx.example.test;transport=tcp",
                                 "sips:1001@10.0.0.1:5061", "<sip:1001@pbx.example.test>",
                                 '"Alice" <sip:1001@pbx.example.test>', " 1001 ",
                                 "sip:%31%30%30%31@pbx.example.test"])
def test_aor_forms(aor: str) -> None:
    """Every way of writing an AOR gives the user part, and so the same member."""
    assert user_part(aor) == "1001"
    r = router()
    assert r.locate(aor) == r.locate("1001")


def test_user_part_without_user() -> None:
    """Text with no '@' after the scheme is taken whole, parameters dropped."""
    assert user_part("sip:800") == "800"
    assert user_part("main;x=1") == "main"
    assert user_part("tel:+46812345678") == "+46812345678"


def names(members: list[PoolMember]) -> list[str]:
    return [m.name for m in members]


def test_longest_prefix_first_then_shorter() -> None:
    """Longest prefix's gateways first, in config order, then shorter ones."""
    r = router()
    assert names(r.locate_number("+46812345678")) == ["tdc1", "tdc2", "nordic", "intl"]
    assert names(r.locate_number("+4687654321")) == ["nordic", "tdc1", "tdc2", "intl"]
    assert names(r.locate_number("+4712345678")) == ["nordic", "intl"]
    assert names(r.locate_number("+15551234567")) == ["intl"]


def test_prefix_without_fallback() -> None:
    """With prefix_fallback off only the longest prefix's gateways count."""
    r = router(prefix_fallback=False)
    assert names(r.locate_number("+46812345678")) == ["tdc1", "tdc2"]
    r.set_up("tdc1", False)
    r.set_up("tdc2", False)
    assert r.locate_number("+46812345678") == []
    assert names(r.gateways_for("+46812345678")) == ["tdc1", "tdc2"]


def test_unavailable_gateways_are_skipped() -> None:
    """Down and drained gateways are left out; the order of the rest stays."""
    r = router()
    r.set_up("tdc1", False)
    r.set_drained("nordic", True)
    assert names(r.locate_number("+46812345678")) == ["tdc2", "intl"]
    assert names(r.gateways_for("+46812345678")) == ["tdc1", "tdc2", "nordic", "intl"]


def test_no_gateway_matches() -> None:
    """Without a catch-all prefix an unmatched number has no gateways."""
    r = Router(servers("sip1"), [PoolMember("tdc1", "udp:127.0.1.1:5080")], {"tdc1": ["+46"]})
    assert r.locate_number("+15551234567") == []
    assert r.gateways_for("+15551234567") == []
    assert names(r.locate_number(" +46812345678 ")) == ["tdc1"]


def test_pool_order_and_duplicates() -> None:
    """pool() is SIP servers then gateways in order; duplicate names fail."""
    assert names(router().pool()) == ["sip1", "sip2", "sip3", "tdc1", "tdc2", "intl", "nordic"]
    with pytest.raises(ValueError, match="used twice"):
        Router(servers("a"), [PoolMember("a", "udp:127.0.0.9:5080")])
    with pytest.raises(KeyError):
        router().set_up("nosuch", False)
