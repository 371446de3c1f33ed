"""The SQLite engine on its own: the writer thread's group commit and the reader pool,
on a real file with a one-table schema of the test's own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from router.store.protocols import StoreUnavailable
from router.store.sqlite.engine import Engine, Operation


def _connector(path: Path, statements: list[str]) -> Callable[[], sqlite3.Connection]:
    """A writer connection on `path` that appends every statement it runs to `statements`."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS log (n INTEGER NOT NULL)")
        conn.set_trace_callback(statements.append)
        return conn

    return connect


def _insert(n: int) -> Operation:
    def op(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO log (n) VALUES (?)", (n,))
        return n

    return op


def _logged(conn: sqlite3.Connection) -> list[int]:
    return [row["n"] for row in conn.execute("SELECT n FROM log ORDER BY rowid")]


class Gate:
    """An operation that holds the writer thread (inside its transaction) until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        self.opened.wait()

    async def hold(self, engine: Engine) -> asyncio.Task[None]:
        """Queue the gate and return once the writer is inside it."""
        task = asyncio.create_task(engine.call(self))
        await asyncio.get_running_loop().run_in_executor(None, self.entered.wait)
        return task


class Chores:
    """Chores the test sets: an idle one after `idle_after`, a rider, a final one."""

    def __init__(self) -> None:
        self.idle_delay: float | None = None
        self.idled = threading.Event()
        self.ride: Operation | None = None
        self.last: Operation | None = None

    def idle_after(self) -> float | None:
        return self.idle_delay

    def idle(self, conn: sqlite3.Connection) -> None:
        self.idle_delay = None
        conn.execute("INSERT INTO log (n) VALUES (-1)")
        self.idled.set()

    def rider(self) -> Operation | None:
        ride, self.ride = self.ride, None
        return ride

    def final(self) -> Operation | None:
        return self.last


@pytest.fixture
def statements() -> list[str]:
    return []


@pytest.fixture
def chores() -> Chores:
    return Chores()


@pytest.fixture
async def engine(tmp_path: Path, statements: list[str], chores: Chores) -> AsyncIterator[Engine]:
    e = Engine(
        str(tmp_path / "engine.db"), _connector(tmp_path / "engine.db", statements), chores=chores
    )
    assert await e.open()
    yield e
    await e.close()


async def test_operations_commit_in_the_order_they_were_queued(engine: Engine) -> None:
    results = await asyncio.gather(*(engine.call(_insert(n)) for n in range(50)))
    assert results == list(range(50))
    assert await engine.read(_logged) == list(range(50))


async def test_operations_queued_while_a_transaction_runs_commit_together_in_the_next(
    engine: Engine, statements: list[str]
) -> None:
    gate = Gate()
    held = await gate.hold(engine)
    waiting = [asyncio.create_task(engine.call(_insert(n))) for n in range(3)]
    await asyncio.sleep(0)  # lets each task queue its operation
    statements.clear()
    gate.opened.set()
    await held
    assert await asyncio.gather(*waiting) == [0, 1, 2]
    transactions = [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")]
    assert transactions == ["COMMIT", "BEGIN IMMEDIATE", "COMMIT"]


async def test_a_failing_operation_is_undone_alone_and_the_rest_of_its_batch_commits(
    engine: Engine,
) -> None:
    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO log (n) VALUES (99)")
        raise ValueError("no")

    gate = Gate()
    held = await gate.hold(engine)
    first = asyncio.create_task(engine.call(_insert(1)))
    failing = asyncio.create_task(engine.call(fail))
    last = asyncio.create_task(engine.call(_insert(2)))
    await asyncio.sleep(0)  # lets each task queue its operation
    gate.opened.set()
    await held
    assert (await first, await last) == (1, 2)
    with pytest.raises(ValueError, match="no"):
        await failing
    assert await engine.read(_logged) == [1, 2]


async def test_a_read_sees_the_writes_queued_before_it(engine: Engine) -> None:
    gate = Gate()
    held = await gate.hold(engine)
    write = asyncio.create_task(engine.call(_insert(7)))
    await asyncio.sleep(0)  # lets the write queue its operation
    read = asyncio.create_task(engine.read(_logged))
    gate.opened.set()
    await asyncio.gather(held, write)
    assert await read == [7]


async def test_a_failing_read_is_store_unavailable(engine: Engine) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM missing")

    with pytest.raises(StoreUnavailable, match="no such table"):
        await engine.read(broken)


async def test_a_reader_cannot_write(engine: Engine) -> None:
    with pytest.raises(StoreUnavailable, match="readonly"):
        await engine.read(_insert(1))


async def test_a_rider_commits_with_the_batch_it_joins(
    engine: Engine, chores: Chores, statements: list[str]
) -> None:
    chores.ride = _insert(2)
    statements.clear()
    await engine.call(_insert(1))
    assert await engine.read(_logged) == [1, 2]
    assert statements.count("COMMIT") == 1


async def test_idle_chores_run_once_nothing_is_queued_for_their_delay(
    engine: Engine, chores: Chores
) -> None:
    chores.idle_delay = 0.01
    # Wakes the writer, which then waits for the idle delay.
    await engine.call(_insert(1))
    await asyncio.get_running_loop().run_in_executor(None, chores.idled.wait)
    # Queued after the idle work, so answered once it committed.
    assert await engine.call(_logged) == [1, -1]


async def test_the_final_chore_commits_before_the_writer_stops(
    tmp_path: Path, statements: list[str], chores: Chores
) -> None:
    path = tmp_path / "final.db"
    engine = Engine(str(path), _connector(path, statements), chores=chores)
    await engine.open()
    chores.last = _insert(3)
    await engine.call(_insert(1))
    await engine.close()
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        assert _logged(conn) == [1, 3]
    finally:
        conn.close()


async def test_calls_after_close_say_the_store_is_not_open(engine: Engine) -> None:
    await engine.close()
    assert not engine.running
    with pytest.raises(StoreUnavailable, match="not open"):
        await engine.call(_insert(1))
    with pytest.raises(StoreUnavailable, match="not open"):
        await engine.read(_logged)
    assert not await engine.open()


async def test_a_failed_open_is_said_by_every_call_until_one_succeeds(
    tmp_path: Path, statements: list[str]
) -> None:
    attempts: list[int] = []
    connect = _connector(tmp_path / "late.db", statements)

    def flaky() -> sqlite3.Connection:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk not mounted")
        return connect()

    engine = Engine(str(tmp_path / "late.db"), flaky)
    with pytest.raises(StoreUnavailable, match="cannot open .*late.db: disk not mounted"):
        await engine.open()
    with pytest.raises(StoreUnavailable, match="not open: cannot open .*disk not mounted"):
        await engine.call(_insert(1))
    assert await engine.open()
    assert await engine.call(_insert(1)) == 1
    await engine.close()


async def test_a_stopped_engine_opens_again_from_scratch(
    tmp_path: Path, statements: list[str]
) -> None:
    path = tmp_path / "again.db"
    engine = Engine(str(path), _connector(path, statements))
    await engine.open()
    await engine.call(_insert(1))
    await engine.stop()
    assert await engine.open()
    assert await engine.read(_logged) == [1]
    await engine.close()
