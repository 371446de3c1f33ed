"""Carrying out recorded clicks: acknowledge, silence, and undoing either, exactly once.

The handler only records a click (router/web/slack.py); this worker claims it under a
lease, so a replica killed after answering Slack loses nothing: another claims the click
once the lease ends. Every change to a group goes through the store's compare-and-set, so
a double click, Slack's retry or two replicas at once leave one acknowledgement and one
silence. Creating an Alertmanager silence is made safe to repeat by a marker in its
comment: a retry after a crash finds the silence it made instead of making another.

Alertmanager refusing or down: the thread says so once ("Could not create the silence:
..."), and the click is tried again with backoff for ACTION_RETRY_FOR, then given up (the
thread says that too). A Slack edit that fails is tried again the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from router.alertmanager_api.client import AlertmanagerClient, SilenceError, Silences
from router.cancel import cancel_and_wait
from router.channels.base import DeliveryError
from router.channels.slack.channel import (
    SlackChannel,
    is_current_message,
    message_link,
    posted_scope,
)
from router.config.schema import AlertmanagerAPI
from router.durations import format_duration
from router.interact import watch
from router.interact.pagers import acknowledge_pagers
from router.matchers import Matcher
from router.metrics import Metrics
from router.model import (
    Action,
    ActionClaim,
    ActionKind,
    GroupActions,
    NflogEntry,
    NotificationRecord,
    SilenceScope,
    TimelineEntry,
)
from router.notify import escalation
from router.notify.retry import backoff
from router.render.text import escape_mrkdwn
from router.runtime import Runtime
from router.store.protocols import Store, StoreUnavailable
from router.store.rollup import acknowledgement

log = logging.getLogger(__name__)

# A click Alertmanager or Slack cannot carry out is tried again for this long.
ACTION_RETRY_FOR = 3600.0
# Backoff between tries of one click: 1 s doubling up to a minute.
RETRY_FIRST = 1.0
RETRY_MAX = 60.0
POLL = 0.5
CLAIM_LIMIT = 8
# Compare-and-set rounds before a click gives way (each lost round means someone else
# changed the group, and the click is judged again on what they did).
CAS_ROUNDS = 8
# The timeline entry of each click that changed something.
_TIMELINE_KINDS = {
    ActionKind.ACK: "acknowledged",
    ActionKind.UNACK: "unacknowledged",
    ActionKind.SILENCE: "silenced",
    ActionKind.UNSILENCE: "unsilenced",
}


@dataclass(frozen=True, slots=True)
class Effect:
    """What carrying out a click did: its words, and whether it changed the group (a
    repeat of what was already so does not)."""

    text: str
    changed: bool


class FailedForNow(Exception):
    """Carrying out the click failed in a way a later try may not: say why, try again."""


class CannotAct(Exception):
    """The click is about a message or group the router cannot act on: dropped, not retried."""


@dataclass(slots=True)
class _Click:
    """One claimed click and what it acts on, each read from the store once."""

    claim: ActionClaim
    # The receiver's Slack channel whose message shows the click (None: none to edit).
    channel: SlackChannel | None
    # The group's log entry when the click was taken up (None: the log no longer holds it).
    entry: NflogEntry | None
    # The group's latest record (what the timeline and a silence's comment name), once read.
    record: NotificationRecord | None = None
    record_read: bool = False

    @property
    def action(self) -> Action:
        return self.claim.action


def marker_of(action: Action) -> str:
    """The text a silence's comment carries so a retry of `action` finds it."""
    return f"[alert-router {hashlib.sha256(action.id.encode()).hexdigest()[:16]}]"


class SlackClickRunner:
    """Claims recorded clicks on Slack buttons (and the console's acknowledgements of the
    same groups) and carries them out until stopped."""

    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        *,
        clock: Callable[[], float] = time.time,
        silences: Callable[[AlertmanagerAPI], Silences] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.runtime = runtime
        self.clock = clock
        self._make_silences = silences or (lambda cfg: AlertmanagerClient(cfg, self.runtime().http))
        # One client per configured Alertmanager, by name, with the config it was made of.
        self._clients: dict[str, tuple[AlertmanagerAPI, Silences]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """A click was recorded: look now."""
        self._wake.set()

    def silences(self, name: str) -> Silences | None:
        """The client of the configured Alertmanager `name` (None once it is no longer
        configured); rebuilt when its entry changes. The old one is dropped, not closed:
        clicks running now may still use it, and its connections are the shared pool's."""
        cfg = self.runtime().config.alertmanager_named(name)
        if cfg is None:
            return None
        known = self._clients.get(name)
        if known is not None and known[0] == cfg:
            return known[1]
        client = self._make_silences(cfg)
        self._clients[name] = (cfg, client)
        return client

    async def run(self) -> None:
        """Claim and carry out clicks until `stop()`; a store outage is waited out."""
        while not self._stopping:
            self._wake.clear()
            try:
                claims = await self.store.claim_actions(self.clock(), CLAIM_LIMIT)
            except StoreUnavailable:
                claims = []
            for claim in claims:
                task = asyncio.create_task(self._carry(claim))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if not claims:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL)

    async def stop(self) -> None:
        """Stop claiming; give running clicks a few seconds, then cancel the rest (claimed
        again once their lease ends)."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        # Ended, not left running against the store and HTTP pool that close next.
        await cancel_and_wait(set(self._tasks))

    async def _carry(self, claim: ActionClaim) -> None:
        action = claim.action
        fields: dict[str, object] = {
            "action": action.kind.value,
            "receiver": action.receiver,
            "group_key": action.group_key,
            "user": action.user_id,
            "attempts": claim.attempts + 1,
        }
        click: _Click | None = None
        try:
            click = await self._take_up(claim)
            effect = await self._apply(click)
            if action.kind is ActionKind.ACK:
                # Also when already acknowledged: a retry after PagerDuty failed gets here.
                await acknowledge_pagers(self.store, self.runtime(), action.group_key, self.clock())
            if effect.changed:
                await self._note(click, effect.text)
            if click.channel is not None:
                await self._show(click.channel, action)
            await self.store.finish_action(claim, self.clock())
            log.info("slack action done: %s", effect.text, extra={**fields, "outcome": effect.text})
            self._count(action, "done" if effect.changed else "no_op")
        except CannotAct as exc:
            log.info("slack action ignored", extra={**fields, "why": str(exc)})
            self._count(action, "ignored")
            await self._finish_quietly(claim)
        except DeliveryError as exc:
            if exc.retryable:
                await self._failed(claim, click, str(exc), fields)
            else:
                # Slack will not take the edit (message gone, bot removed): what the click
                # did to the group stands, the message cannot show it.
                log.warning(
                    "slack action done, message not edited", extra={**fields, "error": str(exc)}
                )
                self._count(action, "done")
                await self._finish_quietly(claim)
        except FailedForNow as exc:
            await self._failed(claim, click, str(exc), fields)
        except StoreUnavailable as exc:
            # The lease runs out and the click is claimed again once the store is back.
            log.warning("slack action waits for the store", extra={**fields, "error": str(exc)})
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one bad click must not stop the worker
            log.exception("slack action crashed", extra=fields)
            await self._failed(claim, click, "internal error", fields)

    async def _take_up(self, claim: ActionClaim) -> _Click:
        """The click with what it acts on; CannotAct when that is not the group's current
        message (or the receiver shows no buttons any more)."""
        action = claim.action
        found = self.runtime().channels.get(action.receiver)
        channel = found if isinstance(found, SlackChannel) and found.interactive else None
        if action.names_no_message:
            if action.kind not in (ActionKind.ACK, ActionKind.UNACK):
                raise CannotAct("only acknowledgements come from the console")
        elif channel is None:
            raise CannotAct("the receiver no longer posts Slack messages with buttons")
        entry = await self.store.nflog_get(action.receiver, action.group_key, self.clock())
        state = entry.channel_state if entry is not None else {}
        if action.names_no_message:
            # Any receiver's group may be acknowledged from the console; its Slack
            # message, if it has one with buttons, shows it.
            return _Click(claim, channel if state.get("ts") else None, entry)
        if not is_current_message(state, action.channel, action.message_ts):
            raise CannotAct("not the group's current message")
        return _Click(claim, channel, entry)

    async def _latest_record(self, click: _Click) -> NotificationRecord | None:
        """The group's latest record, read once per click."""
        if not click.record_read:
            action = click.action
            records = await self.store.list_notifications(
                1, receiver=action.receiver, group_key=action.group_key
            )
            click.record, click.record_read = (records[0] if records else None), True
        return click.record

    async def _note(self, click: _Click, done: str) -> None:
        """Put what the click changed (`done`) on the timeline of the group's latest record."""
        action = click.action
        kind = _TIMELINE_KINDS[action.kind]
        record = await self._latest_record(click)
        if record is None:
            return
        who = action.user_name or action.user_id
        detail = {"user": action.user_id, "user_name": action.user_name, "action": action.id}
        if action.kind is ActionKind.SILENCE:
            detail["duration"] = format_duration(action.duration)
        text = f"{done} by {who} from {action.origin}"
        if action.kind is ActionKind.SILENCE:
            text += f" for {format_duration(action.duration)}"
        entry = TimelineEntry(self.clock(), kind, text, detail)
        await self.store.add_timeline([(record.id, entry)])
        if action.kind is ActionKind.ACK and done == "acknowledged":
            await self.store.add_rollups(entry.at, acknowledgement(record, entry.at))

    def _count(self, action: Action, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.slack_actions.labels(action.kind.value, outcome).inc()

    async def _finish_quietly(self, claim: ActionClaim) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self.store.finish_action(claim, self.clock())

    async def _failed(
        self, claim: ActionClaim, click: _Click | None, error: str, fields: dict[str, object]
    ) -> None:
        now = self.clock()
        give_up = now - claim.action.received_at >= ACTION_RETRY_FOR
        log.warning("slack action failed", extra={**fields, "error": error, "given_up": give_up})
        self._count(claim.action, "given_up" if give_up else "retrying")
        try:
            if give_up:
                await self._release(claim.action, error)
                if click is None:
                    # It failed before it was taken up: read what it is about now.
                    entry = await self.store.nflog_get(
                        claim.action.receiver, claim.action.group_key, now
                    )
                    click = _Click(claim, None, entry)
                await self._tell(
                    click, f"Gave up after {format_duration(ACTION_RETRY_FOR)}: {error}"
                )
                await self.store.finish_action(claim, now)
            else:
                delay = backoff(claim.attempts, base=RETRY_FIRST, cap=RETRY_MAX)
                await self.store.retry_action(claim, now + delay)
            await self._show_quietly(claim.action)
        except StoreUnavailable:
            pass

    async def _show_quietly(self, action: Action) -> None:
        """Show the group's state after a failure (a silence still being created, or none)."""
        channel = self.runtime().channels.get(action.receiver)
        if not isinstance(channel, SlackChannel):
            return
        try:
            await self._show(channel, action)
        except DeliveryError as exc:
            log.warning("could not edit the message", extra={"error": str(exc)})

    async def _state(self, action: Action) -> GroupActions:
        found = await self.store.group_actions(action.receiver, action.group_key)
        return found or GroupActions(action.receiver, action.group_key)

    async def _update(
        self, action: Action, change: Callable[[GroupActions], GroupActions | None]
    ) -> GroupActions | None:
        """Apply `change` by compare-and-set until it sticks; None when `change` says
        there is nothing to do (it returns None) or someone else keeps changing it."""
        for _ in range(CAS_ROUNDS):
            state = await self._state(action)
            wanted = change(state)
            if wanted is None:
                return None
            written = await self.store.set_group_actions(wanted)
            if written is not None:
                return written
        return None

    async def _apply(self, click: _Click) -> Effect:
        action = click.action
        kind = action.kind
        if kind is ActionKind.ACK:
            return await self.acknowledge(action, click.entry)
        if kind is ActionKind.UNACK:
            done = await self._update(action, lambda s: s.cleared_ack() if s.acknowledged else None)
            return Effect("unacknowledged", True) if done else Effect("not acknowledged", False)
        if kind is ActionKind.SILENCE:
            return await self._silence(click)
        return await self._unsilence(click)

    async def acknowledge(self, action: Action, entry: NflogEntry | None) -> Effect:
        """The one place a group becomes acknowledged, whether from a Slack button or the
        console (`action.origin`): compare-and-set, so it happens once; then its escalation
        ends."""
        done = await self._update(
            action,
            lambda s: (
                None
                if s.acknowledged
                else replace(
                    s,
                    acked_by=action.user_id,
                    acked_by_name=action.user_name,
                    acked_at=action.received_at,
                )
            ),
        )
        if done is None:
            return Effect("already acknowledged", False)
        await self._acknowledged(action, entry)
        return Effect("acknowledged", True)

    async def _acknowledged(self, action: Action, entry: NflogEntry | None) -> None:
        """An acknowledgement ends the group's escalation; count how long it took. (A
        console acknowledgement of a group the log no longer holds has no `entry`.)"""
        waited = await escalation.acknowledged(
            self.store, action.receiver, action.group_key, action.received_at
        )
        if waited is None and entry is not None:
            waited = max(0.0, action.received_at - entry.first_notified_at)
        if self.metrics is not None and waited is not None:
            self.metrics.time_to_acknowledge.labels(action.receiver).observe(waited)
        if entry is not None:
            # A resolve lost while acknowledged is caught by asking Alertmanager too.
            await self._watch(action, posted_scope(entry.channel_state))

    async def _watch(self, action: Action, scope: SilenceScope | None) -> None:
        cfg = None
        if scope is not None and scope.alertmanager:
            cfg = self.runtime().config.alertmanager_named(scope.alertmanager)
        await watch.arm(self.store, cfg, action.receiver, action.group_key, scope, self.clock())

    async def _silence(self, click: _Click) -> Effect:
        action = click.action
        assert click.entry is not None, "a Slack click is taken up only on a logged message"
        # What the message offered when it was posted, not what later webhooks say.
        scope = posted_scope(click.entry.channel_state)
        if scope is None or not scope.offered:
            why = scope.unavailable if scope is not None else "it was posted without one"
            await self._tell(click, f"This message offers no silence: {why}.")
            raise CannotAct(f"no silence offered: {why}")
        now = self.clock()
        reserved = await self._update(
            action,
            lambda s: (
                None
                if s.silenced(now) or (s.silence_pending and s.silence_pending != action.id)
                else (
                    s if s.silence_pending == action.id else replace(s, silence_pending=action.id)
                )
            ),
        )
        state = await self._state(action)
        if reserved is None and state.silence_pending != action.id:
            return Effect("already silenced", False)
        if scope.by_router:
            silence_id = ""
        else:
            silence_id = await self._create_silence(click, scope)
        start = self.clock()
        await self._update(
            action,
            lambda s: (
                replace(
                    s,
                    silenced_by=action.user_id,
                    silenced_by_name=action.user_name,
                    silenced_at=start,
                    silenced_until=start + action.duration,
                    silence_id=silence_id,
                    silence_alertmanager=scope.alertmanager,
                    silence_matchers=scope.matcher_text() if scope.matchers else "",
                    silence_pending="",
                    last_error="",
                )
                if s.silence_pending == action.id
                else None
            ),
        )
        if silence_id:
            # Alertmanager sends no resolve for what it silences: the router asks it.
            await self._watch(action, scope)
        return Effect(f"silenced ({silence_id or 'by the router'})", True)

    async def _create_silence(self, click: _Click, scope: SilenceScope) -> str:
        action = click.action
        silences = self.silences(scope.alertmanager)
        if silences is None:
            text = f"Could not create the silence: Alertmanager {scope.alertmanager!r} is no"
            text += " longer configured"
            await self._release(action, text)
            await self._tell(click, text)
            raise CannotAct(text)
        marker = marker_of(action)
        matchers = [Matcher(name, op, value) for name, op, value in scope.matchers]
        try:
            found = await silences.find(marker, matchers)
            if found:
                return found
            now = datetime.fromtimestamp(self.clock(), UTC)
            return await silences.create(
                matchers,
                starts_at=now,
                ends_at=datetime.fromtimestamp(self.clock() + action.duration, UTC),
                created_by=action.user_name or f"slack:{action.user_id}",
                comment=f"Silenced from Slack by {action.user_name or action.user_id}"
                f" from the message {await self._link(click)} {marker}",
            )
        except SilenceError as exc:
            await self._say_failure(click, f"Could not create the silence: {exc}", exc)
            raise FailedForNow(str(exc)) from None

    async def _release(self, action: Action, error: str) -> None:
        """Nothing holds the group "being silenced" by `action` any more."""
        await self._update(
            action,
            lambda s: (
                replace(s, silence_pending="", last_error=error)
                if s.silence_pending == action.id
                else None
            ),
        )

    async def _say_failure(self, click: _Click, text: str, exc: SilenceError) -> None:
        """Tell the thread once per click why it is not done yet (or not at all)."""
        if not exc.retryable:
            await self._release(click.action, str(exc))
            await self._tell(click, text)
            raise CannotAct(text)
        if click.claim.attempts == 0:
            await self._tell(click, f"{text} (trying again)")

    async def _link(self, click: _Click) -> str:
        """The message the click was on: its Slack link, and its console page."""
        action = click.action
        state = click.entry.channel_state if click.entry is not None else {}
        links = [message_link(state, action.team_domain, action.channel, action.message_ts)]
        external = self.runtime().config.server.external_url
        record = await self._latest_record(click) if external else None
        if record is not None:
            links.append(f"{external}/ui/notifications/{record.id}")
        return " ".join(links)

    async def _unsilence(self, click: _Click) -> Effect:
        action = click.action
        state = await self._state(action)
        if not state.silenced(self.clock()):
            return Effect("not silenced", False)
        if state.silence_id:
            silences = self._silences_of(state)
            if silences is None:
                text = (
                    f"Could not expire the silence {state.silence_id}: its Alertmanager"
                    f" {state.silence_alertmanager!r} is no longer configured"
                )
                await self._tell(click, text)
                raise CannotAct(text)
            try:
                await silences.expire(state.silence_id)
            except SilenceError as exc:
                text = f"Could not expire the silence {state.silence_id}: {exc}"
                if not exc.retryable:
                    await self._tell(click, text)
                    raise CannotAct(text) from None
                if click.claim.attempts == 0:
                    await self._tell(click, f"{text} (trying again)")
                raise FailedForNow(str(exc)) from None
        silence_id = state.silence_id
        await self._update(
            action,
            lambda s: s.cleared_silence() if s.silence_id == silence_id and s.silenced_by else None,
        )
        return Effect("unsilenced", True)

    def _silences_of(self, state: GroupActions) -> Silences | None:
        """The client of the Alertmanager holding the group's silence (a silence made
        before that was kept: the only configured Alertmanager, if there is one)."""
        if state.silence_alertmanager:
            return self.silences(state.silence_alertmanager)
        entries = self.runtime().config.alertmanager_entries
        return self.silences(entries[0].display_name) if len(entries) == 1 else None

    async def _show(self, channel: SlackChannel, action: Action) -> None:
        """Edit the message to what the group's state is now. Both are read again, not
        taken from when the click was taken up: a delivery may have edited the message
        meanwhile (the edit starts from what it last showed), another click the state."""
        entry = await self.store.nflog_get(action.receiver, action.group_key, self.clock())
        if entry is None:
            return
        await channel.show_actions(entry.channel_state, await self._state(action))

    async def _tell(self, click: _Click, text: str) -> None:
        """Reply `text` in the thread of the message the click is about, if it has one."""
        channel = self.runtime().channels.get(click.action.receiver)
        if not isinstance(channel, SlackChannel) or click.entry is None:
            return
        try:
            await channel.tell_thread(click.entry.channel_state, escape_mrkdwn(text))
        except DeliveryError as exc:
            log.warning("could not reply in the thread", extra={"error": str(exc)})
