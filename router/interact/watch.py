"""Silences that end right: groups silenced or acknowledged from a button are checked
against their Alertmanager, which sends no resolve for a silenced alert.

Each such group has a durable timer (kind "watch") in the store, so the replicas share
the polls: whichever claims a due timer lists the group's alerts (`GET /api/v2/alerts`
with the matchers frozen on its message) and moves the timer on by the Alertmanager's
`poll_interval`. An alert the group's receiver was told fires that is missing from two
trusted listings in a row has resolved: resolved events are made for it and recorded as a
webhook's would be, so dedup, the Slack edit, the thread reply, the email and the record
(reason `resolved_while_silenced`) are the pipeline's. A listing is not trusted when
Alertmanager could not be asked, or restarted since the group was first checked less
than RESTART_GRACE ago (it forgets its alerts until Prometheus sends them again). When
the silence ends on its own while the group still fires, the thread says so once.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from router.alertmanager_api.client import AlertmanagerClient, SilenceError
from router.channels.base import DeliveryError
from router.channels.slack.channel import SlackChannel
from router.config.schema import AlertmanagerAPI
from router.durations import format_duration
from router.ingest.intake import plan_notifications
from router.matchers import Matcher, matches_all
from router.metrics import Metrics
from router.model import (
    Event,
    GroupActions,
    NflogEntry,
    SilenceScope,
    Status,
    TimelineEntry,
    format_time,
)
from router.notify.dedup import RESOLVED_BY_POLL
from router.notify.escalation import firing_events
from router.notify.timerloop import TimerLoop
from router.render.text import escape_mrkdwn
from router.runtime import Runtime
from router.store.protocols import Store, Timer, Timers

log = logging.getLogger(__name__)

KIND = "watch"
# A claimed check is held this long: two Alertmanager calls, each with its timeout.
LEASE = 60.0
# Listings an alert must be missing from, in a row, to count as resolved.
MISSES = 2
# An Alertmanager that started this recently may not have heard again from Prometheus
# (which sends every evaluation interval, and resends at least every minute).
RESTART_GRACE = 120.0
CAS_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Watch:
    """One group being checked: where, with which matchers, and each alert's misses."""

    receiver: str
    group_key: str
    alertmanager: str
    matchers: tuple[tuple[str, str, str], ...]
    missing: Mapping[str, int]
    # When checking began: an Alertmanager up since before then has never forgotten the
    # group's alerts.
    armed_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Watch:
        data = json.loads(text)
        data["matchers"] = tuple((str(n), str(o), str(v)) for n, o, v in data["matchers"])
        data["missing"] = {str(k): int(v) for k, v in data["missing"].items()}
        return cls(**data)


def watch_key(receiver: str, group_key: str) -> str:
    return json.dumps([receiver, group_key], separators=(",", ":"))


async def arm(
    store: Timers,
    alertmanager: AlertmanagerAPI | None,
    receiver: str,
    group_key: str,
    scope: SilenceScope | None,
    now: float,
) -> bool:
    """Check the group from now on (a click silenced or acknowledged it), if its message
    names an Alertmanager and matchers to ask it with."""
    if alertmanager is None or scope is None or not scope.alertmanager or not scope.matchers:
        return False
    watch = Watch(receiver, group_key, scope.alertmanager, scope.matchers, {}, now)
    key = watch_key(receiver, group_key)
    return await store.set_timer(KIND, key, now + alertmanager.poll_interval, watch.to_json())


def listed(alert: Mapping[str, Any]) -> tuple[str, frozenset[tuple[str, str]]]:
    """An alert of the listing: its fingerprint and its labels."""
    labels = alert.get("labels") or {}
    return str(alert.get("fingerprint", "")), frozenset((str(k), str(v)) for k, v in labels.items())


def trusted(watch: Watch, started: datetime | None, now: float) -> bool:
    """Whether a listing shows every alert Alertmanager has: it has run since before the
    group was checked, or for RESTART_GRACE (Prometheus has sent everything again)."""
    if started is None:
        return True
    began = started.timestamp()
    return began <= watch.armed_at or began <= now - RESTART_GRACE


def still_listed(event: Event, alerts: Sequence[Mapping[str, Any]]) -> bool:
    """Whether Alertmanager still holds the alert of `event` (same fingerprint or labels)."""
    labels = frozenset(event.labels_as_sent().items())
    return any(fp == event.fingerprint or seen == labels for fp, seen in map(listed, alerts))


class SilenceWatcher(TimerLoop):
    """Claims due checks and carries them out until stopped; one of possibly many replicas."""

    what = "silence checks"

    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(store, runtime, metrics, clock=clock, wake=wake)
        self._clients: dict[str, tuple[AlertmanagerAPI, AlertmanagerClient]] = {}
        # When this replica checked a group of each Alertmanager, within its poll interval.
        self._polled: dict[str, deque[float]] = {}

    def _client(self, cfg: AlertmanagerAPI) -> AlertmanagerClient:
        known = self._clients.get(cfg.display_name)
        if known is not None and known[0] == cfg:
            return known[1]
        client = AlertmanagerClient(cfg, self.runtime().http)
        self._clients[cfg.display_name] = (cfg, client)
        return client

    def _budget(self, cfg: AlertmanagerAPI, now: float) -> bool:
        """Take one check of `cfg`'s groups from this replica's budget, if any is left."""
        polled = self._polled.setdefault(cfg.display_name, deque())
        while polled and polled[0] <= now - cfg.poll_interval:
            polled.popleft()
        if len(polled) >= cfg.poll_max_groups:
            return False
        polled.append(now)
        return True

    async def tick(self) -> int:
        """Carry out every check due now that the budget allows; how many were made."""
        now = self.clock()
        config = self.runtime().config
        limit = sum(e.poll_max_groups for e in config.alertmanager_entries) or 1
        due = await self.store.count_due(KIND, now)
        if not due:
            self.metrics.silence_polls_waiting.set(0)
            return 0
        timers = await self.store.claim_timers(KIND, now, limit, LEASE)
        done = 0
        for timer in timers:
            watch = Watch.from_json(timer.body)
            cfg = config.alertmanager_named(watch.alertmanager)
            if cfg is None:
                await self.store.finish_timer(timer, None, "")
                continue
            if not self._budget(cfg, now):
                # Over budget: due as it was, so the oldest are checked first next round.
                await self.store.finish_timer(timer, timer.due, timer.body)
                continue
            done += 1
            await self._check(timer, watch, cfg, now)
        self.metrics.silence_polls_waiting.set(await self.store.count_due(KIND, now))
        return done

    async def _check(self, timer: Timer, watch: Watch, cfg: AlertmanagerAPI, now: float) -> None:
        entry = await self.store.nflog_get(watch.receiver, watch.group_key, now)
        if entry is None or not entry.firing:
            await self.store.finish_timer(timer, None, "")
            return
        state = await self.store.group_actions(watch.receiver, watch.group_key)
        if state is not None and state.silence_id and state.silenced_by:
            if state.silenced_until <= now:
                state = await self._silence_ended(state, entry, now)
        silenced = state is not None and state.silenced(now) and bool(state.silence_id)
        if state is None or not (silenced or state.acknowledged):
            await self.store.finish_timer(timer, None, "")
            return
        next_due = now + cfg.poll_interval
        name = cfg.display_name
        client = self._client(cfg)
        matchers = [Matcher(n, o, v) for n, o, v in watch.matchers]
        try:
            alerts = await client.alerts(matchers)
            # Asked after the listing: a restart before it shows here.
            started = await client.started_at()
        except SilenceError as exc:
            # Nothing is concluded from an Alertmanager that does not answer.
            self.metrics.silence_polls.labels(name, "failed").inc()
            log.info("silence check failed", extra={"alertmanager": name, "error": str(exc)})
            await self.store.finish_timer(timer, next_due, timer.body)
            return
        if not trusted(watch, started, now):
            self.metrics.silence_polls.labels(name, "restarted").inc()
            await self.store.finish_timer(timer, next_due, timer.body)
            return
        self.metrics.silence_polls.labels(name, "listed").inc()
        events = await firing_events(self.store, watch.receiver, watch.group_key, entry.firing)
        # An alert that joined the group outside the matchers is never in the listing, and
        # its silence does not cover it: Alertmanager sends its resolve itself.
        events = [e for e in events if matches_all(matchers, e.labels_as_sent())]
        missing = {
            e.fingerprint: watch.missing.get(e.fingerprint, 0) + 1
            for e in events
            if not still_listed(e, alerts)
        }
        gone = [e for e in events if missing.get(e.fingerprint, 0) >= MISSES]
        if gone:
            everything = len(gone) == len(entry.firing)
            await self._resolve(state, gone, everything, now)
            if everything:
                await self.store.finish_timer(timer, None, "")
                return
        left = {fp: n for fp, n in missing.items() if n < MISSES}
        await self.store.finish_timer(timer, next_due, replace(watch, missing=left).to_json())

    async def _resolve(
        self, state: GroupActions, gone: Sequence[Event], everything: bool, now: float
    ) -> None:
        """Tell the resolve Alertmanager did not send, as a webhook would have."""
        runtime = self.runtime()
        at = datetime.fromtimestamp(now, UTC)
        seen = at.strftime("%H:%M UTC")
        resolved = [
            replace(
                e,
                status=Status.RESOLVED,
                ends_at=at,
                origin={
                    "kind": RESOLVED_BY_POLL,
                    "seen": seen,
                    "while": "silenced" if state.silenced(now) else "acknowledged",
                },
            )
            for e in gone
        ]
        silences = runtime.config.slack.interactivity
        if (
            everything
            and state.silence_id
            and (silences is None or silences.expire_silence_on_resolve)
        ):
            await self._expire(state, now)
        notifications = plan_notifications(resolved, runtime.tree, at)
        await self.store.record(notifications)
        self.wake_deliverer()
        log.info(
            "resolved while silenced",
            extra={
                "receiver": state.receiver,
                "group_key": state.group_key,
                "alerts": len(resolved),
                "notifications": len(notifications),
            },
        )

    async def _expire(self, state: GroupActions, now: float) -> None:
        """The group resolved: its button's silence ends, so a recurrence is told."""
        cfg = self.runtime().config.alertmanager_named(state.silence_alertmanager)
        if cfg is None:
            return
        try:
            await self._client(cfg).expire(state.silence_id)
        except SilenceError as exc:
            log.warning("could not expire the silence", extra={"error": str(exc)})
            await self._note(
                state, now, "unsilenced", f"could not expire silence {state.silence_id}: {exc}"
            )
            return
        silence_id = state.silence_id
        await self._change(
            state, lambda s: s.cleared_silence() if s.silence_id == silence_id else None
        )
        await self._note(
            state,
            now,
            "unsilenced",
            f"silence {silence_id} expired: the group resolved (expire_silence_on_resolve)",
        )

    async def _silence_ended(
        self, state: GroupActions, entry: NflogEntry, now: float
    ) -> GroupActions | None:
        """The silence ran out while the group still fires: say so once, and forget it."""
        silence_id = state.silence_id
        changed = await self._change(
            state, lambda s: s.cleared_silence() if s.silence_id == silence_id else None
        )
        if changed is None:
            return await self.store.group_actions(state.receiver, state.group_key)
        ended = format_time(datetime.fromtimestamp(state.silenced_until, UTC))
        count = len(entry.firing)
        alerts = "alert still fires" if count == 1 else "alerts still fire"
        lasted = format_duration(state.silenced_until - state.silenced_at)
        text = f"The silence ended at {ended} after {lasted}: {count} {alerts}."
        await self._note(state, now, "unsilenced", text)
        channel = self.runtime().channels.get(state.receiver)
        if isinstance(channel, SlackChannel):
            try:
                await channel.tell_thread(entry.channel_state, ":bell: " + escape_mrkdwn(text))
                await channel.show_actions(entry.channel_state, changed)
            except DeliveryError as exc:
                log.warning("could not tell the thread", extra={"error": str(exc)})
        return changed

    async def _change(
        self, state: GroupActions, change: Callable[[GroupActions], GroupActions | None]
    ) -> GroupActions | None:
        current: GroupActions | None = state
        for _ in range(CAS_ROUNDS):
            if current is None:
                return None
            wanted = change(current)
            if wanted is None:
                return None
            written = await self.store.set_group_actions(wanted)
            if written is not None:
                return written
            current = await self.store.group_actions(state.receiver, state.group_key)
        return None

    async def _note(self, state: GroupActions, now: float, kind: str, text: str) -> None:
        records = await self.store.list_notifications(
            1, receiver=state.receiver, group_key=state.group_key
        )
        if records:
            entry = TimelineEntry(now, kind, text, {"group_key": state.group_key})
            await self.store.add_timeline([(records[0].id, entry)])
