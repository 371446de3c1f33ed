"""`POST /slack/interactions`: Slack's button clicks, verified, recorded, answered at once.

A click is checked with Slack's v0 signature (slack-sdk's SignatureVerifier) over the raw
body; missing headers, a bad signature or one older than five minutes is a 401 with one
log line and nothing changed. A valid click is checked against the store (the message must
be the one the router keeps for the group its button names), recorded durably with an id
made of the click itself (so Slack's retry, or the same click reaching two replicas, is
recorded once) and answered 200; the action worker carries it out (router/interact/).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.signature import Clock, SignatureVerifier

from router.cancel import cancel_and_wait
from router.channels.slack.buttons import decode_button
from router.channels.slack.channel import is_current_message
from router.interact.slack_clicks import SlackClickRunner
from router.metrics import Metrics
from router.model import Action, ActionKind
from router.runtime import Runtime
from router.store.protocols import Store, StoreUnavailable
from router.web.auth import Rejected, log_refused
from router.web.deadline import ReadTimeout, read_body
from router.web.state import STATE

log = logging.getLogger(__name__)

# Slack's replay window for a signed request.
MAX_AGE = 300
PATH = "/slack/interactions"
RUNNER = web.AppKey("slack_click_runner", SlackClickRunner)


class _ServiceClock(Clock):
    """The service's clock (injectable in tests), as slack-sdk asks for it."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock()


def _refuse(request: web.Request, status: int, reason: str, message: str) -> web.Response:
    # Counted and logged as every refused webhook is: never with the body or signature.
    request.app[STATE].metrics.webhooks_rejected.labels("slack", reason).inc()
    log_refused(request, Rejected(status, reason, message), source="slack")
    return web.json_response({"error": message}, status=status)


def _ignored(why: str, **fields: str) -> web.Response:
    log.info("slack click ignored", extra={"why": why, **fields})
    return web.Response(status=200)


def _verify(
    secret: str, clock: Callable[[], float], body: bytes, headers: Mapping[str, str]
) -> str | None:
    """Why the request is not Slack's, or None when it is."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    try:
        age = abs(clock() - int(timestamp))
    except ValueError:
        return "X-Slack-Request-Timestamp is not a number"
    if age > MAX_AGE:
        return "request too old (more than 5 minutes)"
    verifier = SignatureVerifier(secret, clock=_ServiceClock(clock))
    try:
        ok = verifier.is_valid(body, timestamp, signature)
    except ValueError:
        ok = False
    return None if ok else "signature does not match"


def _str(data: Any, *path: str) -> str:
    for key in path:
        if not isinstance(data, dict):
            return ""
        data = data.get(key)
    return data if isinstance(data, str) else ""


async def interactions(request: web.Request) -> web.Response:
    """Verify a Slack interaction, record the clicks it carries, answer 200 at once."""
    state = request.app[STATE]
    config = state.runtime.config
    settings = config.slack.interactivity
    if settings is None:
        return _refuse(request, 404, "not_configured", "slack.interactivity is not configured")
    limit = config.server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refuse(request, 413, "too_large", f"body larger than {limit} bytes")
    try:
        body = await read_body(request, request.read())
    except ReadTimeout as exc:
        return _refuse(request, 408, "timeout", str(exc))
    if len(body) > limit:
        return _refuse(request, 413, "too_large", f"body larger than {limit} bytes")
    problem = _verify(
        settings.signing_secret.get_secret_value(), state.clock, body, request.headers
    )
    if problem is not None:
        return _refuse(request, 401, "unauthorized", problem)
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        return _refuse(request, 400, "bad_request", "expected a form field `payload` holding JSON")
    if not isinstance(payload, dict):
        return _refuse(request, 400, "bad_request", "`payload` must be a JSON object")
    if payload.get("type") != "block_actions":
        return _ignored("not a block_actions payload", type=str(payload.get("type")))
    runner = request.app[RUNNER]
    try:
        recorded = 0
        for action in await _actions(payload, state.store, state.clock, settings.silence_durations):
            if await state.store.enqueue_action(action):
                recorded += 1
            else:
                log.info("slack click already recorded", extra={"action": action.kind.value})
    except StoreUnavailable:
        return _refuse(request, 503, "store_unavailable", "state store unavailable, retry later")
    if recorded:
        runner.wake()
    return web.Response(status=200)


async def _actions(
    payload: Mapping[str, Any],
    store: Store,
    clock: Callable[[], float],
    durations: list[float],
) -> list[Action]:
    """The clicks of `payload` the router can act on; the others are logged and dropped."""
    channel = _str(payload, "container", "channel_id") or _str(payload, "channel", "id")
    message_ts = _str(payload, "container", "message_ts") or _str(payload, "message", "ts")
    user_id = _str(payload, "user", "id")
    user_name = _str(payload, "user", "name") or _str(payload, "user", "username")
    out = []
    now = clock()
    for item in payload.get("actions") or []:
        if not isinstance(item, dict):
            continue
        action_id = _str(item, "action_id")
        button = decode_button(action_id, _str(item, "value"))
        if button is None or not channel or not message_ts:
            _ignored("not one of alert-router's buttons", action_id=action_id[:64])
            continue
        if button.kind is ActionKind.SILENCE and button.duration not in durations:
            _ignored("not a configured silence duration", action_id=action_id[:64])
            continue
        # The button names a group; only the store says the router sent this message for it.
        entry = await store.nflog_get(button.receiver, button.group_key, now)
        kept = entry.channel_state if entry is not None else {}
        if not is_current_message(kept, channel, message_ts):
            _ignored("a message alert-router did not send, or no longer its group's")
            continue
        action_ts = _str(item, "action_ts")
        key = "\n".join((channel, message_ts, action_id, action_ts, user_id))
        out.append(
            Action(
                id=hashlib.sha256(key.encode()).hexdigest()[:32],
                kind=button.kind,
                receiver=button.receiver,
                group_key=button.group_key,
                user_id=user_id,
                user_name=user_name,
                channel=channel,
                message_ts=message_ts,
                received_at=now,
                duration=button.duration,
                team_domain=_str(payload, "team", "domain"),
            )
        )
    return out


def setup_slack(
    app: web.Application,
    store: Store,
    runtime: Callable[[], Runtime],
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
) -> None:
    """Mount /slack/interactions and run the worker that carries clicks out."""
    app[RUNNER] = SlackClickRunner(store, runtime, clock=clock, metrics=metrics)
    app.router.add_post(PATH, interactions)
    app.cleanup_ctx.append(_run_actions)


async def _run_actions(app: web.Application) -> AsyncIterator[None]:
    runner = app[RUNNER]
    task = asyncio.create_task(runner.run(), name="slack-actions")
    try:
        yield
    finally:
        await runner.stop()
        await cancel_and_wait([task])
