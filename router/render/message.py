"""The view of a notification that every channel renders: one place decides what is said."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from router.model import Event, Notification, Status

# Labels that say where an alert comes from; shown in headers, not repeated in label lists.
_CONTEXT_LABELS = ("alertname", "env", "severity", "source")


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class LogExcerpt:
    """Log lines found for an alert, or why there are none (`lines` empty, `note` set)."""

    query: str = ""
    lines: Sequence[str] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class AlertView:
    status: Status
    alertname: str
    fingerprint: str
    summary: str
    description: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str = ""
    runbook_url: str = ""
    links: Sequence[Link] = ()
    logs: LogExcerpt | None = None

    @property
    def extra_labels(self) -> dict[str, str]:
        """Labels other than the ones every header already shows."""
        return {k: v for k, v in sorted(self.labels.items()) if k not in _CONTEXT_LABELS}


@dataclass(frozen=True, slots=True)
class Message:
    """Everything a channel needs to say about one notification, already decided."""

    notification_id: str
    receiver: str
    group_key: str
    status: Status
    reason: str
    source: str
    env: str
    severity: str
    alertname: str
    app: str
    namespace: str
    title: str
    firing: Sequence[AlertView]
    resolved: Sequence[AlertView]
    common_labels: Mapping[str, str]
    route_path: str = ""
    external_url: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    links: Sequence[Link] = ()
    notes: Sequence[str] = ()
    # Only a digest sets this: how many notifications were folded into this one.
    digest_of: int = 0

    @property
    def alerts(self) -> list[AlertView]:
        return [*self.firing, *self.resolved]

    @property
    def status_text(self) -> str:
        """`FIRING:2` or `RESOLVED`, as Alertmanager writes it."""
        if self.status is Status.FIRING:
            return f"FIRING:{len(self.firing)}"
        return "RESOLVED"


def format_duration(seconds: float) -> str:
    """A short human duration for message text: 45s, 14m, 3h05m, 2d4h."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{max(0, int(seconds))}s"
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d{hours % 24}h"


def _common_labels(events: Sequence[Event]) -> dict[str, str]:
    if not events:
        return {}
    common = dict(events[0].labels)
    for event in events[1:]:
        for key in list(common):
            if event.labels.get(key) != common[key]:
                del common[key]
    return common


def _alert_view(event: Event) -> AlertView:
    ann = event.annotations
    summary = ann.get("summary") or ann.get("message") or event.details.get("message", "")
    description = ann.get("description", "")
    if description == summary:
        description = ""
    return AlertView(
        status=event.status,
        alertname=event.alertname,
        fingerprint=event.fingerprint,
        summary=summary,
        description=description,
        labels=dict(event.labels),
        annotations=dict(ann),
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        generator_url=event.generator_url,
        runbook_url=ann.get("runbook_url", ""),
    )


def _one_or_many(events: Sequence[Event], label: str) -> str:
    values = sorted({e.labels.get(label, "") for e in events} - {""})
    return ", ".join(values)


def build_message(notification: Notification, reason: str) -> Message:
    """Turn a notification into the view the templates render."""
    events = list(notification.events)
    firing = [_alert_view(e) for e in events if e.status is Status.FIRING]
    resolved = [_alert_view(e) for e in events if e.status is Status.RESOLVED]
    common = _common_labels(events)
    status = Status.FIRING if firing else Status.RESOLVED
    alertname = _one_or_many(events, "alertname")
    env = _one_or_many(events, "env")
    severity = _one_or_many(events, "severity")
    app = _one_or_many(events, "app")
    namespace = _one_or_many(events, "namespace")
    # Alertmanager's subject: status, then what the group is, then what the alerts share.
    where = " ".join(v for v in (app or namespace, env, severity) if v)
    status_text = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    title = f"[{status_text}] {alertname or 'alert'}" + (f" ({where})" if where else "")
    first = events[0] if events else None
    notes: list[str] = []
    truncated = max((int(e.details.get("truncatedAlerts", "0")) for e in events), default=0)
    if truncated:
        notes.append(f"Alertmanager left out {truncated} more alerts of this group (max_alerts).")
    return Message(
        notification_id=notification.id,
        receiver=notification.receiver,
        group_key=notification.group_key,
        status=status,
        reason=reason,
        source=first.source if first else "",
        env=env,
        severity=severity,
        alertname=alertname,
        app=app,
        namespace=namespace,
        title=title,
        firing=firing,
        resolved=resolved,
        common_labels=common,
        route_path=notification.route.path,
        external_url=first.external_url if first else "",
        details=dict(first.details) if first else {},
        notes=notes,
    )
