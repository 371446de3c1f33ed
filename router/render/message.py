"""The view of a notification that every channel renders: one place decides what is said."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from router.durations import format_duration
from router.model import Event, GroupActions, Notification, SilenceScope, Status, slot_setters
from router.render.text import resolved_after, severity_rank, status_text

# Labels that say where an alert comes from; shown in headers, not repeated in label lists.
_CONTEXT_LABELS = ("alertname", "env", "severity", "source")

# How many alerts a digest lists one by one in Slack; beyond, it links to the full list.
MAX_DIGEST_LISTED = 1000

TITLE_RUNBOOK = "Runbook"
TITLE_SOURCE = "Source"
_WEB_SCHEMES = frozenset({"http", "https"})


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


@dataclass(frozen=True, slots=True, init=False)
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

    # Made twice per alert of every notification (built, then enriched): the generated
    # __init__ of a frozen dataclass sets each field through object.__setattr__, twice
    # the cost of setting the slots directly as this one does (`_ALERT_VIEW_SLOTS`; same
    # fields, order and defaults, checked at import below).
    def __init__(
        self,
        status: Status,
        alertname: str,
        fingerprint: str,
        summary: str,
        description: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        starts_at: datetime | None,
        ends_at: datetime | None,
        generator_url: str = "",
        runbook_url: str = "",
        links: Sequence[Link] = (),
        logs: LogExcerpt | None = None,
    ) -> None:
        (
            set_status,
            set_alertname,
            set_fingerprint,
            set_summary,
            set_description,
            set_labels,
            set_annotations,
            set_starts_at,
            set_ends_at,
            set_generator_url,
            set_runbook_url,
            set_links,
            set_logs,
        ) = _ALERT_VIEW_SLOTS
        set_status(self, status)
        set_alertname(self, alertname)
        set_fingerprint(self, fingerprint)
        set_summary(self, summary)
        set_description(self, description)
        set_labels(self, labels)
        set_annotations(self, annotations)
        set_starts_at(self, starts_at)
        set_ends_at(self, ends_at)
        set_generator_url(self, generator_url)
        set_runbook_url(self, runbook_url)
        set_links(self, links)
        set_logs(self, logs)

    @property
    def extra_labels(self) -> dict[str, str]:
        """Labels other than the ones every header already shows."""
        return {k: v for k, v in sorted(self.labels.items()) if k not in _CONTEXT_LABELS}


_ALERT_VIEW_SLOTS = slot_setters(AlertView)


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One alert a digest stands for, with the labels that tell it apart from the others."""

    alert: AlertView
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class DigestListing:
    """What a digest lists: every alert it stands for, in reading order."""

    entries: Sequence[DigestEntry]
    # Labels every alert of the digest has with the same value (said once, not per line).
    shared_labels: Mapping[str, str]
    # Where every record the digest carried is listed (the router's read API).
    listing_url: str
    # Where the digest went, as its title says it: `in #dev-alerts`, `to sre@example.com`.
    destination: str = ""


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
    # Only a digest sets these: how many notifications were folded into this one, and
    # every alert they carried.
    digest_of: int = 0
    digest: DigestListing | None = None
    # Seconds the incident lasted, once all of it is resolved (see render/text.py).
    resolved_after: float | None = None
    # What a Silence button on this message would create (channels with buttons only).
    silence: SilenceScope | None = None
    # What people did to the group so far (acknowledged, silenced), shown by channels with
    # buttons; None when nothing was done or interactivity is off.
    actions: GroupActions | None = None

    @property
    def alerts(self) -> list[AlertView]:
        return [*self.firing, *self.resolved]

    @property
    def console_url(self) -> str:
        """The notification's console page (where admins acknowledge), if linked."""
        return next((link.url for link in self.links if link.title == TITLE_CONSOLE), "")

    @property
    def status_text(self) -> str:
        """`FIRING:2` or `RESOLVED`, as Alertmanager writes it."""
        return status_text(len(self.firing) if self.status is Status.FIRING else 0)


# A Message's fields read all at once and its slots' setters, in field order, for
# `with_alerts`: every enrichment copies its message, and dataclasses.replace (keywords
# built, fields walked, each set through object.__setattr__) costs three times as much.
_MESSAGE_FIELDS = tuple(f.name for f in fields(Message))
_MESSAGE_VALUES = operator.attrgetter(*_MESSAGE_FIELDS)
_MESSAGE_SLOTS: tuple[Any, ...] = tuple(getattr(Message, name).__set__ for name in _MESSAGE_FIELDS)
_FIRING, _RESOLVED, _NOTES = map(_MESSAGE_FIELDS.index, ("firing", "resolved", "notes"))


def with_alerts(
    message: Message,
    firing: Sequence[AlertView],
    resolved: Sequence[AlertView],
    notes: Sequence[str],
) -> Message:
    """`dataclasses.replace(message, firing=..., resolved=..., notes=...)`, faster."""
    values = list(_MESSAGE_VALUES(message))
    values[_FIRING], values[_RESOLVED], values[_NOTES] = firing, resolved, notes
    copy = object.__new__(Message)
    for set_field, value in zip(_MESSAGE_SLOTS, values, strict=True):
        set_field(copy, value)
    return copy


# The order Argo CD's details are shown in; any others follow by name.
_DETAIL_ORDER = (
    "revision",
    "syncStatus",
    "healthStatus",
    "operationPhase",
    "repoURL",
    "finishedAt",
)


def message_facts(message: Message) -> list[tuple[str, str]]:
    """The facts a chat message shows under its title (Slack fields, Teams facts): status,
    env, severity, alert (trigger for Argo CD), app, namespace, then what Argo CD added;
    empty ones left out."""
    pairs: list[tuple[str, str]] = [
        ("Status", message.status_text),
        ("Env", message.env),
        ("Severity", message.severity),
        ("Alert" if message.source != "argocd" else "Trigger", message.alertname),
        ("App", message.app),
        ("Namespace", message.namespace),
    ]
    details = dict(message.details)
    # `message` is already the alert summary; everything else Argo CD sent is shown.
    details.pop("message", None)
    ordered = [k for k in _DETAIL_ORDER if k in details]
    ordered += sorted(k for k in details if k not in _DETAIL_ORDER)
    pairs += [(k, details[k]) for k in ordered]
    return [(title, value) for title, value in pairs if value]


def top_severity(message: Message) -> str:
    """The most severe severity among the firing alerts (the message's own when unlabelled)."""
    severities = [a.labels.get("severity", "") for a in message.firing]
    severities = [s for s in severities if s] or [
        s.strip() for s in message.severity.split(",") if s.strip()
    ]
    if not severities:
        return ""
    return min(severities, key=severity_rank)


def is_web_url(url: str) -> bool:
    """True for an absolute http(s) URL: the only links we hand to people."""
    # Only the scheme and host decide, and they end before the third "/": judged once per
    # origin, so each alert's own silence link (a distinct URL) costs no parse.
    return _is_web_origin("/".join(url.strip().split("/", 3)[:3]))


@functools.lru_cache(maxsize=4096)
def _is_web_origin(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in _WEB_SCHEMES and bool(parts.netloc)


def alert_links(alert: AlertView) -> list[Link]:
    """An alert's links in the order every channel shows them, http(s) only, each URL once.

    The runbook first (what to do), then the source (Prometheus' graph of the rule), then
    what enrichment found in its own order (Grafana Explore, dashboard, silence, Argo CD).
    """
    links: list[Link] = []
    seen: set[str] = set()
    for link in (
        _own_link(TITLE_RUNBOOK, alert.runbook_url),
        _own_link(TITLE_SOURCE, alert.generator_url),
    ):
        if link is not None and link.url not in seen:
            seen.add(link.url)
            links.append(link)
    for link in alert.links:
        if link.url and link.url not in seen and is_web_url(link.url):
            seen.add(link.url)
            links.append(link)
    return links


# The runbook and source of the alerts of one rule are the same URLs on every alert and
# every channel's message: each judged and made into a Link once.
@functools.lru_cache(maxsize=1024)
def _own_link(title: str, url: str) -> Link | None:
    url = url.strip()
    return Link(title, url) if url and is_web_url(url) else None


def _common_labels(events: Sequence[Event]) -> dict[str, str]:
    if not events:
        return {}
    common = dict(events[0].labels)
    for event in events[1:]:
        labels = event.labels
        common = {key: value for key, value in common.items() if labels.get(key) == value}
    return common


def _alert_view(event: Event) -> AlertView:
    ann = event.annotations
    summary = ann.get("summary") or ann.get("message") or event.details.get("message", "")
    description = ann.get("description", "")
    if description == summary:
        description = ""
    return AlertView(
        event.status,
        event.alertname,
        event.fingerprint,
        summary,
        description,
        dict(event.labels),
        dict(ann),
        event.starts_at,
        event.ends_at,
        event.generator_url,
        ann.get("runbook_url", ""),
    )


def _one_or_many(events: Sequence[Event], common: Mapping[str, str], label: str) -> str:
    # A label every alert has with one value (the group's, usually) needs no set.
    if label in common:
        return common[label]
    values = sorted({e.labels.get(label, "") for e in events} - {""})
    return ", ".join(values)


def build_message(
    notification: Notification,
    reason: str,
    *,
    now: datetime | None = None,
    first_notified: datetime | None = None,
    router_url: str = "",
) -> Message:
    """Turn a notification into the view the templates render.

    `now` (default: when the notification was accepted) ends a resolve that carries no end
    time; `first_notified` (when the receiver first heard of the group) starts one that
    carries no start time; `router_url` (`server.external_url`) adds a link to the
    notification's console page.
    """
    events = list(notification.events)
    firing = [_alert_view(e) for e in events if e.status is Status.FIRING]
    resolved = [_alert_view(e) for e in events if e.status is Status.RESOLVED]
    common = _common_labels(events)
    status = Status.FIRING if firing else Status.RESOLVED
    alertname = _one_or_many(events, common, "alertname")
    env = _one_or_many(events, common, "env")
    severity = _one_or_many(events, common, "severity")
    app = _one_or_many(events, common, "app")
    namespace = _one_or_many(events, common, "namespace")
    # Alertmanager's subject: status, then what the group is, then what the alerts share.
    where = " ".join(v for v in (app or namespace, env, severity) if v)
    title = f"[{status_text(len(firing))}] {alertname or 'alert'}"
    if where:
        title += f" ({where})"
    first = events[0] if events else None
    notes: list[str] = []
    truncated = max((e.truncated_alerts for e in events), default=0)
    if truncated:
        notes.append(f"Alertmanager left out {truncated} more alerts of this group (max_alerts).")
    lasted: float | None = None
    if resolved and not firing:
        lasted = resolved_after(
            (a.starts_at for a in resolved),
            (a.ends_at for a in resolved),
            first_notified=first_notified,
            now=now or notification.created_at,
        )
        if lasted is not None:
            notes.append(f"Resolved after {format_duration(lasted)}.")
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
        links=[console_link(router_url, notification.id)] if router_url else [],
        notes=notes,
        resolved_after=lasted,
    )


# The title of the link from a message to its notification's console page.
TITLE_CONSOLE = "alert-router"


def console_link(router_url: str, notification_id: str) -> Link:
    """The link to a notification's page on the console at `router_url`."""
    return Link(TITLE_CONSOLE, f"{router_url}/ui/notifications/{quote(notification_id, safe='')}")
