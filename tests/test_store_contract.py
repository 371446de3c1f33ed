"""One contract for every state store: each test runs on SQLite and on Redis.

Times are the callers' (`now` arguments) or a fake clock given to the store, far from the
wall clock, so a store that looked at the wall clock would fail here.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from router.config.loader import ConfigError, load_config
from router.config.schema import StateConfig
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
    TimelineEntry,
)
from router.store import open_store
from router.store.protocols import DEPLOY_TTL, RecordQuery, Store, exported_outbox_depth
from router.store.redis import RedisStore
from router.store.sqlite import SQLiteStore
from router.store.url import parse_state_url
from tests.fakes.clock import FakeClock

# 2027: years after the wall clock, so nothing recorded "now" is expired by wall time.
T0 = 1_800_000_000.0
LEASE = 60.0
KEEP = 600.0
ROUTE = RouteSettings(receiver="r1", path="route", repeat_interval=3600.0, send_resolved=True)

StoreFactory = Callable[..., Store]


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def state_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """This test's state, as `state.url` names it (Redis keys under the `prefix` fixture)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    redis_url: str = request.getfixturevalue("redis_url")
    return redis_url


@pytest.fixture
def make_store(backend: str, state_url: str, request: pytest.FixtureRequest) -> StoreFactory:
    """A factory: calling it twice gives two handles on the same underlying state."""

    def make(
        *,
        lease: float = LEASE,
        keep_records: float = KEEP,
        clock: Callable[[], float] | None = None,
    ) -> Store:
        if backend == "sqlite":
            return SQLiteStore(
                parse_state_url(state_url).target, lease=lease, keep_records=keep_records
            )
        prefix: str = request.getfixturevalue("prefix")
        return RedisStore(
            state_url,
            key_prefix=prefix,
            lease=lease,
            keep_records=keep_records,
            clock=clock or FakeClock(T0),
        )

    return make


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def opened(make_store: StoreFactory) -> AsyncIterator[Callable[..., Any]]:
    """Opens stores with the given settings; closes them all afterwards."""
    stores: list[Store] = []

    async def open_one(**settings: Any) -> Store:
        s = make_store(**settings)
        await s.open()
        stores.append(s)
        return s

    yield open_one
    for s in stores:
        await s.close()


def notification(
    group: str, *fps: str, receiver: str = "r1", at: float = T0, not_before: float = 0.0
) -> Notification:
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
        not_before=not_before,
    )


def log_entry(group: str, at: float, expires_at: float, receiver: str = "r1") -> NflogEntry:
    return NflogEntry(receiver, group, frozenset({"a"}), frozenset(), at, at, expires_at, {})


# -- holds: notifications not due before a time ------------------------------------------


async def test_a_held_notification_is_due_when_its_hold_ends(store: Store) -> None:
    held = notification("g1", "a", not_before=T0 + 60)
    await store.record([held])
    assert await store.claim(T0 + 59, 10) == []
    assert await store.next_due() == pytest.approx(T0 + 60)
    [claim] = await store.claim(T0 + 60, 10)
    assert claim.ids == [held.id]
    assert claim.latest.not_before == pytest.approx(T0 + 60)


async def test_new_work_for_a_held_group_makes_it_due_at_once(store: Store) -> None:
    held, news = notification("g1", "a", not_before=T0 + 60), notification("g1", "a")
    await store.record([held])
    await store.record([news])
    [claim] = await store.claim(T0 + 1, 10)
    assert claim.ids == [held.id, news.id]


async def test_a_hold_never_delays_work_that_is_due(store: Store) -> None:
    due, held = notification("g1", "a"), notification("g1", "b", not_before=T0 + 60)
    await store.record([due])
    await store.record([held])
    [claim] = await store.claim(T0, 10)
    assert claim.ids == [due.id, held.id]


async def test_what_stays_held_after_a_completion_waits_for_its_hold(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [first] = await store.claim(T0, 10)
    held = notification("g1", "b", not_before=T0 + 60)
    await store.record([held])
    await store.complete(first, Outcome(DeliveryState.SENT, "first"), T0 + 1)
    assert await store.claim(T0 + 2, 10) == []
    [claim] = await store.claim(T0 + 60, 10)
    assert claim.ids == [held.id]


async def test_a_claim_given_back_unattempted_counts_no_attempt(store: Store) -> None:
    await store.record([notification("g1", "a", not_before=T0 + 60)])
    [early] = await store.claim(T0 + 60, 10)
    await store.release(early, T0 + 90, "", T0 + 60, attempted=False)
    assert await store.claim(T0 + 89, 10) == []
    [again] = await store.claim(T0 + 90, 10)
    assert again.attempts == 0
    [record] = await store.list_notifications(10, group_key="g1")
    assert (record.attempts, record.last_error) == (0, "")


async def test_holds_survive_a_restart(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    await first.record([notification("g1", "a", not_before=T0 + 60)])
    await first.close()
    second = make_store()
    await second.open()
    try:
        assert await second.claim(T0 + 59, 10) == []
        [claim] = await second.claim(T0 + 60, 10)
        assert claim.latest.not_before == pytest.approx(T0 + 60)
    finally:
        await second.close()


# -- records carried by another -------------------------------------------------------------


async def test_records_carried_by_a_digest_are_listed_by_its_id(store: Store) -> None:
    await store.record([notification("g1", "a"), notification("g2", "b"), notification("g3", "c")])
    claims = {c.group_key: c for c in await store.claim(T0, 10)}
    for group in ("g1", "g2"):
        sent = Outcome(DeliveryState.SENT, "first", delivered_in="digest-1")
        await store.complete(claims[group], sent, T0 + 1)
    await store.complete(claims["g3"], Outcome(DeliveryState.SENT, "first"), T0 + 1)
    carried = await store.list_notifications(10, delivered_in="digest-1")
    assert sorted(r.group_key for r in carried) == ["g1", "g2"]
    assert [
        r.group_key for r in await store.list_notifications(10, "r1", "g2", delivered_in="digest-1")
    ] == ["g2"]
    assert await store.list_notifications(10, delivered_in="digest-2") == []


# -- post slots per destination -------------------------------------------------------------


async def test_post_slots_are_spaced_by_the_interval(store: Store) -> None:
    starts = [await store.reserve_slot("chan", 1.0, T0) for _ in range(3)]
    assert starts == [pytest.approx(T0), pytest.approx(T0 + 1), pytest.approx(T0 + 2)]
    # Another destination has slots of its own; a late caller never gets a past slot.
    assert await store.reserve_slot("other", 1.0, T0) == pytest.approx(T0)
    assert await store.reserve_slot("chan", 1.0, T0 + 10) == pytest.approx(T0 + 10)


async def test_a_hold_pushes_every_later_slot_back(store: Store) -> None:
    await store.reserve_slot("chan", 1.0, T0)
    await store.hold_slots("chan", T0 + 30)
    assert await store.reserve_slot("chan", 1.0, T0 + 2) == pytest.approx(T0 + 30)
    # A shorter hold never brings slots forward.
    await store.hold_slots("chan", T0 + 5)
    assert await store.reserve_slot("chan", 1.0, T0 + 2) == pytest.approx(T0 + 31)


# -- the outbox and its leases ----------------------------------------------------------


async def test_recorded_notification_is_claimed_with_its_events(store: Store) -> None:
    n = notification("g1", "a", "b")
    await store.record([n])
    assert await store.pending_count() == 1
    [claim] = await store.claim(T0, 10)
    assert (claim.receiver, claim.group_key) == ("r1", "g1")
    assert [e.fingerprint for e in claim.latest.events] == ["a", "b"]
    assert claim.latest.route == ROUTE


async def test_a_retried_record_is_recorded_once(store: Store) -> None:
    n = notification("g1", "a")
    await store.record([n])
    await store.record([n, notification("g2", "b")])  # the first reply was lost
    assert await store.pending_count() == 2
    claims = await store.claim(T0, 10)
    assert sorted(c.group_key for c in claims) == ["g1", "g2"]
    [g1] = [c for c in claims if c.group_key == "g1"]
    assert g1.ids == [n.id]
    assert len(await store.list_notifications(10)) == 2


async def test_a_claimed_group_is_held_for_the_stores_lease(opened: Callable[..., Any]) -> None:
    store = await opened(lease=30.0)
    await store.record([notification("g1", "a")])
    [held] = await store.claim(T0, 10)
    await store.record([notification("g1", "b")])
    # A webhook for a held group waits for the claim to end or its lease to run out.
    assert await store.next_due() == T0 + 30
    assert await store.claim(T0 + 29.9, 10) == []
    # Then both webhooks of the group come together, under a new claim.
    [taken] = await store.claim(T0 + 30, 10)
    assert len(taken.notifications) == 2
    assert taken.token != held.token


async def test_a_renewed_claim_is_held_until_its_renewed_lease_ends(
    opened: Callable[..., Any],
) -> None:
    store = await opened(lease=30.0)
    await store.record([notification("g1", "a")])
    [held] = await store.claim(T0, 10)
    assert await store.renew([held], T0 + 20) == {held.token}
    await store.record([notification("g1", "b")])
    # Neither the first lease's end nor new work for the group frees it.
    assert await store.claim(T0 + 31, 10) == []
    assert await store.next_due() == pytest.approx(T0 + 50)
    [taken] = await store.claim(T0 + 50, 10)
    assert taken.token != held.token
    assert len(taken.notifications) == 2


async def test_a_claim_taken_over_or_finished_is_not_renewed(store: Store) -> None:
    await store.record([notification("g1", "a"), notification("g2", "b")])
    claims = {c.group_key: c for c in await store.claim(T0, 10)}
    await store.complete(claims["g1"], Outcome(DeliveryState.SENT, "first"), T0 + 1)
    [current] = await store.claim(T0 + LEASE, 10)  # g2's holder looked dead
    assert current.group_key == "g2"
    assert await store.renew(list(claims.values()), T0 + LEASE + 1) == set()
    # The stale renewal did not extend anything: the new holder's lease stands.
    assert await store.renew([current], T0 + LEASE + 2) == {current.token}
    assert await store.next_due() == pytest.approx(T0 + 2 * LEASE + 2)
    assert await store.renew([], T0) == set()


async def test_claims_taken_together_are_renewed_each_on_its_own(store: Store) -> None:
    await store.record([notification(f"g{i}", "a") for i in range(3)])
    first = {c.group_key: c for c in await store.claim(T0, 10)}
    assert len({c.token for c in first.values()}) == 3
    await store.complete(first["g0"], Outcome(DeliveryState.SENT, "first"), T0 + 1)
    await store.release(first["g1"], T0 + 2, "http_500", T0 + 1)
    [again] = await store.claim(T0 + 2, 10)  # g1, by whoever claims next
    renewed = await store.renew([*first.values(), again], T0 + 3)
    assert renewed == {first["g2"].token, again.token}


async def test_a_lease_that_ran_out_is_renewed_while_nobody_took_it(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    # The holder could not reach the store for a while; nobody claimed the group meanwhile.
    assert await store.renew([claim], T0 + LEASE + 5) == {claim.token}
    assert await store.claim(T0 + LEASE + 6, 10) == []
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + LEASE + 7)
    assert [r.state for r in await store.list_notifications(10)] == ["sent"]


async def test_thousands_of_claims_are_renewed_in_one_call(store: Store) -> None:
    await store.record([notification(f"g{i}", "a") for i in range(2500)])
    claims = await store.claim(T0, 5000)
    assert len(claims) == 2500
    assert await store.renew(claims, T0 + 30) == {c.token for c in claims}
    assert await store.claim(T0 + LEASE + 1, 5000) == []
    assert len(await store.claim(T0 + LEASE + 30, 5000)) == 2500


async def test_a_released_claim_is_not_renewed(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    await store.release(claim, T0 + 5, "http_500", T0)
    assert await store.renew([claim], T0 + 1) == set()
    [again] = await store.claim(T0 + 5, 10)
    assert again.attempts == 1


async def test_a_completion_after_takeover_changes_nothing(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [stale] = await store.claim(T0, 10)
    [current] = await store.claim(T0 + LEASE, 10)  # the first worker looked dead
    late_entry = log_entry("g1", T0 + 61, T0 + 7200)
    await store.complete(stale, Outcome(DeliveryState.SENT, "first", nflog=late_entry), T0 + 61)
    assert await store.pending_count() == 1
    assert await store.nflog_get("r1", "g1", T0 + 62) is None
    mine = log_entry("g1", T0 + 64, T0 + 7200)
    await store.complete(current, Outcome(DeliveryState.SENT, "first", nflog=mine), T0 + 64)
    # Completing again (a retried call, or the late worker once more) is a no-op.
    await store.complete(current, Outcome(DeliveryState.FAILED, "x", error="boom"), T0 + 65)
    await store.complete(stale, Outcome(DeliveryState.SENT, "first"), T0 + 66)
    assert await store.nflog_get("r1", "g1", T0 + 70) == mine
    [record] = await store.list_notifications(10)
    assert (record.state, record.attempts, record.updated_at) == ("sent", 1, T0 + 64)
    assert await store.next_due() is None


async def test_a_completion_after_the_lease_counts_while_nobody_took_over(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 5 * LEASE)
    assert await store.claim(T0 + 5 * LEASE + 1, 10) == []
    assert [r.state for r in await store.list_notifications(10)] == ["sent"]


async def test_pending_webhooks_of_one_group_are_claimed_together_in_order(store: Store) -> None:
    first, second = notification("g1", "a"), notification("g1", "a", "b")
    await store.record([first])
    await store.record([second, notification("g2", "c")])
    claims = await store.claim(T0, 10)
    by_group = {c.group_key: c for c in claims}
    assert by_group["g1"].ids == [first.id, second.id]
    assert by_group["g2"].ids != []


async def test_released_claim_waits_for_its_retry_time(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    await store.release(claim, T0 + 30, "rate_limited: slow down", T0)
    assert await store.claim(T0 + 29, 10) == []
    assert await store.next_due() == pytest.approx(T0 + 30)
    [again] = await store.claim(T0 + 30, 10)
    assert again.attempts == 1
    [record] = await store.list_notifications(10)
    assert record.last_error == "rate_limited: slow down"
    assert record.state == "pending"


async def test_completion_records_state_and_the_log_entry_together(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    entry = NflogEntry("r1", "g1", frozenset({"a"}), frozenset(), T0, T0, T0 + 7200, {"ts": "1.2"})
    await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=entry), T0 + 1)
    assert await store.pending_count() == 0
    assert await store.nflog_get("r1", "g1", T0 + 2) == entry
    assert await store.nflog_get("r1", "g1", T0 + 7200) is None  # expired
    [record] = await store.list_notifications(10)
    assert (record.state, record.reason, record.attempts) == ("sent", "first", 1)


async def test_suppressed_notification_is_recorded_with_its_reason(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    await store.complete(claim, Outcome(DeliveryState.SUPPRESSED, "duplicate"), T0)
    [record] = await store.list_notifications(10)
    assert (record.state, record.reason, record.attempts) == ("suppressed", "duplicate", 0)


async def test_webhooks_folded_into_the_newest_point_at_its_record(store: Store) -> None:
    older, newer = notification("g1", "a"), notification("g1", "a", "b")
    await store.record([older])
    await store.record([newer])
    [claim] = await store.claim(T0, 10)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 1)
    by_id = {r.id: r for r in await store.list_notifications(10)}
    assert by_id[older.id].delivered_in == newer.id
    assert by_id[newer.id].delivered_in == ""


async def test_a_digest_names_the_record_that_carried_every_webhook(store: Store) -> None:
    older, newer = notification("g1", "a"), notification("g1", "a", "b")
    await store.record([older])
    await store.record([newer])
    [claim] = await store.claim(T0, 10)
    outcome = Outcome(DeliveryState.SENT, "first", delivered_in="digest-1")
    await store.complete(claim, outcome, T0 + 1)
    assert {r.delivered_in for r in await store.list_notifications(10)} == {"digest-1"}


async def test_concurrent_claims_never_share_a_group(store: Store) -> None:
    await store.record([notification(f"g{i}", "a") for i in range(30)])
    taken: list[str] = []
    for _ in range(4):
        rounds = await asyncio.gather(*(store.claim(T0, 4) for _ in range(3)))
        taken += [c.group_key for claims in rounds for c in claims]
    assert sorted(taken) == sorted(f"g{i}" for i in range(30))


async def test_webhooks_recorded_while_held_are_claimed_right_after_completion(
    store: Store,
) -> None:
    first = notification("g1", "a")
    await store.record([first])
    [claim] = await store.claim(T0, 10)
    later = notification("g1", "a", "b")
    await store.record([later])
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 1)
    assert await store.pending_count() == 1
    assert await store.next_due() == 0.0
    [again] = await store.claim(T0 + 1, 10)
    assert again.ids == [later.id]


async def test_release_with_newer_webhooks_makes_the_group_due_at_once(store: Store) -> None:
    first = notification("g1", "a")
    await store.record([first])
    [claim] = await store.claim(T0, 10)
    later = notification("g1", "a", "b")
    await store.record([later])
    await store.release(claim, T0 + 300, "timeout", T0)
    [again] = await store.claim(T0 + 1, 10)
    assert again.ids == [first.id, later.id]
    assert again.attempts == 1


async def test_release_by_a_stale_claim_changes_nothing(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [stale] = await store.claim(T0, 10)
    [current] = await store.claim(T0 + LEASE + 1, 10)
    await store.release(stale, T0 + 1000, "late", T0 + 62)
    assert await store.claim(T0 + 62, 10) == []  # still held by the current claim
    [record] = await store.list_notifications(10)
    assert (record.attempts, record.last_error) == (0, "")
    await store.release(current, T0 + 70, "rate_limited", T0 + 62)
    [record] = await store.list_notifications(10)
    assert (record.attempts, record.last_error) == (1, "rate_limited")


async def test_a_success_after_retries_keeps_the_last_error(store: Store) -> None:
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    await store.release(claim, T0 + 5, "http_500: boom", T0)
    [claim] = await store.claim(T0 + 5, 10)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 6)
    [record] = await store.list_notifications(10)
    assert (record.state, record.attempts, record.last_error) == ("sent", 2, "http_500: boom")
    assert record.updated_at == T0 + 6
    assert await store.next_due() is None


async def test_accepted_work_survives_a_crash_and_reopen(
    make_store: StoreFactory, backend: str
) -> None:
    first = make_store(lease=600.0)
    await first.open()
    await first.record([notification("g1", "a")])
    await first.claim(T0, 10)  # claimed by a worker that then dies
    # No close(): the process is gone. A new process opens the same state.
    second = make_store(lease=600.0)
    await second.open()
    try:
        if backend == "sqlite":
            # One owner: opening voids the dead process's leases.
            [claim] = await second.claim(T0 + 1, 10)
        else:
            # Shared by live replicas: the lease holds, then the claim is taken over.
            assert await second.claim(T0 + 1, 10) == []
            [claim] = await second.claim(T0 + 600, 10)
        assert claim.group_key == "g1"
    finally:
        await second.close()
        await first.close()


# -- delivery records -------------------------------------------------------------------


async def test_records_are_listed_newest_first_and_filtered(store: Store) -> None:
    await store.record([notification("g1", "a")])
    await store.record([notification("g2", "b", receiver="r2")])
    await store.record([notification("g3", "c")])
    assert [r.group_key for r in await store.list_notifications(10)] == ["g3", "g2", "g1"]
    assert [r.group_key for r in await store.list_notifications(1)] == ["g3"]
    assert [r.group_key for r in await store.list_notifications(10, receiver="r2")] == ["g2"]
    assert [r.group_key for r in await store.list_notifications(10, group_key="g1")] == ["g1"]


async def test_records_filtered_by_receiver_and_group_together(store: Store) -> None:
    await store.record([notification("g1", "a", receiver="r1")])
    await store.record([notification("g1", "a", receiver="r2")])
    await store.record([notification("g2", "a", receiver="r2")])
    got = await store.list_notifications(10, receiver="r2", group_key="g1")
    assert [(r.receiver, r.group_key) for r in got] == [("r2", "g1")]
    assert got[0].route_path == "route"
    assert got[0].alerts[0]["fingerprint"] == "a"


# -- retention --------------------------------------------------------------------------


async def test_finished_records_are_kept_for_keep_records(opened: Callable[..., Any]) -> None:
    store = await opened(keep_records=KEEP)
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0)
    # Pending work is never expired, however old.
    await store.record([notification("g2", "b", at=T0 - 30 * 86400)])
    assert await store.expire(T0 + KEEP - 1) == 0
    assert len(await store.list_notifications(10)) == 2
    assert await store.expire(T0 + KEEP + 1) == 1
    assert [r.group_key for r in await store.list_notifications(10)] == ["g2"]
    assert await store.pending_count() == 1


async def test_log_entries_expire_at_their_expiry(store: Store) -> None:
    await store.record([notification("g1", "a"), notification("g2", "a")])
    for claim, expires in zip(await store.claim(T0, 10), (T0 + 100, T0 + 200), strict=True):
        entry = log_entry(claim.group_key, T0, expires)
        await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=entry), T0)
    assert await store.expire(T0 + 99) == 0
    assert await store.expire(T0 + 100) == 1
    groups = {g: await store.nflog_get("r1", g, T0 + 150) for g in ("g1", "g2")}
    assert [g for g, entry in groups.items() if entry is not None] == ["g2"]
    assert await store.expire(T0 + 200) == 1


async def tell(
    store: Store, group: str, firing: set[str], at: float, expires_at: float, receiver: str = "r1"
) -> NflogEntry:
    """Deliver one notification of `group` and log `firing` as what its receiver was told."""
    await store.record([notification(group, "a", receiver=receiver, at=at)])
    [claim] = await store.claim(at, 10)
    resolved = frozenset({"a"} - firing)
    entry = NflogEntry(receiver, group, frozenset(firing), resolved, T0, at, expires_at, {})
    await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=entry), at)
    return entry


async def test_firing_groups_are_live_entries_with_firing_alerts_newest_notified_first(
    store: Store,
) -> None:
    g1 = await tell(store, "g1", {"a"}, T0 + 1, T0 + 7200)
    short = await tell(store, "short", {"a"}, T0 + 2, T0 + 50)
    await tell(store, "quiet", set(), T0 + 3, T0 + 7200)
    g2 = await tell(store, "g2", {"a", "b"}, T0 + 4, T0 + 7200, receiver="r2")
    assert await store.firing_groups(T0 + 10, 10) == [g2, short, g1]
    assert await store.firing_groups(T0 + 10, 2) == [g2, short]
    # Expired, whether or not expire() has dropped it yet.
    assert await store.firing_groups(T0 + 50, 10) == [g2, g1]
    await store.expire(T0 + 60)
    assert await store.firing_groups(T0 + 60, 10) == [g2, g1]
    assert await store.firing_groups(T0 + 60, 0) == []


async def test_a_group_whose_alerts_all_resolved_leaves_the_firing_groups(store: Store) -> None:
    await tell(store, "g1", {"a"}, T0 + 1, T0 + 7200)
    other = await tell(store, "g2", {"a"}, T0 + 2, T0 + 7200)
    await tell(store, "g1", set(), T0 + 3, T0 + 7200)
    assert await store.firing_groups(T0 + 4, 10) == [other]
    again = await tell(store, "g1", {"a"}, T0 + 5, T0 + 7200)
    assert await store.firing_groups(T0 + 6, 10) == [again, other]


async def test_firing_groups_are_gone_once_their_entries_expire(store: Store) -> None:
    await tell(store, "g1", {"a"}, T0 + 1, T0 + 100)
    assert await store.expire(T0 + 100) == 1
    assert await store.firing_groups(T0 + 100, 10) == []
    # A new entry of the group after its old one was dropped is found again.
    entry = await tell(store, "g1", {"a"}, T0 + 200, T0 + 7200)
    assert await store.firing_groups(T0 + 200, 10) == [entry]


async def test_alert_states_expire_at_their_expiry(store: Store) -> None:
    a = AlertState("a", {"alertname": "A"}, True, T0 + 100)
    b = AlertState("b", {"alertname": "B"}, True, T0 + 200)
    await store.record([], alerts=[a, b])
    assert await store.expire(T0 + 99) == 0
    assert await store.expire(T0 + 100) == 1
    assert [x["alertname"] for x in await store.firing_alerts(T0 + 150)] == ["B"]


async def test_deploys_are_kept_for_the_deploy_ttl(store: Store) -> None:
    old = Deploy("backend", "prod", "1111111", T0 - DEPLOY_TTL - 1, "on-deployed")
    recent = Deploy("backend", "prod", "2222222", T0 - 60, "on-deployed")
    await store.record([], deploys=[old, recent])
    assert await store.expire(T0) == 1
    got = await store.recent_deploys(0, T0, app="backend")
    assert [d.revision for d in got] == ["2222222"]


# -- alert states and deploys -----------------------------------------------------------


async def test_alert_states_track_what_fires_until_resolved_or_expired(store: Store) -> None:
    a = AlertState("a", {"alertname": "A", "severity": "critical"}, True, T0 + 100)
    b = AlertState("b", {"alertname": "B"}, True, T0 + 100)
    await store.record([notification("g1", "a", "b")], alerts=[a, b])
    assert sorted(x["alertname"] for x in await store.firing_alerts(T0)) == ["A", "B"]
    resolved = AlertState("a", a.labels, False, T0 + 100)
    await store.record([notification("g1", "a")], alerts=[resolved])
    assert [x["alertname"] for x in await store.firing_alerts(T0)] == ["B"]
    assert await store.firing_alerts(T0 + 100) == []


async def test_a_resolved_alert_is_forgotten_not_kept(store: Store) -> None:
    a = AlertState("a", {"alertname": "A"}, True, T0 + 100)
    b = AlertState("b", {"alertname": "B"}, True, T0 + 100)
    await store.record([], alerts=[a, b])
    await store.record([], alerts=[AlertState("a", a.labels, False, T0 + 100)])
    # Only the firing alert was still stored for expiry to remove.
    assert await store.expire(T0 + 100) == 1
    # A later firing brings the alert back.
    await store.record([], alerts=[AlertState("a", a.labels, True, T0 + 300)])
    assert [x["alertname"] for x in await store.firing_alerts(T0 + 200)] == ["A"]


async def test_the_alerts_generation_moves_only_when_what_fires_changes(store: Store) -> None:
    a = AlertState("a", {"alertname": "A"}, True, T0 + 100)
    seen = [await store.alerts_generation()]

    async def after(alerts: list[AlertState]) -> bool:
        """Record `alerts`; whether the generation moved."""
        await store.record([notification("g1", "a")], alerts=alerts)
        seen.append(await store.alerts_generation())
        return seen[-1] != seen[-2]

    assert await after([a])  # a new firing alert
    assert not await after([AlertState("a", a.labels, True, T0 + 500)])  # still firing
    assert not await after([])  # no alert states at all
    assert await after([AlertState("a", {"alertname": "A", "x": "1"}, True, T0 + 500)])
    assert await after([AlertState("a", a.labels, False, T0 + 500)])  # resolved
    assert not await after([AlertState("zz", {"alertname": "Z"}, False, T0 + 500)])


async def test_the_last_state_of_an_alert_in_one_webhook_wins(store: Store) -> None:
    firing = AlertState("a", {"alertname": "A"}, True, T0 + 100)
    resolved = AlertState("a", {"alertname": "A"}, False, T0 + 100)
    await store.record([], alerts=[resolved, firing])
    assert [x["alertname"] for x in await store.firing_alerts(T0)] == ["A"]
    await store.record([], alerts=[firing, resolved])
    assert await store.firing_alerts(T0) == []


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
    await store.expire(T0 + 8 * 86400)
    assert await store.recent_deploys(0, T0 + 8 * 86400, namespace="prod") == []


# -- the injected clock -----------------------------------------------------------------


async def test_a_store_on_a_fake_clock_keeps_and_expires_by_that_clock(
    opened: Callable[..., Any],
) -> None:
    # 2001: by the wall clock, everything below would have expired decades ago.
    past = 1_000_000_000.0
    store = await opened(clock=FakeClock(past))
    alert = AlertState("a", {"alertname": "A"}, True, past + 100)
    await store.record([], alerts=[alert])  # no notification to take the time from
    await store.record([notification("g1", "a", at=past)])
    [claim] = await store.claim(past, 10)
    entry = log_entry("g1", past, past + 100)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=entry), past)
    assert await store.expire(past + 99) == 0
    assert [x["alertname"] for x in await store.firing_alerts(past + 99)] == ["A"]
    assert await store.nflog_get("r1", "g1", past + 99) == entry
    assert len(await store.list_notifications(10)) == 1
    assert await store.expire(past + KEEP + 1) == 3  # alert, log entry, record


async def test_a_lone_process_leads_and_exports_the_outbox_depth(store: Store) -> None:
    await store.record([notification("g1", "a"), notification("g2", "b")])
    assert await store.lead("chores")
    assert await store.lead("chores")  # renewing is leading still
    assert await exported_outbox_depth(store) == 2


# -- state URLs -------------------------------------------------------------------------


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


async def test_url_options_set_the_lease_and_retention_on_every_scheme(
    state_url: str, prefix: str
) -> None:
    state = StateConfig(url=with_query(state_url, "lease=30s&keep_records=1d"), key_prefix=prefix)
    assert (state.lease, state.keep_records) == (30.0, 86400.0)
    store = open_store(state, clock=FakeClock(T0))
    await store.open()
    try:
        await store.record([notification("g1", "a")])
        assert len(await store.claim(T0, 10)) == 1
        assert await store.claim(T0 + 29, 10) == []
        [claim] = await store.claim(T0 + 30, 10)
        await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 30)
        assert await store.expire(T0 + 30 + 86399) == 0
        assert await store.expire(T0 + 30 + 86401) == 1
    finally:
        await store.close()


async def test_lease_and_retention_keys_configure_every_store(state_url: str, prefix: str) -> None:
    state = StateConfig.model_validate(
        {"url": state_url, "key_prefix": prefix, "lease": "45s", "keep_records": "2h"}
    )
    store = open_store(state, clock=FakeClock(T0))
    await store.open()
    try:
        await store.record([notification("g1", "a")])
        assert len(await store.claim(T0, 10)) == 1
        assert await store.next_due() == T0 + 45
        [claim] = await store.claim(T0 + 45, 10)
        await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 45)
        assert await store.expire(T0 + 45 + 7201) == 1
    finally:
        await store.close()


def test_state_settings_default_to_short_renewed_leases_and_a_week(state_url: str) -> None:
    state = StateConfig(url=state_url)
    assert (state.lease, state.lease_renew, state.keep_records) == (15.0, 5.0, 7 * 86400.0)
    assert state.min_replicas == 0


async def test_the_renewal_period_is_a_setting_and_a_url_option(state_url: str) -> None:
    state = StateConfig(url=with_query(state_url, "lease=1m&lease_renew=20s"))
    assert (state.lease, state.lease_renew) == (60.0, 20.0)
    keys = StateConfig.model_validate({"url": state_url, "lease": "1m", "lease_renew": "10s"})
    assert (keys.lease, keys.lease_renew) == (60.0, 10.0)


def test_a_short_lease_alone_is_renewed_every_third_of_it(state_url: str) -> None:
    assert StateConfig(url=with_query(state_url, "lease=6s")).lease_renew == 2.0
    assert StateConfig.model_validate({"url": state_url, "lease": "1h"}).lease_renew == 5.0


@pytest.mark.parametrize(
    "settings",
    [
        {"lease_renew": "6s"},
        {"lease": "10s", "lease_renew": "5s"},
        {"lease": "1m", "lease_renew": "30s"},
    ],
)
def test_a_renewal_period_above_a_third_of_the_lease_is_refused(
    state_url: str, settings: dict[str, str]
) -> None:
    with pytest.raises(ValidationError) as refused:
        StateConfig.model_validate({"url": state_url, **settings})
    assert "must be at most a third of lease" in str(refused.value)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("lease=abc", "invalid duration 'abc'"),
        ("lease=0s", "must be a positive duration"),
        ("keep_records=-5", "must be a positive duration"),
        ("lease=", "needs a value"),
        ("lease=1m&lease=2m", "given twice"),
        ("lease_renew=0", "must be a positive duration"),
        (
            "socket_timeout=30",
            "unknown option 'socket_timeout' (known: lease, lease_renew, keep_records",
        ),
    ],
)
def test_bad_url_options_are_refused_on_every_scheme(
    state_url: str, query: str, problem: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        StateConfig(url=with_query(state_url, query))
    assert problem in str(refused.value)


def test_a_setting_given_as_key_and_url_option_is_refused(state_url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        StateConfig.model_validate({"url": with_query(state_url, "lease=30s"), "lease": "1m"})
    assert "lease is set both as state.lease and as ?lease= in state.url" in str(refused.value)


def check_state_url(tmp_path: Path, url: str) -> list[str]:
    """What `alert-router check` reports for a config with this state.url."""
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"state:\n  url: '{url}'\nreceivers: [{{name: out, log: {{}}}}]\nroute: {{receiver: out}}\n"
    )
    try:
        load_config(str(path))
    except ConfigError as exc:
        return [p.replace(str(path), "routes.yaml") for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite:///:memory:", "sqlite needs a database file"),
        ("sqlite://", "sqlite needs a database file"),
        ("sqlite:///", "sqlite needs a database file"),
        ("sqlite://state.db", "sqlite URLs have no host"),
        ("sqlite:///./data/", "names a directory"),
        ("sqlite:///x.db?mode=memory", "unknown option 'mode'"),
        ("postgres://db/x", "unsupported scheme (postgres://)"),
        ("redis:///0", "names no Redis host"),
        ("redis://:s3cret@h:port/0", "the Redis port must be a number from 1 to 65535"),
        ("redis://h:99999/0", "the Redis port must be a number from 1 to 65535"),
        ("redis://h:6379/zero", "the Redis database must be a number"),
        ("redis://h:6379/0?lease=abc", "invalid duration 'abc'"),
        ("redis://h:6379/0#x", "must not have a #fragment"),
        ("redis://h:6379/0?ssl_cert_reqs=none", "unknown option 'ssl_cert_reqs'"),
        ("rediss://h:6379/0?ssl_cert_reqs=maybe", "must be one of none, optional, required"),
        ("redis+sentinel://h:26379", "names no master"),
        ("redis+sentinel://h:26379/", "names no master"),
        ("redis+sentinel:///mymaster/0", "names no Sentinel host"),
        ("redis+sentinel://h1:26379,/mymaster/0", "names no Sentinel host"),
        ("redis+sentinel://:s3cret@h:port/mymaster", "a Sentinel port must be a number"),
        ("redis+sentinel://h:0/mymaster", "a Sentinel port must be a number"),
        ("redis+sentinel://h/mymaster/zero", "the Redis database must be a number"),
        ("redis+sentinel://h/mymaster/0/x", "the path is /<master name>/<db>"),
        ("redis+sentinel://h/m?ssl_cert_reqs=none", "unknown option 'ssl_cert_reqs'"),
        ("sentinel://h:26379/mymaster", "unsupported scheme (sentinel://)"),
    ],
)
def test_check_reports_every_state_url_serve_would_reject(
    tmp_path: Path, url: str, problem: str
) -> None:
    [reported] = check_state_url(tmp_path, url)
    assert reported.startswith("routes.yaml:2:8: state.url: "), reported
    assert problem in reported
    assert "s3cret" not in reported


def test_check_accepts_the_documented_state_urls(tmp_path: Path) -> None:
    for url in (
        "sqlite:///./alert-router.db",
        "sqlite:////var/lib/alert-router/state.db?lease=30s&keep_records=1d",
        "redis://redis:6379/0",
        "redis://:pw@redis:6379/2?lease=2.5",
        "redis://[::1]:6379",
        "rediss://user:pw@redis.example:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem",
        "redis+sentinel://sentinel:26379/mymaster/0",
        "redis+sentinel://:pw@s1:26379,s2:26380,[::1]/mymaster?lease=30s",
    ):
        assert check_state_url(tmp_path, url) == [], url


def test_urls_are_taken_apart_into_what_the_stores_open() -> None:
    sqlite = parse_state_url("sqlite:////var/lib/x.db?lease=30s")
    assert (sqlite.scheme, sqlite.target, dict(sqlite.options)) == (
        "sqlite",
        "/var/lib/x.db",
        {"lease": 30.0},
    )
    assert parse_state_url("sqlite:///./x.db").target == "./x.db"
    redis = parse_state_url("rediss://u:pw@h:6380/2?keep_records=1d&ssl_cert_reqs=none")
    assert redis.target == "rediss://u:pw@h:6380/2?ssl_cert_reqs=none"
    assert dict(redis.options) == {"keep_records": 86400.0}
    sentinel = parse_state_url("redis+sentinel://:pw@s1,s2:26380/primary/3?lease_renew=2s")
    assert sentinel.is_redis and sentinel.is_sentinel
    assert sentinel.sentinels == (("s1", 26379), ("s2", 26380))
    assert (sentinel.master, sentinel.db) == ("primary", 3)
    assert sentinel.target == "redis+sentinel://:pw@s1,s2:26380/primary/3"
    assert dict(sentinel.options) == {"lease_renew": 2.0}
    assert parse_state_url("redis+sentinel://s/m").db == 0


def test_min_replicas_needs_redis(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        StateConfig(url=f"sqlite:///{tmp_path}/s.db", min_replicas=1)
    assert "min_replicas counts Redis replicas: it needs a Redis state.url" in str(refused.value)
    assert StateConfig(url="redis+sentinel://s/m", min_replicas=1).min_replicas == 1


# -- SQLite's own: files written by the previous version --------------------------------

_VERSION_0_SCHEMA = """
CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, receiver TEXT NOT NULL,
    group_key TEXT NOT NULL, route TEXT NOT NULL, events TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', next_attempt_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0, lease_token TEXT NOT NULL DEFAULT '',
    delivered_in TEXT NOT NULL DEFAULT ''
);
CREATE TABLE alerts (
    fingerprint TEXT PRIMARY KEY, labels TEXT NOT NULL, firing INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX alerts_firing ON alerts (expires_at) WHERE firing = 1;
"""


async def test_a_database_of_the_previous_layout_opens_with_its_work(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.executescript(_VERSION_0_SCHEMA)
    route = '{"receiver":"r1","path":"route","repeat_interval":3600.0,"send_resolved":true}'
    conn.execute(
        "INSERT INTO notifications (id, receiver, group_key, route, events, created_at,"
        " updated_at, state, next_attempt_at, lease_until, lease_token)"
        " VALUES ('n1', 'r1', 'g1', ?, '[]', ?, ?, 'pending', 0, ?, 'dead-worker')",
        (route, T0, T0, T0 + 600),
    )
    conn.executemany(
        "INSERT INTO alerts VALUES (?, ?, ?, ?)",
        [("a", '{"alertname":"A"}', 1, T0 + 100), ("b", '{"alertname":"B"}', 0, T0 + 100)],
    )
    conn.commit()
    conn.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        [claim] = await store.claim(T0, 10)
        assert claim.ids == ["n1"]
        assert [x["alertname"] for x in await store.firing_alerts(T0)] == ["A"]
        await store.record([], alerts=[AlertState("c", {"alertname": "C"}, True, T0 + 100)])
        assert await store.expire(T0 + 100) == 2  # the resolved one was dropped on opening
    finally:
        await store.close()
    columns = {
        table: {row[1] for row in sqlite3.connect(path).execute(f"PRAGMA table_info({table})")}
        for table in ("notifications", "alerts")
    }
    assert not {"lease_until", "lease_token"} & columns["notifications"]
    assert "firing" not in columns["alerts"]


# -- record queries: the console's filters, pages, timelines, counts and retry ---------


def labelled(
    group: str,
    *,
    receiver: str = "r1",
    at: float = T0,
    source: str = "alertmanager",
    **labels: str,
) -> Notification:
    """A one-alert notification with these labels (alertname X unless given)."""
    base = notification(group, "fp-" + group, receiver=receiver, at=at)
    event = base.events[0]
    event = Event(
        source=source,
        fingerprint=event.fingerprint,
        group_key=group,
        status=Status.FIRING,
        labels={"alertname": "X", **labels},
    )
    return Notification(base.id, base.route, group, [event], base.created_at)


async def finish(
    store: Store, state: DeliveryState, reason: str, *, now: float = T0 + 1, **kw: Any
) -> None:
    """Claim the oldest due group and end it in `state`."""
    [claim] = await store.claim(now, 1)
    await store.complete(claim, Outcome(state, reason, **kw), now)


async def groups_of(store: Store, query: RecordQuery, limit: int = 100) -> list[str]:
    return [r.group_key for r in (await store.query_notifications(query, limit)).records]


async def test_every_filter_narrows_the_records_newest_first(store: Store) -> None:
    await store.record([labelled("g1", env="prod", severity="critical")])
    await store.record([labelled("g2", env="dev", severity="critical", receiver="r2")])
    await store.record([labelled("g3", env="prod", severity="warning", source="argocd")])
    await finish(store, DeliveryState.SENT, "first")
    await finish(store, DeliveryState.SUPPRESSED, "muted")

    assert await groups_of(store, RecordQuery()) == ["g3", "g2", "g1"]
    assert await groups_of(store, RecordQuery(env="prod")) == ["g3", "g1"]
    assert await groups_of(store, RecordQuery(severity="critical")) == ["g2", "g1"]
    assert await groups_of(store, RecordQuery(receiver="r2")) == ["g2"]
    assert await groups_of(store, RecordQuery(source="argocd")) == ["g3"]
    assert await groups_of(store, RecordQuery(state="sent")) == ["g1"]
    assert await groups_of(store, RecordQuery(state="pending")) == ["g3"]
    assert await groups_of(store, RecordQuery(reason="muted")) == ["g2"]
    assert await groups_of(store, RecordQuery(state="suppressed", reason="muted")) == ["g2"]
    assert await groups_of(store, RecordQuery(group_key="g1")) == ["g1"]
    assert await groups_of(store, RecordQuery(env="prod", severity="critical")) == ["g1"]
    assert await groups_of(store, RecordQuery(env="dev", severity="warning")) == []


async def test_records_carry_their_facets(store: Store) -> None:
    await store.record([labelled("g1", env="prod", severity="critical", alertname="DiskFull")])
    [record] = (await store.query_notifications(RecordQuery(), 10)).records
    assert (record.env, record.severity, record.source, record.alertname) == (
        "prod",
        "critical",
        "alertmanager",
        "DiskFull",
    )
    assert await store.get_notification(record.id) == record
    assert await store.get_notification("no-such-id") is None


async def test_text_matches_a_substring_of_the_alertname_or_any_label_value(
    store: Store,
) -> None:
    await store.record([labelled("g1", alertname="KubePodCrashLooping", pod="api-7f9")])
    await store.record([labelled("g2", alertname="DiskFull", mountpoint="/var/Lib")])
    await store.record([labelled("g3", alertname="CPUHigh", team="payments")])
    assert await groups_of(store, RecordQuery(text="crashloop")) == ["g1"]
    assert await groups_of(store, RecordQuery(text="VAR/LIB")) == ["g2"]
    assert await groups_of(store, RecordQuery(text="api-7")) == ["g1"]
    assert await groups_of(store, RecordQuery(text="pay")) == ["g3"]
    assert await groups_of(store, RecordQuery(text="mountpoint")) == []  # names are not text
    assert await groups_of(store, RecordQuery(text="k")) == ["g2", "g1"]
    assert await groups_of(store, RecordQuery(text='a"b')) == []
    assert await groups_of(store, RecordQuery(text="i", group_key="g2")) == ["g2"]
    # A selective filter drives the search; the text is still checked on each record.
    assert await groups_of(store, RecordQuery(text="pay", group_key="g3")) == ["g3"]
    assert await groups_of(store, RecordQuery(text="pay", group_key="g1")) == []


async def test_pages_follow_the_cursor_to_the_oldest_record(store: Store) -> None:
    for i in range(7):
        await store.record([labelled(f"g{i}", env="prod" if i % 2 else "dev")])
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.query_notifications(RecordQuery(), 3, cursor)
        seen += [r.group_key for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"g{i}" for i in reversed(range(7))]

    first = await store.query_notifications(RecordQuery(env="prod"), 2)
    assert [r.group_key for r in first.records] == ["g5", "g3"]
    rest = await store.query_notifications(RecordQuery(env="prod"), 2, first.next_cursor)
    assert [r.group_key for r in rest.records] == ["g1"]
    assert rest.next_cursor is None
    exact = await store.query_notifications(RecordQuery(env="dev"), 4)
    assert len(exact.records) == 4 and exact.next_cursor is None


async def test_a_cursor_not_given_out_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await store.query_notifications(RecordQuery(), 10, "not-a-cursor")


async def test_a_timeline_starts_with_what_the_record_says_then_what_was_added(
    store: Store,
) -> None:
    n = labelled("g1", env="prod")
    await store.record([n])
    await store.add_timeline([(n.id, TimelineEntry(T0 + 1, "muted", "muted by nights"))])
    [claim] = await store.claim(T0 + 2, 1)
    sent = TimelineEntry(T0 + 3, "sent", "sent to #ops", {"channel": "#ops", "ts": "1.2"})
    await store.complete(
        claim, Outcome(DeliveryState.SENT, "first"), T0 + 3, timeline=[(n.id, sent)]
    )
    timeline = await store.timeline(n.id)
    assert [e.kind for e in timeline] == ["received", "routed", "muted", "sent"]
    assert "alertmanager" in timeline[0].text
    assert timeline[1].detail["route"] == "route"
    assert timeline[-1] == sent
    assert await store.timeline("no-such-id") == []


async def test_a_released_claim_writes_its_attempt_into_the_timeline(store: Store) -> None:
    n = labelled("g1")
    await store.record([n])
    [claim] = await store.claim(T0, 1)
    attempt = TimelineEntry(T0, "attempt", "attempt 1 failed: 503", {"error": "503"})
    await store.release(claim, T0 + 10, "503", T0, timeline=[(n.id, attempt)])
    assert [e.kind for e in await store.timeline(n.id)] == ["received", "routed", "attempt"]


async def test_a_held_notification_says_so_in_its_timeline(store: Store) -> None:
    held = notification("g1", "a", not_before=T0 + 60)
    await store.record([held])
    kinds = [e.kind for e in await store.timeline(held.id)]
    assert kinds == ["received", "routed", "held"]


async def test_timeline_entries_of_unknown_records_are_not_kept(store: Store) -> None:
    await store.add_timeline([("ghost", TimelineEntry(T0, "sent", "sent"))])
    assert await store.timeline("ghost") == []


async def test_timelines_and_text_expire_with_their_record(opened: Callable[..., Any]) -> None:
    store = await opened(keep_records=100.0)
    n = labelled("g1", alertname="Gone")
    await store.record([n])
    await store.add_timeline([(n.id, TimelineEntry(T0, "muted", "muted"))])
    await finish(store, DeliveryState.SENT, "first", now=T0)
    assert await store.expire(T0 + 101) >= 1
    assert await store.timeline(n.id) == []
    assert await groups_of(store, RecordQuery(text="gone")) == []
    assert await groups_of(store, RecordQuery(state="sent")) == []
    assert await store.count_states(T0 - 1) == {}


async def test_counts_are_per_state_and_reason_since_a_time(store: Store) -> None:
    # Spread over minutes, with `since` in the middle of one.
    await store.record([labelled("g0", at=T0 - 200)])
    await store.record([labelled("g1", at=T0 + 10)])
    await store.record([labelled("g2", at=T0 + 20)])
    await store.record([labelled("g3", at=T0 + 130)])
    await store.record([labelled("g4", at=T0 + 140)])
    await finish(store, DeliveryState.SENT, "first", now=T0 + 200)  # g0
    await finish(store, DeliveryState.SUPPRESSED, "muted", now=T0 + 200)  # g1
    await finish(store, DeliveryState.SUPPRESSED, "muted", now=T0 + 200)  # g2
    await finish(store, DeliveryState.DEAD, "", error="boom", now=T0 + 200)  # g3
    assert await store.count_states(T0 + 15) == {
        ("suppressed", "muted"): 1,
        ("dead", ""): 1,
        ("pending", ""): 1,
    }
    assert await store.count_states(T0 - 300) == {
        ("sent", "first"): 1,
        ("suppressed", "muted"): 2,
        ("dead", ""): 1,
        ("pending", ""): 1,
    }


async def test_a_dead_notification_retried_is_delivered_again(store: Store) -> None:
    n = labelled("g1", env="prod")
    await store.record([n])
    [claim] = await store.claim(T0, 1)
    await store.release(claim, T0 + 1, "503", T0)
    [claim] = await store.claim(T0 + 1, 1)
    await store.complete(claim, Outcome(DeliveryState.DEAD, "", error="503"), T0 + 2)
    assert await store.claim(T0 + 3, 10) == []

    assert await store.retry_now(n.id, T0 + 5)
    record = await store.get_notification(n.id)
    assert record is not None
    assert (record.state, record.attempts) == ("pending", 0)
    assert await store.pending_count() == 1
    assert await groups_of(store, RecordQuery(state="dead")) == []
    assert await groups_of(store, RecordQuery(state="pending")) == ["g1"]
    assert await store.count_states(T0 - 1) == {("pending", ""): 1}
    [claim] = await store.claim(T0 + 5, 10)
    assert claim.ids == [n.id] and claim.attempts == 0
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 6)
    assert [e.kind for e in await store.timeline(n.id)][-1] == "retried"


async def test_only_failed_or_dead_notifications_are_retried(store: Store) -> None:
    n = labelled("g1")
    await store.record([n])
    assert not await store.retry_now(n.id, T0)  # pending
    await finish(store, DeliveryState.SENT, "first")
    assert not await store.retry_now(n.id, T0 + 2)
    assert not await store.retry_now("no-such-id", T0 + 2)
    assert await store.pending_count() == 0


async def test_a_retry_of_a_group_being_delivered_waits_for_that_delivery(store: Store) -> None:
    old = labelled("g1")
    await store.record([old])
    await finish(store, DeliveryState.FAILED, "", error="400")
    await store.record([labelled("g1")])
    [claim] = await store.claim(T0 + 2, 10)
    assert await store.retry_now(old.id, T0 + 3)
    assert await store.claim(T0 + 3, 10) == []  # the group is held by the claim
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 4)
    [again] = await store.claim(T0 + 4, 10)
    assert again.ids == [old.id]


async def test_a_database_of_layout_2_gets_its_records_indexed_for_the_console(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "v2.db")
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE notifications (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            receiver TEXT NOT NULL, group_key TEXT NOT NULL, route TEXT NOT NULL,
            events TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
            state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
            next_attempt_at REAL NOT NULL, delivered_in TEXT NOT NULL DEFAULT '',
            not_before REAL NOT NULL DEFAULT 0
        );
        PRAGMA user_version = 2;
        """
    )
    event = labelled("g1", env="prod", severity="critical", alertname="OldAlert").events[0]
    route = '{"receiver":"r1","path":"route","repeat_interval":3600.0,"send_resolved":true}'
    conn.execute(
        "INSERT INTO notifications (id, receiver, group_key, route, events, created_at,"
        " updated_at, state, reason, next_attempt_at) VALUES ('n1', 'r1', 'g1', ?, ?, ?, ?,"
        " 'sent', 'first', 0)",
        (route, json.dumps([event.to_dict()]), T0, T0),
    )
    conn.commit()
    conn.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        assert await groups_of(store, RecordQuery(env="prod", severity="critical")) == ["g1"]
        assert await groups_of(store, RecordQuery(text="oldal")) == ["g1"]
        assert await store.count_states(T0) == {("sent", "first"): 1}
        await store.record([labelled("g2", env="prod")])
        assert await groups_of(store, RecordQuery(env="prod")) == ["g2", "g1"]
    finally:
        await store.close()


async def test_texts_not_indexed_when_the_process_stopped_are_indexed_at_the_next_start(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "state.db")
    store = SQLiteStore(path)
    await store.open()
    await store.record([labelled("g1", alertname="Early")])
    await store.record([labelled("g2", alertname="Late")])
    await store.close()
    # As if the process died before the second text was indexed.
    conn = sqlite3.connect(path)
    conn.execute(
        "DELETE FROM notifications_text WHERE rowid = (SELECT max(rowid) FROM notifications_text)"
    )
    conn.commit()
    conn.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        assert await groups_of(store, RecordQuery(text="late")) == ["g2"]
        assert await groups_of(store, RecordQuery(text="early")) == ["g1"]
    finally:
        await store.close()


async def test_a_redis_page_cut_short_by_its_budget_still_leads_to_every_match(
    redis_url: str, prefix: str
) -> None:
    store = RedisStore(redis_url, key_prefix=prefix, clock=FakeClock(T0), query_budget=3)
    await store.open()
    try:
        for i in range(10):
            await store.record([labelled(f"g{i}", env="prod" if i in (1, 8) else "dev")])
        seen: list[str] = []
        cursor = None
        calls = 0
        while True:
            page = await store.query_notifications(RecordQuery(text="prod"), 5, cursor)
            calls += 1
            seen += [r.group_key for r in page.records]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ["g8", "g1"]
        assert calls > 1  # short pages, each with a cursor to go on
        assert [r.group_key for r in await store.list_notifications(5)] == [
            "g9",
            "g8",
            "g7",
            "g6",
            "g5",
        ]
    finally:
        await store.close()


async def test_a_database_of_layout_4_finds_its_firing_groups(tmp_path: Path) -> None:
    path = str(tmp_path / "v4.db")
    store = SQLiteStore(path)
    await store.open()
    firing = await tell(store, "g1", {"a"}, T0 + 1, T0 + 7200)
    await tell(store, "g2", set(), T0 + 2, T0 + 7200)
    await store.close()
    # As written by layout 4: the log entries without the columns copied from them.
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        DROP INDEX nflog_firing;
        ALTER TABLE nflog DROP COLUMN firing;
        ALTER TABLE nflog DROP COLUMN notified_at;
        PRAGMA user_version = 4;
        """
    )
    conn.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.firing_groups(T0 + 3, 10) == [firing]
    finally:
        await store.close()
