"""`reports:`: slots in the report's own zone (DST weeks included), posted once across
three replicas on one Redis, a slot missed while down posted once at start, and what the
summary says. Clocks are injected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router.config.loader import ConfigError
from router.config.schema import Config, ReportConfig
from router.notify.reports import Reports, latest_slot
from router.store.protocols import Store
from router.store.redis import RedisStore
from router.store.sqlite import SQLiteStore
from tests.fakes.clock import FakeClock
from tests.helpers import config_from
from tests.test_insights import _history
from tests.test_store_contract import T0


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


def _weekly(every: str = "mon 09:00", zone: str = "Europe/Berlin") -> ReportConfig:
    return ReportConfig(receiver="sre", every=every, timezone=zone)


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        # The Monday after Europe's spring change (29 March 2026): 09:00 CEST is 07:00Z.
        ("2026-03-30T07:00:00+00:00", "2026-03-30T07:00:00+00:00"),
        ("2026-03-30T06:59:59+00:00", "2026-03-23T08:00:00+00:00"),
        # The Monday after the autumn change (25 October 2026): 09:00 CET is 08:00Z.
        ("2026-10-26T07:30:00+00:00", "2026-10-19T07:00:00+00:00"),
        ("2026-10-26T08:00:00+00:00", "2026-10-26T08:00:00+00:00"),
        ("2026-11-01T23:00:00+00:00", "2026-10-26T08:00:00+00:00"),
    ],
)
def test_a_weekly_slot_is_its_wall_time_in_its_zone_across_dst(now: str, slot: str) -> None:
    assert latest_slot(_weekly(), _ts(now)) == _ts(slot)


def test_a_daily_slot_on_the_night_the_clocks_go_forward() -> None:
    daily = _weekly(every="09:00")
    assert latest_slot(daily, _ts("2026-03-29T06:00:00+00:00")) == _ts("2026-03-28T08:00:00+00:00")
    assert latest_slot(daily, _ts("2026-03-29T07:00:00+00:00")) == _ts("2026-03-29T07:00:00+00:00")


CONFIG = """\
server: {external_url: "https://alerts.example.com"}
receivers:
  - name: sre
    log: {}
route: {receiver: sre}
reports:
  - {receiver: sre, every: "mon 09:00", timezone: Europe/Berlin}
"""


def _config() -> Config:
    return config_from(CONFIG)


async def _pending(store: Store) -> list[str]:
    records = await store.list_notifications(100, receiver="sre")
    return [r.group_key for r in records if r.group_key.startswith("report:")]


@pytest.fixture
async def replicas(redis_url: str, prefix: str) -> AsyncIterator[list[Store]]:
    stores: list[Store] = [
        RedisStore(redis_url, key_prefix=prefix, clock=FakeClock(T0)) for _ in range(3)
    ]
    for s in stores:
        await s.open()
    yield stores
    for s in stores:
        await s.close()


async def test_three_replicas_post_each_slot_once_and_a_first_start_posts_nothing(
    replicas: list[Store],
) -> None:
    clock = FakeClock(_ts("2026-11-25T12:00:00+00:00"))  # a Wednesday
    woken: list[int] = []
    senders = [Reports(s, _config, lambda: woken.append(1), clock) for s in replicas]
    assert await asyncio.gather(*(r.run_once() for r in senders)) == [0, 0, 0]
    assert await _pending(replicas[0]) == []
    clock.now = _ts("2026-11-30T08:00:30+00:00")  # Monday 09:00:30 in Berlin
    sent = await asyncio.gather(*(r.run_once() for r in senders))
    assert sorted(sent) == [0, 0, 1]
    [group] = await _pending(replicas[0])
    assert group.endswith(f":{int(_ts('2026-11-30T08:00:00+00:00'))}")
    assert woken == [1]
    assert await asyncio.gather(*(r.run_once() for r in senders)) == [0, 0, 0]


async def test_a_slot_missed_while_down_is_posted_once_at_start(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        clock = FakeClock(_ts("2026-11-24T10:00:00+00:00"))
        await Reports(store, _config, lambda: None, clock).run_once()  # first start
        # Down from Sunday to Wednesday: Monday's report was never posted.
        clock.now = _ts("2026-12-02T10:00:00+00:00")
        again = Reports(store, _config, lambda: None, clock)
        assert await again.run_once() == 1
        assert await again.run_once() == 0
        [record] = await store.list_notifications(10, receiver="sre")
        summary = record.alerts[0]["annotations"]
        assert summary["summary"].startswith("Alert insights: 0 notifications")
        assert "https://alerts.example.com/ui/insights?since=7d" in summary["description"]
    finally:
        await store.close()


async def test_the_summary_names_the_noisiest_alerts_and_time_to_resolve(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        await _history(store)
        clock = FakeClock(T0 + 86400)
        reports = Reports(store, _config, lambda: None, clock)
        await store.claim_report("0:sre:mon 09:00:Europe/Berlin", 0.0)
        assert await reports.run_once() == 1
        records = await store.list_notifications(10, receiver="sre")
        [report] = [r for r in records if r.group_key.startswith("report:")]
        text = report.alerts[0]["annotations"]["description"]
        assert (
            "- DiskFull: 12 notifications, 33% noise (1 of 3 episodes resolved within 5m)" in text
        )
        assert "Time to resolve (median): at most 30m" in text
    finally:
        await store.close()


def test_a_report_to_an_unknown_receiver_or_at_no_time_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from(CONFIG.replace("{receiver: sre, every", "{receiver: sre2, every"))
    assert "no receiver 'sre2'" in "\n".join(caught.value.problems)
    with pytest.raises(ConfigError) as caught:
        config_from(CONFIG.replace('"mon 09:00"', '"monday 9am"'))
    assert "every: expected e.g. 'mon 09:00'" in "\n".join(caught.value.problems)
