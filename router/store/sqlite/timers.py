"""The `Timers` protocol on the SQLite store: one table, written through its thread."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from router.store.protocols import Timer

TIMERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS timers (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    due REAL NOT NULL,
    body TEXT NOT NULL,
    token TEXT NOT NULL DEFAULT '',
    -- While claimed: when the claim's lease ends.
    held_until REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (kind, due);
-- One process owns the file: a claim it held when it stopped died with it, so a timer
-- due while it was down is due at once, not a lease later.
UPDATE timers SET held_until = 0, token = '' WHERE token != '';
"""


class SQLiteTimers:
    """Mixed into SQLiteStore, whose `_call` runs a function in its writer thread."""

    _call: Callable[..., Any]
    _read: Callable[..., Any]

    async def set_timer(
        self, kind: str, key: str, due: float, body: str, *, replace: bool = False
    ) -> bool:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"

        def arm(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"{verb} INTO timers (kind, key, due, body) VALUES (?,?,?,?)",  # noqa: S608  # nosec B608
                (kind, key, due, body),
            )
            return bool(cursor.rowcount)

        done: bool = await self._call(arm)
        return done

    async def claim_timers(self, kind: str, now: float, limit: int, lease: float) -> list[Timer]:
        # Asked every second by every timer worker: when nothing is due, as is usual, the
        # writer (which webhooks and deliveries wait on) is left alone.
        if not await self.count_due(kind, now):
            return []

        def take(conn: sqlite3.Connection) -> list[Timer]:
            rows = conn.execute(
                "SELECT key, due, body FROM timers WHERE kind = ? AND due <= ?"
                " AND held_until <= ? ORDER BY due LIMIT ?",
                (kind, now, now, limit),
            ).fetchall()
            taken = []
            for row in rows:
                token = uuid.uuid4().hex
                conn.execute(
                    "UPDATE timers SET token = ?, held_until = ? WHERE kind = ? AND key = ?",
                    (token, now + lease, kind, row["key"]),
                )
                taken.append(Timer(kind, row["key"], row["due"], row["body"], token))
            return taken

        found: list[Timer] = await self._call(take)
        return found

    async def finish_timer(self, timer: Timer, due: float | None, body: str) -> bool:
        def move(conn: sqlite3.Connection) -> bool:
            if due is None:
                cursor = conn.execute(
                    "DELETE FROM timers WHERE kind = ? AND key = ? AND token = ?",
                    (timer.kind, timer.key, timer.token),
                )
            else:
                cursor = conn.execute(
                    "UPDATE timers SET due = ?, body = ?, token = '', held_until = 0"
                    " WHERE kind = ? AND key = ? AND token = ?",
                    (due, body, timer.kind, timer.key, timer.token),
                )
            return bool(cursor.rowcount)

        done: bool = await self._call(move)
        return done

    async def cancel_timer(self, kind: str, key: str) -> None:
        def drop(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM timers WHERE kind = ? AND key = ?", (kind, key))

        await self._call(drop)

    async def get_timer(self, kind: str, key: str) -> Timer | None:
        def read(conn: sqlite3.Connection) -> Timer | None:
            row = conn.execute(
                "SELECT due, body, token FROM timers WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            return None if row is None else Timer(kind, key, row["due"], row["body"], row["token"])

        found: Timer | None = await self._read(read)
        return found

    async def count_due(self, kind: str, now: float) -> int:
        def count(conn: sqlite3.Connection) -> int:
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM timers WHERE kind = ? AND due <= ? AND held_until <= ?",
                (kind, now, now),
            ).fetchone()
            return int(n)

        found: int = await self._read(count)
        return found
