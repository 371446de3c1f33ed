"""The SQLite store, the embedded default for one replica (store.py): its engine, one
writer thread with group commit and reader threads (engine.py), its layout and migrations
(schema.py), the text index's backlog (textindex.py) and the in-memory index of pending
work (pending.py)."""

from router.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
