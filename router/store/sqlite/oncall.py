"""The `OncallOverrides` protocol on the SQLite store: one table, written through its thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from router.schedules.rotations import Override
from router.store.codec import in_start_order, override_json, stored_override
from router.store.protocols import OVERRIDE_KEEP

ONCALL_SCHEMA = """
CREATE TABLE IF NOT EXISTS oncall_overrides (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    ends_at REAL NOT NULL
);
"""


class SQLiteOncall:
    """Mixed into SQLiteStore, whose `_call` runs a function in its writer thread."""

    _call: Callable[..., Any]

    async def add_override(self, override: Override) -> bool:
        body = override_json(override)

        def insert(conn: sqlite3.Connection) -> bool:
            # Overrides long over go when a new one comes: they are few.
            conn.execute(
                "DELETE FROM oncall_overrides WHERE ends_at < ?",
                (override.created_at - OVERRIDE_KEEP,),
            )
            cursor = conn.execute(
                "INSERT OR IGNORE INTO oncall_overrides (id, body, ends_at) VALUES (?,?,?)",
                (override.id, body, override.end),
            )
            return bool(cursor.rowcount)

        added: bool = await self._call(insert)
        return added

    async def remove_override(self, override_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("DELETE FROM oncall_overrides WHERE id = ?", (override_id,))
            return bool(cursor.rowcount)

        removed: bool = await self._call(delete)
        return removed

    async def list_overrides(self, since: float) -> list[Override]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT body FROM oncall_overrides WHERE ends_at > ?", (since,)
            ).fetchall()
            return [str(row["body"]) for row in rows]

        bodies: list[str] = await self._call(read)
        return in_start_order(stored_override(b) for b in bodies)
