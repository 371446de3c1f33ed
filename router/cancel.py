"""Ending background tasks for sure, even when a library loses a cancellation.

Python 3.11's `asyncio.wait_for`, which redis-py awaits on every write, returns the inner
result when the cancellation arrives in the same turn as that result: the task goes on as
if never cancelled and a shutdown that awaits it waits forever. Cancelling again until the
task has ended is the remedy (it is what trio and anyio do by design).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

# How long a cancelled task may take before it is cancelled again: long enough for a
# cleanup that awaits a round trip, short enough that a stuck shutdown is not noticed.
AGAIN_AFTER = 1.0


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], again_after: float = AGAIN_AFTER
) -> None:
    """Cancel `tasks` and return once every one has ended, their outcomes retrieved."""
    every = list(tasks)
    pending = {task for task in every if not task.done()}
    for task in pending:
        # One its caller cancelled just before gets its time too, not a second cancel
        # in the middle of its cleanup.
        if not task.cancelling():
            task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=again_after)
        for task in pending:
            task.cancel()
    # Retrieved, so an exception is not reported as never retrieved.
    await asyncio.gather(*every, return_exceptions=True)
