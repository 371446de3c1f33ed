"""State stores: SQLite (embedded default) and Redis (several replicas)."""

from __future__ import annotations

from router.config.schema import StateConfig
from router.store.protocols import Store

REDIS_PASSWORD_ENV = "ROUTER_REDIS_PASSWORD"


def open_store(state: StateConfig) -> Store:
    """The store `state.url` names; opened later by the app's startup."""
    if state.url.startswith("sqlite://"):
        from router.store.sqlite import SQLiteStore

        return SQLiteStore(state.url)
    if state.url.startswith(("redis://", "rediss://")):
        from router.store.redis import RedisStore

        # A password not in the URL comes from this variable (a Kubernetes Secret).
        return RedisStore(state.url, key_prefix=state.key_prefix, password_env=REDIS_PASSWORD_ENV)
    raise ValueError(f"unsupported state.url scheme: {state.url.split(':', 1)[0]}")
