"""Notification-log decisions per (receiver, group), after Alertmanager's DedupStage.

A group is notified when it has firing alerts the receiver has not been told about, when
alerts the receiver was told were firing have resolved, or when the repeat interval has
passed; otherwise it is a duplicate. Suppressed (muted, inhibited) firing alerts are never
announced, but a resolve of something the receiver saw firing always goes out.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from router.model import Event, NflogEntry, RouteSettings, Status


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
) -> Decision:
    """Whether and why this receiver is told about the group now."""
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

    if new_firing:
        reason = Reason.FIRST if entry is None else Reason.NEW_ALERTS
        return _send(reason, group_key, entry, shown_firing, shown_resolved, route, now)
    if newly_resolved:
        if route.send_resolved:
            return _send(
                Reason.RESOLVED, group_key, entry, shown_firing, shown_resolved, route, now
            )
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
