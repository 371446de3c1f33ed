"""The named time intervals of a config, compiled for the runtime: is a route muted now?

The interval language itself (entries, ranges, zones) is router/schedules/timeintervals.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, tzinfo

from router.config.schema import Loc, TimeIntervalConfig, TimeIntervalSpec, format_loc
from router.model import RouteSettings
from router.schedules.timeintervals import (
    InclusiveRange,
    TimeInterval,
    parse_clock,
    parse_days_of_month,
    parse_location,
    parse_months,
    parse_weekdays,
    parse_years,
)


class TimeIntervalError(ValueError):
    """An invalid time interval; `loc` is the path of the offending field."""

    def __init__(self, loc: Loc, reason: str) -> None:
        super().__init__(f"{format_loc(loc)}: {reason}" if loc else reason)
        self.loc = loc
        self.reason = reason


def _check_spec(spec: TimeIntervalSpec) -> Iterator[tuple[Loc, str] | TimeInterval]:
    """Yield each problem of `spec` as (loc, message), or the parsed entry if there are none."""
    failed = False
    times: list[tuple[int, int]] | None = None
    if spec.times is not None:
        times = []
        for i, tr in enumerate(spec.times):
            try:
                start = parse_clock(tr.start_time)
            except ValueError as exc:
                failed = True
                yield ("times", i, "start_time"), str(exc)
                continue
            try:
                end = parse_clock(tr.end_time)
            except ValueError as exc:
                failed = True
                yield ("times", i, "end_time"), str(exc)
                continue
            if start >= end:
                failed = True
                if end == 0:
                    hint = " (write the end of the day as 24:00)"
                elif start > end:
                    hint = " (to cross midnight, use two ranges: one to 24:00, one from 00:00)"
                else:
                    hint = ""
                yield (
                    ("times", i),
                    f"start_time {tr.start_time} must be before end_time {tr.end_time}{hint}",
                )
                continue
            times.append((start, end))

    parsed: dict[str, list[InclusiveRange] | None] = {}
    parsers: dict[str, Callable[[str], InclusiveRange]] = {
        "weekdays": parse_weekdays,
        "days_of_month": parse_days_of_month,
        "months": parse_months,
        "years": parse_years,
    }
    for field_name, parser in parsers.items():
        items: list[str] | None = getattr(spec, field_name)
        if items is None:
            parsed[field_name] = None
            continue
        ranges: list[InclusiveRange] = []
        for i, item in enumerate(items):
            try:
                ranges.append(parser(item))
            except ValueError as exc:
                failed = True
                yield (field_name, i), str(exc)
        parsed[field_name] = ranges

    location: tzinfo | None = None
    if spec.location is not None:
        try:
            location = parse_location(spec.location)
        except ValueError as exc:
            failed = True
            yield ("location",), str(exc)

    if not failed:

        def frozen(name: str) -> tuple[InclusiveRange, ...] | None:
            value = parsed[name]
            return None if value is None else tuple(value)

        yield TimeInterval(
            times=None if times is None else tuple(times),
            weekdays=frozen("weekdays"),
            days_of_month=frozen("days_of_month"),
            months=frozen("months"),
            years=frozen("years"),
            location=location,
        )


def check_time_interval(spec: TimeIntervalSpec) -> list[tuple[Loc, str]]:
    """Every problem of one entry, as (loc relative to the entry, message)."""
    return [item for item in _check_spec(spec) if not isinstance(item, TimeInterval)]


def parse_time_interval(spec: TimeIntervalSpec) -> TimeInterval:
    """Parse one entry; raises TimeIntervalError for its first problem."""
    for item in _check_spec(spec):
        if isinstance(item, TimeInterval):
            return item
        loc, reason = item
        raise TimeIntervalError(loc, reason)
    raise AssertionError("unreachable: _check_spec yields an entry or a problem")


class TimeIntervals:
    """The named time intervals of a config, asked whether a route is muted at an instant."""

    def __init__(self, intervals: Mapping[str, Sequence[TimeInterval]]) -> None:
        self._intervals = {name: tuple(entries) for name, entries in intervals.items()}

    @classmethod
    def from_config(cls, intervals: Sequence[TimeIntervalConfig]) -> TimeIntervals:
        """Compile the named intervals of a config that passed validation."""
        return cls(
            {
                interval.name: [parse_time_interval(spec) for spec in interval.time_intervals]
                for interval in intervals
            }
        )

    @property
    def names(self) -> frozenset[str]:
        """The names of all defined intervals."""
        return frozenset(self._intervals)

    def contains(self, name: str, at: datetime) -> bool:
        """True if any entry of the interval `name` contains `at`; KeyError if undefined."""
        return any(entry.contains(at) for entry in self._intervals[name])

    def mute_reason(self, route: RouteSettings, at: datetime) -> str | None:
        """Why `route` is muted at `at` (`muted by <name>` or `outside active ...`), or None."""
        for name in route.mute_time_intervals:
            if self.contains(name, at):
                return f"muted by {name}"
        if route.active_time_intervals and not any(
            self.contains(name, at) for name in route.active_time_intervals
        ):
            return "outside active time intervals " + ", ".join(route.active_time_intervals)
        return None

    def muted(self, route: RouteSettings, at: datetime) -> bool:
        """True if `at` is inside a mute interval of `route`, or outside all its active ones."""
        return self.mute_reason(route, at) is not None
