"""The stored form of what is recorded on the webhook path: written as `to_dict` says,
read back as it was."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

from router.model import Event, Notification, RouteSettings, Status
from router.store.codec import events_json, facets, stored_notification

ROUTE = RouteSettings(receiver="ops", path="root route", repeat_interval=60.0, send_resolved=True)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def full_event(**changes: object) -> Event:
    """An event with every field set to something other than its default."""
    values: dict[str, object] = {
        "source": "alertmanager",
        "fingerprint": "0123456789abcdef",
        "group_key": 'am/r/{}:{alertname="A"}',
        "status": Status.RESOLVED,
        "labels": {"alertname": "A", "env": "prod", "note": 'quote " and \\ and ünï'},
        "annotations": {"summary": "line\nbreak"},
        "starts_at": datetime(2026, 11, 26, 10, 0, 0, 120, tzinfo=UTC),
        "ends_at": datetime(2026, 11, 26, 13, 0, tzinfo=timezone(timedelta(hours=2))),
        "generator_url": "http://prometheus/graph",
        "external_url": "http://alertmanager",
        "one_shot": True,
        "details": {"revision": "9f2c1e7"},
        "replaced_labels": {"env": "production"},
        "truncated_alerts": 3,
        "group_labels": {"alertname": "A"},
        "origin": {"reason": "escalated"},
    }
    values.update(changes)
    return Event(**values)  # type: ignore[arg-type]


def note(*events: Event) -> Notification:
    return Notification(id="n1", route=ROUTE, group_key="g", events=events, created_at=NOW)


def test_events_are_stored_as_their_dicts_and_read_back_equal() -> None:
    # Every field is set: one the stored form forgot would show below.
    assert all(getattr(full_event(), f.name) not in (f.default, {}) for f in fields(Event))
    events = [
        full_event(),
        full_event(fingerprint="f2", origin={}, starts_at=None, ends_at=None),
        full_event(fingerprint="f3", starts_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC)),
        full_event(fingerprint="f4", labels=MappingProxyType({"alertname": "B"})),
    ]
    [text] = events_json([note(*events)])
    assert json.loads(text) == [e.to_dict() for e in events]
    assert json.loads(text)[0]["starts_at"] == "2026-11-26T10:00:00.000120Z"
    assert json.loads(text)[2]["starts_at"] == "2026-11-26T10:00:00Z"
    assert json.loads(text)[0]["ends_at"] == "2026-11-26T11:00:00Z"
    read = stored_notification("n1", "g", json.dumps(ROUTE.to_dict()), text, 0.0, 0.0)
    assert list(read.events) == [Event.from_dict(e.to_dict()) for e in events]
    assert read.events[0].starts_at == events[0].starts_at
    assert read.events[0].ends_at == events[0].ends_at


def test_an_event_routed_to_two_receivers_is_stored_alike_for_both() -> None:
    shared = full_event()
    first, second = events_json([note(shared), note(full_event(fingerprint="x"), shared)])
    assert json.loads(second)[1] == json.loads(first)[0]


def test_facets_are_the_first_alerts_and_every_distinct_value_lowercased() -> None:
    one = full_event(labels={"alertname": "A", "env": "Prod", "severity": "critical"})
    two = full_event(labels={"alertname": "B", "env": "prod", "team": "", "zone": "EU"})
    found = facets(note(one, two))
    assert (found.env, found.severity, found.source, found.alertname) == (
        "Prod",
        "critical",
        "alertmanager",
        "A",
    )
    assert found.text.split("\n") == ["a", "prod", "critical", "b", "eu"]
    empty = facets(note())
    assert (empty.env, empty.source, empty.text) == ("", "", "")
