"""The SQLite engine: one writer thread that owns the writing connection, and reader
threads beside it.

Operations queued while a transaction commits are run together in the next one (group
commit), so one fsync covers many webhooks and the event loop never blocks on disk. Each
operation runs in a savepoint of its own: one that fails is undone alone, and only its
caller sees the error.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from router.store.protocols import StoreUnavailable

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
# Who waits for an operation's result: a coroutine on an event loop (every store call), or
# a thread (opening, closing, the writer's own chores).
Reply = Future[Any] | asyncio.Future[Any]
Op = tuple[Operation, Reply]

# Operations committed together at most.
BATCH = 256


class Chores(Protocol):
    """Work the writer thread does besides the operations queued on it, in its own time
    (the text index's backlog)."""

    def idle_after(self) -> float | None:
        """How long the writer waits for an operation before it runs `idle`; None: there
        is nothing to do, it waits for operations only."""
        ...

    def idle(self, conn: sqlite3.Connection) -> None:
        """What the writer does once idle for `idle_after` (committed on its own)."""
        ...

    def rider(self) -> Operation | None:
        """Work committed with the batch about to run, if any is due."""
        ...

    def final(self) -> Operation | None:
        """Work committed before the writer stops, if any."""
        ...


class Engine:
    """The writer thread (group commit, a savepoint per operation) and a pool of readers
    on one SQLite file in WAL mode."""

    def __init__(
        self,
        path: str,
        connect: Callable[[], sqlite3.Connection],
        *,
        chores: Chores | None = None,
        readers: int = 2,
    ) -> None:
        self.path = path
        self._connect = connect
        self._chores = chores
        self._queue: queue.SimpleQueue[Op] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._open_error = ""
        # Console and API reads, beside the writer (one connection per reader thread).
        self._reader_pool = ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="sqlite-read"
        )
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        # Operations queued on the writer and not answered yet.
        self._writes = 0

    @property
    def running(self) -> bool:
        """Whether operations are taken: opened, and not closed since."""
        return self._thread is not None and not self._closed

    def not_open(self) -> StoreUnavailable:
        """What a call says while the engine is not running (and why, when opening failed)."""
        return StoreUnavailable(f"sqlite store is not open{self._open_error}")

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> bool:
        """Start the writer on a connection from `connect` (StoreUnavailable if that
        fails); False when it was started before (closed or not), and nothing is done."""
        if self._thread is not None:
            return False
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        try:
            await asyncio.wrap_future(ready)
        except (sqlite3.Error, OSError) as exc:
            self._thread = None
            # Said by every call until an open succeeds: why the store is not open.
            self._open_error = f": cannot open {self.path}: {exc}"
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._open_error = ""
        return True

    async def stop(self) -> None:
        """Stop the writer after what is queued, so that `open` starts from scratch."""
        if self._thread is None:
            return
        stopped: Future[None] = Future()
        self._queue.put((_STOP, stopped))
        await asyncio.wrap_future(stopped)
        self._thread = None

    async def close(self) -> None:
        """Commit what is queued, stop the writer and close every connection."""
        if self._thread is None or self._closed:
            return
        fut: Future[None] = Future()
        self._queue.put((_STOP, fut))
        self._closed = True
        await asyncio.wrap_future(fut)
        thread = self._thread
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 5.0)
        self._reader_pool.shutdown(wait=True)
        for conn in self._readers:
            conn.close()
        self._readers.clear()

    # -- calls ---------------------------------------------------------------------------

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the writer, in the next transaction; its result once committed."""
        if not self.running:
            raise self.not_open()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, fut))
        self._writes += 1
        try:
            return await fut
        finally:
            self._writes -= 1

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read on a reader connection of its own (WAL lets it see every committed
        write without waiting): a slow console query never holds up the writer."""
        if not self.running:
            raise self.not_open()
        if self._writes:
            # Writes queued before this read are seen by it, as when reads were queued
            # behind them: a marker through the writer thread waits for their commit.
            await self.call(_barrier)

        def run() -> T:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA busy_timeout=5000")
                conn.execute("PRAGMA query_only=1")
                self._local.conn = conn
                self._readers.append(conn)
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"sqlite: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, run)

    # -- the writer thread ---------------------------------------------------------------

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = self._connect()
        except Exception as exc:  # noqa: BLE001 - reported to open()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        chores = self._chores
        while True:
            idle_after = chores.idle_after() if chores is not None else None
            try:
                item = self._queue.get(timeout=idle_after)
            except queue.Empty:
                # Only with a timeout, which only chores set.
                if chores is not None:
                    _run_batch(conn, [(chores.idle, Future())])
                continue
            batch = [item]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rider = chores.rider() if chores is not None else None
            if rider is not None:
                batch.append((rider, Future()))
            stop = any(fn is _STOP for fn, _ in batch)
            _run_batch(conn, [(fn, fut) for fn, fut in batch if fn is not _STOP])
            if not stop:
                continue
            last = chores.final() if chores is not None else None
            if last is not None:
                _run_batch(conn, [(last, Future())])
            for fn, fut in batch:
                if fn is _STOP and not fut.done():
                    fut.set_result(None)
            conn.close()
            return


def _run_batch(conn: sqlite3.Connection, batch: list[Op]) -> None:
    if not batch:
        return
    results: list[tuple[Reply, Any, BaseException | None]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for fn, fut in batch:
            # A savepoint per operation: one failing operation cannot undo the others.
            conn.execute("SAVEPOINT op")
            try:
                value = fn(conn)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                results.append((fut, None, exc))
            else:
                conn.execute("RELEASE op")
                results.append((fut, value, None))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        results = [(fut, None, StoreUnavailable(f"sqlite: {exc}")) for _, fut in batch]
    _answer(results)


def _answer(results: Sequence[tuple[Reply, Any, BaseException | None]]) -> None:
    """Hand each operation's result or error to whoever waits for it: the event loop's
    waiters all in one callback per batch (one wake-up of the loop, not one per write)."""
    waiting: dict[asyncio.AbstractEventLoop, list[tuple[Reply, Any, BaseException | None]]] = {}
    for result in results:
        fut = result[0]
        if isinstance(fut, Future):
            _settle([result])
        else:
            waiting.setdefault(fut.get_loop(), []).append(result)
    for loop, answers in waiting.items():
        try:
            loop.call_soon_threadsafe(_settle, answers)
        except RuntimeError:
            # The loop is closed: nobody waits any more.
            pass


def _settle(results: Sequence[tuple[Reply, Any, BaseException | None]]) -> None:
    for fut, value, error in results:
        # The caller may have been cancelled meanwhile; its result is then nobody's.
        if fut.done():
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)


def _barrier(conn: sqlite3.Connection) -> None:
    """Marker operation: answered once everything queued before it committed."""


def _stop(conn: sqlite3.Connection) -> None:
    """Marker operation: close the connection after the current batch."""


_STOP: Operation = _stop
