"""Folding a channel's backlog of notifications into one digest message."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

from router.model import Status
from router.render.message import Message
from router.render.text import status_text

# How many alerts a digest shows in full; the rest are counted.
SHOWN_ALERTS = 10


def _counts(label: str, values: Counter[str]) -> str:
    parts = [f"{name or 'none'}: {n}" for name, n in values.most_common(8)]
    more = len(values) - 8
    return f"{label} — " + ", ".join(parts) + (f", +{more} more" if more > 0 else "")


def build_digest(messages: Sequence[Message]) -> Message:
    """One message standing for many: counts by env/severity/alertname, the first alerts,
    and a line saying how many more the digest stands for."""
    alerts = [a for m in messages for a in m.alerts]
    firing = [a for a in alerts if a.status is Status.FIRING]
    resolved = [a for a in alerts if a.status is Status.RESOLVED]
    by_env: Counter[str] = Counter(a.labels.get("env", "") for a in alerts)
    by_severity: Counter[str] = Counter(a.labels.get("severity", "") for a in alerts)
    by_name: Counter[str] = Counter(a.alertname for a in alerts)
    shown_firing = firing[:SHOWN_ALERTS]
    shown_resolved = resolved[: max(0, SHOWN_ALERTS - len(shown_firing))]
    hidden = len(alerts) - len(shown_firing) - len(shown_resolved)
    notes = [
        f"{len(messages)} notifications arrived faster than this channel may be posted to: "
        f"{len(firing)} firing, {len(resolved)} resolved alerts in {len(by_name)} alert names.",
        _counts("by env", by_env),
        _counts("by severity", by_severity),
        _counts("by alertname", by_name),
    ]
    if hidden:
        notes.append(f"{hidden} more alerts are in this digest but not listed here.")
    status = Status.FIRING if firing else Status.RESOLVED
    first = messages[0]
    severities = sorted(set(by_severity) - {""})
    envs = sorted(set(by_env) - {""})
    return Message(
        notification_id=uuid.uuid4().hex,
        receiver=first.receiver,
        group_key=f"digest/{first.receiver}",
        status=status,
        reason="digest",
        source=first.source if all(m.source == first.source for m in messages) else "mixed",
        env=", ".join(envs),
        severity=", ".join(severities),
        alertname=", ".join(name for name, _ in by_name.most_common(3)),
        app="",
        namespace="",
        title=f"[{status_text(len(firing))}] Digest of {len(messages)} notifications",
        firing=shown_firing,
        resolved=shown_resolved,
        common_labels={},
        route_path=first.route_path,
        notes=notes,
        digest_of=len(messages),
    )
