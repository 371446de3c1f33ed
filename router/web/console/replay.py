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
from router.replay.engine import GroupChange
from router.store.protocols import StoreUnavailable
from router.web.console.actions import _check
from router.web.console.context import render
from router.web.console.pages import routes_context
from router.web.deadline import read_body
from router.web.replay import replay_proposed, window
from router.web.state import STATE


def tester_query(labels: Mapping[str, str], at: float) -> str:
    """The route tester's query showing what an event would get (its preview included)."""
    text = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(labels.items()))
    when = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return urlencode({"labels": text, "at": when})


def _row(change: GroupChange) -> dict[str, Any]:
    return {
        "group_key": change.group_key,
        "alertname": change.alertname,
        "events": change.events,
        "changed_events": change.changed_events,
        "before": change.before.text(),
        "after": change.after.text(),
        "tester": tester_query(change.example.labels, change.example.at),
    }


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
    try:
        result = await replay_proposed(request.app[STATE], text, window(since_text))
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
            "changed": [_row(c) for c in result.changed],
        }
    return render("routes.html", request, context, status=status)
