"""The on-call overrides contract, on SQLite and on Redis (fixtures of test_store_contract)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from router.schedules.rotations import Override
from router.store.protocols import OVERRIDE_KEEP, Store
from tests import test_store_contract as contract

T0 = contract.T0
# The contract's fixtures, so each test here runs on both stores too.
backend = contract.backend
state_url = contract.state_url
make_store = contract.make_store
store = contract.store
opened = contract.opened


def override(oid: str, start: float, end: float, *, who: str = "Bob", at: float = T0) -> Override:
    return Override(oid, "sre", who, start, end, "ana", at)


async def test_an_override_is_kept_until_removed_and_listed_while_not_over(store: Store) -> None:
    first = override("o1", T0 + 3600, T0 + 7200)
    assert await store.add_override(first)
    assert await store.list_overrides(T0) == [first]
    # Listed while it has not ended: not after.
    assert await store.list_overrides(T0 + 7199) == [first]
    assert await store.list_overrides(T0 + 7200) == []
    assert await store.remove_override("o1")
    assert not await store.remove_override("o1")
    assert await store.list_overrides(T0) == []


async def test_an_override_id_is_recorded_once(store: Store) -> None:
    assert await store.add_override(override("o1", T0, T0 + 60))
    assert not await store.add_override(override("o1", T0, T0 + 600, who="Carol"))
    [kept] = await store.list_overrides(T0)
    assert (kept.who, kept.end) == ("Bob", T0 + 60)


async def test_overrides_are_listed_by_start(store: Store) -> None:
    late = override("b", T0 + 500, T0 + 900)
    early = override("a", T0 + 100, T0 + 900, who="Carol")
    await store.add_override(late)
    await store.add_override(early)
    assert await store.list_overrides(T0) == [early, late]


async def test_every_handle_on_the_store_sees_an_override(opened: Callable[..., Any]) -> None:
    one, other = await opened(), await opened()
    written = override("o1", T0, T0 + 60)
    await one.add_override(written)
    assert await other.list_overrides(T0) == [written]
    assert await other.remove_override("o1")
    assert await one.list_overrides(T0) == []


async def test_overrides_long_over_go_when_a_new_one_comes(store: Store) -> None:
    await store.add_override(override("old", T0, T0 + 60))
    later = T0 + 60 + OVERRIDE_KEEP + 1
    await store.add_override(override("new", later, later + 60, at=later))
    assert [o.id for o in await store.list_overrides(0)] == ["new"]


async def test_an_override_survives_a_restart(opened: Callable[..., Any]) -> None:
    first = await opened()
    await first.add_override(override("o1", T0, T0 + 60))
    await first.close()
    again = await opened()
    assert [o.id for o in await again.list_overrides(T0)] == ["o1"]
