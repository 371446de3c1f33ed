"""The delivery worker: claims due groups from the store and runs the notify pipeline.

It alone ends claims: the stages return a verdict (held, suppressed, sent, failed) and
the worker releases or completes the claim from it, with the timeline the stages noted.
It is the retry stage of the pipeline: a transient failure gives the claim back to the
store with a backoff, so retries survive restarts and never block a worker; a permanent
failure, or one that outlives `state.dead_after`, is recorded and counted, never dropped.

It also keeps its claims: every `state.lease_renew` it renews the lease of every claim it
works on (running, waiting on a slow channel, or parked behind a channel's pace or a
Retry-After), in one store call, so only a dead worker's claims run out and are taken over.
A delivery whose claim the store no longer counts as this worker's is stopped, so it does
not send what the new holder sends: one taken over (the renewal says so), or one whose
lease could run out before the next renewal while the store does not answer. What it may
have sent already is sent again by the next holder: delivery is at least once, never lost.
Recording how a delivery ended is tried again through an outage shorter than the lease (a
Redis failover), so a message sent during one is not sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from router.cancel import cancel_and_wait
from router.channels.base import DeliveryError
from router.durations import format_duration
from router.enrich.deploys import DeployCorrelator
from router.metrics import Metrics
from router.model import (
    AlertState,
    Claim,
    DeliveryState,
    Deploy,
    GroupActions,
    Notification,
    Outcome,
    TimelineEntry,
)
from router.notify.beats import BeatStage
from router.notify.firing import FiringAlerts
from router.notify.health import DeliveryHealth
from router.notify.pacing import Pacer
from router.notify.retry import backoff
from router.notify.stages import (
    UNSCREENED,
    VERDICTS,
    AddressStage,
    ChatLinksStage,
    DedupStage,
    EnrichStage,
    Failed,
    Held,
    InhibitStage,
    Job,
    MultiStage,
    MuteStage,
    NotifyStage,
    Pipeline,
    RenderStage,
    Sent,
    SetNotifiesStage,
    Suppressed,
    Verdict,
    pipe,
    start_job,
)
from router.runtime import Runtime
from router.store.protocols import (
    DEFAULT_LEASE,
    DEFAULT_LEASE_RENEW,
    ActionQueue,
    Outbox,
    Store,
    StoreUnavailable,
    exported_outbox_depth,
)

log = logging.getLogger(__name__)
# The "notification sent" line keeps the logger it was written under when the last stage
# ended claims: log pipelines select it by name.
sent_log = logging.getLogger("router.notify.stages")

IDLE_POLL = 1.0
MAINTENANCE_EVERY = 60.0
# Upper bound on jobs held in memory at once, parked ones included.
MAX_INFLIGHT = 20_000


# Pauses between tries of recording how a claim ended while the store does not answer.
RECORD_RETRY_FIRST = 0.25
RECORD_RETRY_MAX = 2.0


class PatientOutbox:
    """The outbox as finishing a claim needs it: recording how it ended (complete, release)
    is tried again through a brief store outage, such as a Redis failover, for up to
    `patience` seconds. What was sent would otherwise be sent again once its lease runs
    out; trying again is harmless, as a claim ends once. The worker's lease fence still
    stops the delivery if its lease could run out meanwhile."""

    def __init__(self, store: Outbox, patience: float) -> None:
        self._store = store
        self.patience = patience

    async def _patiently(self, write: Callable[[], Awaitable[None]]) -> None:
        deadline = time.monotonic() + self.patience
        pause = RECORD_RETRY_FIRST
        while True:
            try:
                await write()
                return
            except StoreUnavailable:
                if time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECORD_RETRY_MAX)

    async def complete(
        self,
        claim: Claim,
        outcome: Outcome,
        now: float,
        *,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        await self._patiently(lambda: self._store.complete(claim, outcome, now, timeline=timeline))

    async def release(
        self,
        claim: Claim,
        next_attempt_at: float,
        error: str,
        now: float,
        *,
        attempted: bool = True,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        await self._patiently(
            lambda: self._store.release(
                claim, next_attempt_at, error, now, attempted=attempted, timeline=timeline
            )
        )

    # The rest is the store's, unchanged.

    async def record(
        self,
        notifications: Sequence[Notification],
        *,
        alerts: Sequence[AlertState] = (),
        deploys: Sequence[Deploy] = (),
    ) -> None:
        await self._store.record(notifications, alerts=alerts, deploys=deploys)

    async def claim(self, now: float, limit: int) -> list[Claim]:
        return await self._store.claim(now, limit)

    async def renew(self, claims: Sequence[Claim], now: float) -> set[str]:
        return await self._store.renew(claims, now)

    async def pending_count(self) -> int:
        return await self._store.pending_count()

    async def next_due(self) -> float | None:
        return await self._store.next_due()


def default_pipeline(
    store: Store,
    outbox: Outbox,
    metrics: Metrics,
    pacer: Pacer,
    firing: FiringAlerts,
) -> Pipeline:
    """beat (heartbeats end here, never notified) -> mute -> inhibit -> dedup -> render ->
    enrich -> chat links -> address, then notify -> set notifies: Alertmanager's order,
    with enrichment after dedup so duplicates cost no Loki query."""
    return Pipeline(
        prepare=pipe(
            MultiStage(BeatStage(), MuteStage(), InhibitStage(firing)),
            DedupStage(store, store),
            RenderStage(),
            MultiStage(EnrichStage(DeployCorrelator(store)), ChatLinksStage(store)),
            AddressStage(),
        ),
        attempt=pipe(NotifyStage(pacer, metrics), SetNotifiesStage(outbox, store)),
    )


# How many claims record their end at once. A digest ends hundreds of jobs in the same
# instant; written all together they would exhaust the store's connection pool.
RECORD_WRITES = 32


@dataclass
class _Held:
    """A claim being delivered, and until when the store holds it for this worker."""

    claim: Claim
    until: float


class Deliverer:
    """Runs up to `workers` claims at once until stopped, renewing their leases; `pipeline`
    decides each claim (default: `default_pipeline`)."""

    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        metrics: Metrics,
        *,
        workers: int,
        dead_after: float,
        pacer: Pacer,
        lease: float = DEFAULT_LEASE,
        lease_renew: float = DEFAULT_LEASE_RENEW,
        clock: Callable[[], float] = time.time,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.metrics = metrics
        self.workers = workers
        self.dead_after = dead_after
        self.lease = lease
        self.lease_renew = lease_renew
        self.clock = clock
        self.pacer = pacer
        self.firing = FiringAlerts(store)
        self.health = DeliveryHealth()
        # A store outage shorter than a lease does not make a sent message go out again.
        self.outbox = PatientOutbox(store, patience=lease)
        self.pipeline = pipeline or default_pipeline(
            store, self.outbox, metrics, self.pacer, self.firing
        )
        self._writes = asyncio.Semaphore(RECORD_WRITES)
        self._wake = asyncio.Event()
        self._stopping = False
        # Every delivery running, and the claim it holds.
        self._inflight: dict[asyncio.Task[None], _Held] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._capacity = asyncio.Event()
        self.pacer.on_park = self._capacity.set
        self._last_maintenance = 0.0
        self._paused = False

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._capacity.set()

    @property
    def started(self) -> bool:
        """Whether it delivers: started on an open store, and not stopping."""
        return self._renewer is not None and not self._stopping

    @property
    def in_flight(self) -> int:
        """Deliveries running right now, those waiting for their channel's turn included."""
        return len(self._inflight)

    def wake(self) -> None:
        """New work was recorded: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until `stop()`; store outages are waited out."""
        if self._stopping:
            return
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._keep_leases(), name="lease-renewal")
        while not self._stopping:
            # Jobs parked behind a channel's rate limit hold no worker: the other
            # receivers keep flowing while one Slack channel digests its storm.
            busy = len(self._inflight) - self.pacer.parked
            free = min(self.workers - busy, MAX_INFLIGHT - len(self._inflight))
            if free <= 0:
                # Woken when a delivery ends or parks behind a channel's pace; waiting on
                # the tasks themselves would cost O(in flight) per wake-up during a storm.
                self._capacity.clear()
                await self._capacity.wait()
                continue
            now = self.clock()
            # Cleared before looking, not before sleeping: work recorded while the claim is
            # on its way wakes the sleep that follows an empty claim.
            self._wake.clear()
            try:
                await self._maintain(now)
                claims = await self.store.claim(now, free)
            except StoreUnavailable as exc:
                if not self._paused:
                    # Once per outage, not once per poll.
                    self._paused = True
                    log.warning(
                        "state store unavailable, delivery paused", extra={"error": str(exc)}
                    )
                await self._sleep(IDLE_POLL)
                continue
            if self._paused:
                self._paused = False
                log.info("state store back, delivery resumed")
            self._start(claims, now)
            if len(claims) < free:
                # Fewer than asked: nothing else was ready when the store answered, so the
                # next look is at the next due time (or a wake-up), not another claim that
                # would come back empty: one store round trip less per quiet cycle.
                await self._sleep(await self._idle_wait(now))

    def _start(self, claims: Sequence[Claim], now: float) -> None:
        # A function of its own: a loop variable in run() would keep the last claim, and
        # every notification and event in it, alive for as long as the worker idles.
        for claim in claims:
            task = asyncio.create_task(self._deliver(claim))
            self._inflight[task] = _Held(claim, now + self.lease)
            task.add_done_callback(self._task_done)

    async def stop(self, grace: float) -> None:
        """Stop claiming; give in-flight deliveries `grace` seconds, then leave the rest
        pending: SQLite voids their leases at the next start, the Redis store hands them
        back when it closes so another replica takes them at once."""
        self._stopping = True
        self._wake.set()
        if self._inflight:
            # Leases are still renewed meanwhile: draining deliveries are not taken over.
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            if pending:
                log.warning(
                    "shutdown left deliveries for the next start", extra={"count": len(pending)}
                )
                await cancel_and_wait(pending)
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            await cancel_and_wait([renewer])
        # Every job is over; a channel's flusher may still sit out its pause.
        await self.pacer.close()

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_renew)
            await self.renew_leases()

    async def renew_leases(self) -> None:
        """Renew the lease of every claim in flight in one store call, and stop the
        deliveries whose claim is no longer this worker's (or may not be by the next
        renewal): they must not send what another worker sends."""
        if not self._inflight:
            return
        held = dict(self._inflight)
        now = self.clock()
        try:
            renewed = await self.store.renew([h.claim for h in held.values()], now)
        except StoreUnavailable as exc:
            # Another worker may take a claim as soon as its lease ends and the store
            # answers it: stop before that can happen, not after.
            doomed = [
                task
                for task, h in held.items()
                if h.until <= now + self.lease_renew and not task.done()
            ]
            if doomed:
                log.warning(
                    "leases could not be renewed: deliveries stopped, left pending",
                    extra={"count": len(doomed), "error": str(exc)},
                )
                self._stop_deliveries(doomed)
            return
        lost = []
        for task, h in held.items():
            if h.claim.token in renewed:
                h.until = now + self.lease
            elif not task.done():
                lost.append(task)
        if lost:
            log.warning(
                "claims taken over by another worker: their deliveries stopped",
                extra={"count": len(lost)},
            )
            self._stop_deliveries(lost)

    @staticmethod
    def _stop_deliveries(tasks: Iterable[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()

    async def _idle_wait(self, now: float) -> float:
        try:
            due = await self.store.next_due()
        except StoreUnavailable:
            return IDLE_POLL
        if due is None:
            return IDLE_POLL
        return min(IDLE_POLL, max(0.0, due - now))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _maintain(self, now: float) -> None:
        if now - self._last_maintenance < MAINTENANCE_EVERY:
            return
        self._last_maintenance = now
        self.metrics.outbox_pending.set(await exported_outbox_depth(self.store))
        gone = await self.store.expire(now)
        if gone:
            log.info("expired old state", extra={"rows": gone})

    async def _deliver(self, claim: Claim) -> None:
        now = self.clock()
        job = start_job(claim, self.runtime(), now)
        attempting = False
        try:
            prepared = await self.pipeline.prepare(job, UNSCREENED)
            if isinstance(prepared, VERDICTS):
                verdict: Verdict = prepared
            else:
                # From here on the channel is tried: a failure counts as its attempt.
                attempting = True
                verdict = await self.pipeline.attempt(job, prepared)
            if not isinstance(verdict, Failed):
                await self._end(job, verdict, now)
                return
        except DeliveryError as exc:
            verdict = Failed(exc, attempted=attempting)
        except StoreUnavailable as exc:
            # The lease runs out and the claim is taken again once the store is back.
            log.warning("store unavailable during delivery", extra={"error": str(exc)})
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad notification must not stop the worker
            log.exception("delivery crashed", extra={"receiver": claim.receiver})
            self.health.failed(claim.receiver, self.clock(), f"internal: {type(exc).__name__}")
            crashed = DeliveryError("internal", type(exc).__name__, retryable=True)
            await self._failed(job, Failed(crashed, attempted=attempting), now)
            return
        self.health.failed(claim.receiver, self.clock(), str(verdict.error))
        await self._failed(job, verdict, now)

    async def _end(self, job: Job, verdict: Held | Suppressed | Sent, now: float) -> None:
        """Carry out what the stages decided: the claim goes back until its hold ends, or
        ends, with the timeline they noted."""
        claim = job.claim
        if isinstance(verdict, Held):
            await self.outbox.release(
                claim, verdict.until, "", now, attempted=False, timeline=job.entries()
            )
            return
        if isinstance(verdict, Suppressed):
            self.metrics.notifications_suppressed.labels(claim.receiver, verdict.reason).inc()
            outcome = Outcome(DeliveryState.SUPPRESSED, verdict.reason, nflog=verdict.nflog)
            await self._complete(claim, outcome, now, job.entries())
            await self._clear(verdict.clears)
            return
        await self._complete(claim, verdict.outcome, now, job.entries())
        await self._clear(verdict.clears)
        self._report_sent(job, verdict)
        self.health.delivered(claim.receiver, self.clock())

    async def _complete(
        self,
        claim: Claim,
        outcome: Outcome,
        now: float,
        timeline: Sequence[tuple[str, TimelineEntry]],
    ) -> None:
        """Every claim that ends is recorded here (the one place a batch of completions
        could go to the store together)."""
        async with self._writes:
            await self.outbox.complete(claim, outcome, now, timeline=timeline)

    async def _clear(self, seen: GroupActions | None) -> None:
        if seen is not None:
            await clear_acknowledgement(self.store, seen)

    def _report_sent(self, job: Job, sent: Sent) -> None:
        claim = job.claim
        latency = max(0.0, self.clock() - job.notification.created_at.timestamp())
        self.metrics.delivery_latency.labels(claim.receiver, sent.integration).observe(latency)
        # One line per page, so "was I paged, and when" is answered from the logs alone.
        sent_log.info(
            "notification sent",
            extra={
                "receiver": claim.receiver,
                "integration": sent.integration,
                "group_key": claim.group_key,
                "reason": sent.outcome.reason,
                "attempts": claim.attempts + 1,
                "latency_seconds": round(latency, 3),
                "alerts": sent.alerts,
                "notification_id": job.notification.id,
                "digest": sent.outcome.delivered_in,
            },
        )

    async def _failed(self, job: Job, failed: Failed, now: float) -> None:
        exc = failed.error
        claim = job.claim
        receiver = claim.receiver
        try:
            integration = job.runtime.config.receiver(receiver).integration
        except KeyError:
            integration = "unknown"
        oldest = min(n.created_at.timestamp() for n in claim.notifications)
        give_up = not exc.retryable or now - oldest >= self.dead_after
        if not failed.attempted:
            # Failed before reaching the channel (a removed receiver, a crash): still an
            # attempt that did not deliver, so failed never outgrows total.
            self.metrics.notifications_attempted.labels(receiver, integration).inc()
        self.metrics.notifications_failed.labels(receiver, integration, exc.reason).inc()
        extra = {
            "receiver": receiver,
            "group_key": claim.group_key,
            "reason": exc.reason,
            "error": str(exc),
            "attempts": claim.attempts + 1,
        }
        try:
            attempt = claim.attempts + 1
            job.note(
                "attempt",
                f"attempt {attempt} failed: {exc}",
                attempt=str(attempt),
                reason=exc.reason,
                error=str(exc),
                retryable="true" if exc.retryable else "false",
            )
            if give_up:
                state = DeliveryState.DEAD if exc.retryable else DeliveryState.FAILED
                log.error("notification %s", state.value, extra=extra)
                self.metrics.notifications_dead.labels(receiver, integration).inc()
                why = (
                    "the error is permanent"
                    if not exc.retryable
                    else f"still failing {format_duration(self.dead_after)} after it was accepted"
                )
                job.note(state.value, f"{state.value}: {why}", error=str(exc))
                await self._complete(
                    claim, Outcome(state, exc.reason, error=str(exc)), now, job.entries()
                )
            else:
                delay = backoff(claim.attempts, retry_after=exc.retry_after)
                log.warning("delivery failed, will retry", extra={**extra, "retry_in": delay})
                await self.outbox.release(claim, now + delay, str(exc), now, timeline=job.entries())
                self.wake()
        except StoreUnavailable as store_exc:
            log.warning("could not record delivery failure", extra={"error": str(store_exc)})


async def clear_acknowledgement(actions: ActionQueue, seen: GroupActions) -> None:
    """The group resolved: its acknowledgement is over (a later firing is news)."""
    state: GroupActions | None = seen
    for _ in range(3):
        if state is None or not state.acknowledged:
            return
        if await actions.set_group_actions(state.cleared_ack()) is not None:
            return
        # Changed meanwhile (a click): read it again.
        state = await actions.group_actions(seen.receiver, seen.group_key)
