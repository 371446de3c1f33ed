"""What is firing right now, as inhibition needs it: recorded per webhook, read cached."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

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
    """The store's firing alerts, cached until the next webhook changes them.

    Every delivery with inhibit rules needs the whole firing set; reading it once per
    change instead of once per delivery keeps storms cheap, and invalidating on record
    keeps a critical that arrived with its warnings inhibiting them at once.
    """

    def __init__(self, store: AlertStates, max_age: float = 5.0) -> None:
        self.store = store
        self.max_age = max_age
        self._cached: list[Mapping[str, str]] | None = None
        self._at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Alert states were recorded: the next read goes to the store."""
        self._generation += 1
        self._cached = None

    async def get(self, now: float) -> list[Mapping[str, str]]:
        """Label sets of every alert firing now."""
        cached = self._cached
        if cached is not None and now - self._at < self.max_age:
            return cached
        async with self._lock:
            if self._cached is not None and now - self._at < self.max_age:
                return self._cached
            generation = self._generation
            firing = await self.store.firing_alerts(now)
            # Only cache what no record has overtaken while we were reading.
            if generation == self._generation:
                self._cached, self._at = firing, now
            return firing
