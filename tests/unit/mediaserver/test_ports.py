"""Unit tests of :mod:`telavox.mediaserver.ports`: even/odd pairs, random
order, quarantine, exhaustion and pairs another program holds."""

from __future__ import annotations

import random

import pytest

from telavox.interfaces import MediaError
from telavox.mediaserver.ports import PortPool


def bind_ok(rtp: int, rtcp: int) -> tuple[int, int]:
    return rtp, rtcp


def test_pairs_are_even_and_odd_inside_the_range() -> None:
    """Every pair is an even RTP port with RTCP on the next port, both in
    [low, high]; an odd low bound and an even high bound lose their half pairs."""
    pool = PortPool(10001, 10010, rng=random.Random(1))
    assert pool.size == 4
    got = [pool.acquire(0.0, bind_ok)[1] for _ in range(4)]
    assert sorted(rtp for rtp, _ in got) == [10002, 10004, 10006, 10008]
    assert all(rtcp == rtp + 1 and rtp % 2 == 0 for rtp, rtcp in got)


def test_order_is_random() -> None:
    """Two pools with different seeds hand out the pairs in different orders."""
    orders = []
    for seed in (1, 2):
        pool = PortPool(20000, 20199, rng=random.Random(seed))
        orders.append([pool.acquire(0.0, bind_ok)[0] for _ in range(20)])
    assert orders[0] != orders[1]
    assert orders[0] != sorted(orders[0])


def test_exhaustion_is_503() -> None:
    """When every pair is in use the next acquire fails with status 503."""
    pool = PortPool(30000, 30003, rng=random.Random(1))
    pool.acquire(0.0, bind_ok)
    pool.acquire(0.0, bind_ok)
    with pytest.raises(MediaError) as caught:
        pool.acquire(0.0, bind_ok)
    assert caught.value.status == 503
    assert pool.exhausted == 1


def test_released_pair_is_quarantined() -> None:
    """A released pair comes back only after the quarantine."""
    pool = PortPool(30000, 30001, quarantine=4.0)
    port, _ = pool.acquire(0.0, bind_ok)
    pool.release(port, 10.0)
    assert pool.in_use == 0 and pool.quarantined == 1
    with pytest.raises(MediaError):
        pool.acquire(13.9, bind_ok)
    assert pool.acquire(14.0, bind_ok)[0] == port


def test_release_is_idempotent() -> None:
    """Releasing a pair twice (or one never handed out) changes nothing."""
    pool = PortPool(30000, 30001, quarantine=1.0)
    port, _ = pool.acquire(0.0, bind_ok)
    pool.release(port, 0.0)
    pool.release(port, 0.0)
    pool.release(40000, 0.0)
    assert pool.quarantined == 1


def test_pair_held_by_another_program_is_skipped() -> None:
    """A pair whose bind raises OSError is skipped (and quarantined); the
    next free pair is handed out."""
    pool = PortPool(30000, 30003, quarantine=5.0)
    taken = {30000, 30001}

    def bind(rtp: int, rtcp: int) -> str:
        if rtp in taken or rtcp in taken:
            raise OSError("address in use")
        return "bound"

    assert pool.acquire(0.0, bind) == (30002, "bound")
    assert pool.bind_failures in (0, 1)
    with pytest.raises(MediaError):
        pool.acquire(1.0, bind)
    assert pool.bind_failures == 1


def test_other_bind_errors_propagate_and_keep_the_pair() -> None:
    """A bind error that is not OSError propagates and leaves the pair free."""
    pool = PortPool(30000, 30001)

    def bind(rtp: int, rtcp: int) -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        pool.acquire(0.0, bind)
    assert pool.available == 1


def test_empty_range_is_refused() -> None:
    """A range without an even/odd pair is a configuration error."""
    with pytest.raises(ValueError):
        PortPool(30001, 30001)
    with pytest.raises(ValueError):
        PortPool(40000, 30000)


def _free_pairs(count: int) -> int:
    """An even port below the kernel's ephemeral range starting ``count``
    pairs that nobody holds now."""
    import socket

    for _ in range(100):
        low = random.randrange(20000, 30000, 2)
        try:
            for port in range(low, low + 2 * count):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return low
    raise RuntimeError("no free port pairs on 127.0.0.1")


def test_pair_held_by_a_real_socket_is_skipped() -> None:
    """With real sockets: a pair whose RTCP port another socket holds fails
    to bind and the pool hands out the other pair."""
    import socket

    low = _free_pairs(2)
    rtp_of_other = low + 2
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", low + 1))
        pool = PortPool(low, low + 3)
        opened: list[socket.socket] = []

        def bind(rtp: int, rtcp: int) -> int:
            pair = []
            try:
                for port in (rtp, rtcp):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    pair.append(sock)
                    sock.bind(("127.0.0.1", port))
            except OSError:
                for sock in pair:
                    sock.close()
                raise
            opened.extend(pair)
            return rtp

        try:
            port, _ = pool.acquire(0.0, bind)
            with pytest.raises(MediaError):
                pool.acquire(0.0, bind)
        finally:
            for sock in opened:
                sock.close()
        assert port == rtp_of_other
        assert pool.bind_failures == 1
