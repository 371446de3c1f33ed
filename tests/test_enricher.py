"""Enricher against a fake Loki: links and logs on the right alerts, notes when logs are missing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from router.config.schema import Config
from router.enrich.enricher import Enricher
from router.enrich.loki import epoch_ns
from router.metrics import Metrics
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import Message, alert_links, build_message
from router.web.state import STATE
from tests.conftest import running
from tests.fakes.loki import FakeLoki
from tests.helpers import config_from

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STARTS_AT = NOW - timedelta(minutes=4)

CONFIG = """
argocd:
  url: https://argocd.example.com
enrich:
  loki:
    url: {loki_url}
    query: '{{namespace="{{{{ labels.namespace }}}}", app="{{{{ labels.app }}}}"}} |= "ERROR"'
    lookback: 15m
    max_lines: 3
    timeout: {timeout}
  grafana:
    url: https://grafana.example.com
    loki_datasource_uid: loki
    dashboards:
      - matchers: ['app="backend"']
        uid: app-overview
receivers:
  - name: slack-prod
    log: {{}}
  - name: email-sre
    log: {{}}
route:
  receiver: slack-prod
"""


def make_config(loki_url: str, timeout: str = "2s") -> Config:
    return config_from(CONFIG.format(loki_url=loki_url, timeout=timeout))


@pytest.fixture
async def enricher(
    loki: FakeLoki, metrics: Metrics, pool: aiohttp.ClientSession
) -> AsyncIterator[Enricher]:
    made = Enricher(make_config(loki.url), metrics, http=pool)
    yield made
    await made.close()


def event(
    fingerprint: str,
    *,
    app: str | None = "backend",
    status: Status = Status.FIRING,
    source: str = "alertmanager",
    one_shot: bool = False,
    **extra: Any,
) -> Event:
    labels = {
        "alertname": "HighErrorRate",
        "namespace": "prod",
        "instance": fingerprint,
        "source": source,
        "env": "prod",
        "severity": "critical",
    }
    if app is not None:
        labels["app"] = app
    fields: dict[str, Any] = {
        "source": source,
        "fingerprint": fingerprint,
        "group_key": "am/x/{}:{}",
        "status": status,
        "labels": labels,
        "annotations": {"summary": "errors", "runbook_url": "https://runbooks.example.com/x"},
        "starts_at": STARTS_AT,
        "ends_at": NOW - timedelta(minutes=1) if status is Status.RESOLVED else None,
        "generator_url": "http://prometheus:9090/graph",
        "external_url": "http://alertmanager:9093",
        "one_shot": one_shot,
    }
    fields.update(extra)
    return Event(**fields)


def message_for(events: Sequence[Event], receiver: str = "slack-prod") -> Message:
    route = RouteSettings(receiver=receiver, path="/", repeat_interval=3600.0, send_resolved=True)
    notification = Notification(
        id=f"n-{receiver}", route=route, group_key="g", events=list(events), created_at=NOW
    )
    return build_message(notification, "first")


def titles(links: Sequence[Any]) -> list[str]:
    return [link.title for link in links]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value if value is not None else 0.0


def push(loki: FakeLoki, labels: Mapping[str, str], *lines: str) -> None:
    for i, line in enumerate(lines):
        loki.push(labels, epoch_ns(STARTS_AT) + i * 1_000_000_000, line)


async def test_firing_alerts_get_links_and_their_own_logs_resolved_only_links(
    loki: FakeLoki, enricher: Enricher
) -> None:
    push(loki, {"namespace": "prod", "app": "backend"}, "ERROR backend 1", "ERROR backend 2")
    push(loki, {"namespace": "prod", "app": "worker"}, "ERROR worker 1")
    events = [
        event("fp1"),
        event("fp2", app="worker"),
        event("fp3", status=Status.RESOLVED),
    ]
    message = message_for(events)

    enriched = await enricher.enrich(message, events, NOW)

    backend, worker = enriched.firing
    [resolved] = enriched.resolved
    assert backend.logs is not None and list(backend.logs.lines) == [
        "ERROR backend 1",
        "ERROR backend 2",
    ]
    assert worker.logs is not None and list(worker.logs.lines) == ["ERROR worker 1"]
    assert resolved.logs is None
    assert titles(alert_links(backend)) == [
        "Runbook",
        "Source",
        "Logs (Grafana Explore)",
        "Grafana dashboard",
        "Silence",
        "Argo CD",
    ]
    # The worker matches no dashboard; the resolved alert still links its logs' Explore view.
    assert "Grafana dashboard" not in titles(worker.links)
    assert titles(resolved.links)[0] == "Logs (Grafana Explore)"
    assert enriched.notes == ()
    # One query per firing alert, none for the resolved one.
    assert sorted(r.selector[1][2] for r in loki.requests) == ["backend", "worker"]
    # Everything else about the message is unchanged.
    assert enriched.title == message.title and enriched.common_labels == message.common_labels


async def test_explore_link_and_query_cover_the_alert_window(
    loki: FakeLoki, enricher: Enricher
) -> None:
    events = [event("fp1")]

    enriched = await enricher.enrich(message_for(events), events, NOW)

    [alert] = enriched.firing
    [request] = loki.requests
    assert request.start == epoch_ns(STARTS_AT - timedelta(minutes=15))
    assert request.end == epoch_ns(NOW)
    explore = alert.links[0].url
    pane = next(iter(json.loads(parse_qs(urlsplit(explore).query)["panes"][0]).values()))
    assert (
        pane["queries"][0]["expr"]
        == request.query
        == '{namespace="prod", app="backend"} |= "ERROR"'
    )
    assert pane["range"] == {
        "from": str(request.start // 1_000_000),
        "to": str(request.end // 1_000_000),
    }


async def test_slow_loki_still_returns_within_the_timeout_with_a_note(
    loki: FakeLoki, metrics: Metrics, pool: aiohttp.ClientSession
) -> None:
    loki.delay = 5.0
    enricher = Enricher(make_config(loki.url, timeout="300ms"), metrics, http=pool)
    events = [event("fp1"), event("fp2", app="worker")]
    try:
        enriched = await enricher.enrich(message_for(events), events, NOW)
        # Ended by the timeout: the fake Loki still holds every query it got, unanswered.
        assert loki.in_flight == len(loki.requests)
    finally:
        await enricher.close()

    assert enriched.notes == (
        "Logs unavailable for 2 of 2 firing alerts: Loki timed out after 300ms",
    )
    for alert in enriched.firing:
        assert alert.logs is not None and alert.logs.lines == ()
        assert alert.logs.note == "Loki timed out after 300ms"
        # The Explore link is there all the same: people can look themselves.
        assert titles(alert.links)[0] == "Logs (Grafana Explore)"
    assert sample(metrics, "alert_router_enrich_duration_seconds_count", enricher="message") == 1


async def test_missing_label_is_noted_and_costs_no_query(
    loki: FakeLoki, enricher: Enricher, metrics: Metrics
) -> None:
    events = [event("fp1"), event("fp2", app=None)]

    enriched = await enricher.enrich(message_for(events), events, NOW)

    with_app, without_app = enriched.firing
    assert with_app.logs is not None and with_app.logs.note.startswith("no matching log lines")
    assert without_app.logs is not None
    assert without_app.logs.note == "no log query: label 'app' missing"
    assert "Logs (Grafana Explore)" not in titles(without_app.links)
    assert enriched.notes == (
        "Logs unavailable for 1 of 2 firing alerts: no log query: label 'app' missing",
    )
    assert len(loki.requests) == 1


async def test_loki_errors_are_noted_on_a_single_alert_message(
    loki: FakeLoki, pool: aiohttp.ClientSession
) -> None:
    async with FakeLoki(require_tenant=True) as strict:
        enricher = Enricher(make_config(strict.url), http=pool)
        events = [event("fp1")]
        try:
            enriched = await enricher.enrich(message_for(events), events, NOW)
        finally:
            await enricher.close()

    assert enriched.notes == ("Logs unavailable: Loki rejected the query (401): no org id",)


async def test_receivers_of_the_same_events_share_one_loki_query(
    loki: FakeLoki, enricher: Enricher, metrics: Metrics
) -> None:
    loki.delay = 0.1
    push(loki, {"namespace": "prod", "app": "backend"}, "ERROR shared")
    events = [event("fp1")]

    slack, email = await asyncio.gather(
        enricher.enrich(message_for(events, "slack-prod"), events, NOW),
        enricher.enrich(message_for(events, "email-sre"), events, NOW + timedelta(seconds=1)),
    )
    later = await enricher.enrich(message_for(events), events, NOW + timedelta(seconds=5))

    assert len(loki.requests) == 1
    for enriched in (slack, email, later):
        assert enriched.firing[0].logs is not None
        assert list(enriched.firing[0].logs.lines) == ["ERROR shared"]
    assert sample(metrics, "alert_router_enrich_cache_hits_total", enricher="loki") == 2


async def test_argocd_deploy_notices_get_links_but_no_log_query(
    loki: FakeLoki, enricher: Enricher
) -> None:
    deployed = event(
        "fp-deploy",
        source="argocd",
        one_shot=True,
        generator_url="",
        external_url="",
        details={"argocdUrl": "https://cd.example.com"},
    )

    enriched = await enricher.enrich(message_for([deployed]), [deployed], NOW)

    [alert] = enriched.firing
    assert alert.logs is None
    assert loki.requests == []
    assert titles(alert_links(alert)) == [
        "Runbook",
        "Logs (Grafana Explore)",
        "Grafana dashboard",
        "Argo CD",
    ]
    assert alert.links[-1].url == "https://cd.example.com/applications/backend"


async def test_without_loki_configured_there_are_links_only_and_no_notes(
    pool: aiohttp.ClientSession,
) -> None:
    config = config_from(
        """
enrich:
  grafana:
    url: https://grafana.example.com
    dashboards:
      - matchers: ['app="backend"']
        uid: app-overview
receivers:
  - name: slack-prod
    log: {}
route:
  receiver: slack-prod
"""
    )
    enricher = Enricher(config, http=pool)
    events = [event("fp1")]
    try:
        enriched = await enricher.enrich(message_for(events), events, NOW)
    finally:
        await enricher.close()

    [alert] = enriched.firing
    assert alert.logs is None
    assert enriched.notes == ()
    assert titles(alert_links(alert)) == ["Runbook", "Source", "Grafana dashboard", "Silence"]
    dashboard = parse_qs(urlsplit(alert.links[0].url).query)
    # The default 15-minute lookback before the alert, up to now.
    assert dashboard["from"] == [str((epoch_ns(STARTS_AT) - 900 * 1_000_000_000) // 1_000_000)]
    assert dashboard["to"] == [str(epoch_ns(NOW) // 1_000_000)]


async def test_alerts_without_a_matching_event_are_left_alone(enricher: Enricher) -> None:
    events = [event("fp1")]
    message = message_for(events)

    enriched = await enricher.enrich(message, [], NOW)

    assert enriched.firing == message.firing
    assert enriched.notes == ()


async def test_a_reload_keeps_the_loki_client_and_never_cuts_a_lookup_in_flight(
    loki: FakeLoki, tmp_path: Path
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(CONFIG.format(loki_url=loki.url, timeout="5s"))
    backend, worker = [event("fp1")], [event("fp2", app="worker")]
    push(loki, backend[0].labels, "ERROR backend")
    push(loki, worker[0].labels, "ERROR worker")
    loki.delay = 0.5

    async def lines(events: list[Event]) -> tuple[str, ...]:
        enriched = await state.runtime.enricher.enrich(message_for(events), events, NOW)
        logs = enriched.firing[0].logs
        assert logs is not None
        return tuple(logs.lines)

    async with running(config_from(path.read_text()), config_path=path) as service:
        state = service.app[STATE]
        in_flight = asyncio.create_task(lines(backend))
        await loki.wait_for_requests(1)
        # Another receiver, the same Loki settings: the Loki client and its cache stay.
        path.write_text(path.read_text().replace("name: email-sre", "name: email-ops"))
        assert await state.reload() == []
        assert await in_flight == ("ERROR backend",)
        assert await lines(backend) == ("ERROR backend",)
        assert len(loki.requests) == 1

        # New Loki settings: a new client; the old one's query in flight still ends well.
        in_flight = asyncio.create_task(lines(worker))
        await loki.wait_for_requests(2)
        path.write_text(path.read_text().replace("timeout: 5s", "timeout: 4s"))
        assert await state.reload() == []
        assert await in_flight == ("ERROR worker",)
        assert await lines(backend) == ("ERROR backend",)
        assert len(loki.requests) == 3
