# ruff: noqa: F811 - the store contract's fixtures, used by name
"""The durable timers' contract (escalation steps, silence polls), on SQLite and on Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from router.store.protocols import Store
from tests.test_store_contract import (  # noqa: F401 - fixtures shared with the store contract
    T0,
    StoreFactory,
    backend,
    make_store,
    opened,
    state_url,
    store,
)

KIND = "escalate"


async def test_an_armed_timer_is_kept_unless_replaced(store: Store) -> None:
    assert await store.set_timer(KIND, "g1", T0 + 10, '{"step":0}')
    assert not await store.set_timer(KIND, "g1", T0 + 99, '{"step":9}')
    found = await store.get_timer(KIND, "g1")
    assert found is not None and (found.due, found.body) == (T0 + 10, '{"step":0}')
    assert await store.set_timer(KIND, "g1", T0 + 20, '{"step":1}', replace=True)
    found = await store.get_timer(KIND, "g1")
    assert found is not None and (found.due, found.body) == (T0 + 20, '{"step":1}')


async def test_only_due_timers_of_the_kind_are_claimed_earliest_first(store: Store) -> None:
    await store.set_timer(KIND, "late", T0 + 30, "l")
    await store.set_timer(KIND, "early", T0 + 10, "e")
    await store.set_timer(KIND, "later", T0 + 500, "x")
    await store.set_timer("watch", "other", T0, "w")
    assert await store.count_due(KIND, T0 + 40) == 2
    taken = await store.claim_timers(KIND, T0 + 40, 10, 60.0)
    assert [(t.key, t.due, t.body) for t in taken] == [
        ("early", T0 + 10, "e"),
        ("late", T0 + 30, "l"),
    ]
    assert await store.claim_timers(KIND, T0 + 40, 10, 60.0) == []
    assert await store.count_due(KIND, T0 + 40) == 0


async def test_a_claim_moved_on_is_due_at_its_new_time_with_its_new_body(store: Store) -> None:
    await store.set_timer(KIND, "g1", T0, "step0")
    (timer,) = await store.claim_timers(KIND, T0, 10, 60.0)
    assert await store.finish_timer(timer, T0 + 600, "step1")
    assert await store.claim_timers(KIND, T0 + 599, 10, 60.0) == []
    (again,) = await store.claim_timers(KIND, T0 + 600, 10, 60.0)
    assert again.body == "step1"
    assert await store.finish_timer(again, None, "")
    assert await store.get_timer(KIND, "g1") is None


async def test_a_dead_holders_timer_is_taken_again_once_its_lease_ends(
    opened: Callable[..., Any],
) -> None:
    one: Store = await opened()
    two: Store = await opened()
    await one.set_timer(KIND, "g1", T0, "step0")
    (first,) = await one.claim_timers(KIND, T0, 10, 30.0)
    assert await two.claim_timers(KIND, T0 + 29, 10, 30.0) == []
    (second,) = await two.claim_timers(KIND, T0 + 30, 10, 30.0)
    # The first holder woke up late: its claim moves nothing any more.
    assert not await one.finish_timer(first, T0 + 999, "stale")
    assert await two.finish_timer(second, T0 + 600, "step1")
    found = await one.get_timer(KIND, "g1")
    assert found is not None and (found.due, found.body) == (T0 + 600, "step1")


async def test_a_cancelled_timer_is_gone_and_its_claim_moves_nothing(store: Store) -> None:
    await store.set_timer(KIND, "g1", T0, "step0")
    (timer,) = await store.claim_timers(KIND, T0, 10, 30.0)
    await store.cancel_timer(KIND, "g1")
    assert await store.get_timer(KIND, "g1") is None
    assert not await store.finish_timer(timer, T0 + 60, "step1")
    assert await store.get_timer(KIND, "g1") is None


async def test_replicas_claiming_at_once_take_each_timer_once(
    opened: Callable[..., Any],
) -> None:
    replicas: list[Store] = [await opened() for _ in range(3)]
    for i in range(30):
        await replicas[0].set_timer(KIND, f"g{i}", T0 + i, str(i))
    batches = await asyncio.gather(
        *(r.claim_timers(KIND, T0 + 100, 50, 60.0) for r in replicas for _ in range(3))
    )
    keys = [t.key for batch in batches for t in batch]
    assert sorted(keys) == sorted(f"g{i}" for i in range(30))


async def test_timers_survive_a_restart(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    await first.set_timer(KIND, "g1", T0 + 5, "step0")
    await first.close()
    second = make_store()
    await second.open()
    try:
        (timer,) = await second.claim_timers(KIND, T0 + 5, 10, 30.0)
        assert (timer.key, timer.body) == ("g1", "step0")
    finally:
        await second.close()
