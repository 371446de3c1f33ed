"""The per-receiver notify pipeline, in the shape of Alertmanager's notify.go.

Every stage has one signature: it takes a Job and returns it for the next stage, or None
when the job is finished (suppressed, or delivered and recorded). `MultiStage` runs stages
in order and stops at the first None. A DeliveryError escaping the pipeline is the retry
stage's business (the Deliverer in router/notify/worker.py), the only place that loops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from router.alertmanager_api.scope import silence_scope
from router.channels.base import Channel, DeliveryError, paced
from router.durations import format_duration
from router.enrich.deploys import DeployCorrelator
from router.metrics import Metrics
from router.model import (
    Claim,
    DeliveryState,
    Event,
    GroupActions,
    NflogEntry,
    Notification,
    Outcome,
    Status,
    TimelineEntry,
    format_time,
)
from router.notify import escalation
from router.notify.dedup import (
    Decision,
    Reason,
    decide,
    judge_actions,
    judge_holds,
    merge_events,
)
from router.notify.firing import FiringAlerts
from router.notify.pacing import Pacer
from router.render.message import Link, Message, build_message
from router.runtime import Runtime
from router.store.protocols import ActionQueue, NotificationLog, Outbox, StoreUnavailable, Timers

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One claim travelling through the stages, gathering what each decided."""

    claim: Claim
    now: float
    runtime: Runtime
    notification: Notification
    entry: NflogEntry | None = None
    muted: bool = False
    inhibited: frozenset[str] = frozenset()
    decision: Decision | None = None
    message: Message | None = None
    channel_state: Mapping[str, str] = field(default_factory=dict)
    # Set when the message went out folded into a channel digest.
    digest_id: str = ""
    # Set once a delivery attempt was counted for this job.
    attempted: bool = False
    # How long the problems told now waited out a hold first (Argo CD flap damping).
    held_for: float = 0.0
    # What people did to the group (acknowledged, silenced), read by dedup.
    actions: GroupActions | None = None
    # What the stages decided, for the notification's timeline; written with the outcome.
    timeline: list[TimelineEntry] = field(default_factory=list)

    def note(self, kind: str, text: str, **detail: str) -> None:
        """Add one decision to the timeline written when the claim ends."""
        self.timeline.append(TimelineEntry(self.now, kind, text, detail))

    def entries(self) -> list[tuple[str, TimelineEntry]]:
        """The timeline of every notification of the claim (each was decided together)."""
        return [(nid, e) for nid in self.claim.ids for e in self.timeline]

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    @property
    def channel(self) -> Channel:
        receiver = self.claim.receiver
        try:
            return self.runtime.channels[receiver]
        except KeyError:
            pass
        team, _, _ = receiver.partition("/")
        if any(load.name == team for load in self.runtime.failed_teams):
            # Its team's file did not load: the receiver comes back with it, so the
            # notification waits (visibly failing) rather than being given up.
            raise DeliveryError(
                "team_config_failed",
                f"receiver {receiver!r}: the file of team {team!r} failed to load",
                retryable=True,
            )
        raise DeliveryError(
            "receiver_removed",
            f"receiver {receiver!r} is no longer in the configuration",
            retryable=False,
        )


class Stage(Protocol):
    async def __call__(self, job: Job) -> Job | None: ...


class MultiStage:
    """Runs stages in order; a stage returning None ends the job."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    async def __call__(self, job: Job) -> Job | None:
        current: Job | None = job
        for stage in self.stages:
            if current is None:
                return None
            current = await stage(current)
        return current


def start_job(claim: Claim, runtime: Runtime, now: float) -> Job:
    """Fold every pending webhook of the claimed group into one notification."""
    latest = claim.latest
    events = merge_events([n.events for n in claim.notifications])
    merged = Notification(
        id=latest.id,
        route=latest.route,
        group_key=claim.group_key,
        events=events,
        created_at=min(n.created_at for n in claim.notifications),
    )
    return Job(claim=claim, now=now, runtime=runtime, notification=merged)


class MuteStage:
    """Marks the job muted when the route's time intervals say so (decided per receiver)."""

    async def __call__(self, job: Job) -> Job | None:
        route = job.notification.route
        if route.mute_time_intervals or route.active_time_intervals:
            try:
                why = job.runtime.intervals.mute_reason(route, job.at)
            except KeyError:
                # The interval was removed by a reload: nothing mutes any more.
                why = None
            job.muted = why is not None
            if why is not None:
                job.note(
                    "muted",
                    why,
                    mute_time_intervals=",".join(route.mute_time_intervals),
                    active_time_intervals=",".join(route.active_time_intervals),
                )
        return job


class InhibitStage:
    """Finds the group's firing alerts that another firing alert inhibits."""

    def __init__(self, firing: FiringAlerts) -> None:
        self.firing = firing

    async def __call__(self, job: Job) -> Job | None:
        inhibitor = job.runtime.inhibitor
        if not inhibitor.rules:
            return job
        candidates = [e for e in job.notification.events if e.status is Status.FIRING]
        if not candidates:
            return job
        sources = await self.firing.get(job.now)
        inhibited = []
        for e in candidates:
            found = inhibitor.inhibition(e.labels, sources)
            if found is None:
                continue
            inhibited.append(e.fingerprint)
            if len(inhibited) <= _INHIBITIONS_NOTED:
                rule, source = found
                shown = ", ".join(f'{k}="{v}"' for k, v in sorted(source.items()))
                job.note(
                    "inhibited",
                    f"{e.alertname or e.fingerprint} inhibited by rule {rule.name}:"
                    f" source alert {{{shown}}}",
                    rule=rule.name,
                    source=json.dumps(dict(source), sort_keys=True),
                    alert=e.fingerprint,
                )
        job.inhibited = frozenset(inhibited)
        return job


class DedupStage:
    """Reads the notification log and decides whether and why to notify; a claim taken
    while one of its problems is still on hold goes back, unattempted, until the hold ends."""

    def __init__(
        self,
        log: NotificationLog,
        outbox: Outbox,
        metrics: Metrics,
        actions: ActionQueue | None = None,
    ) -> None:
        self.log = log
        self.outbox = outbox
        self.metrics = metrics
        self.actions = actions

    async def __call__(self, job: Job) -> Job | None:
        n = job.notification
        holds = judge_holds(job.claim.notifications, job.now)
        if holds.until is not None:
            until = format_time(datetime.fromtimestamp(holds.until, UTC)) or ""
            job.note("held", f"held until {until} (argocd.hold)", until=until)
            await self.outbox.release(
                job.claim, holds.until, "", job.now, attempted=False, timeline=job.entries()
            )
            return None
        job.held_for = holds.held_for
        job.entry = await self.log.nflog_get(n.receiver, n.group_key, job.now)
        decision = decide(
            job.entry,
            n.group_key,
            n.events,
            n.route,
            job.now,
            muted=job.muted,
            inhibited=job.inhibited,
            flapped=holds.flapped,
        )
        if self.actions is not None and job.runtime.config.slack.interactivity is not None:
            job.actions = await self.actions.group_actions(n.receiver, n.group_key)
            held_back = judge_actions(decision, job.actions, job.now)
            if held_back is not None:
                decision = Decision(held_back, False, [], [], None)
        job.decision = decision
        reason = decision.reason.value
        job.note(
            "deduplicated",
            f"{_DEDUP_TEXT.get(reason, reason)}: "
            + ("send" if decision.send else "nothing to send")
            + f" ({len(decision.firing)} firing, {len(decision.resolved)} resolved)",
            reason=reason,
            send="true" if decision.send else "false",
        )
        if decision.send:
            return job
        job.note("suppressed", f"suppressed: {reason}", reason=reason)
        self.metrics.notifications_suppressed.labels(n.receiver, decision.reason.value).inc()
        # send_resolved off still tells the log that the receiver's alerts are over.
        keep = decision.entry if decision.reason is Reason.SEND_RESOLVED_OFF else None
        await self.outbox.complete(
            job.claim,
            Outcome(DeliveryState.SUPPRESSED, decision.reason.value, nflog=keep),
            job.now,
            timeline=job.entries(),
        )
        if (
            keep is not None
            and not decision.firing
            and self.actions is not None
            and job.actions is not None
        ):
            # Resolved, though nobody is told: the acknowledgement ends all the same.
            await clear_acknowledgement(self.actions, job.actions)
        return None


class RenderStage:
    """Builds the message view from what dedup decided to say."""

    async def __call__(self, job: Job) -> Job | None:
        assert job.decision is not None
        n = job.notification
        shown = replace(n, events=job.decision.events)
        # When the receiver first heard of the group: where a resolve without start times
        # (an Argo CD recovery) counts its "resolved after" from.
        first = job.entry.first_notified_at if job.entry is not None else None
        message = build_message(
            shown,
            job.decision.reason.value,
            now=job.at,
            first_notified=datetime.fromtimestamp(first, UTC) if first is not None else None,
            router_url=job.runtime.config.server.external_url,
        )
        message = replace(message, actions=job.actions)
        config = job.runtime.config
        if config.slack.interactivity is not None and message.status is Status.FIRING:
            # Fixed now, with the message: a later webhook for the group cannot widen it.
            scope = silence_scope(n.receiver, job.decision.events, config)
            message = replace(message, silence=scope)
        extra = _origin_note(job.decision.reason, job.decision.events)
        if extra:
            message = replace(message, notes=[*message.notes, extra])
        if job.held_for > 0 and job.decision.firing:
            note = (
                f"Held {format_duration(job.held_for)} in case it recovered by itself"
                " (argocd.hold); it did not."
            )
            message = replace(message, notes=[*message.notes, note])
        job.message = message
        return job


class EnrichStage:
    """Adds links, Loki excerpts and the preceding deploy; never fails the delivery."""

    def __init__(self, deploys: DeployCorrelator) -> None:
        self.deploys = deploys

    async def __call__(self, job: Job) -> Job | None:
        assert job.message is not None and job.decision is not None
        runtime = job.runtime
        events = job.decision.events
        message = await runtime.enricher.enrich(job.message, events, job.at)
        settings = runtime.config.enrich.deploys
        if settings is not None:
            try:
                notes, links = await self.deploys.find(
                    events, settings.window, runtime.config.argocd.url
                )
            except StoreUnavailable:
                notes, links = ["Deploy history unavailable (state store down)"], []
            if notes or links:
                message = replace(
                    message, notes=[*message.notes, *notes], links=[*message.links, *links]
                )
        else:
            notes = []
        job.message = message
        text, detail = _enrichment(message, runtime.config.enrich.loki is not None, notes)
        job.note("enriched", text, **detail)
        return job


class ChatLinksStage:
    """A page links to the group's Slack messages already posted (their permalinks), so the
    on-call goes from PagerDuty straight to the thread; never fails the delivery."""

    def __init__(self, log: NotificationLog) -> None:
        self.log = log

    async def __call__(self, job: Job) -> Job | None:
        assert job.message is not None
        receiver = job.runtime.channels.get(job.claim.receiver)
        if receiver is None or receiver.integration != "pagerduty":
            return job
        links: list[Link] = []
        for name, channel in job.runtime.channels.items():
            if channel.integration != "slack":
                continue
            try:
                entry = await self.log.nflog_get(name, job.claim.group_key, job.now)
            except StoreUnavailable:
                return job
            permalink = entry.channel_state.get("permalink", "") if entry is not None else ""
            if permalink:
                links.append(Link(f"Slack ({name})", permalink))
        if links:
            job.message = replace(job.message, links=[*job.message.links, *links])
        return job


class NotifyStage:
    """Sends through the receiver's channel, paced per destination where the channel has a
    rate limit (Slack, email); raises DeliveryError on failure."""

    def __init__(self, pacer: Pacer, metrics: Metrics) -> None:
        self.pacer = pacer
        self.metrics = metrics

    async def __call__(self, job: Job) -> Job | None:
        assert job.message is not None
        prior: Mapping[str, str] = job.entry.channel_state if job.entry else {}
        channel = job.channel
        self.metrics.notifications_attempted.labels(job.claim.receiver, channel.integration).inc()
        job.attempted = True
        destination = paced(channel)
        if destination is None:
            job.channel_state = await channel.send(job.message, prior)
            return job
        asked = time.monotonic()
        sent = await self.pacer.send(destination, job.message, prior)
        self.metrics.pacing_wait.labels(channel.integration).observe(time.monotonic() - asked)
        delivery = "digest" if sent.digest_id else "alone"
        self.metrics.paced_sends.labels(channel.integration, delivery).inc()
        job.channel_state, job.digest_id = sent.state, sent.digest_id
        return job


# How many deliveries record their outcome at once. A digest ends hundreds of jobs in the
# same instant; written all together they would exhaust the store's connection pool.
RECORD_WRITES = 32


class SetNotifiesStage:
    """Records the delivery and the new log entry together, only after success."""

    def __init__(
        self,
        outbox: Outbox,
        metrics: Metrics,
        clock: Callable[[], float],
        actions: ActionQueue | None = None,
        timers: Timers | None = None,
    ) -> None:
        self.outbox = outbox
        self.metrics = metrics
        self.clock = clock
        self.actions = actions
        self.timers = timers
        self._writes = asyncio.Semaphore(RECORD_WRITES)

    async def __call__(self, job: Job) -> Job | None:
        assert job.decision is not None and job.decision.entry is not None
        entry = replace(job.decision.entry, channel_state=dict(job.channel_state))
        reason = job.decision.reason.value
        outcome = Outcome(DeliveryState.SENT, reason, nflog=entry, delivered_in=job.digest_id)
        integration = job.channel.integration
        text, detail = _sent(integration, job.channel_state, job.claim.attempts + 1)
        job.note("sent", text, **detail)
        if job.digest_id:
            job.note(
                "digested",
                f"went out in digest {job.digest_id}",
                digest=job.digest_id,
            )
        await self._escalation(job)
        async with self._writes:
            await self.outbox.complete(job.claim, outcome, job.now, timeline=job.entries())
        if self.actions is not None and job.actions is not None and not job.decision.firing:
            await clear_acknowledgement(self.actions, job.actions)
        receiver = job.claim.receiver
        latency = max(0.0, self.clock() - job.notification.created_at.timestamp())
        self.metrics.delivery_latency.labels(receiver, integration).observe(latency)
        # One line per page, so "was I paged, and when" is answered from the logs alone.
        log.info(
            "notification sent",
            extra={
                "receiver": receiver,
                "integration": integration,
                "group_key": job.claim.group_key,
                "reason": reason,
                "attempts": job.claim.attempts + 1,
                "latency_seconds": round(latency, 3),
                "alerts": len(job.decision.events),
                "notification_id": job.notification.id,
                "digest": job.digest_id,
            },
        )
        return None

    async def _escalation(self, job: Job) -> None:
        """Start the route's escalation with the group's first firing message; end it
        with the resolve."""
        assert job.decision is not None
        route, group_key = job.notification.route, job.claim.group_key
        if self.timers is None or not route.escalate:
            return
        if not job.decision.firing:
            chain = await escalation.stop(self.timers, route.receiver, group_key)
            if chain is not None:
                repeat = job.runtime.config.dedup.repeat_interval
                told = escalation.all_clear(chain, job.decision.resolved, job.at, repeat)
                if told:
                    await self.outbox.record(told)
            return
        if job.actions is not None and job.actions.acknowledged:
            return
        started = await escalation.arm(
            self.timers,
            route,
            group_key,
            job.now,
            record_id=job.notification.id,
            channel_state=job.channel_state,
        )
        if started:
            after, to = route.escalate[0]
            due = format_time(datetime.fromtimestamp(job.now + after, UTC)) or ""
            job.note(
                "escalation",
                f"escalation armed: step 1 to {to} due at {due} unless acknowledged"
                f" ({escalation.describe(route.escalate)})",
                due=due,
                to=to,
            )


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


def _origin_note(reason: Reason, events: Sequence[Event]) -> str:
    """What a message made by the router itself says about why it exists."""
    origin = next((e.origin for e in events if e.origin), None)
    if origin is None:
        return ""
    if reason is Reason.RESOLVED_WHILE_SILENCED and origin.get("while") == "acknowledged":
        return (
            "Resolved: its resolve never reached alert-router; alert-router saw it gone from"
            f" Alertmanager's alerts at {origin.get('seen', '?')}."
        )
    if reason is Reason.RESOLVED_WHILE_SILENCED:
        return (
            "Resolved while silenced: Alertmanager sends no resolve for a silenced alert;"
            f" alert-router saw it gone from Alertmanager's alerts at {origin.get('seen', '?')}."
        )
    if reason is Reason.ESCALATED:
        unacked = format_duration(float(origin.get("unacked", "0")))
        text = (
            f"Unacknowledged for {unacked}: escalation step {origin.get('step', '?')}"
            f" of {origin.get('receiver', '?')}."
        )
        link = origin.get("link", "")
        return text + (f" First message: {link}" if link else "")
    return ""


# Inhibited alerts of one notification named in its timeline (a group can hold hundreds).
_INHIBITIONS_NOTED = 5
_DEDUP_TEXT = {
    "first": "first notification of this group for this receiver",
    "new_alerts": "new alerts since the receiver was last told",
    "resolved": "alerts the receiver was told about resolved",
    "repeat": "still firing after repeat_interval",
    "duplicate": "the receiver was already told all of this",
    "muted": "muted",
    "inhibited": "every firing alert is inhibited",
    "send_resolved_off": "resolved, but send_resolved is off",
    "unseen_resolve": "resolve of alerts the receiver was never told about",
    "flapped": "recovered within its hold",
    "acknowledged": "acknowledged: the repeat reminder is held back",
    "silenced": "silenced from Slack by alert-router",
    "resolved_while_silenced": "resolved in Alertmanager while silenced (seen by polling)",
    "escalated": "escalation step: the group fired unacknowledged",
}


def _enrichment(message: Message, loki: bool, deploys: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The `enriched` entry's text, and its detail facts, from the enriched message."""
    lines = sum(len(a.logs.lines) for a in message.firing if a.logs is not None)
    why = sorted({a.logs.note for a in message.firing if a.logs is not None and a.logs.note})
    if not loki:
        logs = "no Loki lines: enrich.loki is not configured"
    elif not message.firing:
        logs = "no Loki lines: nothing firing"
    elif lines:
        logs = f"{lines} Loki line{'s' if lines != 1 else ''}"
    else:
        logs = "no Loki lines: " + ("; ".join(why) or "none found")
    text = logs + (f"; {deploys[0]}" if deploys else "")
    return text, {
        "loki_lines": str(lines),
        "why_no_lines": "; ".join(why),
        "deploy": "; ".join(deploys),
    }


def _sent(integration: str, state: Mapping[str, str], attempt: int) -> tuple[str, dict[str, str]]:
    """The `sent` entry's text and detail facts: where the message went."""
    detail = {"integration": integration, "attempt": str(attempt)}
    # Slack's and email's `status` is what the message showed, not an HTTP status.
    keys = (
        ("status",)
        if integration in ("webhook", "msteams")
        else ("channel", "ts", "permalink", "message_id", "target", "dedup_key")
    )
    for key in keys:
        if state.get(key):
            detail[key] = state[key]
    if integration == "slack" and "channel" in detail:
        where = f"Slack {detail.get('target') or detail['channel']} (ts {detail.get('ts', '?')})"
    elif "dedup_key" in detail:
        where = f"PagerDuty, dedup_key {detail['dedup_key']}"
    elif "message_id" in detail:
        where = f"email, Message-ID {detail['message_id']}"
    elif "status" in detail:
        where = f"{integration}, HTTP {detail['status']}"
    else:
        where = integration
    return f"sent by {where} at attempt {attempt}", detail
