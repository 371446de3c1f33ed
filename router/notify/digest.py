"""Folding a destination's backlog of notifications into one digest message.

A digest never hides an alert: its message carries every alert of every notification it
folds, each with the labels that tell it apart from the others (the labels every alert
shares are said once), in reading order (firing before resolved, the most severe first).
Channels show the counts on top and list the alerts below it: Slack in the thread (up to
MAX_DIGEST_LISTED alerts, then a link to the full list), email in the one mail.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

from router.model import Status
from router.render.message import AlertView, DigestEntry, DigestListing, Message
from router.render.text import plural, severity_rank

# Labels never worth a place on a digest line: the name leads the line, the source is
# the same for a whole storm.
_NOT_TELLING = frozenset({"alertname", "source"})


def _counts(label: str, values: Counter[str]) -> str:
    parts = [f"{name or 'none'}: {n}" for name, n in values.most_common(8)]
    more = len(values) - 8
    return f"{label} — " + ", ".join(parts) + (f", +{more} more" if more > 0 else "")


def digest_title(firing: int, resolved: int, destination: str = "") -> str:
    """`Digest: 19 alerts firing in #dev-alerts` (or `..., 3 resolved`, `4 alerts resolved`)."""
    if firing and resolved:
        counts = f"{plural(firing, 'alert')} firing, {resolved} resolved"
    elif firing:
        counts = f"{plural(firing, 'alert')} firing"
    else:
        counts = f"{plural(resolved, 'alert')} resolved"
    return f"Digest: {counts} {destination}".rstrip()


def listing_url(router_url: str, digest_id: str) -> str:
    """Where people see every alert a digest stands for: its console page, or without
    `server.external_url` the read API's path (there is no base to link to)."""
    if router_url:
        return f"{router_url}/ui/digests/{digest_id}"
    return f"/api/v1/notifications?digest={digest_id}&limit=1000"


def _shared(alerts: Sequence[AlertView]) -> dict[str, str]:
    if not alerts:
        return {}
    shared = dict(alerts[0].labels)
    for alert in alerts[1:]:
        for key in [k for k, v in shared.items() if alert.labels.get(k) != v]:
            del shared[key]
        if not shared:
            break
    return shared


def _entry(alert: AlertView, shared: Mapping[str, str]) -> DigestEntry:
    labels = {
        k: v
        for k, v in sorted(alert.labels.items())
        if k not in _NOT_TELLING and shared.get(k) != v
    }
    return DigestEntry(alert=alert, labels=labels)


def _order(entry: DigestEntry) -> tuple[int, int, str, list[tuple[str, str]]]:
    alert = entry.alert
    return (
        0 if alert.status is Status.FIRING else 1,
        severity_rank(alert.labels.get("severity", "")),
        alert.alertname,
        sorted(entry.labels.items()),
    )


def _unique(messages: Sequence[Message]) -> list[AlertView]:
    """Every alert once: two receivers posting to one channel fold the same alert twice."""
    seen: set[tuple[str, str, frozenset[tuple[str, str]]]] = set()
    alerts: list[AlertView] = []
    for message in messages:
        for alert in message.alerts:
            key = (alert.fingerprint, alert.status.value, frozenset(alert.labels.items()))
            if key not in seen:
                seen.add(key)
                alerts.append(alert)
    return alerts


def build_digest(
    messages: Sequence[Message], *, destination: str = "", router_url: str = ""
) -> Message:
    """One message standing for many: counts by env/severity/alertname, and every alert.

    `destination` ends the title (`in #dev-alerts`); `router_url` (`server.external_url`)
    is where the link to the full list points.
    """
    alerts = _unique(messages)
    shared = {k: v for k, v in _shared(alerts).items() if k not in _NOT_TELLING}
    entries = sorted((_entry(a, shared) for a in alerts), key=_order)
    firing = [e.alert for e in entries if e.alert.status is Status.FIRING]
    resolved = [e.alert for e in entries if e.alert.status is Status.RESOLVED]
    by_env: Counter[str] = Counter(a.labels.get("env", "") for a in alerts)
    by_severity: Counter[str] = Counter(a.labels.get("severity", "") for a in alerts)
    by_name: Counter[str] = Counter(a.alertname for a in alerts)
    notes = [
        f"{plural(len(messages), 'notification')} arrived faster than they may be sent here: "
        f"{len(firing)} firing, {len(resolved)} resolved alerts "
        f"in {plural(len(by_name), 'alert name')}.",
        _counts("by env", by_env),
        _counts("by severity", by_severity),
        _counts("by alertname", by_name),
    ]
    status = Status.FIRING if firing else Status.RESOLVED
    first = messages[0]
    digest_id = uuid.uuid4().hex
    return Message(
        notification_id=digest_id,
        receiver=first.receiver,
        group_key=f"digest/{first.receiver}",
        status=status,
        reason="digest",
        source=first.source if all(m.source == first.source for m in messages) else "mixed",
        env=", ".join(sorted(set(by_env) - {""})),
        severity=", ".join(sorted(set(by_severity) - {""}, key=severity_rank)),
        alertname=", ".join(name for name, _ in by_name.most_common(3)),
        app="",
        namespace="",
        title=digest_title(len(firing), len(resolved), destination),
        firing=firing,
        resolved=resolved,
        common_labels=shared,
        route_path=first.route_path,
        notes=notes,
        digest_of=len(messages),
        digest=DigestListing(
            entries=entries,
            shared_labels=shared,
            listing_url=listing_url(router_url, digest_id),
            destination=destination,
        ),
    )
