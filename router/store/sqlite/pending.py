"""An in-memory index of pending notifications per (receiver, group).

The SQLite store owns its database file alone (one replica), so the set of pending
notifications can live in memory beside the durable rows: claims then cost no query and
no JSON decoding. The database stays the truth: the index is rebuilt from it at start.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from router.model import Claim, Notification

GroupKey = tuple[str, str]


@dataclass
class _Group:
    notifications: list[Notification] = field(default_factory=list)
    due: float = 0.0
    attempts: int = 0
    lease_until: float = 0.0
    token: str = ""


class PendingIndex:
    """Pending groups in arrival order; due-now groups in a FIFO, delayed ones in a heap."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, _Group] = {}
        self._ready: OrderedDict[GroupKey, None] = OrderedDict()
        self._delayed: list[tuple[float, int, GroupKey]] = []
        self._tiebreak = itertools.count()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(
        self, notifications: Iterable[Notification], *, due: float = 0.0, attempts: int = 0
    ) -> None:
        """Index newly recorded (or reloaded) notifications; each is due at `due` or, when
        later, at its own `not_before`."""
        for n in notifications:
            key = (n.receiver, n.group_key)
            n_due = max(due, n.not_before)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(due=n_due, attempts=attempts)
            else:
                group.due = min(group.due, n_due)
                group.attempts = max(group.attempts, attempts)
            group.notifications.append(n)
            self._count += 1
            # A held group waits for its claim to end (or its lease to run out).
            if not group.token:
                self._schedule(key, group)

    def _schedule(self, key: GroupKey, group: _Group) -> None:
        if group.due <= 0:
            self._ready[key] = None
        else:
            heapq.heappush(self._delayed, (group.due, next(self._tiebreak), key))

    def claim(self, now: float, limit: int, lease: float, token: str) -> list[Claim]:
        """Up to `limit` due groups that nobody holds, oldest first."""
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key in self._groups:
                self._ready[key] = None
        claims: list[Claim] = []
        while self._ready and len(claims) < limit:
            key, _ = self._ready.popitem(last=False)
            group = self._groups.get(key)
            if group is None or group.due > now:
                continue  # completed, or rescheduled later (it is in the heap again)
            if group.lease_until > now:
                # Held: release or complete schedules it again, and its lease's end is in
                # the heap in case the holder vanished.
                continue
            group.lease_until = now + lease
            # Each claim its own token, so a renewal tells claims of one call apart.
            group.token = f"{token}:{len(claims) + 1}"
            claims.append(
                Claim(
                    receiver=key[0],
                    group_key=key[1],
                    notifications=list(group.notifications),
                    attempts=group.attempts,
                    token=group.token,
                )
            )
            # Reconsider when the lease runs out, in case the worker vanished.
            heapq.heappush(self._delayed, (group.lease_until, next(self._tiebreak), key))
        return claims

    def renew(self, claims: Iterable[Claim], now: float, lease: float) -> set[str]:
        """Extend the lease of each claim still holding its group; their tokens."""
        held: set[str] = set()
        for claim in claims:
            key = (claim.receiver, claim.group_key)
            group = self._groups.get(key)
            if group is None or group.token != claim.token:
                continue
            group.lease_until = now + lease
            held.add(claim.token)
            # The earlier lease end stays in the heap: claim() skips it while still held.
            heapq.heappush(self._delayed, (group.lease_until, next(self._tiebreak), key))
        return held

    def holds(self, claim: Claim) -> bool:
        group = self._groups.get((claim.receiver, claim.group_key))
        return group is not None and group.token == claim.token

    def release(self, claim: Claim, due: float, *, attempted: bool = True) -> None:
        """The claim is given back: the group waits until `due` (one more attempt counted
        unless `attempted` is false)."""
        key = (claim.receiver, claim.group_key)
        group = self._groups.get(key)
        if group is None or group.token != claim.token:
            return
        group.lease_until, group.token = 0.0, ""
        if attempted:
            group.attempts += 1
        # A webhook that arrived meanwhile is news: it is due at once (or when its hold ends).
        claimed = set(claim.ids)
        fresh = [n for n in group.notifications if n.id not in claimed]
        group.due = min(due, _earliest(fresh)) if fresh else due
        self._schedule(key, group)

    def complete(self, claim: Claim) -> None:
        """Drop the claim's notifications; what arrived meanwhile stays pending and due."""
        key = (claim.receiver, claim.group_key)
        group = self._groups.get(key)
        if group is None:
            return
        done = set(claim.ids)
        before = len(group.notifications)
        group.notifications = [n for n in group.notifications if n.id not in done]
        self._count -= before - len(group.notifications)
        if group.token == claim.token:
            group.lease_until, group.token = 0.0, ""
        if not group.notifications:
            del self._groups[key]
            self._ready.pop(key, None)
        else:
            group.due = _earliest(group.notifications)
            self._schedule(key, group)

    def next_due(self) -> float | None:
        """When the next group may become claimable: now if any is ready, else the
        earliest retry time or lease end (an early guess is harmless, a late one is not)."""
        if not self._groups:
            return None
        if self._ready:
            return 0.0
        # Entries of groups that completed meanwhile are dropped lazily, here.
        while self._delayed and self._delayed[0][2] not in self._groups:
            heapq.heappop(self._delayed)
        return self._delayed[0][0] if self._delayed else None


def _earliest(notifications: Iterable[Notification]) -> float:
    """When the first of these becomes due: 0 (at once) unless every one is held."""
    return min((n.not_before for n in notifications), default=0.0)
