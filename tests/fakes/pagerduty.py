"""A fake PagerDuty Events API v2: a real aiohttp server on loopback at `/v2/enqueue`.

    async with FakePagerDuty() as pd:
        url = pd.url                          # http://127.0.0.1:<port>/v2/enqueue
        pd.script(429)                        # next event answered 429 (PagerDuty's body)
        pd.script(500)                        # ... or 5xx, or 400 with PagerDuty's errors
        ... send ...
        [event] = pd.events                   # accepted events, in order
        pd.alerts[(key, dedup_key)].status    # "triggered", "acknowledged", "resolved"

What it checks, as PagerDuty does (facts: receivers.md): a JSON object; `routing_key` a
string of 32 characters; `event_action` one of trigger, acknowledge, resolve; `dedup_key`
a string of at most 255 characters (required for acknowledge and resolve); for a trigger,
`payload` with `summary` (at most 1024 characters), `source` and `severity` (critical,
error, warning, info), and `links` items with an `href`. A bad event is answered
400 `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`;
a good one 202 `{"status": "success", "message": "Event processed", "dedup_key": ...}`.
Acknowledge and resolve apply to an open alert of that key; a trigger on a resolved one
opens a new alert, as PagerDuty does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


@dataclass
class PagerDutyAlert:
    """One alert as PagerDuty shows it: its status, and every event it took."""

    status: str
    incarnation: int = 1
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def validate(event: Any) -> list[str]:
    """PagerDuty's reasons to refuse `event`; empty when it is valid."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors: list[str] = []
    key = event.get("routing_key")
    if not isinstance(key, str):
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or not an object"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary:
            errors.append("'payload.summary' is missing or blank")
        elif len(summary) > 1024:
            errors.append("'payload.summary' is too long (at most 1024 characters)")
        source = payload.get("source")
        if not isinstance(source, str) or not source:
            errors.append("'payload.source' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            errors.append("'payload.severity' is invalid (must be critical, error, warning, info)")
        details = payload.get("custom_details")
        if details is not None and not isinstance(details, dict):
            errors.append("'payload.custom_details' must be an object")
    links = event.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(link, dict) and isinstance(link.get("href"), str) for link in links
    ):
        errors.append("'links' must be a list of objects with an href")
    return errors


def invalid(errors: list[str]) -> dict[str, Any]:
    return {"status": "invalid event", "message": "Event object is invalid", "errors": errors}


class FakePagerDuty(LoopbackServer):
    """Records every request; validates and applies events unless a reply is scripted."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        self.alerts: dict[tuple[str, str], PagerDutyAlert] = {}
        self._script: deque[Scripted] = deque()
        self._arrived = asyncio.Condition()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        return app

    @property
    def url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    def script(
        self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request with `status` (PagerDuty's body for it unless given)."""
        if body is None:
            body = {
                429: {
                    "status": "throttle event",
                    "message": "Requests for this service are"
                    " arriving too quickly.  Please retry later.",
                },
                400: invalid(["scripted refusal"]),
            }.get(status, {"status": "error", "message": "Internal Server Error"})
        self._script.append(Scripted(status, body, dict(headers or {})))

    def alert(self, dedup_key: str, routing_key: str = ROUTING_KEY) -> PagerDutyAlert:
        return self.alerts[(routing_key, dedup_key)]

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until at least `count` events were accepted; bound it with asyncio.timeout."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.events) >= count)
        return list(self.events)

    async def _enqueue(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(raw)
        if self._script:
            answer = self._script.popleft()
            return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        try:
            event = json.loads(raw)
        except ValueError:
            return web.json_response(invalid(["Request body is not valid JSON"]), status=400)
        errors = validate(event)
        if errors:
            return web.json_response(invalid(errors), status=400)
        key = event.get("dedup_key") or uuid.uuid4().hex
        self._apply(event["routing_key"], key, event)
        async with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )

    def _apply(self, routing_key: str, key: str, event: dict[str, Any]) -> None:
        action = event["event_action"]
        found = self.alerts.get((routing_key, key))
        if action == "trigger":
            if found is None:
                self.alerts[(routing_key, key)] = PagerDutyAlert("triggered", events=[event])
                return
            if found.status == "resolved":
                found.status = "triggered"
                found.incarnation += 1
            found.events.append(event)
            return
        # Acknowledge and resolve only touch an open alert; otherwise they are dropped.
        if found is None or found.status == "resolved":
            return
        found.status = "acknowledged" if action == "acknowledge" else "resolved"
        found.events.append(event)
