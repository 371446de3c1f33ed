"""The `OncallOverrides` protocol on the Redis store: one hash, `P oncall:overrides`, of
override id -> JSON; every replica reads the same one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from router.schedules.rotations import Override
from router.store.codec import in_start_order, override_json, stored_override
from router.store.protocols import OVERRIDE_KEEP


class RedisOncall:
    """Mixed into RedisStore, whose `_redis` is its client and `_guard` maps outages."""

    prefix: str

    @property
    def _redis(self) -> Any:
        raise NotImplementedError

    def _guard(self, what: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    @property
    def _overrides_key(self) -> str:
        return f"{self.prefix}oncall:overrides"

    async def add_override(self, override: Override) -> bool:
        body = override_json(override)
        client = self._redis
        with self._guard("add_override"):
            added = int(await client.hsetnx(self._overrides_key, override.id, body))
            old = [
                o.id
                for o in self._decode(await client.hgetall(self._overrides_key))
                if o.end < override.created_at - OVERRIDE_KEEP
            ]
            if old:
                # Overrides long over go when a new one comes: they are few.
                await client.hdel(self._overrides_key, *old)
        return bool(added)

    async def remove_override(self, override_id: str) -> bool:
        client = self._redis
        with self._guard("remove_override"):
            return bool(int(await client.hdel(self._overrides_key, override_id)))

    async def list_overrides(self, since: float) -> list[Override]:
        client = self._redis
        with self._guard("list_overrides"):
            raw = await client.hgetall(self._overrides_key)
        return in_start_order(o for o in self._decode(raw) if o.end > since)

    @staticmethod
    def _decode(raw: dict[Any, Any]) -> Iterator[Override]:
        for body in raw.values():
            yield stored_override(body)
