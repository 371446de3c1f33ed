"""Escalation: while a group fires and nobody acknowledged it, tell each step's receiver once.

A chain is one durable timer per (receiver, group) in the store (kind "escalate"), armed
when the route's receiver is first told the group fires. Whichever replica claims the due
timer tells the step: it records a notification for the step's receiver under an id made
of the chain and the step, so a replica that dies after recording and before moving the
timer on leaves a claim that records nothing new when retaken. A step whose time passed
while every replica was down is due at the next start. An acknowledgement or the resolve
deletes the timer (the receivers escalated to are then told the resolve); a chain found
acknowledged or resolved when due stops there too (the console acknowledges without
knowing about chains). After its last step a chain stays
parked, so a reminder of the same incident does not start it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from router.channels.base import DeliveryError
from router.channels.slack.channel import SlackChannel
from router.durations import format_duration
from router.model import (
    Event,
    NflogEntry,
    Notification,
    RouteSettings,
    Status,
    TimelineEntry,
    format_time,
)
from router.notify.dedup import ESCALATION
from router.notify.timerloop import TimerLoop
from router.render.text import escape_mrkdwn
from router.store import rollup
from router.store.protocols import Store, StoreUnavailable, Timer, Timers

log = logging.getLogger(__name__)

KIND = "escalate"
# A claimed step is held this long: telling it is one store write and a Slack reply.
LEASE = 30.0
CLAIM_LIMIT = 50
# A chain past its last step stays parked this long (an incident rarely lasts longer),
# then is looked at again: still firing, parked again; resolved, gone.
PARKED = 86400.0
# Records read back to find the events of a group's firing alerts.
RECORDS_READ = 20


def chain_key(receiver: str, group_key: str) -> str:
    """The timer key of (receiver, group): JSON keeps any characters apart."""
    return json.dumps([receiver, group_key], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Chain:
    """One group's escalation: its steps as routed, when it started, how many were told,
    and where the first message is (Slack permalink, console record id)."""

    receiver: str
    group_key: str
    path: str
    steps: tuple[tuple[float, str], ...]
    started: float
    done: int = 0
    record_id: str = ""
    permalink: str = ""

    def due(self) -> float:
        """When the next step is due (parked after the last)."""
        if self.done < len(self.steps):
            return self.started + self.steps[self.done][0]
        return self.started + self.steps[-1][0] + PARKED

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Chain:
        data = json.loads(text)
        data["steps"] = tuple((float(a), str(r)) for a, r in data["steps"])
        return cls(**data)


async def arm(
    store: Timers,
    route: RouteSettings,
    group_key: str,
    now: float,
    *,
    record_id: str,
    channel_state: Mapping[str, str],
) -> bool:
    """Start the group's chain unless one runs (the first firing message starts it)."""
    chain = Chain(
        receiver=route.receiver,
        group_key=group_key,
        path=route.path,
        steps=route.escalate,
        started=now,
        record_id=record_id,
        permalink=channel_state.get("permalink", ""),
    )
    return await store.set_timer(
        KIND, chain_key(route.receiver, group_key), chain.due(), chain.to_json()
    )


async def stop(store: Timers, receiver: str, group_key: str) -> Chain | None:
    """End the group's chain (acknowledged, resolved); the chain it was, if any."""
    key = chain_key(receiver, group_key)
    timer = await store.get_timer(KIND, key)
    if timer is None:
        return None
    await store.cancel_timer(KIND, key)
    return Chain.from_json(timer.body)


async def acknowledged(store: Timers, receiver: str, group_key: str, at: float) -> float | None:
    """The group was acknowledged at `at`: its chain ends; how long it went unacknowledged
    (None when no chain ran)."""
    chain = await stop(store, receiver, group_key)
    return None if chain is None else max(0.0, at - chain.started)


async def firing_events(
    store: Store, receiver: str, group_key: str, fingerprints: frozenset[str]
) -> list[Event]:
    """The latest recorded event of each of the group's alerts in `fingerprints`."""
    found: dict[str, Event] = {}
    for record in await store.list_notifications(
        RECORDS_READ, receiver=receiver, group_key=group_key
    ):
        for data in record.alerts:
            fingerprint = str(data.get("fingerprint", ""))
            if fingerprint in fingerprints and fingerprint not in found:
                found[fingerprint] = Event.from_dict(data)
        if len(found) == len(fingerprints):
            break
    return list(found.values())


def step_id(chain: Chain, step: int, prefix: str = "esc") -> str:
    """The notification id of one step of one chain: the same on every replica."""
    text = f"{chain.receiver}\n{chain.group_key}\n{chain.started!r}\n{step}"
    return prefix + hashlib.sha256(text.encode()).hexdigest()[:29]


def step_route(chain: Chain, index: int, repeat_interval: float) -> RouteSettings:
    """How a step's receiver is told: no escalation of its own, resolves always."""
    return RouteSettings(
        receiver=chain.steps[index][1],
        path=f"{chain.path} > escalate[{index}]",
        repeat_interval=repeat_interval,
        send_resolved=True,
    )


def all_clear(
    chain: Chain, resolved: Sequence[Event], at: datetime, repeat_interval: float
) -> list[Notification]:
    """The resolve for each receiver the chain escalated to (each told once)."""
    if not resolved:
        return []
    seen: set[str] = set()
    out = []
    for index in range(min(chain.done, len(chain.steps))):
        route = step_route(chain, index, repeat_interval)
        if route.receiver in seen:
            continue
        seen.add(route.receiver)
        out.append(
            Notification(
                id=step_id(chain, index, "esr"),
                route=route,
                group_key=chain.group_key,
                events=list(resolved),
                created_at=at,
            )
        )
    return out


class Escalator(TimerLoop):
    """Tells due escalation steps until stopped; one of possibly many replicas."""

    what = "escalation"

    async def tick(self) -> int:
        """Tell every step due now; how many timers were handled."""
        now = self.clock()
        timers = await self.store.claim_timers(KIND, now, CLAIM_LIMIT, LEASE)
        for timer in timers:
            await self._handle(timer, now)
        return len(timers)

    async def _handle(self, timer: Timer, now: float) -> None:
        chain = Chain.from_json(timer.body)
        entry = await self.store.nflog_get(chain.receiver, chain.group_key, now)
        if entry is None or not entry.firing:
            await self.store.finish_timer(timer, None, "")
            await self._note(chain, now, "escalation stopped: the group resolved", "stopped")
            return
        state = await self.store.group_actions(chain.receiver, chain.group_key)
        if state is not None and state.acknowledged:
            await self.store.finish_timer(timer, None, "")
            who = state.acked_by_name or state.acked_by
            await self._note(chain, now, f"escalation stopped: acknowledged by {who}", "stopped")
            return
        if chain.done >= len(chain.steps) or now < chain.due():
            # Parked after its last step (still firing), or woken early: wait again.
            await self.store.finish_timer(timer, chain.due(), chain.to_json())
            return
        told = replace(chain, done=chain.done + 1)
        events = await self._record(chain, entry, now)
        if not events:
            await self.store.finish_timer(timer, told.due(), told.to_json())
            return
        # Moved on before it is announced or counted: only the one holder whose claim
        # moved the chain gets here, so a retaken claim neither repeats nor counts twice.
        if await self.store.finish_timer(timer, told.due(), told.to_json()):
            try:
                await self.store.add_rollups(
                    now, rollup.escalation(chain.receiver, events[0].labels)
                )
            except StoreUnavailable as exc:
                # A gap in the insights beats telling the step again.
                log.warning("escalation not counted", extra={"error": str(exc)})
            await self._announce(chain, entry, now)

    async def _record(self, chain: Chain, entry: NflogEntry, now: float) -> list[Event]:
        """Record the due step's notification; the events told (none when no event of the
        group is left)."""
        index = chain.done
        _, to = chain.steps[index]
        step = index + 1
        unacked = now - chain.started
        link = self._link(chain)
        origin = {
            "kind": ESCALATION,
            "step": str(step),
            "receiver": chain.receiver,
            "unacked": repr(round(unacked)),
            "link": link,
        }
        events = [
            replace(e, origin=origin)
            for e in await firing_events(self.store, chain.receiver, chain.group_key, entry.firing)
            if e.status is Status.FIRING
        ]
        if not events:
            log.warning("escalation found no events to tell", extra={"group_key": chain.group_key})
            return []
        route = step_route(chain, index, self.runtime().config.dedup.repeat_interval)
        notification = Notification(
            id=step_id(chain, index),
            route=route,
            group_key=chain.group_key,
            events=events,
            created_at=datetime.fromtimestamp(now, UTC),
        )
        # Recording the same id again changes nothing: a retaken claim tells nobody twice.
        await self.store.record([notification])
        self.wake_deliverer()
        self.metrics.escalations.labels(to, str(step)).inc()
        log.info(
            "escalated",
            extra={
                "receiver": chain.receiver,
                "group_key": chain.group_key,
                "to": to,
                "step": step,
            },
        )
        return events

    async def _announce(self, chain: Chain, entry: NflogEntry, now: float) -> None:
        """The step just told, on the first message's timeline and in its thread."""
        index = chain.done
        after, to = chain.steps[index]
        step = index + 1
        unacked = now - chain.started
        following = ""
        if step < len(chain.steps):
            next_after, next_to = chain.steps[step]
            due = datetime.fromtimestamp(chain.started + next_after, UTC)
            following = f"; next: step {step + 1} to {next_to} due at {format_time(due)}"
        text = (
            f"escalated to {to} (step {step} of {len(chain.steps)}): unacknowledged for"
            f" {format_duration(unacked)}{following}"
        )
        await self._note(chain, now, text, "escalated", to=to, step=str(step))
        await self._thread(
            chain,
            entry,
            f":rotating_light: Unacknowledged for {format_duration(after)}: escalated to"
            f" {escape_mrkdwn(to)} (step {step} of {len(chain.steps)}).",
        )

    def _link(self, chain: Chain) -> str:
        """The first message: its Slack permalink, else its console page."""
        if chain.permalink:
            return chain.permalink
        external = self.runtime().config.server.external_url
        if external and chain.record_id:
            return f"{external}/ui/notifications/{chain.record_id}"
        return ""

    async def _note(self, chain: Chain, now: float, text: str, kind: str, **detail: str) -> None:
        if chain.record_id:
            entry = TimelineEntry(now, kind, text, {"group_key": chain.group_key, **detail})
            await self.store.add_timeline([(chain.record_id, entry)])

    async def _thread(self, chain: Chain, entry: NflogEntry, text: str) -> None:
        channel = self.runtime().channels.get(chain.receiver)
        if not isinstance(channel, SlackChannel):
            return
        try:
            await channel.tell_thread(entry.channel_state, text)
        except DeliveryError as exc:
            log.warning("could not reply in the thread", extra={"error": str(exc)})


def describe(steps: Sequence[tuple[float, str]]) -> str:
    """`10m -> slack-oncall, 30m -> email-leads`, as `routes show` and the tester say it."""
    return ", ".join(f"{format_duration(after)} -> {to}" for after, to in steps)
