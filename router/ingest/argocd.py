"""Argo CD notification -> events.

The body is the JSON object the shipped argocd-notifications-cm templates render, one per
trigger: `trigger` and `app` are required; `project`, `namespace` (the destination),
`labels` (the Application's own), `syncStatus`, `healthStatus`, `operationPhase`,
`message`, `revision`, `repoURL`, `finishedAt` and `argocdUrl` are optional, and `null` or
`"<no value>"` mean absent.

Problem triggers open an incident per (app, trigger) that later events resolve; every
other trigger is a one-shot event, deduplicated per (app, trigger, revision). A problem is
held for `argocd.hold[trigger]` before anyone is told (`hold_of`): a health check that
flaps back to Healthy within it is recorded as flapped and told to nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router.config.schema import Config
from router.identity import fingerprint
from router.ingest.normalize import clean_labels, normalize, present, replaced_labels
from router.model import Event, Status, parse_time

SOURCE = "argocd"

# Problem trigger -> the test that says a later event shows it is over.
PROBLEM_TRIGGERS: dict[str, tuple[str, frozenset[str]]] = {
    "on-sync-failed": ("operationPhase", frozenset({"Succeeded"})),
    "on-health-degraded": ("healthStatus", frozenset({"Healthy"})),
    "on-sync-status-unknown": ("syncStatus", frozenset({"Synced", "OutOfSync"})),
}
# Triggers the shipped argocd-notifications-cm adds only to report recovery: they resolve
# incidents and say nothing of their own.
RECOVERY_TRIGGERS = frozenset({"on-health-healthy", "on-sync-status-known"})

_SUMMARIES = {
    "on-sync-failed": "Sync of {app} failed",
    "on-health-degraded": "{app} is degraded",
    "on-sync-status-unknown": "Sync status of {app} is unknown",
    "on-deployed": "{app} deployed",
    "on-sync-succeeded": "Sync of {app} succeeded",
    "on-sync-running": "Sync of {app} started",
    "on-created": "{app} created",
    "on-deleted": "{app} deleted",
}

_DETAIL_FIELDS = (
    "project",
    "syncStatus",
    "healthStatus",
    "operationPhase",
    "message",
    "revision",
    "repoURL",
    "finishedAt",
    "argocdUrl",
)


class ArgoCDNotification(BaseModel):
    """one Argo CD notification, from the webhook template of its trigger"""

    model_config = ConfigDict(extra="ignore")

    trigger: str = Field(min_length=1)
    app: str = Field(min_length=1)
    project: str | None = None
    namespace: str | None = None
    labels: dict[str, Any] = Field(default_factory=dict)
    syncStatus: str | None = None
    healthStatus: str | None = None
    operationPhase: str | None = None
    message: str | None = None
    revision: str | None = None
    repoURL: str | None = None
    finishedAt: str | None = None
    argocdUrl: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _absent_values(cls, data: Any) -> Any:
        # Argo CD renders a missing field as null or "<no value>": both mean absent.
        if not isinstance(data, dict):
            return data
        cleaned: dict[str, Any] = {}
        for key, value in data.items():
            if key == "labels":
                cleaned[key] = clean_labels(value) if isinstance(value, dict) else {}
            elif isinstance(value, str | int | float) and not isinstance(value, bool):
                text = present(value)
                if text is not None:
                    cleaned[key] = text
            elif value is not None:
                cleaned[key] = value
        return cleaned

    @model_validator(mode="after")
    def _times(self) -> ArgoCDNotification:
        if self.finishedAt:
            try:
                parse_time(self.finishedAt)
            except ValueError as exc:
                raise ValueError(
                    f"finishedAt is not an RFC 3339 time: {self.finishedAt!r}"
                ) from exc
        return self


def _labels(
    note: ArgoCDNotification, trigger: str, config: Config
) -> tuple[dict[str, str], dict[str, str]]:
    """The event's labels, and the Application's own values of those normalization set."""
    own = {str(k): str(v) for k, v in note.labels.items()}
    own.update({"alertname": trigger, "app": note.app})
    if note.project:
        own["project"] = note.project
    if note.namespace:
        own["namespace"] = note.namespace
    severity = config.argocd.severity.get(trigger)
    return normalize(own, config, source=SOURCE, severity=severity), replaced_labels(own)


def _details(note: ArgoCDNotification, config: Config) -> dict[str, str]:
    details = {f: str(getattr(note, f)) for f in _DETAIL_FIELDS if getattr(note, f)}
    if "argocdUrl" not in details and config.argocd.url:
        details["argocdUrl"] = config.argocd.url
    return details


def to_events(note: ArgoCDNotification, config: Config, now: datetime) -> list[Event]:
    """The event for the trigger itself, plus a resolve for each incident it shows is over."""
    at = parse_time(note.finishedAt) or now
    details = _details(note, config)
    events: list[Event] = []
    if note.trigger not in RECOVERY_TRIGGERS:
        problem = note.trigger in PROBLEM_TRIGGERS
        revision = note.revision or ""
        key = (
            f"argocd/{note.app}/{note.trigger}"
            if problem
            else f"argocd/{note.app}/{note.trigger}/{revision}"
        )
        known = _SUMMARIES.get(note.trigger)
        # An unknown trigger is text, never a format string.
        summary = known.format(app=note.app) if known else f"{note.app}: {note.trigger}"
        annotations = {"summary": summary}
        if note.message:
            annotations["description"] = note.message
        labels, replaced = _labels(note, note.trigger, config)
        events.append(
            Event(
                source=SOURCE,
                fingerprint=fingerprint(note.app, note.trigger, "" if problem else revision),
                group_key=key,
                status=Status.FIRING,
                labels=labels,
                annotations=annotations,
                starts_at=at,
                one_shot=not problem,
                details=details,
                replaced_labels=replaced,
            )
        )
    for problem_trigger, (field, healthy) in PROBLEM_TRIGGERS.items():
        if problem_trigger == note.trigger or getattr(note, field) not in healthy:
            continue
        # A resolve for an incident that was never opened is dropped by dedup: the
        # receiver never heard of it.
        labels, replaced = _labels(note, problem_trigger, config)
        events.append(
            Event(
                source=SOURCE,
                fingerprint=fingerprint(note.app, problem_trigger, ""),
                group_key=f"argocd/{note.app}/{problem_trigger}",
                status=Status.RESOLVED,
                labels=labels,
                annotations={
                    "summary": f"{_SUMMARIES[problem_trigger].format(app=note.app)}: recovered"
                },
                ends_at=at,
                details=details,
                replaced_labels=replaced,
            )
        )
    return events


def hold_of(config: Config) -> Callable[[Event], float]:
    """Seconds each event is held before anyone is told: its trigger's `argocd.hold` for a
    problem, nothing for a recovery or a one-shot event."""
    holds = config.argocd.hold

    def hold(event: Event) -> float:
        if event.status is not Status.FIRING or event.one_shot:
            return 0.0
        return holds.get(event.alertname, 0.0)

    return hold
