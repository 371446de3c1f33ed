"""Links: every URL decoded back with urllib.parse and checked field by field."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from router.config.schema import GrafanaConfig
from router.enrich.links import (
    EXPLORE_PANE_ID,
    argocd_app_url,
    epoch_ms,
    grafana_dashboard_url,
    grafana_explore_url,
    links_for,
    silence_url,
)
from router.ingest.normalize import normalize, replaced_labels
from router.matchers import parse_matchers
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import AlertView, Link, alert_links, build_message
from tests.helpers import config_from

START = datetime(2026, 5, 1, 11, 42, 7, 123000, tzinfo=UTC)
END = datetime(2026, 5, 1, 12, 0, 0, 456000, tzinfo=UTC)
EXPR = '{namespace="prod", app="back\\"end"} |~ "(?i)error"'

GRAFANA = GrafanaConfig.model_validate(
    {
        "url": "https://grafana.example.com/",
        "org_id": 3,
        "loki_datasource_uid": "loki-uid/1",
        "dashboards": [
            {"matchers": ['app="backend"'], "uid": "app-overview"},
            {"matchers": ['severity="critical"'], "uid": "error-monitoring"},
        ],
    }
)

CONFIG_YAML = """
environment:
  from_labels: [env, environment, namespace]
  aliases: {production: prod, development: dev, staging: stage}
severity:
  aliases: {page: critical, error: critical, warn: warning}
argocd:
  url: https://argocd.example.com
enrich:
  loki:
    url: http://loki:3100
    query: '{namespace="{{ labels.namespace }}", app="{{ labels.app }}"}'
  grafana:
    url: https://grafana.example.com
    loki_datasource_uid: loki
    dashboards:
      - matchers: ['app="backend"']
        uid: app-overview
receivers:
  - name: stdout
    log: {}
route:
  receiver: stdout
"""


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)


def test_epoch_ms_is_exact() -> None:
    assert epoch_ms(datetime(1970, 1, 1, 0, 0, 1, 999000, tzinfo=UTC)) == 1999
    assert epoch_ms(START) == int(START.timestamp()) * 1000 + 123


# ---- Grafana ------------------------------------------------------------------------------


def test_explore_url_decodes_to_one_pane_with_the_query_datasource_and_string_range() -> None:
    url = grafana_explore_url(GRAFANA, EXPR, START, END)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "grafana.example.com", "/explore")
    assert "+" not in parts.query
    query = query_of(url)
    assert query["schemaVersion"] == ["1"]
    assert query["orgId"] == ["3"]
    panes = json.loads(query["panes"][0])
    [(pane_id, pane)] = panes.items()
    assert pane_id == EXPLORE_PANE_ID
    assert len(pane_id) == 3 and any(c.isalpha() for c in pane_id)
    assert pane["datasource"] == "loki-uid/1"
    assert pane["queries"] == [
        {"refId": "A", "datasource": {"type": "loki", "uid": "loki-uid/1"}, "expr": EXPR}
    ]
    assert pane["range"] == {"from": str(epoch_ms(START)), "to": str(epoch_ms(END))}
    assert isinstance(pane["range"]["from"], str) and isinstance(pane["range"]["to"], str)


def test_dashboard_url_takes_the_first_matching_entry_with_encoded_variables() -> None:
    labels = {"app": "backend", "namespace": "prod & co/x", "severity": "critical"}

    url = grafana_dashboard_url(GRAFANA, labels, START, END)

    assert url is not None
    parts = urlsplit(url)
    assert parts.netloc == "grafana.example.com"
    assert parts.path == "/d/app-overview"
    assert parse_qsl(parts.query, strict_parsing=True) == [
        ("orgId", "3"),
        ("var-namespace", "prod & co/x"),
        ("var-app", "backend"),
        ("from", str(epoch_ms(START))),
        ("to", str(epoch_ms(END))),
    ]


def test_dashboard_url_sets_only_variables_the_alert_has() -> None:
    url = grafana_dashboard_url(GRAFANA, {"severity": "critical"}, START, END)

    assert url is not None
    assert urlsplit(url).path == "/d/error-monitoring"
    assert set(query_of(url)) == {"orgId", "from", "to"}


def test_no_matching_dashboard_gives_none() -> None:
    assert grafana_dashboard_url(GRAFANA, {"severity": "warning"}, START, END) is None


# ---- Alertmanager silence -------------------------------------------------------------------


def filter_of(url: str) -> str:
    base, _, fragment = url.partition("#")
    assert fragment.startswith("/silences/new?filter=")
    encoded = fragment.removeprefix("/silences/new?filter=")
    assert set(encoded) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789%-_.~"
    )
    return unquote(encoded)


def test_silence_url_is_the_new_silence_form_with_quoted_percent_encoded_matchers() -> None:
    labels = {"alertname": "CPUHigh", "instance": '10.0.0.1:9100 "x", y\\z', "zone": "é"}

    url = silence_url("http://alertmanager:9093/", labels)

    assert url.startswith("http://alertmanager:9093/#/silences/new?filter=")
    text = filter_of(url)
    assert text == ('{alertname="CPUHigh", instance="10.0.0.1:9100 \\"x\\", y\\\\z", zone="é"}')
    # Alertmanager's matcher syntax reads it back to the same label values.
    parsed = parse_matchers(text)
    assert [(m.name, m.op, m.value) for m in parsed] == [
        ("alertname", "=", "CPUHigh"),
        ("instance", "=", '10.0.0.1:9100 "x", y\\z'),
        ("zone", "=", "é"),
    ]


def silence_filter(event: Event) -> str:
    [silence] = [
        link
        for link in links_for(event, config_from(CONFIG_YAML), expr=None, start=START, end=END)
        if link.title == "Silence"
    ]
    return filter_of(silence.url)


def test_silence_matches_the_labels_as_the_sender_sent_them() -> None:
    config = config_from(CONFIG_YAML)
    own = {"alertname": "HighErrorRate", "severity": "page", "source": "theirs", "zone": "a"}
    event = make_event(
        labels=normalize(own, config, source="alertmanager"),
        replaced_labels=replaced_labels(own),
    )
    assert (event.labels["severity"], event.labels["source"]) == ("critical", "alertmanager")

    matchers = parse_matchers(silence_filter(event))

    assert [(m.name, m.op, m.value) for m in matchers] == [
        ("alertname", "=", "HighErrorRate"),
        ("severity", "=", "page"),
        ("source", "=", "theirs"),
        ("zone", "=", "a"),
    ]


def test_silence_leaves_out_the_labels_normalization_added() -> None:
    config = config_from(CONFIG_YAML)
    own = {"alertname": "HighErrorRate", "namespace": "payments"}
    event = make_event(
        labels=normalize(own, config, source="alertmanager"),
        replaced_labels=replaced_labels(own),
    )
    assert {"env", "severity", "source"} <= set(event.labels)

    assert silence_filter(event) == '{alertname="HighErrorRate", namespace="payments"}'


# ---- Argo CD and links_for ----------------------------------------------------------------


def test_argocd_app_url_encodes_the_app_name() -> None:
    url = argocd_app_url("https://argocd.example.com/", "team a/app?x")

    assert urlsplit(url).path == "/applications/team%20a%2Fapp%3Fx"
    assert unquote(urlsplit(url).path) == "/applications/team a/app?x"


def make_event(**changes: Any) -> Event:
    labels = {
        "alertname": "HighErrorRate",
        "namespace": "prod",
        "app": "backend",
        "source": "alertmanager",
        "env": "prod",
        "severity": "critical",
    }
    fields: dict[str, Any] = {
        "source": "alertmanager",
        "fingerprint": "fp1",
        "group_key": "g",
        "status": Status.FIRING,
        "labels": labels,
        "annotations": {"runbook_url": "https://runbooks.example.com/high-error-rate"},
        "starts_at": START,
        "generator_url": "http://prometheus:9090/graph?g0.expr=x",
        "external_url": "http://alertmanager:9093",
    }
    fields.update(changes)
    return Event(**fields)


def view_of(event: Event, links: list[Link]) -> AlertView:
    """The alert as channels render it, with these enrichment links."""
    route = RouteSettings(receiver="r", path="root route", repeat_interval=1.0, send_resolved=True)
    notification = Notification(
        id="n1", route=route, group_key="g", events=[event], created_at=START
    )
    [alert] = build_message(notification, "first").alerts
    return dataclasses.replace(alert, links=links)


def test_links_of_an_alertmanager_alert_come_in_one_order() -> None:
    config = config_from(CONFIG_YAML)
    event = make_event()

    enrichment = links_for(event, config, expr=EXPR, start=START, end=END)
    links = alert_links(view_of(event, enrichment))

    assert [link.title for link in links] == [
        "Runbook",
        "Source",
        "Logs (Grafana Explore)",
        "Grafana dashboard",
        "Silence",
        "Argo CD",
    ]
    runbook, source, explore, dashboard, silence, argocd = (link.url for link in links)
    assert runbook == "https://runbooks.example.com/high-error-rate"
    assert source == "http://prometheus:9090/graph?g0.expr=x"
    pane = next(iter(json.loads(query_of(explore)["panes"][0]).values()))
    assert pane["queries"][0]["expr"] == EXPR
    assert urlsplit(dashboard).path == "/d/app-overview"
    assert 'alertname="HighErrorRate"' in filter_of(silence)
    assert argocd == "https://argocd.example.com/applications/backend"


def test_alert_links_drop_non_web_urls_and_repeats() -> None:
    event = make_event(
        annotations={"runbook_url": "javascript:alert(1)"},
        generator_url="file:///etc/passwd",
        external_url="",
        labels={"alertname": "X", "severity": "warning"},
    )
    again = Link("Argo CD", "https://argocd.example.com/applications/x")
    enrichment = [Link("Bad", "ftp://x.example.com/"), again, Link("Same page", again.url)]

    assert alert_links(view_of(event, enrichment)) == [again]


def test_links_for_an_argocd_event_use_its_own_argocd_url() -> None:
    config = config_from(CONFIG_YAML)
    event = make_event(
        source="argocd",
        labels={"alertname": "on-sync-failed", "app": "guestbook", "severity": "critical"},
        annotations={},
        generator_url="",
        external_url="",
        details={"argocdUrl": "https://cd.internal.example.com"},
    )

    links = links_for(event, config, expr=None, start=START, end=END)

    assert links == [
        Link("Argo CD", "https://cd.internal.example.com/applications/guestbook"),
    ]


def test_without_grafana_there_are_no_grafana_links() -> None:
    config = config_from(
        """
argocd:
  url: https://argocd.example.com
enrich:
  loki:
    url: http://loki:3100
    query: '{app="{{ labels.app }}"}'
receivers:
  - name: stdout
    log: {}
route:
  receiver: stdout
"""
    )
    assert config.enrich.grafana is None and config.enrich.loki is not None

    links = links_for(make_event(), config, expr=EXPR, start=START, end=END)

    assert [link.title for link in links] == ["Silence", "Argo CD"]


def test_dashboard_window_is_the_one_given() -> None:
    config = config_from(CONFIG_YAML)
    start = START - timedelta(minutes=15)

    [dashboard] = [
        link
        for link in links_for(make_event(), config, expr=None, start=start, end=END)
        if link.title == "Grafana dashboard"
    ]

    query = query_of(dashboard.url)
    assert query["from"] == [str(epoch_ms(start))] and query["to"] == [str(epoch_ms(END))]


def test_silence_from_a_real_webhook_uses_the_labels_alertmanager_sent() -> None:
    from router.ingest import alertmanager
    from tests.helpers import payload

    config = config_from(
        """
environment: {from_labels: [env], aliases: {production: prod}, default: unknown}
receivers: [{name: r, log: {}}]
route: {receiver: r}
"""
    )
    body = payload("alertmanager_firing.json")
    body["alerts"][0]["labels"]["env"] = "production"
    hook = alertmanager.AlertmanagerWebhook.model_validate(body)
    event = alertmanager.to_events(hook, config, START)[0]
    assert event.labels["env"] == "prod"
    [silence] = [
        link
        for link in links_for(event, config, expr=None, start=START, end=END)
        if link.title == "Silence"
    ]
    fragment = urlsplit(silence.url).fragment
    filter_ = parse_qs(urlsplit(fragment).query)["filter"][0]
    assert 'env="production"' in filter_
    assert 'severity="warning"' in filter_
    assert "source=" not in filter_
    assert "=~" not in filter_
