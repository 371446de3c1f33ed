"""Notification-log decisions per (receiver, group), after Alertmanager's DedupStage.

A group is notified when it has firing alerts the receiver has not been told about, when
alerts the receiver was told were firing have resolved, or when the repeat interval has
passed; otherwise it is a duplicate. Suppressed (muted, inhibited) firing alerts are never
announced, but a resolve of something the receiver saw firing always goes out.

Holds (Argo CD flap damping): a problem may be recorded with a hold (`not_before`). Its
group is due when the hold ends, or at once when a not-held notification (the recovery)
arrives. `judge_holds` reads a claim's notifications in recording order: a problem still
within its hold sends the claim back until then; one that recovered before its hold ended
has `flapped`, and nobody who was not told it was firing is told anything.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from router.model import Event, GroupActions, NflogEntry, Notification, RouteSettings, Status


class Reason(enum.StrEnum):
    FIRST = "first"
    NEW_ALERTS = "new_alerts"
    RESOLVED = "resolved"
    REPEAT = "repeat"
    # Suppressed:
    DUPLICATE = "duplicate"
    MUTED = "muted"
    INHIBITED = "inhibited"
    SEND_RESOLVED_OFF = "send_resolved_off"
    # A resolve of alerts this receiver was never told were firing.
    UNSEEN_RESOLVE = "unseen_resolve"
    # A problem that recovered within its hold: nobody needed to hear of it.
    FLAPPED = "flapped"
    # A repeat of a group someone acknowledged (Slack's Acknowledge button).
    ACKNOWLEDGED = "acknowledged"
    # Firing news of a group the router itself mutes (a Silence button without Alertmanager).
    SILENCED = "silenced"
    # Resolved in Alertmanager while silenced (it sends no resolve then): seen by polling.
    RESOLVED_WHILE_SILENCED = "resolved_while_silenced"
    # An escalation step: the group fired unacknowledged for the step's `after`.
    ESCALATED = "escalated"


# `Event.origin["kind"]` of the events the router makes itself: each is told with the
# reason of the same name.
RESOLVED_BY_POLL = Reason.RESOLVED_WHILE_SILENCED.value
ESCALATION = Reason.ESCALATED.value


# A log entry outlives the group's last change by at least twice the repeat interval, and
# never less than a day, so an HA peer's late duplicate still finds it.
MIN_ENTRY_TTL = 86400.0


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason
    send: bool
    firing: Sequence[Event]
    resolved: Sequence[Event]
    # The log entry to store when the notification is sent (or, for send_resolved_off,
    # when it is recorded): what the receiver now knows.
    entry: NflogEntry | None

    @property
    def events(self) -> list[Event]:
        return [*self.firing, *self.resolved]


@dataclass(frozen=True, slots=True)
class Holds:
    """What the holds of a claim's notifications decide."""

    # Give the claim back until then: a problem is still within its hold.
    until: float | None = None
    # Fingerprints whose problem recovered before its hold ended.
    flapped: frozenset[str] = frozenset()
    # How long the problems about to be told were held (0: none was).
    held_for: float = 0.0


NO_HOLDS = Holds()


def judge_holds(notifications: Sequence[Notification], now: float) -> Holds:
    """Read the holds of a claim's notifications (in recording order) at `now`."""
    if not any(n.not_before > 0 for n in notifications):
        return NO_HOLDS
    # fingerprint -> (hold end, hold length) of the problem firing now, since it began.
    open_: dict[str, tuple[float, float]] = {}
    flapped: set[str] = set()
    for n in notifications:
        accepted = n.created_at.timestamp()
        for event in n.events:
            fp = event.fingerprint
            if event.status is Status.FIRING:
                # A problem already firing keeps the hold it began with.
                open_.setdefault(fp, (n.not_before, max(n.not_before - accepted, 0.0)))
            else:
                began = open_.pop(fp, None)
                if began is not None and began[0] > accepted:
                    flapped.add(fp)
    waiting = [end for end, _ in open_.values() if end > now]
    if waiting:
        return Holds(until=min(waiting))
    # A problem that flapped and then came back (its new hold over) is firing, not flapped.
    return Holds(
        flapped=frozenset(flapped - set(open_)),
        held_for=max((held for _, held in open_.values()), default=0.0),
    )


def merge_events(batches: Sequence[Sequence[Event]]) -> list[Event]:
    """The latest state of each alert across several webhooks for one group."""
    latest: dict[str, Event] = {}
    for events in batches:
        for event in events:
            latest[event.fingerprint] = event
    return list(latest.values())


def decide(
    entry: NflogEntry | None,
    group_key: str,
    events: Sequence[Event],
    route: RouteSettings,
    now: float,
    *,
    muted: bool = False,
    inhibited: frozenset[str] = frozenset(),
    flapped: frozenset[str] = frozenset(),
) -> Decision:
    """Whether and why this receiver is told about the group now; `flapped` holds the
    fingerprints whose problem recovered within its hold (see `judge_holds`)."""
    firing = {e.fingerprint: e for e in events if e.status is Status.FIRING}
    resolved = {e.fingerprint: e for e in events if e.status is Status.RESOLVED}
    prev_firing = entry.firing if entry else frozenset()
    prev_resolved = entry.resolved if entry else frozenset()

    hidden = set(firing) if muted else set(firing) & inhibited
    # An alert the receiver already knows to be firing stays in the message even when it is
    # now muted or inhibited: it is not news, and dropping it would look like a resolve.
    shown_firing = [e for fp, e in firing.items() if fp not in hidden or fp in prev_firing]
    new_firing = {e.fingerprint for e in shown_firing} - prev_firing
    newly_hidden = hidden - prev_firing
    newly_resolved = set(resolved) & prev_firing
    shown_resolved = [e for fp, e in resolved.items() if fp in prev_firing | prev_resolved]
    hidden_reason = Reason.MUTED if muted else Reason.INHIBITED

    one_shot = any(e.one_shot for e in events)
    if one_shot:
        # One-shot events (an Argo CD deploy) are said once per revision, never repeated.
        if entry is None and new_firing:
            return _send(Reason.FIRST, group_key, entry, shown_firing, [], route, now)
        return _hold(Reason.DUPLICATE if not newly_hidden else hidden_reason)

    if firing and any(e.origin.get("kind") == ESCALATION for e in events):
        # Each step is told once by construction (one timer): never a duplicate.
        return _send(Reason.ESCALATED, group_key, entry, list(firing.values()), [], route, now)
    if new_firing:
        reason = Reason.FIRST if entry is None else Reason.NEW_ALERTS
        return _send(reason, group_key, entry, shown_firing, shown_resolved, route, now)
    if newly_resolved:
        if route.send_resolved:
            polled = all(
                resolved[fp].origin.get("kind") == RESOLVED_BY_POLL for fp in newly_resolved
            )
            reason = Reason.RESOLVED_WHILE_SILENCED if polled else Reason.RESOLVED
            return _send(reason, group_key, entry, shown_firing, shown_resolved, route, now)
        return Decision(
            Reason.SEND_RESOLVED_OFF,
            False,
            shown_firing,
            shown_resolved,
            _entry(group_key, entry, shown_firing, shown_resolved, route, now, notified=False),
        )
    if newly_hidden:
        return _hold(hidden_reason)
    if shown_firing and entry is not None:
        if now - entry.last_notified_at >= route.repeat_interval:
            if muted:
                return _hold(Reason.MUTED)
            return _send(Reason.REPEAT, group_key, entry, shown_firing, shown_resolved, route, now)
    if set(resolved) & flapped:
        return _hold(Reason.FLAPPED)
    if resolved and not set(resolved) & (prev_firing | prev_resolved):
        return _hold(Reason.UNSEEN_RESOLVE)
    return _hold(Reason.DUPLICATE)


def _hold(reason: Reason) -> Decision:
    return Decision(reason, False, [], [], None)


def _send(
    reason: Reason,
    group_key: str,
    entry: NflogEntry | None,
    firing: Sequence[Event],
    resolved: Sequence[Event],
    route: RouteSettings,
    now: float,
) -> Decision:
    entry_after = _entry(group_key, entry, firing, resolved, route, now)
    return Decision(reason, True, firing, resolved, entry_after)


def _entry(
    group_key: str,
    entry: NflogEntry | None,
    firing: Sequence[Event],
    resolved: Sequence[Event],
    route: RouteSettings,
    now: float,
    *,
    notified: bool = True,
) -> NflogEntry:
    ttl = max(2 * route.repeat_interval, MIN_ENTRY_TTL)
    return NflogEntry(
        receiver=route.receiver,
        group_key=group_key,
        firing=frozenset(e.fingerprint for e in firing),
        resolved=frozenset(e.fingerprint for e in resolved),
        first_notified_at=entry.first_notified_at if entry else now,
        last_notified_at=now if notified or entry is None else entry.last_notified_at,
        expires_at=now + ttl,
        channel_state=dict(entry.channel_state) if entry else {},
    )


def judge_actions(decision: Decision, actions: GroupActions | None, now: float) -> Reason | None:
    """Why what people did to the group holds back a notification dedup would send: no
    reminder while acknowledged, no firing news while the router mutes it. A resolve, and
    a new alert joining an acknowledged group, are always told."""
    told = (Reason.RESOLVED, Reason.RESOLVED_WHILE_SILENCED, Reason.ESCALATED)
    if actions is None or not decision.send or decision.reason in told:
        return None
    if actions.router_muted(now):
        return Reason.SILENCED
    if actions.acknowledged and decision.reason is Reason.REPEAT:
        return Reason.ACKNOWLEDGED
    return None
