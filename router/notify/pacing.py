"""Storm control per destination channel: at most one post per interval, backlog as digest.

Slack allows about one message per second per channel. Sends to one channel queue here;
a flusher per channel lets one through per interval, and when the queue has grown past
`digest_threshold` it sends the whole backlog as one digest instead of making the last
notification wait minutes. A 429's Retry-After holds the whole channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from router.channels.base import Channel, DeliveryError
from router.notify.digest import build_digest
from router.render.message import Message
from router.render.text import format_duration

log = logging.getLogger(__name__)

# The longest a send waits in memory for its channel; longer waits go back to the store
# (well inside the delivery lease, so no other worker takes the claim meanwhile).
MAX_PARK = 30.0


@dataclass(frozen=True, slots=True)
class Sent:
    """How a paced send went out: on its own (with its channel state) or in a digest."""

    state: Mapping[str, str]
    digest_id: str = ""


@dataclass
class _Waiting:
    channel: Channel
    message: Message
    prior: Mapping[str, str]
    future: asyncio.Future[Sent] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Pacer:
    """Spaces sends per key (a Slack channel) and folds backlogs into digests.

    Its clock is monotonic real time, not the service's (injectable) wall clock: pacing is
    about how fast Slack sees posts.
    """

    def __init__(
        self,
        interval: float,
        digest_threshold: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.digest_threshold = digest_threshold
        self.clock = clock
        self._queues: dict[str, deque[_Waiting]] = {}
        self._next_slot: dict[str, float] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}
        # Told when a send starts waiting, so the worker pool can take more work.
        self.on_park: Callable[[], None] = lambda: None

    @property
    def parked(self) -> int:
        """Sends waiting for their channel's turn, across all channels."""
        return sum(len(q) for q in self._queues.values())

    async def send(
        self, key: str, channel: Channel, message: Message, prior: Mapping[str, str]
    ) -> Sent:
        """Wait for the channel's turn; raises DeliveryError like the channel would."""
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
        """Stop every channel's flusher (the worker's stop calls it once no job waits)."""
        for task in self._flushers.values():
            task.cancel()
        await asyncio.gather(*self._flushers.values(), return_exceptions=True)

    async def _flush(self, key: str) -> None:
        queue = self._queues[key]
        while queue:
            wait = self._next_slot.get(key, 0.0) - self.clock()
            if wait > MAX_PARK:
                # A long Retry-After: hand the backlog back to the store to retry then,
                # rather than hold claims in memory longer than their lease.
                self._give_back(queue, wait)
                continue
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if len(queue) >= self.digest_threshold:
                batch = list(queue)
                queue.clear()
                await self._send_digest(key, batch)
            else:
                await self._send_one(key, queue.popleft())
        del self._queues[key]

    @staticmethod
    def _give_back(queue: deque[_Waiting], wait: float) -> None:
        while queue:
            item = queue.popleft()
            if not item.future.done():
                item.future.set_exception(
                    DeliveryError(
                        "rate_limited",
                        f"channel held for {format_duration(wait)} by Retry-After",
                        retryable=True,
                        retry_after=wait,
                    )
                )

    def _hold(self, key: str, exc: DeliveryError | None) -> None:
        delay = self.interval
        if exc is not None and exc.retry_after:
            delay = max(delay, exc.retry_after)
        self._next_slot[key] = self.clock() + delay

    async def _send_one(self, key: str, item: _Waiting) -> None:
        if item.future.done():
            return
        try:
            state = await item.channel.send(item.message, item.prior)
        except DeliveryError as exc:
            self._hold(key, exc)
            item.future.set_exception(exc)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting job
            self._hold(key, None)
            item.future.set_exception(exc)
        else:
            self._hold(key, None)
            item.future.set_result(Sent(state))

    async def _send_digest(self, key: str, batch: list[_Waiting]) -> None:
        live = [item for item in batch if not item.future.done()]
        if not live:
            return
        digest = build_digest([item.message for item in live])
        log.info("sending digest", extra={"channel_key": key, "notifications": len(live)})
        try:
            await live[0].channel.send(digest, {})
        except Exception as exc:  # noqa: BLE001 - every folded job sees the failure
            self._hold(key, exc if isinstance(exc, DeliveryError) else None)
            for item in live:
                item.future.set_exception(exc)
            return
        self._hold(key, None)
        for item in live:
            # The group keeps its own message (if it had one) for later updates.
            item.future.set_result(Sent(item.prior, digest_id=digest.notification_id))


def _discard(future: asyncio.Future[Sent]) -> None:
    if not future.cancelled():
        future.exception()
