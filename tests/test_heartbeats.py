"""Heartbeats end to end in-process: beats from alerts and POST, HeartbeatMissing through
the route tree, its resolve, restarts, replicas and reloads. The service's clock is a fake
the test moves; each judgement is one `tick()` of the service's judge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.config.exposure import open_surfaces
from router.config.loader import ConfigError, load_config
from router.config.schema import Config
from router.model import format_time
from router.notify.reports import Reports
from router.replay.insights import window
from router.store.rollup import INDEX
from router.web.state import Tuning
from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.webhook_sink import ReceivedRequest, WebhookSink
from tests.helpers import MINIMAL, config_from

# Whole seconds: they survive JSON and the metrics text exactly.
T0 = float(int(time.time()))


# Each judgement in these tests is the test's own tick(); the service's loop must not
# judge at moments the test did not choose.
JUDGED_BY_THE_TEST = Tuning(heartbeat_tick=3600.0)


def serving(
    config: Config, *, clock: FakeClock | None = None, config_path: Path | None = None
) -> AbstractAsyncContextManager[Running]:
    """The service, its heartbeats judged only by the test's own tick()."""
    return running(config, clock=clock, config_path=config_path, tuning=JUDGED_BY_THE_TEST)


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as fake:
        yield fake


def config_text(sink: WebhookSink, state: str, heartbeats: str, extra: str = "") -> str:
    state_line = state if state.startswith("{") else f"{{url: '{state}'}}"
    return f"""
state: {state_line}
receivers:
  - name: everyone
    webhook: {{url: '{sink.url("/everyone")}'}}
  - name: oncall
    webhook: {{url: '{sink.url("/oncall")}'}}
route:
  receiver: everyone
  routes:
    - matchers: ['alertname="HeartbeatMissing"', 'severity="critical"']
      receiver: oncall
heartbeats:
{heartbeats}
{extra}
"""


WATCHDOG = """
  - name: watchdog
    matchers: ['alertname="Watchdog"']
    interval: 10s
    grace: 5s
    labels: {severity: critical, team: sre}
"""


def watchdog_webhook(status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}/{alertname="Watchdog"}:{}',
        "receiver": "router",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "Watchdog", "severity": "none"},
                "annotations": {"summary": "always firing"},
                "startsAt": "2026-12-07T10:00:00Z",
                "fingerprint": "0123456789abcdef",
            }
        ],
    }


async def beat(svc: Running, clock: FakeClock, at: float) -> None:
    clock.now = at
    status, body = await svc.post("/webhook/alertmanager", watchdog_webhook())
    assert (status, body) == (200, {"accepted": 1})


async def judge(svc: Running, clock: FakeClock, at: float) -> None:
    clock.now = at
    await svc.state.heartbeats.tick()


def oncall(sink: WebhookSink) -> list[ReceivedRequest]:
    return [r for r in sink.requests if r.path == "/oncall"]


def statuses(requests: Sequence[ReceivedRequest]) -> list[str]:
    return [r.json["status"] for r in requests]


async def test_beats_on_time_are_recorded_never_notified_and_open_nothing(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(T0)
    async with serving(config_from(config_text(sink, state_url, WATCHDOG)), clock=clock) as svc:
        for step in range(6):
            await beat(svc, clock, T0 + 10 * step)
            await judge(svc, clock, T0 + 10 * step + 9)
        records = await svc.wait_for_records(
            lambda rs: len(rs) == 6 and all(r["state"] == "suppressed" for r in rs)
        )
        assert {(r["reason"], r["alertname"]) for r in records} == {("beat", "Watchdog")}
        status, one = await svc.get_json(f"/api/v1/notifications/{records[0]['id']}")
        assert status == 200
        beats = [e for e in one["timeline"] if e["kind"] == "beat"]
        assert beats and "watchdog" in beats[0]["text"]
        status, listed = await svc.get_json("/api/v1/heartbeats")
        assert status == 200
        [shown] = listed["heartbeats"]
        assert (shown["name"], shown["state"], shown["last_beat"]) == ("watchdog", "ok", T0 + 50)
        assert shown["expected_by"] == T0 + 60
        async with svc.http.get(svc.url + "/metrics") as answer:
            text = await answer.text()
        samples = {
            (s.name, s.labels.get("heartbeat")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        name = "alert_router_heartbeat_last_beat_timestamp_seconds"
        assert samples[(name, "watchdog")] == T0 + 50
        async with svc.http.get(svc.url + "/ui/") as answer:
            page = await answer.text()
        section = page.split('id="heartbeats"', 1)[1].split("</table>", 1)[0]
        assert 'class="hb-ok"' in section and "<td>watchdog</td>" in section
    assert sink.requests == []


async def test_a_gap_opens_one_heartbeat_missing_routed_by_the_tree_and_beats_resolve_it_once(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(T0)
    async with serving(config_from(config_text(sink, state_url, WATCHDOG)), clock=clock) as svc:
        await beat(svc, clock, T0)
        await judge(svc, clock, T0 + 14.9)
        await beat(svc, clock, T0 + 10)
        await judge(svc, clock, T0 + 24.9)
        for second in range(25, 40):
            await judge(svc, clock, T0 + second)
        async with asyncio.timeout(10):
            [alarm] = await sink.wait_for(1)
        assert alarm.path == "/oncall"
        body = alarm.json
        assert (body["status"], body["alertname"], body["source"]) == (
            "firing",
            "HeartbeatMissing",
            "heartbeat",
        )
        labels = body["alerts"][0]["labels"]
        assert (labels["heartbeat"], labels["team"], labels["severity"]) == (
            "watchdog",
            "sre",
            "critical",
        )
        assert "last beat at" in body["alerts"][0]["summary"]
        status, listed = await svc.get_json("/api/v1/heartbeats")
        assert listed["heartbeats"][0]["state"] == "missing"
        # Beats again at T0+70: one resolve, saying how long it was missing.
        await beat(svc, clock, T0 + 70)
        for second in range(70, 80):
            await judge(svc, clock, T0 + second + 0.5)
        async with asyncio.timeout(10):
            await sink.wait_for(2)
        await svc.wait_for_records(
            lambda rs: (
                all(r["state"] != "pending" for r in rs)
                and sum(r["alertname"] == "HeartbeatMissing" for r in rs) == 2
            )
        )
        assert statuses(oncall(sink)) == ["firing", "resolved"]
        resolve = oncall(sink)[1].json["alerts"][0]
        assert resolve["summary"] == "Heartbeat watchdog beats again: it was missing for 1m"
    assert [r.path for r in sink.requests] == ["/oncall", "/oncall"]


async def test_a_heartbeat_that_never_beats_is_missing_one_window_after_it_was_added(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(T0)
    posted = "  - {name: backup, interval: 1m, grace: 30s, labels: {severity: critical}}"
    async with serving(config_from(config_text(sink, state_url, posted)), clock=clock) as svc:
        await judge(svc, clock, T0 + 89)
        status, listed = await svc.get_json("/api/v1/heartbeats")
        assert listed["heartbeats"][0]["state"] == "late"
        await judge(svc, clock, T0 + 90)
        async with asyncio.timeout(10):
            [alarm] = await sink.wait_for(1)
        assert "no beat at all since" in alarm.json["alerts"][0]["summary"]


async def test_the_report_names_the_heartbeats_that_went_missing_and_those_still_missing(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(T0)
    backup = "  - {name: backup, interval: 1m, grace: 30s, labels: {severity: critical}}"
    daily = "reports: [{receiver: everyone, every: 'daily 00:00'}]"
    config = config_from(config_text(sink, state_url, WATCHDOG + backup, daily))
    async with serving(config, clock=clock) as svc:
        store = svc.state.store
        # Watchdog goes missing at T0+15 and beats again from T0+70; backup never beats.
        await beat(svc, clock, T0)
        for second in range(1, 100):
            if second >= 70 and second % 10 == 0:
                await beat(svc, clock, T0 + second)
            await judge(svc, clock, T0 + second)
        states = {s.name: s.missing_since for s in await store.heartbeat_states()}
        assert states == {"watchdog": None, "backup": T0}
        reports = Reports(store, lambda: config, lambda: None, clock)
        _, before = await reports.compose(86400.0, clock.now, "")
        assert "Heartbeats that went missing: backup (1 time; still missing, silent since" in (
            before
        )
        assert "watchdog (1 time)" in before
        # A day on, nothing went missing in the period: only the one still missing is named.
        clock.now = T0 + 2 * 86400
        _, after = await reports.compose(86400.0, clock.now, "")
        silent = format_time(datetime.fromtimestamp(T0, UTC))
        assert f"Heartbeats that went missing: backup (still missing, silent since {silent})" in (
            after
        )
        assert "watchdog" not in after


async def test_a_router_restart_in_the_middle_is_no_missing_heartbeat(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(T0)
    config = config_from(config_text(sink, state_url, WATCHDOG))
    async with serving(config, clock=clock) as svc:
        await beat(svc, clock, T0)
        await judge(svc, clock, T0 + 5)
    # Down from T0+5 to T0+100: the beats of that time were lost, not missing.
    clock.now = T0 + 100
    async with serving(config, clock=clock) as svc:
        await judge(svc, clock, T0 + 100)
        await beat(svc, clock, T0 + 101)
        for second in range(101, 116):
            await judge(svc, clock, T0 + second)
        await svc.wait_for_records(
            lambda rs: len(rs) == 2 and all(r["reason"] == "beat" for r in rs)
        )
        assert sink.requests == []
        # The service has been up for interval + grace and the beats stopped: missing.
        await judge(svc, clock, T0 + 116)
        async with asyncio.timeout(10):
            [alarm] = await sink.wait_for(1)
        assert alarm.path == "/oncall"


async def test_three_replicas_on_redis_raise_one_alarm_and_one_resolve(
    sink: WebhookSink, redis_url: str, prefix: str
) -> None:
    clock = FakeClock(T0)
    url = f"{{url: '{redis_url}', key_prefix: '{prefix}'}}"
    config = config_from(config_text(sink, url, WATCHDOG))
    async with AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(serving(config, clock=clock)) for _ in range(3)]
        await beat(replicas[1], clock, T0)
        for second in range(1, 30):
            clock.now = T0 + second
            await asyncio.gather(*(r.state.heartbeats.tick() for r in replicas))
        async with asyncio.timeout(10):
            await sink.wait_for(1)
        await beat(replicas[2], clock, T0 + 30)
        for second in range(30, 40):
            clock.now = T0 + second
            await asyncio.gather(*(r.state.heartbeats.tick() for r in replicas))
        async with asyncio.timeout(10):
            await sink.wait_for(2)
        records = await replicas[0].wait_for_records(
            lambda rs: (
                sum(r["alertname"] == "HeartbeatMissing" for r in rs) == 2
                and all(r["state"] != "pending" for r in rs)
            )
        )
        missing = [r for r in records if r["alertname"] == "HeartbeatMissing"]
        # One replica judged: one record of the alarm and one of its resolve, no duplicates.
        assert sorted(r["alerts"][0]["status"] for r in missing) == ["firing", "resolved"]
        assert statuses(oncall(sink)) == ["firing", "resolved"]
        # Counted once for the reports, whichever replica judged.
        since, until, hourly = window(clock.now, 86400.0)
        read = await replicas[0].state.store.read_rollups(since, until, hourly=hourly)
        assert read.totals[("heartbeat", "watchdog")][INDEX["episodes"]] == 1


async def test_a_reload_starts_an_added_heartbeats_clock_and_resolves_a_removed_one(
    sink: WebhookSink, state_url: str, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "routes.yaml"
    path.write_text(config_text(sink, state_url, WATCHDOG))
    async with serving(load_config(path), config_path=path, clock=clock) as svc:
        await judge(svc, clock, T0 + 15)
        async with asyncio.timeout(10):
            await sink.wait_for(1)
        clock.now = T0 + 100
        added = "  - {name: backup, interval: 20s, labels: {severity: critical}}"
        path.write_text(config_text(sink, state_url, added))
        assert await svc.state.reload() == []
        await judge(svc, clock, T0 + 100)
        async with asyncio.timeout(10):
            await sink.wait_for(2)
        removed = oncall(sink)[1].json
        assert removed["status"] == "resolved"
        assert "removed from the configuration" in removed["alerts"][0]["summary"]
        status, listed = await svc.get_json("/api/v1/heartbeats")
        assert [(h["name"], h["state"]) for h in listed["heartbeats"]] == [("backup", "waiting")]
        await judge(svc, clock, T0 + 119)
        await judge(svc, clock, T0 + 120)
        async with asyncio.timeout(10):
            await sink.wait_for(3)
        assert oncall(sink)[2].json["alerts"][0]["labels"]["heartbeat"] == "backup"
        states = await svc.state.store.heartbeat_states()
        assert [s.name for s in states] == ["backup"]


async def test_post_heartbeat_beats_with_its_own_credentials_or_the_alertmanager_ones(
    sink: WebhookSink, state_url: str
) -> None:
    posted = "  - {name: backup, interval: 1d, grace: 1h}"
    auth = (
        "server: {auth: {heartbeat: {bearer_token: hb-secret}, alertmanager: {bearer_token: am}}}"
    )
    clock = FakeClock(T0)
    async with serving(config_from(config_text(sink, state_url, posted, auth)), clock=clock) as svc:
        async with svc.http.post(svc.url + "/heartbeat/backup") as answer:
            assert answer.status == 401
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = {"Authorization": "Bearer am"}
        async with svc.http.post(svc.url + "/heartbeat/backup", headers=wrong) as answer:
            assert answer.status == 401
        right = {"Authorization": "Bearer hb-secret"}
        clock.now = T0 + 7
        async with svc.http.post(svc.url + "/heartbeat/backup", headers=right) as answer:
            assert (answer.status, await answer.json()) == (
                200,
                {"heartbeat": "backup", "at": T0 + 7},
            )
        async with svc.http.post(svc.url + "/heartbeat/nightly", headers=right) as answer:
            assert answer.status == 404
            assert "nightly" in (await answer.json())["error"]
        [state] = await svc.state.store.heartbeat_states()
        assert state.last_beat == T0 + 7
    fallback = "server: {auth: {alertmanager: {bearer_token: am}}}"
    async with serving(config_from(config_text(sink, state_url, posted, fallback))) as svc:
        async with svc.http.post(
            svc.url + "/heartbeat/backup", headers={"Authorization": "Bearer am"}
        ) as answer:
            assert answer.status == 200


async def test_a_teams_heartbeat_is_named_for_the_team_and_beaten_only_inside_its_scope(
    tmp_path: Path,
) -> None:
    (tmp_path / "routes.d").mkdir()
    (tmp_path / "routes.d" / "payments.yaml").write_text(
        """
receivers: [{name: pager, log: {}}]
route: {receiver: pager}
heartbeats:
  - {name: watchdog, matchers: ['alertname="Watchdog"'], interval: 1m, labels: {severity: critical}}
"""
    )
    (tmp_path / "routes.yaml").write_text(
        """
teams:
  - {name: payments, file: routes.d/payments.yaml, matchers: ['team="payments"']}
receivers: [{name: stdout, log: {}}]
route:
  receiver: stdout
  routes: [{team: payments}]
"""
    )
    config: Config = load_config(tmp_path / "routes.yaml")
    [heartbeat] = config.heartbeats
    assert heartbeat.name == "payments/watchdog"
    assert [str(m) for m in heartbeat.matchers] == ['team="payments"', 'alertname="Watchdog"']
    assert heartbeat.labels == {"severity": "critical", "team": "payments"}
    config = config.model_copy(
        update={"state": config.state.model_copy(update={"url": f"sqlite:///{tmp_path}/s.db"})}
    )
    async with serving(config) as svc:
        async with svc.http.post(svc.url + "/heartbeat/payments/watchdog") as answer:
            assert answer.status == 200
            posted_at = (await answer.json())["at"]
        # A Watchdog outside the team's scope beats nothing; one inside does.
        status, _ = await svc.post("/webhook/alertmanager", watchdog_webhook())
        assert status == 200
        [state] = await svc.state.store.heartbeat_states()
        assert (state.name, state.last_beat) == ("payments/watchdog", posted_at)
        inside = watchdog_webhook()
        inside["alerts"][0]["labels"]["team"] = "payments"
        status, _ = await svc.post("/webhook/alertmanager", inside)
        assert status == 200
        [state] = await svc.state.store.heartbeat_states()
        assert state.last_beat is not None and state.last_beat > posted_at


def test_check_names_each_heartbeat_problem_at_its_line() -> None:
    text = """
receivers: [{name: stdout, log: {}}]
route: {receiver: stdout}
heartbeats:
  - {name: a, interval: 1m}
  - {name: a, interval: 2s, matchers: ['alertname=~"("'], labels: {heartbeat: x}}
"""
    with pytest.raises(ConfigError) as caught:
        config_from(text)
    problems = "\n".join(caught.value.problems)
    assert "test.yaml:6:12: heartbeats[1].name: duplicate heartbeat name 'a'" in problems
    assert "heartbeats[1].interval: interval must be at least 5s" in problems
    assert "heartbeats[1].matchers[0]:" in problems
    assert "heartbeats[1].labels.heartbeat: 'heartbeat' is set by the heartbeat itself" in problems


def test_check_warns_when_anyone_may_beat() -> None:
    text = MINIMAL + "heartbeats: [{name: backup, interval: 1d}]\n"
    assert any("POST /heartbeat/{name}" in line for line in open_surfaces(config_from(text)))
    guarded = text + "server: {auth: {alertmanager: {bearer_token: t}}}\n"
    assert not any("heartbeat" in line for line in open_surfaces(config_from(guarded)))


async def test_a_replica_taking_over_the_judge_carries_on_from_the_stored_verdict(
    sink: WebhookSink, redis_url: str, prefix: str
) -> None:
    clock = FakeClock(T0)
    config = config_from(
        config_text(sink, f"{{url: '{redis_url}', key_prefix: '{prefix}'}}", WATCHDOG)
    )
    async with serving(config, clock=clock) as second:
        async with serving(config, clock=clock) as first:
            await beat(first, clock, T0)
            await judge(first, clock, T0 + 15)
            await judge(second, clock, T0 + 15)
            async with asyncio.timeout(10):
                await sink.wait_for(1)
        # The first replica stopped and gave the role back: the second judges now. It was
        # up long enough, and the stored verdict says missing: no second alarm, a resolve.
        await judge(second, clock, T0 + 30)
        await beat(second, clock, T0 + 31)
        await judge(second, clock, T0 + 32)
        async with asyncio.timeout(10):
            await sink.wait_for(2)
        await second.wait_for_records(
            lambda rs: (
                sum(r["alertname"] == "HeartbeatMissing" for r in rs) >= 2
                and all(r["state"] != "pending" for r in rs)
            )
        )
    assert statuses(oncall(sink)) == ["firing", "resolved"]
