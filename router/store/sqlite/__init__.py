"""The SQLite store: the embedded default for one replica (store.py), with its in-memory
index of pending work (pending.py)."""

from router.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
