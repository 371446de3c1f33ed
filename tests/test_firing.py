"""The firing-alert cache inhibition reads: current across replicas within a tenth of a
second, and cheap in a storm of alerts that keep firing unchanged (the whole set is read
again only when it changed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from router.model import AlertState
from router.notify.firing import FiringAlerts
from router.store.protocols import Store
from router.store.redis import RedisStore
from router.store.sqlite import SQLiteStore
from tests.fakes.clock import FakeClock
from tests.test_store_contract import T0, notification


class Counting:
    """The alert states of a real store, counting how often each is read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.full_reads = 0
        self.generation_reads = 0

    async def firing_alerts(self, now: float) -> list[Mapping[str, str]]:
        self.full_reads += 1
        return await self.store.firing_alerts(now)

    async def alerts_generation(self) -> int:
        self.generation_reads += 1
        return await self.store.alerts_generation()


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store
    if request.param == "sqlite":
        s = SQLiteStore(str(tmp_path / "state.db"))
    else:
        s = RedisStore(
            request.getfixturevalue("redis_url"), key_prefix=request.getfixturevalue("prefix")
        )
    await s.open()
    yield s
    await s.close()


def firing(name: str) -> AlertState:
    return AlertState(name, {"alertname": name}, True, T0 + 3600)


async def test_alerts_that_keep_firing_unchanged_are_not_read_again(store: Store) -> None:
    counting, clock = Counting(store), FakeClock(100.0)
    cache = FiringAlerts(counting, max_age=3600, monotonic=clock)
    await store.record([notification("g1", "a")], alerts=[firing("A"), firing("B")])
    assert len(await cache.get(T0)) == 2
    for i in range(20):  # a storm: every webhook re-sends the same firing alerts
        await store.record([notification(f"s{i}", "a")], alerts=[firing("A"), firing("B")])
        cache.invalidate()
        clock.now += 0.01
        assert len(await cache.get(T0 + i)) == 2
    assert counting.full_reads == 1
    assert counting.generation_reads == 21
    await store.record([notification("g2", "a")], alerts=[firing("C")])
    cache.invalidate()
    assert sorted(a["alertname"] for a in await cache.get(T0 + 30)) == ["A", "B", "C"]
    assert counting.full_reads == 2


async def test_a_change_made_elsewhere_is_seen_within_the_recheck(store: Store) -> None:
    counting, clock = Counting(store), FakeClock(100.0)
    cache = FiringAlerts(counting, max_age=3600, recheck=0.1, monotonic=clock)
    assert await cache.get(T0) == []
    # Another replica records a firing alert: nothing tells this process.
    await store.record([notification("g1", "a")], alerts=[firing("A")])
    clock.now += 0.05
    assert await cache.get(T0) == []  # within the recheck: not even the generation is read
    assert counting.generation_reads == 1
    clock.now += 0.06
    assert [a["alertname"] for a in await cache.get(T0)] == ["A"]
    assert counting.generation_reads == 2
