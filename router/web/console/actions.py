"""The admin's actions from the console: retry a failed or dead notification now, reload
the config, set or remove an on-call override, acknowledge a group (every Slack message
of it, or one receiver's). POST only, with the form's CSRF token and from a page of this
service."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote

from aiohttp import web

from router.channels.base import DeliveryError
from router.channels.slack.channel import SlackChannel
from router.interact.console import request_acknowledgement
from router.interact.pagers import acknowledge_pagers
from router.store.protocols import StoreUnavailable
from router.web.auth import Rejected, log_refused
from router.web.console.context import access, csrf, queries, render
from router.web.deadline import read_body
from router.web.oncall import BadOverride, new_override, parse_instant
from router.web.slack import RUNNER
from router.web.state import STATE, AppState

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


def _form_time(value: object, field: str, default: float | None = None) -> float:
    """A datetime-local field (UTC, as the page says) or an RFC 3339 time."""
    text = value.strip() if isinstance(value, str) else ""
    if not text and default is not None:
        return default
    if len(text) == 16:
        # `2026-12-08T10:00`: a browser's datetime-local, without seconds or zone.
        text += ":00Z"
    return parse_instant(text, field)


async def add_override(request: web.Request) -> web.StreamResponse:
    """Someone covers a rotation for a while (the page's form)."""
    refused = await _check(request)
    if refused is not None:
        return refused
    state = request.app[STATE]
    form = await request.post()
    user = access(request).user
    try:
        start = _form_time(form.get("from"), "from", state.clock())
        end = _form_time(form.get("until"), "until")
        override = new_override(state, form.get("rotation"), form.get("who"), start, end, user)
        await state.store.add_override(override)
    except BadOverride as exc:
        return render("error.html", request, {"status": 400, "message": str(exc)}, status=400)
    except StoreUnavailable as exc:
        return await _refused(request, 503, f"The state store does not answer: {exc}")
    log.info("on-call override added from the console", extra={**override.to_dict(), "user": user})
    raise web.HTTPSeeOther("/ui/oncall?done=added")


async def remove_override(request: web.Request) -> web.StreamResponse:
    """Remove an override (its row's button)."""
    refused = await _check(request)
    if refused is not None:
        return refused
    state = request.app[STATE]
    override_id = request.match_info["id"]
    try:
        removed = await state.store.remove_override(override_id)
    except StoreUnavailable as exc:
        return await _refused(request, 503, f"The state store does not answer: {exc}")
    log.info(
        "on-call override removed from the console",
        extra={"id": override_id, "user": access(request).user, "done": removed},
    )
    raise web.HTTPSeeOther("/ui/oncall?done=" + ("removed" if removed else "gone"))


# How long the page waits for the worker to carry an acknowledgement out before showing
# the group (it usually takes milliseconds; the page says so when it took longer).
ACK_WAIT = 3.0


async def acknowledge_receiver(request: web.Request) -> web.StreamResponse:
    """Acknowledge (or, with `ack=0`, unacknowledge) one receiver's group, as the Slack
    button does: recorded for the action worker with the console's user. From a
    notification's page (`/ui/notifications/{id}/acknowledge`) the group is the record's;
    from a group's page (`/ui/groups/acknowledge`) the form names receiver and group_key.
    Both sit under their page's path, so a browser sends the admin's credentials along."""
    refused = await _check(request)
    if refused is not None:
        return refused
    state = request.app[STATE]
    form = await request.post()
    wanted = form.get("ack", "1") != "0"
    notification_id = request.match_info.get("id")
    user = access(request).user or "admin"
    try:
        if notification_id is not None:
            record = await queries(state).get_notification(notification_id)
            if record is None:
                return await _missing(request, f"No notification {notification_id!r} is kept.")
            receiver, group_key = record.receiver, record.group_key
            target = f"/ui/notifications/{quote(notification_id, safe='')}"
        else:
            receiver, group_key = str(form.get("receiver", "")), str(form.get("group_key", ""))
            found = await state.store.list_notifications(1, receiver=receiver, group_key=group_key)
            if not group_key or not found:
                return await _missing(request, f"No record of this group for {receiver!r} is kept.")
            target = f"/ui/groups/{quote(group_key, safe='')}"
        await request_acknowledgement(
            state.store, receiver, group_key, acknowledge=wanted, user=user, now=state.clock()
        )
        request.app[RUNNER].wake()
        done = await _carried_out(state, receiver, group_key, wanted)
    except StoreUnavailable as exc:
        return await _refused(request, 503, f"The state store does not answer: {exc}")
    log.info(
        "acknowledgement requested from the console",
        extra={"receiver": receiver, "group_key": group_key, "ack": wanted, "user": user},
    )
    outcome = ("acked" if wanted else "unacked") if done else "requested"
    raise web.HTTPSeeOther(f"{target}?ack={outcome}")


async def _missing(request: web.Request, message: str) -> web.StreamResponse:
    return render("error.html", request, {"status": 404, "message": message}, status=404)


async def _carried_out(state: AppState, receiver: str, group_key: str, wanted: bool) -> bool:
    """Whether the group's acknowledgement is `wanted` within ACK_WAIT."""
    # Real time, not the service's clock: this waits for the worker, not for an event.
    started = time.monotonic()
    while time.monotonic() - started < ACK_WAIT:
        found = await state.store.group_actions(receiver, group_key)
        if found is not None and found.acknowledged == wanted:
            return True
        await asyncio.sleep(0.05)
    return False


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
            message = (posted["channel"], posted["ts"])
            if await request_acknowledgement(
                state.store, name, key, acknowledge=True, user=user, now=now, message=message
            ):
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
