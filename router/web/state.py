"""What the handlers share: the live runtime, the store, the worker, the intake, the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from router.config.loader import ConfigError, load_config
from router.config.schema import TeamLoad
from router.heartbeats.judge import TICK, Judge
from router.ingest.intake import Intake
from router.metrics import Metrics
from router.notify.worker import Deliverer
from router.runtime import Runtime
from router.store.protocols import DeliveryRecords, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tuning:
    """How often the service's own loops run and how much its pages show: production's
    values by default, smaller in tests."""

    # The store is pinged this often (and given this long to answer) for
    # `alert_router_store_up`.
    store_ping_every: float = 5.0
    heartbeat_tick: float = TICK
    # Records on one page of the console's list.
    console_page_size: int = 50
    # Without alert states the overview reads what fires from this many log entries (the
    # most recently notified).
    console_firing_groups: int = 500


DEFAULT_TUNING = Tuning()


@dataclass
class AppState:
    config_path: Path | None
    store: Store
    deliverer: Deliverer
    intake: Intake
    metrics: Metrics
    clock: Callable[[], float]
    # Judges heartbeats (router/heartbeats/judge.py); also runs while this replica does not
    # hold the role, to export the last-beat metric.
    heartbeats: Judge
    # What the last check of the store found (see handlers.mark_store).
    store_answered: bool = True
    tuning: Tuning = DEFAULT_TUNING
    # When the running config was loaded, and what the last reload did (None: none yet),
    # for the console's health panel.
    loaded_at: float = field(default_factory=time.time)
    last_reload: Reload | None = None
    last_reload_at: float | None = None
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Compiled on the service's loop at startup (its clients share the app's HTTP pool).
    _runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        """The running config, swapped whole by a reload."""
        if self._runtime is None:
            raise RuntimeError("the service has not started: no config compiled yet")
        return self._runtime

    @runtime.setter
    def runtime(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def records(self) -> DeliveryRecords:
        """The store as the read API sees it: delivery records only."""
        return self.store

    async def reload(self) -> list[str]:
        """Reload the config file; every problem found, [] when everything loaded.

        A problem of the root file keeps the running config whole; a team file's problem
        only keeps that team's last good version (see `reload_config`).
        """
        return (await self.reload_config()).problems

    async def reload_config(self) -> Reload:
        """Reload the config file: applied unless the root file has a problem; a team whose
        file fails keeps the version it runs now (or its fallback, if it never loaded)."""
        outcome = await self._reload_config()
        self.last_reload, self.last_reload_at = outcome, time.time()
        if outcome.applied:
            self.loaded_at = self.last_reload_at
        return outcome

    async def _reload_config(self) -> Reload:
        if self.config_path is None:
            return Reload(False, ["no configuration file to reload"])
        async with self._reload_lock:
            try:
                config = load_config(self.config_path, previous=self.runtime.config)
                runtime = Runtime.build(config, self.runtime, self.metrics)
            except ConfigError as exc:
                self.metrics.config_reload_success.set(0)
                log.error("config reload failed", extra={"problems": exc.problems})
                return Reload(False, list(exc.problems))
            except Exception as exc:  # noqa: BLE001 - a reload must never take the service down
                self.metrics.config_reload_success.set(0)
                log.exception("config reload failed")
                return Reload(False, [f"{self.config_path}: {type(exc).__name__}: {exc}"])
            previous = self.runtime
            if config.state != previous.config.state:
                log.warning("state settings changed: they take effect at the next restart")
            # Nothing of `previous` is closed: jobs in flight may still be using it, and
            # what it holds (channels, a replaced Loki client) needs no closing on the pool.
            self.runtime = runtime
            self.metrics.config_reload_success.set(1)
            self.metrics.config_reload_time.set_to_current_time()
            failed = runtime.failed_teams
            log.info(
                "config reloaded",
                extra={"path": str(self.config_path), "failed_teams": [t.name for t in failed]},
            )
            return Reload(True, config.team_problems, failed)


@dataclass(frozen=True, slots=True)
class Reload:
    """What a reload did: `applied` the new config (perhaps without some teams' new files)."""

    applied: bool
    problems: list[str]
    # Teams whose file failed: still routed by their last good version or their fallback.
    failed_teams: list[TeamLoad] = field(default_factory=list)


STATE = web.AppKey("state", AppState)
