"""aiohttp handlers: webhooks, health, readiness, reload, metrics, notification records."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from router.config.schema import SourceAuth
from router.enrich.deploys import deploys_of
from router.ingest import alertmanager, argocd
from router.ingest.intake import plan_notifications
from router.model import Event
from router.notify.firing import alert_states
from router.store.protocols import StoreUnavailable, exported_outbox_depth
from router.web.state import STATE, AppState

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


class Rejected(Exception):
    """A webhook refused with a status, a reason label for metrics and a message for the sender."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _authorized(request: web.Request, auth: SourceAuth) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    ok = False
    # Compare every configured method in constant time; never short-circuit on a secret.
    if auth.bearer_token is not None and scheme.lower() == "bearer":
        expected = auth.bearer_token.get_secret_value().encode()
        ok |= hmac.compare_digest(credentials.encode(), expected)
    if auth.basic_auth is not None and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user_ok = hmac.compare_digest(user.encode(), auth.basic_auth.username.encode())
        pass_ok = hmac.compare_digest(
            password.encode(), auth.basic_auth.password.get_secret_value().encode()
        )
        ok |= user_ok and pass_ok
    return ok


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


def _schema_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _parse(body: bytes, model: type[BaseModel]) -> Any:
    # pydantic parses and validates the JSON in one pass (in Rust): the hot path.
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            raise Rejected(400, "bad_request", f"invalid JSON: {errors[0]['msg']}") from exc
        if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
            raise Rejected(400, "bad_request", "expected a JSON object") from exc
        raise Rejected(400, "bad_request", _schema_error(exc)) from exc


def _alertmanager_events(state: AppState, body: bytes, now: datetime) -> list[Event]:
    payload = _parse(body, alertmanager.AlertmanagerWebhook)
    return alertmanager.to_events(payload, state.runtime.config)


def _argocd_events(state: AppState, body: bytes, now: datetime) -> list[Event]:
    payload = _parse(body, argocd.ArgoCDNotification)
    return argocd.to_events(payload, state.runtime.config, now)


def webhook_handler(
    source: str, to_events: Callable[[AppState, bytes, datetime], list[Event]]
) -> Callable[[web.Request], Any]:
    """A handler that authenticates, validates, routes and durably records one source."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE]
        started = time.perf_counter()
        try:
            response = await _accept(request, state, source, to_events)
        except Rejected as exc:
            state.metrics.webhooks_rejected.labels(source, exc.reason).inc()
            if exc.status >= 500:
                log.warning("webhook not recorded", extra={"source": source, "error": exc.message})
            headers = (
                {"WWW-Authenticate": 'Bearer realm="alert-router"'} if exc.status == 401 else {}
            )
            return web.json_response({"error": exc.message}, status=exc.status, headers=headers)
        state.metrics.webhook_duration.labels(source).observe(time.perf_counter() - started)
        return response

    return handle


async def _accept(
    request: web.Request,
    state: AppState,
    source: str,
    to_events: Callable[[AppState, bytes, datetime], list[Event]],
) -> web.Response:
    config = state.runtime.config
    auth = config.server.auth.get(source)  # type: ignore[call-overload]
    if auth is not None and not _authorized(request, auth):
        raise Rejected(401, "unauthorized", "missing or wrong credentials")
    if not _is_json(request.content_type):
        raise Rejected(415, "unsupported_media_type", "Content-Type must be application/json")
    body = await _read_body(request, config.server.max_body_bytes)
    now = datetime.fromtimestamp(state.clock(), UTC)
    events = to_events(state, body, now)
    notifications = plan_notifications(events, state.runtime.tree, now)
    # Alert states only matter to inhibition: without rules, nothing is spent on them.
    alerts = (
        alert_states(events, now.timestamp(), config.dedup.repeat_interval)
        if config.inhibit_rules
        else []
    )
    deploys = deploys_of(events)
    try:
        await state.store.record(notifications, alerts=alerts, deploys=deploys)
    except StoreUnavailable as exc:
        raise Rejected(503, "store_unavailable", "state store unavailable, retry later") from exc
    if alerts:
        state.deliverer.firing.invalidate()
    state.deliverer.wake()
    state.metrics.events_received.labels(source).inc(len(events))
    return web.json_response({"accepted": len(events)})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        await state.store.ping()
    except StoreUnavailable as exc:
        state.metrics.store_up.set(0)
        return web.json_response({"status": "unavailable", "error": str(exc)}, status=503)
    state.metrics.store_up.set(1)
    return web.json_response({"status": "ready"})


async def reload(request: web.Request) -> web.Response:
    state = request.app[STATE]
    errors = await state.reload()
    if errors:
        return web.json_response({"status": "failed", "errors": errors}, status=400)
    return web.json_response({"status": "reloaded"})


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


async def notifications(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        return web.json_response({"error": "limit must be an integer"}, status=400)
    if not 1 <= limit <= 1000:
        return web.json_response({"error": "limit must be between 1 and 1000"}, status=400)
    try:
        records = await state.records.list_notifications(
            limit, receiver=request.query.get("receiver"), group_key=request.query.get("group")
        )
    except StoreUnavailable as exc:
        return web.json_response({"error": str(exc)}, status=503)
    return web.json_response({"notifications": [r.to_dict() for r in records]})


def add_routes(app: web.Application) -> None:
    """Mount every endpoint of CONTRACT section 2."""
    app.router.add_post(
        "/webhook/alertmanager", webhook_handler("alertmanager", _alertmanager_events)
    )
    app.router.add_post("/webhook/argocd", webhook_handler("argocd", _argocd_events))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/notifications", notifications)
