"""Building and running the aiohttp application."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from router import version
from router.cancel import cancel_and_wait
from router.config.exposure import asks_for_credentials, open_surfaces
from router.config.loader import ConfigError, load_config
from router.config.schema import Config
from router.heartbeats.judge import Judge
from router.ingest.intake import Intake
from router.interact.watch import SilenceWatcher
from router.metrics import Metrics
from router.notify.escalation import Escalator
from router.notify.pacing import Pacer
from router.notify.reports import Reports
from router.notify.worker import Deliverer
from router.runtime import Runtime, http_pool
from router.store import open_store
from router.store.protocols import Store, StoreUnavailable
from router.store.sqlite import SQLiteStore
from router.web.deadline import deadline_middleware, start_site
from router.web.handlers import add_routes, check_store, mark_store
from router.web.logs import setup_logging
from router.web.security import proxy_headers, same_site_changes, security_headers
from router.web.slack import setup_slack
from router.web.state import DEFAULT_TUNING, STATE, AppState, Tuning

log = logging.getLogger(__name__)

# Opening a store that did not answer at start is retried after these pauses (doubling).
STORE_RETRY_FIRST = 0.25
STORE_RETRY_MAX = 2.0
_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def create_app(
    config: Config,
    *,
    config_path: Path | None = None,
    clock: Callable[[], float] = time.time,
    tuning: Tuning = DEFAULT_TUNING,
    store: Store | None = None,
) -> web.Application:
    """The service as an aiohttp app; on startup the HTTP pool opens, the config is compiled
    on the loop (its clients share the pool), the store opens and the worker starts.
    `store`: used instead of the one `config.state` names (tests pass one they built)."""
    app = web.Application(
        client_max_size=max(config.server.max_body_bytes, 1) * 2,
        middlewares=[
            deadline_middleware(lambda: app[STATE].runtime.config.server.read_timeout),
            proxy_headers,
            same_site_changes,
        ],
    )
    app.on_response_prepare.append(security_headers)
    metrics = Metrics()
    the_store = store if store is not None else open_store(config.state, clock=clock)
    if isinstance(the_store, SQLiteStore):
        metrics.export_sqlite_size(the_store.size_bytes)
    deliverer = Deliverer(
        the_store,
        lambda: app[STATE].runtime,
        metrics,
        workers=config.state.workers,
        dead_after=config.state.dead_after,
        # Post slots live in the store, so replicas share each destination's budget; the
        # pacer keeps real time, not the service's injectable clock.
        pacer=Pacer(the_store),
        lease=config.state.lease,
        lease_renew=config.state.lease_renew,
        clock=clock,
    )
    app[STATE] = AppState(
        config_path=config_path,
        store=the_store,
        deliverer=deliverer,
        intake=Intake(
            the_store, lambda: app[STATE].runtime, deliverer.firing, deliverer.wake, clock
        ),
        metrics=metrics,
        clock=clock,
        heartbeats=Judge(
            the_store,
            lambda: app[STATE].runtime,
            deliverer.firing,
            deliverer.wake,
            clock,
            lease=config.state.lease,
            last_beat=metrics.heartbeat_last_beat,
            every=tuning.heartbeat_tick,
        ),
        tuning=tuning,
    )
    metrics.config_reload_success.set(1)
    metrics.config_reload_time.set_to_current_time()
    add_routes(app)
    # First in, last out: everything after it may call out until it is closed.
    app.cleanup_ctx.append(_runtime_on_pool(config))
    app.cleanup_ctx.append(_lifecycle)
    setup_slack(app, the_store, lambda: app[STATE].runtime, clock, metrics)
    app.cleanup_ctx.append(
        _after_acting(
            Escalator(
                the_store, lambda: app[STATE].runtime, metrics, clock=clock, wake=deliverer.wake
            ),
            SilenceWatcher(
                the_store, lambda: app[STATE].runtime, metrics, clock=clock, wake=deliverer.wake
            ),
        )
    )
    return app


def _runtime_on_pool(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """Open the one HTTP pool and compile `config` on it; close the pool last at shutdown.
    Reloads hand the pool on from runtime to runtime."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        state = app[STATE]
        async with http_pool() as http:
            state.runtime = Runtime.build(
                config, metrics=state.metrics, clock=state.clock, overrides=state.store, http=http
            )
            yield

    return run


def _after_acting(
    escalator: Escalator, watcher: SilenceWatcher
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Run escalation and the checks of silenced groups beside delivery (issue 23)."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(escalator.run(), name="escalation"),
            asyncio.create_task(watcher.run(), name="silence-checks"),
        ]
        try:
            yield
        finally:
            escalator.stop()
            watcher.stop()
            await asyncio.wait(tasks, timeout=5)
            await cancel_and_wait(tasks)

    return run


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    # A store that answers is open before the port is, so the first webhook is accepted;
    # one that does not is opened in the background while the service answers 503.
    opened = await _open_store(state)
    worker = asyncio.create_task(_open_then_deliver(state, opened), name="deliverer")
    watch = asyncio.create_task(_watch_store(state), name="store-ping")
    judge = asyncio.create_task(state.heartbeats.run(), name="heartbeats")
    reports = asyncio.create_task(
        Reports(state.store, lambda: state.runtime.config, state.deliverer.wake, state.clock).run(),
        name="reports",
    )
    try:
        yield
    finally:
        # The judge ends first: what it records is stored before the deliverer stops.
        await cancel_and_wait([judge, watch, reports])
        grace = state.runtime.config.server.shutdown_grace
        await state.deliverer.stop(grace)
        await cancel_and_wait([worker])
        await state.runtime.close()
        await state.store.close()


async def _open_store(state: AppState) -> bool:
    """Try to open the store once; whether it is open (a failure is logged once)."""
    try:
        await state.store.open()
    except StoreUnavailable as exc:
        mark_store(state, f"cannot open the state store yet: {exc}")
        return False
    mark_store(state, None)
    return True


async def _open_then_deliver(state: AppState, opened: bool) -> None:
    """Retry opening the store with a short backoff (it is ready within STORE_RETRY_MAX of
    answering), then run the worker: until then webhooks and /readyz answer 503."""
    delay = STORE_RETRY_FIRST
    while not opened:
        await asyncio.sleep(delay)
        delay = min(delay * 2, STORE_RETRY_MAX)
        opened = await _open_store(state)
        if opened:
            log.info("state store open: delivery starts")
    await state.deliverer.run()


async def _watch_store(state: AppState) -> None:
    """Keep `alert_router_store_up` current, whether or not anyone polls /readyz."""
    every = state.tuning.store_ping_every
    while True:
        await asyncio.sleep(every)
        try:
            async with asyncio.timeout(every):
                await check_store(state)
        except TimeoutError:
            mark_store(state, f"no answer to a ping within {every:g}s")


def _tune_gc() -> None:
    # The objects alive after start-up (config, compiled routes, clients) never die: keep
    # them out of every collection. A backlog holds many young objects, and the default
    # thresholds then run full collections often enough to stall webhooks for 100+ ms
    # (measured: p99 186 ms -> 76 ms at 400 webhooks/s). Cycles are still collected.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def run_server(config_path: str, host: str | None, port: int, log_level: str = "info") -> int:
    """Serve until SIGTERM/SIGINT, then drain in-flight work; SIGHUP reloads the config.

    Whatever stops it from starting (a bad config, a port it cannot bind) is reported in
    one line each, never as a traceback, with exit status 1. A store it cannot reach does
    not stop it: it serves /healthz, answers 503 elsewhere and opens the store once it
    answers.
    """
    setup_logging(log_level)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    if host is None:
        host = default_host(config)
    try:
        return asyncio.run(_serve(config, Path(config_path), host, port))
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers are in place (still starting up).
        return 130


def default_host(config: Config) -> str:
    """All interfaces, but only loopback while nothing asks for credentials: a quick start
    on a laptop is open to that laptop, not to its network."""
    if asks_for_credentials(config):
        return "0.0.0.0"  # nosec B104 - chosen only when every surface asks for credentials
    log.warning(
        "listening on 127.0.0.1 only: no surface asks for credentials (server.auth);"
        " give --host 0.0.0.0 (or ROUTER_HOST) to listen on every interface anyway"
    )
    return "127.0.0.1"


async def _serve(config: Config, path: Path, host: str, port: int) -> int:
    started = await _start(config, path, host, port)
    if started is None:
        return 1
    runner, listening = started
    app = runner.app
    log.info(
        "listening",
        extra={"host": host, "port": port, "config": str(path), "version": version()},
    )
    for surface in open_surfaces(config):
        log.warning("open to anyone: %s", surface)
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
    listening.close()
    await runner.cleanup()
    log.info("stopped")
    return 0


async def _start(
    config: Config, path: Path, host: str, port: int
) -> tuple[web.AppRunner, asyncio.Server] | None:
    """The app, its store open and its port bound; None (after one log line) if not."""
    runner: web.AppRunner | None = None
    try:
        app = create_app(config, config_path=path)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        listening = await start_site(
            runner, host, port, lambda: app[STATE].runtime.config.server.read_timeout
        )
        return runner, listening
    except OSError as exc:
        log.error(
            "cannot start: cannot listen",
            extra={"host": host, "port": port, "error": exc.strerror or str(exc)},
        )
    except Exception as exc:  # noqa: BLE001 - anything else still gets one line, no traceback
        log.error(
            "cannot start",
            extra={"error": _redact_urls(f"{type(exc).__name__}: {exc}")},
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
    if runner is not None:
        await runner.cleanup()
    return None


def _redact_urls(text: str) -> str:
    """`text` with the credentials of any URL in it (`scheme://user:password@`) hidden."""
    return _USERINFO_RE.sub(r"\1<redacted>@", text)
