"""Route normalized events into notifications, one per (receiver, group)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from datetime import datetime

from router.model import Event, Notification, RouteSettings
from router.routing.tree import RouteTree

# Ids are a random per-process prefix and a counter: unique across processes and restarts,
# and far cheaper than a uuid4 per notification on the webhook path.
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count()


def new_id() -> str:
    """A fresh notification id (32 hex characters)."""
    return f"{_PREFIX}{next(_COUNTER):020x}"


def plan_notifications(
    events: Sequence[Event], tree: RouteTree, now: datetime
) -> list[Notification]:
    """Each event goes to every receiver its labels route to, grouped by the source group."""
    groups: dict[tuple[str, str], tuple[RouteSettings, list[Event]]] = {}
    for event in events:
        for route in tree.match(event.labels):
            key = (route.receiver, event.group_key)
            if key not in groups:
                groups[key] = (route, [])
            groups[key][1].append(event)
    return [
        Notification(
            id=new_id(),
            route=route,
            group_key=group_key,
            events=grouped,
            created_at=now,
        )
        for (_, group_key), (route, grouped) in groups.items()
    ]
