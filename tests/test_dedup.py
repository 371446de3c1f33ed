"""Notification-log decisions (router/dedup.py), with a fixed clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from router.model import Event, NflogEntry, Notification, RouteSettings, Status
from router.notify.dedup import (
    NO_HOLDS,
    Decision,
    Holds,
    Reason,
    decide,
    judge_holds,
    merge_events,
)

ROUTE = RouteSettings(receiver="r", path="route", repeat_interval=3600.0, send_resolved=True)
GROUP = 'am/r/{}:{alertname="X"}'
T0 = 1_000_000.0


def ev(fp: str, status: Status = Status.FIRING, *, one_shot: bool = False) -> Event:
    return Event(
        source="alertmanager",
        fingerprint=fp,
        group_key=GROUP,
        status=status,
        labels={"alertname": "X", "fp": fp},
        one_shot=one_shot,
    )


def sent(decision: Decision) -> NflogEntry:
    assert decision.send and decision.entry is not None
    return decision.entry


def test_first_firing_group_is_notified() -> None:
    d = decide(None, GROUP, [ev("a")], ROUTE, T0)
    assert (d.reason, d.send) == (Reason.FIRST, True)
    assert sent(d).firing == {"a"}


def test_same_group_posted_twice_is_a_duplicate() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a")], ROUTE, T0 + 10)
    assert (d.reason, d.send) == (Reason.DUPLICATE, False)


def test_new_alert_in_a_notified_group_is_news() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a"), ev("b")], ROUTE, T0 + 10)
    assert d.reason is Reason.NEW_ALERTS
    assert {e.fingerprint for e in d.firing} == {"a", "b"}


def test_resolve_of_a_notified_alert_is_sent() -> None:
    entry = sent(decide(None, GROUP, [ev("a"), ev("b")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a"), ev("b", Status.RESOLVED)], ROUTE, T0 + 10)
    assert d.reason is Reason.RESOLVED
    assert [e.fingerprint for e in d.resolved] == ["b"]
    assert sent(d).firing == {"a"} and sent(d).resolved == {"b"}


def test_resolve_is_sent_once() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    entry = sent(decide(entry, GROUP, [ev("a", Status.RESOLVED)], ROUTE, T0 + 10))
    d = decide(entry, GROUP, [ev("a", Status.RESOLVED)], ROUTE, T0 + 20)
    assert (d.reason, d.send) == (Reason.DUPLICATE, False)


def test_resolve_never_sent_to_a_receiver_that_never_saw_the_firing() -> None:
    d = decide(None, GROUP, [ev("a", Status.RESOLVED)], ROUTE, T0)
    assert (d.reason, d.send) == (Reason.UNSEEN_RESOLVE, False)


def test_alert_fired_and_resolved_between_notifications_is_not_announced() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a"), ev("z", Status.RESOLVED)], ROUTE, T0 + 10)
    assert (d.reason, d.send) == (Reason.UNSEEN_RESOLVE, False)


def test_still_firing_after_repeat_interval_is_a_reminder() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    assert not decide(entry, GROUP, [ev("a")], ROUTE, T0 + 3599).send
    d = decide(entry, GROUP, [ev("a")], ROUTE, T0 + 3600)
    assert d.reason is Reason.REPEAT


def test_send_resolved_off_updates_the_log_without_sending() -> None:
    route = replace(ROUTE, send_resolved=False)
    entry = sent(decide(None, GROUP, [ev("a")], route, T0))
    d = decide(entry, GROUP, [ev("a", Status.RESOLVED)], route, T0 + 10)
    assert (d.reason, d.send) == (Reason.SEND_RESOLVED_OFF, False)
    assert d.entry is not None and d.entry.firing == frozenset()


def test_muted_firing_is_suppressed_as_muted() -> None:
    d = decide(None, GROUP, [ev("a")], ROUTE, T0, muted=True)
    assert (d.reason, d.send) == (Reason.MUTED, False)


def test_resolve_of_an_earlier_unmuted_firing_is_sent_even_when_muted() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a", Status.RESOLVED)], ROUTE, T0 + 10, muted=True)
    assert d.reason is Reason.RESOLVED and d.send


def test_repeat_reminder_is_muted_inside_a_mute_window() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a")], ROUTE, T0 + 7200, muted=True)
    assert (d.reason, d.send) == (Reason.MUTED, False)


def test_inhibited_new_alert_is_not_announced() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a"), ev("b")], ROUTE, T0 + 10, inhibited=frozenset({"b"}))
    assert (d.reason, d.send) == (Reason.INHIBITED, False)


def test_alert_inhibited_after_it_was_announced_does_not_look_resolved() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a")], ROUTE, T0 + 10, inhibited=frozenset({"a"}))
    assert (d.reason, d.send) == (Reason.DUPLICATE, False)


def test_resolve_of_an_inhibited_alert_is_still_sent() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a", Status.RESOLVED)], ROUTE, T0 + 10, inhibited=frozenset({"a"}))
    assert d.reason is Reason.RESOLVED and d.send


def test_one_shot_event_is_said_once_and_never_repeated() -> None:
    entry = sent(decide(None, GROUP, [ev("d", one_shot=True)], ROUTE, T0))
    assert not decide(entry, GROUP, [ev("d", one_shot=True)], ROUTE, T0 + 10).send
    assert not decide(entry, GROUP, [ev("d", one_shot=True)], ROUTE, T0 + 86400).send


def test_log_entry_outlives_twice_the_repeat_interval() -> None:
    route = replace(ROUTE, repeat_interval=12 * 3600.0)
    entry = sent(decide(None, GROUP, [ev("a")], route, T0))
    assert entry.expires_at >= T0 + 2 * route.repeat_interval


def test_later_webhook_wins_when_batches_are_merged() -> None:
    merged = merge_events([[ev("a"), ev("b")], [ev("a", Status.RESOLVED)]])
    status = {e.fingerprint: e.status for e in merged}
    assert status == {"a": Status.RESOLVED, "b": Status.FIRING}


# -- holds (Argo CD flap damping) ----------------------------------------------------------


def note(at: float, *events: Event, hold: float = 0.0) -> Notification:
    return Notification(
        id=f"n{at}",
        route=ROUTE,
        group_key=GROUP,
        events=list(events),
        created_at=datetime.fromtimestamp(at, UTC),
        not_before=at + hold if hold else 0.0,
    )


def test_claims_without_holds_are_not_judged() -> None:
    assert judge_holds([note(T0, ev("a"))], T0) is NO_HOLDS


def test_a_problem_within_its_hold_goes_back_until_the_hold_ends() -> None:
    holds = judge_holds([note(T0, ev("a"), hold=60)], T0 + 10)
    assert holds.until == T0 + 60


def test_a_problem_past_its_hold_is_told_and_says_how_long_it_waited() -> None:
    holds = judge_holds([note(T0, ev("a"), hold=60)], T0 + 60)
    assert (holds.until, holds.flapped, holds.held_for) == (None, frozenset(), 60.0)


def test_a_recovery_within_the_hold_is_a_flap() -> None:
    claim = [note(T0, ev("a"), hold=60), note(T0 + 20, ev("a", Status.RESOLVED))]
    holds = judge_holds(claim, T0 + 20)
    assert holds.until is None and holds.flapped == {"a"}
    d = decide(
        None, GROUP, merge_events([n.events for n in claim]), ROUTE, T0 + 20, flapped=frozenset("a")
    )
    assert (d.reason, d.send) == (Reason.FLAPPED, False)


def test_a_recovery_after_the_hold_ended_is_no_flap() -> None:
    claim = [note(T0, ev("a"), hold=60), note(T0 + 61, ev("a", Status.RESOLVED))]
    assert judge_holds(claim, T0 + 61).flapped == frozenset()


def test_a_problem_back_after_a_flap_waits_out_its_own_hold() -> None:
    claim = [
        note(T0, ev("a"), hold=60),
        note(T0 + 10, ev("a", Status.RESOLVED)),
        note(T0 + 20, ev("a"), hold=60),
    ]
    assert judge_holds(claim, T0 + 25).until == T0 + 80
    # Once that hold is over it is firing again, not flapped.
    assert judge_holds(claim, T0 + 80) == Holds(held_for=60.0)


def test_a_problem_still_firing_keeps_the_hold_it_began_with() -> None:
    # The first hold ended (its delivery is being retried) when Argo CD says it again.
    claim = [note(T0, ev("a"), hold=60), note(T0 + 90, ev("a"), hold=60)]
    assert judge_holds(claim, T0 + 95).until is None


def test_the_receiver_told_of_a_problem_always_hears_it_recovered() -> None:
    entry = sent(decide(None, GROUP, [ev("a")], ROUTE, T0))
    d = decide(entry, GROUP, [ev("a", Status.RESOLVED)], ROUTE, T0 + 10, flapped=frozenset("a"))
    assert (d.reason, d.send) == (Reason.RESOLVED, True)
