"""The JSON form of a notification: the webhook body and the log line share it.

Schema version "1". Field names follow Alertmanager's webhook payload where they mean the
same thing (`receiver`, `status`, `groupKey`, `commonLabels`, `commonAnnotations`,
`externalURL`, and per alert `status`, `labels`, `annotations`, `startsAt`, `endsAt`,
`generatorURL`, `fingerprint`), so a consumer written for Alertmanager reads most of it.

    {
      "version": "1",
      "notificationId": "…",          # stable across retries: use it to deduplicate
      "receiver": "…",
      "status": "firing" | "resolved", # firing while any alert fires
      "reason": "first" | "new_alerts" | "resolved" | "repeat" | "digest",  # why now
      "groupKey": "…",
      "source": "alertmanager" | "argocd",
      "title": "[FIRING:2] HighErrorRate (backend prod critical)",
      "env": "…", "severity": "…",
      "alertname": "…",                # the Argo CD trigger for Argo CD events
      "app": "…", "namespace": "…",
      "routePath": "routes[1] env=\"prod\"",  # the matched route; "root route" for the root
      "externalURL": "…",
      "digestOf": 0,                   # > 0: this notification folds that many others
      "counts": {"firing": 2, "resolved": 1},
      "commonLabels": {…}, "commonAnnotations": {…},
      "details": {…},                  # what the source said beyond labels (Argo CD revision…)
      "links": [{"title": "…", "url": "…"}],
      "notes": ["…"],
      "alerts": [{
        "status": "firing" | "resolved",
        "alertname": "…", "fingerprint": "…",
        "summary": "…", "description": "…",
        "labels": {…}, "annotations": {…},
        "startsAt": "RFC 3339" | null,
        "endsAt": "RFC 3339" | null,   # null while firing (Alertmanager sends Go's zero time)
        "generatorURL": "…", "runbookURL": "…",
        "links": [{"title": "…", "url": "…"}],  # runbook, source, then enrichment's
        "logs": {"query": "…", "lines": ["…"], "note": "…"} | null
      }]
    }

Every key is always present; strings are empty rather than missing. Additions keep version
"1"; a removal or change of meaning bumps it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router.identity import as_sent
from router.model import Status, format_time_often
from router.render.message import AlertView, Link, LogExcerpt, Message, alert_links

SCHEMA_VERSION = "1"


def _links(links: Sequence[Link]) -> list[dict[str, str]]:
    return [{"title": link.title, "url": link.url} for link in links]


def _logs(logs: LogExcerpt | None) -> dict[str, Any] | None:
    if logs is None:
        return None
    return {"query": logs.query, "lines": list(logs.lines), "note": logs.note}


# Plain strings, not the enum: enum `.value` is a descriptor call, per alert.
_STATUS = {status: status.value for status in Status}


def _alert(alert: AlertView) -> dict[str, Any]:
    return {
        "status": _STATUS[alert.status],
        "alertname": alert.alertname,
        "fingerprint": as_sent(alert.fingerprint),
        "summary": alert.summary,
        "description": alert.description,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time_often(alert.starts_at),
        "endsAt": format_time_often(alert.ends_at),
        "generatorURL": alert.generator_url,
        "runbookURL": alert.runbook_url,
        "links": _links(alert_links(alert)),
        "logs": _logs(alert.logs),
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def notification_payload(message: Message) -> dict[str, Any]:
    """The version-1 JSON object (see the module docstring) describing `message`."""
    alerts = message.alerts
    return {
        "version": SCHEMA_VERSION,
        "notificationId": message.notification_id,
        "receiver": message.receiver,
        "status": message.status.value,
        "reason": message.reason,
        "groupKey": message.group_key,
        "source": message.source,
        "title": message.title,
        "env": message.env,
        "severity": message.severity,
        "alertname": message.alertname,
        "app": message.app,
        "namespace": message.namespace,
        "routePath": message.route_path,
        "externalURL": message.external_url,
        "digestOf": message.digest_of,
        "counts": {"firing": len(message.firing), "resolved": len(message.resolved)},
        "commonLabels": dict(message.common_labels),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "details": dict(message.details),
        "links": _links(message.links),
        "notes": list(message.notes),
        "alerts": [_alert(a) for a in alerts],
    }
