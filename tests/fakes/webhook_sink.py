"""A real HTTP receiver for tests: an aiohttp server on a free loopback port.

    async with WebhookSink() as sink:
        url = sink.url("/hook")                  # http://127.0.0.1:<port>/hook
        sink.script(500)                         # next request answered 500
        sink.script(429, headers={"Retry-After": "7"}, body="slow down")
        sink.script(200, delay=5.0)              # answer late, for timeout tests
        ... send ...
        request = sink.requests[0]               # ReceivedRequest
        request.json, request.headers["Authorization"], request.path

Scripted answers are used once each, in order; then every request gets 200 `ok` (or the
status given to `WebhookSink(default_status=...)`). Every request is recorded, scripted or
not. Any method and path is accepted.
`async with asyncio.timeout(5): await sink.wait_for(n)` waits for n requests.
`WebhookSink(require_bearer="t")` answers 401 to requests without `Authorization: Bearer t`.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.loopback import LoopbackServer


@dataclass(frozen=True)
class ScriptedResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    delay: float = 0.0


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not JSON)."""
        return json.loads(self.body)


class WebhookSink(LoopbackServer):
    """Records every request; answers from a script, else `default_status`."""

    def __init__(self, *, default_status: int = 200, require_bearer: str | None = None) -> None:
        super().__init__()
        self.default_status = default_status
        self.require_bearer = require_bearer
        self.requests: list[ReceivedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._arrived = asyncio.Condition()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def runner_options(self) -> dict[str, object]:
        # handler_cancellation: a client that gives up (timeout test) cancels the handler
        # instead of leaving a sleeping task behind at shutdown.
        return {**super().runner_options(), "handler_cancellation": True}

    def url(self, path: str = "/webhook") -> str:
        """The URL of `path` on this sink."""
        return f"http://127.0.0.1:{self._port}{path}"

    def script(
        self,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: str = "",
        delay: float = 0.0,
    ) -> None:
        """Answer the next unscripted request with `status` (after `delay` seconds)."""
        self._script.append(ScriptedResponse(status, dict(headers or {}), body, delay))

    async def wait_for(self, count: int) -> list[ReceivedRequest]:
        """Wait until at least `count` requests arrived; bound it with `asyncio.timeout`."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            ReceivedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                # Case-insensitive, like HTTP: headers["authorization"] works too.
                headers=CIMultiDict(request.headers),
                body=body,
            )
        )
        async with self._arrived:
            self._arrived.notify_all()
        if self.require_bearer is not None:
            if request.headers.get("Authorization") != f"Bearer {self.require_bearer}":
                return web.Response(status=401, text="unauthorized")
        answer = self._script.popleft() if self._script else ScriptedResponse(self.default_status)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(
            status=answer.status,
            headers=dict(answer.headers),
            text=answer.body or ("ok" if answer.status < 300 else "error"),
        )
