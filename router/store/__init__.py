"""State stores: SQLite (embedded default) and Redis (several replicas)."""

from __future__ import annotations

from router.config import StateConfig
from router.store.base import Store


def open_store(state: StateConfig) -> Store:
    """The store `state.url` names; opened later by the app's startup."""
    if state.url.startswith("sqlite://"):
        from router.store.sqlite import SQLiteStore

        return SQLiteStore(state.url)
    raise ValueError(f"unsupported state.url scheme: {state.url.split(':', 1)[0]}")
