"""PagerDuty delivery through the Events API v2: one PagerDuty alert per (receiver, group).

Every event of a group carries the same `dedup_key` (SHA-256 of receiver and group key), so
the first trigger opens an alert, later triggers (new alerts, reminders) add to it, an
Acknowledge from Slack acknowledges it (`acknowledge`, see router/interact/pagers.py) and
the resolve closes it.

- firing: `trigger` with `payload.summary` (title and first summary, at most 1024
  characters), `severity` (the receiver's, else mapped from the alerts': critical, error,
  warning, info), `source` (the alerts' instance, host, pod, service or job; else the app
  or namespace), `component`/`group`/`class` from labels, `custom_details` with every
  alert's labels, annotations and Loki lines, and `links` (console, runbook, source,
  Grafana...).
- resolved: `resolve`.

Answers: 2xx delivered; 400 is a bad event, never retried (the error names PagerDuty's
message and errors); 429 retried after Retry-After or a minute (PagerDuty throttles per
integration key); 5xx and transport failures retried; other 4xx permanent. The routing
key is a secret: it is scrubbed from every error text and never logged.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any

import aiohttp

from router.channels.http import USER_AGENT, Answer, JsonPoster, status_error
from router.config.schema import PagerDutyReceiver
from router.model import Status
from router.render.message import (
    TITLE_CONSOLE,
    AlertView,
    Link,
    Message,
    alert_links,
    top_severity,
)
from router.render.templates import oneline
from router.secrets import url_secrets

MAX_SUMMARY = 1024
# PagerDuty takes 512 KB per event; the details are cut well below that.
MAX_DETAILED_ALERTS = 50
MAX_LINKS = 20
MAX_VALUE_CHARS = 2000
# PagerDuty asks for minutes between retries of a throttled key when it says nothing.
RATE_LIMIT_WAIT = 60.0

# Our severities (and common spellings) to PagerDuty's four; anything else is a warning,
# as everywhere in the router an unknown severity ranks with warning.
_SEVERITIES = {
    "critical": "critical",
    "page": "critical",
    "fatal": "critical",
    "emergency": "critical",
    "error": "error",
    "high": "error",
    "major": "error",
    "warning": "warning",
    "warn": "warning",
    "minor": "warning",
    "info": "info",
    "informational": "info",
    "low": "info",
    "none": "info",
}
# Labels that name what is broken, in order of preference, per PagerDuty field.
_SOURCE_LABELS = ("instance", "host", "hostname", "pod", "service", "job")
_COMPONENT_LABELS = ("component", "service", "app", "job")
_GROUP_LABELS = ("group", "namespace", "team", "cluster")
_CLASS_LABELS = ("class", "alertname")

STATE_KEY = "dedup_key"
STATE_STATUS = "status"


def pagerduty_severity(ours: str) -> str:
    """PagerDuty's severity for one of ours (`critical`, `warning`, ...)."""
    return _SEVERITIES.get(ours.strip().lower(), "warning")


def dedup_key(receiver: str, group_key: str) -> str:
    """The one key every event of a (receiver, group) carries: 64 hex characters."""
    return hashlib.sha256(f"{receiver}\n{group_key}".encode()).hexdigest()


def _first_label(labels: Mapping[str, str], names: Sequence[str]) -> str:
    return next((labels[n] for n in names if labels.get(n)), "")


def _cut(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _alert_details(alert: AlertView) -> dict[str, Any]:
    details: dict[str, Any] = {
        "status": alert.status.value,
        "labels": {k: _cut(v) for k, v in sorted(alert.labels.items())},
        "annotations": {k: _cut(v) for k, v in sorted(alert.annotations.items())},
    }
    if alert.starts_at is not None:
        details["starts_at"] = alert.starts_at.astimezone(UTC).isoformat()
    if alert.logs is not None:
        if alert.logs.lines:
            details["logs"] = [_cut(line, 500) for line in alert.logs.lines]
        if alert.logs.note:
            details["logs_note"] = alert.logs.note
    return details


def _links(message: Message) -> list[dict[str, str]]:
    """Console first, then each alert's runbook, source and enrichment links, once each."""
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    candidates: list[Link] = [*message.links]
    for alert in message.alerts:
        candidates += alert_links(alert)
    for link in candidates:
        if link.url in seen:
            continue
        seen.add(link.url)
        out.append({"href": link.url, "text": link.title})
    return out[:MAX_LINKS]


def trigger_payload(message: Message, severity: str | None = None) -> dict[str, Any]:
    """The `payload` of a trigger event for `message`."""
    common = message.common_labels
    first = next((a for a in message.firing if a.summary), None)
    summary = " ".join(message.title.split()) or message.status_text
    if first is not None:
        summary += ": " + oneline(first.summary)
    source = (
        _first_label(common, _SOURCE_LABELS)
        or message.app
        or message.namespace
        or message.source
        or "alert-router"
    )
    payload: dict[str, Any] = {
        "summary": oneline(summary, MAX_SUMMARY),
        "source": oneline(source, 255),
        "severity": severity or pagerduty_severity(top_severity(message)),
    }
    starts = [a.starts_at for a in message.firing if a.starts_at is not None]
    if starts:
        payload["timestamp"] = min(starts).astimezone(UTC).isoformat()
    for field, names in (
        ("component", _COMPONENT_LABELS),
        ("group", _GROUP_LABELS),
        ("class", _CLASS_LABELS),
    ):
        value = _first_label(common, names)
        if value:
            payload[field] = oneline(value, 255)
    alerts = message.alerts
    details: dict[str, Any] = {
        "firing": len(message.firing),
        "resolved": len(message.resolved),
        "env": message.env,
        "receiver": message.receiver,
        "route": message.route_path,
        "notification_id": message.notification_id,
        "alerts": [_alert_details(a) for a in alerts[:MAX_DETAILED_ALERTS]],
    }
    if len(alerts) > MAX_DETAILED_ALERTS:
        details["alerts_left_out"] = len(alerts) - MAX_DETAILED_ALERTS
    if message.notes:
        details["notes"] = list(message.notes)
    payload["custom_details"] = details
    return payload


def _error_detail(answer: Answer) -> str:
    """PagerDuty's own words from an error body (`message: error; error`), else its text."""
    try:
        data = json.loads(answer.body)
    except ValueError:
        return answer.excerpt()
    if not isinstance(data, dict):
        return answer.excerpt()
    words = [str(data.get("message") or data.get("status") or "")]
    errors = data.get("errors")
    if isinstance(errors, list):
        words += [str(e) for e in errors]
    return oneline("; ".join(w for w in words if w), 500)


class PagerDutyChannel:
    """Sends a group's notifications to one PagerDuty service as events of one alert."""

    integration = "pagerduty"

    def __init__(
        self,
        name: str,
        cfg: PagerDutyReceiver,
        *,
        http: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self._clock = clock
        self._routing_key = cfg.routing_key.get_secret_value()
        self._poster = JsonPoster(
            cfg.url,
            http=http,
            timeout=cfg.timeout,
            secrets=[self._routing_key, *url_secrets(cfg.url)],
        )

    def event(self, message: Message) -> dict[str, Any]:
        """The event `send` posts for `message` (routing key included)."""
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "dedup_key": dedup_key(self.name, message.group_key),
            "client": "alert-router",
        }
        if message.status is Status.FIRING:
            event["event_action"] = "trigger"
            event["payload"] = trigger_payload(message, self.cfg.severity)
            links = _links(message)
            if links:
                event["links"] = links
            console = next((k.url for k in message.links if k.title == TITLE_CONSOLE), "")
            if console:
                event["client_url"] = console
        else:
            event["event_action"] = "resolve"
        return event

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """Trigger or resolve the group's PagerDuty alert; returns its `dedup_key` and what
        it was told last (`status`). Raises DeliveryError."""
        event = self.event(message)
        await self._post(event)
        return {STATE_KEY: event["dedup_key"], STATE_STATUS: message.status.value}

    async def acknowledge(self, prior: Mapping[str, str]) -> bool:
        """Acknowledge the alert `prior` (what `send` returned) names, if it was last told
        firing; whether an event was sent. Raises DeliveryError."""
        key = prior.get(STATE_KEY)
        if not key or prior.get(STATE_STATUS) != Status.FIRING.value:
            return False
        await self._post(
            {"routing_key": self._routing_key, "dedup_key": key, "event_action": "acknowledge"}
        )
        return True

    async def _post(self, event: Mapping[str, Any]) -> None:
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        answer = await self._poster.post(body, headers)
        if answer.ok:
            return
        where = f"PagerDuty {self._poster.origin} (receiver {self.name})"
        # A 400 (a bad event stays bad) is permanent, with PagerDuty's reasons in the record.
        raise status_error(
            answer,
            where,
            self._clock(),
            detail=_error_detail(answer),
            rate_limit_wait=RATE_LIMIT_WAIT,
        )

    async def close(self) -> None:
        """Nothing to release: its connections belong to the shared HTTP pool."""
