"""The proxy's guard against floods and password guessing, sans-IO.

Two independent pieces of pure logic.  Neither does I/O nor reads a clock:
the caller passes the time, in seconds of a monotonic clock, as ``now``.

:class:`RateLimiter` — a token bucket per source address.
    Every source starts with ``burst`` tokens; they refill at ``rate`` per
    second up to ``burst``.  A request that finds a token is admitted.  One
    that does not is refused, and the refusal is counted as the source's
    *excess*, which drains at ``rate`` per second like the bucket refills.
    While the excess is under ``burst`` the refusal is polite: the caller
    answers ``503 Service Unavailable`` with the ``Retry-After`` the decision
    carries (the seconds the bucket needs to take back everything this source
    was refused, at least one).  Once a source has sent ``2 × burst`` requests
    within the window (``burst`` admitted and ``burst`` refused), or keeps
    sending at more than twice ``rate``, it is far over the limit: the caller
    drops the request without an answer, so a spoofed source cannot use the
    proxy to amplify a flood toward a victim.  A source is never locked out:
    it gets ``rate`` requests per second admitted whatever it sends.

    The defaults (``rate=100``, ``burst=600``) let an office of a hundred
    phones behind one NAT address re-register all at once (REGISTER, 401,
    REGISTER: two requests per phone, and room for retransmissions) while a
    single address flooding the proxy is held to a hundred requests a second.

:class:`AuthGuard` — brute-force blocking on two keys.
    The caller reports every failed digest authentication with
    :meth:`AuthGuard.failure`, whether the password was wrong or the username
    unknown: both count the same, so the guard's behaviour reveals nothing
    about which extensions exist.  (The caller must likewise challenge unknown
    users exactly as it challenges known ones.)  A ``401``/``407`` challenge
    answering a request without credentials is not a failure.

    * The pair key (source, username): after ``max_failures`` failures, each
      within ``block_time`` of the previous one, that pair is blocked for
      ``block_time``.  A phone left with a stale password blocks only itself:
      the other phones of its office, behind the same NAT address but with
      their own usernames, go on registering.
    * The source key: when ``max_failed_users`` distinct usernames have failed
      from one source within ``block_time``, the whole source is blocked for
      ``block_time``.  This is the signature of a scanner walking through
      extension numbers; ``max_failed_users`` should stay above the number of
      phones of one site that could plausibly hold stale passwords at once.

    A success clears the failure count of its pair (not the source's count of
    distinct usernames: a scanner that finds one password must not reset its
    record).  Blocks end by themselves after ``block_time``; an operator can
    list them (:meth:`AuthGuard.blocks`) and lift them (:meth:`AuthGuard.lift`).

Memory is bounded in both.  Records live in ordered dictionaries, moved to the
end on use, so the least recently used record is at the front: each call
forgets at most a couple of expired records from the front (O(1) amortised,
no latency spike when many expire together; :meth:`RateLimiter.expire` and
:meth:`AuthGuard.expire` sweep them all, for a periodic timer), and a hard cap
(100,000 records by default) evicts the least recently used one when a new key
arrives.  An evicted rate bucket comes back full and an evicted failure record
comes back empty: under a flood of spoofed sources the guard fails open for
the oldest keys rather than growing without bound.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict

import attrs

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_IDLE",
    "DEFAULT_RATE",
    "MAX_TRACKED",
    "AuthGuard",
    "Block",
    "BlockKind",
    "Decision",
    "RateLimiter",
    "Verdict",
    "pair_key",
]

DEFAULT_RATE = 100.0
"""Requests per second admitted from one source, sustained."""
DEFAULT_BURST = 600
"""Requests one source may send at once after being quiet."""
DEFAULT_IDLE = 60.0
"""Seconds after which a quiet source's bucket is forgotten."""
MAX_TRACKED = 100_000
"""Hard cap on the records each guard keeps (sources, pairs)."""

_TRIM_PER_CALL = 2
_EPSILON = 1e-9
"""Slack for float sums: a request exactly on schedule finds its token."""


class Verdict(enum.Enum):
    """What the caller does with a request."""

    ALLOW = "allow"
    REJECT = "reject"
    """Over the limit: answer 503 with Retry-After."""
    DROP = "drop"
    """Far over the limit: send nothing."""


@attrs.frozen
class Decision:
    """The rate limiter's answer for one request.

    ``retry_after`` is the ``Retry-After`` value in seconds for a refused
    request (0 when admitted).
    """

    verdict: Verdict
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        """True when the request is admitted."""
        return self.verdict is Verdict.ALLOW

    @property
    def rejected(self) -> bool:
        """True when the caller answers 503 with Retry-After."""
        return self.verdict is Verdict.REJECT

    @property
    def dropped(self) -> bool:
        """True when the caller drops the request without an answer."""
        return self.verdict is Verdict.DROP


_ALLOWED = Decision(Verdict.ALLOW)


class _Bucket:
    """Tokens and excess of one source at time ``stamp``."""

    __slots__ = ("excess", "refused", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.excess = 0.0
        self.stamp = stamp
        self.refused = False


class RateLimiter:
    """A token bucket per source address (see the module docstring).

    ``idle`` is raised, if needed, to the time an empty bucket takes to
    refill, so that forgetting a bucket never gives a source more than it
    would have had anyway.  ``max_sources`` caps the number of sources
    tracked; the least recently seen one is evicted for a new one.
    """

    def __init__(self, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST,
                 idle: float = DEFAULT_IDLE, *, max_sources: int = MAX_TRACKED) -> None:
        if idle < 0 or max_sources < 1:
            raise ValueError("max_sources must be positive, idle not negative")
        self._idle = float(idle)
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._refused: dict[str, None] = {}
        self.configure(rate, burst)

    def configure(self, rate: float, burst: int) -> None:
        """Take a new sustained ``rate`` and ``burst`` from the next request
        on.  The sources tracked keep their buckets, cut down to the new
        burst if it is smaller, so a source flooding now stays refused.

        Raises ValueError (and changes nothing) unless both are positive."""
        if not rate > 0 or burst < 1:
            raise ValueError("rate and burst must be positive")
        self.rate = float(rate)
        self.burst = int(burst)
        self.idle = max(self._idle, self.burst / self.rate)
        ceiling = float(self.burst)
        for bucket in self._buckets.values():
            bucket.tokens = min(bucket.tokens, ceiling)
            bucket.excess = min(bucket.excess, ceiling)

    def __len__(self) -> int:
        """Number of sources tracked."""
        return len(self._buckets)

    def allow(self, source: str, now: float) -> Decision:
        """Account one request from ``source`` at ``now`` and decide its fate."""
        buckets = self._buckets
        bucket = buckets.get(source)
        if bucket is None:
            self._trim(now)
            if len(buckets) >= self.max_sources:
                self._forget(next(iter(buckets)))
            bucket = buckets[source] = _Bucket(float(self.burst), now)
        else:
            buckets.move_to_end(source)
            elapsed = now - bucket.stamp
            if elapsed > 0:
                gained = elapsed * self.rate
                bucket.tokens = min(float(self.burst), bucket.tokens + gained)
                bucket.excess = max(0.0, bucket.excess - gained)
                bucket.stamp = now
            self._trim(now)
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            if bucket.refused:
                bucket.refused = False
                self._refused.pop(source, None)
            return _ALLOWED
        if not bucket.refused:
            bucket.refused = True
            self._refused[source] = None
        bucket.excess = min(float(self.burst), bucket.excess + 1.0)
        retry_after = max(1, math.ceil((bucket.excess - bucket.tokens) / self.rate))
        if bucket.excess >= self.burst - _EPSILON:
            return Decision(Verdict.DROP, retry_after)
        return Decision(Verdict.REJECT, retry_after)

    def blocked(self, now: float | None = None) -> list[str]:
        """Sources over the limit: their last request was refused.

        With ``now``, only those that would still be refused at ``now``.
        """
        if now is None:
            return list(self._refused)
        out = []
        for source in self._refused:
            bucket = self._buckets[source]
            if bucket.tokens + max(0.0, now - bucket.stamp) * self.rate < 1.0 - _EPSILON:
                out.append(source)
        return out

    def lift(self, source: str) -> bool:
        """Forget ``source``: its next request finds a full bucket.

        Returns whether the source was tracked.
        """
        if source not in self._buckets:
            return False
        self._forget(source)
        return True

    def expire(self, now: float) -> int:
        """Forget every bucket idle for ``idle`` seconds; returns how many."""
        return self._trim(now, len(self._buckets))

    def _trim(self, now: float, limit: int = _TRIM_PER_CALL) -> int:
        buckets = self._buckets
        horizon = now - self.idle
        done = 0
        while done < limit and buckets:
            source, bucket = next(iter(buckets.items()))
            if bucket.stamp > horizon:
                break
            self._forget(source)
            done += 1
        return done

    def _forget(self, source: str) -> None:
        del self._buckets[source]
        self._refused.pop(source, None)


class BlockKind(enum.Enum):
    """What a block is keyed on."""

    PAIR = "pair"
    """One username from one source."""
    SOURCE = "source"
    """Every request from one source."""


def pair_key(source: str, username: str) -> str:
    """The text key of a (source, username) pair: ``username@source``.

    Sources are addresses and never contain ``@``, so the key splits back at
    its last ``@`` even when the username contains one.
    """
    return f"{username}@{source}"


@attrs.frozen
class Block:
    """An active block: ``key`` is the source, or :func:`pair_key` for a pair.

    ``until`` is when it ends (same clock as ``now``); ``failures`` the
    failed authentications counted on that key.
    """

    kind: BlockKind
    key: str
    until: float
    failures: int


class _Pair:
    """Failures of one (source, username)."""

    __slots__ = ("failures", "last", "until")

    def __init__(self) -> None:
        self.failures = 0
        self.last = 0.0
        self.until = 0.0


class _Source:
    """Failures of one source: the distinct usernames that failed, with when."""

    __slots__ = ("failures", "last", "until", "users")

    def __init__(self) -> None:
        self.users: OrderedDict[str, float] = OrderedDict()
        self.failures = 0
        self.last = 0.0
        self.until = 0.0


class AuthGuard:
    """Brute-force blocking of digest authentication (see the module docstring).

    ``max_tracked`` caps the pair records and, separately, the source records;
    the least recently used is evicted for a new one.
    """

    def __init__(self, max_failures: int, max_failed_users: int, block_time: float, *,
                 max_tracked: int = MAX_TRACKED) -> None:
        if max_tracked < 1:
            raise ValueError("max_tracked must be positive")
        self.max_tracked = max_tracked
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self.configure(max_failures, max_failed_users, block_time)

    def configure(self, max_failures: int, max_failed_users: int, block_time: float) -> None:
        """Take new thresholds and a new block length for the failures to
        come.  Failures already counted still count; blocks in force keep
        the end they were given (lift them to end them sooner).

        Raises ValueError (and changes nothing) unless all are positive."""
        if max_failures < 1 or max_failed_users < 1 or not block_time > 0:
            raise ValueError("max_failures, max_failed_users and block_time must be positive")
        self.max_failures = max_failures
        self.max_failed_users = max_failed_users
        self.block_time = float(block_time)

    def __len__(self) -> int:
        """Number of records kept (pairs and sources)."""
        return len(self._pairs) + len(self._sources)

    def failure(self, source: str, username: str, now: float) -> list[Block]:
        """Record a failed authentication of ``username`` from ``source``.

        A wrong password and an unknown username are reported alike.  Returns
        the blocks this failure started (usually none).  A failure reported
        while a block is in force is counted but does not prolong the block.
        """
        self._trim(now, _TRIM_PER_CALL)
        started: list[Block] = []
        block_time = self.block_time

        pairs = self._pairs
        key = (source, username)
        pair = pairs.get(key)
        if pair is None:
            if len(pairs) >= self.max_tracked:
                del pairs[next(iter(pairs))]
            pair = pairs[key] = _Pair()
        else:
            pairs.move_to_end(key)
            if pair.last + block_time <= now or 0.0 < pair.until <= now:
                pair.failures = 0
                pair.until = 0.0
        pair.failures += 1
        pair.last = now
        if pair.until <= now and pair.failures >= self.max_failures:
            pair.until = now + block_time
            started.append(Block(BlockKind.PAIR, pair_key(source, username), pair.until,
                                 pair.failures))

        sources = self._sources
        record = sources.get(source)
        if record is None:
            if len(sources) >= self.max_tracked:
                del sources[next(iter(sources))]
            record = sources[source] = _Source()
        else:
            sources.move_to_end(source)
            if record.last + block_time <= now or 0.0 < record.until <= now:
                record.users.clear()
                record.failures = 0
                record.until = 0.0
        record.failures += 1
        record.last = now
        if record.until <= now:
            users = record.users
            horizon = now - block_time
            while users:
                first, when = next(iter(users.items()))
                if when > horizon:
                    break
                del users[first]
            users[username] = now
            users.move_to_end(username)
            if len(users) >= self.max_failed_users:
                record.until = now + block_time
                users.clear()
                started.append(Block(BlockKind.SOURCE, source, record.until, record.failures))
        return started

    def success(self, source: str, username: str, now: float) -> None:
        """A successful authentication: clear the failure count of this pair.

        The source's record of distinct failed usernames stays, and a block in
        force stays until it ends (credentials of a blocked pair should not
        have been checked at all).
        """
        key = (source, username)
        pair = self._pairs.get(key)
        if pair is None:
            return
        if pair.until > now:
            pair.failures = 0
        else:
            del self._pairs[key]

    def is_blocked(self, source: str, username: str, now: float) -> bool:
        """True when the source, or this username from this source, is blocked."""
        record = self._sources.get(source)
        if record is not None and record.until > now:
            return True
        pair = self._pairs.get((source, username))
        return pair is not None and pair.until > now

    def blocks(self, now: float) -> list[Block]:
        """Blocks in force at ``now``, sources first, each kind by end time."""
        out = [Block(BlockKind.SOURCE, source, r.until, r.failures)
               for source, r in self._sources.items() if r.until > now]
        out.sort(key=lambda b: b.until)
        pairs = [Block(BlockKind.PAIR, pair_key(*key), p.until, p.failures)
                 for key, p in self._pairs.items() if p.until > now]
        pairs.sort(key=lambda b: b.until)
        return out + pairs

    def lift(self, key: str) -> bool:
        """Lift the block on ``key`` (a source, or a :func:`pair_key`).

        Lifting a source also forgets its distinct failed usernames (but not
        the pair blocks of that source).  Returns whether a record was found.
        """
        username, at, source = key.rpartition("@")
        if at:
            return self._pairs.pop((source, username), None) is not None
        return self._sources.pop(key, None) is not None

    def expire(self, now: float) -> int:
        """Forget every record that has run out; returns how many."""
        return self._trim(now, len(self))

    def _trim(self, now: float, limit: int) -> int:
        """Forget up to ``limit`` run-out pairs and as many sources."""
        horizon = now - self.block_time
        done = 0
        pairs = self._pairs
        while done < limit and pairs:
            key, pair = next(iter(pairs.items()))
            if pair.last > horizon or pair.until > now:
                break
            del pairs[key]
            done += 1
        sources = self._sources
        gone = 0
        while gone < limit and sources:
            source, record = next(iter(sources.items()))
            if record.last > horizon or record.until > now:
                break
            del sources[source]
            gone += 1
        return done + gone
