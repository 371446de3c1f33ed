"""Alertmanager `time_intervals`: named sets of recurring windows that mute or enable routes.

Semantics follow Alertmanager's `timeinterval` package: within one entry every field that is
present must match (absent means any); a named interval contains an instant when any of its
entries does. Times are `HH:MM`, start inclusive and end exclusive, `24:00` allowed as an end.
Without a `location` the instant is read in UTC.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.schedules.rotations import parse_zone

_TIME_RE = re.compile(r"(?:([01][0-9]|2[0-3]):([0-5][0-9]))|(24):(00)")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


@dataclass(frozen=True, slots=True)
class InclusiveRange:
    begin: int
    end: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.begin <= value <= self.end


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """One entry of a named time interval; None fields match anything."""

    times: tuple[tuple[int, int], ...] | None = None  # (start minute, end minute) of the day
    weekdays: tuple[InclusiveRange, ...] | None = None  # 0 = Sunday
    days_of_month: tuple[InclusiveRange, ...] | None = None  # negative counts from the end
    months: tuple[InclusiveRange, ...] | None = None
    years: tuple[InclusiveRange, ...] | None = None
    location: tzinfo | None = None

    def contains(self, at: datetime) -> bool:
        """True if `at` lies inside this entry."""
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        local = at.astimezone(self.location or UTC)
        if self.times is not None:
            minute = local.hour * 60 + local.minute
            if not any(start <= minute < end for start, end in self.times):
                return False
        if self.days_of_month is not None and not any(
            _day_in_range(r, local) for r in self.days_of_month
        ):
            return False
        if self.months is not None and not any(local.month in r for r in self.months):
            return False
        if self.weekdays is not None:
            # Python counts Monday as 0; Alertmanager (like Go) counts Sunday as 0.
            weekday = (local.weekday() + 1) % 7
            if not any(weekday in r for r in self.weekdays):
                return False
        return self.years is None or any(local.year in r for r in self.years)


def _day_in_range(r: InclusiveRange, local: datetime) -> bool:
    days = calendar.monthrange(local.year, local.month)[1]
    begin = days + r.begin + 1 if r.begin < 0 else r.begin
    end = days + r.end + 1 if r.end < 0 else r.end
    # Like Alertmanager: a range starting after this month's last day does not apply, and
    # `-31` in a 30-day month is clamped rather than spilling into the previous month.
    if begin > days:
        return False
    begin = max(begin, 1)
    end = min(end, days)
    return begin <= local.day <= end


def parse_clock(text: str) -> int:
    """`HH:MM` from 00:00 to 24:00, as minutes of the day."""
    match = _TIME_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid time {text!r}: expected HH:MM from 00:00 to 24:00")
    hours = match.group(1) or match.group(3)
    minutes = match.group(2) or match.group(4)
    return int(hours) * 60 + int(minutes)


def format_clock(minutes: int) -> str:
    """Minutes of the day as `HH:MM` (1440 is `24:00`)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_time_range(start: int, end: int) -> None:
    """A `times` entry runs forward within one day; ValueError saying how to write it."""
    if start < end:
        return
    if end == 0:
        hint = " (write the end of the day as 24:00)"
    elif start > end:
        hint = " (to cross midnight, use two ranges: one to 24:00, one from 00:00)"
    else:
        hint = ""
    raise ValueError(
        f"start_time {format_clock(start)} must be before end_time {format_clock(end)}{hint}"
    )


def _split_range(text: str, member: Callable[[str], int]) -> InclusiveRange:
    parts = [part.strip() for part in text.lower().split(":")]
    if len(parts) > 2:
        raise ValueError(f"invalid range {text!r}: expected one value or start:end")
    begin = member(parts[0])
    end = member(parts[-1])
    return InclusiveRange(begin, end)


def _weekday(text: str) -> int:
    if text not in WEEKDAYS:
        raise ValueError(f"unknown weekday {text!r}: expected a name like monday")
    return WEEKDAYS.index(text)


def _month(text: str) -> int:
    if text in MONTHS:
        return MONTHS.index(text) + 1
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"unknown month {text!r}: expected a name or 1..12") from None
    if not 1 <= number <= 12:
        raise ValueError(f"month {number} is out of range 1..12")
    return number


def _integer(kind: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a valid {kind}: expected a number") from None

    return parse


def parse_weekdays(text: str) -> InclusiveRange:
    """`monday` or `monday:friday` (case-insensitive)."""
    r = _split_range(text, _weekday)
    if r.begin > r.end:
        raise ValueError(
            f"weekday range {text!r} ends before it starts (weeks run sunday to saturday:"
            " split a range over the weekend in two, e.g. friday:saturday and sunday:monday)"
        )
    return r


def parse_days_of_month(text: str) -> InclusiveRange:
    """`1`, `-1` (last day), `1:5` or `-3:-1`."""
    r = _split_range(text, _integer("day of the month"))
    for day in (r.begin, r.end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(
                f"{day} is not a valid day of the month: use 1..31, or -1..-31 counted from"
                " the end of the month"
            )
    if r.begin < 0 < r.end:
        raise ValueError(f"day range {text!r}: end day must be negative if start day is")
    # With negative days the month length matters; 28 days (the shortest month) is the one
    # length where a reversed range can be told for sure.
    check_begin = 28 + r.begin if r.begin < 0 else r.begin
    check_end = 28 + r.end if r.end < 0 else r.end
    if check_begin > check_end:
        raise ValueError(f"day range {text!r} ends before it starts")
    return r


def parse_months(text: str) -> InclusiveRange:
    """`january`, `1`, `january:march` or `1:3`."""
    r = _split_range(text, _month)
    if r.begin > r.end:
        raise ValueError(f"month range {text!r} ends before it starts")
    return r


def parse_years(text: str) -> InclusiveRange:
    """`2026` or `2026:2028`."""
    r = _split_range(text, _integer("year"))
    if r.begin <= 0 or r.end <= 0:
        raise ValueError(f"year range {text!r}: years must be positive")
    if r.begin > r.end:
        raise ValueError(f"year range {text!r} ends before it starts")
    return r


def _local_zone() -> tzinfo:
    tz_name = os.environ.get("TZ", "").lstrip(":")
    if tz_name:
        try:
            return ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    if localtime.exists():
        with localtime.open("rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    return UTC


def parse_location(name: str) -> tzinfo:
    """An IANA zone name, `UTC`, or `Local` (the zone of the machine)."""
    if name == "Local":
        return _local_zone()
    if name == "UTC":
        return UTC
    return parse_zone(name)
