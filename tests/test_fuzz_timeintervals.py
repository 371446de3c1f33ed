"""Time intervals fuzzed: any entry parses or fails with schema errors naming its
fields, a parsed entry answers for any instant, and what it answers agrees with a plain
reading of Alertmanager's rules; unquoted clock times in YAML are times of day."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from router.config.loader import parse_config
from router.config.schema import TimeIntervalSpec
from router.routing.timeintervals import TimeIntervals
from tests.fuzzing import FUZZ, TIMEOUT

pytestmark = pytest.mark.timeout(TIMEOUT)

WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
MONTHS = [calendar.month_name[i].lower() for i in range(1, 13)]
FIELDS = ("weekdays", "days_of_month", "months", "years")

clocks = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 24), st.integers(0, 59))
junk = st.text(max_size=8) | st.sampled_from(["", ":", "-1", "0", "24:01", "1:5:9", " monday"])
items = (
    st.sampled_from(WEEKDAYS + MONTHS + ["Monday", "DECEMBER"])
    | st.integers(-40, 2100).map(str)
    | st.builds(lambda a, b: f"{a}:{b}", st.integers(-40, 40), st.integers(-40, 40))
    | st.builds(lambda a, b: f"{a}:{b}", st.sampled_from(WEEKDAYS), st.sampled_from(WEEKDAYS))
    | st.builds(lambda a, b: f"{a}:{b}", st.sampled_from(MONTHS), st.sampled_from(MONTHS))
    | st.builds(lambda a, b: f"{a}:{b}", st.integers(1990, 2100), st.integers(1990, 2100))
    | junk
)
zones = st.sampled_from(
    ["UTC", "Local", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Mars/Olympus"]
    + ["", "../etc/passwd", "Europe/", "EST5EDT", "Etc/GMT+12"]
) | st.text(max_size=10)
specs = st.fixed_dictionaries(
    {},
    optional={
        "times": st.lists(
            st.fixed_dictionaries({"start_time": clocks | junk, "end_time": clocks | junk}),
            max_size=3,
        ),
        **{name: st.lists(items, max_size=3) for name in FIELDS},
        "location": zones,
    },
)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2100, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-12)), timezone(timedelta(hours=14))]),
)


@FUZZ
@given(spec=specs, at=instants)
def test_any_entry_parses_or_names_its_field_and_answers_for_any_instant(
    spec: dict[str, Any], at: datetime
) -> None:
    try:
        entry = TimeIntervalSpec.model_validate(spec).interval
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            assert error["loc"] and error["loc"][0] in ("times", *FIELDS, "location"), error
            assert error["msg"]
        return
    assert isinstance(entry.contains(at), bool)


def minute(at: datetime) -> int:
    return at.hour * 60 + at.minute


@FUZZ
@given(start=st.integers(0, 1439), length=st.integers(1, 1440), at=instants)
def test_a_time_range_holds_from_its_start_up_to_its_end(
    start: int, length: int, at: datetime
) -> None:
    end = min(start + length, 1440)
    clock = "{:02d}:{:02d}".format
    times = [{"start_time": clock(*divmod(start, 60)), "end_time": clock(*divmod(end, 60))}]
    entry = TimeIntervalSpec.model_validate({"times": times}).interval
    assert entry.contains(at) == (start <= minute(at.astimezone(UTC)) < end)


@FUZZ
@given(first=st.integers(0, 6), last=st.integers(0, 6), at=instants)
def test_a_weekday_range_holds_on_its_days_counted_from_sunday(
    first: int, last: int, at: datetime
) -> None:
    first, last = min(first, last), max(first, last)
    spec = {"weekdays": [f"{WEEKDAYS[first]}:{WEEKDAYS[last]}"]}
    entry = TimeIntervalSpec.model_validate(spec).interval
    weekday = (at.astimezone(UTC).weekday() + 1) % 7  # Sunday is 0, as in Go
    assert entry.contains(at) == (first <= weekday <= last)


@FUZZ
@given(first=st.integers(-31, 31), last=st.integers(-31, 31), at=instants)
def test_a_day_of_month_range_counts_negative_days_from_the_end(
    first: int, last: int, at: datetime
) -> None:
    try:
        entry = TimeIntervalSpec.model_validate({"days_of_month": [f"{first}:{last}"]}).interval
    except ValidationError:
        return  # zero, a mixed-sign range or one that ends before it starts
    local = at.astimezone(UTC)
    days = calendar.monthrange(local.year, local.month)[1]
    begin = days + first + 1 if first < 0 else first
    end = days + last + 1 if last < 0 else last
    expected = begin <= days and max(begin, 1) <= local.day <= min(end, days)
    assert entry.contains(at) == expected


@FUZZ
@given(start=st.integers(0, 1439))
def test_an_unquoted_clock_time_in_yaml_is_that_time_of_day(start: int) -> None:
    clock = f"{start // 60:02d}:{start % 60:02d}"
    config = parse_config(
        "receivers: [{name: r, log: {}}]\n"
        "route: {receiver: r}\n"
        "time_intervals:\n"
        "  - name: t\n"
        "    time_intervals:\n"
        f"      - times: [{{start_time: {clock}, end_time: 24:00}}]\n",
        "t.yaml",
        env={},
    )
    intervals = TimeIntervals.from_config(config.time_intervals)
    day = datetime(2026, 11, 26, tzinfo=UTC)
    assert intervals.contains("t", day + timedelta(minutes=start))
    if start:
        assert not intervals.contains("t", day + timedelta(minutes=start - 1))
