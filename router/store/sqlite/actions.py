"""The `ActionQueue` protocol on the SQLite store: two tables, written through its thread."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from router.model import Action, ActionClaim, GroupActions
from router.store.protocols import ACTION_KEEP, ACTION_LEASE, GROUP_ACTIONS_TTL

T = TypeVar("T")

ACTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    token TEXT NOT NULL DEFAULT '',
    -- When it is due: now, after a retry's backoff, or at the end of its lease.
    due REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_due ON actions (due) WHERE done = 0;
CREATE TABLE IF NOT EXISTS group_actions (
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    body TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (receiver, group_key)
);
"""


class SQLiteActions:
    """Mixed into SQLiteStore, whose `_call` runs a function in its writer thread."""

    _call: Callable[..., Any]

    async def enqueue_action(self, action: Action) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO actions (id, body, due, created_at) VALUES (?,?,?,?)",
                (action.id, action.to_json(), action.received_at, action.received_at),
            )
            return bool(cursor.rowcount)

        result: bool = await self._call(insert)
        return result

    async def claim_actions(self, now: float, limit: int) -> list[ActionClaim]:
        def take(conn: sqlite3.Connection) -> list[ActionClaim]:
            rows = conn.execute(
                "SELECT id, body, attempts FROM actions WHERE done = 0 AND due <= ?"
                " ORDER BY due, created_at LIMIT ?",
                (now, limit),
            ).fetchall()
            claims = []
            for row in rows:
                token = uuid.uuid4().hex
                conn.execute(
                    "UPDATE actions SET token = ?, due = ? WHERE id = ?",
                    (token, now + ACTION_LEASE, row["id"]),
                )
                claims.append(ActionClaim(Action.from_json(row["body"]), row["attempts"], token))
            return claims

        result: list[ActionClaim] = await self._call(take)
        return result

    async def retry_action(self, claim: ActionClaim, next_attempt_at: float) -> None:
        def back(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE actions SET token = '', due = ?, attempts = attempts + 1"
                " WHERE id = ? AND token = ? AND done = 0",
                (next_attempt_at, claim.action.id, claim.token),
            )

        await self._call(back)

    async def finish_action(self, claim: ActionClaim, now: float) -> None:
        def done(conn: sqlite3.Connection) -> None:
            # `due` becomes when the kept id may go (see expire_actions).
            conn.execute(
                "UPDATE actions SET done = 1, token = '', due = ? WHERE id = ? AND token = ?",
                (now + ACTION_KEEP, claim.action.id, claim.token),
            )

        await self._call(done)

    async def pending_actions(self) -> int:
        def count(conn: sqlite3.Connection) -> int:
            (found,) = conn.execute("SELECT COUNT(*) FROM actions WHERE done = 0").fetchone()
            return int(found)

        result: int = await self._call(count)
        return result

    async def group_actions(self, receiver: str, group_key: str) -> GroupActions | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT body FROM group_actions WHERE receiver = ? AND group_key = ?",
                (receiver, group_key),
            ).fetchone()
            return None if row is None else str(row["body"])

        body: str | None = await self._call(read)
        return None if body is None else GroupActions.from_json(body)

    async def set_group_actions(self, state: GroupActions) -> GroupActions | None:
        new = GroupActions.from_dict({**state.to_dict(), "version": state.version + 1})

        def cas(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT version FROM group_actions WHERE receiver = ? AND group_key = ?",
                (state.receiver, state.group_key),
            ).fetchone()
            if (row["version"] if row is not None else 0) != state.version:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO group_actions"
                " (receiver, group_key, body, version, expires_at) VALUES (?,?,?,?,?)",
                (
                    state.receiver,
                    state.group_key,
                    new.to_json(),
                    new.version,
                    max(new.acked_at, new.silenced_at, new.silenced_until) + GROUP_ACTIONS_TTL,
                ),
            )
            return True

        written: bool = await self._call(cas)
        return new if written else None


def expire_actions(conn: sqlite3.Connection, now: float) -> int:
    """Drop finished actions kept past ACTION_KEEP and group states past their TTL."""
    gone = conn.execute("DELETE FROM actions WHERE done = 1 AND due <= ?", (now,)).rowcount
    gone += conn.execute("DELETE FROM group_actions WHERE expires_at <= ?", (now,)).rowcount
    return int(gone)
