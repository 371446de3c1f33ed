"""The routes page's "compare with a proposed routes.yaml" form (admin: it reads every
recorded event of the window), answered with the same diff as the replay API."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from router.config.loader import ConfigError
from router.config.schema import Config
from router.replay.engine import GroupChange, ReplayResult
from router.runtime import Runtime
from router.store.protocols import StoreUnavailable
from router.web.console.actions import _check
from router.web.console.context import render
from router.web.console.pages import routes_context
from router.web.console.tester import Preview, try_route
from router.web.deadline import read_body
from router.web.replay import load_proposed, replay_against, window
from router.web.state import STATE


def tester_query(labels: Mapping[str, str], at: float) -> str:
    """The route tester's query showing what an event would get (its preview included)."""
    text = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(labels.items()))
    when = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return urlencode({"labels": text, "at": when})


# Changed groups shown with what each side would send (each preview renders templates).
PREVIEWED = 20


def _previews(runtime: Runtime, change: GroupChange) -> list[Preview]:
    at = datetime.fromtimestamp(change.example.at, UTC)
    answer = try_route(runtime, change.example.labels, at, [])
    told = set(answer.receivers)
    return [p for p in answer.previews if p.receiver in told]


def _row(change: GroupChange, now: Runtime, after: Runtime | None) -> dict[str, Any]:
    return {
        "group_key": change.group_key,
        "alertname": change.alertname,
        "events": change.events,
        "changed_events": change.changed_events,
        "before": change.before.text(),
        "after": change.after.text(),
        "tester": tester_query(change.example.labels, change.example.at),
        "previews_before": _previews(now, change) if after is not None else [],
        "previews_after": _previews(after, change) if after is not None else [],
    }


async def _rows(live: Runtime, proposed: Config, result: ReplayResult) -> list[dict[str, Any]]:
    """The diff's rows; the first PREVIEWED with the messages each config would send for
    the group's first changed event (as the route tester shows them)."""
    after = Runtime.build(proposed, http=live.http)
    try:
        return [
            _row(c, live, after if i < PREVIEWED else None) for i, c in enumerate(result.changed)
        ]
    finally:
        await after.close()


async def compare(request: web.Request) -> web.StreamResponse:
    """`POST /ui/routes/replay`: the routes page with the replay's diff under the form."""
    refused = await _check(request)
    if refused is not None:
        return refused
    form = await read_body(request, request.post())
    text = str(form.get("config", ""))
    since_text = str(form.get("since", "") or "7d").strip()
    context = await routes_context(request)
    context.update(proposed_text=text, since_text=since_text)
    status = 200
    state = request.app[STATE]
    try:
        proposed = load_proposed(state, text)
        result = await replay_against(state, proposed, window(since_text))
    except ValueError as exc:
        context["replay_problems"], status = [f"since: {exc}"], 400
    except ConfigError as exc:
        context["replay_problems"], status = list(exc.problems), 400
    except StoreUnavailable as exc:
        context["replay_problems"], status = [f"The state store does not answer: {exc}"], 503
    else:
        context["replay"] = {
            "events": result.events,
            "groups": result.groups,
            "changed": await _rows(state.runtime, proposed, result),
        }
    return render("routes.html", request, context, status=status)
