"""The HeartbeatMissing event: opened when a heartbeat is missing, resolved when it beats."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from router.config.heartbeats import Heartbeat
from router.config.schema import Config
from router.durations import format_duration
from router.identity import fingerprint
from router.ingest.normalize import normalize
from router.model import Event, Status, format_time

SOURCE = "heartbeat"
ALERTNAME = "HeartbeatMissing"


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def missing_labels(heartbeat: Heartbeat, config: Config) -> dict[str, str]:
    """The labels the contract gives the event: the heartbeat's own `labels`, normalized
    like any alert's, with alertname, heartbeat and source set."""
    own = {**heartbeat.labels, "alertname": ALERTNAME, "heartbeat": heartbeat.name}
    labels = normalize(own, config, source=SOURCE)
    labels["heartbeat"] = heartbeat.name
    return labels


def _event(
    name: str,
    labels: Mapping[str, str],
    status: Status,
    annotations: Mapping[str, str],
    starts_at: float,
    ends_at: float | None = None,
) -> Event:
    return Event(
        source=SOURCE,
        fingerprint=fingerprint(SOURCE, name),
        group_key=f"{SOURCE}/{name}",
        status=status,
        labels=dict(labels),
        annotations=dict(annotations),
        starts_at=_at(starts_at),
        ends_at=_at(ends_at) if ends_at is not None else None,
        details={"heartbeat": name},
    )


def firing(
    heartbeat: Heartbeat, labels: Mapping[str, str], silent_since: float, beat_before: bool
) -> Event:
    """The open event: no beat since `silent_since` (its last beat, or when it was first
    expected when `beat_before` is false)."""
    since = format_time(_at(silent_since))
    heard = f"last beat at {since}" if beat_before else f"no beat at all since {since}"
    return _event(
        heartbeat.name,
        labels,
        Status.FIRING,
        {
            "summary": f"Heartbeat {heartbeat.name} is missing: {heard}",
            "description": (
                f"A beat is expected at least every {format_duration(heartbeat.interval)}"
                f" (grace {format_duration(heartbeat.grace)}). Whatever sends it (Alertmanager"
                " with its Watchdog route, a CronJob posting to /heartbeat/"
                f"{heartbeat.name}) has stopped, or cannot reach alert-router."
            ),
        },
        silent_since + heartbeat.window,
    )


def resolved(
    name: str, labels: Mapping[str, str], silent_since: float, window: float, beat_at: float
) -> Event:
    """The resolve: beats resumed at `beat_at` after none since `silent_since`."""
    gap = format_duration(max(0.0, beat_at - silent_since))
    return _event(
        name,
        labels,
        Status.RESOLVED,
        {
            "summary": f"Heartbeat {name} beats again: it was missing for {gap}",
            "description": (
                f"No beat from {format_time(_at(silent_since))} until"
                f" {format_time(_at(beat_at))} ({gap})."
            ),
        },
        silent_since + window,
        beat_at,
    )


def forgotten(name: str, labels: Mapping[str, str], silent_since: float, now: float) -> Event:
    """The resolve of a missing heartbeat the config no longer has."""
    return _event(
        name,
        labels,
        Status.RESOLVED,
        {
            "summary": f"Heartbeat {name} was removed from the configuration while missing",
            "description": f"No beat since {format_time(_at(silent_since))}; no longer watched.",
        },
        silent_since,
        now,
    )
