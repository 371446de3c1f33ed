"""The insights rollups on the Redis store.

Keys (prefix `P`): `P ru:h:<hour>` and `P ru:d:<day>` hashes whose fields are
`kind US name US column` counters (US: the unit separator), and `P ru:a:<fingerprint>`,
the alert's last episode (s, e) so each is counted once across receivers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import redis.asyncio as aioredis

from router.model import Claim, Outcome
from router.store.protocols import StoreUnavailable
from router.store.rollup import (
    COLUMNS,
    DAY,
    HOUR,
    INDEX,
    ROLLUP_KEEP,
    Key,
    RollupRead,
    episode_counts,
    finished,
    nonzero,
)

log = logging.getLogger(__name__)

ROLLUP_SCRIPTS: Mapping[str, tuple[str, ...]] = {"rollup_episodes": ()}
_SEP = "\x1f"


class RedisRollups:
    """Mixed into RedisStore (`_run` runs a script, `_redis` is the client)."""

    prefix: str
    _run: Callable[[str, Sequence[str | int | float]], Awaitable[Any]]
    _guard: Callable[[str], AbstractContextManager[None]]

    @property
    def _redis(self) -> aioredis.Redis:
        raise NotImplementedError

    async def _roll_up(self, claim: Claim, outcome: Outcome, at: float) -> None:
        """A finished claim's counts, written right after the claim completes. Not retried:
        the worker retries a failed `complete`, and counting twice is worse than a gap."""
        try:
            await self._count_finished(claim, outcome, at)
        except StoreUnavailable as exc:
            log.warning("insights rollup not written", extra={"error": str(exc)})

    async def _count_finished(self, claim: Claim, outcome: Outcome, at: float) -> None:
        counts, episodes = finished(claim, outcome)
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

    async def add_rollups(self, at: float, counts: Mapping[Key, Sequence[int]]) -> None:
        if not counts:
            return
        hour, day = int(at // HOUR) * HOUR, int(at // DAY) * DAY
        client = self._redis
        with self._guard("rollup"):
            async with client.pipeline(transaction=True) as pipe:
                for key in (f"{self.prefix}ru:h:{hour}", f"{self.prefix}ru:d:{day}"):
                    for (kind, name), row in counts.items():
                        for column, value in nonzero(row):
                            pipe.hincrby(key, f"{kind}{_SEP}{name}{_SEP}{column}", value)
                    pipe.expire(key, int(ROLLUP_KEEP))
                await pipe.execute()

    async def read_rollups(self, since: int, until: int, *, hourly: bool) -> RollupRead:
        step, tag = (HOUR, "h") if hourly else (DAY, "d")
        start = -(-since // step) * step
        buckets = list(range(start, until, step))
        client = self._redis
        with self._guard("rollup read"):
            async with client.pipeline(transaction=False) as pipe:
                for bucket in buckets:
                    pipe.hgetall(f"{self.prefix}ru:{tag}:{bucket}")
                found = await pipe.execute()
        totals: dict[Key, list[int]] = {}
        series: dict[tuple[int, str, str], int] = {}
        by_bucket: dict[int, list[int]] = {}
        width = len(COLUMNS)
        for bucket, fields in zip(buckets, found, strict=True):
            for field, value in fields.items():
                kind, name, column = _text(field).split(_SEP)
                row = totals.get((kind, name))
                if row is None:
                    row = totals[(kind, name)] = [0] * width
                amount = int(value)
                row[INDEX[column]] += amount
                if column == "notifications":
                    series[(bucket, kind, name)] = amount
                if kind == "receiver":
                    per = by_bucket.get(bucket)
                    if per is None:
                        per = by_bucket[bucket] = [0] * width
                    per[INDEX[column]] += amount
        return RollupRead(totals, series, by_bucket)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
