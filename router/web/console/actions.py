"""The admin's actions from the console: retry a failed or dead notification now, reload
the config. POST only, with the form's CSRF token and from a page of this service."""

from __future__ import annotations

import logging

from aiohttp import web

from router.store.protocols import StoreUnavailable
from router.web.auth import Rejected, log_refused
from router.web.console.context import access, csrf, queries, render
from router.web.deadline import read_body
from router.web.state import STATE

log = logging.getLogger(__name__)


async def _refused(request: web.Request, status: int, message: str) -> web.StreamResponse:
    log_refused(request, Rejected(status, "forbidden", message))
    return render("error.html", request, {"status": status, "message": message}, status=status)


async def _check(request: web.Request) -> web.StreamResponse | None:
    """A refusal page, or None when the request may act."""
    who = access(request)
    if not who.actions_on:
        return await _refused(
            request, 403, "Actions are off: set server.auth.admin (or server.trusted_proxy.admins)."
        )
    if not who.admin:
        return await _refused(request, 403, "Only an admin may do this: sign in as the admin.")
    # Another site's page never gets here (router/web/security.py refuses it first).
    form = await read_body(request, request.post())
    token = form.get("csrf", "")
    if not isinstance(token, str) or not csrf(request).valid(token, who.identity):
        return await _refused(
            request, 403, "The form has expired or was not made for you: reload the page and retry."
        )
    return None


async def retry(request: web.Request) -> web.StreamResponse:
    """Make a failed or dead notification pending and due now."""
    refused = await _check(request)
    if refused is not None:
        return refused
    state = request.app[STATE]
    notification_id = request.match_info["id"]
    try:
        done = await queries(state).retry_now(notification_id, state.clock())
    except StoreUnavailable as exc:
        return await _refused(request, 503, f"The state store does not answer: {exc}")
    log.info(
        "retry requested from the console",
        extra={"notification_id": notification_id, "user": access(request).user, "done": done},
    )
    if done:
        state.deliverer.wake()
    outcome = "yes" if done else "no"
    raise web.HTTPSeeOther(f"/ui/notifications/{notification_id}?retried={outcome}")


async def reload(request: web.Request) -> web.StreamResponse:
    """Reload the config file, as /-/reload does, and show what happened."""
    refused = await _check(request)
    if refused is not None:
        return refused
    state = request.app[STATE]
    outcome = await state.reload_config()
    log.info(
        "config reload requested from the console",
        extra={"user": access(request).user, "applied": outcome.applied},
    )
    raise web.HTTPSeeOther("/ui/?reloaded=" + ("yes" if outcome.applied else "no"))
