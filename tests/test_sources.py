"""Normalization of Alertmanager and Argo CD payloads into events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from router.identity import as_sent, label_fingerprint
from router.ingest import alertmanager, argocd
from router.model import Event, Status
from tests.helpers import MINIMAL, config_from, payload

NOW = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


def test_alertmanager_sample_becomes_one_event_per_alert() -> None:
    config = config_from(MINIMAL)
    hook = alertmanager.AlertmanagerWebhook.model_validate(payload("alertmanager_firing.json"))
    events = alertmanager.to_events(hook, config, NOW)
    # The sample's fingerprints are not its labels' own (edited by hand): kept as sent.
    assert [as_sent(e.fingerprint) for e in events] == ["83eb2c81e0da3faf", "93eb2c81e0da3fb0"]
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
    event = alertmanager.to_events(hook, config, NOW)[0]
    assert event.labels["env"] == "production"  # no aliases configured in MINIMAL
    aliased = config_from(
        MINIMAL
        + "environment: {aliases: {production: prod}}\n"
        + "severity: {from_labels: [severity], aliases: {page: critical}, default: warning}\n"
    )
    event = alertmanager.to_events(hook, aliased, NOW)[0]
    assert (event.labels["env"], event.labels["severity"]) == ("prod", "critical")


def test_newer_alertmanager_keys_are_ignored() -> None:
    body = payload("alertmanager_firing.json")
    body["notification_reason"] = "new_alerts"
    body["routeLabels"] = {"team": "x"}
    alertmanager.AlertmanagerWebhook.model_validate(body)


def parse(body: object, now: datetime = NOW) -> list[Event]:
    """Events of an Alertmanager-style body, read with the clock at `now`."""
    hook = alertmanager.AlertmanagerWebhook.model_validate(body)
    return alertmanager.to_events(hook, config_from(MINIMAL), now)


def refusal(body: object) -> str:
    """Where and why the body is refused, as the 400 answer says it."""
    with pytest.raises(ValidationError) as caught:
        alertmanager.AlertmanagerWebhook.model_validate(body)
    return "; ".join(
        ".".join(str(p) for p in err["loc"]) + ": " + err["msg"] for err in caught.value.errors()
    )


@pytest.mark.parametrize("version", ["3", "4", 3, 4, None])
def test_versions_3_and_4_are_read_alike_and_a_number_is_read_as_its_text(
    version: object,
) -> None:
    body = payload("alertmanager_firing.json") | {"version": version}
    assert len(parse(body)) == 2


def test_a_numeric_group_key_is_read_as_its_text() -> None:
    body = payload("alertmanager_firing.json") | {"version": "3", "groupKey": 9777663806026784477}
    assert {e.group_key for e in parse(body)} == {"am/devops_team/9777663806026784477"}


def alert(labels: Mapping[str, object], **fields: object) -> dict[str, object]:
    return {"labels": labels, **fields}


@pytest.mark.parametrize(
    ("fields", "top", "status"),
    [
        ({"endsAt": "0001-01-01T00:00:00Z"}, "resolved", Status.FIRING),  # Go: not ended
        ({"endsAt": "2026-11-26T10:06:00Z"}, None, Status.FIRING),  # ends in the future
        ({"endsAt": "2026-11-26T10:04:59Z"}, "firing", Status.RESOLVED),  # has ended
        ({"endsAt": "2026-11-26T10:05:00Z"}, None, Status.RESOLVED),  # ends now: over
        ({}, "resolved", Status.RESOLVED),  # no end time: the body's status
        ({"endsAt": None}, "resolved", Status.RESOLVED),
        ({}, None, Status.FIRING),  # nothing says it is over
        ({"status": "firing", "endsAt": "2020-01-01T00:00:00Z"}, None, Status.FIRING),
        ({"status": "resolved", "endsAt": "0001-01-01T00:00:00Z"}, None, Status.RESOLVED),
    ],
)
def test_an_alert_without_status_is_firing_until_its_end_time_by_the_clock(
    fields: dict[str, object], top: str | None, status: Status
) -> None:
    body = {"alerts": [alert({"alertname": "A"}, **fields)], "status": top}
    [event] = parse(body)
    assert event.status is status


def test_times_are_read_in_utc_and_a_time_no_alert_could_have_is_not_shown() -> None:
    body = {
        "alerts": [
            alert({"alertname": "A"}, startsAt="2026-11-26T12:00:00.123456789+02:00"),
            alert({"alertname": "B"}, startsAt=1764151200, endsAt=""),  # Unix seconds
            alert(
                {"alertname": "C"},
                startsAt="0001-01-02T00:00:00Z",
                endsAt="9999-12-31T23:00:00-05:00",
            ),
            alert({"alertname": "D"}, endsAt="1900-01-01T00:00:00Z"),
        ]
    }
    a, b, c, d = parse(body)
    assert a.starts_at == datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
    assert a.starts_at.tzinfo is UTC
    assert (b.starts_at, b.ends_at) == (datetime(2025, 11, 26, 10, 0, tzinfo=UTC), None)
    # Too far out to be real: not shown (nor used for time windows), but still telling.
    assert (c.starts_at, c.ends_at, c.status) == (None, None, Status.FIRING)
    assert (d.ends_at, d.status) == (None, Status.RESOLVED)


def test_the_fingerprint_is_computed_as_alertmanager_does_when_none_is_sent() -> None:
    # The Prometheus test vector for LabelSet.Fingerprint, and a real Alertmanager webhook
    # (tests/data/real_world/pythonwebhook_testcurl7.json) whose fingerprint was computed so.
    assert label_fingerprint({}) == "cbf29ce484222325"
    assert (
        label_fingerprint({"name": "garland, briggs", "fear": "love is not enough"})
        == f"{5799056148416392346:016x}"
    )
    real = payload("real_world/pythonwebhook_testcurl7.json")
    sent = real["alerts"][0]["fingerprint"]
    assert label_fingerprint(real["alerts"][0]["labels"]) == sent == "fbab788ec4c1018b"
    del real["alerts"][0]["fingerprint"]
    [event] = parse(real)
    assert event.fingerprint == sent


def test_a_fingerprint_that_is_the_labels_own_is_the_identity_as_sent() -> None:
    real = payload("real_world/pythonwebhook_testcurl7.json")
    [event] = parse(real)
    assert event.fingerprint == as_sent(event.fingerprint) == "fbab788ec4c1018b"


def test_alerts_sent_with_one_fingerprint_but_different_labels_stay_apart() -> None:
    # A real fixture: three different alerts, all sent as 83eb2c81e0da3faf.
    events = parse(payload("real_world/alertmanager-webhook-adapter_alert-firing.json"))
    assert len({e.fingerprint for e in events}) == 3
    assert {as_sent(e.fingerprint) for e in events} == {"83eb2c81e0da3faf"}
    # The same alert sent again has the same identity: dedup and merging can rely on it.
    again = parse(payload("real_world/alertmanager-webhook-adapter_alert-firing.json"))
    assert [e.fingerprint for e in again] == [e.fingerprint for e in events]


def test_the_identity_of_a_label_set_does_not_depend_on_the_order_of_its_labels() -> None:
    forward = {"alertname": "A", "job": "node", "instance": "x:9100"}
    backward = dict(reversed(forward.items()))
    [a] = parse({"alerts": [alert(forward, fingerprint="placeholder")]})
    [b] = parse({"alerts": [alert(backward, fingerprint="placeholder")]})
    [c] = parse({"alerts": [alert(backward)]})
    assert a.fingerprint == b.fingerprint != c.fingerprint == label_fingerprint(forward)


@pytest.mark.parametrize(
    ("body", "group"),
    [
        # The group labels name the group, as in Alertmanager's own key.
        (
            {"receiver": "r", "groupLabels": {"team": "db"}, "alerts": [alert({"alertname": "A"})]},
            'am/r/{}:{team="db"}',
        ),
        # Without them, an alert goes with the others of its name...
        ({"alerts": [alert({"alertname": "A", "x": "1"})]}, 'am//{}:{alertname="A"}'),
        # ... and an alert without a name is a group of its own.
        ({"alerts": [alert({"job": "x", "a": "b"})]}, 'am//{}:{a="b", job="x"}'),
        ({"groupKey": "", "alerts": [alert({"job": "x"})]}, 'am//{}:{job="x"}'),
    ],
)
def test_a_body_without_group_key_is_grouped_by_receiver_and_group_labels(
    body: dict[str, object], group: str
) -> None:
    assert {e.group_key for e in parse(body)} == {group}


def test_alerts_of_different_names_without_group_key_are_different_groups() -> None:
    body = {"alerts": [alert({"alertname": "A"}), alert({"alertname": "B"})]}
    assert sorted(e.group_key for e in parse(body)) == [
        'am//{}:{alertname="A"}',
        'am//{}:{alertname="B"}',
    ]


def test_numbers_in_labels_are_read_as_text_and_nulls_as_absent() -> None:
    labels = {"alertname": "A", "port": 8080, "ratio": 0.5, "team": None, "zone": ""}
    [event] = parse({"alerts": [alert(labels, annotations={"n": 3, "gone": None, "x": ""})]})
    assert event.labels_as_sent() == {"alertname": "A", "port": "8080", "ratio": "0.5"}
    assert event.annotations == {"n": "3"}


def test_texts_that_only_argocd_prints_for_missing_fields_are_real_alertmanager_values() -> None:
    # A route may match tier="null" in Alertmanager: the label must reach our routes too.
    labels = {"alertname": "A", "tier": "null", "owner": "<no value>", "id": "<nil>"}
    [event] = parse({"alerts": [alert(labels)]})
    assert event.labels_as_sent() == labels


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"version": "4", "alerts": []}, "alerts: List should have at least 1 item"),
        ({"version": "4"}, "alerts: Field required"),
        ({"alerts": {"labels": {"a": "b"}}}, "alerts: Input should be a valid list"),
        ({"alerts": ["firing"]}, "alerts.0: Input should be a valid dictionary"),
        ({"alerts": [{"status": "firing"}]}, "alerts.0.labels: Field required"),
        ({"alerts": [alert({})]}, "alerts.0.labels: an alert needs at least one"),
        ({"alerts": [alert({"a": None, "b": ""})]}, "alerts.0.labels: an alert"),
        ({"alerts": [alert({"a": {"b": "c"}})]}, "alerts.0.labels.a: Input should be a valid str"),
        ({"alerts": [alert({"a": True})]}, "alerts.0.labels.a: Input should be a valid string"),
        ({"alerts": [alert({"a": "b"}, annotations=["x"])]}, "alerts.0.annotations: Input should"),
        ({"alerts": [alert({"a": "b"}, status="burning")]}, "alerts.0.status: Input should be"),
        ({"status": "burning", "alerts": [alert({"a": "b"})]}, "status: Input should be"),
        ({"alerts": [alert({"a": "b"}, endsAt="yesterday")]}, "alerts.0.endsAt: Input should be"),
        ({"alerts": [alert({"a": "b"}, startsAt=[2026])]}, "alerts.0.startsAt: Input should be"),
        ({"groupKey": {"k": 1}, "alerts": [alert({"a": "b"})]}, "groupKey: Input should be"),
    ],
)
def test_what_cannot_be_routed_is_refused_naming_the_field(
    body: dict[str, object], where: str
) -> None:
    assert where in refusal(body)


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
    events = alertmanager.to_events(
        alertmanager.AlertmanagerWebhook.model_validate(body), config, NOW
    )
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
    event = alertmanager.to_events(hook, config, NOW)[0]

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
    stored = alertmanager.to_events(hook, config, NOW)[0].to_dict()
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
