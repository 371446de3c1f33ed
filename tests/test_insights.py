"""Insights: rollups written as records finish, in both stores, read back per alertname,
receiver and team with known episodes, flaps, MTTA/MTTR and noise; they survive a restart
and match a recomputation from the raw records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router.model import (
    DeliveryState,
    Event,
    GroupActions,
    Notification,
    NotificationRecord,
    Outcome,
    RouteSettings,
    Status,
)
from router.replay.insights import insights, window
from router.store.protocols import Store
from router.store.rollup import DAY, acknowledgement, bucket_of, percentile
from tests.conftest import Running, running
from tests.helpers import config_from, until
from tests.test_store_contract import T0, StoreFactory, backend, make_store, state_url

__all__ = ["backend", "make_store", "state_url"]


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    the_store = make_store()
    await the_store.open()
    yield the_store
    await the_store.close()


A = "DiskFull"


def _event(status: Status, starts: float, ends: float | None, **labels: str) -> Event:
    return Event(
        source="alertmanager",
        fingerprint="fp-disk",
        group_key="g-disk",
        status=status,
        labels={"alertname": A, "severity": "critical", "team": "storage", **labels},
        starts_at=datetime.fromtimestamp(starts, UTC),
        ends_at=datetime.fromtimestamp(ends, UTC) if ends is not None else None,
    )


async def _deliver(store: Store, event: Event, at: float, receivers: Sequence[str]) -> None:
    """Record `event` for each receiver, then claim and finish each as sent at `at`."""
    notifications = [
        Notification(
            id=uuid.uuid4().hex,
            route=RouteSettings(r, "route", 3600.0, send_resolved=True),
            group_key=event.group_key,
            events=[event],
            created_at=datetime.fromtimestamp(at, UTC),
        )
        for r in receivers
    ]
    await store.record(notifications)
    claims = await store.claim(at, 10)
    assert len(claims) == len(receivers)
    for claim in claims:
        await store.complete(claim, Outcome(DeliveryState.SENT, "first"), at)


# Three episodes of one alert, each told to two receivers: 60 s (noise), 30 min starting
# 9 min after the first ended (a flap), 2 h starting long after.
EPISODES = ((0.0, 60.0), (600.0, 2400.0), (10_000.0, 17_200.0))


async def _history(store: Store) -> None:
    for start, end in EPISODES:
        await _deliver(store, _event(Status.FIRING, T0 + start, None), T0 + start, ["r1", "r2"])
        resolved = _event(Status.RESOLVED, T0 + start, T0 + end)
        await _deliver(store, resolved, T0 + end, ["r1", "r2"])


async def test_insights_count_episodes_once_flaps_noise_and_time_to_resolve(store: Store) -> None:
    await _history(store)
    found = (await insights(store, T0 + DAY, 7 * DAY)).to_dict()
    [alert] = found["alerts"]
    assert alert["alertname"] == A
    assert (alert["episodes"], alert["notifications"], alert["flaps"]) == (3, 12, 1)
    assert alert["noise_share"] == round(1 / 3, 4)
    assert alert["mttr_seconds"] == {"p50": 1800.0, "p90": 7200.0}
    assert alert["mtta_seconds"] == {"p50": None, "p90": None}
    assert alert["acknowledged_share"] == 0.0
    receivers = {r["receiver"]: r for r in found["receivers"]}
    assert receivers.keys() == {"r1", "r2"}
    assert (receivers["r1"]["episodes"], receivers["r1"]["notifications"]) == (3, 6)
    [team] = found["teams"]
    assert (team["team"], team["episodes"], team["flaps"]) == ("storage", 3, 1)


async def test_acknowledgements_give_time_to_acknowledge(store: Store) -> None:
    await _history(store)
    record = NotificationRecord(
        id="n1",
        receiver="r1",
        group_key="g-disk",
        route_path="route",
        alerts=[_event(Status.FIRING, T0 + 10_000, None).to_dict()],
        state="sent",
        reason="first",
        attempts=1,
        last_error="",
        created_at=T0 + 10_000,
        updated_at=T0 + 10_000,
        alertname=A,
    )
    await store.add_rollups(T0 + 10_240, acknowledgement(record, T0 + 10_240))
    alert = (await insights(store, T0 + DAY, 7 * DAY)).to_dict()["alerts"][0]
    assert alert["mtta_seconds"] == {"p50": 300.0, "p90": 300.0}
    assert alert["acknowledged_share"] == round(1 / 3, 4)


async def test_a_short_episode_someone_acknowledged_or_silenced_is_not_noise(store: Store) -> None:
    acked = replace(_event(Status.FIRING, T0, None, alertname="Acked"), fingerprint="fp-a")
    acked = replace(acked, group_key="g-a")
    ignored = replace(_event(Status.FIRING, T0, None, alertname="Ignored"), fingerprint="fp-i")
    ignored = replace(ignored, group_key="g-i")
    muted = replace(_event(Status.FIRING, T0, None, alertname="Muted"), fingerprint="fp-m")
    muted = replace(muted, group_key="g-m")
    # An acknowledgement left from the group's episode an hour before does not count.
    await store.set_group_actions(GroupActions("r1", "g-i", acked_by="U2", acked_at=T0 - 3600))
    for firing in (acked, ignored, muted):
        await _deliver(store, firing, T0, ["r1"])
    await store.set_group_actions(GroupActions("r1", "g-a", acked_by="U1", acked_at=T0 + 60))
    silence = GroupActions("r1", "g-m", silenced_by="U3", silenced_at=T0 + 30)
    await store.set_group_actions(replace(silence, silenced_until=T0 + 3600))
    for firing in (acked, ignored, muted):
        ended = datetime.fromtimestamp(T0 + 180, UTC)
        resolved = replace(firing, status=Status.RESOLVED, ends_at=ended)
        await _deliver(store, resolved, T0 + 180, ["r1"])
    found = (await insights(store, T0 + DAY, 7 * DAY)).to_dict()
    alerts = {a["alertname"]: a for a in found["alerts"]}
    assert (alerts["Acked"]["episodes"], alerts["Acked"]["noise_share"]) == (1, 0.0)
    assert (alerts["Ignored"]["episodes"], alerts["Ignored"]["noise_share"]) == (1, 1.0)
    assert (alerts["Muted"]["episodes"], alerts["Muted"]["noise_share"]) == (1, 0.0)
    [receiver] = found["receivers"]
    assert (receiver["episodes"], receiver["noise_share"]) == (3, round(1 / 3, 4))
    [team] = found["teams"]
    assert (team["episodes"], team["noise_share"]) == (3, round(1 / 3, 4))


async def test_rollups_survive_a_restart_and_match_the_raw_records(
    make_store: StoreFactory,
) -> None:
    first = make_store()
    await first.open()
    try:
        await _history(first)
    finally:
        await first.close()
    again = make_store()
    await again.open()
    try:
        found = (await insights(again, T0 + DAY, 7 * DAY)).to_dict()
        records = await again.list_notifications(1000)
    finally:
        await again.close()
    # Recomputed from the records alone: episodes are distinct (fingerprint, start) pairs
    # that resolved; notifications are the records sent.
    ended = {
        (a["fingerprint"], a["starts_at"]): (a["starts_at"], a["ends_at"])
        for r in records
        for a in r.alerts
        if a["status"] == "resolved"
    }
    durations = sorted(
        datetime.fromisoformat(e).timestamp() - datetime.fromisoformat(s).timestamp()
        for s, e in ended.values()
    )
    buckets = [0] * 12
    for d in durations:
        buckets[bucket_of(d)] += 1
    [alert] = found["alerts"]
    assert alert["episodes"] == len(ended)
    assert alert["notifications"] == sum(1 for r in records if r.state == "sent")
    assert alert["mttr_seconds"]["p50"] == percentile(buckets, 0.5)


async def test_the_previous_window_is_read_for_the_change(store: Store) -> None:
    await _history(store)
    later = T0 + 8 * DAY
    await _deliver(store, _event(Status.FIRING, later, None), later, ["r1"])
    found = (await insights(store, later + 60, 7 * DAY)).to_dict()
    [alert] = found["alerts"]
    assert (alert["episodes"], alert["notifications"]) == (0, 1)
    assert alert["previous"] == {"episodes": 3, "notifications": 12, "noise_share": round(1 / 3, 4)}


def test_windows_are_whole_hours_up_to_two_days_and_whole_days_beyond() -> None:
    now = 1_800_000_000.0 + 1234  # 2027-01-15T08:20:34Z
    since, until, hourly = window(now, 6 * 3600)
    assert hourly and until - since == 6 * 3600 and since <= now - 5 * 3600 < until
    since, until, hourly = window(now, 7 * DAY)
    assert not hourly and until - since == 7 * DAY and until % DAY == 0 and until > now


# --- through the running service ----------------------------------------------------------

SERVED = """\
state: {{url: '{state_url}'}}
receivers:
  - name: ops
    log: {{}}
route:
  receiver: ops
"""


def _webhook(status: str, starts: str, ends: str) -> dict[str, object]:
    return {
        "version": "4",
        "groupKey": "g-cpu",
        "status": status,
        "receiver": "r",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "CPUHigh", "severity": "warning", "team": "web"},
                "startsAt": starts,
                "endsAt": ends,
                "fingerprint": "fp-cpu",
            }
        ],
    }


async def _sent(svc: Running, count: int) -> bool:
    records = await svc.records()
    return len(records) >= count and all(r["state"] != "pending" for r in records)


async def test_the_api_and_the_page_show_a_resolved_flapping_alert(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    async with running(config_from(SERVED.format(state_url=url))) as svc:
        now = datetime.now(UTC).replace(microsecond=0)
        start = (now - timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
        end = (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
        for body in (
            _webhook("firing", start, "0001-01-01T00:00:00Z"),
            _webhook("resolved", start, end),
        ):
            status, _ = await svc.post("/webhook/alertmanager", body)
            assert status == 200
            await until(lambda: _sent(svc, 1))
        await until(lambda: _sent(svc, 2))
        status, body = await svc.get_json("/api/v1/insights?since=1d")
        assert status == 200, body
        [alert] = body["alerts"]
        assert (alert["alertname"], alert["episodes"], alert["noise_share"]) == ("CPUHigh", 1, 1.0)
        assert alert["mttr_seconds"]["p50"] == 120.0
        assert body["teams"][0]["team"] == "web"
        status, bad = await svc.get_json("/api/v1/insights?since=forever")
        assert status == 400 and "invalid duration" in bad["error"]
        async with svc.http.get(svc.url + "/ui/insights?since=7d") as resp:
            assert resp.status == 200
            page = await resp.text()
        assert 'id="insights-alerts"' in page and "CPUHigh" in page
        assert '<svg class="chart"' in page and '<svg class="spark"' in page
        assert 'href="/ui/notifications?q=CPUHigh"' in page
        assert "<script>" not in page and "style=" not in page
