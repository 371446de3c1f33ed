"""Inhibition, mute windows, Argo CD incidents, enrichment and deploy correlation, through
the whole service (webhook in, receiver payload out)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from router.config.schema import Config
from router.ingest import argocd as argocd_source
from router.ingest.intake import plan_notifications
from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.loki import FakeLoki
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as s:
        yield s


def make_config(sink: WebhookSink, state_url: str, extra: str = "", route: str = "") -> Config:
    return config_from(
        f"""
state: {{url: '{state_url}'}}
argocd: {{url: https://argocd.example.com}}
receivers:
  - name: hook
    webhook: {{url: '{sink.url("/hook")}'}}
route:
  receiver: hook
{route}
{extra}
"""
    )


def alert(
    fp: str,
    *,
    status: str = "firing",
    severity: str = "warning",
    name: str = "HighLatency",
    starts: datetime | None = None,
    **labels: str,
) -> dict[str, Any]:
    start = starts or datetime.now(UTC) - timedelta(minutes=1)
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "namespace": "prod", **labels},
        "annotations": {"summary": f"{name} on {fp}"},
        "startsAt": start.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else start.isoformat(),
        "fingerprint": fp,
    }


def webhook(group: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group,
        "receiver": "r",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": list(alerts),
    }


async def settle(svc: Running) -> None:
    """Wait until nothing is pending or in flight."""
    async with asyncio.timeout(10):
        # The store has no change notification to wait on: poll it.
        while await svc.state.store.pending_count() or svc.state.deliverer.in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


INHIBIT = """
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname, namespace]
"""


async def test_critical_inhibits_the_warning_of_the_same_alert(
    sink: WebhookSink, state_url: str
) -> None:
    async with running(make_config(sink, state_url, INHIBIT)) as svc:
        await svc.post("/webhook/alertmanager", webhook("crit", alert("c1", severity="critical")))
        await settle(svc)
        await svc.post("/webhook/alertmanager", webhook("warn", alert("w1")))
        await svc.post("/webhook/alertmanager", webhook("other", alert("o1", name="DiskFull")))
        await settle(svc)
        reasons = {r["group_key"]: r["reason"] for r in await svc.records()}
    sent = [r.json["alerts"][0]["fingerprint"] for r in sink.requests]
    assert sorted(sent) == ["c1", "o1"]
    assert reasons["am/r/warn"] == "inhibited"


async def test_warning_and_critical_in_one_group_send_only_the_critical(
    sink: WebhookSink, state_url: str
) -> None:
    async with running(make_config(sink, state_url, INHIBIT)) as svc:
        body = webhook("g", alert("w1"), alert("c1", severity="critical"))
        await svc.post("/webhook/alertmanager", body)
        await settle(svc)
    [request] = sink.requests
    assert [a["fingerprint"] for a in request.json["alerts"]] == ["c1"]


async def test_resolve_reaches_a_receiver_even_after_its_alert_became_inhibited(
    sink: WebhookSink, state_url: str
) -> None:
    async with running(make_config(sink, state_url, INHIBIT)) as svc:
        await svc.post("/webhook/alertmanager", webhook("warn", alert("w1")))
        await settle(svc)
        await svc.post("/webhook/alertmanager", webhook("crit", alert("c1", severity="critical")))
        await settle(svc)
        await svc.post("/webhook/alertmanager", webhook("warn", alert("w1", status="resolved")))
        await settle(svc)
    statuses = [(r.json["alerts"][0]["fingerprint"], r.json["status"]) for r in sink.requests]
    assert statuses == [("w1", "firing"), ("c1", "firing"), ("w1", "resolved")]


NIGHTS = """
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "20:00", end_time: "24:00"}, {start_time: "00:00", end_time: "08:00"}]
        location: Europe/Berlin
"""
MUTED_ROUTE = """
  routes:
    - matchers: ['env="dev"']
      receiver: hook
      mute_time_intervals: [nights]
"""
DAY = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # 15:00 in Berlin
NIGHT = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 23:00 in Berlin


async def test_muted_route_at_night_sends_nothing_but_still_sends_the_resolve(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(DAY.timestamp())
    config = make_config(sink, state_url, NIGHTS, MUTED_ROUTE)
    async with running(config, clock=clock) as svc:
        await svc.post("/webhook/alertmanager", webhook("day", alert("d1", env="dev")))
        await settle(svc)
        clock.set(NIGHT)
        await svc.post("/webhook/alertmanager", webhook("night", alert("n1", env="dev")))
        await svc.post(
            "/webhook/alertmanager", webhook("day", alert("d1", env="dev", status="resolved"))
        )
        await settle(svc)
        reasons = {r["group_key"]: r["reason"] for r in await svc.records()}
    assert [(r.json["alerts"][0]["fingerprint"], r.json["status"]) for r in sink.requests] == [
        ("d1", "firing"),
        ("d1", "resolved"),
    ]
    assert reasons["am/r/night"] == "muted"


def argocd(trigger: str, **fields: str) -> dict[str, Any]:
    body = {
        "trigger": trigger,
        "app": "backend",
        "project": "default",
        "namespace": "prod",
        "syncStatus": "Synced",
        "healthStatus": "Healthy",
        "operationPhase": "Succeeded",
        "revision": "9f2c1e7d",
        "finishedAt": datetime.now(UTC).isoformat(),
    }
    body.update(fields)
    return body


async def test_argocd_incident_resolves_once_with_how_long_it_lasted(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(DAY.timestamp())
    async with running(make_config(sink, state_url), clock=clock) as svc:
        failed = argocd(
            "on-sync-failed",
            operationPhase="Failed",
            healthStatus="Degraded",
            finishedAt=DAY.isoformat(),
        )
        await svc.post("/webhook/argocd", failed)
        await svc.post("/webhook/argocd", failed)  # Argo CD re-sends after a restart
        await settle(svc)
        clock.set(DAY + timedelta(minutes=14))
        recovered = argocd(
            "on-sync-succeeded",
            revision="a1b2c3d",
            finishedAt=(DAY + timedelta(minutes=14)).isoformat(),
        )
        await svc.post("/webhook/argocd", recovered)
        await settle(svc)
    bodies = [r.json for r in sink.requests]
    incident = [b for b in bodies if b["alertname"] == "on-sync-failed"]
    assert [b["status"] for b in incident] == ["firing", "resolved"]
    assert "Resolved after 14m." in incident[1]["notes"]
    assert [b["alertname"] for b in bodies].count("on-sync-succeeded") == 1


HOLD_GROUP = "argocd/backend/on-health-degraded"


async def records_of(svc: Running, group: str) -> list[dict[str, Any]]:
    return [r for r in await svc.records() if r["group_key"] == group]


async def until_records(
    svc: Running, group: str, check: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The group's records once `check` holds for them (polling the read API)."""
    async with asyncio.timeout(10):
        while not check(found := await records_of(svc, group)):  # noqa: ASYNC110 - polling the API
            await asyncio.sleep(0.02)
    return found


async def test_health_flap_within_the_hold_is_told_to_nobody_and_recorded_as_flapped(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(DAY.timestamp())
    async with running(make_config(sink, state_url), clock=clock) as svc:
        degraded = argocd("on-health-degraded", healthStatus="Degraded", finishedAt=DAY.isoformat())
        assert (await svc.post("/webhook/argocd", degraded))[0] == 200
        [held] = await until_records(svc, HOLD_GROUP, lambda rs: len(rs) == 1)
        assert held["state"] == "pending"
        clock.set(DAY + timedelta(seconds=30))  # the HPA settled: healthy again
        assert (await svc.post("/webhook/argocd", argocd("on-health-healthy")))[0] == 200
        found = await until_records(
            svc, HOLD_GROUP, lambda rs: len(rs) == 2 and all(r["state"] != "pending" for r in rs)
        )
        async with svc.http.get(svc.url + "/metrics") as resp:
            metrics = await resp.text()
    assert {(r["state"], r["reason"]) for r in found} == {("suppressed", "flapped")}
    assert all(r["attempts"] == 0 for r in found)
    assert (
        'alert_router_notifications_suppressed_total{reason="flapped",receiver="hook"} 1.0'
        in metrics
    )
    assert sink.requests == []


async def test_problem_outlasting_its_hold_is_sent_then_with_its_original_start(
    sink: WebhookSink, state_url: str
) -> None:
    clock = FakeClock(DAY.timestamp())
    async with running(make_config(sink, state_url), clock=clock) as svc:
        degraded = argocd("on-health-degraded", healthStatus="Degraded", finishedAt=DAY.isoformat())
        await svc.post("/webhook/argocd", degraded)
        await until_records(svc, HOLD_GROUP, lambda rs: len(rs) == 1)
        clock.set(DAY + timedelta(seconds=61))
        svc.state.deliverer.wake()
        async with asyncio.timeout(10):
            [request] = await sink.wait_for(1)
        [record] = await until_records(svc, HOLD_GROUP, lambda rs: rs[0]["state"] == "sent")
    body = request.json
    assert (body["reason"], body["status"]) == ("first", "firing")
    assert body["alerts"][0]["startsAt"] == "2026-11-26T14:00:00Z"
    assert "Held 1m in case it recovered by itself (argocd.hold); it did not." in body["notes"]
    assert record["attempts"] == 1


async def test_claim_taken_before_its_hold_ended_goes_back_unattempted(
    sink: WebhookSink, state_url: str
) -> None:
    """Degraded, healthy, degraded again, all waiting when the worker looks: the first
    episode flapped, the second waits out its own hold, and no attempt is counted."""
    clock = FakeClock((DAY + timedelta(seconds=25)).timestamp())
    async with running(make_config(sink, state_url), clock=clock) as svc:
        runtime = svc.state.runtime
        config = runtime.config
        hold = argocd_source.hold_of(config)
        notes = []
        for offset, body in [
            (0, argocd("on-health-degraded", healthStatus="Degraded")),
            (10, argocd("on-health-healthy")),
            (20, argocd("on-health-degraded", healthStatus="Degraded")),
        ]:
            at = DAY + timedelta(seconds=offset)
            note = argocd_source.ArgoCDNotification.model_validate(body | {"finishedAt": None})
            events = argocd_source.to_events(note, config, at)
            planned = plan_notifications(events, runtime.tree, at, hold)
            notes += [n for n in planned if n.group_key == HOLD_GROUP]
        # Recorded together, as if the worker had been busy: due at once for the recovery.
        await svc.state.store.record(notes)
        svc.state.deliverer.wake()
        # Given back: every record was touched at the claim's time, none counted an attempt.
        taken_at = clock()
        pending = await until_records(
            svc, HOLD_GROUP, lambda rs: all(r["updated_at"] == taken_at for r in rs)
        )
        assert [(r["state"], r["attempts"]) for r in pending] == [("pending", 0)] * 3
        # Not due before the second hold ends (the worker's clock stands still meanwhile).
        assert await svc.state.store.claim((DAY + timedelta(seconds=79.9)).timestamp(), 10) == []
        clock.set(DAY + timedelta(seconds=80))
        svc.state.deliverer.wake()
        async with asyncio.timeout(10):
            [request] = await sink.wait_for(1)
        found = await until_records(svc, HOLD_GROUP, lambda rs: rs[0]["state"] != "pending")
    assert request.json["reason"] == "first"
    assert request.json["alerts"][0]["startsAt"] == "2026-11-26T14:00:20Z"
    assert {r["attempts"] for r in found} == {1}


async def test_same_deploy_sent_twice_by_argocd_is_said_once(
    sink: WebhookSink, state_url: str
) -> None:
    async with running(make_config(sink, state_url)) as svc:
        for _ in range(3):
            await svc.post("/webhook/argocd", argocd("on-deployed"))
        await svc.post("/webhook/argocd", argocd("on-deployed", revision="0000001"))
        await settle(svc)
    assert [r.json["alerts"][0]["labels"]["alertname"] for r in sink.requests] == [
        "on-deployed",
        "on-deployed",
    ]


DEPLOYS = """
enrich:
  deploys: {window: 30m}
"""


@pytest.mark.parametrize(("minutes_before", "mentioned"), [(4, True), (120, False)])
async def test_deploy_shortly_before_an_alert_is_named_in_it(
    sink: WebhookSink, state_url: str, minutes_before: int, mentioned: bool
) -> None:
    now = datetime.now(UTC)
    deployed = now - timedelta(minutes=minutes_before)
    async with running(make_config(sink, state_url, DEPLOYS)) as svc:
        await svc.post("/webhook/argocd", argocd("on-deployed", finishedAt=deployed.isoformat()))
        await svc.post(
            "/webhook/alertmanager",
            webhook("g", alert("a1", app="backend", starts=now)),
        )
        await settle(svc)
    [payload] = [r.json for r in sink.requests if r.json["source"] == "alertmanager"]
    notes = " ".join(payload["notes"])
    assert (f"backend synced to 9f2c1e7 {minutes_before}m before this alert" in notes) is mentioned
    links = [link["url"] for link in payload["links"]]
    assert ("https://argocd.example.com/applications/backend" in links) is mentioned


def loki_config(loki: FakeLoki, timeout: str = "2s") -> str:
    return f"""
enrich:
  loki:
    url: {loki.url}
    query: '{{namespace="{{{{ labels.namespace }}}}", app="{{{{ labels.app }}}}"}} |= "error"'
    lookback: 15m
    max_lines: 3
    timeout: {timeout}
  grafana:
    url: https://grafana.example.com
    loki_datasource_uid: loki
"""


async def test_firing_alert_carries_the_newest_error_lines_from_loki(
    sink: WebhookSink, state_url: str
) -> None:
    now_ns = time.time_ns()
    async with FakeLoki() as loki:
        for i in range(5):
            loki.push(
                {"namespace": "prod", "app": "backend"},
                now_ns - (60 - i) * 10**9,
                f"error: payment failed {i}",
            )
        async with running(make_config(sink, state_url, loki_config(loki))) as svc:
            await svc.post("/webhook/alertmanager", webhook("g", alert("a1", app="backend")))
            await settle(svc)
        [request] = loki.requests
    assert request.query == '{namespace="prod", app="backend"} |= "error"'
    assert request.direction == "backward" and request.limit == 3
    [payload] = [r.json for r in sink.requests]
    logs = payload["alerts"][0]["logs"]
    assert [line.rsplit(" ", 1)[1] for line in logs["lines"]] == ["2", "3", "4"]
    titles = [link["title"] for link in payload["alerts"][0]["links"]]
    assert any("Explore" in t or "logs" in t.lower() for t in titles)


async def test_hanging_loki_does_not_hold_the_notification_past_its_timeout(
    sink: WebhookSink, state_url: str
) -> None:
    async with FakeLoki() as loki:
        loki.delay = 30
        config = make_config(sink, state_url, loki_config(loki, timeout="500ms"))
        async with running(config) as svc:
            await svc.post("/webhook/alertmanager", webhook("g", alert("a1", app="backend")))
            async with asyncio.timeout(10):
                await sink.wait_for(1)
            # Delivered while Loki still sits on the query: the router stopped waiting.
            assert loki.in_flight == 1
            await settle(svc)
    [payload] = [r.json for r in sink.requests]
    assert any("timed out" in note for note in payload["notes"])
    assert payload["alerts"][0]["logs"]["lines"] == []


async def test_notification_failing_past_dead_after_is_dead_and_counted(
    state_url: str,
) -> None:
    clock = FakeClock(DAY.timestamp())
    async with WebhookSink(default_status=500) as failing:
        config = config_from(
            f"""
state: {{url: '{state_url}', dead_after: 10m}}
receivers: [{{name: hook, webhook: {{url: '{failing.url("/hook")}'}}}}]
route: {{receiver: hook}}
"""
        )
        async with running(config, clock=clock) as svc:
            await svc.post("/webhook/alertmanager", webhook("g", alert("a1")))
            async with asyncio.timeout(10):
                await failing.wait_for(1)
                [record] = await svc.records()
                while record["attempts"] < 1:  # noqa: ASYNC110 - polling the API
                    await asyncio.sleep(0.02)
                    [record] = await svc.records()
            assert record["state"] == "pending"  # retried later, not dropped
            clock.set(DAY + timedelta(minutes=11))
            svc.state.deliverer.wake()
            async with asyncio.timeout(10):
                await failing.wait_for(2)
                while record["state"] == "pending":  # noqa: ASYNC110 - polling the API
                    await asyncio.sleep(0.02)
                    [record] = await svc.records()
            async with svc.http.get(svc.url + "/metrics") as resp:
                metrics = await resp.text()
    assert record["state"] == "dead"
    assert record["attempts"] == 2
    assert "http_500" in record["last_error"] or "500" in record["last_error"]
    assert 'alert_router_notifications_dead_total{integration="webhook",receiver="hook"} 1.0' in (
        metrics
    )
