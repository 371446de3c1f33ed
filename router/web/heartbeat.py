"""HTTP for heartbeats: `POST /heartbeat/{name}` (a beat) and `GET /api/v1/heartbeats`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from router.heartbeats.status import statuses
from router.store.protocols import StoreUnavailable
from router.web.auth import Handler, Rejected, authorized, challenge, log_refused
from router.web.state import STATE

JSON = "application/json"


async def beat(request: web.Request) -> web.Response:
    """A beat of the named heartbeat, recorded durably before the 200."""
    state = request.app[STATE]
    name = request.match_info["name"]
    try:
        _authorize(request)
        runtime = state.runtime
        if runtime.heartbeats.get(name) is None:
            raise Rejected(404, "unknown", f"no heartbeat {name!r} in the configuration")
        at = state.clock()
        try:
            await state.store.beat(name, at)
        except StoreUnavailable as exc:
            raise Rejected(
                503, "store_unavailable", "state store unavailable, retry later"
            ) from exc
    except Rejected as exc:
        if exc.status != 404:
            log_refused(request, exc, source="heartbeat")
        headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else {}
        return web.json_response({"error": exc.message}, status=exc.status, headers=headers)
    return web.json_response({"heartbeat": name, "at": at})


def _authorize(request: web.Request) -> None:
    """`server.auth.heartbeat`, else the Alertmanager webhook's credentials, else anyone."""
    auth = request.app[STATE].runtime.config.server.auth
    needed = auth.get("heartbeat") or auth.get("alertmanager")
    if needed is not None and not authorized(request, needed):
        raise Rejected(401, "unauthorized", "missing or wrong credentials", challenge(needed))


async def list_heartbeats(request: web.Request) -> web.Response:
    """Every configured heartbeat: its last beat, when one is expected, its state."""
    state = request.app[STATE]
    try:
        stored = await state.store.heartbeat_states()
    except StoreUnavailable:
        return web.json_response({"error": "state store unavailable, retry later"}, status=503)
    shown = statuses(state.runtime.heartbeats, stored, state.clock())
    return web.json_response({"heartbeats": [s.to_dict() for s in shown]})


def add_heartbeat_routes(app: web.Application, read: Callable[[Handler], Handler]) -> None:
    """Mount the beat (its own credentials) and the read API's list (`read` guards it)."""
    app.router.add_post("/heartbeat/{name:[\\s\\S]+}", beat)
    app.router.add_get("/api/v1/heartbeats", read(list_heartbeats))


_ERROR = {"description": "", "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _error(description: str) -> dict[str, Any]:
    return {**_ERROR, "description": description}


def _json(component: str, description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{component}"}
    return {"description": description, "content": {JSON: {"schema": schema}}}


def heartbeat_paths(
    credentials: list[dict[str, list[str]]], unauthorized: dict[str, Any]
) -> dict[str, Any]:
    """The OpenAPI description of both endpoints (their bodies: router/web/schemas.py)."""
    return {
        "/heartbeat/{name}": {
            "post": {
                "operationId": "beat",
                "summary": "A beat of a heartbeat (a CronJob's curl); recorded before the 200",
                "tags": ["heartbeats"],
                "security": credentials,
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
                "responses": {
                    "200": _json("Beat", "recorded"),
                    "401": {
                        "description": "missing or wrong credentials (server.auth.heartbeat,"
                        " else server.auth.alertmanager)",
                        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                        "content": _ERROR["content"],
                    },
                    "404": _error("no heartbeat of that name in the configuration"),
                    "503": _error("the state store does not answer; retry later"),
                },
            }
        },
        "/api/v1/heartbeats": {
            "get": {
                "operationId": "listHeartbeats",
                "summary": "Every configured heartbeat: last beat, when one is due, state",
                "tags": ["heartbeats"],
                "security": credentials,
                "responses": {
                    "200": _json("Heartbeats", "in configuration order"),
                    "401": unauthorized,
                    "503": _error("the state store does not answer; retry later"),
                },
            }
        },
    }
