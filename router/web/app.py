"""Building and running the aiohttp application."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from router.config.loader import ConfigError, load_config
from router.config.schema import Config
from router.ingest.intake import Intake
from router.notify.pacing import Pacer
from router.notify.worker import Deliverer
from router.runtime import Runtime
from router.store import open_store
from router.store.protocols import Store, StoreUnavailable
from router.web.handlers import add_routes
from router.web.logs import setup_logging
from router.web.metrics import Metrics
from router.web.state import STATE, AppState

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    config_path: Path | None = None,
    store: Store | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The service as an aiohttp app; the store opens and the worker starts on startup."""
    app = web.Application(client_max_size=max(config.server.max_body_bytes, 1) * 2)
    metrics = metrics or Metrics()
    runtime = Runtime.build(config, metrics=metrics)
    the_store = store if store is not None else open_store(config.state)
    deliverer = Deliverer(
        the_store,
        lambda: app[STATE].runtime,
        metrics,
        workers=config.state.workers,
        dead_after=config.state.dead_after,
        clock=clock,
        pacer=Pacer(config.slack.per_channel_interval, config.slack.digest_threshold, clock=clock),
    )
    app[STATE] = AppState(
        config_path=config_path,
        runtime=runtime,
        store=the_store,
        deliverer=deliverer,
        intake=Intake(
            the_store, lambda: app[STATE].runtime, deliverer.firing, deliverer.wake, clock
        ),
        metrics=metrics,
        clock=clock,
    )
    metrics.config_reload_success.set(1)
    metrics.config_reload_time.set_to_current_time()
    add_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    await state.store.open()
    worker = asyncio.create_task(state.deliverer.run(), name="deliverer")
    try:
        yield
    finally:
        grace = state.runtime.config.server.shutdown_grace
        await state.deliverer.stop(grace)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await state.runtime.close()
        await state.store.close()


def _tune_gc() -> None:
    # The objects alive after start-up (config, compiled routes, clients) never die: keep
    # them out of every collection. A backlog holds many young objects, and the default
    # thresholds then run full collections often enough to stall webhooks for 100+ ms
    # (measured: p99 186 ms -> 76 ms at 400 webhooks/s). Cycles are still collected.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def run_server(config_path: str, host: str, port: int) -> int:
    """Serve until SIGTERM/SIGINT, then drain in-flight work; SIGHUP reloads the config."""
    setup_logging()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    return asyncio.run(_serve(config, Path(config_path), host, port))


async def _serve(config: Config, path: Path, host: str, port: int) -> int:
    app = create_app(config, config_path=path)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
    except StoreUnavailable as exc:
        # Exit non-zero with one clear line; a supervisor (Kubernetes) restarts us.
        log.error("state store unavailable at start", extra={"error": str(exc)})
        return 1
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening", extra={"host": host, "port": port, "config": str(path)})
    _tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    reloads: set[asyncio.Task[list[str]]] = set()

    def on_hup() -> None:
        task = loop.create_task(app[STATE].reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await stop.wait()
    log.info("shutting down: draining in-flight deliveries")
    await runner.cleanup()
    log.info("stopped")
    return 0
