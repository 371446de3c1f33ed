"""What every console page shows besides its own content: who is asking, what they may
do, and the token their forms must return."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

import aiohttp_jinja2
from aiohttp import web

from router.store.protocols import RecordQueries
from router.web.auth import Access, Csrf, access_of
from router.web.state import STATE, AppState

log = logging.getLogger(__name__)

_ACCESS = web.RequestKey("console.access", Access)


class CsrfCache:
    """The token maker of the running config, made again when a reload changes it."""

    def __init__(self) -> None:
        self.made: Csrf | None = None


CSRF = web.AppKey("console.csrf", CsrfCache)

# The overview's 24 h counts are this many seconds old at most (plus one query's time).
COUNTS_TTL = 10.0


class CountsCache:
    """The last 24 h counts, shared by every overview: counting a day of records reads
    every one of them, so it is done at most every COUNTS_TTL and, once a value exists,
    in the background while readers get the previous one."""

    def __init__(self) -> None:
        self.value: Mapping[tuple[str, str], int] | None = None
        self.at = 0.0
        self._refresh: asyncio.Task[None] | None = None

    async def get(self, state: AppState) -> tuple[Mapping[tuple[str, str], int], float]:
        """The counts and when they were taken (the service's clock)."""
        now = state.clock()
        if self.value is None:
            await self._count(state)
        elif now - self.at >= COUNTS_TTL and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._count(state), name="console-counts")
            self._refresh.add_done_callback(_log_failure)
        assert self.value is not None
        return self.value, self.at

    async def _count(self, state: AppState) -> None:
        at = state.clock()
        self.value = await queries(state).count_states(at - 86400)
        self.at = at


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("console counts failed", extra={"error": str(task.exception())})


COUNTS = web.AppKey("console.counts", CountsCache)


def access(request: web.Request) -> Access:
    """The request's access, worked out once per request."""
    if _ACCESS in request:
        return request[_ACCESS]
    computed = access_of(request, request.app[STATE].runtime.config.server)
    request[_ACCESS] = computed
    return computed


def csrf(request: web.Request) -> Csrf:
    """The token maker of the running config (a reload that changes secrets makes a new one)."""
    state = request.app[STATE]
    server = state.runtime.config.server
    cache = request.app[CSRF]
    if cache.made is None or cache.made.server != server:
        cache.made = Csrf(server)
    return cache.made


def queries(state: AppState) -> RecordQueries:
    """The store as the console reads it."""
    return cast(RecordQueries, state.store)


def render(
    template: str, request: web.Request, context: dict[str, Any], status: int = 200
) -> web.Response:
    """`template` rendered with `context` and what every page shows."""
    return aiohttp_jinja2.render_template(
        template, request, {**common_context(request), **context}, status=status
    )


def common_context(request: web.Request) -> dict[str, Any]:
    """The access banner, the user's name and, for admins, the CSRF token of every form."""
    who = access(request)
    state = request.app[STATE]
    return {
        "access": who,
        "csrf_token": csrf(request).token(who.identity) if who.admin else "",
        "now": state.clock(),
        "path": request.path,
    }
