"""The heartbeat part of the store contract: each test runs on SQLite and on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from router.store.protocols import Store
from router.store.redis import RedisStore
from router.store.sqlite import SQLiteStore

T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """A factory: calling it twice gives two handles on the same underlying state."""
    if request.param == "sqlite":
        return lambda: SQLiteStore(str(tmp_path / "state.db"))
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("prefix")
    return lambda: RedisStore(url, key_prefix=prefix, clock=lambda: T0)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    yield s
    await s.close()


async def test_a_tracked_heartbeat_starts_its_clock_when_first_tracked(store: Store) -> None:
    await store.track_heartbeats(["a"], T0)
    await store.track_heartbeats(["a", "b"], T0 + 10)
    states = {s.name: s for s in await store.heartbeat_states()}
    assert (states["a"].since, states["b"].since) == (T0, T0 + 10)
    assert states["a"].last_beat is None and states["a"].missing_since is None


async def test_the_latest_beat_is_kept_whatever_order_beats_arrive_in(store: Store) -> None:
    await store.track_heartbeats(["a"], T0)
    await store.beat("a", T0 + 30)
    await store.beat("a", T0 + 20)
    [state] = await store.heartbeat_states()
    assert state.last_beat == T0 + 30


async def test_a_beat_of_an_untracked_heartbeat_tracks_it_from_the_beat(store: Store) -> None:
    await store.beat("new", T0 + 5)
    [state] = await store.heartbeat_states()
    assert (state.name, state.since, state.last_beat) == ("new", T0 + 5, T0 + 5)


async def test_a_heartbeat_no_longer_tracked_is_forgotten_with_its_verdict(store: Store) -> None:
    await store.track_heartbeats(["a", "b"], T0)
    await store.beat("b", T0 + 1)
    await store.set_missing("b", T0 + 2, {"alertname": "HeartbeatMissing"})
    await store.track_heartbeats(["a"], T0 + 3)
    assert [s.name for s in await store.heartbeat_states()] == ["a"]
    await store.track_heartbeats(["a", "b"], T0 + 4)
    states = {s.name: s for s in await store.heartbeat_states()}
    assert (states["b"].since, states["b"].last_beat, states["b"].missing_since) == (
        T0 + 4,
        None,
        None,
    )


async def test_the_verdict_is_kept_with_its_labels_until_cleared(store: Store) -> None:
    await store.track_heartbeats(["a"], T0)
    await store.set_missing("a", T0 + 90, {"heartbeat": "a", "env": "prod"})
    [state] = await store.heartbeat_states()
    assert state.missing_since == T0 + 90
    assert state.missing_labels == {"heartbeat": "a", "env": "prod"}
    await store.set_missing("a", None)
    [state] = await store.heartbeat_states()
    assert (state.missing_since, dict(state.missing_labels)) == (None, {})


async def test_no_verdict_is_recorded_for_a_heartbeat_not_tracked(store: Store) -> None:
    await store.set_missing("ghost", T0, {"heartbeat": "ghost"})
    assert await store.heartbeat_states() == []


async def test_beats_survive_a_restart(make_store: Callable[[], Store]) -> None:
    first = make_store()
    await first.open()
    await first.track_heartbeats(["a"], T0)
    await first.beat("a", T0 + 7)
    await first.close()
    second = make_store()
    await second.open()
    try:
        [state] = await second.heartbeat_states()
        assert (state.since, state.last_beat) == (T0, T0 + 7)
    finally:
        await second.close()
