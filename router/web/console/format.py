"""Jinja filters for the console: times, durations, label sets, links."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

from router.durations import format_duration
from router.render.message import is_web_url
from router.web.console.mrkdwn import render as render_mrkdwn


def when(ts: float | None) -> str:
    """`2026-12-01 12:44:05 UTC`."""
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ts: float | None) -> str:
    """RFC 3339 in UTC, for `<time datetime>` (the script shows it in local time)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def ago(ts: float | None, now: float | None = None) -> str:
    """`5m ago` (or `in 5m` for a time to come)."""
    if ts is None:
        return "never"
    delta = (time.time() if now is None else now) - ts
    if abs(delta) < 1:
        return "just now"
    text = format_duration(abs(delta))
    return f"{text} ago" if delta > 0 else f"in {text}"


def local_time(ts: float, zone: tzinfo) -> str:
    """`Mon 2026-12-14 09:00 CET`: a time as a rotation's people read it."""
    return datetime.fromtimestamp(ts, zone).strftime("%a %Y-%m-%d %H:%M %Z")


def labels_text(labels: Mapping[str, str]) -> str:
    """`{alertname="CPUHigh", env="prod"}`."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def path_part(text: str) -> str:
    """`text` as one URL path segment (a group key holds slashes, braces and quotes)."""
    return quote(text, safe="")


def web_url(value: object) -> bool:
    """Whether `value` is an absolute http(s) URL, the only kind made a link."""
    return isinstance(value, str) and is_web_url(value)


FILTERS: dict[str, Callable[..., Any]] = {
    "when": when,
    "iso": iso,
    "mrkdwn": render_mrkdwn,
    "ago": ago,
    "labels_text": labels_text,
    "local_time": local_time,
    "path_part": path_part,
    "web_url": web_url,
}
