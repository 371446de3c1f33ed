"""One contract for every state store: SQLite and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.model import (
    AlertState,
    DeliveryState,
    Deploy,
    Event,
    NflogEntry,
    Notification,
    Outcome,
    RouteSettings,
    Status,
)
from router.store.protocols import Store
from router.store.redis import RedisStore
from router.store.sqlite import SQLiteStore
from tests.redis_server import delete_prefix, shared_redis_url, unique_prefix

T0 = 1_800_000_000.0
ROUTE = RouteSettings(receiver="r1", path="route", repeat_interval=3600.0, send_resolved=True)

StoreFactory = Callable[[], Store]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return shared_redis_url()


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory: calling it twice gives two handles on the same underlying state."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
        yield lambda: SQLiteStore(url)
    elif request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        # Each test has keys of its own, deleted afterwards.
        prefix = unique_prefix()
        yield lambda: RedisStore(redis_url, key_prefix=prefix)
        delete_prefix(redis_url, prefix)
    else:
        raise AssertionError(request.param)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    yield s
    await s.close()


def notification(group: str, *fps: str, receiver: str = "r1", at: float = T0) -> Notification:
    route = RouteSettings(
        receiver=receiver, path="route", repeat_interval=3600.0, send_resolved=True
    )
    events = [
        Event(
            source="alertmanager",
            fingerprint=fp,
            group_key=group,
            status=Status.FIRING,
            labels={"alertname": "X", "i": fp},
        )
        for fp in fps
    ]
    return Notification(
        id=uuid.uuid4().hex,
        route=route,
        group_key=group,
        events=events,
        created_at=datetime.fromtimestamp(at, UTC),
    )


async def test_recorded_notification_is_claimed_with_its_events(store: Store) -> None:
    n = notification("g1", "a", "b")
    await store.record([n])
    assert await store.pending_count() == 1
    [claim] = await store.claim(T0, 10, 60)
    assert (claim.receiver, claim.group_key) == ("r1", "g1")
    assert [e.fingerprint for e in claim.latest.events] == ["a", "b"]
    assert claim.latest.route == ROUTE


async def test_a_claimed_group_is_not_claimed_again_while_leased(store: Store) -> None:
    await store.record([notification("g1", "a")])
    assert len(await store.claim(T0, 10, 60)) == 1
    await store.record([notification("g1", "b")])
    assert await store.claim(T0 + 1, 10, 60) == []
    # After the lease runs out, both webhooks of the group come together.
    [claim] = await store.claim(T0 + 61, 10, 60)
    assert len(claim.notifications) == 2


async def test_pending_webhooks_of_one_group_are_claimed_together_in_order(store: Store) -> None:
    first, second = notification("g1", "a"), notification("g1", "a", "b")
    await store.record([first])
    await store.record([second, notification("g2", "c")])
    claims = await store.claim(T0, 10, 60)
    by_group = {c.group_key: c for c in claims}
    assert by_group["g1"].ids == [first.id, second.id]
    assert by_group["g2"].ids != []


async def test_released_claim_waits_for_its_retry_time(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    await store.release(claim, T0 + 30, "rate_limited: slow down", T0)
    assert await store.claim(T0 + 29, 10, 60) == []
    assert await store.next_due() == pytest.approx(T0 + 30)
    [again] = await store.claim(T0 + 30, 10, 60)
    assert again.attempts == 1
    [record] = await store.list_notifications(10)
    assert record.last_error == "rate_limited: slow down"
    assert record.state == "pending"


async def test_completion_records_state_and_the_log_entry_together(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    entry = NflogEntry("r1", "g1", frozenset({"a"}), frozenset(), T0, T0, T0 + 7200, {"ts": "1.2"})
    await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=entry), T0 + 1)
    assert await store.pending_count() == 0
    assert await store.nflog_get("r1", "g1", T0 + 2) == entry
    assert await store.nflog_get("r1", "g1", T0 + 7200) is None  # expired
    [record] = await store.list_notifications(10)
    assert (record.state, record.reason, record.attempts) == ("sent", "first", 1)


async def test_suppressed_notification_is_recorded_with_its_reason(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    await store.complete(claim, Outcome(DeliveryState.SUPPRESSED, "duplicate"), T0)
    [record] = await store.list_notifications(10)
    assert (record.state, record.reason, record.attempts) == ("suppressed", "duplicate", 0)


async def test_records_are_listed_newest_first_and_filtered(store: Store) -> None:
    await store.record([notification("g1", "a")])
    await store.record([notification("g2", "b", receiver="r2")])
    await store.record([notification("g3", "c")])
    assert [r.group_key for r in await store.list_notifications(10)] == ["g3", "g2", "g1"]
    assert [r.group_key for r in await store.list_notifications(1)] == ["g3"]
    assert [r.group_key for r in await store.list_notifications(10, receiver="r2")] == ["g2"]
    assert [r.group_key for r in await store.list_notifications(10, group_key="g1")] == ["g1"]


async def test_accepted_work_survives_a_crash_and_reopen(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    await first.record([notification("g1", "a")])
    await first.claim(T0, 10, 600)  # claimed by a worker that then dies
    # No close(): the process is gone. A new process opens the same state.
    second = make_store()
    await second.open()
    try:
        if isinstance(second, SQLiteStore):
            # One owner: opening voids the dead process's leases.
            [claim] = await second.claim(T0 + 1, 10, 600)
        else:
            # Shared by live replicas: the lease holds, then the claim is taken over.
            assert await second.claim(T0 + 1, 10, 600) == []
            [claim] = await second.claim(T0 + 601, 10, 600)
        assert claim.group_key == "g1"
    finally:
        await second.close()
        await first.close()


async def test_expiry_drops_old_records_and_log_entries(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    entry = NflogEntry("r1", "g1", frozenset({"a"}), frozenset(), T0, T0, T0 + 100, {})
    await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=entry), T0)
    await store.record([notification("g2", "b", at=T0 + 500)])
    gone = await store.expire(T0 + 1000, keep_records=600)
    assert gone >= 2
    assert [r.group_key for r in await store.list_notifications(10)] == ["g2"]
    assert await store.pending_count() == 1


async def test_alert_states_track_what_fires_until_resolved_or_expired(store: Store) -> None:
    a = AlertState("a", {"alertname": "A", "severity": "critical"}, True, T0 + 100)
    b = AlertState("b", {"alertname": "B"}, True, T0 + 100)
    await store.record([notification("g1", "a", "b")], alerts=[a, b])
    assert sorted(x["alertname"] for x in await store.firing_alerts(T0)) == ["A", "B"]
    resolved = AlertState("a", a.labels, False, T0 + 100)
    await store.record([notification("g1", "a")], alerts=[resolved])
    assert [x["alertname"] for x in await store.firing_alerts(T0)] == ["B"]
    assert await store.firing_alerts(T0 + 100) == []


async def test_recent_deploys_match_app_or_namespace_within_the_window(store: Store) -> None:
    deploys = [
        Deploy("backend", "prod", "9f2c1e7", T0 - 240, "on-deployed", "https://argo/backend"),
        Deploy("frontend", "prod", "1111111", T0 - 7200, "on-deployed"),
        Deploy("other", "dev", "2222222", T0 - 60, "on-sync-succeeded"),
    ]
    await store.record([notification("g1", "a")], deploys=deploys)
    got = await store.recent_deploys(T0 - 1800, T0, app="backend", namespace="prod")
    assert [d.revision for d in got] == ["9f2c1e7"]
    assert got[0] == deploys[0]
    got = await store.recent_deploys(T0 - 86400, T0, namespace="prod")
    assert [d.revision for d in got] == ["9f2c1e7", "1111111"]
    assert await store.recent_deploys(T0 - 1800, T0) == []
    await store.expire(T0 + 8 * 86400, keep_records=86400)
    assert await store.recent_deploys(0, T0 + 8 * 86400, namespace="prod") == []


async def test_concurrent_claims_never_share_a_group(store: Store) -> None:
    await store.record([notification(f"g{i}", "a") for i in range(30)])
    taken: list[str] = []
    for _ in range(4):
        rounds = await asyncio.gather(*(store.claim(T0, 4, 60) for _ in range(3)))
        taken += [c.group_key for claims in rounds for c in claims]
    assert sorted(taken) == sorted(f"g{i}" for i in range(30))


async def test_webhooks_recorded_while_held_are_claimed_right_after_completion(
    store: Store,
) -> None:
    first = notification("g1", "a")
    await store.record([first])
    [claim] = await store.claim(T0, 10, 60)
    later = notification("g1", "a", "b")
    await store.record([later])
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 1)
    assert await store.pending_count() == 1
    assert await store.next_due() == 0.0
    [again] = await store.claim(T0 + 1, 10, 60)
    assert again.ids == [later.id]


async def test_release_with_newer_webhooks_makes_the_group_due_at_once(store: Store) -> None:
    first = notification("g1", "a")
    await store.record([first])
    [claim] = await store.claim(T0, 10, 60)
    later = notification("g1", "a", "b")
    await store.record([later])
    await store.release(claim, T0 + 300, "timeout", T0)
    [again] = await store.claim(T0 + 1, 10, 60)
    assert again.ids == [first.id, later.id]
    assert again.attempts == 1


async def test_release_by_a_stale_claim_changes_nothing(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [stale] = await store.claim(T0, 10, 60)
    [current] = await store.claim(T0 + 61, 10, 60)
    await store.release(stale, T0 + 1000, "late", T0 + 62)
    assert await store.claim(T0 + 62, 10, 60) == []  # still held by the current claim
    [record] = await store.list_notifications(10)
    assert (record.attempts, record.last_error) == (0, "")
    await store.release(current, T0 + 70, "rate_limited", T0 + 62)
    [record] = await store.list_notifications(10)
    assert (record.attempts, record.last_error) == (1, "rate_limited")


async def test_a_success_after_retries_keeps_the_last_error(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    await store.release(claim, T0 + 5, "http_500: boom", T0)
    [claim] = await store.claim(T0 + 5, 10, 60)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 6)
    [record] = await store.list_notifications(10)
    assert (record.state, record.attempts, record.last_error) == ("sent", 2, "http_500: boom")
    assert record.updated_at == T0 + 6
    assert await store.next_due() is None


async def test_records_filtered_by_receiver_and_group_together(store: Store) -> None:
    await store.record([notification("g1", "a", receiver="r1")])
    await store.record([notification("g1", "a", receiver="r2")])
    await store.record([notification("g2", "a", receiver="r2")])
    got = await store.list_notifications(10, receiver="r2", group_key="g1")
    assert [(r.receiver, r.group_key) for r in got] == [("r2", "g1")]
    assert got[0].route_path == "route"
    assert got[0].alerts[0]["fingerprint"] == "a"
