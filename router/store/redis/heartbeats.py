"""The `HeartbeatLog` protocol on the Redis store: one script decides every write.

Keys (prefix `P`): `P hbs` set of tracked heartbeat names; `P hb:<name>` hash with `since`,
`last` (the latest beat), and while it is missing `missing` and `labels` (JSON). No TTL:
a heartbeat is kept until the config drops it (`track_heartbeats`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from redis import asyncio as aioredis

from router.store.beats import HeartbeatState, labels_from_json
from router.store.codec import float_text as _num

HEARTBEAT_SCRIPTS: Mapping[str, tuple[str, ...]] = {"heartbeat": ()}


class RedisHeartbeats:
    """Mixed into RedisStore, whose `_run` runs one of its registered scripts."""

    prefix: str
    min_replicas: int

    async def _run(self, name: str, args: Sequence[str | int | float]) -> Any:
        raise NotImplementedError

    async def _run_replicated(self, name: str, args: Sequence[str | int | float]) -> Any:
        raise NotImplementedError

    @property
    def _redis(self) -> aioredis.Redis:
        raise NotImplementedError

    def _guard(self, what: str) -> Any:
        raise NotImplementedError

    async def beat(self, name: str, at: float) -> None:
        # A beat answered 200 survives the primary's death as a webhook does.
        run = self._run_replicated if self.min_replicas else self._run
        await run("heartbeat", ["beat", name, _num(at)])

    async def heartbeat_states(self) -> list[HeartbeatState]:
        client = self._redis
        with self._guard("heartbeats"):
            names = sorted(str(n) for n in await client.smembers(self.prefix + "hbs"))
            async with client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self.prefix + "hb:" + name)
                rows = await pipe.execute()
        states = []
        for name, row in zip(names, rows, strict=True):
            if not row or "since" not in row:
                continue
            states.append(
                HeartbeatState(
                    name,
                    float(row["since"]),
                    float(row["last"]) if row.get("last") else None,
                    float(row["missing"]) if row.get("missing") else None,
                    labels_from_json(row.get("labels")),
                )
            )
        return states

    async def track_heartbeats(self, names: Collection[str], now: float) -> None:
        await self._run("heartbeat", ["track", _num(now), *sorted(set(names))])

    async def set_missing(
        self, name: str, since: float | None, labels: Mapping[str, str] | None = None
    ) -> None:
        text = HeartbeatState(name, 0.0, missing_labels=dict(labels or {})).labels_json()
        await self._run("heartbeat", ["missing", name, "" if since is None else _num(since), text])
