"""`cancel_and_wait`: background tasks end at shutdown even when a cancellation is lost."""

from __future__ import annotations

import asyncio

from router.cancel import cancel_and_wait


async def test_a_task_that_lost_its_cancellation_in_wait_for_is_cancelled_again_and_ends() -> None:
    # A loop like the heartbeat judge's: each round awaits a reply through wait_for, as
    # redis-py does for every command it writes.
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
    rounds = 0

    async def judge() -> None:
        nonlocal rounds
        while True:
            reply = loop.create_future()
            await replies.put(reply)
            await asyncio.wait_for(reply, timeout=60)
            rounds += 1

    task = asyncio.create_task(judge())
    first = await replies.get()
    # The reply and the cancellation in the same turn: Python 3.11's wait_for hands the
    # reply back and the cancellation is gone; later versions raise CancelledError.
    first.set_result(None)
    await cancel_and_wait([task], again_after=0.01)
    assert task.cancelled()
    assert rounds <= 1


async def _with_cleanup(cleaned: asyncio.Event) -> None:
    """Waits until cancelled, then runs a cleanup that awaits before it sets `cleaned`."""
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(0.01)
        cleaned.set()


async def test_a_task_ending_on_the_first_cancellation_finishes_its_cleanup() -> None:
    cleaned = asyncio.Event()
    task = asyncio.create_task(_with_cleanup(cleaned))
    await asyncio.sleep(0)
    # Its cleanup awaits: not cut short while it is within `again_after`.
    await cancel_and_wait([task], again_after=30)
    assert cleaned.is_set()
    assert task.cancelled()


async def test_a_task_that_failed_before_the_cancellation_is_waited_for_and_not_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("gone before shutdown")

    failed = asyncio.create_task(fails())
    idle = asyncio.create_task(asyncio.Event().wait())
    await asyncio.wait([failed])
    await cancel_and_wait([failed, idle])
    assert isinstance(failed.exception(), RuntimeError)
    assert idle.cancelled()


async def test_a_task_its_caller_already_cancelled_is_not_cancelled_again_during_its_cleanup() -> (
    None
):
    cleaned = asyncio.Event()
    task = asyncio.create_task(_with_cleanup(cleaned))
    await asyncio.sleep(0)
    # As the enricher does with overdue lookups: cancelled first, then waited for, here
    # once the task is inside its cleanup.
    task.cancel()
    await asyncio.sleep(0)
    await cancel_and_wait([task], again_after=30)
    assert cleaned.is_set()
    assert task.cancelled()
