"""Storm control per destination: one post per slot, a backlog folded into a digest.

A paced channel (Slack per channel, email per recipient set) names its destination with a
pace key and says how far apart its posts must be. Sends to one key queue here; a flusher
per key takes the key's next post slot from the store's ChannelBudget, so every replica on
one store shares one budget per destination, waits for it, and then sends the head of the
queue or, once `digest_threshold` notifications wait, the backlog as one digest (at most
MAX_DIGEST_LISTED alerts each, so a digest can list every alert it stands for). A digest's
further posts (its Slack thread) spend slots of the same budget. A 429's Retry-After holds
the destination's slots for every replica.

Slots are in wall-clock seconds (`time.time`), the one time base replicas share: pacing is
about how fast the destination sees posts, not about the service's injectable clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from router.cancel import cancel_and_wait
from router.channels.base import DeliveryError, PacedChannel
from router.durations import format_duration
from router.notify.digest import build_digest
from router.render.message import MAX_DIGEST_LISTED, Message
from router.store.protocols import ChannelBudget

log = logging.getLogger(__name__)

# The longest a send waits in memory for its destination's slot; a longer wait (a long
# Retry-After, or many replicas ahead) hands the claim back to the store for then.
MAX_PARK = 30.0


@dataclass(frozen=True, slots=True)
class Sent:
    """How a paced send went out: on its own (with its channel state) or in a digest."""

    state: Mapping[str, str]
    digest_id: str = ""


@dataclass
class _Waiting:
    channel: PacedChannel
    message: Message
    prior: Mapping[str, str]
    future: asyncio.Future[Sent] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class MemoryBudget:
    """Post slots of this process alone (what a Pacer without a store uses)."""

    def __init__(self) -> None:
        self._free: dict[str, float] = {}

    async def reserve_slot(self, key: str, interval: float, now: float) -> float:
        start = max(now, self._free.get(key, 0.0))
        self._free[key] = start + interval
        return start

    async def hold_slots(self, key: str, until: float) -> None:
        self._free[key] = max(self._free.get(key, 0.0), until)


class _TooLong(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"next slot in {wait:.1f}s")
        self.wait = wait


class Pacer:
    """Spaces sends per destination on a shared budget and folds backlogs into digests."""

    def __init__(
        self, budget: ChannelBudget | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.budget: ChannelBudget = budget if budget is not None else MemoryBudget()
        self.clock = clock
        self._queues: dict[str, deque[_Waiting]] = {}
        # Sends folded into a digest that is still being posted (its thread takes slots).
        self._in_digests = 0
        self._flushers: dict[str, asyncio.Task[None]] = {}
        # Told when a send starts waiting, so the worker pool can take more work.
        self.on_park: Callable[[], None] = lambda: None

    @property
    def parked(self) -> int:
        """Sends waiting for their destination's turn (or for their digest's thread to be
        posted), across all destinations."""
        return sum(len(q) for q in self._queues.values()) + self._in_digests

    async def send(self, channel: PacedChannel, message: Message, prior: Mapping[str, str]) -> Sent:
        """Wait for the destination's turn; raises DeliveryError like the channel would
        (and StoreUnavailable when the budget cannot be read)."""
        key = channel.pace_key
        waiting = _Waiting(channel, message, prior)
        self._queues.setdefault(key, deque()).append(waiting)
        self.on_park()
        if key not in self._flushers or self._flushers[key].done():
            self._flushers[key] = asyncio.create_task(self._flush(key), name=f"pacer:{key}")
        try:
            return await asyncio.shield(waiting.future)
        except asyncio.CancelledError:
            # Nobody will read the outcome now; retrieve it so it is not reported as lost.
            waiting.future.add_done_callback(_discard)
            queue = self._queues.get(key)
            if queue is not None and waiting in queue:
                queue.remove(waiting)
            raise

    async def close(self) -> None:
        """Stop every destination's flusher (the worker's stop calls it once no job waits)."""
        await cancel_and_wait(self._flushers.values())

    # -- slots -------------------------------------------------------------------------

    async def until_free(self, key: str) -> None:
        """Sleep until the key's next slot has started, taking none; _TooLong when it is
        more than MAX_PARK away."""
        while True:
            now = self.clock()
            # A zero interval only reads when the next slot starts: a send that will not
            # wait for it must not push every later slot back.
            ahead = await self.budget.reserve_slot(key, 0.0, now) - now
            if ahead > MAX_PARK:
                raise _TooLong(ahead)
            if ahead <= 0:
                return
            await asyncio.sleep(ahead)

    async def next_slot(self, key: str, interval: float) -> None:
        """Take the key's next slot and sleep until it starts; _TooLong (taking nothing)
        when it is more than MAX_PARK away. Taken right before the post it pays for, so
        the time spent building the post never bunches posts together."""
        await self.until_free(key)
        start = await self.budget.reserve_slot(key, interval, self.clock())
        wait = start - self.clock()
        if wait > 0:
            await asyncio.sleep(wait)

    async def hold(self, key: str, seconds: float) -> None:
        """No slot of `key` starts within `seconds` from now, for any replica."""
        await self.budget.hold_slots(key, self.clock() + seconds)

    # -- flushing ----------------------------------------------------------------------

    async def _flush(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while _live(queue):
                pace = queue[0].channel.pace
                try:
                    # The backlog grows while the destination is busy; what to send is
                    # decided once it is free, and each post then takes its own slot.
                    await self.until_free(key)
                except _TooLong as exc:
                    self._give_back(queue, exc.wait)
                    continue
                except Exception as exc:  # noqa: BLE001 - a store outage reaches every send
                    self._fail(list(queue), exc)
                    queue.clear()
                    continue
                if not _live(queue):
                    break
                if len(queue) >= pace.digest_threshold:
                    await self._send_digest(key, _batch(queue))
                else:
                    await self._send_one(key, queue.popleft())
        finally:
            if self._queues.get(key) is queue and not queue:
                del self._queues[key]

    @staticmethod
    def _give_back(queue: deque[_Waiting], wait: float) -> None:
        error = DeliveryError(
            "rate_limited",
            f"destination's next free slot is {format_duration(wait)} away (Retry-After)",
            retryable=True,
            retry_after=wait,
        )
        Pacer._fail(list(queue), error)
        queue.clear()

    @staticmethod
    def _fail(items: list[_Waiting], exc: BaseException) -> None:
        for item in items:
            if not item.future.done():
                item.future.set_exception(exc)

    async def _held(self, key: str, exc: BaseException) -> None:
        """After a failure: a Retry-After holds the destination for every replica."""
        if isinstance(exc, DeliveryError) and exc.retry_after:
            try:
                await self.hold(key, exc.retry_after)
            except Exception:  # noqa: BLE001 - the send's own failure is what gets reported
                log.warning("could not share a destination's Retry-After", exc_info=True)

    async def _send_one(self, key: str, item: _Waiting) -> None:
        if item.future.done():
            return
        try:
            await _Slots(self, key, item.channel.pace.interval).next()
            state = await item.channel.send(item.message, item.prior)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting job
            await self._held(key, exc)
            item.future.set_exception(exc)
        else:
            item.future.set_result(Sent(state))

    async def _send_digest(self, key: str, batch: list[_Waiting]) -> None:
        live = [item for item in batch if not item.future.done()]
        if not live:
            return
        channel = live[0].channel
        digest = build_digest(
            [item.message for item in live],
            destination=channel.destination,
            router_url=channel.pace.router_url,
        )
        log.info(
            "sending digest",
            extra={
                "channel_key": key,
                "notifications": len(live),
                "alerts": len(digest.alerts),
                "digest": digest.notification_id,
            },
        )
        self._in_digests += len(live)
        try:
            await channel.send_digest(digest, _Slots(self, key, channel.pace.interval))
        except Exception as exc:  # noqa: BLE001 - every folded job sees the failure
            await self._held(key, exc)
            self._fail(live, exc)
            return
        finally:
            self._in_digests -= len(live)
        for item in live:
            # The group keeps its own message (if it had one) for later updates.
            item.future.set_result(Sent(item.prior, digest_id=digest.notification_id))


class _Slots:
    """The slot gate a digest's further posts go through."""

    def __init__(self, pacer: Pacer, key: str, interval: float) -> None:
        self._pacer = pacer
        self._key = key
        self._interval = interval

    async def next(self) -> None:
        try:
            await self._pacer.next_slot(self._key, self._interval)
        except _TooLong as exc:
            raise DeliveryError(
                "rate_limited",
                f"destination held for {format_duration(exc.wait)} mid-digest",
                retryable=True,
                retry_after=exc.wait,
            ) from None

    async def hold(self, seconds: float) -> None:
        await self._pacer.hold(self._key, seconds)


def _live(queue: deque[_Waiting]) -> bool:
    """Drop sends nobody waits for any more from the head; whether any is left."""
    while queue and queue[0].future.done():
        queue.popleft()
    return bool(queue)


def _batch(queue: deque[_Waiting]) -> list[_Waiting]:
    """The next digest's sends: as many as keep it within MAX_DIGEST_LISTED alerts (at
    least two), so a digest lists everything it stands for."""
    batch: list[_Waiting] = []
    alerts = 0
    while queue:
        size = len(queue[0].message.firing) + len(queue[0].message.resolved)
        if len(batch) >= 2 and alerts + size > MAX_DIGEST_LISTED:
            break
        batch.append(queue.popleft())
        alerts += size
    return batch


def _discard(future: asyncio.Future[Sent]) -> None:
    if not future.cancelled():
        future.exception()
