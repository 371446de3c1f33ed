"""Time intervals with Alertmanager semantics: every field, ranges, zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from router.config.schema import TimeIntervalConfig, TimeIntervalSpec
from router.model import RouteSettings
from router.routing.timeintervals import TimeIntervals
from router.schedules.timeintervals import InclusiveRange, TimeInterval, parse_location

BERLIN = ZoneInfo("Europe/Berlin")


def entry(**fields: Any) -> TimeInterval:
    return TimeIntervalSpec.model_validate(fields).interval


def problems(fields: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Each problem the schema finds in one entry: (where in the entry, message)."""
    with pytest.raises(ValidationError) as excinfo:
        TimeIntervalSpec.model_validate(fields)
    return [(tuple(e["loc"]), e["msg"]) for e in excinfo.value.errors(include_url=False)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def test_times_include_the_start_and_exclude_the_end() -> None:
    office = entry(times=[{"start_time": "09:00", "end_time": "17:00"}])
    assert not office.contains(utc("2026-03-02T08:59:59"))
    assert office.contains(utc("2026-03-02T09:00:00"))
    assert office.contains(utc("2026-03-02T16:59:59"))
    assert not office.contains(utc("2026-03-02T17:00:00"))


def test_end_time_24_00_runs_to_midnight() -> None:
    evening = entry(times=[{"start_time": "20:00", "end_time": "24:00"}])
    assert evening.contains(utc("2026-03-02T23:59:59"))
    assert not evening.contains(utc("2026-03-03T00:00:00"))


def test_several_time_ranges_are_alternatives() -> None:
    nights = entry(
        times=[
            {"start_time": "20:00", "end_time": "24:00"},
            {"start_time": "00:00", "end_time": "08:00"},
        ]
    )
    assert nights.contains(utc("2026-03-02T22:00:00"))
    assert nights.contains(utc("2026-03-02T03:00:00"))
    assert not nights.contains(utc("2026-03-02T12:00:00"))


def test_weekdays_by_name_and_range_case_insensitive() -> None:
    # 2026-03-01 is a Sunday.
    workdays = entry(weekdays=["Monday:Friday"])
    assert not workdays.contains(utc("2026-03-01T12:00:00"))
    assert workdays.contains(utc("2026-03-02T12:00:00"))
    assert workdays.contains(utc("2026-03-06T12:00:00"))
    assert not workdays.contains(utc("2026-03-07T12:00:00"))
    weekend = entry(weekdays=["saturday", "sunday"])
    assert weekend.contains(utc("2026-03-01T00:00:00"))
    assert weekend.contains(utc("2026-03-07T23:59:00"))
    assert not weekend.contains(utc("2026-03-04T12:00:00"))
    assert entry(weekdays=["sunday:saturday"]).contains(utc("2026-03-04T12:00:00"))


def test_days_of_month_positive_and_ranges() -> None:
    first_days = entry(days_of_month=["1:5", "15"])
    assert first_days.contains(utc("2026-04-01T00:00:00"))
    assert first_days.contains(utc("2026-04-05T23:59:00"))
    assert not first_days.contains(utc("2026-04-06T00:00:00"))
    assert first_days.contains(utc("2026-04-15T10:00:00"))


def test_negative_days_count_from_the_end_of_each_month() -> None:
    last_day = entry(days_of_month=["-1"])
    assert last_day.contains(utc("2026-01-31T12:00:00"))
    assert last_day.contains(utc("2026-02-28T12:00:00"))
    assert not last_day.contains(utc("2028-02-28T12:00:00"))
    assert last_day.contains(utc("2028-02-29T12:00:00"))
    assert last_day.contains(utc("2026-04-30T12:00:00"))
    last_three = entry(days_of_month=["-3:-1"])
    assert not last_three.contains(utc("2026-04-27T12:00:00"))
    assert last_three.contains(utc("2026-04-28T12:00:00"))
    assert last_three.contains(utc("2026-02-26T12:00:00"))
    assert not last_three.contains(utc("2026-02-25T12:00:00"))


def test_days_past_a_short_months_end_do_not_spill_over() -> None:
    day_31 = entry(days_of_month=["31"])
    assert day_31.contains(utc("2026-03-31T12:00:00"))
    assert not day_31.contains(utc("2026-04-30T12:00:00"))
    assert not day_31.contains(utc("2026-05-01T12:00:00"))
    # -31 in a 30-day month is clamped to the 1st, as in Alertmanager.
    whole_month = entry(days_of_month=["-31:-1"])
    assert whole_month.contains(utc("2026-04-01T00:00:00"))
    assert whole_month.contains(utc("2026-02-01T00:00:00"))
    mixed = entry(days_of_month=["10:-1"])
    assert mixed.contains(utc("2026-02-28T00:00:00"))
    assert not mixed.contains(utc("2026-02-09T00:00:00"))


def test_months_by_name_number_and_range() -> None:
    summer = entry(months=["june:August"])
    assert summer.contains(utc("2026-07-15T00:00:00"))
    assert not summer.contains(utc("2026-09-01T00:00:00"))
    q1_and_december = entry(months=["1:3", "december"])
    assert q1_and_december.contains(utc("2026-02-10T00:00:00"))
    assert q1_and_december.contains(utc("2026-12-24T00:00:00"))
    assert not q1_and_december.contains(utc("2026-04-01T00:00:00"))


def test_years_single_and_range() -> None:
    years = entry(years=["2026:2027", "2030"])
    assert years.contains(utc("2026-01-01T00:00:00"))
    assert years.contains(utc("2027-12-31T23:59:00"))
    assert not years.contains(utc("2028-06-01T00:00:00"))
    assert years.contains(utc("2030-06-01T00:00:00"))


def test_every_present_field_must_match() -> None:
    business = entry(
        times=[{"start_time": "09:00", "end_time": "17:00"}],
        weekdays=["monday:friday"],
        months=["january:november"],
        location="Europe/Berlin",
    )
    assert business.contains(berlin("2026-03-02T09:00:00"))
    assert not business.contains(berlin("2026-03-07T10:00:00"))  # Saturday
    assert not business.contains(berlin("2026-03-02T17:00:00"))  # after hours
    assert not business.contains(berlin("2026-12-01T10:00:00"))  # December
    assert entry().contains(utc("2026-03-02T12:00:00"))  # no field: always


def test_without_location_times_are_read_in_utc() -> None:
    late = entry(times=[{"start_time": "23:00", "end_time": "24:00"}])
    assert late.contains(berlin("2026-01-16T00:30:00"))  # 23:30 UTC
    assert not late.contains(berlin("2026-01-15T23:30:00"))  # 22:30 UTC
    assert late.contains(datetime(2026, 1, 15, 23, 30))  # naive: taken as UTC


def test_location_reads_the_instant_in_that_zone() -> None:
    late = entry(times=[{"start_time": "23:00", "end_time": "24:00"}], location="Europe/Berlin")
    assert late.contains(utc("2026-01-15T22:30:00"))  # 23:30 CET
    assert not late.contains(utc("2026-07-15T22:30:00"))  # 00:30 CEST
    assert late.contains(utc("2026-07-15T21:30:00"))  # 23:30 CEST


def test_location_across_the_spring_forward_gap() -> None:
    # Europe/Berlin jumps from 02:00 CET to 03:00 CEST at 01:00 UTC on 2026-03-29.
    early = entry(times=[{"start_time": "00:00", "end_time": "03:00"}], location="Europe/Berlin")
    assert early.contains(utc("2026-03-29T00:59:59"))  # 01:59:59 CET
    assert not early.contains(utc("2026-03-29T01:00:00"))  # 03:00 CEST
    missing_hour = entry(
        times=[{"start_time": "02:00", "end_time": "03:00"}], location="Europe/Berlin"
    )
    assert not missing_hour.contains(utc("2026-03-29T00:59:59"))
    assert not missing_hour.contains(utc("2026-03-29T01:00:00"))


def test_location_across_the_fall_back_repeat() -> None:
    # 02:00-03:00 local happens twice on 2026-10-25: 00:00-01:00 UTC (CEST) and 01:00-02:00 (CET).
    repeated = entry(times=[{"start_time": "02:00", "end_time": "03:00"}], location="Europe/Berlin")
    assert not repeated.contains(utc("2026-10-24T23:59:00"))
    assert repeated.contains(utc("2026-10-25T00:30:00"))
    assert repeated.contains(utc("2026-10-25T01:30:00"))
    assert not repeated.contains(utc("2026-10-25T02:00:00"))


def test_local_location_uses_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert parse_location("Local") == ZoneInfo("Asia/Tokyo")
    morning = entry(times=[{"start_time": "09:00", "end_time": "10:00"}], location="Local")
    assert morning.contains(utc("2026-03-02T00:30:00"))
    assert parse_location("UTC") is UTC


def routes(**fields: Any) -> RouteSettings:
    return RouteSettings(
        receiver="r", path="route", repeat_interval=60.0, send_resolved=True, **fields
    )


def intervals() -> TimeIntervals:
    return TimeIntervals.from_config(
        [
            TimeIntervalConfig.model_validate(
                {
                    "name": "dev-nights",
                    "time_intervals": [
                        {
                            "times": [
                                {"start_time": "20:00", "end_time": "24:00"},
                                {"start_time": "00:00", "end_time": "08:00"},
                            ],
                            "location": "Europe/Berlin",
                        }
                    ],
                }
            ),
            TimeIntervalConfig.model_validate(
                {
                    "name": "office",
                    "time_intervals": [
                        {"weekdays": ["monday:friday"], "location": "Europe/Berlin"},
                        {"days_of_month": ["1"], "months": ["january"]},
                    ],
                }
            ),
        ]
    )


def test_contains_checks_any_entry_of_a_named_interval() -> None:
    named = intervals()
    assert named.contains("office", berlin("2026-03-02T12:00:00"))  # a Monday
    assert not named.contains("office", berlin("2026-03-01T12:00:00"))  # a Sunday
    assert named.contains("office", utc("2028-01-01T12:00:00"))  # New Year, a Saturday
    assert named.names == frozenset({"dev-nights", "office"})
    with pytest.raises(KeyError):
        named.contains("nope", utc("2026-01-01T00:00:00"))


def test_mute_intervals_mute_inside_them() -> None:
    named = intervals()
    route = routes(mute_time_intervals=("dev-nights",))
    night = berlin("2026-01-15T23:00:00")
    assert named.muted(route, night)
    assert named.mute_reason(route, night) == "muted by dev-nights"
    assert not named.muted(route, berlin("2026-01-15T12:00:00"))


def test_active_intervals_mute_outside_all_of_them() -> None:
    named = intervals()
    route = routes(active_time_intervals=("office",))
    assert not named.muted(route, berlin("2026-03-02T12:00:00"))
    sunday = berlin("2026-03-01T12:00:00")
    assert named.muted(route, sunday)
    assert named.mute_reason(route, sunday) == "outside active time intervals office"


def test_a_route_without_intervals_is_never_muted() -> None:
    assert not intervals().muted(routes(), berlin("2026-01-15T23:00:00"))


def test_mute_wins_over_active() -> None:
    route = routes(mute_time_intervals=("dev-nights",), active_time_intervals=("office",))
    monday_night = berlin("2026-03-02T22:00:00")
    assert intervals().mute_reason(route, monday_night) == "muted by dev-nights"


@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        (
            {"times": [{"start_time": "8:00", "end_time": "17:00"}]},
            ("times", 0, "start_time"),
            "invalid time '8:00': expected HH:MM from 00:00 to 24:00",
        ),
        (
            {"times": [{"start_time": "08:00", "end_time": "25:00"}]},
            ("times", 0, "end_time"),
            "invalid time '25:00'",
        ),
        (
            {"times": [{"start_time": "08:00", "end_time": "12:60"}]},
            ("times", 0, "end_time"),
            "invalid time '12:60'",
        ),
        (
            {"times": [{"start_time": "24:00", "end_time": "24:00"}]},
            ("times", 0),
            "start_time 24:00 must be before end_time 24:00",
        ),
        (
            {"times": [{"start_time": "09:00", "end_time": "09:00"}]},
            ("times", 0),
            "start_time 09:00 must be before end_time 09:00",
        ),
        (
            {"times": [{"start_time": "22:00", "end_time": "00:00"}]},
            ("times", 0),
            "(write the end of the day as 24:00)",
        ),
        (
            {"times": [{"start_time": "22:00", "end_time": "06:00"}]},
            ("times", 0),
            "(to cross midnight, use two ranges",
        ),
        ({"weekdays": ["funday"]}, ("weekdays", 0), "unknown weekday 'funday'"),
        ({"weekdays": ["monday:funday"]}, ("weekdays", 0), "unknown weekday 'funday'"),
        (
            {"weekdays": ["saturday:sunday"]},
            ("weekdays", 0),
            "weekday range 'saturday:sunday' ends before it starts",
        ),
        (
            {"weekdays": ["monday:tuesday:friday"]},
            ("weekdays", 0),
            "invalid range 'monday:tuesday:friday'",
        ),
        ({"days_of_month": ["0"]}, ("days_of_month", 0), "0 is not a valid day of the month"),
        ({"days_of_month": ["32"]}, ("days_of_month", 0), "32 is not a valid day of the month"),
        ({"days_of_month": ["-32:-1"]}, ("days_of_month", 0), "-32 is not a valid day"),
        ({"days_of_month": ["first"]}, ("days_of_month", 0), "'first' is not a valid day"),
        (
            {"days_of_month": ["-3:2"]},
            ("days_of_month", 0),
            "end day must be negative if start day is",
        ),
        ({"days_of_month": ["5:1"]}, ("days_of_month", 0), "day range '5:1' ends before"),
        ({"days_of_month": ["-1:-3"]}, ("days_of_month", 0), "day range '-1:-3' ends before"),
        ({"months": ["smarch"]}, ("months", 0), "unknown month 'smarch'"),
        ({"months": ["0"]}, ("months", 0), "month 0 is out of range 1..12"),
        ({"months": ["december:january"]}, ("months", 0), "month range 'december:january'"),
        ({"years": ["2027:2026"]}, ("years", 0), "year range '2027:2026' ends before"),
        ({"years": ["0"]}, ("years", 0), "years must be positive"),
        ({"years": ["soon"]}, ("years", 0), "'soon' is not a valid year"),
        ({"location": "Mars/Olympus"}, ("location",), "unknown time zone 'Mars/Olympus'"),
        ({"location": "../../etc/passwd"}, ("location",), "unknown time zone"),
    ],
)
def test_invalid_specs_are_rejected_with_the_field_and_reason(
    fields: dict[str, Any], loc: tuple[str | int, ...], message: str
) -> None:
    [(problem_loc, problem)] = problems(fields)
    assert problem_loc == loc
    assert message in problem


def test_all_problems_of_an_entry_are_reported() -> None:
    fields = {"weekdays": ["funday", "monday"], "months": ["13"], "location": "Nowhere"}
    assert [loc for loc, _ in problems(fields)] == [
        ("weekdays", 0),
        ("months", 0),
        ("location",),
    ]


def test_from_config_compiles_every_named_interval() -> None:
    configs = [
        TimeIntervalConfig.model_validate(
            {"name": "weekends", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}
        ),
        TimeIntervalConfig.model_validate({"name": "never"}),
    ]
    compiled = TimeIntervals.from_config(configs)
    assert compiled.names == {"weekends", "never"}
    assert compiled.contains("weekends", utc("2026-03-01T12:00:00"))  # a Sunday
    assert not compiled.contains("never", utc("2026-03-01T12:00:00"))


def test_numbers_in_yaml_lists_are_accepted_as_their_text() -> None:
    spec = TimeIntervalSpec.model_validate(
        {"days_of_month": [1, -1], "years": [2026], "months": [12]}
    )
    assert (spec.days_of_month, spec.years, spec.months) == (
        [InclusiveRange(1, 1), InclusiveRange(-1, -1)],
        [InclusiveRange(2026, 2026)],
        [InclusiveRange(12, 12)],
    )
    assert entry(days_of_month=[-1]).contains(utc("2026-02-28T00:00:00"))
