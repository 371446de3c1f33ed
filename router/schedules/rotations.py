"""On-call rotations as pure functions of an instant: who is on call, and when that changes.

A shift starts at the handoff's local wall-clock time in the rotation's zone, so a weekly
"mon 09:00" in Europe/Berlin is 08:00 UTC in winter and 07:00 UTC in summer, and the shift
that spans a DST change is an hour shorter or longer. A handoff time that does not exist on
a spring-forward day is taken as the same wall time before the change (an hour later in
the new offset), and one that exists twice is the first of the two.

Overrides (who, from, until) win over the rotation while they last; of several that hold at
once, the one created last wins. Before `start` the rotation runs backwards, so someone is
always named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RotationKind = Literal["weekly", "daily"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HANDOFF_RE = re.compile(r"^(?:([a-z]{3})\s+)?(\d{1,2}):(\d{2})$")
# `oncall:<name>` in a Slack `mention` or an email `to` names a rotation.
ONCALL_REFERENCE = re.compile(r"oncall:([A-Za-z0-9][A-Za-z0-9_.-]*)")
# How many handoffs and override edges `on_call` looks through for a change of person
# before settling for the next scheduled handoff (a rotation of one changes nobody).
_LOOKAHEAD = 64


@dataclass(frozen=True, slots=True)
class Handoff:
    """When shifts change: a weekday (0 = Monday; None for daily) and a local time."""

    weekday: int | None
    at: time


def parse_handoff(kind: str, text: str) -> Handoff:
    """`mon 09:00` (weekly) or `09:00` (daily); ValueError saying what is expected."""
    match = _HANDOFF_RE.match(text.strip().lower())
    example = '"mon 09:00"' if kind == "weekly" else '"09:00"'
    if match is None:
        raise ValueError(f"handoff {text!r}: expected {example}")
    day, hour, minute = match.group(1), int(match.group(2)), int(match.group(3))
    if hour > 23 or minute > 59:
        raise ValueError(f"handoff {text!r}: no such time of day")
    if kind == "weekly":
        if day is None or day not in WEEKDAYS:
            raise ValueError(f"handoff {text!r}: a weekly rotation needs a weekday, like {example}")
        return Handoff(WEEKDAYS.index(day), time(hour, minute))
    if day is not None:
        raise ValueError(f"handoff {text!r}: a daily rotation hands off every day: {example}")
    return Handoff(None, time(hour, minute))


def parse_zone(name: str) -> ZoneInfo:
    """An IANA zone; ValueError naming the problem."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name like Europe/Berlin"
        ) from None


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    slack: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Rotation:
    """A validated rotation (router/config/schema.py builds it from routes.yaml)."""

    name: str
    zone: ZoneInfo
    kind: RotationKind
    handoff: Handoff
    start: date
    members: tuple[Member, ...]

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    @property
    def period(self) -> timedelta:
        return timedelta(days=7 if self.kind == "weekly" else 1)

    @property
    def first_day(self) -> date:
        """The local date of the first handoff: `start`, or the handoff weekday after it."""
        if self.handoff.weekday is None:
            return self.start
        return self.start + timedelta(days=(self.handoff.weekday - self.start.weekday()) % 7)

    def boundary(self, k: int) -> float:
        """The instant shift `k` starts (shift 0 is the first member's first)."""
        day = self.first_day + k * self.period
        local = datetime.combine(day, self.handoff.at, tzinfo=self.zone)
        # Round trip through UTC: a wall time in a DST gap lands after the change.
        return local.astimezone(UTC).timestamp()

    def shift_index(self, at: float) -> int:
        """The shift holding `at`."""
        local = datetime.fromtimestamp(at, self.zone)
        k = (local.date() - self.first_day).days // self.period.days
        # The local date is only an estimate across the handoff hour: correct it.
        while self.boundary(k) > at:
            k -= 1
        while self.boundary(k + 1) <= at:
            k += 1
        return k


@dataclass(frozen=True, slots=True)
class Override:
    """`who` (a member's name) is on call for `rotation` from `start` until `end`."""

    id: str
    rotation: str
    who: str
    start: float
    end: float
    created_by: str = ""
    created_at: float = 0.0

    def holds(self, at: float) -> bool:
        return self.start <= at < self.end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Override:
        return cls(
            id=str(data["id"]),
            rotation=str(data["rotation"]),
            who=str(data["who"]),
            start=float(data["start"]),
            end=float(data["end"]),
            created_by=str(data.get("created_by", "")),
            created_at=float(data.get("created_at", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call at an instant, since when and until when, and why (an override)."""

    rotation: str
    member: Member
    since: float
    until: float
    next_member: Member
    override: Override | None = None


def _winning(rotation: Rotation, overrides: Sequence[Override], at: float) -> Override | None:
    holding = [
        o
        for o in overrides
        if o.rotation == rotation.name and o.holds(at) and rotation.member(o.who) is not None
    ]
    return max(holding, key=lambda o: (o.created_at, o.id)) if holding else None


def member_at(
    rotation: Rotation, at: float, overrides: Sequence[Override] = ()
) -> tuple[Member, Override | None]:
    """Who is on call at `at`: the winning override's member, else the rotation's."""
    won = _winning(rotation, overrides, at)
    if won is not None:
        found = rotation.member(won.who)
        assert found is not None
        return found, won
    k = rotation.shift_index(at)
    return rotation.members[k % len(rotation.members)], None


def _next_change(rotation: Rotation, overrides: Sequence[Override], at: float) -> float:
    """The first instant after `at` when someone else is on call; the next scheduled
    handoff when nobody else comes (a rotation of one)."""
    who = member_at(rotation, at, overrides)[0]
    ends = [t for o in overrides if o.rotation == rotation.name for t in (o.start, o.end)]
    cursor = at
    for _ in range(_LOOKAHEAD):
        # Who is on call changes only at a handoff or where an override starts or ends.
        cursor = min(
            [rotation.boundary(rotation.shift_index(cursor) + 1)] + [t for t in ends if t > cursor]
        )
        if member_at(rotation, cursor, overrides)[0] != who:
            return cursor
    return rotation.boundary(rotation.shift_index(at) + 1)


def _last_change(rotation: Rotation, overrides: Sequence[Override], at: float) -> float:
    """The last instant at or before `at` when the person on call at `at` took over."""
    who = member_at(rotation, at, overrides)[0]
    ends = [t for o in overrides if o.rotation == rotation.name for t in (o.start, o.end)]
    cursor = at
    for _ in range(_LOOKAHEAD):
        start = max(
            [rotation.boundary(rotation.shift_index(cursor))] + [t for t in ends if t <= cursor]
        )
        # A millisecond before: who held the instant before this change.
        if member_at(rotation, start - 0.001, overrides)[0] != who:
            return start
        cursor = start - 0.001
    return rotation.boundary(rotation.shift_index(at))


def on_call(rotation: Rotation, at: float, overrides: Sequence[Override] = ()) -> OnCall:
    """Who is on call at `at`, since when, until when (the next handoff), and who is next."""
    member, won = member_at(rotation, at, overrides)
    until = _next_change(rotation, overrides, at)
    since = _last_change(rotation, overrides, at)
    following = member_at(rotation, until, overrides)[0]
    return OnCall(rotation.name, member, since, until, following, won)
