"""The judge: which heartbeats are missing, decided by one replica at a time.

Every replica runs a Judge; each tick it asks the store for the JUDGE role (a lease of
`state.lease`, renewed every tick), and only its holder decides. Decisions come from the
durable last-beat times, so a new holder (a restart, a takeover) carries on where the last
one stopped. Nothing is judged before this process has been up for a heartbeat's interval
plus grace: beats missed while the router was down are not the sender's fault.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Gauge

from router.config.heartbeats import Heartbeats
from router.config.schema import Config
from router.heartbeats import missing
from router.ingest.intake import plan_notifications
from router.model import Event
from router.notify.firing import FiringAlerts, alert_states
from router.routing.tree import RouteTree
from router.store import rollup
from router.store.beats import HeartbeatState
from router.store.protocols import Store, StoreUnavailable

log = logging.getLogger(__name__)

# The store role whose holder judges every heartbeat.
JUDGE = "heartbeats"
# How often heartbeats are judged (and the role renewed): an alarm comes at most this long
# after interval + grace.
TICK = 1.0
# A missing heartbeat's event is recorded again this often, so the route's repeat_interval
# reminds people as it would of an alert Alertmanager keeps sending.
RESEND_EVERY = 60.0


class Routing(Protocol):
    """What the judge needs of the running config (the service's Runtime)."""

    @property
    def config(self) -> Config: ...

    @property
    def tree(self) -> RouteTree: ...

    @property
    def heartbeats(self) -> Heartbeats: ...


class Judge:
    """Judges heartbeats every `every` seconds (TICK) while `run` runs; `tick` is one
    judgement."""

    def __init__(
        self,
        store: Store,
        routing: Callable[[], Routing],
        firing: FiringAlerts,
        wake: Callable[[], None],
        clock: Callable[[], float],
        *,
        lease: float,
        last_beat: Gauge | None = None,
        every: float = TICK,
    ) -> None:
        self._store = store
        self._routing = routing
        self._firing = firing
        self._wake = wake
        self._clock = clock
        self._lease = lease
        self._last_beat = last_beat
        self._every = every
        self._started: float | None = None
        self._lock = asyncio.Lock()
        # When this process last recorded each missing heartbeat's event.
        self._sent: dict[str, float] = {}
        self._exported: set[str] = set()
        self._failing = False
        self._idle = False

    def start(self) -> None:
        """The service is up from now: the clock of "up for interval + grace" starts."""
        if self._started is None:
            self._started = self._clock()

    async def run(self) -> None:
        self.start()
        while True:
            try:
                await self.tick()
                if self._failing:
                    self._failing = False
                    log.info("heartbeats are judged again")
            except StoreUnavailable as exc:
                if not self._failing:
                    self._failing = True
                    log.warning("heartbeats cannot be judged", extra={"error": str(exc)})
            except Exception:  # noqa: BLE001 - the watcher of the watchers must not die
                log.exception("judging heartbeats failed; trying again")
            await asyncio.sleep(self._every)

    async def tick(self) -> None:
        """Judge every heartbeat once (if this process holds the role)."""
        self.start()
        async with self._lock:
            routing = self._routing()
            specs = routing.heartbeats
            if not len(specs) and self._idle:
                # None configured and none stored: nothing to ask the store each second.
                return
            now = self._clock()
            leading = await self._store.lead(JUDGE, self._lease)
            states = await self._store.heartbeat_states()
            self._idle = not len(specs) and not states
            self._export(specs, states)
            if not leading:
                self._sent.clear()
                return
            await self._judge(routing, specs, states, now)

    async def _judge(
        self, routing: Routing, specs: Heartbeats, stored: list[HeartbeatState], now: float
    ) -> None:
        states = {s.name: s for s in stored}
        if set(states) != set(specs.names):
            gone = [s for name, s in states.items() if specs.get(name) is None]
            # Resolved before forgotten: nobody is left with an alarm that never ends.
            await self._record(
                routing,
                [
                    missing.forgotten(s.name, s.missing_labels, s.missing_since, now)
                    for s in gone
                    if s.missing_since is not None
                ],
                now,
            )
            for s in gone:
                self._sent.pop(s.name, None)
                log.info("heartbeat forgotten: no longer configured", extra={"heartbeat": s.name})
            await self._store.track_heartbeats(specs.names, now)
            states = {s.name: s for s in await self._store.heartbeat_states()}
        assert self._started is not None
        for heartbeat in specs:
            state = states.get(heartbeat.name)
            if state is None:
                continue
            last = state.last_beat
            if state.missing_since is None:
                heard = last if last is not None else state.since
                if now < max(heard, self._started) + heartbeat.window:
                    continue
                labels = missing.missing_labels(heartbeat, routing.config)
                event = missing.firing(heartbeat, labels, heard, last is not None)
                # The event first: a verdict stored without its event would never alarm.
                await self._record(routing, [event], now)
                await self._store.set_missing(heartbeat.name, heard, labels)
                # Counted once, after the verdict: reports say what went missing.
                await self._count_missing(heartbeat.name, now)
                self._sent[heartbeat.name] = now
                log.warning(
                    "heartbeat missing",
                    extra={"heartbeat": heartbeat.name, "silent_for": round(now - heard, 3)},
                )
            elif last is not None and now < last + heartbeat.window:
                event = missing.resolved(
                    heartbeat.name,
                    state.missing_labels,
                    state.missing_since,
                    heartbeat.window,
                    last,
                )
                await self._record(routing, [event], now)
                await self._store.set_missing(heartbeat.name, None)
                self._sent.pop(heartbeat.name, None)
                log.info(
                    "heartbeat beats again",
                    extra={
                        "heartbeat": heartbeat.name,
                        "missing_for": round(last - state.missing_since, 3),
                    },
                )
            elif now - self._sent.get(heartbeat.name, float("-inf")) >= RESEND_EVERY:
                event = missing.firing(
                    heartbeat, state.missing_labels, state.missing_since, last is not None
                )
                await self._record(routing, [event], now)
                self._sent[heartbeat.name] = now

    async def _count_missing(self, name: str, now: float) -> None:
        try:
            await self._store.add_rollups(now, rollup.heartbeat_missing(name))
        except StoreUnavailable as exc:
            # A gap in the reports beats judging the heartbeat again.
            log.warning("missing heartbeat not counted", extra={"error": str(exc)})

    async def _record(self, routing: Routing, events: Sequence[Event], now: float) -> None:
        """Route and record events as the intake records a webhook's."""
        if not events:
            return
        config = routing.config
        at = datetime.fromtimestamp(now, UTC)
        notifications = plan_notifications(events, routing.tree, at)
        alerts = (
            alert_states(events, now, config.dedup.repeat_interval) if config.inhibit_rules else []
        )
        await self._store.record(notifications, alerts=alerts)
        if alerts:
            self._firing.invalidate()
        self._wake()

    def _export(self, specs: Heartbeats, states: Sequence[HeartbeatState]) -> None:
        """`alert_router_heartbeat_last_beat_timestamp_seconds`, every replica alike."""
        if self._last_beat is None:
            return
        shown = set()
        for state in states:
            if state.last_beat is not None and specs.get(state.name) is not None:
                self._last_beat.labels(state.name).set(state.last_beat)
                shown.add(state.name)
        for name in self._exported - shown:
            self._last_beat.remove(name)
        self._exported = shown
