"""The render layer's shortcuts give what the plain way gives: the enriched message's copy,
the cached runbook and source links, the cached times of the payload."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from router.model import GroupActions, SilenceScope, Status
from router.render.message import (
    AlertView,
    DigestListing,
    Link,
    LogExcerpt,
    Message,
    alert_links,
    with_alerts,
)
from router.render.payload import notification_payload

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def view(fingerprint: str, **changes: object) -> AlertView:
    alert = AlertView(
        Status.FIRING,
        "HighErrorRate",
        fingerprint,
        "errors",
        "",
        {"alertname": "HighErrorRate", "pod": fingerprint},
        {"summary": "errors"},
        NOW,
        None,
        " http://prometheus:9090/graph ",
        "https://runbooks.example.com/x",
    )
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


def every_field_set() -> Message:
    return Message(
        "n-1",
        "slack",
        "g",
        Status.FIRING,
        "repeat",
        "alertmanager",
        "prod",
        "critical",
        "HighErrorRate",
        "backend",
        "prod",
        "[FIRING:1] HighErrorRate",
        [view("a")],
        [view("b", status=Status.RESOLVED)],
        {"env": "prod"},
        route_path="routes[0]",
        external_url="http://alertmanager:9093",
        details={"revision": "abc"},
        links=[Link("alert-router", "http://router/ui/notifications/n-1")],
        notes=["a note"],
        digest_of=2,
        digest=DigestListing(entries=(), shared_labels={}, listing_url="http://router/x"),
        resolved_after=12.5,
        silence=SilenceScope(alertmanager="am", matchers=(("a", "=", "b"),)),
        actions=GroupActions(receiver="slack", group_key="g", acked_by="U1"),
    )


def test_with_alerts_is_replace_of_the_alerts_and_notes_keeping_every_other_field() -> None:
    message = every_field_set()
    firing, notes = [view("c")], ("a note", "another")
    resolved: list[AlertView] = []

    copy = with_alerts(message, firing, resolved, notes)

    assert copy == dataclasses.replace(message, firing=firing, resolved=resolved, notes=notes)
    assert repr(copy) == repr(
        dataclasses.replace(message, firing=firing, resolved=resolved, notes=notes)
    )
    assert message.firing != firing  # the original is left as it was


def test_cached_runbook_and_source_links_are_judged_per_url_every_time() -> None:
    ok = view("a")
    bad = view("b", runbook_url="ftp://runbooks", generator_url="javascript:alert(1)")
    same = view("c", generator_url="https://runbooks.example.com/x")

    for _ in range(2):
        assert alert_links(ok) == [
            Link("Runbook", "https://runbooks.example.com/x"),
            Link("Source", "http://prometheus:9090/graph"),
        ]
        assert alert_links(bad) == []
        # The source repeats the runbook: shown once.
        assert alert_links(same) == [Link("Runbook", "https://runbooks.example.com/x")]


def test_payload_times_are_utc_rfc3339_whatever_zone_and_however_often() -> None:
    plus_two = timezone(timedelta(hours=2))
    alerts = [
        view("a", starts_at=NOW, logs=LogExcerpt(query="q")),
        view("b", starts_at=NOW.astimezone(plus_two)),
        view("c", starts_at=NOW.replace(tzinfo=None) + timedelta(microseconds=5)),
        view("d", starts_at=None, ends_at=NOW + timedelta(seconds=1), status=Status.RESOLVED),
    ]
    message = dataclasses.replace(every_field_set(), firing=alerts[:3], resolved=alerts[3:])

    for _ in range(2):
        payload = notification_payload(message)
        times = [(a["startsAt"], a["endsAt"]) for a in payload["alerts"]]
        naive = (NOW + timedelta(microseconds=5)).replace(tzinfo=None).astimezone(UTC)
        assert times == [
            ("2026-05-01T12:00:00Z", None),
            ("2026-05-01T12:00:00Z", None),
            (naive.isoformat().replace("+00:00", "Z"), None),
            (None, "2026-05-01T12:00:01Z"),
        ]
