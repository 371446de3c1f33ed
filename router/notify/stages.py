"""The per-receiver notify pipeline, in the shape of Alertmanager's notify.go.

A stage takes the job and what the stage before it passed on, and returns either what the
next stage needs or its verdict on the claim: held, suppressed, sent or failed. The types
in between (Screening, Judged, Draft, Addressed, Receipt) fix the order: a stage can only
follow one that produces what it takes. Stages note their decisions on the job's timeline
but never end a claim: the Deliverer (router/notify/worker.py) completes or releases it
from the verdict, writing the timeline with it, and is the only place that retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, Never, Protocol, TypeVar, overload

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


@dataclass(frozen=True, slots=True)
class Job:
    """One claim as every stage sees it. The stages add nothing to it but their notes."""

    claim: Claim
    now: float
    at: datetime
    runtime: Runtime
    # The claim's pending webhooks folded into one notification.
    notification: Notification
    # What the stages decided, for the notification's timeline; written with the verdict.
    timeline: list[TimelineEntry] = field(default_factory=list)

    def note(self, kind: str, text: str, **detail: str) -> None:
        """Add one decision to the timeline written when the claim ends."""
        self.timeline.append(TimelineEntry(self.now, kind, text, detail))

    def entries(self) -> list[tuple[str, TimelineEntry]]:
        """The timeline of every notification of the claim (each was decided together)."""
        return [(nid, e) for nid in self.claim.ids for e in self.timeline]


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
    return Job(
        claim=claim,
        now=now,
        at=datetime.fromtimestamp(now, UTC),
        runtime=runtime,
        notification=merged,
    )


# What a claim comes to: the Deliverer carries each out.


@dataclass(frozen=True, slots=True)
class Held:
    """Give the claim back, unattempted, until `until`: a problem is still within its
    hold (`why` names the setting)."""

    until: float
    why: str


@dataclass(frozen=True, slots=True)
class Suppressed:
    """Nobody is told (`reason`). `nflog` is what the log learns all the same; `clears`
    the acknowledgement that ends with it (the group resolved)."""

    reason: str
    nflog: NflogEntry | None = None
    clears: GroupActions | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """The receiver was told: `outcome` carries the new log entry (with the channel's
    receipt) and the digest it went out in, if any."""

    outcome: Outcome
    integration: str
    # How many alerts the message told.
    alerts: int
    clears: GroupActions | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The delivery did not happen; `attempted` says whether the channel was tried."""

    error: DeliveryError
    attempted: bool


Verdict = Held | Suppressed | Sent | Failed
VERDICTS = (Held, Suppressed, Sent, Failed)


# What one stage passes on to the next.


@dataclass(frozen=True, slots=True)
class Screening:
    """What the time intervals and inhibition found, for dedup."""

    muted: bool = False
    inhibited: frozenset[str] = frozenset()


UNSCREENED = Screening()


@dataclass(frozen=True, slots=True)
class Judged:
    """Dedup's decision to tell the receiver, and what it read to make it."""

    decision: Decision
    # What the receiver knows once told (the log entry written with the outcome).
    told: NflogEntry
    # What it knew before (None: never heard of the group).
    previous: NflogEntry | None
    # What people did to the group (acknowledged, silenced), when buttons are on.
    actions: GroupActions | None
    # How long the problems told now waited out a hold first (Argo CD flap damping).
    held_for: float


@dataclass(frozen=True, slots=True)
class Draft:
    """The message to send, rendered and enriched stage by stage."""

    judged: Judged
    message: Message


@dataclass(frozen=True, slots=True)
class Addressed:
    """A draft and the channel it goes through: the receiver is still configured."""

    draft: Draft
    channel: Channel


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the channel answered for a message it sent."""

    judged: Judged
    integration: str
    channel_state: Mapping[str, str]
    # Set when the message went out folded into a channel digest.
    digest_id: str = ""


# Composition.

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)
T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
F = TypeVar("F")


class Stage(Protocol[In, Out]):
    """One step of the pipeline: what the next stage needs, or the claim's verdict."""

    async def __call__(self, job: Job, given: In, /) -> Out | Verdict: ...


class MultiStage(Generic[T]):
    """Runs stages of one kind in order; the first verdict ends the run."""

    def __init__(self, *stages: Stage[T, T]) -> None:
        self.stages = stages

    async def __call__(self, job: Job, given: T, /) -> T | Verdict:
        for stage in self.stages:
            step = await stage(job, given)
            if isinstance(step, VERDICTS):
                return step
            given = step
        return given


class _Pipe:
    """Stages each taking what the one before passed on; the first verdict ends the run."""

    def __init__(self, stages: Sequence[Stage[Any, Any]]) -> None:
        self.stages = tuple(stages)

    async def __call__(self, job: Job, given: Any, /) -> Any:
        for stage in self.stages:
            given = await stage(job, given)
            if isinstance(given, VERDICTS):
                return given
        return given


@overload
def pipe(s1: Stage[A, B], s2: Stage[B, C], /) -> Stage[A, C]: ...
@overload
def pipe(s1: Stage[A, B], s2: Stage[B, C], s3: Stage[C, D], /) -> Stage[A, D]: ...
@overload
def pipe(s1: Stage[A, B], s2: Stage[B, C], s3: Stage[C, D], s4: Stage[D, E], /) -> Stage[A, E]: ...
@overload
def pipe(
    s1: Stage[A, B], s2: Stage[B, C], s3: Stage[C, D], s4: Stage[D, E], s5: Stage[E, F], /
) -> Stage[A, F]: ...
def pipe(*stages: Stage[Any, Any]) -> Stage[Any, Any]:
    """Stages in order, each taking what the one before it passes on (checked by type)."""
    return _Pipe(stages)


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A receiver's stages in two parts: `prepare` may end a claim before its channel is
    tried (no attempt is counted); `attempt` tries the channel and records what it said."""

    prepare: Stage[Screening, Addressed]
    attempt: Stage[Addressed, Never]


# The stages, in pipeline order (heartbeat beats end first: router/notify/beats.py).


class MuteStage:
    """Marks the claim muted when the route's time intervals say so (decided per receiver)."""

    async def __call__(self, job: Job, given: Screening, /) -> Screening:
        route = job.notification.route
        if not (route.mute_time_intervals or route.active_time_intervals):
            return given
        try:
            why = job.runtime.intervals.mute_reason(route, job.at)
        except KeyError:
            # The interval was removed by a reload: nothing mutes any more.
            why = None
        if why is None:
            return Screening(False, given.inhibited) if given.muted else given
        job.note(
            "muted",
            why,
            mute_time_intervals=",".join(route.mute_time_intervals),
            active_time_intervals=",".join(route.active_time_intervals),
        )
        return Screening(True, given.inhibited)


class InhibitStage:
    """Finds the group's firing alerts that another firing alert inhibits."""

    def __init__(self, firing: FiringAlerts) -> None:
        self.firing = firing

    async def __call__(self, job: Job, given: Screening, /) -> Screening:
        inhibitor = job.runtime.inhibitor
        if not inhibitor.rules:
            return given
        candidates = [e for e in job.notification.events if e.status is Status.FIRING]
        if not candidates:
            return given
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
        return Screening(given.muted, frozenset(inhibited))


class DedupStage:
    """Reads the notification log and decides whether and why to notify; a claim taken
    while one of its problems is still on hold goes back, unattempted, until the hold ends."""

    def __init__(self, log: NotificationLog, actions: ActionQueue | None = None) -> None:
        self.log = log
        self.actions = actions

    async def __call__(self, job: Job, given: Screening, /) -> Judged | Held | Suppressed:
        n = job.notification
        holds = judge_holds(job.claim.notifications, job.now)
        if holds.until is not None:
            until = format_time(datetime.fromtimestamp(holds.until, UTC)) or ""
            job.note("held", f"held until {until} (argocd.hold)", until=until)
            return Held(holds.until, "argocd.hold")
        entry = await self.log.nflog_get(n.receiver, n.group_key, job.now)
        decision = decide(
            entry,
            n.group_key,
            n.events,
            n.route,
            job.now,
            muted=given.muted,
            inhibited=given.inhibited,
            flapped=holds.flapped,
        )
        actions = None
        if self.actions is not None and job.runtime.config.slack.interactivity is not None:
            actions = await self.actions.group_actions(n.receiver, n.group_key)
            held_back = judge_actions(decision, actions, job.now)
            if held_back is not None:
                decision = Decision(held_back, False, [], [], None)
        reason = decision.reason.value
        job.note(
            "deduplicated",
            f"{_DEDUP_TEXT.get(reason, reason)}: "
            + ("send" if decision.send else "nothing to send")
            + f" ({len(decision.firing)} firing, {len(decision.resolved)} resolved)",
            reason=reason,
            send="true" if decision.send else "false",
        )
        if decision.send and decision.entry is not None:
            return Judged(decision, decision.entry, entry, actions, holds.held_for)
        job.note("suppressed", f"suppressed: {reason}", reason=reason)
        # send_resolved off still tells the log that the receiver's alerts are over.
        keep = decision.entry if decision.reason is Reason.SEND_RESOLVED_OFF else None
        # Resolved, though nobody is told: the acknowledgement ends all the same.
        clears = actions if keep is not None and not decision.firing else None
        return Suppressed(reason, keep, clears)


class RenderStage:
    """Builds the message view from what dedup decided to say."""

    async def __call__(self, job: Job, given: Judged, /) -> Draft:
        n = job.notification
        decision = given.decision
        shown = Notification(
            id=n.id,
            route=n.route,
            group_key=n.group_key,
            events=decision.events,
            created_at=n.created_at,
            not_before=n.not_before,
        )
        # When the receiver first heard of the group: where a resolve without start times
        # (an Argo CD recovery) counts its "resolved after" from.
        first = given.previous.first_notified_at if given.previous is not None else None
        message = build_message(
            shown,
            decision.reason.value,
            now=job.at,
            first_notified=datetime.fromtimestamp(first, UTC) if first is not None else None,
            router_url=job.runtime.config.server.external_url,
        )
        message = replace(message, actions=given.actions)
        config = job.runtime.config
        if config.slack.interactivity is not None and message.status is Status.FIRING:
            # Fixed now, with the message: a later webhook for the group cannot widen it.
            scope = silence_scope(n.receiver, shown.events, config)
            message = replace(message, silence=scope)
        extra = _origin_note(decision.reason, shown.events)
        if extra:
            message = replace(message, notes=[*message.notes, extra])
        if given.held_for > 0 and decision.firing:
            note = (
                f"Held {format_duration(given.held_for)} in case it recovered by itself"
                " (argocd.hold); it did not."
            )
            message = replace(message, notes=[*message.notes, note])
        return Draft(given, message)


class EnrichStage:
    """Adds links, Loki excerpts and the preceding deploy; never fails the delivery."""

    def __init__(self, deploys: DeployCorrelator) -> None:
        self.deploys = deploys

    async def __call__(self, job: Job, given: Draft, /) -> Draft:
        runtime = job.runtime
        events = given.judged.decision.events
        message = await runtime.enricher.enrich(given.message, events, job.at)
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
        text, detail = _enrichment(message, runtime.config.enrich.loki is not None, notes)
        job.note("enriched", text, **detail)
        return Draft(given.judged, message)


class ChatLinksStage:
    """A page links to the group's Slack messages already posted (their permalinks), so the
    on-call goes from PagerDuty straight to the thread; never fails the delivery."""

    def __init__(self, log: NotificationLog) -> None:
        self.log = log

    async def __call__(self, job: Job, given: Draft, /) -> Draft:
        receiver = job.runtime.channels.get(job.claim.receiver)
        if receiver is None or receiver.integration != "pagerduty":
            return given
        slack = [name for name, ch in job.runtime.channels.items() if ch.integration == "slack"]
        try:
            # One read per Slack receiver, all at once: a page waits for the slowest only.
            entries = await asyncio.gather(
                *(self.log.nflog_get(name, job.claim.group_key, job.now) for name in slack)
            )
        except StoreUnavailable:
            return given
        links: list[Link] = []
        for name, entry in zip(slack, entries, strict=True):
            permalink = entry.channel_state.get("permalink", "") if entry is not None else ""
            if permalink:
                links.append(Link(f"Slack ({name})", permalink))
        if not links:
            return given
        message = replace(given.message, links=[*given.message.links, *links])
        return Draft(given.judged, message)


class AddressStage:
    """Finds the receiver's channel in the job's configuration; a receiver removed by a
    reload fails the delivery before anything is tried."""

    async def __call__(self, job: Job, given: Draft, /) -> Addressed | Failed:
        receiver = job.claim.receiver
        channel = job.runtime.channels.get(receiver)
        if channel is not None:
            return Addressed(given, channel)
        team, _, _ = receiver.partition("/")
        if any(load.name == team for load in job.runtime.failed_teams):
            # Its team's file did not load: the receiver comes back with it, so the
            # notification waits (visibly failing) rather than being given up.
            error = DeliveryError(
                "team_config_failed",
                f"receiver {receiver!r}: the file of team {team!r} failed to load",
                retryable=True,
            )
        else:
            error = DeliveryError(
                "receiver_removed",
                f"receiver {receiver!r} is no longer in the configuration",
                retryable=False,
            )
        return Failed(error, attempted=False)


class NotifyStage:
    """Sends through the receiver's channel, paced per destination where the channel has a
    rate limit (Slack, email); a DeliveryError is its failed verdict."""

    def __init__(self, pacer: Pacer, metrics: Metrics) -> None:
        self.pacer = pacer
        self.metrics = metrics

    async def __call__(self, job: Job, given: Addressed, /) -> Receipt | Failed:
        judged, message = given.draft.judged, given.draft.message
        prior: Mapping[str, str] = judged.previous.channel_state if judged.previous else {}
        channel = given.channel
        self.metrics.notifications_attempted.labels(job.claim.receiver, channel.integration).inc()
        try:
            destination = paced(channel)
            if destination is None:
                state = await channel.send(message, prior)
                return Receipt(judged, channel.integration, state)
            asked = time.monotonic()
            sent = await self.pacer.send(destination, message, prior)
        except DeliveryError as exc:
            return Failed(exc, attempted=True)
        self.metrics.pacing_wait.labels(channel.integration).observe(time.monotonic() - asked)
        delivery = "digest" if sent.digest_id else "alone"
        self.metrics.paced_sends.labels(channel.integration, delivery).inc()
        return Receipt(judged, channel.integration, sent.state, sent.digest_id)


class SetNotifiesStage:
    """Makes the receipt the log's new entry, and starts or ends the route's escalation;
    only after success."""

    def __init__(self, outbox: Outbox, timers: Timers | None = None) -> None:
        self.outbox = outbox
        self.timers = timers

    async def __call__(self, job: Job, given: Receipt, /) -> Sent:
        judged = given.judged
        told = judged.told
        entry = NflogEntry(
            receiver=told.receiver,
            group_key=told.group_key,
            firing=told.firing,
            resolved=told.resolved,
            first_notified_at=told.first_notified_at,
            last_notified_at=told.last_notified_at,
            expires_at=told.expires_at,
            channel_state=dict(given.channel_state),
        )
        decision = judged.decision
        outcome = Outcome(
            DeliveryState.SENT, decision.reason.value, nflog=entry, delivered_in=given.digest_id
        )
        text, detail = _sent(given.integration, given.channel_state, job.claim.attempts + 1)
        job.note("sent", text, **detail)
        if given.digest_id:
            job.note(
                "digested",
                f"went out in digest {given.digest_id}",
                digest=given.digest_id,
            )
        await self._escalation(job, given)
        clears = judged.actions if not decision.firing else None
        told_alerts = len(decision.firing) + len(decision.resolved)
        return Sent(outcome, given.integration, told_alerts, clears)

    async def _escalation(self, job: Job, receipt: Receipt) -> None:
        """Start the route's escalation with the group's first firing message; end it
        with the resolve."""
        decision = receipt.judged.decision
        route, group_key = job.notification.route, job.claim.group_key
        if self.timers is None or not route.escalate:
            return
        if not decision.firing:
            chain = await escalation.stop(self.timers, route.receiver, group_key)
            if chain is not None:
                repeat = job.runtime.config.dedup.repeat_interval
                told = escalation.all_clear(chain, decision.resolved, job.at, repeat)
                if told:
                    await self.outbox.record(told)
            return
        actions = receipt.judged.actions
        if actions is not None and actions.acknowledged:
            return
        started = await escalation.arm(
            self.timers,
            route,
            group_key,
            job.now,
            record_id=job.notification.id,
            channel_state=receipt.channel_state,
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
