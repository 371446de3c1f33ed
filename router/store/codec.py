"""What both stores write and read back: the stored (JSON) form of what they keep."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from router.model import (
    Event,
    Notification,
    NotificationRecord,
    RouteSettings,
    TimelineEntry,
)
from router.schedules.rotations import Override
from router.store.records import synthesized_timeline


def compact_json(value: object) -> str:
    """`value` as compact JSON, the stored form of every structured field: pydantic's
    encoder (Rust), several times faster than json's on the webhook and delivery paths."""
    return to_json(value).decode()


def float_text(value: float) -> str:
    """A float as text that reads back exactly (repr round-trips): how the Redis store
    hands times to Redis and its Lua scripts."""
    return repr(float(value))


def events_json(notifications: Sequence[Notification]) -> list[str]:
    """Each notification's events as a JSON array, the stored form (`Event.to_dict`'s).
    This runs on the webhook path: an event routed to several receivers is read once, and
    each array is one call of the encoder."""
    stored: dict[int, dict[str, Any]] = {}
    out = []
    for n in notifications:
        parts = []
        for event in n.events:
            data = stored.get(id(event))
            if data is None:
                data = stored[id(event)] = event.shared_dict()
            parts.append(data)
        # A mapping that is not a dict (none is today) is encoded as the dict of it.
        out.append(to_json(parts, fallback=dict).decode())
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
    events = notification.events
    first = events[0].labels if events else {}
    return Facets(
        env=first.get("env", ""),
        severity=first.get("severity", ""),
        source=events[0].source if events else "",
        alertname=first.get("alertname", ""),
        text=_label_text(events),
    )


def _label_text(events: Sequence[Event]) -> str:
    # Alerts of a group share most values: each distinct one is lowercased once.
    distinct = dict.fromkeys(itertools.chain.from_iterable([e.labels.values() for e in events]))
    return "\n".join(dict.fromkeys([value.lower() for value in distinct if value]))


def stored_notification(
    nid: str, group_key: str, route: str, events: str, created_at: float, not_before: float
) -> Notification:
    """A notification read back from its stored fields (route and events as JSON)."""
    return Notification(
        id=nid,
        route=RouteSettings.from_dict(json.loads(route)),
        group_key=group_key,
        events=[Event.from_dict(e) for e in json.loads(events)],
        created_at=datetime.fromtimestamp(created_at, UTC),
        not_before=not_before,
    )


def stored_record(nid: str, row: Mapping[str, Any]) -> NotificationRecord:
    """A delivery record read back from its stored fields: an SQLite row or a Redis hash
    (strings; fields added later are missing from older hashes)."""
    route = json.loads(row["route"])
    return NotificationRecord(
        id=nid,
        receiver=row["receiver"],
        group_key=row["group_key"],
        route_path=route.get("path", ""),
        alerts=json.loads(row["events"]),
        state=row["state"],
        reason=row["reason"],
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        delivered_in=row["delivered_in"],
        env=row.get("env", ""),
        severity=row.get("severity", ""),
        source=row.get("source", ""),
        alertname=row.get("alertname", ""),
        not_before=float(row.get("not_before") or 0),
    )


def timeline_json(entry: TimelineEntry) -> str:
    """One timeline entry's stored form."""
    return compact_json(entry.to_dict())


def timeline_texts(entries: Iterable[tuple[str, TimelineEntry]]) -> list[tuple[str, str]]:
    """Each (record id, entry) with the entry's stored form. An entry noted for every
    webhook a claim folded is encoded once: this runs as each delivery ends."""
    encoded: dict[int, str] = {}
    out = []
    for nid, entry in entries:
        text = encoded.get(id(entry))
        if text is None:
            text = encoded[id(entry)] = timeline_json(entry)
        out.append((nid, text))
    return out


def merged_timeline(record: NotificationRecord, stored: Iterable[str]) -> list[TimelineEntry]:
    """A record's whole timeline: the entries it implies, then the stored ones (JSON), by
    time (ties keep that order)."""
    entries = synthesized_timeline(record)
    entries += [TimelineEntry.from_dict(json.loads(line)) for line in stored if line]
    return sorted(entries, key=lambda e: e.at)


def override_json(override: Override) -> str:
    """An on-call override's stored form."""
    return json.dumps(override.to_dict(), separators=(",", ":"))


def stored_override(body: str) -> Override:
    """An on-call override read back from its stored form."""
    return Override.from_dict(json.loads(body))


def in_start_order(overrides: Iterable[Override]) -> list[Override]:
    """Overrides as `list_overrides` gives them: by start, then creation."""
    return sorted(overrides, key=lambda o: (o.start, o.created_at, o.id))
