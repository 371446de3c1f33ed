"""The state store's interface, one narrow protocol per job; `Store` is all of them.

Consumers take the narrowest protocol they need: dedup the notification log, inhibition
the alert states, deploy correlation the deploy history, the read API the delivery records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from router.model import (
    Action,
    ActionClaim,
    AlertState,
    Claim,
    Deploy,
    GroupActions,
    NflogEntry,
    Notification,
    NotificationRecord,
    Outcome,
    TimelineEntry,
)
from router.schedules.rotations import Override
from router.store.beats import HeartbeatLog
from router.store.rollup import Key, RollupRead

# Deploys are kept this long by every store; correlation windows are minutes to hours.
DEPLOY_TTL = 7 * 86400.0
# The defaults of `state.lease`, `state.lease_renew` and `state.keep_records`. A live
# holder renews its claims every `lease_renew`, so the lease only has to outlast a few
# missed renewals, and a dead holder's work is taken over about one lease after it died.
DEFAULT_LEASE = 15.0
DEFAULT_LEASE_RENEW = 5.0
DEFAULT_KEEP_RECORDS = 7 * 86400.0
# How long a role (`Housekeeping.lead`) is held without being asked for again; its holder
# asks at least every minute (the worker's maintenance), so it outlives a missed round.
ROLE_TERM = 120.0


def encode_cursor(seq: int) -> str:
    """The opaque cursor after the record numbered `seq` (both stores number records)."""
    return f"s{seq}"


def decode_cursor(cursor: str | None) -> int | None:
    """The record number a cursor points after; ValueError when it is not a cursor."""
    if cursor is None or cursor == "":
        return None
    if not cursor.startswith("s") or not cursor[1:].isdigit() or len(cursor) > 24:
        raise ValueError("cursor: not a cursor this service gave out")
    return int(cursor[1:])


class StoreUnavailable(Exception):
    """The store cannot answer or record right now; webhooks get 503, readiness fails."""


class Outbox(Protocol):
    """Accepted work waiting for delivery, and the leases workers hold on it.

    A claim holds its group for the store's lease (`state.lease`) and its holder renews it
    while it works; when the lease runs out another worker may take the group over, and
    the older claim's renewal, release or completion then changes nothing."""

    async def record(
        self,
        notifications: Sequence[Notification],
        *,
        alerts: Sequence[AlertState] = (),
        deploys: Sequence[Deploy] = (),
    ) -> None:
        """Durably record accepted notifications as pending, with the alert states and
        deploys the same webhook brought, in one transaction; only then may it get 200.
        Recording a notification id again changes nothing. A notification is due at once,
        or at its `not_before` when held; a group is due as soon as any of its
        notifications is. A firing alert state replaces the alert's previous one; one that
        is not firing deletes it."""
        ...

    async def claim(self, now: float, limit: int) -> list[Claim]:
        """Take up to `limit` due groups whose notifications no other worker holds."""
        ...

    async def renew(self, claims: Sequence[Claim], now: float) -> set[str]:
        """Extend the lease of each claim still held to `now` plus the lease; the tokens of
        those renewed. A claim left out was taken over (or finished): its holder must stop."""
        ...

    async def release(
        self,
        claim: Claim,
        next_attempt_at: float,
        error: str,
        now: float,
        *,
        attempted: bool = True,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        """Give a claim back until `next_attempt_at`: a transient failure (an attempt is
        counted and `error` kept) or, with `attempted` false, a claim taken before its
        notifications' hold ended. Notifications recorded meanwhile are due by their own
        holds. `timeline` entries are added in the same write (only while the claim holds)."""
        ...

    async def complete(
        self,
        claim: Claim,
        outcome: Outcome,
        now: float,
        *,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        """Finish a claim: final state, reason and the notification log entry, atomically,
        with `timeline` entries in the same write. Every notification of the claim but the
        newest points at the newest (`delivered_in`), unless the outcome names the record
        that carried them."""
        ...

    async def pending_count(self) -> int:
        """How many notifications wait for delivery (the outbox depth, store-wide)."""
        ...

    async def next_due(self) -> float | None:
        """The earliest time a pending notification becomes due (0 for now), if any."""
        ...


class NotificationLog(Protocol):
    """What each receiver was last told about each group (written by `complete`)."""

    async def nflog_get(self, receiver: str, group_key: str, now: float) -> NflogEntry | None:
        """The live notification log entry for (receiver, group), if any."""
        ...

    async def firing_groups(self, now: float, limit: int) -> list[NflogEntry]:
        """Live entries whose receiver was last told of firing alerts, most recently
        notified first, at most `limit` (what the console shows as firing without
        alert states)."""
        ...


class AlertStates(Protocol):
    """The alerts firing now, as inhibition needs them (written by `record`)."""

    async def firing_alerts(self, now: float) -> list[Mapping[str, str]]:
        """Label sets of the alerts last seen firing and not yet expired."""
        ...

    async def alerts_generation(self) -> int:
        """A number that changes whenever a record changes which alerts fire (one cheap
        read), so a cached firing set is known current without reading it again."""
        ...


class DeployHistory(Protocol):
    """Argo CD deploys, kept for DEPLOY_TTL (written by `record`)."""

    async def recent_deploys(
        self, since: float, until: float, *, app: str = "", namespace: str = ""
    ) -> list[Deploy]:
        """Deploys in [since, until] of `app` or of `namespace` (either matching), newest
        first, at most 20."""
        ...


class DeliveryRecords(Protocol):
    """One record per accepted notification, kept `state.keep_records` after it ends."""

    async def list_notifications(
        self,
        limit: int,
        receiver: str | None = None,
        group_key: str | None = None,
        *,
        delivered_in: str | None = None,
    ) -> list[NotificationRecord]:
        """Recent notification records, newest first; `delivered_in` keeps those another
        record or a digest carried."""
        ...


# A shorter text matches nearly everything and costs a scan of every record.
MIN_TEXT = 3


def text_query_problem(text: str | None) -> str | None:
    """Why `q` cannot be searched for, or None (the API and the console say the same)."""
    if text is not None and len(text) < MIN_TEXT:
        return f"q must be at least {MIN_TEXT} characters"
    return None


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """The filters of the console's list and of `GET /api/v1/notifications`; None is any.

    `text` is a case-insensitive substring of the alertname or of any label value."""

    receiver: str | None = None
    env: str | None = None
    severity: str | None = None
    source: str | None = None
    state: str | None = None
    reason: str | None = None
    text: str | None = None
    group_key: str | None = None
    delivered_in: str | None = None


@dataclass(frozen=True, slots=True)
class RecordPage:
    """One page of records, newest first; `next_cursor` (opaque) asks for the older ones."""

    records: Sequence[NotificationRecord]
    next_cursor: str | None = None


class RecordQueries(Protocol):
    """What the console and the read API ask of the delivery records: filtered pages that
    stay fast over a million records (indexed, no full scans), one record, its timeline,
    counts, and the admin's retry."""

    async def query_notifications(
        self, query: RecordQuery, limit: int, cursor: str | None = None
    ) -> RecordPage:
        """Records matching `query`, newest first, at most `limit`, older than `cursor`
        (ValueError if it is not one this store gave). A page may be short while
        `next_cursor` is set: a store may bound how many records one call examines."""
        ...

    async def get_notification(self, notification_id: str) -> NotificationRecord | None:
        """One record by id, if it is kept."""
        ...

    async def timeline(self, notification_id: str) -> list[TimelineEntry]:
        """Every decision recorded about one notification, oldest first."""
        ...

    async def add_timeline(self, entries: Sequence[tuple[str, TimelineEntry]]) -> None:
        """Append (notification id, entry) pairs; kept and expired with their record."""
        ...

    async def count_states(self, since: float) -> Mapping[tuple[str, str], int]:
        """How many records created since `since` are in each (state, reason)."""
        ...

    async def retry_now(self, notification_id: str, now: float) -> bool:
        """Make a failed or dead notification pending and due now (attempts reset); False
        when there is no such record or it is not failed or dead."""
        ...


class Housekeeping(Protocol):
    """Connecting, health, expiry, and which replica does the once-per-deployment chores."""

    async def open(self) -> None:
        """Connect and create the schema; raises StoreUnavailable."""
        ...

    async def close(self) -> None:
        """Flush and disconnect."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers now."""
        ...

    async def expire(self, now: float) -> int:
        """Drop expired log entries and alert states, deploys older than DEPLOY_TTL and
        finished records older than `state.keep_records`; returns how many went."""
        ...

    async def lead(self, purpose: str, term: float = ROLE_TERM) -> bool:
        """Whether this process is, for the next `term` (default ROLE_TERM), the one that
        does `purpose` for every process sharing the store; the holder renews it by asking
        again."""
        ...


class ChannelBudget(Protocol):
    """Post slots per destination (a Slack channel), shared by every process on the store:
    however many replicas post to one channel, slots are `interval` apart."""

    async def reserve_slot(self, key: str, interval: float, now: float) -> float:
        """Reserve the next free slot for `key` and return when it starts (never before
        `now`); the slot after it starts `interval` later."""
        ...

    async def hold_slots(self, key: str, until: float) -> None:
        """No slot for `key` starts before `until` (a destination's Retry-After)."""
        ...


# A claimed action is held this long; carrying one out takes seconds (an Alertmanager
# call and a Slack edit, each with its own timeout), so a dead holder's is retaken soon.
ACTION_LEASE = 30.0
# A finished action's id is kept this long, so a replayed click is known and ignored.
ACTION_KEEP = 86400.0
# What was done to a group is kept this long after its last change.
GROUP_ACTIONS_TTL = 30 * 86400.0


class ActionQueue(Protocol):
    """Clicks waiting to be carried out, claimed under a lease like the outbox, and what
    they did to each group (compare-and-set, so replicas never both act on one group)."""

    async def enqueue_action(self, action: Action) -> bool:
        """Durably record `action` as due now; False (nothing changed) when an action with
        its id was recorded before, pending or finished within ACTION_KEEP."""
        ...

    async def claim_actions(self, now: float, limit: int) -> list[ActionClaim]:
        """Take up to `limit` due actions, oldest first, each for ACTION_LEASE; one whose
        holder died is due again once its lease ends."""
        ...

    async def retry_action(self, claim: ActionClaim, next_attempt_at: float) -> None:
        """Give a claimed action back until `next_attempt_at`, one attempt counted; nothing
        when the claim is no longer held."""
        ...

    async def finish_action(self, claim: ActionClaim, now: float) -> None:
        """The action is done (or given up): never claimed again; nothing when the claim
        is no longer held."""
        ...

    async def pending_actions(self) -> int:
        """How many recorded actions are not finished (claimed ones included)."""
        ...

    async def group_actions(self, receiver: str, group_key: str) -> GroupActions | None:
        """What was done to (receiver, group), if anything."""
        ...

    async def set_group_actions(self, state: GroupActions) -> GroupActions | None:
        """Write `state` if the stored version is still `state.version` (0: none stored);
        the stored state (version bumped), or None when someone changed it first."""
        ...


# An on-call override is kept this long after it ended (the console lists recent ones).
OVERRIDE_KEEP = 30 * 86400.0


class OncallOverrides(Protocol):
    """Who covers a rotation when (router/schedules/rotations.py's Override), shared by every
    replica; they win over the rotation while they last."""

    async def add_override(self, override: Override) -> bool:
        """Durably record `override`; False when one with its id exists already."""
        ...

    async def remove_override(self, override_id: str) -> bool:
        """Drop an override; False when there is none with that id."""
        ...

    async def list_overrides(self, since: float) -> list[Override]:
        """Every override ending after `since`, soonest start first."""
        ...


@dataclass(frozen=True, slots=True)
class Timer:
    """A durable timer: `kind` (what it is for), `key` (which group), when it is `due`, and
    its holder's JSON `body`; `token` names the claim that took it (empty when not held)."""

    kind: str
    key: str
    due: float
    body: str
    token: str = ""


class Timers(Protocol):
    """Durable timers shared by every replica: each due timer is taken by one of them under
    a lease, and is due again when that lease ends unless its holder moved it on first."""

    async def set_timer(
        self, kind: str, key: str, due: float, body: str, *, replace: bool = False
    ) -> bool:
        """Arm (`kind`, `key`) at `due`; an armed one is kept (False) unless `replace`."""
        ...

    async def claim_timers(self, kind: str, now: float, limit: int, lease: float) -> list[Timer]:
        """Take up to `limit` timers of `kind` due by `now`, earliest first, each until
        `now` + `lease` (when a holder that died lets it be taken again)."""
        ...

    async def finish_timer(self, timer: Timer, due: float | None, body: str) -> bool:
        """Move a claimed timer on to `due` with `body`, or delete it (None); nothing
        (False) when the claim no longer holds it."""
        ...

    async def cancel_timer(self, kind: str, key: str) -> None:
        """Delete (`kind`, `key`), held or not."""
        ...

    async def get_timer(self, kind: str, key: str) -> Timer | None:
        """The timer (`kind`, `key`), if armed."""
        ...

    async def count_due(self, kind: str, now: float) -> int:
        """How many timers of `kind` are due by `now` and not held."""
        ...


class Rollups(Protocol):
    """Insights counters per hour and per day (router/store/rollup.py), added as records
    finish (in the same write on SQLite) and as people acknowledge."""

    async def add_rollups(self, at: float, counts: Mapping[Key, Sequence[int]]) -> None:
        """Add `counts` (rows of rollup.COLUMNS) to the hour and the day of `at`."""
        ...

    async def read_rollups(self, since: int, until: int, *, hourly: bool) -> RollupRead:
        """Totals of the hour (or day) buckets starting in [since, until), and each
        bucket's notifications per (kind, name)."""
        ...

    async def claim_report(self, name: str, slot: float) -> bool | None:
        """Record `slot` as report `name`'s latest if it is later than the one recorded:
        True for the one caller that did (it sends), False when it was not later; None
        when nothing was recorded before (recorded now, not sent: a first start does not
        post a past report)."""
        ...


class Store(
    OncallOverrides,
    Timers,
    Rollups,
    ActionQueue,
    Outbox,
    NotificationLog,
    AlertStates,
    DeployHistory,
    DeliveryRecords,
    RecordQueries,
    ChannelBudget,
    Housekeeping,
    HeartbeatLog,
    Protocol,
):
    """Everything a state store does: what `open_store` returns and both stores implement."""


# The role of exporting the store-wide outbox depth.
OUTBOX_DEPTH_EXPORTER = "outbox-depth"


async def exported_outbox_depth(store: Store) -> int:
    """The `alert_router_outbox_pending` value this process exports: the store-wide depth
    from the one process that leads OUTBOX_DEPTH_EXPORTER, 0 from the others, so a sum or
    max over replicas is the depth itself."""
    if not await store.lead(OUTBOX_DEPTH_EXPORTER):
        return 0
    return await store.pending_count()
