"""State stores: SQLite (embedded default) and Redis (several replicas)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from router.store.protocols import Store
from router.store.url import parse_state_url

REDIS_PASSWORD_ENV = "ROUTER_REDIS_PASSWORD"


class StateSettings(Protocol):
    """What opening a store needs of the config's `state` (the store sits below config)."""

    @property
    def url(self) -> str: ...
    @property
    def key_prefix(self) -> str: ...
    @property
    def lease(self) -> float: ...
    @property
    def keep_records(self) -> float: ...
    @property
    def min_replicas(self) -> int: ...


def open_store(state: StateSettings, *, clock: Callable[[], float] = time.time) -> Store:
    """The store `state.url` names (validated with the config); opened by the app's startup."""
    url = parse_state_url(state.url)
    if url.is_redis:
        from router.store.redis import RedisStore

        # A password not in the URL comes from this variable (a Kubernetes Secret).
        return RedisStore(
            url.target,
            key_prefix=state.key_prefix,
            password_env=REDIS_PASSWORD_ENV,
            lease=state.lease,
            keep_records=state.keep_records,
            min_replicas=state.min_replicas,
            clock=clock,
        )
    from router.store.sqlite import SQLiteStore

    return SQLiteStore(url.target, lease=state.lease, keep_records=state.keep_records)
