"""The JSON read API behind the console: filtered records, one record with its timeline,
one group's records, the route tester, an admin's retry, and the OpenAPI document.

Every answer is JSON; a request the API cannot answer as asked is a 4xx with
`{"error": ...}` saying what to change, a store that does not answer a 503.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from router.model import DeliveryState, format_time, parse_time
from router.routetest.runner import Routing
from router.store.protocols import RecordQuery, StoreUnavailable, text_query_problem
from router.web.auth import access_of
from router.web.deadline import ReadTimeout, read_body
from router.web.oncall import (
    BadOverride,
    new_override,
    oncall_now,
    override_view,
    overrides_of,
    parse_instant,
    rotation_view,
)
from router.web.openapi import openapi_document
from router.web.state import STATE

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# The text index answers substrings this long or longer without reading every record.
# Records of one group shown at once (a group's records over keep_records).
GROUP_LIMIT = 1000
MAX_LABELS = 100
STATES = tuple(s.value for s in DeliveryState)
# Query parameters of the list, with the RecordQuery field each sets (`group` and `digest`
# are the names the API had before the console).
_FILTERS = {
    "receiver": "receiver",
    "env": "env",
    "severity": "severity",
    "source": "source",
    "state": "state",
    "reason": "reason",
    "q": "text",
    "group_key": "group_key",
    "group": "group_key",
    "digest": "delivered_in",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """A request the API refuses with a 4xx and this message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def answering(handler: Handler) -> Handler:
    """Turns BadRequest into its 4xx and a store outage into a 503, both as JSON."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        except StoreUnavailable:
            # The store's own message names hosts and files: logged by the store checks.
            return _error("state store unavailable, retry later", 503)

    return handle


def record_query(query: Mapping[str, str]) -> RecordQuery:
    """The RecordQuery of a list request's parameters; BadRequest for a bad one."""
    fields: dict[str, str] = {}
    for name, field in _FILTERS.items():
        value = query.get(name, "")
        if value:
            fields[field] = value
    state = fields.get("state")
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}, not {state!r}")
    problem = text_query_problem(fields.get("text"))
    if problem is not None:
        raise BadRequest(problem)
    return RecordQuery(**fields)


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


@answering
async def list_notifications(request: web.Request) -> web.Response:
    """`GET /api/v1/notifications`: records newest first, filtered, a page at a time."""
    store = request.app[STATE].store
    query = record_query(request.query)
    limit = _limit(request.query)
    try:
        page = await store.query_notifications(query, limit, request.query.get("cursor") or None)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response(
        {"notifications": [r.to_dict() for r in page.records], "next_cursor": page.next_cursor}
    )


@answering
async def get_notification(request: web.Request) -> web.Response:
    """`GET /api/v1/notifications/{id}`: one record and its decision timeline."""
    store = request.app[STATE].store
    nid = request.match_info["id"]
    record = await store.get_notification(nid)
    if record is None:
        raise BadRequest(f"no notification {nid!r} (unknown, or older than keep_records)", 404)
    timeline = await store.timeline(nid)
    actions = await store.group_actions(record.receiver, record.group_key)
    return web.json_response(
        {
            **record.to_dict(),
            "timeline": [e.to_dict() for e in timeline],
            "actions": actions.to_dict() if actions is not None else None,
        }
    )


@answering
async def get_group(request: web.Request) -> web.Response:
    """`GET /api/v1/groups/{group key}`: every receiver's records of one group."""
    store = request.app[STATE].store
    key = request.match_info["key"]
    cursor = request.query.get("cursor") or None
    try:
        page = await store.query_notifications(RecordQuery(group_key=key), GROUP_LIMIT, cursor)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    receivers: dict[str, dict[str, Any]] = {}
    for r in page.records:
        # Newest first: the first record of a receiver is its latest.
        receivers.setdefault(
            r.receiver,
            {"receiver": r.receiver, "state": r.state, "reason": r.reason, "latest": r.id},
        )
    for entry in receivers.values():
        actions = await store.group_actions(entry["receiver"], key)
        entry["actions"] = actions.to_dict() if actions is not None else None
    return web.json_response(
        {
            "group_key": key,
            "receivers": list(receivers.values()),
            "notifications": [r.to_dict() for r in page.records],
            "next_cursor": page.next_cursor,
        }
    )


async def _json_object(request: web.Request) -> dict[str, Any]:
    max_bytes = request.app[STATE].runtime.config.server.max_body_bytes
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes", 413)
    try:
        raw = await read_body(request, request.content.read(max_bytes + 1))
    except ReadTimeout as exc:
        raise BadRequest(str(exc), 408) from None
    if len(raw) > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes", 413)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _test_labels(body: Mapping[str, Any]) -> dict[str, str]:
    labels = body.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise BadRequest('labels must be a non-empty object of strings, e.g. {"env": "prod"}')
    if len(labels) > MAX_LABELS:
        raise BadRequest(f"labels: at most {MAX_LABELS}")
    for name, value in labels.items():
        if not isinstance(value, str) or not name:
            raise BadRequest(f"labels.{name}: each label needs a name and a string value")
    return dict(labels)


def _test_time(body: Mapping[str, Any], now: float) -> datetime:
    at = body.get("at")
    if at is None:
        return datetime.fromtimestamp(now, UTC)
    if not isinstance(at, str):
        raise BadRequest('at must be an RFC 3339 time such as "2026-01-31T22:00:00Z"')
    try:
        parsed = parse_time(at)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise BadRequest(f'at must be an RFC 3339 time such as "2026-01-31T22:00:00Z", not {at!r}')
    return parsed


@answering
async def test_route(request: web.Request) -> web.Response:
    """`POST /api/v1/routes/test`: which receivers labels reach at a time, which of them are
    muted then, and whether an alert firing now would inhibit them."""
    state = request.app[STATE]
    body = await _json_object(request)
    unknown = sorted(set(body) - {"labels", "at"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}: only labels and at")
    given = _test_labels(body)
    now = state.clock()
    at = _test_time(body, now)
    runtime = state.runtime
    labels = Routing.normalized(runtime.config, given)
    receivers: list[str] = []
    muted: list[str] = []
    routes = []
    for route in runtime.tree.match(labels):
        try:
            why = runtime.intervals.mute_reason(route, at)
        except KeyError:
            why = None
        (muted if why else receivers).append(route.receiver)
        routes.append(
            {
                "receiver": route.receiver,
                "path": route.path,
                "muted_by": why or "",
                "escalate": [{"after": after, "to": to} for after, to in route.escalate],
            }
        )
    firing = await state.store.firing_alerts(now)
    found = runtime.inhibitor.inhibition(labels, firing)
    inhibited_by = None
    if found is not None:
        rule, source = found
        inhibited_by = {"rule": rule.name, "source": dict(source)}
    return web.json_response(
        {
            "labels": labels,
            "at": at.isoformat(),
            "receivers": receivers,
            "muted": muted,
            "inhibited": found is not None,
            "inhibited_by": inhibited_by,
            "path": [r["path"] for r in routes],
            "routes": routes,
        }
    )


@answering
async def retry(request: web.Request) -> web.Response:
    """`POST /api/v1/notifications/{id}/retry`: a failed or dead notification, again now."""
    state = request.app[STATE]
    nid = request.match_info["id"]
    if not await state.store.retry_now(nid, state.clock()):
        record = await state.store.get_notification(nid)
        if record is None:
            raise BadRequest(f"no notification {nid!r} (unknown, or older than keep_records)", 404)
        raise BadRequest(
            f"notification {nid!r} is {record.state}: only failed or dead ones are retried", 409
        )
    state.deliverer.wake()
    record = await state.store.get_notification(nid)
    return web.json_response(
        {"retried": True, "notification": record.to_dict() if record else None}
    )


@answering
async def get_oncall(request: web.Request) -> web.Response:
    """`GET /api/v1/oncall`: who is on call per rotation (now, or `?at=`), the next handoff,
    and the overrides not yet over."""
    state = request.app[STATE]
    at = state.clock()
    if request.query.get("at"):
        try:
            at = parse_instant(request.query["at"], "at")
        except BadOverride as exc:
            raise BadRequest(str(exc)) from None
    overrides = await overrides_of(state, min(at, state.clock()))
    rotations = list(state.runtime.oncall.rotations.values())
    return web.json_response(
        {
            "at": format_time(datetime.fromtimestamp(at, UTC)),
            "rotations": [rotation_view(r, now) for r, now in oncall_now(rotations, overrides, at)],
            "overrides": [override_view(o) for o in overrides],
        }
    )


@answering
async def add_override(request: web.Request) -> web.Response:
    """`POST /api/v1/oncall/overrides` (admin): `who` covers `rotation` from `from` until
    `until`, over the rotation, on every replica."""
    state = request.app[STATE]
    body = await _json_object(request)
    unknown = sorted(set(body) - {"rotation", "who", "from", "until"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}: only rotation, who, from and until")
    user = access_of(request, state.runtime.config.server).user
    try:
        start = parse_instant(body.get("from"), "from") if "from" in body else state.clock()
        end = parse_instant(body.get("until"), "until")
        override = new_override(state, body.get("rotation"), body.get("who"), start, end, user)
    except BadOverride as exc:
        raise BadRequest(str(exc)) from None
    await state.store.add_override(override)
    log.info("on-call override added", extra={**override.to_dict(), "user": user})
    return web.json_response({"override": override_view(override)}, status=201)


@answering
async def remove_override(request: web.Request) -> web.Response:
    """`DELETE /api/v1/oncall/overrides/{id}` (admin)."""
    state = request.app[STATE]
    override_id = request.match_info["id"]
    if not await state.store.remove_override(override_id):
        raise BadRequest(f"no override {override_id!r}", 404)
    log.info("on-call override removed", extra={"id": override_id})
    return web.json_response({"removed": override_id})


async def openapi(request: web.Request) -> web.Response:
    """`GET /api/v1/openapi.json`: every endpoint of the service, described."""
    return web.json_response(openapi_document())


def add_api_routes(app: web.Application, guard: Callable[[str, Handler], Handler]) -> None:
    """Mount the API; `guard("read" | "admin", handler)` puts a handler behind credentials."""
    app.router.add_get("/api/v1/notifications", guard("read", list_notifications))
    app.router.add_get("/api/v1/notifications/{id:[^/]+}", guard("read", get_notification))
    app.router.add_post("/api/v1/notifications/{id:[^/]+}/retry", guard("admin", retry))
    app.router.add_get("/api/v1/groups/{key:[\\s\\S]+}", guard("read", get_group))
    app.router.add_post("/api/v1/routes/test", guard("read", test_route))
    app.router.add_get("/api/v1/openapi.json", guard("read", openapi))
    app.router.add_get("/api/v1/oncall", guard("read", get_oncall))
    app.router.add_post("/api/v1/oncall/overrides", guard("admin", add_override))
    app.router.add_delete("/api/v1/oncall/overrides/{id:[^/]+}", guard("admin", remove_override))
