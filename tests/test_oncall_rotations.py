"""Who is on call, across DST changes and overrides that overlap a handoff."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.schedules.rotations import (
    Member,
    Override,
    Rotation,
    RotationKind,
    member_at,
    on_call,
    parse_handoff,
    parse_zone,
)

A, B, C = Member("Alice", "U1", "a@x"), Member("Bob", "U2", "b@x"), Member("Carol", "U3", "c@x")


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def rotation(
    zone: str,
    kind: RotationKind,
    handoff: str,
    start: date,
    members: tuple[Member, ...] = (A, B),
) -> Rotation:
    return Rotation("sre", parse_zone(zone), kind, parse_handoff(kind, handoff), start, members)


def test_weekly_handoff_keeps_local_time_when_berlin_springs_forward() -> None:
    r = rotation("Europe/Berlin", "weekly", "mon 09:00", date(2027, 3, 15))
    # 09:00 CET is 08:00 UTC; after 2027-03-28 09:00 CEST is 07:00 UTC.
    assert member_at(r, utc("2027-03-15T08:00:00"))[0] == A
    assert member_at(r, utc("2027-03-22T07:59:59"))[0] == A
    assert member_at(r, utc("2027-03-22T08:00:00"))[0] == B
    assert member_at(r, utc("2027-03-29T06:59:59"))[0] == B
    assert member_at(r, utc("2027-03-29T07:00:00"))[0] == A
    now = on_call(r, utc("2027-03-28T12:00:00"))
    assert (now.member, now.next_member) == (B, A)
    assert now.since == utc("2027-03-22T08:00:00")
    assert now.until == utc("2027-03-29T07:00:00")


def test_weekly_handoff_keeps_local_time_when_berlin_falls_back() -> None:
    r = rotation("Europe/Berlin", "weekly", "mon 09:00", date(2026, 10, 19))
    now = on_call(r, utc("2026-10-25T12:00:00"))
    # Shift 0 starts at 09:00 CEST (07:00 UTC), the next at 09:00 CET (08:00 UTC).
    assert now.member == A
    assert now.since == utc("2026-10-19T07:00:00")
    assert now.until == utc("2026-10-26T08:00:00")
    assert member_at(r, utc("2026-10-26T07:30:00"))[0] == A


def test_daily_handoff_in_new_york_across_fall_back() -> None:
    r = rotation("America/New_York", "daily", "09:00", date(2026, 10, 30), (A, B, C))
    # 09:00 EDT is 13:00 UTC; from 2026-11-01 09:00 EST is 14:00 UTC.
    assert member_at(r, utc("2026-10-31T13:00:00"))[0] == B
    assert member_at(r, utc("2026-11-01T13:30:00"))[0] == B
    assert member_at(r, utc("2026-11-01T14:00:00"))[0] == C
    shift = on_call(r, utc("2026-11-01T10:00:00"))
    # The shift across the change lasts 25 hours.
    assert shift.until - shift.since == 25 * 3600


def test_daily_handoff_in_new_york_across_spring_forward() -> None:
    r = rotation("America/New_York", "daily", "09:00", date(2027, 3, 13), (A, B))
    shift = on_call(r, utc("2027-03-13T20:00:00"))
    assert shift.member == A
    assert shift.since == utc("2027-03-13T14:00:00")
    assert shift.until == utc("2027-03-14T13:00:00")
    assert member_at(r, utc("2027-03-14T13:00:00"))[0] == B


def test_handoff_in_a_dst_gap_happens_an_hour_later_on_the_new_clock() -> None:
    # 02:30 does not exist in Berlin on 2027-03-28: the handoff is at 03:30 CEST.
    r = rotation("Europe/Berlin", "daily", "02:30", date(2027, 3, 27), (A, B))
    assert member_at(r, utc("2027-03-28T01:29:59"))[0] == A
    assert member_at(r, utc("2027-03-28T01:30:00"))[0] == B
    # Back on 02:30 CEST the next day: a 23-hour shift.
    shift = on_call(r, utc("2027-03-28T12:00:00"))
    assert shift.until == utc("2027-03-29T00:30:00")


def test_first_member_starts_at_the_first_handoff_on_or_after_start() -> None:
    # 2026-12-09 is a Wednesday: the first Monday 09:00 is 2026-12-14.
    r = rotation("Europe/Berlin", "weekly", "mon 09:00", date(2026, 12, 9))
    assert member_at(r, utc("2026-12-14T08:00:00"))[0] == A
    # Before it, the rotation runs backwards: someone is always named.
    assert member_at(r, utc("2026-12-13T08:00:00"))[0] == B


def test_override_overlapping_a_handoff_wins_then_hands_back() -> None:
    r = rotation("Europe/Berlin", "weekly", "mon 09:00", date(2027, 1, 4), (A, B, C))
    handoff = utc("2027-01-11T08:00:00")  # Alice -> Bob
    cover = Override("o1", "sre", "Carol", handoff - 3 * 3600, handoff + 3 * 3600, "ana", 1.0)
    before = on_call(r, handoff - 4 * 3600, [cover])
    assert before.member == A
    assert (before.until, before.next_member) == (handoff - 3 * 3600, C)
    during = on_call(r, handoff + 3600, [cover])
    assert (during.member, during.override) == (C, cover)
    assert (during.since, during.until, during.next_member) == (
        handoff - 3 * 3600,
        handoff + 3 * 3600,
        B,
    )
    after = on_call(r, handoff + 3 * 3600, [cover])
    assert after.member == B and after.override is None
    assert after.since == handoff + 3 * 3600


def test_override_extending_the_current_person_moves_the_handoff() -> None:
    r = rotation("Europe/Berlin", "weekly", "mon 09:00", date(2027, 1, 4), (A, B))
    handoff = utc("2027-01-11T08:00:00")
    stay = Override("o1", "sre", "Alice", handoff - 3600, handoff + 7200, "ana", 1.0)
    now = on_call(r, handoff - 7200, [stay])
    assert now.member == A
    assert (now.until, now.next_member) == (handoff + 7200, B)


def test_of_overlapping_overrides_the_newest_wins() -> None:
    r = rotation("Europe/Berlin", "daily", "09:00", date(2027, 1, 4), (A, B, C))
    at = utc("2027-01-05T12:00:00")
    old = Override("o1", "sre", "Bob", at - 3600, at + 3600, "ana", 10.0)
    new = Override("o2", "sre", "Carol", at - 1800, at + 1800, "ben", 20.0)
    assert member_at(r, at, [old, new]) == (C, new)
    assert member_at(r, at + 1800, [old, new]) == (B, old)
    assert on_call(r, at, [new, old]).until == at + 1800


def test_override_of_someone_not_in_the_rotation_or_of_another_rotation_is_ignored() -> None:
    r = rotation("Europe/Berlin", "daily", "09:00", date(2027, 1, 4), (A, B))
    at = utc("2027-01-04T12:00:00")
    stranger = Override("o1", "sre", "Mallory", at - 10, at + 10)
    elsewhere = Override("o2", "dba", "Bob", at - 10, at + 10)
    assert member_at(r, at, [stranger, elsewhere]) == (A, None)


def test_single_member_rotation_names_the_next_scheduled_handoff() -> None:
    r = rotation("UTC", "daily", "09:00", date(2027, 1, 4), (A,))
    now = on_call(r, utc("2027-01-04T12:00:00"))
    assert (now.member, now.next_member) == (A, A)
    assert now.until == utc("2027-01-05T09:00:00")


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("weekly", "09:00", "needs a weekday"),
        ("weekly", "mo 09:00", "expected"),
        ("weekly", "mon 24:00", "no such time"),
        ("daily", "mon 09:00", "every day"),
        ("daily", "9h", "expected"),
    ],
)
def test_bad_handoffs_say_what_is_expected(kind: str, text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_handoff(kind, text)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="IANA"):
        parse_zone("Europe/Atlantis")
    assert parse_handoff("weekly", "Sun 18:30").weekday == 6


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
    kind=st.sampled_from(["weekly", "daily"]),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 30]),
    offset=st.integers(0, 3 * 365 * 86400),
    cover=st.lists(st.tuples(st.integers(-86400, 86400), st.integers(1, 3 * 86400)), max_size=3),
)
def test_a_shift_holds_its_person_from_since_until_the_next_handoff(
    zone: str,
    kind: RotationKind,
    hour: int,
    minute: int,
    offset: int,
    cover: list[tuple[int, int]],
) -> None:
    handoff = f"{'sun ' if kind == 'weekly' else ''}{hour:02d}:{minute:02d}"
    r = rotation(zone, kind, handoff, date(2026, 1, 1), (A, B, C))
    at = utc("2026-01-01T00:00:00") + offset
    overrides = [
        Override(f"o{i}", "sre", (A, B, C)[i % 3].name, at + s, at + s + n, "ana", float(i))
        for i, (s, n) in enumerate(cover)
    ]
    now = on_call(r, at, overrides)
    assert now.since <= at < now.until
    assert member_at(r, now.since, overrides)[0] == now.member
    assert member_at(r, now.until - 0.001, overrides)[0] == now.member
    assert member_at(r, now.until, overrides)[0] == now.next_member != now.member
    assert member_at(r, now.since - 0.001, overrides)[0] != now.member
