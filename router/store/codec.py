"""What both stores write and read back: the stored (JSON) form of what they keep."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic_core import to_json

from router.model import Notification


def compact_json(value: object) -> str:
    """`value` as compact JSON, the stored form of every structured field: pydantic's
    encoder (Rust), several times faster than json's on the webhook and delivery paths."""
    return to_json(value).decode()


def events_json(notifications: Sequence[Notification]) -> list[str]:
    """Each notification's events as a JSON array, the stored form. An event routed to
    several receivers is encoded once: this runs on the webhook path."""
    encoded: dict[int, str] = {}
    out = []
    for n in notifications:
        parts = []
        for event in n.events:
            text = encoded.get(id(event))
            if text is None:
                text = encoded[id(event)] = compact_json(event.to_dict())
            parts.append(text)
        out.append("[" + ",".join(parts) + "]")
    return out


@dataclass(frozen=True, slots=True)
class Facets:
    """What the record queries filter on, taken from a notification when it is recorded:
    its first alert's env, severity, source and alertname, and `text`, every distinct
    label value of every alert, lowercased, one per line (the free-text search's haystack)."""

    env: str
    severity: str
    source: str
    alertname: str
    text: str


def facets(notification: Notification) -> Facets:
    """The facets of one notification (see Facets)."""
    first = notification.events[0].labels if notification.events else {}
    values: dict[str, None] = {}
    for event in notification.events:
        for value in event.labels.values():
            if value:
                values[value.lower()] = None
    return Facets(
        env=first.get("env", ""),
        severity=first.get("severity", ""),
        source=notification.events[0].source if notification.events else "",
        alertname=first.get("alertname", ""),
        text="\n".join(values),
    )
