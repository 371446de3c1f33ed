"""What is firing right now, as inhibition needs it: recorded per webhook, read cached."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence

from router.model import AlertState, Event, Status
from router.store.protocols import AlertStates

# A firing alert that is not heard of again is forgotten after this long: Alertmanager
# re-sends firing groups at least every repeat_interval, so this outlives several of them.
FIRING_TTL = 86400.0


def alert_states(events: Sequence[Event], now: float, repeat_interval: float) -> list[AlertState]:
    """The alert states a webhook's events imply."""
    firing_ttl = max(FIRING_TTL, 3 * repeat_interval)
    return [
        AlertState(
            fingerprint=f"{e.source}/{e.fingerprint}",
            labels=dict(e.labels),
            firing=e.status is Status.FIRING and not e.one_shot,
            # A state that is not firing makes the store forget the alert.
            expires_at=now + firing_ttl,
        )
        for e in events
    ]


class FiringAlerts:
    """The store's firing alerts, cached while the store says they have not changed.

    Every delivery with inhibit rules needs the whole firing set. It is read again only
    when the store's alerts generation moved (a record on any replica changed what fires),
    or after `max_age`; the generation itself is one cheap read, done at most every
    `recheck` seconds, and at once after this process recorded alert states. So a source
    alert accepted by another replica inhibits here within `recheck`, and a storm of alerts
    that keep firing unchanged costs no re-reads.
    """

    def __init__(
        self,
        store: AlertStates,
        max_age: float = 5.0,
        *,
        recheck: float = 0.1,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.recheck = recheck
        # How stale the view may be is about real time, not the service's (injectable) clock.
        self._monotonic = monotonic
        self._cached: list[Mapping[str, str]] | None = None
        self._at = 0.0
        self._cached_generation = -1
        self._checked_at = -math.inf
        # Counts invalidations, so a check that an invalidation overtook does not count.
        self._invalidations = 0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Alert states were recorded here: the next read asks the store for the generation."""
        self._invalidations += 1
        self._checked_at = -math.inf

    def _fresh(self, now: float) -> bool:
        return self._cached is not None and now - self._at < self.max_age

    async def get(self, now: float) -> list[Mapping[str, str]]:
        """Label sets of every alert firing now."""
        cached = self._cached
        if cached is not None and self._fresh(now):
            if self._monotonic() - self._checked_at < self.recheck:
                return cached
        async with self._lock:
            checked = self._monotonic()
            if self._fresh(now) and checked - self._checked_at < self.recheck:
                assert self._cached is not None
                return self._cached
            # The generation is read before the set: a record landing in between makes the
            # next check read the set again, never hides the change.
            invalidations = self._invalidations
            generation = await self.store.alerts_generation()
            if invalidations == self._invalidations:
                self._checked_at = checked
            if self._cached is not None and self._fresh(now):
                if generation == self._cached_generation:
                    return self._cached
            firing = await self.store.firing_alerts(now)
            self._cached, self._at, self._cached_generation = firing, now, generation
            return firing
