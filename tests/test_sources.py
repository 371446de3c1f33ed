"""Normalization of Alertmanager and Argo CD payloads into events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from router.ingest import alertmanager, argocd
from router.model import Event, Status
from tests.helpers import MINIMAL, config_from, payload

NOW = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


def test_alertmanager_sample_becomes_one_event_per_alert() -> None:
    config = config_from(MINIMAL)
    hook = alertmanager.AlertmanagerWebhook.model_validate(payload("alertmanager_firing.json"))
    events = alertmanager.to_events(hook, config)
    assert [e.fingerprint for e in events] == ["83eb2c81e0da3faf", "93eb2c81e0da3fb0"]
    first = events[0]
    assert first.status is Status.FIRING
    assert first.ends_at is None  # Go's zero time means "not ended"
    assert first.starts_at == datetime(2021, 3, 30, 12, 17, 50, 814674, tzinfo=UTC)
    assert first.labels["source"] == "alertmanager"
    assert first.labels["severity"] == "warning"
    assert first.labels["env"] == "unknown"
    assert first.group_key == 'am/devops_team/{}:{alertname="CPUHigh"}'


def test_environment_comes_from_the_first_present_label_through_aliases() -> None:
    config = config_from(MINIMAL)
    body = payload("alertmanager_firing.json")
    body["alerts"][0]["labels"].update({"namespace": "dev", "environment": "production"})
    body["alerts"][0]["labels"]["severity"] = "page"
    hook = alertmanager.AlertmanagerWebhook.model_validate(body)
    event = alertmanager.to_events(hook, config)[0]
    assert event.labels["env"] == "production"  # no aliases configured in MINIMAL
    aliased = config_from(
        MINIMAL
        + "environment: {aliases: {production: prod}}\n"
        + "severity: {from_labels: [severity], aliases: {page: critical}, default: warning}\n"
    )
    event = alertmanager.to_events(hook, aliased)[0]
    assert (event.labels["env"], event.labels["severity"]) == ("prod", "critical")


def test_newer_alertmanager_keys_are_ignored() -> None:
    body = payload("alertmanager_firing.json")
    body["notification_reason"] = "new_alerts"
    body["routeLabels"] = {"team": "x"}
    alertmanager.AlertmanagerWebhook.model_validate(body)


@pytest.mark.parametrize(
    ("path", "value"),
    [("version", "3"), ("status", "burning"), ("alerts", []), ("groupKey", "")],
)
def test_alertmanager_payload_that_breaks_the_schema_is_refused(path: str, value: object) -> None:
    body = payload("alertmanager_firing.json")
    body[path] = value
    with pytest.raises(ValidationError):
        alertmanager.AlertmanagerWebhook.model_validate(body)


def test_argocd_sync_failure_opens_an_incident_per_app_and_trigger() -> None:
    config = config_from(MINIMAL + "environment: {from_labels: [env, environment, namespace]}\n")
    note = argocd.ArgoCDNotification.model_validate(payload("argocd_sync_failed.json"))
    events = argocd.to_events(note, config, NOW)
    firing = [e for e in events if e.status is Status.FIRING]
    assert len(firing) == 1
    event = firing[0]
    assert event.status is Status.FIRING and not event.one_shot
    assert event.group_key == "argocd/backend/on-sync-failed"
    assert event.labels["alertname"] == "on-sync-failed"
    assert event.labels["severity"] == "critical"
    assert event.labels["env"] == "prod"  # from the destination namespace
    assert event.labels["team"] == "shop"
    assert event.details["revision"] == "9f2c1e7"
    assert event.annotations["description"] == "one or more objects failed to apply"


def test_succeeded_sync_resolves_the_sync_failed_incident() -> None:
    config = config_from(MINIMAL)
    body = payload("argocd_sync_failed.json") | {
        "trigger": "on-sync-succeeded",
        "operationPhase": "Succeeded",
        "healthStatus": "Progressing",
    }
    events = argocd.to_events(argocd.ArgoCDNotification.model_validate(body), config, NOW)
    by_key = {e.group_key: e for e in events}
    assert by_key["argocd/backend/on-sync-succeeded/9f2c1e7"].one_shot
    resolved = by_key["argocd/backend/on-sync-failed"]
    assert resolved.status is Status.RESOLVED
    assert resolved.labels["severity"] == "critical"  # routes like the firing did


def test_healthy_recovery_trigger_only_resolves() -> None:
    config = config_from(MINIMAL)
    body = {"trigger": "on-health-healthy", "app": "backend", "healthStatus": "Healthy"}
    events = argocd.to_events(argocd.ArgoCDNotification.model_validate(body), config, NOW)
    assert [(e.group_key, e.status) for e in events] == [
        ("argocd/backend/on-health-degraded", Status.RESOLVED)
    ]


def test_no_value_and_null_fields_are_treated_as_absent() -> None:
    config = config_from(MINIMAL)
    body = {
        "trigger": "on-created",
        "app": "backend",
        "namespace": "<no value>",
        "revision": None,
        "labels": {"team": "<no value>", "tier": None, "x": "y"},
        "operationPhase": "<no value>",
    }
    note = argocd.ArgoCDNotification.model_validate(body)
    event = argocd.to_events(note, config, NOW)[0]
    assert "namespace" not in event.labels
    assert "team" not in event.labels and "tier" not in event.labels
    assert event.labels["x"] == "y"
    assert "revision" not in event.details


@pytest.mark.parametrize("missing", ["trigger", "app"])
def test_argocd_body_without_trigger_or_app_is_refused(missing: str) -> None:
    body = payload("argocd_sync_failed.json")
    body[missing] = "<no value>"
    with pytest.raises(ValidationError):
        argocd.ArgoCDNotification.model_validate(body)


def test_one_shot_events_of_different_revisions_are_different_groups() -> None:
    config = config_from(MINIMAL)
    base = {"trigger": "on-deployed", "app": "backend", "operationPhase": "Succeeded"}
    parse = argocd.ArgoCDNotification.model_validate
    a = argocd.to_events(parse(base | {"revision": "a1"}), config, NOW)
    b = argocd.to_events(parse(base | {"revision": "b2"}), config, NOW)
    assert a[0].group_key != b[0].group_key
    assert a[0].one_shot and a[0].labels["severity"] == "info"


def test_alerts_cut_by_max_alerts_are_named_in_the_message() -> None:
    from router.model import Notification, RouteSettings
    from router.render.message import build_message

    config = config_from(MINIMAL)
    body = payload("alertmanager_firing.json") | {"truncatedAlerts": 48}
    events = alertmanager.to_events(alertmanager.AlertmanagerWebhook.model_validate(body), config)
    route = RouteSettings(receiver="stdout", path="route", repeat_interval=1.0, send_resolved=True)
    message = build_message(
        Notification(id="n1", route=route, group_key="g", events=events, created_at=NOW), "first"
    )
    assert message.notes == ["Alertmanager left out 48 more alerts of this group (max_alerts)."]


def test_the_senders_own_env_severity_and_source_are_kept_apart_from_details() -> None:
    config = config_from(MINIMAL + "severity: {aliases: {page: critical}}\n")
    body = payload("alertmanager_firing.json")
    body["alerts"][0]["labels"].update({"severity": "page", "source": "node-exporter"})
    hook = alertmanager.AlertmanagerWebhook.model_validate(body)
    event = alertmanager.to_events(hook, config)[0]

    assert (event.labels["severity"], event.labels["source"]) == ("critical", "alertmanager")
    assert event.replaced_labels == {"severity": "page", "source": "node-exporter"}
    assert event.details == {}
    sent = event.labels_as_sent()
    assert (sent["severity"], sent["source"]) == ("page", "node-exporter")
    assert "env" not in sent  # normalization made it up
    assert Event.from_dict(event.to_dict()) == event


def test_events_recorded_with_the_old_bookkeeping_in_details_still_load() -> None:
    config = config_from(MINIMAL)
    hook = alertmanager.AlertmanagerWebhook.model_validate(payload("alertmanager_firing.json"))
    stored = alertmanager.to_events(hook, config)[0].to_dict()
    del stored["replaced_labels"], stored["truncated_alerts"]
    stored["details"] = {
        "original:source": "",
        "original:env": "",
        "original:severity": "warning",
        "truncatedAlerts": "3",
    }

    event = Event.from_dict(stored)

    assert event.details == {}
    assert event.replaced_labels == {"severity": "warning"}
    assert event.truncated_alerts == 3
