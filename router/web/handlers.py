"""aiohttp handlers: webhooks, health, readiness, reload, metrics, notification records.

HTTP concerns only (credentials, content type, size, status codes); what a webhook means is
the intake's business (router/ingest/intake.py).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from router.ingest.intake import SOURCES, InvalidPayload, PayloadTooLarge
from router.store.protocols import StoreUnavailable, exported_outbox_depth
from router.web.api import add_api_routes
from router.web.auth import (
    ADMIN,
    READ_API,
    Handler,
    Rejected,
    authorized,
    challenge,
    guarded,
    log_refused,
)
from router.web.console.mount import setup_console
from router.web.deadline import ReadTimeout, read_body
from router.web.heartbeat import add_heartbeat_routes
from router.web.insights import get_insights
from router.web.replay import replay_routes
from router.web.state import STATE, AppState

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, "too_large", f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def webhook_handler(source: str) -> Handler:
    """A handler that authenticates one source's webhooks and hands them to the intake."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE]
        started = time.perf_counter()
        try:
            accepted = await _accept(request, state, source)
        except Rejected as exc:
            state.metrics.webhooks_rejected.labels(source, exc.reason).inc()
            log_refused(request, exc, source=source)
            headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else {}
            answer = web.json_response({"error": exc.message}, status=exc.status, headers=headers)
            if exc.status == 408:
                # The rest of the body may still trickle in: nothing more is read from it.
                answer.force_close()
            return answer
        state.metrics.events_received.labels(source).inc(accepted)
        state.metrics.webhook_duration.labels(source).observe(time.perf_counter() - started)
        return web.json_response({"accepted": accepted})

    return handle


async def _accept(request: web.Request, state: AppState, source: str) -> int:
    server = state.runtime.config.server
    auth = server.auth.get(source)  # type: ignore[call-overload]
    if auth is not None and not authorized(request, auth):
        raise Rejected(401, "unauthorized", "missing or wrong credentials", challenge(auth))
    if not _is_json(request.content_type):
        raise Rejected(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        body = await read_body(request, _read_body(request, server.max_body_bytes))
    except ReadTimeout as exc:
        raise Rejected(408, "timeout", str(exc)) from None
    try:
        return await state.intake.accept(source, body)
    except PayloadTooLarge as exc:
        raise Rejected(413, "too_large", str(exc)) from exc
    except InvalidPayload as exc:
        raise Rejected(400, "bad_request", str(exc)) from exc
    except StoreUnavailable as exc:
        raise Rejected(503, "store_unavailable", "state store unavailable, retry later") from exc


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def check_store(state: AppState) -> str | None:
    """Ping the store and record the outcome (`alert_router_store_up`); the problem, or
    None when it answered and delivery runs on it."""
    try:
        await state.store.ping()
    except StoreUnavailable as exc:
        mark_store(state, str(exc))
        return str(exc)
    mark_store(state, None)
    if not state.deliverer.started:
        # Up again, but opened (and delivery started) only by the next retry, within
        # seconds; ready then, not before.
        return "state store answers; opening it"
    return None


def mark_store(state: AppState, problem: str | None) -> None:
    """Record whether the store answered; a change either way is logged once."""
    state.metrics.store_up.set(0 if problem else 1)
    if (problem is None) != state.store_answered:
        state.store_answered = problem is None
        if problem is None:
            log.info("state store answers again")
        else:
            log.warning("state store unavailable", extra={"error": problem})


async def readyz(request: web.Request) -> web.Response:
    problem = await check_store(request.app[STATE])
    if problem is not None:
        return web.json_response({"status": "unavailable", "error": problem}, status=503)
    return web.json_response({"status": "ready", **_failed_teams(request.app[STATE])})


def _failed_teams(state: AppState) -> dict[str, object]:
    """`failed_teams` for an answer, when a team file failed: the service still works (the
    team is routed by its last good version or its fallback), so it is said, not refused."""
    failed = state.runtime.failed_teams
    return {"failed_teams": [load.to_dict() for load in failed]} if failed else {}


async def reload(request: web.Request) -> web.Response:
    state = request.app[STATE]
    outcome = await state.reload_config()
    if not outcome.applied:
        return web.json_response({"status": "failed", "errors": outcome.problems}, status=400)
    # Applied: the root file and every team that loaded are in force, even when a team
    # file failed (that team keeps its last good version), so the reload itself succeeded.
    return web.json_response({"status": "reloaded", **_failed_teams(state)})


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        state.metrics.outbox_pending.set(await exported_outbox_depth(state.store))
    except StoreUnavailable:
        pass
    return web.Response(
        body=generate_latest(state.metrics.registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


def add_routes(app: web.Application) -> None:
    """Mount the webhooks, health, readiness, metrics, reload, the read API and the console."""
    for source in SOURCES:
        app.router.add_post(f"/webhook/{source}", webhook_handler(source))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/-/reload", guarded(ADMIN, reload))
    setup_console(app)
    add_api_routes(app, lambda scope, h: guarded(READ_API if scope == "read" else ADMIN, h))
    add_heartbeat_routes(app, lambda h: guarded(READ_API, h))
    app.router.add_post("/api/v1/routes/replay", guarded(ADMIN, replay_routes))
    app.router.add_get("/api/v1/insights", guarded(READ_API, get_insights))
