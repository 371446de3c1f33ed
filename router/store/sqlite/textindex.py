"""The free-text index's backlog: texts of records recorded but not indexed yet, indexed
by the writer thread when it is idle (or with a text query), not with each webhook."""

from __future__ import annotations

import itertools
import sqlite3

from router.store.sqlite.engine import Operation

# Texts wait for the writer to be idle this long (or for a text query), then are all
# indexed at once: a burst of webhooks does not pay for them. Past a backlog of
# TEXT_BACKLOG (a long storm), TEXT_CHUNK of them go with each batch of writes.
TEXT_DELAY = 0.5
TEXT_BACKLOG = 20_000
TEXT_CHUNK = 64
TEXT_IDLE_SLICE = 2_000


class TextBacklog:
    """The writer thread's chores (engine.Chores) for the text index; only the writer
    thread touches it."""

    def __init__(self) -> None:
        # id -> text, oldest first.
        self.unindexed: dict[str, str] = {}

    def add(self, nid: str, text: str) -> None:
        """Queue a record's text for the index (once its row is written)."""
        self.unindexed[nid] = text

    def index(self, conn: sqlite3.Connection, limit: int | None = None) -> None:
        """Index the queued texts, the oldest `limit` of them if given (an operation of the
        writer thread). Indexed many at a time, not one with each webhook, FTS5 costs far
        less per record; a few at a time, no commit waits long for it."""
        if not self.unindexed:
            return
        if limit is None or limit >= len(self.unindexed):
            queued, self.unindexed = self.unindexed, {}
        else:
            queued = dict(itertools.islice(self.unindexed.items(), limit))
            for nid in queued:
                del self.unindexed[nid]
        conn.executemany(
            "INSERT INTO notifications_text (rowid, text)"
            " SELECT seq, ? FROM notifications WHERE id = ?",
            [(text, nid) for nid, text in queued.items()],
        )

    def idle_after(self) -> float | None:
        return TEXT_DELAY if self.unindexed else None

    def idle(self, conn: sqlite3.Connection) -> None:
        # A slice at a time, so a webhook arriving now waits for one slice at most, not
        # for the whole backlog.
        self.index(conn, TEXT_IDLE_SLICE)

    def rider(self) -> Operation | None:
        if len(self.unindexed) < TEXT_BACKLOG:
            return None
        # Busy for long: a chunk goes with each batch (in the same commit, no fsync of
        # its own), so the backlog stays bounded.
        return self._chunk

    def final(self) -> Operation | None:
        return self.index if self.unindexed else None

    def _chunk(self, conn: sqlite3.Connection) -> None:
        self.index(conn, TEXT_CHUNK)
