"""Unit tests of :mod:`telavox.sipproxy.guard`: the rate limiter and the
brute-force guard, driven by explicit times."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.sipproxy.guard import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    AuthGuard,
    Block,
    BlockKind,
    RateLimiter,
    Verdict,
    pair_key,
)

OFFICE = "198.51.100.7"


def verdicts(limiter: RateLimiter, source: str, now: float, n: int) -> list[Verdict]:
    """The verdicts of ``n`` requests from ``source`` all at ``now``."""
    return [limiter.allow(source, now).verdict for _ in range(n)]


# --- RateLimiter -------------------------------------------------------------


def test_burst_admitted_then_refused() -> None:
    """A quiet source gets exactly ``burst`` requests through at once."""
    limiter = RateLimiter(rate=10, burst=20)
    assert verdicts(limiter, "a", 0.0, 20) == [Verdict.ALLOW] * 20
    assert limiter.allow("a", 0.0).verdict is Verdict.REJECT


def test_sustained_rate_after_burst() -> None:
    """Once the burst is spent, exactly ``rate`` requests per second pass."""
    limiter = RateLimiter(rate=10, burst=20)
    verdicts(limiter, "a", 0.0, 20)
    admitted = 0
    for i in range(1, 301):            # 30 per second for 10 s
        admitted += limiter.allow("a", i / 30).allowed
    assert admitted == 100


def test_sustained_at_rate_never_refused() -> None:
    """A source that keeps to ``rate`` is never refused, even after its burst."""
    limiter = RateLimiter(rate=10, burst=5)
    verdicts(limiter, "a", 0.0, 5)
    assert all(limiter.allow("a", i / 10).allowed for i in range(1, 200))


def test_retry_after_counts_refused_requests() -> None:
    """Retry-After is the time the bucket needs to take back what was refused."""
    limiter = RateLimiter(rate=1, burst=10)
    verdicts(limiter, "a", 0.0, 10)
    decisions = [limiter.allow("a", 0.0) for _ in range(3)]
    assert [d.verdict for d in decisions] == [Verdict.REJECT] * 3
    assert [d.retry_after for d in decisions] == [1, 2, 3]
    assert limiter.allow("a", 0.0).rejected


def test_retry_after_at_least_one_second() -> None:
    """Retry-After is whole seconds, never 0, even at a high rate."""
    limiter = RateLimiter(rate=1000, burst=2)
    assert verdicts(limiter, "a", 0.0, 2) == [Verdict.ALLOW] * 2
    decision = limiter.allow("a", 0.0)
    assert decision.rejected and decision.retry_after == 1


def test_admitted_decision_has_no_retry_after() -> None:
    """An admitted request carries no Retry-After."""
    decision = RateLimiter(rate=1, burst=1).allow("a", 0.0)
    assert decision.allowed and not decision.rejected and not decision.dropped
    assert decision.retry_after == 0


def test_far_over_dropped_silently() -> None:
    """The request that makes 2 × burst within the window is dropped, and the next ones."""
    limiter = RateLimiter(rate=1, burst=10)
    got = verdicts(limiter, "a", 0.0, 25)
    assert got[:10] == [Verdict.ALLOW] * 10
    assert got[10:19] == [Verdict.REJECT] * 9
    assert got[19:] == [Verdict.DROP] * 6


def test_flood_above_twice_rate_keeps_dropping() -> None:
    """A source sending at more than twice ``rate`` stays dropped, yet gets ``rate`` through."""
    limiter = RateLimiter(rate=10, burst=10)
    got = [limiter.allow("a", i / 40).verdict for i in range(40 * 20)]   # 40/s for 20 s
    tail = got[40 * 10:]
    assert tail.count(Verdict.ALLOW) == pytest.approx(100, abs=2)
    assert tail.count(Verdict.REJECT) == 0
    assert tail.count(Verdict.DROP) == len(tail) - tail.count(Verdict.ALLOW)


def test_between_rate_and_twice_rate_answered() -> None:
    """A source between ``rate`` and twice ``rate`` is refused politely, never dropped."""
    limiter = RateLimiter(rate=10, burst=10)
    got = [limiter.allow("a", i / 15).verdict for i in range(15 * 20)]   # 15/s for 20 s
    assert Verdict.DROP not in got
    assert got.count(Verdict.REJECT) > 0


def test_drop_ends_when_flood_stops() -> None:
    """After a flood, the source is admitted again once the bucket has refilled."""
    limiter = RateLimiter(rate=10, burst=10)
    verdicts(limiter, "a", 0.0, 100)
    assert limiter.allow("a", 0.0).dropped
    assert verdicts(limiter, "a", 1.0, 10) == [Verdict.ALLOW] * 10
    assert limiter.allow("a", 1.0).rejected


def test_refill_over_time() -> None:
    """Tokens come back at ``rate`` per second, never above ``burst``."""
    limiter = RateLimiter(rate=10, burst=20)
    verdicts(limiter, "a", 0.0, 20)
    assert verdicts(limiter, "a", 0.5, 6) == [Verdict.ALLOW] * 5 + [Verdict.REJECT]
    got = verdicts(limiter, "a", 100.0, 21)
    assert got == [Verdict.ALLOW] * 20 + [Verdict.REJECT]


def test_clock_going_back_gives_nothing() -> None:
    """An earlier ``now`` than the last one refills nothing."""
    limiter = RateLimiter(rate=10, burst=2)
    verdicts(limiter, "a", 5.0, 2)
    assert limiter.allow("a", 1.0).rejected


def test_sources_are_independent() -> None:
    """One source's flood does not touch another source's bucket."""
    limiter = RateLimiter(rate=1, burst=5)
    verdicts(limiter, "a", 0.0, 50)
    assert verdicts(limiter, "b", 0.0, 5) == [Verdict.ALLOW] * 5


def test_office_behind_one_address_passes_with_defaults() -> None:
    """100 phones behind one NAT address re-registering within 2 s all pass the defaults."""
    limiter = RateLimiter(rate=DEFAULT_RATE, burst=DEFAULT_BURST)
    assert (limiter.rate, limiter.burst) == (100.0, 600)
    results = []
    for phone in range(100):
        start = phone * 0.015                       # all start within 1.5 s
        for step in range(3):                       # REGISTER, 401, REGISTER (+ retransmission)
            results.append(limiter.allow(OFFICE, start + step * 0.1))
    assert all(d.allowed for d in results)
    assert limiter.blocked() == []


def test_idle_buckets_forgotten() -> None:
    """A bucket idle for ``idle`` seconds is forgotten by later calls, a few per call."""
    limiter = RateLimiter(rate=100, burst=10, idle=60)
    for i in range(5):
        limiter.allow(f"10.0.0.{i}", 0.0)
    assert len(limiter) == 5
    limiter.allow("other", 59.0)
    assert len(limiter) == 6
    limiter.allow("other", 60.0)
    assert len(limiter) == 4            # two forgotten per call
    limiter.allow("other", 60.0)
    limiter.allow("other", 60.0)
    assert len(limiter) == 1


def test_expire_sweeps_everything_idle() -> None:
    """``expire`` forgets every idle bucket at once and keeps the others."""
    limiter = RateLimiter(rate=100, burst=10, idle=60)
    for i in range(1000):
        limiter.allow(f"s{i}", 0.0)
    limiter.allow("recent", 30.0)
    assert limiter.expire(60.0) == 1000
    assert len(limiter) == 1


def test_forgetting_never_helps_a_source() -> None:
    """``idle`` is raised to the refill time, so a forgotten bucket was full anyway."""
    limiter = RateLimiter(rate=1, burst=100, idle=10)
    assert limiter.idle == 100
    verdicts(limiter, "a", 0.0, 100)
    limiter.allow("b", 50.0)
    assert limiter.allow("a", 50.0).allowed
    assert len(limiter) == 2


def test_cap_evicts_least_recently_seen() -> None:
    """At the cap, a new source evicts the one seen least recently."""
    limiter = RateLimiter(rate=1, burst=2, max_sources=3)
    for source in ("a", "b", "c"):
        limiter.allow(source, 0.0)
    verdicts(limiter, "a", 0.1, 2)          # a is now the most recent, and empty
    limiter.allow("d", 0.2)
    assert len(limiter) == 3
    assert verdicts(limiter, "b", 0.3, 2) == [Verdict.ALLOW] * 2   # b was evicted: full again
    assert limiter.allow("a", 0.3).rejected


def test_default_cap_is_bounded() -> None:
    """The default cap keeps at most 100,000 sources."""
    limiter = RateLimiter()
    for i in range(100_010):
        limiter.allow(str(i), 0.0)
    assert len(limiter) == 100_000


def test_blocked_lists_refused_sources() -> None:
    """``blocked`` lists the sources whose last request was refused."""
    limiter = RateLimiter(rate=1, burst=2)
    verdicts(limiter, "a", 0.0, 3)
    verdicts(limiter, "b", 0.0, 2)
    verdicts(limiter, "c", 0.0, 30)
    assert limiter.blocked() == ["a", "c"]
    assert limiter.blocked(now=0.5) == ["a", "c"]
    assert limiter.blocked(now=1.0) == []
    limiter.allow("a", 1.0)
    assert limiter.blocked() == ["c"]


def test_lift_gives_a_full_bucket() -> None:
    """``lift`` forgets a source: its next request finds a full bucket."""
    limiter = RateLimiter(rate=1, burst=3)
    verdicts(limiter, "a", 0.0, 10)
    assert limiter.lift("a")
    assert not limiter.lift("a")
    assert limiter.blocked() == []
    assert verdicts(limiter, "a", 0.0, 3) == [Verdict.ALLOW] * 3


def test_rate_limiter_rejects_bad_parameters() -> None:
    """Non-positive rate or burst are refused."""
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate=1, burst=0)


def test_configure_changes_rate_and_burst_live() -> None:
    """configure() gives every source the new rate from the next request;
    a bucket fuller than the new burst is cut down to it, and a source
    refused now stays refused."""
    limiter = RateLimiter(rate=10, burst=20)
    verdicts(limiter, "quiet", 0.0, 1)            # 19 tokens left
    verdicts(limiter, "flood", 0.0, 25)           # empty, refused
    limiter.configure(rate=1, burst=3)
    assert (limiter.rate, limiter.burst) == (1.0, 3)
    assert verdicts(limiter, "quiet", 0.0, 4) == [Verdict.ALLOW] * 3 + [Verdict.REJECT]
    assert not limiter.allow("flood", 0.5).allowed
    assert limiter.allow("flood", 1.5).allowed   # 1 per second from now on
    assert verdicts(limiter, "new", 0.0, 4)[-1] is not Verdict.ALLOW


def test_configure_refuses_bad_values_and_keeps_the_old() -> None:
    """A refused configure() changes nothing."""
    limiter = RateLimiter(rate=10, burst=20)
    for rate, burst in ((0, 5), (5, 0), (float("nan"), 5)):
        with pytest.raises(ValueError):
            limiter.configure(rate=rate, burst=burst)
    assert (limiter.rate, limiter.burst) == (10.0, 20)


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300),
       rate=st.integers(min_value=1, max_value=50), burst=st.integers(min_value=1, max_value=30))
def test_admitted_never_exceed_burst_plus_rate(gaps: list[float], rate: int, burst: int) -> None:
    """Over any run, admitted requests never exceed burst + rate × elapsed time."""
    limiter = RateLimiter(rate=rate, burst=burst)
    now = 0.0
    admitted = 0
    for gap in gaps:
        now += gap
        admitted += limiter.allow("a", now).allowed
        assert admitted <= burst + rate * now + 1e-6


# --- AuthGuard ---------------------------------------------------------------


def guard() -> AuthGuard:
    """The guard most tests use: 5 failures per pair, 10 users per source, 600 s."""
    return AuthGuard(max_failures=5, max_failed_users=10, block_time=600)


def test_pair_blocked_after_max_failures() -> None:
    """The pair is blocked at its max_failures-th failure, not before."""
    g = guard()
    for i in range(4):
        assert g.failure(OFFICE, "2001", float(i)) == []
        assert not g.is_blocked(OFFICE, "2001", float(i))
    started = g.failure(OFFICE, "2001", 4.0)
    assert started == [Block(BlockKind.PAIR, "2001@" + OFFICE, 604.0, 5)]
    assert g.is_blocked(OFFICE, "2001", 4.0)


def test_pair_block_is_per_source() -> None:
    """The same username from another address is not blocked."""
    g = guard()
    for i in range(5):
        g.failure(OFFICE, "2001", float(i))
    assert not g.is_blocked("203.0.113.9", "2001", 5.0)


def test_source_blocked_after_distinct_usernames() -> None:
    """max_failed_users distinct usernames failing from one source block the whole source."""
    g = guard()
    for i in range(9):
        assert g.failure(OFFICE, str(2000 + i), float(i)) == []
    assert not g.is_blocked(OFFICE, "2999", 9.0)
    started = g.failure(OFFICE, "2009", 9.0)
    assert started == [Block(BlockKind.SOURCE, OFFICE, 609.0, 10)]
    assert g.is_blocked(OFFICE, "2999", 9.0)            # every username, even untried ones
    assert not g.is_blocked("203.0.113.9", "2999", 9.0)


def test_distinct_usernames_counted_within_block_time() -> None:
    """Usernames that failed longer than block_time ago do not count toward the source block."""
    g = guard()
    for i in range(9):
        g.failure(OFFICE, str(2000 + i), i * 100.0)     # 0 .. 800 s
    assert g.failure(OFFICE, "2009", 900.0) == []
    assert not g.is_blocked(OFFICE, "x", 900.0)


def test_stale_password_phone_does_not_block_its_office() -> None:
    """One phone failing on repeat is blocked alone; its 99 neighbours behind the NAT go on."""
    g = guard()
    limiter = RateLimiter()
    now = 0.0
    for _ in range(60):                                  # retries every 30 s for half an hour
        if not g.is_blocked(OFFICE, "2000", now):
            g.failure(OFFICE, "2000", now)
        now += 30.0
    assert g.is_blocked(OFFICE, "2000", now)
    for phone in range(2001, 2100):
        assert limiter.allow(OFFICE, now).allowed
        assert not g.is_blocked(OFFICE, str(phone), now)
        g.success(OFFICE, str(phone), now)
    assert [b.kind for b in g.blocks(now)] == [BlockKind.PAIR]


def test_unknown_and_known_users_treated_identically() -> None:
    """The same history with unknown usernames gives the same blocks, times and counts."""
    known, unknown = guard(), guard()
    names_known = [str(2000 + i) for i in range(12)]
    names_unknown = [f"nobody{i}" for i in range(12)]
    history_known, history_unknown = [], []
    for step in range(40):
        now = step * 2.0
        pick = step % 12 if step % 3 else 0
        a, b = names_known[pick], names_unknown[pick]
        history_known.append((g_out(known.failure(OFFICE, a, now)),
                              known.is_blocked(OFFICE, a, now)))
        history_unknown.append((g_out(unknown.failure(OFFICE, b, now)),
                                unknown.is_blocked(OFFICE, b, now)))
    assert history_known == history_unknown
    assert g_out(known.blocks(80.0)) == g_out(unknown.blocks(80.0))


def g_out(blocks: list[Block]) -> list[tuple[BlockKind, float, int]]:
    """Blocks without their keys (usernames differ between the compared histories)."""
    return [(b.kind, b.until, b.failures) for b in blocks]


def test_failures_spread_out_do_not_accumulate() -> None:
    """Failures more than block_time apart start the count again."""
    g = guard()
    for i in range(10):
        g.failure(OFFICE, "2001", i * 601.0)
    assert not g.is_blocked(OFFICE, "2001", 6010.0)


def test_success_clears_pair_count_only() -> None:
    """A success clears its pair's failures but not the source's distinct usernames."""
    g = guard()
    for i in range(4):
        g.failure(OFFICE, "2001", float(i))
    g.success(OFFICE, "2001", 4.0)
    for i in range(4):
        g.failure(OFFICE, "2001", 5.0 + i)
    assert not g.is_blocked(OFFICE, "2001", 9.0)
    for i in range(8):
        g.failure(OFFICE, str(3000 + i), 10.0)
    g.success(OFFICE, "3000", 10.0)
    g.failure(OFFICE, "3008", 11.0)                      # tenth distinct username
    assert g.is_blocked(OFFICE, "2001", 11.0)


def test_success_does_not_lift_a_block() -> None:
    """A success reported for a blocked pair leaves the block in force."""
    g = guard()
    for i in range(5):
        g.failure(OFFICE, "2001", float(i))
    g.success(OFFICE, "2001", 5.0)
    assert g.is_blocked(OFFICE, "2001", 5.0)
    g.success(OFFICE, "never-failed", 5.0)
    assert len(g) == 2


def test_blocks_expire_by_themselves() -> None:
    """Pair and source blocks end after block_time, and the counts start again."""
    g = guard()
    for _ in range(5):
        g.failure(OFFICE, "2001", 0.0)
    for i in range(10):
        g.failure("203.0.113.9", str(i), 0.0)
    assert g.is_blocked(OFFICE, "2001", 599.9)
    assert g.is_blocked("203.0.113.9", "x", 599.9)
    assert not g.is_blocked(OFFICE, "2001", 600.0)
    assert not g.is_blocked("203.0.113.9", "x", 600.0)
    assert g.blocks(600.0) == []
    assert g.failure(OFFICE, "2001", 600.0) == []        # a fresh count of five
    assert g.failure("203.0.113.9", "0", 600.0) == []


def test_failures_during_a_block_do_not_prolong_it() -> None:
    """Failures reported while blocked are counted but the end time stays."""
    g = guard()
    for _ in range(5):
        g.failure(OFFICE, "2001", 0.0)
    g.failure(OFFICE, "2001", 300.0)
    (block,) = g.blocks(300.0)
    assert (block.until, block.failures) == (600.0, 6)
    assert not g.is_blocked(OFFICE, "2001", 600.0)


def test_blocks_listing() -> None:
    """``blocks`` lists sources first, then pairs, each by end time, with their counts."""
    g = guard()
    for _ in range(5):
        g.failure(OFFICE, "2002", 10.0)
    for _ in range(5):
        g.failure(OFFICE, "2001", 5.0)
    for i in range(10):
        g.failure("203.0.113.9", f"u{i}", 20.0)
    assert g.blocks(30.0) == [
        Block(BlockKind.SOURCE, "203.0.113.9", 620.0, 10),
        Block(BlockKind.PAIR, "2001@" + OFFICE, 605.0, 5),
        Block(BlockKind.PAIR, "2002@" + OFFICE, 610.0, 5),
    ]
    assert g.blocks(607.0) == [Block(BlockKind.SOURCE, "203.0.113.9", 620.0, 10),
                               Block(BlockKind.PAIR, "2002@" + OFFICE, 610.0, 5)]


def test_lift_pair_and_source() -> None:
    """``lift`` ends a pair block or a source block by its listed key."""
    g = guard()
    for _ in range(5):
        g.failure(OFFICE, "a@b", 0.0)                   # a username with an @
    for i in range(10):
        g.failure("203.0.113.9", str(i), 0.0)
    keys = [b.key for b in g.blocks(1.0)]
    assert keys == ["203.0.113.9", pair_key(OFFICE, "a@b")]
    assert all(g.lift(k) for k in keys)
    assert g.blocks(1.0) == []
    assert not g.is_blocked(OFFICE, "a@b", 1.0)
    assert not g.is_blocked("203.0.113.9", "0", 1.0)
    assert g.failure("203.0.113.9", "0", 2.0) == []      # its distinct usernames were forgotten
    assert not g.lift("192.0.2.1")
    assert not g.lift(pair_key("192.0.2.1", "x"))


def test_records_forgotten_after_block_time() -> None:
    """Run-out records are forgotten by later failures and by ``expire``."""
    g = guard()
    for i in range(100):
        g.failure(f"10.0.0.{i}", "u", 0.0)
    assert len(g) == 200
    g.failure("other", "u", 600.0)
    assert len(g) == 198                                 # two pairs and two sources, plus one each
    assert g.expire(600.0) == 196
    assert len(g) == 2


def test_blocked_records_outlive_their_quiet_time() -> None:
    """A record under a block is kept until the block ends."""
    g = AuthGuard(max_failures=1, max_failed_users=100, block_time=10)
    g.failure("a", "u", 0.0)
    assert g.expire(9.9) == 0
    assert g.is_blocked("a", "u", 9.9)
    assert g.expire(10.0) == 2


def test_guard_cap_evicts_oldest() -> None:
    """At the cap, a new pair or source evicts the least recently used one."""
    g = AuthGuard(max_failures=2, max_failed_users=50, block_time=600, max_tracked=3)
    for source in ("a", "b", "c"):
        g.failure(source, "u", 0.0)
    g.failure("a", "u", 1.0)                             # a: blocked, most recent
    g.failure("d", "u", 2.0)                             # evicts b
    assert len(g) == 6
    assert g.is_blocked("a", "u", 2.0)
    assert g.failure("b", "u", 3.0) == []                # b starts again from one


def test_guard_rejects_bad_parameters() -> None:
    """Non-positive limits are refused."""
    with pytest.raises(ValueError):
        AuthGuard(max_failures=0, max_failed_users=1, block_time=1)
    with pytest.raises(ValueError):
        AuthGuard(max_failures=1, max_failed_users=1, block_time=0)


def test_guard_configure_takes_new_limits_for_the_failures_to_come() -> None:
    """configure() lowers or raises the thresholds for the next failures;
    failures already counted count, a block in force keeps its end."""
    g = guard()
    for i in range(3):
        g.failure(OFFICE, "2001", float(i))
    for _ in range(5):
        g.failure(OFFICE, "2002", 0.0)            # blocked until 600
    g.configure(max_failures=4, max_failed_users=10, block_time=60)
    (started,) = g.failure(OFFICE, "2001", 3.0)   # the fourth failure now blocks
    assert (started.kind, started.until) == (BlockKind.PAIR, 63.0)
    assert g.is_blocked(OFFICE, "2002", 599.0)
    assert not g.is_blocked(OFFICE, "2002", 600.0)
    with pytest.raises(ValueError):
        g.configure(max_failures=0, max_failed_users=10, block_time=60)
    assert (g.max_failures, g.max_failed_users, g.block_time) == (4, 10, 60.0)
