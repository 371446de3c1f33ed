"""The console's insights page: the noisiest alerts, receivers and teams of a window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from router.replay.insights import insights as read_insights
from router.web.console.pages import _BadRequest, _page
from router.web.insights import SORTS, page_context, since_of
from router.web.state import STATE


@_page("insights.html")
async def insights(request: web.Request) -> Mapping[str, Any]:
    """`/ui/insights?since=7d&sort=noise`."""
    try:
        since_text, seconds = since_of(request.query.get("since"))
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None
    sort = request.query.get("sort", "noise")
    if sort not in SORTS:
        raise _BadRequest(f"sort must be one of {', '.join(SORTS)}")
    state = request.app[STATE]
    found = await read_insights(state.store, state.clock(), seconds)
    return page_context(found, since_text, sort)
