"""Backoff for failed deliveries: exponential with jitter, honouring Retry-After."""

from __future__ import annotations

import random

BASE_DELAY = 1.0
MAX_DELAY = 300.0


def backoff(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 0).

    Jitter spreads retries of a storm so they do not hit Slack or SMTP in lockstep; a
    server's Retry-After is a floor, never shortened by jitter.
    """
    draw = rng.random() if rng is not None else random.random()
    delay = min(cap, base * 2.0 ** min(attempt, 20))
    jittered = delay / 2 + draw * delay / 2
    if retry_after is not None and retry_after > 0:
        return max(retry_after + draw * 0.25, jittered if attempt > 2 else retry_after)
    return jittered
