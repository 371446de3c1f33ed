"""The state store interface: what SQLite and Redis both implement."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.model import DeliveryState, Notification

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


@dataclass(frozen=True, slots=True)
class NflogEntry:
    """What one receiver was last told about one group (Alertmanager's nflog entry)."""

    receiver: str
    group_key: str
    firing: frozenset[str]
    resolved: frozenset[str]
    first_notified_at: float
    last_notified_at: float
    expires_at: float
    # What the channel needs to follow up (Slack channel+ts, email Message-ID).
    channel_state: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "group_key": self.group_key,
            "firing": sorted(self.firing),
            "resolved": sorted(self.resolved),
            "first_notified_at": self.first_notified_at,
            "last_notified_at": self.last_notified_at,
            "expires_at": self.expires_at,
            "channel_state": dict(self.channel_state),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NflogEntry:
        return cls(
            receiver=data["receiver"],
            group_key=data["group_key"],
            firing=frozenset(data["firing"]),
            resolved=frozenset(data["resolved"]),
            first_notified_at=float(data["first_notified_at"]),
            last_notified_at=float(data["last_notified_at"]),
            expires_at=float(data["expires_at"]),
            channel_state=dict(data.get("channel_state") or {}),
        )


@dataclass(frozen=True, slots=True)
class AlertState:
    """The last known state of one alert, kept for inhibition."""

    fingerprint: str
    labels: Mapping[str, str]
    firing: bool
    expires_at: float


@dataclass(frozen=True, slots=True)
class Deploy:
    """An Argo CD sync that reached an app, kept to name the deploy before an alert."""

    app: str
    namespace: str
    revision: str
    at: float
    trigger: str
    argocd_url: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "namespace": self.namespace,
            "revision": self.revision,
            "at": self.at,
            "trigger": self.trigger,
            "argocd_url": self.argocd_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deploy:
        return cls(
            app=data["app"],
            namespace=data["namespace"],
            revision=data["revision"],
            at=float(data["at"]),
            trigger=data["trigger"],
            argocd_url=data.get("argocd_url", ""),
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """Pending notifications of one (receiver, group), taken by one worker under a lease.

    Several webhooks for the same group can be waiting at once (HA pairs, storms); they
    are delivered together, so a group is never notified twice for one change.
    """

    receiver: str
    group_key: str
    notifications: Sequence[Notification]
    attempts: int
    token: str

    @property
    def ids(self) -> list[str]:
        return [n.id for n in self.notifications]

    @property
    def latest(self) -> Notification:
        return self.notifications[-1]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a claim ended, written atomically with the notification log update."""

    state: DeliveryState
    reason: str
    error: str = ""
    nflog: NflogEntry | None = None
    # Set when this outcome's message also carried other claims (a digest).
    delivered_in: str = ""


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One row of `GET /api/v1/notifications`."""

    id: str
    receiver: str
    group_key: str
    route_path: str
    alerts: Sequence[Mapping[str, Any]]
    state: str
    reason: str
    attempts: int
    last_error: str
    created_at: float
    updated_at: float
    delivered_in: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "receiver": self.receiver,
            "group_key": self.group_key,
            "route_path": self.route_path,
            "alerts": list(self.alerts),
            "state": self.state,
            "reason": self.reason,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "delivered_in": self.delivered_in,
        }


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
