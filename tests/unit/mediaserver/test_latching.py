"""Unit tests of latching (symmetric RTP) in :mod:`telavox.mediaserver.relay`
and :mod:`telavox.mediaserver.stream`: who may latch a stream, where media
goes before and after, hijack attempts, re-learning and hold."""

from __future__ import annotations

import pytest

from telavox.records import MediaDirection

from .support import Harness, remote, rtp


@pytest.fixture
def pair() -> Harness:
    """Endpoints a and b, described and connected: a's far end at
    192.0.2.10:4000, b's at 192.0.2.20:6000."""
    h = Harness()
    h.add("a")
    h.add("b")
    h.core.set_remote("a", [remote("192.0.2.10", 4000)], 0.0)
    h.core.set_remote("b", [remote("192.0.2.20", 6000)], 0.0)
    h.core.connect("a", "b")
    return h


def test_before_latching_rtp_goes_to_the_sdp_address(pair: Harness) -> None:
    """Until b's far end has sent anything, media for it goes where its SDP
    says."""
    pair.core.receive_rtp(pair.stream("a"), rtp(1, 160), ("192.0.2.10", 4000), 0.02)
    [(_, addr)] = pair.wire.datagrams("b/0/rtp")
    assert addr == ("192.0.2.20", 6000)


def test_latching_from_the_sdp_address_takes_ip_and_port(pair: Harness) -> None:
    """A packet from the SDP IP but another port (a NAT rewrote it) latches
    the stream to that IP and port; media for that far end goes there, and a
    ``latched`` event names it."""
    a = pair.stream("a")
    pair.core.receive_rtp(a, rtp(1, 160), ("192.0.2.10", 31000), 0.02)
    assert a.latched == ("192.0.2.10", 31000)
    [event] = pair.kinds("latched")
    assert (event.endpoint_id, event.owner, event.detail) == ("a", "call-a", "192.0.2.10:31000")
    pair.core.receive_rtp(pair.stream("b"), rtp(1, 160, ssrc=2), ("192.0.2.20", 6000), 0.03)
    [(_, addr)] = pair.wire.datagrams("a/0/rtp")
    assert addr == ("192.0.2.10", 31000)


def test_latching_from_the_signalling_address() -> None:
    """Behind a NAT the SDP holds a private address: a packet from the IP the
    SIP came from latches the stream."""
    h = Harness()
    h.add("a")
    h.core.set_remote("a", [remote("10.0.0.5", 4000, signalling="198.51.100.7")], 0.0)
    a = h.stream("a")
    h.core.receive_rtp(a, rtp(1, 160), ("198.51.100.7", 40002), 0.0)
    assert a.latched == ("198.51.100.7", 40002)
    assert a.dest == ("198.51.100.7", 40002)


def test_a_stranger_before_latching_is_ignored(pair: Harness) -> None:
    """Before latching, a packet from an IP that is neither the SDP nor the
    signalling address neither latches nor is relayed; the real far end
    latches afterwards."""
    a = pair.stream("a")
    pair.core.receive_rtp(a, rtp(1, 160, ssrc=0x666), ("203.0.113.66", 4000), 0.0)
    assert a.latched is None
    assert pair.wire.sent == []
    assert pair.core.counters["dropped_unlatched"] == 1
    pair.core.receive_rtp(a, rtp(1, 160), ("192.0.2.10", 4000), 0.02)
    assert a.latched == ("192.0.2.10", 4000)
    assert len(pair.wire.datagrams("b/0/rtp")) == 1


def test_a_stranger_after_latching_cannot_hijack(pair: Harness) -> None:
    """After latching, packets from another IP, or the same IP and another
    port, are dropped and counted; the latch and the destination stay."""
    a = pair.stream("a")
    pair.core.receive_rtp(a, rtp(1, 160), ("192.0.2.10", 4000), 0.0)
    pair.core.receive_rtp(a, rtp(2, 320, ssrc=0x666), ("203.0.113.66", 4000), 0.02)
    pair.core.receive_rtp(a, rtp(3, 480, ssrc=0x666), ("192.0.2.10", 4444), 0.04)
    assert a.latched == ("192.0.2.10", 4000)
    assert pair.core.counters["dropped_stranger"] == 2
    assert len(pair.wire.datagrams("b/0/rtp")) == 1
    assert a.packets_in == 1


def test_new_remote_address_reopens_learning(pair: Harness) -> None:
    """A re-INVITE moving the media (set_remote with another address) forgets
    the latch: the new address latches, the old one is a stranger."""
    a = pair.stream("a")
    pair.core.receive_rtp(a, rtp(1, 160), ("192.0.2.10", 4000), 0.0)
    pair.core.set_remote("a", [remote("192.0.2.99", 5000)], 1.0)
    assert a.latched is None and a.dest == ("192.0.2.99", 5000)
    assert pair.core.counters["relearned"] == 1
    pair.core.receive_rtp(a, rtp(2, 320), ("192.0.2.10", 4000), 1.02)
    assert a.latched is None
    pair.core.receive_rtp(a, rtp(3, 480), ("192.0.2.99", 5002), 1.04)
    assert a.latched == ("192.0.2.99", 5002)
    pair.core.receive_rtp(a, rtp(4, 640), ("192.0.2.10", 4000), 1.06)
    assert pair.core.counters["dropped_stranger"] == 1


def test_same_remote_again_keeps_the_latch(pair: Harness) -> None:
    """The same address and port again (a codec change, hold and resume)
    keeps the latch."""
    a = pair.stream("a")
    pair.core.receive_rtp(a, rtp(1, 160), ("192.0.2.10", 31000), 0.0)
    pair.core.set_remote("a", [remote("192.0.2.10", 4000, direction=MediaDirection.SENDONLY)],
                         1.0)
    pair.core.set_remote("a", [remote("192.0.2.10", 4000)], 2.0)
    assert a.latched == ("192.0.2.10", 31000)
    assert a.dest == ("192.0.2.10", 31000)


@pytest.mark.parametrize("described", [
    remote("192.0.2.20", 6000, direction=MediaDirection.SENDONLY),
    remote("192.0.2.20", 6000, direction=MediaDirection.INACTIVE),
    remote("0.0.0.0", 6000),
    remote(None, 6000),
    remote("192.0.2.20", 0),
], ids=["sendonly", "inactive", "c=0.0.0.0", "no-address", "port-0"])
def test_hold_sends_nothing(pair: Harness, described: object) -> None:
    """When b's far end does not receive (it holds with sendonly or
    inactive, the old c=0.0.0.0 hold, a refused stream) nothing is sent to
    it, even after it latched; the packets are counted as held."""
    b = pair.stream("b")
    pair.core.receive_rtp(b, rtp(1, 160, ssrc=2), ("192.0.2.20", 6000), 0.0)
    pair.core.set_remote("b", [described], 1.0)  # type: ignore[list-item]
    pair.wire.clear()
    pair.core.receive_rtp(pair.stream("a"), rtp(1, 160), ("192.0.2.10", 4000), 1.02)
    assert pair.wire.datagrams("b/0/rtp") == []
    assert pair.core.counters["dropped_hold"] == 1


def test_recvonly_far_end_is_sent_to(pair: Harness) -> None:
    """A far end that wrote recvonly (we hold it) still receives."""
    pair.core.set_remote("b", [remote("192.0.2.20", 6000, direction=MediaDirection.RECVONLY)],
                         1.0)
    pair.core.receive_rtp(pair.stream("a"), rtp(1, 160), ("192.0.2.10", 4000), 1.02)
    assert len(pair.wire.datagrams("b/0/rtp")) == 1


def test_nothing_latches_before_a_description() -> None:
    """Before set_remote nobody may latch: every packet is dropped."""
    h = Harness()
    h.add("a")
    h.core.receive_rtp(h.stream("a"), rtp(1, 160), ("192.0.2.10", 4000), 0.0)
    assert h.stream("a").latched is None
    assert h.core.counters["dropped_unlatched"] == 1


def test_garbage_does_not_latch() -> None:
    """A datagram that is not RTP version 2 from the right IP does not latch."""
    h = Harness()
    h.add("a")
    h.core.set_remote("a", [remote()], 0.0)
    h.core.receive_rtp(h.stream("a"), b"\x00" * 20, ("192.0.2.10", 4000), 0.0)
    h.core.receive_rtp(h.stream("a"), b"\x80", ("192.0.2.10", 4000), 0.0)
    assert h.stream("a").latched is None
    assert h.core.counters["dropped_malformed"] == 2


def test_rtcp_latches_on_its_own(pair: Harness) -> None:
    """RTCP latches its own source by the same rules, and a stranger's RTCP
    is dropped."""
    a = pair.stream("a")
    rr = bytes.fromhex("81c90007") + (0x1111).to_bytes(4, "big") + bytes(24)
    pair.core.receive_rtcp(a, rr, ("203.0.113.66", 4001), 0.0)
    assert a.latched_rtcp is None
    pair.core.receive_rtcp(a, rr, ("192.0.2.10", 4101), 0.0)
    assert a.latched_rtcp == ("192.0.2.10", 4101)
    pair.core.receive_rtcp(a, rr, ("192.0.2.10", 4001), 0.0)
    assert pair.core.counters["dropped_unlatched"] == 1
    assert pair.core.counters["dropped_stranger"] == 1
    assert pair.core.counters["rtcp_in"] == 1
