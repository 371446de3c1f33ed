"""The clock the service is given in tests: epoch seconds that move only when told."""

from __future__ import annotations

import time
from datetime import datetime


class FakeClock:
    """A wall clock (epoch seconds) standing still until the test moves it; it starts at
    `now`, else at the real time of its creation."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, at: datetime) -> None:
        self.now = at.timestamp()
