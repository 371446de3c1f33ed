"""The `Timers` protocol on the Redis store: one Lua script (router/store/lua/timer.lua)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from router.store.codec import float_text as _num
from router.store.protocols import Timer

TIMER_SCRIPTS: Mapping[str, tuple[str, ...]] = {"timer": ()}


class RedisTimers:
    """Mixed into RedisStore, whose `_run` runs one of its registered scripts."""

    prefix: str

    async def _run(self, name: str, args: Sequence[str | int | float]) -> Any:
        raise NotImplementedError

    async def _zscore(self, key: str, member: str) -> float | None:
        raise NotImplementedError

    async def _hget(self, key: str, field: str) -> str | None:
        raise NotImplementedError

    async def _zcount(self, key: str, high: float) -> int:
        raise NotImplementedError

    async def set_timer(
        self, kind: str, key: str, due: float, body: str, *, replace: bool = False
    ) -> bool:
        done = await self._run("timer", ["set", kind, key, _num(due), body, int(replace)])
        return bool(int(done))

    async def claim_timers(self, kind: str, now: float, limit: int, lease: float) -> list[Timer]:
        flat = await self._run(
            "timer", ["claim", kind, _num(now), limit, _num(now + lease), uuid.uuid4().hex]
        )
        return [
            Timer(kind, str(flat[i]), float(flat[i + 1]), str(flat[i + 2]), str(flat[i + 3]))
            for i in range(0, len(flat), 4)
        ]

    async def finish_timer(self, timer: Timer, due: float | None, body: str) -> bool:
        when = "" if due is None else _num(due)
        done = await self._run("timer", ["finish", timer.kind, timer.key, timer.token, when, body])
        return bool(int(done))

    async def cancel_timer(self, kind: str, key: str) -> None:
        await self._run("timer", ["cancel", kind, key])

    async def get_timer(self, kind: str, key: str) -> Timer | None:
        base = f"{self.prefix}tm:{kind}"
        due = await self._zscore(base, key)
        if due is None:
            return None
        body = await self._hget(f"{base}:b", key)
        token = await self._hget(f"{base}:t", key)
        return Timer(kind, key, due, body or "", token or "")

    async def count_due(self, kind: str, now: float) -> int:
        return await self._zcount(f"{self.prefix}tm:{kind}", now)
