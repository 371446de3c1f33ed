"""Mounting the console on the service's aiohttp application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from router.web.console import actions, insights, pages, replay
from router.web.console.context import COUNTS, CSRF, CountsCache, CsrfCache
from router.web.console.format import FILTERS

_HERE = Path(__file__).parent
STATIC = _HERE / "static"


def setup_console(app: web.Application) -> None:
    """Mount the console's pages, actions and stylesheet on `app`."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        # Every value shown comes from alerts someone else sent: escape all of it.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(FILTERS)
    app[CSRF] = CsrfCache()
    app[COUNTS] = CountsCache()
    app.router.add_get("/", pages.root)
    app.router.add_get("/ui", pages.root)
    app.router.add_get("/ui/", pages.overview)
    app.router.add_get("/ui/notifications", pages.notifications)
    app.router.add_get("/ui/notifications/{id}", pages.notification)
    # A group key may hold any character, a newline included.
    app.router.add_get("/ui/groups/{key:[\\s\\S]+}", pages.group)
    app.router.add_get("/ui/routes", pages.routes)
    app.router.add_get("/ui/insights", insights.insights)
    app.router.add_get("/ui/digests/{id}", pages.digest)
    app.router.add_get("/ui/login", pages.login)
    app.router.add_get("/ui/oncall", pages.oncall)
    app.router.add_post("/ui/oncall/overrides", actions.add_override)
    app.router.add_post("/ui/oncall/overrides/{id}/remove", actions.remove_override)
    app.router.add_post("/ui/notifications/{id}/retry", actions.retry)
    app.router.add_post("/ui/reload", actions.reload)
    app.router.add_post("/ui/acknowledge", actions.acknowledge)
    app.router.add_post("/ui/notifications/{id}/acknowledge", actions.acknowledge_receiver)
    app.router.add_post("/ui/groups/acknowledge", actions.acknowledge_receiver)
    app.router.add_post("/ui/routes/replay", replay.compare)
    for name, media in (("console.css", "text/css"), ("console.js", "text/javascript")):
        app.router.add_get(f"/ui/static/{name}", _static_file(STATIC / name, media))


def _static_file(path: Path, media: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler serving one of the console's own files, read once at start."""
    body = path.read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=body,
            content_type=media,
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    return serve
