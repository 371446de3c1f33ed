"""The named time intervals of a config, compiled for the runtime: is a route muted now?

The interval language itself (entries, ranges, zones) is router/schedules/timeintervals.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from router.config.schema import TimeIntervalConfig
from router.model import RouteSettings
from router.schedules.timeintervals import TimeInterval


class TimeIntervals:
    """The named time intervals of a config, asked whether a route is muted at an instant."""

    def __init__(self, intervals: Mapping[str, Sequence[TimeInterval]]) -> None:
        self._intervals = {name: tuple(entries) for name, entries in intervals.items()}

    @classmethod
    def from_config(cls, intervals: Sequence[TimeIntervalConfig]) -> TimeIntervals:
        """The named intervals of a config (parsed by its schema)."""
        return cls(
            {
                interval.name: [spec.interval for spec in interval.time_intervals]
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
