"""What both stores share about delivery records: the timeline entries a record implies."""

from __future__ import annotations

from datetime import UTC, datetime

from router.model import ROOT_PATH, NotificationRecord, TimelineEntry, format_time

# How many alert names the `received` line spells out before it says "and N more".
_NAMES_SHOWN = 3


def synthesized_timeline(record: NotificationRecord) -> list[TimelineEntry]:
    """The first entries of every timeline, read off the record itself so that recording a
    webhook writes nothing more: received (with its source), routed (the route path) and,
    for a notification on hold, held until when."""
    names = list(
        dict.fromkeys(str(a.get("labels", {}).get("alertname", "")) for a in record.alerts)
    )
    shown = ", ".join(n for n in names[:_NAMES_SHOWN] if n) or "no alertname"
    if len(names) > _NAMES_SHOWN:
        shown += f" and {len(names) - _NAMES_SHOWN} more"
    count = len(record.alerts)
    source = record.source or "unknown source"
    entries = [
        TimelineEntry(
            record.created_at,
            "received",
            f"received from {source}: {count} alert{'s' if count != 1 else ''} ({shown})",
            {"source": record.source, "alerts": str(count)},
        ),
        TimelineEntry(
            record.created_at,
            "routed",
            f"routed to {record.receiver} by {_route_words(record.route_path)}",
            {"receiver": record.receiver, "route": record.route_path},
        ),
    ]
    if record.not_before > 0:
        until = format_time(datetime.fromtimestamp(record.not_before, UTC)) or ""
        entries.append(
            TimelineEntry(
                record.created_at,
                "held",
                f"held until {until}: a problem that clears up by then is told to nobody",
                {"until": until},
            )
        )
    return entries


def _route_words(path: str) -> str:
    # "by the root route", "by route routes[1] env="prod"".
    if not path or path == ROOT_PATH:
        return "the root route"
    return f"route {path}"
