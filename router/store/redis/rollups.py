"""The insights rollups on the Redis store.

Keys (prefix `P`): `P ru:h:<hour>` and `P ru:d:<day>` hashes with one field per row,
`kind US name` (US: the unit separator), holding its nonzero columns as
`index:count,...` (router/store/lua/rollup_add.lua), and `P ru:a:<fingerprint>`,
the alert's last episode (s, e) so each is counted once across receivers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import redis.asyncio as aioredis

from router.model import Claim, GroupActions, Outcome
from router.store.codec import compact_json
from router.store.protocols import StoreUnavailable
from router.store.rollup import (
    COLUMNS,
    DAY,
    HOUR,
    HOURLY_KEEP,
    INDEX,
    ROLLUP_KEEP,
    EpisodeEnd,
    Key,
    RollupRead,
    episode_counts,
    finished,
    needs_actions,
)

log = logging.getLogger(__name__)

# Parsed past buckets kept per process: two 31-day windows of days, or a few of hours.
_CACHED_BUCKETS = 128

ROLLUP_SCRIPTS: Mapping[str, tuple[str, ...]] = {
    "rollup_episodes": (),
    "rollup_add": ("rollup_counts",),
    "report_slot": (),
}
_SEP = "\x1f"

# What `finished` makes of a claim: its counts and the episodes it resolved.
Counted = tuple[dict[Key, list[int]], list[EpisodeEnd]]


class RedisRollups:
    """Mixed into RedisStore (`_run` runs a script, `_redis` is the client)."""

    prefix: str
    _clock: Callable[[], float]
    _rollup_cache: dict[tuple[str, int], dict[Key, list[tuple[int, int]]]]
    _run: Callable[[str, Sequence[str | int | float]], Awaitable[Any]]
    _guard: Callable[[str], AbstractContextManager[None]]
    group_actions: Callable[[str, str], Awaitable[GroupActions | None]]

    @property
    def _redis(self) -> aioredis.Redis:
        raise NotImplementedError

    async def _roll_up(
        self, claim: Claim, outcome: Outcome, at: float, counted: Counted | None = None
    ) -> None:
        """A finished claim's counts, written right after the claim completes. Not retried:
        the worker retries a failed `complete`, and counting twice is worse than a gap.
        `counted`: what `_counted` already made of the claim (None: it needs the actions)."""
        try:
            await self._count_finished(claim, outcome, at, counted)
        except StoreUnavailable as exc:
            log.warning("insights rollup not written", extra={"error": str(exc)})

    async def _count_finished(
        self, claim: Claim, outcome: Outcome, at: float, counted: Counted | None
    ) -> None:
        if counted is None:
            actions = None
            if needs_actions(claim):
                actions = await self.group_actions(claim.receiver, claim.group_key)
            counted = finished(claim, outcome, actions)
        counts, episodes = counted
        if episodes:
            args: list[str | int | float] = [int(ROLLUP_KEEP)]
            for e in episodes:
                args += [e.fingerprint, repr(e.starts_at), repr(e.ends_at)]
            answers = await self._run("rollup_episodes", args)
            for episode, answer in zip(episodes, answers, strict=True):
                previous = float(answer)
                if previous >= 0:
                    episode_counts(episode, previous or None, counts)
        await self.add_rollups(at, counts)

    @staticmethod
    def _counted(claim: Claim, outcome: Outcome) -> Counted | None:
        """A finished claim's counts and episodes, made once for both `_inline_rollup` and
        `_roll_up`; None when they need the group's actions (read by `_roll_up`)."""
        return None if needs_actions(claim) else finished(claim, outcome, None)

    @staticmethod
    def _inline_rollup(counted: Counted | None, at: float) -> str | None:
        """A finished claim's counts as the complete script adds them (JSON, '' for none),
        or None when they need reads first (episodes, actions) and `_roll_up` writes them:
        most claims' counts then cost no round trip of their own."""
        if counted is None:
            return None
        counts, episodes = counted
        if episodes:
            return None
        args = _rollup_args(at, counts)
        return compact_json([str(a) for a in args]) if args else ""

    async def add_rollups(self, at: float, counts: Mapping[Key, Sequence[int]]) -> None:
        args = _rollup_args(at, counts)
        if args:
            await self._run("rollup_add", args)

    async def claim_report(self, name: str, slot: float) -> bool | None:
        answer = int(await self._run("report_slot", [name, repr(float(slot)), int(ROLLUP_KEEP)]))
        return None if answer < 0 else answer == 1

    async def read_rollups(self, since: int, until: int, *, hourly: bool) -> RollupRead:
        step, tag = (HOUR, "h") if hourly else (DAY, "d")
        start = -(-since // step) * step
        buckets = list(range(start, until, step))
        # Rollups are added at the time a record finishes: a bucket that ended before the
        # newest one asked for no longer changes, and is parsed once.
        current = int(self._clock() // step) * step
        cache = self._parsed_buckets()
        wanted = [b for b in buckets if (tag, b) not in cache or b >= current]
        client = self._redis
        with self._guard("rollup read"):
            async with client.pipeline(transaction=False) as pipe:
                for bucket in wanted:
                    pipe.hgetall(f"{self.prefix}ru:{tag}:{bucket}")
                found = await pipe.execute()
        fresh: dict[int, dict[Key, list[tuple[int, int]]]] = {}
        for bucket, fields in zip(wanted, found, strict=True):
            parsed = fresh[bucket] = _parse(fields)
            if bucket < current:
                cache[(tag, bucket)] = parsed
                while len(cache) > _CACHED_BUCKETS:
                    cache.pop(next(iter(cache)))
        totals: dict[Key, list[int]] = {}
        series: dict[tuple[int, str, str], int] = {}
        by_bucket: dict[int, list[int]] = {}
        width = len(COLUMNS)
        notifications = INDEX["notifications"]
        for bucket in buckets:
            rows = fresh.get(bucket) or cache.get((tag, bucket), {})
            per = None
            for key, pairs in rows.items():
                row = totals.get(key)
                if row is None:
                    row = totals[key] = [0] * width
                if key[0] == "receiver" and per is None:
                    per = by_bucket[bucket] = [0] * width
                for at, amount in pairs:
                    row[at] += amount
                    if key[0] == "receiver" and per is not None:
                        per[at] += amount
                    if at == notifications:
                        series[(bucket, key[0], key[1])] = amount
        return RollupRead(totals, series, by_bucket)

    def _parsed_buckets(self) -> dict[tuple[str, int], dict[Key, list[tuple[int, int]]]]:
        cache = getattr(self, "_rollup_cache", None)
        if cache is None:
            cache = {}
            self._rollup_cache = cache
        return cache


def _parse(fields: Mapping[bytes | str, bytes | str]) -> dict[Key, list[tuple[int, int]]]:
    rows: dict[Key, list[tuple[int, int]]] = {}
    for field, value in fields.items():
        kind, name = _text(field).split(_SEP, 1)
        pairs = []
        for part in _text(value).split(","):
            index, _, count = part.partition(":")
            pairs.append((int(index), int(count)))
        rows[(kind, name)] = pairs
    return rows


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _rollup_args(at: float, counts: Mapping[Key, Sequence[int]]) -> list[str | int | float]:
    """What rollup_counts (router/store/lua/) adds for `counts` at `at`: the day's TTL,
    hour, day, the hour's TTL, then field and packed counts per nonzero row; empty when
    there is nothing to add."""
    hour, day = int(at // HOUR) * HOUR, int(at // DAY) * DAY
    args: list[str | int | float] = [int(ROLLUP_KEEP), hour, day, int(HOURLY_KEEP)]
    for (kind, name), row in counts.items():
        packed = ",".join(f"{i}:{v}" for i, v in enumerate(row) if v)
        if packed:
            args += [f"{kind}{_SEP}{name}", packed]
    return args if len(args) > 4 else []
