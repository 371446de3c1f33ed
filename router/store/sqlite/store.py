"""SQLite store: the embedded default for one replica.

Every write goes through the engine's writer thread (engine.py: group commit), reads
through its reader threads; the layout is in schema.py, the text index's backlog in
textindex.py.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from router.model import (
    AlertState,
    Claim,
    DeliveryState,
    Deploy,
    NflogEntry,
    Notification,
    NotificationRecord,
    Outcome,
    RouteSettings,
    TimelineEntry,
)
from router.store.codec import (
    Facets,
    compact_json,
    events_json,
    facets,
    merged_timeline,
    stored_record,
    timeline_texts,
)
from router.store.protocols import (
    DEFAULT_KEEP_RECORDS,
    DEFAULT_LEASE,
    DEPLOY_TTL,
    RecordPage,
    RecordQuery,
    StoreUnavailable,
    decode_cursor,
    encode_cursor,
)
from router.store.rollup import ROLLUP_KEEP
from router.store.sqlite.actions import SQLiteActions, expire_actions
from router.store.sqlite.engine import Engine
from router.store.sqlite.heartbeats import SQLiteHeartbeats
from router.store.sqlite.logcache import LogCache
from router.store.sqlite.oncall import SQLiteOncall
from router.store.sqlite.pending import PendingIndex
from router.store.sqlite.rollups import SQLiteRollups, expire_rollups, roll_up
from router.store.sqlite.schema import prepare, row_notification
from router.store.sqlite.textindex import TextBacklog
from router.store.sqlite.timers import SQLiteTimers

T = TypeVar("T")

# Finished records whose rows expire() may drop (their text and timeline go with them).
_EXPIRED = "SELECT {} FROM notifications WHERE state != 'pending' AND updated_at < ?"

# Events in one record() call past which they are encoded on the writer thread.
LARGE_RECORD_EVENTS = 1_000
# What a checkpointed write-ahead log is truncated to (SQLite's default keeps it whole).
_WAL_KEEP_BYTES = 64 * 1024 * 1024
# Alert fingerprints the in-memory notification log may hold (write-through; misses are
# cached too): about 100 bytes each, so a few MB whatever the groups' count or size. A
# cap on entries is no bound: 100,000 entries of 10-alert groups took ~250 MB.
NFLOG_CACHE_ALERTS = 20_000


def _route_json(route: RouteSettings) -> str:
    return compact_json(route.to_dict())


def _insert_new(
    conn: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    texts: Sequence[str],
    backlog: TextBacklog,
) -> set[str] | None:
    """Insert the notifications not recorded yet, their text queued in `backlog` for the
    search; the ids added, or None for all of them."""
    added = conn.executemany(
        "INSERT INTO notifications (id, receiver, group_key, route, events, created_at,"
        " updated_at, state, next_attempt_at, not_before, env, severity, source, alertname)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
        rows,
    ).rowcount
    if added == len(rows):
        for row, text in zip(rows, texts, strict=True):
            backlog.add(row[0], text)
        return None
    # Some ids were recorded before (a call made again): the rows just added are the
    # newest of these ids.
    ids = [row[0] for row in rows]
    marks = ",".join("?" * len(ids))
    # Only "?" placeholders are interpolated into the statement.
    query = f"SELECT id FROM notifications WHERE id IN ({marks}) ORDER BY seq DESC LIMIT ?"  # noqa: S608  # nosec B608
    found = {row["id"] for row in conn.execute(query, (*ids, added))}
    fresh = dict.fromkeys(i for i in ids if i in found)
    by_id = {row[0]: text for row, text in zip(rows, texts, strict=True)}
    for i in fresh:
        backlog.add(i, by_id[i])
    return found


def _alerts_change(
    conn: sqlite3.Connection,
    firing: Sequence[tuple[str, str, float]],
    resolved: Sequence[tuple[str]],
) -> bool:
    """Whether recording these alert states changes which alerts fire (or their labels);
    alerts that keep firing unchanged only have their expiry moved."""
    wanted = {fp: labels for fp, labels, _ in firing}
    gone = {fp for (fp,) in resolved}
    names = [*wanted, *gone]
    for first in range(0, len(names), 500):
        chunk = names[first : first + 500]
        marks = ",".join("?" * len(chunk))
        # Only "?" placeholders are interpolated into the statement.
        query = f"SELECT fingerprint, labels FROM alerts WHERE fingerprint IN ({marks})"  # noqa: S608  # nosec B608
        for fp, labels in conn.execute(query, chunk):
            if fp in gone or wanted.get(fp) != labels:
                return True
            wanted.pop(fp, None)
    # A firing alert not found is new.
    return bool(wanted)


class SQLiteStore(SQLiteActions, SQLiteHeartbeats, SQLiteTimers, SQLiteRollups, SQLiteOncall):
    """The `Store` protocol on one SQLite file in WAL mode, owned by one process."""

    def __init__(
        self,
        path: str,
        *,
        lease: float = DEFAULT_LEASE,
        keep_records: float = DEFAULT_KEEP_RECORDS,
        synchronous: str = "FULL",
        nflog_cache_alerts: int = NFLOG_CACHE_ALERTS,
    ) -> None:
        self.path = path
        self.lease = lease
        self.keep_records = keep_records
        self._synchronous = synchronous
        # Texts of records recorded but not in the text index yet.
        self._text = TextBacklog()
        self._engine = Engine(path, self._connect, chores=self._text)
        self._pending = PendingIndex()
        self._nflog = LogCache(nflog_cache_alerts)
        # Post slots per destination key: when the next one starts.
        self._slots: dict[str, float] = {}
        # Bumped by every record that brings alert states (this process is the only writer).
        self._alerts_generation = 0

    # -- the engine ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        parent = Path(self.path).parent
        parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed webhook survives power loss too, not only a killed process.
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        # The log shrinks back after a checkpoint: one large transaction (the expiry of a
        # storm's records) must not leave a WAL file of its size on the volume for good.
        conn.execute(f"PRAGMA journal_size_limit={_WAL_KEEP_BYTES}")
        prepare(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._engine.read(fn)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._engine.call(fn)

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        if not await self._engine.open():
            return

        # One replica owns this file: what was pending (claimed by a killed process or
        # not) is pending again, indexed in memory for claiming.
        def load(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(
                "SELECT * FROM notifications WHERE state = 'pending' ORDER BY seq"
            ).fetchall()

        try:
            rows = await self._call(load)
        except StoreUnavailable:
            # Not open after all: the next open() starts from scratch.
            await self._engine.stop()
            raise
        for row in rows:
            self._pending.add(
                [row_notification(row)], due=row["next_attempt_at"], attempts=row["attempts"]
            )

    async def close(self) -> None:
        await self._engine.close()

    async def ping(self) -> None:
        await self._call(lambda c: c.execute("SELECT 1").fetchone())

    def size_bytes(self) -> int:
        """What the state takes on disk: the database file and its write-ahead log."""
        total = 0
        for name in (self.path, f"{self.path}-wal"):
            try:
                total += Path(name).stat().st_size
            except OSError:
                pass  # not created yet, or checkpointed away
        return total

    async def reserve_slot(self, key: str, interval: float, now: float) -> float:
        """Slots live in memory: the one process owning the file is the only poster."""
        start = max(now, self._slots.get(key, 0.0))
        self._slots[key] = start + interval
        return start

    async def hold_slots(self, key: str, until: float) -> None:
        self._slots[key] = max(self._slots.get(key, 0.0), until)

    async def lead(self, purpose: str, term: float = 0.0) -> bool:
        """Always: the one process that owns the file does every chore."""
        return True

    # -- writes --------------------------------------------------------------------------

    async def record(
        self,
        notifications: Sequence[Notification],
        *,
        alerts: Sequence[AlertState] = (),
        deploys: Sequence[Deploy] = (),
    ) -> None:
        # The last state of an alert in one webhook wins, as if recorded one by one.
        latest = {a.fingerprint: a for a in alerts}.values()
        alert_rows = [
            (a.fingerprint, compact_json(dict(a.labels)), a.expires_at) for a in latest if a.firing
        ]
        resolved = [(a.fingerprint,) for a in latest if not a.firing]
        deploy_rows = [
            (d.app, d.namespace, d.revision, d.at, d.trigger, d.argocd_url) for d in deploys
        ]

        def encode() -> tuple[list[tuple[Any, ...]], list[str]]:
            found: list[Facets] = [facets(n) for n in notifications]
            rows = [
                (
                    n.id,
                    n.receiver,
                    n.group_key,
                    _route_json(n.route),
                    events,
                    n.created_at.timestamp(),
                    n.created_at.timestamp(),
                    DeliveryState.PENDING.value,
                    n.not_before,  # due at once unless held
                    n.not_before,
                    f.env,
                    f.severity,
                    f.source,
                    f.alertname,
                )
                for n, events, f in zip(
                    notifications, events_json(notifications), found, strict=True
                )
            ]
            return rows, [f.text for f in found]

        # A webhook of thousands of alerts takes 100+ ms to encode: the writer thread does
        # it then, so the event loop keeps answering (an ordinary one costs less here).
        large = sum(len(n.events) for n in notifications) >= LARGE_RECORD_EVENTS
        encoded = None if large else encode()

        def insert(conn: sqlite3.Connection) -> tuple[set[str] | None, bool]:
            rows, texts = encoded if encoded is not None else encode()
            fresh = _insert_new(conn, rows, texts, self._text) if rows else None
            changed = _alerts_change(conn, alert_rows, resolved)
            if alert_rows:
                conn.executemany(
                    "INSERT INTO alerts (fingerprint, labels, expires_at) VALUES (?,?,?)"
                    " ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels,"
                    " expires_at = excluded.expires_at",
                    alert_rows,
                )
            if resolved:
                conn.executemany("DELETE FROM alerts WHERE fingerprint = ?", resolved)
            if deploy_rows:
                conn.executemany(
                    "INSERT OR REPLACE INTO deploys (app, namespace, revision, at, trigger,"
                    " argocd_url) VALUES (?,?,?,?,?,?)",
                    deploy_rows,
                )
            return fresh, changed

        fresh, changed = await self._call(insert)
        if changed:
            self._alerts_generation += 1
        if fresh is None:
            self._pending.add(notifications)
            return
        new: list[Notification] = []
        for n in notifications:
            if n.id in fresh:
                fresh.discard(n.id)  # an id given twice in one call is indexed once
                new.append(n)
        self._pending.add(new)

    async def firing_alerts(self, now: float) -> list[Mapping[str, str]]:
        def fetch(conn: sqlite3.Connection) -> list[Mapping[str, str]]:
            rows = conn.execute("SELECT labels FROM alerts WHERE expires_at > ?", (now,)).fetchall()
            return [json.loads(r["labels"]) for r in rows]

        return await self._call(fetch)

    async def alerts_generation(self) -> int:
        return self._alerts_generation

    async def recent_deploys(
        self, since: float, until: float, *, app: str = "", namespace: str = ""
    ) -> list[Deploy]:
        def fetch(conn: sqlite3.Connection) -> list[Deploy]:
            rows = conn.execute(
                "SELECT * FROM deploys WHERE at >= ? AND at <= ?"
                " AND ((? != '' AND app = ?) OR (? != '' AND namespace = ?))"
                " ORDER BY at DESC LIMIT 20",
                (since, until, app, app, namespace, namespace),
            ).fetchall()
            return [
                Deploy(
                    r["app"], r["namespace"], r["revision"], r["at"], r["trigger"], r["argocd_url"]
                )
                for r in rows
            ]

        return await self._call(fetch)

    async def claim(self, now: float, limit: int) -> list[Claim]:
        if not self._engine.running:
            raise self._engine.not_open()
        return self._pending.claim(now, limit, self.lease, uuid.uuid4().hex)

    async def renew(self, claims: Sequence[Claim], now: float) -> set[str]:
        """Leases live in memory (one process owns the file): renewing costs no write."""
        if not self._engine.running:
            raise self._engine.not_open()
        return self._pending.renew(claims, now, self.lease)

    async def release(
        self,
        claim: Claim,
        next_attempt_at: float,
        error: str,
        now: float,
        *,
        attempted: bool = True,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        if not self._pending.holds(claim):
            return
        ids = claim.ids
        counted = 1 if attempted else 0

        lines = _timeline_lines(timeline)

        def give_back(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE notifications SET attempts = attempts + ?,"
                " last_error = CASE WHEN ? = '' THEN last_error ELSE ? END,"
                " next_attempt_at = ?, updated_at = ?, timeline = timeline || ?"
                " WHERE id = ? AND state = 'pending'",
                [(counted, error, error, next_attempt_at, now, lines.get(i, ""), i) for i in ids],
            )

        await self._call(give_back)
        self._pending.release(claim, next_attempt_at, attempted=attempted)

    async def complete(
        self,
        claim: Claim,
        outcome: Outcome,
        now: float,
        *,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        if not self._pending.holds(claim):
            # The lease ran out and the group was claimed again: the newer claim decides.
            return
        ids = claim.ids
        latest = claim.latest.id
        attempted = 1 if outcome.state is not DeliveryState.SUPPRESSED else 0

        lines = _timeline_lines(timeline)

        def finish(conn: sqlite3.Connection) -> None:
            conn.executemany(
                # A success keeps the last error: "sent after 3 attempts, last: 429" is
                # what an operator asking "why was it late?" needs.
                "UPDATE notifications SET state = ?, reason = ?,"
                " last_error = CASE WHEN ? = '' THEN last_error ELSE ? END,"
                " attempts = attempts + ?, updated_at = ?, delivered_in = ?,"
                " timeline = timeline || ? WHERE id = ? AND state = 'pending'",
                [
                    (
                        outcome.state.value,
                        outcome.reason,
                        outcome.error,
                        outcome.error,
                        attempted,
                        now,
                        # Webhooks folded into the newest one say which record carried them.
                        outcome.delivered_in or (latest if i != latest else ""),
                        lines.get(i, ""),
                        i,
                    )
                    for i in ids
                ],
            )
            roll_up(conn, claim, outcome, now)
            if outcome.nflog is not None:
                entry = outcome.nflog
                conn.execute(
                    "INSERT INTO nflog (receiver, group_key, entry, expires_at, firing,"
                    " notified_at) VALUES (?,?,?,?,?,?) ON CONFLICT (receiver, group_key)"
                    " DO UPDATE SET entry = excluded.entry, expires_at = excluded.expires_at,"
                    " firing = excluded.firing, notified_at = excluded.notified_at",
                    (
                        entry.receiver,
                        entry.group_key,
                        compact_json(entry.to_dict()),
                        entry.expires_at,
                        1 if entry.firing else 0,
                        entry.last_notified_at,
                    ),
                )

        await self._call(finish)
        self._pending.complete(claim)
        if outcome.nflog is not None:
            self._remember(outcome.nflog)

    # -- reads ---------------------------------------------------------------------------

    def _remember(self, entry: NflogEntry) -> None:
        self._nflog.put((entry.receiver, entry.group_key), entry)

    async def nflog_get(self, receiver: str, group_key: str, now: float) -> NflogEntry | None:
        key = (receiver, group_key)
        known, cached = self._nflog.lookup(key, now)
        if known:
            return cached

        def get(conn: sqlite3.Connection) -> NflogEntry | None:
            row = conn.execute(
                "SELECT entry FROM nflog WHERE receiver = ? AND group_key = ?", key
            ).fetchone()
            return NflogEntry.from_dict(json.loads(row["entry"])) if row else None

        entry = await self._call(get)
        # Only this process writes the log, so a miss stays a miss until it writes one.
        self._nflog.put(key, entry)
        return entry if entry is not None and entry.expires_at > now else None

    async def firing_groups(self, now: float, limit: int) -> list[NflogEntry]:
        def fetch(conn: sqlite3.Connection) -> list[NflogEntry]:
            # Walks the partial index newest first; expired rows not dropped yet are skipped.
            rows = conn.execute(
                "SELECT entry FROM nflog WHERE firing = 1 AND expires_at > ?"
                " ORDER BY notified_at DESC, receiver DESC, group_key DESC LIMIT ?",
                (now, max(0, limit)),
            ).fetchall()
            return [NflogEntry.from_dict(json.loads(r["entry"])) for r in rows]

        return await self._read(fetch)

    async def pending_count(self) -> int:
        return len(self._pending)

    async def next_due(self) -> float | None:
        return self._pending.next_due()

    async def list_notifications(
        self,
        limit: int,
        receiver: str | None = None,
        group_key: str | None = None,
        *,
        delivered_in: str | None = None,
    ) -> list[NotificationRecord]:
        query = RecordQuery(receiver=receiver, group_key=group_key, delivered_in=delivered_in)
        return list((await self.query_notifications(query, limit)).records)

    async def query_notifications(
        self, query: RecordQuery, limit: int, cursor: str | None = None
    ) -> RecordPage:
        before = decode_cursor(cursor)
        if limit <= 0:
            return RecordPage([], None)
        filters = [(c, getattr(query, c)) for c in _FILTERED if getattr(query, c)]
        text = (query.text or "").lower()
        if text:
            # Records recorded a moment ago are found too.
            await self._call(self._text.index)

        def fetch(conn: sqlite3.Connection) -> RecordPage:
            by_text = len(text) >= _TRIGRAM and not _few(conn, filters)
            sql, params = _record_sql(filters, text, before, limit + 1, by_text=by_text)
            rows = conn.execute(sql, params).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = encode_cursor(rows[-1]["seq"]) if more and rows else None
            return RecordPage([_row_record(r) for r in rows], nxt)

        return await self._read(fetch)

    async def get_notification(self, notification_id: str) -> NotificationRecord | None:
        def fetch(conn: sqlite3.Connection) -> NotificationRecord | None:
            row = conn.execute(
                "SELECT * FROM notifications WHERE id = ?", (notification_id,)
            ).fetchone()
            return _row_record(row) if row else None

        return await self._read(fetch)

    async def timeline(self, notification_id: str) -> list[TimelineEntry]:
        def fetch(conn: sqlite3.Connection) -> list[TimelineEntry]:
            row = conn.execute(
                "SELECT * FROM notifications WHERE id = ?", (notification_id,)
            ).fetchone()
            if row is None:
                return []
            return merged_timeline(_row_record(row), row["timeline"].splitlines())

        return await self._read(fetch)

    async def add_timeline(self, entries: Sequence[tuple[str, TimelineEntry]]) -> None:
        if entries:
            await self._call(lambda conn: _add_timeline(conn, entries))

    async def count_states(self, since: float) -> Mapping[tuple[str, str], int]:
        def fetch(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
            rows = conn.execute(
                "SELECT state, reason, count(*) AS n FROM notifications"
                " WHERE seq >= ? AND created_at >= ? GROUP BY state, reason",
                (_first_created_since(conn, since), since),
            )
            return {(r["state"], r["reason"]): int(r["n"]) for r in rows}

        return await self._read(fetch)

    async def retry_now(self, notification_id: str, now: float) -> bool:
        entry = TimelineEntry(now, "retried", "retried now by an admin: pending, attempts reset")

        def retry(conn: sqlite3.Connection) -> Notification | None:
            row = conn.execute(
                "SELECT * FROM notifications WHERE id = ? AND state IN ('failed', 'dead')",
                (notification_id,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE notifications SET state = 'pending', reason = '', attempts = 0,"
                " next_attempt_at = 0, not_before = 0, updated_at = ?, delivered_in = ''"
                " WHERE id = ?",
                (now, notification_id),
            )
            _add_timeline(conn, [(notification_id, entry)])
            return row_notification(row)

        found = await self._call(retry)
        if found is None:
            return False
        self._pending.add([dataclasses.replace(found, not_before=0.0)])
        return True

    async def expire(self, now: float) -> int:
        def drop(conn: sqlite3.Connection) -> int:
            cut = (now - self.keep_records,)
            # Only the fixed query above is interpolated.
            conn.execute(
                f"DELETE FROM notifications_text WHERE rowid IN ({_EXPIRED.format('seq')})",  # noqa: S608  # nosec B608
                cut,
            )
            gone = conn.execute("DELETE FROM nflog WHERE expires_at <= ?", (now,)).rowcount
            gone += conn.execute("DELETE FROM alerts WHERE expires_at <= ?", (now,)).rowcount
            gone += conn.execute("DELETE FROM deploys WHERE at < ?", (now - DEPLOY_TTL,)).rowcount
            gone += conn.execute(
                "DELETE FROM notifications WHERE state != 'pending' AND updated_at < ?",
                (now - self.keep_records,),
            ).rowcount
            gone += expire_actions(conn, now)
            gone += expire_rollups(conn, now, ROLLUP_KEEP)
            return int(gone)

        return await self._call(drop)


# RecordQuery fields that are columns of their own, each with an index ending in seq.
_FILTERED = (
    "receiver",
    "env",
    "severity",
    "source",
    "state",
    "reason",
    "group_key",
    "delivered_in",
)
# The trigram index answers substrings at least this long.
_TRIGRAM = 3
# A filter matching at most this many records drives a text query (each record's text
# checked by rowid): cheaper than walking the text index's matches to find them.
_FEW = 10_000


def _few(conn: sqlite3.Connection, filters: Sequence[tuple[str, str]]) -> bool:
    """Whether one of `filters` matches at most _FEW records (counted on its index, and
    never past _FEW + 1)."""
    for column, value in filters:
        # Only fixed column names are interpolated.
        (n,) = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM notifications WHERE {column} = ? LIMIT ?)",  # noqa: S608  # nosec B608
            (value, _FEW + 1),
        ).fetchone()
        if n <= _FEW:
            return True
    return False


def _record_sql(
    filters: Sequence[tuple[str, str]],
    text: str,
    before: int | None,
    limit: int,
    *,
    by_text: bool,
) -> tuple[str, list[Any]]:
    """The page's query: driven by the text index newest first (`by_text`), or by the
    filters' indexes (or seq) with each record's text checked."""
    clauses = [f"n.{column} = ?" for column, _ in filters]
    params: list[Any] = [value for _, value in filters]
    if any(column == "delivered_in" for column, _ in filters):
        # Lets the partial index of carried records answer.
        clauses.append("n.delivered_in != ''")
    if by_text:
        source = "notifications_text t JOIN notifications n ON n.seq = t.rowid"
        clauses.insert(0, "notifications_text MATCH ?")
        params.insert(0, _fts_phrase(text))
        order = "t.rowid DESC"
        if before is not None:
            # On the text index's own rowid, so its walk starts at the cursor.
            clauses.append("t.rowid < ?")
            params.append(before)
    else:
        source = "notifications n"
        order = "n.seq DESC"
        if before is not None:
            clauses.append("n.seq < ?")
            params.append(before)
        if text:
            # Each candidate newest first checked until the page is full: a selective
            # filter, or text too short for trigrams (the API asks for 3 or more).
            clauses.append(
                "EXISTS (SELECT 1 FROM notifications_text t WHERE t.rowid = n.seq"
                " AND instr(t.text, ?) > 0)"
            )
            params.append(text)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    params.append(limit)
    # Only fixed column names and "?" placeholders are interpolated.
    return f"SELECT n.* FROM {source} {where} ORDER BY {order} LIMIT ?", params  # noqa: S608  # nosec B608


def _fts_phrase(text: str) -> str:
    """`text` as one FTS5 phrase: a substring query for the trigram index."""
    return '"' + text.replace('"', '""') + '"'


def _timeline_lines(entries: Sequence[tuple[str, TimelineEntry]]) -> dict[str, str]:
    """Each record's entries as the lines its timeline column gets appended."""
    lines: dict[str, str] = {}
    for nid, text in timeline_texts(entries):
        lines[nid] = lines.get(nid, "") + text + "\n"
    return lines


def _add_timeline(conn: sqlite3.Connection, entries: Sequence[tuple[str, TimelineEntry]]) -> None:
    """Append entries to their records' timelines (an entry of no record is dropped)."""
    conn.executemany(
        "UPDATE notifications SET timeline = timeline || ? WHERE id = ?",
        [(text, nid) for nid, text in _timeline_lines(entries).items()],
    )


def _first_created_since(conn: sqlite3.Connection, since: float) -> int:
    """The first seq created at or after `since`, by bisecting seqs: records are numbered
    as they are accepted, so creation times follow seqs (and no index of them is needed)."""
    lo, hi = conn.execute(
        "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM notifications"
    ).fetchone()
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(
            "SELECT created_at FROM notifications WHERE seq >= ? ORDER BY seq LIMIT 1", (mid,)
        ).fetchone()
        if row is not None and row[0] >= since:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


def _row_record(row: sqlite3.Row) -> NotificationRecord:
    return stored_record(row["id"], dict(row))
