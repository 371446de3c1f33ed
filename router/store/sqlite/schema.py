"""The SQLite file's layout: tables and indexes, and the migrations that bring a file
written by an older version to it."""

from __future__ import annotations

import sqlite3

from router.model import Notification
from router.store.codec import facets, stored_notification
from router.store.sqlite.actions import ACTIONS_SCHEMA
from router.store.sqlite.heartbeats import HEARTBEATS_SCHEMA
from router.store.sqlite.oncall import ONCALL_SCHEMA
from router.store.sqlite.rollups import ROLLUP_SCHEMA
from router.store.sqlite.timers import TIMERS_SCHEMA

TABLES = """
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    route TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    next_attempt_at REAL NOT NULL,
    delivered_in TEXT NOT NULL DEFAULT '',
    not_before REAL NOT NULL DEFAULT 0,
    env TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    alertname TEXT NOT NULL DEFAULT '',
    -- Timeline entries, one JSON object per line: appended by the updates a claim's end
    -- makes anyway, so recording them costs no index write.
    timeline TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS notifications_due
    ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS notifications_group
    ON notifications (receiver, group_key, state);
CREATE INDEX IF NOT EXISTS notifications_updated ON notifications (updated_at);
CREATE INDEX IF NOT EXISTS notifications_carrier
    ON notifications (delivered_in, seq) WHERE delivered_in != '';
CREATE TABLE IF NOT EXISTS nflog (
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    entry TEXT NOT NULL,
    expires_at REAL NOT NULL,
    -- Copied from the entry for the console's firing groups (nflog_firing).
    firing INTEGER NOT NULL DEFAULT 0,
    notified_at REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (receiver, group_key)
);
CREATE INDEX IF NOT EXISTS nflog_expiry ON nflog (expires_at);
-- Firing alerts only: a resolve deletes the row.
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    labels TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_expiry ON alerts (expires_at);
CREATE TABLE IF NOT EXISTS deploys (
    app TEXT NOT NULL,
    namespace TEXT NOT NULL,
    revision TEXT NOT NULL,
    at REAL NOT NULL,
    trigger TEXT NOT NULL,
    argocd_url TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (app, namespace, revision, trigger)
);
CREATE INDEX IF NOT EXISTS deploys_app ON deploys (app, at);
CREATE INDEX IF NOT EXISTS deploys_namespace ON deploys (namespace, at);
"""


# What the record queries and the console's firing groups need; created after migrate has
# added the columns they index.
# Every filter is an index ending in seq, so a page newest first reads only its rows; the
# free-text search is an FTS5 trigram index (substrings of 3+ characters) keyed by seq.
RECORDS_SCHEMA = """
CREATE INDEX IF NOT EXISTS notifications_receiver ON notifications (receiver, seq);
CREATE INDEX IF NOT EXISTS notifications_group_key ON notifications (group_key, seq);
CREATE INDEX IF NOT EXISTS notifications_env ON notifications (env, seq);
CREATE INDEX IF NOT EXISTS notifications_severity ON notifications (severity, seq);
CREATE INDEX IF NOT EXISTS notifications_source ON notifications (source, seq);
CREATE INDEX IF NOT EXISTS notifications_state ON notifications (state, seq);
CREATE INDEX IF NOT EXISTS notifications_reason ON notifications (reason, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS notifications_text USING fts5(text, tokenize='trigram');
CREATE INDEX IF NOT EXISTS nflog_firing
    ON nflog (notified_at, receiver, group_key) WHERE firing = 1;
"""

# The layout above; older files are brought to it by migrate.
SCHEMA_VERSION = 5


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a file written by an older version to the current layout, keeping its data."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(notifications)")}
    # Version 2 added holds (`not_before`) and the index of records carried by another.
    if "not_before" not in columns:
        conn.execute("ALTER TABLE notifications ADD COLUMN not_before REAL NOT NULL DEFAULT 0")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS notifications_carrier"
        " ON notifications (delivered_in, seq) WHERE delivered_in != ''"
    )
    # Version 0 held leases in two columns (now in memory) and kept resolved alerts.
    for column in ("lease_until", "lease_token"):
        if column in columns:
            conn.execute(f"ALTER TABLE notifications DROP COLUMN {column}")
    if "firing" in {row["name"] for row in conn.execute("PRAGMA table_info(alerts)")}:
        conn.execute("DROP INDEX IF EXISTS alerts_firing")
        conn.execute("DELETE FROM alerts WHERE firing = 0")
        conn.execute("ALTER TABLE alerts DROP COLUMN firing")
    # Versions 3 and 4 added the columns the console filters on, the text index and the
    # timeline column.
    added = [c for c in ("env", "severity", "source", "alertname") if c not in columns]
    for column in [*added, *({"timeline"} - columns)]:
        conn.execute(f"ALTER TABLE notifications ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    # Version 5 copied whether an entry tells of firing alerts, and when, into columns.
    if "firing" not in {row["name"] for row in conn.execute("PRAGMA table_info(nflog)")}:
        conn.execute("ALTER TABLE nflog ADD COLUMN firing INTEGER NOT NULL DEFAULT 0")
        conn.execute("ALTER TABLE nflog ADD COLUMN notified_at REAL NOT NULL DEFAULT 0")
        conn.execute(
            "UPDATE nflog SET firing = json_array_length(entry, '$.firing') > 0,"
            " notified_at = json_extract(entry, '$.last_notified_at')"
        )
    create_records_schema(conn)
    if added:
        backfill_facets(conn)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.execute("COMMIT")


def create_records_schema(conn: sqlite3.Connection) -> None:
    # One statement at a time: executescript would commit the migration's transaction.
    for statement in RECORDS_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def backfill_facets(conn: sqlite3.Connection, *, after: int = 0, columns: bool = True) -> None:
    """Fill the facet columns (unless `columns` is false) and the text index of the records
    after seq `after`: written before they existed, or not indexed yet when the process
    stopped."""
    last = after
    while True:
        rows = conn.execute(
            "SELECT * FROM notifications WHERE seq > ? ORDER BY seq LIMIT 1000", (last,)
        ).fetchall()
        if not rows:
            return
        last = rows[-1]["seq"]
        found = [(row["seq"], facets(row_notification(row))) for row in rows]
        if columns:
            conn.executemany(
                "UPDATE notifications SET env = ?, severity = ?, source = ?, alertname = ?"
                " WHERE seq = ?",
                [(f.env, f.severity, f.source, f.alertname, seq) for seq, f in found],
            )
        conn.executemany(
            "INSERT INTO notifications_text (rowid, text) VALUES (?, ?)",
            [(seq, f.text) for seq, f in found],
        )


def row_notification(row: sqlite3.Row) -> Notification:
    return stored_notification(
        row["id"],
        row["group_key"],
        row["route"],
        row["events"],
        row["created_at"],
        row["not_before"],
    )


def prepare(conn: sqlite3.Connection) -> None:
    """Create or migrate the layout, and index the texts of records that were not indexed
    when the process stopped."""
    conn.executescript(
        TABLES + ACTIONS_SCHEMA + HEARTBEATS_SCHEMA + TIMERS_SCHEMA + ROLLUP_SCHEMA + ONCALL_SCHEMA
    )
    migrate(conn)
    create_records_schema(conn)
    # Texts queued but not indexed when the process stopped: the newest records.
    (indexed,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM notifications_text").fetchone()
    conn.execute("BEGIN IMMEDIATE")
    backfill_facets(conn, after=indexed, columns=False)
    conn.execute("COMMIT")
