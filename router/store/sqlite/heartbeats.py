"""The `HeartbeatLog` protocol on the SQLite store: one table, written through its thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import Any

from router.store.beats import HeartbeatState, labels_from_json

HEARTBEATS_SCHEMA = """
CREATE TABLE IF NOT EXISTS heartbeats (
    name TEXT PRIMARY KEY,
    since REAL NOT NULL,
    last_beat REAL,
    missing_since REAL,
    missing_labels TEXT NOT NULL DEFAULT ''
);
"""


class SQLiteHeartbeats:
    """Mixed into SQLiteStore, whose `_call` runs a function in its writer thread."""

    _call: Callable[..., Any]

    async def beat(self, name: str, at: float) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO heartbeats (name, since, last_beat) VALUES (?,?,?)"
                " ON CONFLICT (name) DO UPDATE SET last_beat ="
                " max(coalesce(last_beat, excluded.last_beat), excluded.last_beat)",
                (name, at, at),
            )

        await self._call(write)

    async def heartbeat_states(self) -> list[HeartbeatState]:
        def read(conn: sqlite3.Connection) -> list[HeartbeatState]:
            rows = conn.execute(
                "SELECT name, since, last_beat, missing_since, missing_labels"
                " FROM heartbeats ORDER BY name"
            ).fetchall()
            return [
                HeartbeatState(
                    row["name"],
                    row["since"],
                    row["last_beat"],
                    row["missing_since"],
                    labels_from_json(row["missing_labels"]),
                )
                for row in rows
            ]

        result: list[HeartbeatState] = await self._call(read)
        return result

    async def track_heartbeats(self, names: Collection[str], now: float) -> None:
        wanted = sorted(set(names))

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO heartbeats (name, since) VALUES (?,?)",
                [(name, now) for name in wanted],
            )
            kept = {row[0] for row in conn.execute("SELECT name FROM heartbeats")}
            conn.executemany(
                "DELETE FROM heartbeats WHERE name = ?",
                [(name,) for name in kept - set(wanted)],
            )

        await self._call(write)

    async def set_missing(
        self, name: str, since: float | None, labels: Mapping[str, str] | None = None
    ) -> None:
        state = HeartbeatState(name, 0.0, missing_labels=dict(labels or {}))
        text = state.labels_json() if since is not None else ""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE heartbeats SET missing_since = ?, missing_labels = ? WHERE name = ?",
                (since, text, name),
            )

        await self._call(write)
