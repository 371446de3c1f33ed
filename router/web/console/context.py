"""What every console page shows besides its own content: who is asking, what they may
do, and the token their forms must return."""

from __future__ import annotations

from typing import Any, cast

import aiohttp_jinja2
from aiohttp import web

from router.store.protocols import RecordQueries
from router.web.auth import Access, Csrf, access_of
from router.web.state import STATE, AppState

_ACCESS = web.RequestKey("console.access", Access)


class CsrfCache:
    """The token maker of the running config, made again when a reload changes it."""

    def __init__(self) -> None:
        self.made: Csrf | None = None


CSRF = web.AppKey("console.csrf", CsrfCache)


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
