"""One contract for every state store: SQLite now, Redis too when it exists."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.models import DeliveryState, Event, Notification, RouteSettings, Status
from router.store.base import NflogEntry, Outcome, Store
from router.store.sqlite import SQLiteStore

T0 = 1_800_000_000.0
ROUTE = RouteSettings(receiver="r1", path="route", repeat_interval=3600.0, send_resolved=True)

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory: calling it twice gives two handles on the same underlying state."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
        return lambda: SQLiteStore(url)
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
        [claim] = await second.claim(T0 + 1, 10, 600)
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
