"""Replaying a proposed routes.yaml against the running one, for the API and the console."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from router.config.loader import ConfigError, parse_config
from router.config.schema import Config
from router.durations import parse_duration
from router.replay.engine import ReplayResult, read_window, replay
from router.web.api import BadRequest, _json_object, answering
from router.web.state import STATE, AppState

DEFAULT_WINDOW = 7 * 86400.0
# Records are kept `state.keep_records` (7 days by default); a month is the most asked.
MAX_WINDOW = 31 * 86400.0
# One replay at a time per process: each reads the window and keeps a core busy.
_RUNNING = asyncio.Lock()


def window(text: str | None) -> float:
    """`since` (a duration, default 7d); ValueError with a message people can act on."""
    if text is None or text == "":
        return DEFAULT_WINDOW
    seconds = parse_duration(text)
    if not 0 < seconds <= MAX_WINDOW:
        raise ValueError("since must be a duration between 1s and 31d, e.g. 7d")
    return seconds


def load_proposed(state: AppState, text: str) -> Config:
    """A pasted routes.yaml; ConfigError for text that does not load (team files are read
    next to the running config's file)."""
    base = state.config_path.parent if state.config_path is not None else Path.cwd()
    proposed = parse_config(text, str(base / "proposed.yaml"))
    if proposed.team_problems:
        raise ConfigError(list(proposed.team_problems))
    return proposed


async def replay_proposed(state: AppState, text: str, since: float) -> ReplayResult:
    """The running config against `text` over the last `since` seconds (see load_proposed)."""
    return await replay_against(state, load_proposed(state, text), since)


async def replay_against(state: AppState, proposed: Config, since: float) -> ReplayResult:
    """The running config against `proposed` over the last `since` seconds."""
    now = state.clock()
    async with _RUNNING:
        events = await read_window(state.store, now - since, now)
        live = state.runtime.config
        return await asyncio.to_thread(replay, events, live, proposed, since=now - since, until=now)


@answering
async def replay_routes(request: web.Request) -> web.Response:
    """`POST /api/v1/routes/replay`: what the proposed routes.yaml (JSON `config`) would
    have changed over the window, per group."""
    body = await _json_object(request)
    unknown = sorted(set(body) - {"config", "since"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}: only config and since")
    text = body.get("config")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("config must be the proposed routes.yaml, as a string")
    since = body.get("since")
    if since is not None and not isinstance(since, str):
        raise BadRequest("since must be a duration such as 7d")
    try:
        seconds = window(since)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    try:
        result = await replay_proposed(request.app[STATE], text, seconds)
    except ConfigError as exc:
        answer: dict[str, Any] = {"error": "the proposed config does not load"}
        answer["problems"] = list(exc.problems)
        return web.json_response(answer, status=422)
    return web.json_response(result.to_dict())
