"""The notify stages one by one, their composition (as Alertmanager's notify_test.go builds
pipelines from StageFunc literals), and the Deliverer carrying out each verdict."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from router.channels.base import DeliveryError
from router.config.heartbeats import BEAT_DETAIL, BEAT_GROUP_PREFIX
from router.metrics import Metrics
from router.model import (
    AlertState,
    Claim,
    DeliveryState,
    Event,
    GroupActions,
    NflogEntry,
    Notification,
    Outcome,
    RouteSettings,
    Status,
)
from router.notify.beats import BeatStage
from router.notify.dedup import Reason, decide
from router.notify.firing import FiringAlerts
from router.notify.pacing import Pacer
from router.notify.stages import (
    UNSCREENED,
    Addressed,
    AddressStage,
    DedupStage,
    Draft,
    Failed,
    Held,
    InhibitStage,
    Job,
    Judged,
    MultiStage,
    MuteStage,
    NotifyStage,
    Pipeline,
    Receipt,
    RenderStage,
    Screening,
    Sent,
    SetNotifiesStage,
    Stage,
    Suppressed,
    Verdict,
    pipe,
    start_job,
)
from router.notify.worker import Deliverer
from router.render.message import Message
from router.runtime import Runtime
from router.store.sqlite import SQLiteStore
from tests.helpers import config_from, until

DAY = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # 15:00 in Berlin
NIGHT = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
GROUP = '{}:{alertname="HighLatency"}'

CONFIG = """
receivers:
  - name: hook
    webhook: {url: 'http://127.0.0.1:9/hook'}
route:
  receiver: hook
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "20:00", end_time: "24:00"}, {start_time: "00:00", end_time: "08:00"}]
        location: Europe/Berlin
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
"""


@pytest.fixture
async def runtime(pool: aiohttp.ClientSession) -> AsyncIterator[Runtime]:
    built = Runtime.build(config_from(CONFIG), http=pool)
    yield built
    await built.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "state.db"))
    await s.open()
    yield s
    await s.close()


def route(mute_time_intervals: tuple[str, ...] = ()) -> RouteSettings:
    return RouteSettings(
        receiver="hook",
        path="root",
        repeat_interval=3600.0,
        send_resolved=True,
        mute_time_intervals=mute_time_intervals,
    )


def event(
    fp: str,
    status: Status = Status.FIRING,
    *,
    severity: str = "warning",
    group_key: str = GROUP,
    details: Mapping[str, str] | None = None,
) -> Event:
    return Event(
        source="alertmanager",
        fingerprint=fp,
        group_key=group_key,
        status=status,
        labels={"alertname": "HighLatency", "severity": severity},
        details=details or {},
    )


def notification(
    nid: str,
    *events: Event,
    at: datetime = DAY,
    settings: RouteSettings | None = None,
    not_before: float = 0.0,
) -> Notification:
    return Notification(
        id=nid,
        route=settings or route(),
        group_key=events[0].group_key,
        events=list(events),
        created_at=at,
        not_before=not_before,
    )


def job(runtime: Runtime, *notifications: Notification, at: datetime = DAY) -> Job:
    claim = Claim("hook", notifications[0].group_key, list(notifications), 0, "token")
    return start_job(claim, runtime, at.timestamp())


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"alert_router_{name}", labels) or 0.0


def kinds(j: Job) -> list[str]:
    return [e.kind for e in j.timeline]


async def judged(runtime: Runtime, store: SQLiteStore, *events: Event) -> tuple[Job, Judged]:
    j = job(runtime, notification("n1", *events))
    decided = await DedupStage(store)(j, UNSCREENED)
    assert isinstance(decided, Judged)
    return j, decided


class FakeChannel:
    """A channel that answers with `state`, or fails with `error`; records what it sent."""

    integration = "webhook"

    def __init__(self, error: DeliveryError | None = None) -> None:
        self.error = error
        self.sent: list[tuple[Message, Mapping[str, str]]] = []

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        self.sent.append((message, prior))
        if self.error is not None:
            raise self.error
        return {"status": "200"}

    async def close(self) -> None:
        pass


# Composition, with stages written as plain functions.


async def test_multi_stage_hands_each_stage_what_the_one_before_returned(
    runtime: Runtime,
) -> None:
    async def add(job: Job, given: tuple[str, ...], /) -> tuple[str, ...]:
        return (*given, f"stage{len(given)}")

    out = await MultiStage(add, add, add)(job(runtime, notification("n1", event("a"))), ())
    assert out == ("stage0", "stage1", "stage2")


async def test_multi_stage_stops_at_the_first_verdict(runtime: Runtime) -> None:
    called: list[str] = []

    async def passes(job: Job, given: int, /) -> int:
        called.append("passes")
        return given + 1

    async def suppresses(job: Job, given: int, /) -> int | Verdict:
        called.append("suppresses")
        return Suppressed("duplicate")

    async def never(job: Job, given: int, /) -> int:
        called.append("never")
        return given

    out = await MultiStage(passes, suppresses, never)(
        job(runtime, notification("n1", event("a"))), 0
    )
    assert out == Suppressed("duplicate")
    assert called == ["passes", "suppresses"]


async def test_pipe_passes_each_stage_output_on_to_a_stage_of_the_next_kind(
    runtime: Runtime,
) -> None:
    async def count(job: Job, given: str, /) -> int:
        return len(given)

    async def double(job: Job, given: int, /) -> list[int]:
        return [given, given]

    async def total(job: Job, given: list[int], /) -> float:
        return sum(given) / 2

    out = await pipe(count, double, total)(job(runtime, notification("n1", event("a"))), "abc")
    assert out == 3.0


async def test_pipe_ends_at_a_verdict_and_keeps_the_notes_made_so_far(runtime: Runtime) -> None:
    async def holds(job: Job, given: str, /) -> int | Verdict:
        job.note("held", "held for a test")
        return Held(123.0, "test")

    async def unreachable(job: Job, given: int, /) -> str:
        raise AssertionError("a verdict ends the run")

    j = job(runtime, notification("n1", event("a")))
    assert await pipe(holds, unreachable)(j, "x") == Held(123.0, "test")
    assert kinds(j) == ["held"]


# Each stage on its own.


async def test_beat_stage_suppresses_a_claim_of_beats_only(runtime: Runtime) -> None:
    beat = event("b", group_key=BEAT_GROUP_PREFIX + "watchdog", details={BEAT_DETAIL: "watchdog"})
    j = job(runtime, notification("n1", beat))
    assert await BeatStage()(j, UNSCREENED) == Suppressed("beat")
    assert [e.text for e in j.timeline] == ["beat of heartbeat watchdog: recorded, never notified"]


async def test_beat_stage_passes_an_ordinary_alert_on(runtime: Runtime) -> None:
    j = job(runtime, notification("n1", event("a")))
    assert await BeatStage()(j, UNSCREENED) is UNSCREENED
    assert j.timeline == []


async def test_mute_stage_mutes_inside_the_route_s_mute_interval(runtime: Runtime) -> None:
    muted = route(mute_time_intervals=("nights",))
    night = job(runtime, notification("n1", event("a"), settings=muted), at=NIGHT)
    assert await MuteStage()(night, UNSCREENED) == Screening(muted=True)
    assert kinds(night) == ["muted"]
    day = job(runtime, notification("n1", event("a"), settings=muted), at=DAY)
    assert await MuteStage()(day, UNSCREENED) == Screening(muted=False)
    assert day.timeline == []


async def test_inhibit_stage_names_the_warnings_a_firing_critical_inhibits(
    runtime: Runtime, store: SQLiteStore
) -> None:
    critical = {"alertname": "HighLatency", "severity": "critical"}
    source = AlertState("c1", critical, True, DAY.timestamp() + 3600)
    await store.record([notification("c", event("c1", severity="critical"))], alerts=[source])
    j = job(runtime, notification("n1", event("w1"), event("w2")))
    screened = await InhibitStage(FiringAlerts(store))(j, Screening(muted=True))
    assert screened == Screening(muted=True, inhibited=frozenset({"w1", "w2"}))
    assert kinds(j) == ["inhibited", "inhibited"]


async def test_dedup_stage_judges_a_first_firing_worth_telling(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, decided = await judged(runtime, store, event("a"))
    assert decided.decision.reason is Reason.FIRST
    assert decided.told.firing == {"a"}
    assert decided.previous is None
    assert kinds(j) == ["deduplicated"]


async def test_dedup_stage_suppresses_a_duplicate_and_leaves_its_claim_to_the_deliverer(
    runtime: Runtime, store: SQLiteStore
) -> None:
    await store.record([notification("n0", event("a"))])
    (first,) = await store.claim(DAY.timestamp(), 10)
    told = NflogEntry("hook", GROUP, frozenset({"a"}), frozenset(), 0.0, DAY.timestamp(), 1e12)
    await store.complete(first, Outcome(DeliveryState.SENT, "first", nflog=told), 0.0)
    await store.record([notification("n1", event("a"), at=datetime.now(UTC))])
    (again,) = await store.claim(DAY.timestamp(), 10)
    j = start_job(again, runtime, DAY.timestamp())
    assert await DedupStage(store)(j, UNSCREENED) == Suppressed("duplicate")
    assert kinds(j) == ["deduplicated", "suppressed"]
    record = await store.get_notification("n1")
    assert record is not None and record.state == "pending"


async def test_dedup_stage_holds_a_claim_whose_problem_is_still_within_its_hold(
    runtime: Runtime, store: SQLiteStore
) -> None:
    until_ = DAY.timestamp() + 60
    j = job(runtime, notification("n1", event("a"), not_before=until_))
    assert await DedupStage(store)(j, UNSCREENED) == Held(until_, "argocd.hold")
    assert [e.text for e in j.timeline] == ["held until 2026-11-26T14:01:00Z (argocd.hold)"]


async def test_render_stage_says_how_long_a_problem_was_held(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, decided = await judged(runtime, store, event("a"))
    held = Judged(decided.decision, decided.told, None, None, held_for=60.0)
    draft = await RenderStage()(j, held)
    assert draft.judged is held
    assert draft.message.notification_id == "n1"
    assert any("Held 1m in case it recovered by itself" in n for n in draft.message.notes)


async def test_address_stage_finds_the_receiver_s_channel(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, decided = await judged(runtime, store, event("a"))
    draft = await RenderStage()(j, decided)
    assert await AddressStage()(j, draft) == Addressed(draft, runtime.channels["hook"])


async def test_address_stage_fails_a_receiver_removed_by_a_reload(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, decided = await judged(runtime, store, event("a"))
    draft = await RenderStage()(j, decided)
    removed = Claim("gone", GROUP, j.claim.notifications, 0, "token")
    verdict = await AddressStage()(start_job(removed, runtime, DAY.timestamp()), draft)
    assert isinstance(verdict, Failed)
    assert (verdict.error.reason, verdict.error.retryable) == ("receiver_removed", False)
    assert verdict.attempted is False


async def test_notify_stage_turns_a_channel_error_into_a_failed_attempt(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, decided = await judged(runtime, store, event("a"))
    draft = await RenderStage()(j, decided)
    metrics = Metrics()
    error = DeliveryError("connection", "refused", retryable=True)
    stage = NotifyStage(Pacer(store), metrics)
    verdict = await stage(j, Addressed(draft, FakeChannel(error)))
    assert verdict == Failed(error, attempted=True)
    assert counted(metrics, "notifications_total", receiver="hook", integration="webhook") == 1


async def test_notify_stage_passes_the_channel_receipt_on(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, decided = await judged(runtime, store, event("a"))
    draft = await RenderStage()(j, decided)
    channel = FakeChannel()
    receipt = await NotifyStage(Pacer(store), Metrics())(j, Addressed(draft, channel))
    assert receipt == Receipt(decided, "webhook", {"status": "200"})
    assert [m.notification_id for m, _ in channel.sent] == ["n1"]


async def test_set_notifies_stage_makes_the_receipt_the_log_s_new_entry(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, decided = await judged(runtime, store, event("a"))
    sent = await SetNotifiesStage(store)(j, Receipt(decided, "webhook", {"status": "200"}))
    assert sent.outcome.state is DeliveryState.SENT
    assert sent.outcome.reason == "first"
    assert sent.outcome.nflog is not None
    assert sent.outcome.nflog.channel_state == {"status": "200"}
    assert sent.outcome.nflog.firing == decided.told.firing
    assert (sent.integration, sent.alerts, sent.clears) == ("webhook", 1, None)
    assert [e.text for e in j.timeline][-1] == "sent by webhook, HTTP 200 at attempt 1"


async def test_set_notifies_stage_ends_the_acknowledgement_with_the_resolve(
    runtime: Runtime, store: SQLiteStore
) -> None:
    j, fired = await judged(runtime, store, event("a"))
    acked = GroupActions("hook", GROUP, acked_by="U1", acked_at=1.0)
    still_firing = Judged(fired.decision, fired.told, None, acked, 0.0)
    sent = await SetNotifiesStage(store)(j, Receipt(still_firing, "webhook", {}))
    assert sent.clears is None
    over = decide(fired.told, GROUP, [event("a", Status.RESOLVED)], route(), DAY.timestamp())
    assert over.reason is Reason.RESOLVED and over.entry is not None
    resolved = Judged(over, over.entry, fired.told, acked, 0.0)
    sent = await SetNotifiesStage(store)(j, Receipt(resolved, "webhook", {}))
    assert sent.clears is acked


# The Deliverer carries out what the stages decided.


def deliverer(
    store: SQLiteStore, runtime: Runtime, metrics: Metrics, prepare: Stage[Screening, Addressed]
) -> Deliverer:
    async def never(job: Job, given: Addressed, /) -> Sent:
        raise AssertionError("no channel is tried")

    return Deliverer(
        store,
        lambda: runtime,
        metrics,
        workers=2,
        dead_after=3600.0,
        pacer=Pacer(store),
        pipeline=Pipeline(prepare=prepare, attempt=never),
    )


async def run_until(d: Deliverer, check: Callable[[], Awaitable[bool]]) -> None:
    task = asyncio.create_task(d.run())
    try:
        await until(check)
    finally:
        await d.stop(grace=1.0)
        await task


async def test_a_suppressed_verdict_completes_the_claim_with_the_noted_timeline(
    runtime: Runtime, store: SQLiteStore
) -> None:
    async def suppress(job: Job, given: Screening, /) -> Suppressed:
        job.note("deduplicated", "decided by a test")
        return Suppressed("duplicate")

    metrics = Metrics()
    await store.record([notification("n1", event("a"), at=datetime.now(UTC))])

    async def ended() -> bool:
        record = await store.get_notification("n1")
        return record is not None and record.state == "suppressed"

    await run_until(deliverer(store, runtime, metrics, suppress), ended)
    record = await store.get_notification("n1")
    assert record is not None and (record.reason, record.attempts) == ("duplicate", 0)
    texts = [e.text for e in await store.timeline("n1")]
    assert texts[-1] == "decided by a test"
    suppressed = counted(
        metrics, "notifications_suppressed_total", receiver="hook", reason="duplicate"
    )
    assert suppressed == 1


async def test_a_held_verdict_gives_the_claim_back_unattempted_until_the_hold_ends(
    runtime: Runtime, store: SQLiteStore
) -> None:
    # The store leases by the wall clock: the hold is in its future.
    later = time.time() + 300

    async def hold(job: Job, given: Screening, /) -> Held:
        job.note("held", "held by a test")
        return Held(later, "test")

    await store.record([notification("n1", event("a"), at=datetime.now(UTC))])

    async def given_back() -> bool:
        return "held" in [e.kind for e in await store.timeline("n1")]

    await run_until(deliverer(store, runtime, Metrics(), hold), given_back)
    record = await store.get_notification("n1")
    assert record is not None and (record.state, record.attempts) == ("pending", 0)
    assert await store.claim(later - 1, 10) == []
    (again,) = await store.claim(later, 10)
    assert (again.ids, again.attempts) == (["n1"], 0)


async def test_a_failed_verdict_before_the_channel_counts_one_attempt_and_retries(
    runtime: Runtime, store: SQLiteStore
) -> None:
    error = DeliveryError("team_config_failed", "a test", retryable=True)

    async def fail(job: Job, given: Screening, /) -> Failed:
        return Failed(error, attempted=False)

    metrics = Metrics()
    await store.record([notification("n1", event("a"), at=datetime.now(UTC))])

    async def retried() -> bool:
        record = await store.get_notification("n1")
        return record is not None and record.attempts == 1

    await run_until(deliverer(store, runtime, metrics, fail), retried)
    record = await store.get_notification("n1")
    assert record is not None and record.state == "pending"
    assert record.last_error == str(error)
    assert [e.kind for e in await store.timeline("n1")][-1] == "attempt"
    assert counted(metrics, "notifications_total", receiver="hook", integration="webhook") == 1
    failed = {"receiver": "hook", "integration": "webhook", "reason": "team_config_failed"}
    assert counted(metrics, "notifications_failed_total", **failed) == 1


async def test_a_crash_after_the_channel_was_tried_counts_that_one_attempt_and_retries(
    runtime: Runtime, store: SQLiteStore
) -> None:
    channel = FakeChannel()

    async def to_fake(job: Job, given: Draft, /) -> Addressed:
        return Addressed(given, channel)

    async def crash(job: Job, given: Receipt, /) -> Sent:
        raise RuntimeError("a bug after the send")

    metrics = Metrics()
    pacer = Pacer(store)
    d = Deliverer(
        store,
        lambda: runtime,
        metrics,
        workers=2,
        dead_after=3600.0,
        pacer=pacer,
        pipeline=Pipeline(
            prepare=pipe(DedupStage(store), RenderStage(), to_fake),
            attempt=pipe(NotifyStage(pacer, metrics), crash),
        ),
    )
    await store.record([notification("n1", event("a"), at=datetime.now(UTC))])

    async def retried() -> bool:
        record = await store.get_notification("n1")
        return record is not None and record.attempts == 1

    await run_until(d, retried)
    record = await store.get_notification("n1")
    assert record is not None and record.last_error == "internal: RuntimeError"
    assert len(channel.sent) == 1
    assert counted(metrics, "notifications_total", receiver="hook", integration="webhook") == 1
    failed = {"receiver": "hook", "integration": "webhook", "reason": "internal"}
    assert counted(metrics, "notifications_failed_total", **failed) == 1
