"""What the workers of durable timers share (escalation, silence checks): the loop that
asks the store for due timers every TICK until stopped, waiting out store outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from router.metrics import Metrics
from router.runtime import Runtime
from router.store.protocols import Store, StoreUnavailable

log = logging.getLogger(__name__)

# How often the store is asked for due timers (a timer fires at most this late).
TICK = 1.0


class TimerLoop:
    """Runs `tick` every TICK until `stop()`; subclasses handle their kind of timer."""

    # What the log says when a round fails.
    what = "timers"
    # Seconds between rounds.
    every = TICK

    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.metrics = metrics
        self.clock = clock
        # New notifications were recorded: the deliverer looks now.
        self.wake_deliverer = wake
        self._stopping = asyncio.Event()

    async def tick(self) -> int:
        """Handle the timers due now; how many."""
        raise NotImplementedError

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except StoreUnavailable as exc:
                log.debug("%s wait for the store", self.what, extra={"error": str(exc)})
            except Exception:  # noqa: BLE001 - one bad timer must not stop the loop
                log.exception("%s: a round crashed", self.what)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every)

    def stop(self) -> None:
        self._stopping.set()
