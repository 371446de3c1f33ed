"""The ActionQueue contract: each test runs on SQLite and on Redis, with the same result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from router.model import Action, ActionKind, GroupActions
from router.store.protocols import ACTION_KEEP, ACTION_LEASE, Store
from tests.test_store_contract import T0, StoreFactory, backend, make_store, state_url

__all__ = ["backend", "make_store", "state_url"]


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    the_store = make_store()
    await the_store.open()
    yield the_store
    await the_store.close()


def action(action_id: str = "a1", *, at: float = T0, kind: ActionKind = ActionKind.ACK) -> Action:
    return Action(
        id=action_id,
        kind=kind,
        receiver="slack-prod",
        group_key='am/x/{}:{alertname="CPUHigh"}',
        user_id="U1",
        user_name="alice",
        channel="C0PRODALRT",
        message_ts="1700000000.000100",
        received_at=at,
        duration=3600.0,
    )


async def test_an_action_recorded_twice_is_one_action(store: Store) -> None:
    assert await store.enqueue_action(action())
    assert not await store.enqueue_action(action())
    assert await store.pending_actions() == 1
    claims = await store.claim_actions(T0, 10)
    assert [c.action for c in claims] == [action()]


async def test_a_claimed_action_is_not_claimed_again_until_its_lease_ends(store: Store) -> None:
    await store.enqueue_action(action())
    [first] = await store.claim_actions(T0, 10)
    assert await store.claim_actions(T0 + ACTION_LEASE - 1, 10) == []
    [again] = await store.claim_actions(T0 + ACTION_LEASE + 1, 10)
    assert again.action == first.action and again.token != first.token
    # The first holder's finish changes nothing: the action is the new holder's.
    await store.finish_action(first, T0 + ACTION_LEASE + 2)
    [third] = await store.claim_actions(T0 + 2 * ACTION_LEASE + 3, 10)
    assert third.action == first.action


async def test_a_finished_action_is_never_claimed_and_its_replay_is_known(store: Store) -> None:
    await store.enqueue_action(action())
    [claim] = await store.claim_actions(T0, 10)
    await store.finish_action(claim, T0 + 1)
    assert await store.pending_actions() == 0
    assert await store.claim_actions(T0 + 10 * ACTION_LEASE, 10) == []
    assert not await store.enqueue_action(action())
    await store.expire(T0 + 1 + ACTION_KEEP + 1)
    # Expired from SQLite; Redis drops it by TTL: either way not due again by itself.
    assert await store.claim_actions(T0 + ACTION_KEEP + 2, 10) == []


async def test_a_retried_action_comes_back_at_its_time_with_the_attempt_counted(
    store: Store,
) -> None:
    await store.enqueue_action(action())
    [claim] = await store.claim_actions(T0, 10)
    await store.retry_action(claim, T0 + 5)
    assert await store.claim_actions(T0 + 4, 10) == []
    [again] = await store.claim_actions(T0 + 5, 10)
    assert again.attempts == 1


async def test_actions_are_claimed_oldest_first_up_to_the_limit(store: Store) -> None:
    await store.enqueue_action(action("late", at=T0 + 2))
    await store.enqueue_action(action("early", at=T0 + 1))
    await store.enqueue_action(action("future", at=T0 + 100))
    claims = await store.claim_actions(T0 + 3, 1)
    assert [c.action.id for c in claims] == ["early"]
    claims = await store.claim_actions(T0 + 3, 10)
    assert [c.action.id for c in claims] == ["late"]


async def test_two_handles_claiming_at_once_take_each_action_once(make_store: StoreFactory) -> None:
    stores = [make_store(), make_store()]
    for s in stores:
        await s.open()
    try:
        for i in range(20):
            await stores[0].enqueue_action(action(f"a{i}"))
        got = await asyncio.gather(*(s.claim_actions(T0, 20) for s in stores))
        ids = [c.action.id for claims in got for c in claims]
        assert sorted(ids) == sorted(f"a{i}" for i in range(20))
    finally:
        for s in stores:
            await s.close()


async def test_group_actions_change_only_from_the_version_read(store: Store) -> None:
    receiver, group = "slack-prod", "am/x/{}:{}"
    assert await store.group_actions(receiver, group) is None
    fresh = GroupActions(receiver, group)
    acked = await store.set_group_actions(replace(fresh, acked_by="U1", acked_at=T0))
    assert acked is not None and acked.version == 1
    # A second writer that read "nothing" loses: exactly one acknowledgement.
    assert await store.set_group_actions(replace(fresh, acked_by="U2", acked_at=T0)) is None
    stored = await store.group_actions(receiver, group)
    assert stored == acked
    assert stored.to_dict()["acked_by"] == "U1"
    cleared = await store.set_group_actions(stored.cleared_ack())
    assert cleared is not None and cleared.version == 2 and not cleared.acknowledged
    assert await store.group_actions(receiver, group) == cleared


async def test_redis_with_min_replicas_records_a_click_only_once_replicas_have_it(
    redis_url: str, prefix: str
) -> None:
    from router.store.protocols import StoreUnavailable
    from router.store.redis import RedisStore

    # The shared Redis has no replica: the click must not be answered 200.
    store = RedisStore(redis_url, key_prefix=prefix, min_replicas=1)
    await store.open()
    try:
        with pytest.raises(StoreUnavailable, match="min_replicas"):
            await store.enqueue_action(action())
    finally:
        await store.close()
