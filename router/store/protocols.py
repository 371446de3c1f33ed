"""The state store interface: what SQLite and Redis both implement."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from router.model import (
    AlertState,
    Claim,
    Deploy,
    NflogEntry,
    Notification,
    NotificationRecord,
    Outcome,
)

# Deploys are kept this long by every store; correlation windows are minutes to hours.
DEPLOY_TTL = 7 * 86400.0


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
                text = encoded[id(event)] = json.dumps(event.to_dict(), separators=(",", ":"))
            parts.append(text)
        out.append("[" + ",".join(parts) + "]")
    return out


class StoreUnavailable(Exception):
    """The store cannot answer or record right now; webhooks get 503, readiness fails."""


class Store(Protocol):
    """Durable inbox/outbox, notification log and delivery records."""

    async def open(self) -> None:
        """Connect and create the schema; raises StoreUnavailable."""
        ...

    async def close(self) -> None:
        """Flush and disconnect."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers now."""
        ...

    async def record(
        self,
        notifications: Sequence[Notification],
        *,
        alerts: Sequence[AlertState] = (),
        deploys: Sequence[Deploy] = (),
    ) -> None:
        """Durably record accepted notifications as pending, with the alert states and
        deploys the same webhook brought, in one transaction; only then may it get 200."""
        ...

    async def firing_alerts(self, now: float) -> list[Mapping[str, str]]:
        """Label sets of the alerts last seen firing and not yet expired."""
        ...

    async def recent_deploys(
        self, since: float, until: float, *, app: str = "", namespace: str = ""
    ) -> list[Deploy]:
        """Deploys in [since, until] of `app` or of `namespace` (either matching), newest
        first."""
        ...

    async def claim(self, now: float, limit: int, lease: float) -> list[Claim]:
        """Take up to `limit` due groups whose notifications no other worker holds."""
        ...

    async def release(self, claim: Claim, next_attempt_at: float, error: str, now: float) -> None:
        """Give a claim back for a later attempt (a transient failure), counting the attempt."""
        ...

    async def complete(self, claim: Claim, outcome: Outcome, now: float) -> None:
        """Finish a claim: final state, reason and the notification log entry, atomically."""
        ...

    async def nflog_get(self, receiver: str, group_key: str, now: float) -> NflogEntry | None:
        """The live notification log entry for (receiver, group), if any."""
        ...

    async def pending_count(self) -> int:
        """How many notifications wait for delivery (the outbox depth)."""
        ...

    async def next_due(self) -> float | None:
        """The earliest time a pending notification becomes due, if any."""
        ...

    async def list_notifications(
        self, limit: int, receiver: str | None = None, group_key: str | None = None
    ) -> list[NotificationRecord]:
        """Recent notification records, newest first."""
        ...

    async def expire(self, now: float, keep_records: float) -> int:
        """Drop expired log entries, alert states and deploys, and finished records older
        than `keep_records` seconds; returns how many rows went."""
        ...
