"""The insights rollups on the SQLite store: hourly and daily rows of counters, added in
the transaction that finishes a record."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from router.model import Claim, GroupActions, Outcome
from router.store.rollup import (
    COLUMNS,
    DAY,
    HOUR,
    HOURLY_KEEP,
    EpisodeEnd,
    Key,
    RollupRead,
    episode_counts,
    finished,
    needs_actions,
)

_COLUMNS_SQL = ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COLUMNS)
ROLLUP_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rollup_hours (
    bucket INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, {_COLUMNS_SQL},
    PRIMARY KEY (bucket, kind, name)
);
CREATE TABLE IF NOT EXISTS rollup_days (
    bucket INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, {_COLUMNS_SQL},
    PRIMARY KEY (bucket, kind, name)
);
CREATE TABLE IF NOT EXISTS report_slots (name TEXT PRIMARY KEY, slot REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rollup_alerts (
    fingerprint TEXT PRIMARY KEY, starts_at REAL NOT NULL, ends_at REAL NOT NULL
);
"""

# Built from the fixed column names only.
_UPSERT = {
    table: (
        f"INSERT INTO {table} (bucket, kind, name, {', '.join(COLUMNS)})"  # noqa: S608  # nosec B608
        f" VALUES (?, ?, ?, {', '.join('?' for _ in COLUMNS)})"
        " ON CONFLICT (bucket, kind, name) DO UPDATE SET "
        + ", ".join(f"{c} = {c} + excluded.{c}" for c in COLUMNS)
    )
    for table in ("rollup_hours", "rollup_days")
}
_SUMS = ", ".join(f"SUM({c})" for c in COLUMNS)


def _previous_end(conn: sqlite3.Connection, episode: EpisodeEnd) -> tuple[bool, float | None]:
    """Whether the episode is new (another receiver's record may have counted it), and when
    the alert's episode before it ended; the episode becomes the alert's last."""
    row = conn.execute(
        "SELECT starts_at, ends_at FROM rollup_alerts WHERE fingerprint = ?",
        (episode.fingerprint,),
    ).fetchone()
    if row is not None and row[0] == episode.starts_at:
        return False, None
    conn.execute(
        "INSERT INTO rollup_alerts (fingerprint, starts_at, ends_at) VALUES (?,?,?)"
        " ON CONFLICT (fingerprint) DO UPDATE SET starts_at = excluded.starts_at,"
        " ends_at = excluded.ends_at",
        (episode.fingerprint, episode.starts_at, episode.ends_at),
    )
    return True, (row[1] if row is not None else None)


def add_counts(conn: sqlite3.Connection, at: float, counts: Mapping[Key, Sequence[int]]) -> None:
    """Add `counts` to the hour and the day `at` falls in."""
    if not counts:
        return
    hour, day = int(at // HOUR) * HOUR, int(at // DAY) * DAY
    for table, bucket in (("rollup_hours", hour), ("rollup_days", day)):
        conn.executemany(
            _UPSERT[table], [(bucket, kind, name, *row) for (kind, name), row in counts.items()]
        )


def roll_up(conn: sqlite3.Connection, claim: Claim, outcome: Outcome, at: float) -> None:
    """A finished claim's counts, in the caller's transaction."""
    actions = None
    if needs_actions(claim):
        row = conn.execute(
            "SELECT body FROM group_actions WHERE receiver = ? AND group_key = ?",
            (claim.receiver, claim.group_key),
        ).fetchone()
        actions = None if row is None else GroupActions.from_json(str(row[0]))
    counts, episodes = finished(claim, outcome, actions)
    for episode in episodes:
        new, previous = _previous_end(conn, episode)
        if new:
            episode_counts(episode, previous, counts)
    add_counts(conn, at, counts)


def expire_rollups(conn: sqlite3.Connection, now: float, keep: float) -> int:
    """Drop rows and alert episodes older than `keep`."""
    hours = (now - min(keep, HOURLY_KEEP),)
    gone = conn.execute("DELETE FROM rollup_hours WHERE bucket < ?", hours).rowcount
    gone += conn.execute("DELETE FROM rollup_days WHERE bucket < ?", (now - keep,)).rowcount
    gone += conn.execute("DELETE FROM rollup_alerts WHERE ends_at < ?", (now - keep,)).rowcount
    return int(gone)


class SQLiteRollups:
    """Mixed into SQLiteStore (its `_call` writes on its thread, `_read` reads)."""

    _call: Callable[..., Any]
    _read: Callable[..., Any]

    async def add_rollups(self, at: float, counts: Mapping[Key, Sequence[int]]) -> None:
        await self._call(lambda conn: add_counts(conn, at, counts))

    async def claim_report(self, name: str, slot: float) -> bool | None:
        def claim(conn: sqlite3.Connection) -> bool | None:
            row = conn.execute("SELECT slot FROM report_slots WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] >= slot:
                return False
            conn.execute(
                "INSERT INTO report_slots (name, slot) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET slot = excluded.slot",
                (name, slot),
            )
            return None if row is None else True

        result: bool | None = await self._call(claim)
        return result

    async def read_rollups(self, since: int, until: int, *, hourly: bool) -> RollupRead:
        table = "rollup_hours" if hourly else "rollup_days"

        def read(conn: sqlite3.Connection) -> RollupRead:
            totals = {
                (r[0], r[1]): list(r[2:])
                for r in conn.execute(
                    f"SELECT kind, name, {_SUMS} FROM {table}"  # noqa: S608  # nosec B608
                    " WHERE bucket >= ? AND bucket < ? GROUP BY kind, name",
                    (since, until),
                )
            }
            series = {
                (r[0], r[1], r[2]): r[3]
                for r in conn.execute(
                    f"SELECT bucket, kind, name, notifications FROM {table}"  # noqa: S608  # nosec B608
                    " WHERE bucket >= ? AND bucket < ? AND notifications > 0",
                    (since, until),
                )
            }
            by_bucket = {
                r[0]: list(r[1:])
                for r in conn.execute(
                    f"SELECT bucket, {_SUMS} FROM {table}"  # noqa: S608  # nosec B608
                    " WHERE bucket >= ? AND bucket < ? AND kind = 'receiver' GROUP BY bucket",
                    (since, until),
                )
            }
            return RollupRead(totals, series, by_bucket)

        result: RollupRead = await self._read(read)
        return result
