"""The admin's actions from the console: retry a failed or dead notification now, reload
the config, acknowledge a group. POST only, with the form's CSRF token and from a page of
this service."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import quote

from aiohttp import web

from router.channels.base import DeliveryError
from router.channels.slack.channel import SlackChannel
from router.interact.actions import CONSOLE_ACTION_PREFIX, Action, ActionKind
from router.interact.pagers import acknowledge_pagers
from router.store.protocols import StoreUnavailable
from router.web.auth import Rejected, log_refused
from router.web.console.context import access, csrf, queries, render
from router.web.deadline import read_body
from router.web.slack import RUNNER
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


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """Acknowledge a group as its Slack button does. Each Slack message of the group that
    has buttons gets the click, carried out by the action worker (the message shows it,
    the timeline notes it, PagerDuty is told); with no such message, the group's PagerDuty
    alerts are acknowledged here."""
    refused = await _check(request)
    if refused is not None:
        return refused
    state = request.app[STATE]
    form = await read_body(request, request.post())
    key = form.get("group", "")
    if not isinstance(key, str) or not key:
        return await _refused(request, 400, "Which group? The form names none.")
    who = access(request)
    user = who.user or "admin"
    now = state.clock()
    runtime = state.runtime
    outcome = "none"
    try:
        for name, channel in runtime.channels.items():
            if not isinstance(channel, SlackChannel) or not channel.interactive:
                continue
            entry = await state.store.nflog_get(name, key, now)
            posted = entry.channel_state if entry is not None else {}
            if not posted.get("channel") or not posted.get("ts"):
                continue
            action = Action(
                id=f"{CONSOLE_ACTION_PREFIX}{uuid.uuid4().hex}",
                kind=ActionKind.ACK,
                receiver=name,
                group_key=key,
                user_id=f"console:{user}",
                user_name=user,
                channel=posted["channel"],
                message_ts=posted["ts"],
                received_at=now,
            )
            if await state.store.enqueue_action(action):
                outcome = "yes"
        if outcome == "yes":
            request.app[RUNNER].wake()
        elif await acknowledge_pagers(state.store, runtime, key, now):
            outcome = "yes"
    except StoreUnavailable as exc:
        return await _refused(request, 503, f"The state store does not answer: {exc}")
    except DeliveryError as exc:
        log.warning("acknowledging on PagerDuty failed", extra={"error": str(exc)})
        outcome = "failed"
    log.info(
        "group acknowledged from the console",
        extra={"group_key": key, "user": who.user, "outcome": outcome},
    )
    raise web.HTTPSeeOther(f"/ui/groups/{quote(key, safe='')}?acknowledged={outcome}")
