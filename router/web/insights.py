"""`GET /api/v1/insights` and the console's `/ui/insights`, with its charts drawn here as
SVG (no script: readable without JavaScript and on a phone)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup, escape

from router.durations import format_duration, parse_duration
from router.replay.insights import Insights, insights
from router.web.api import BadRequest, answering
from router.web.state import STATE

DEFAULT_SINCE = "7d"
MAX_SINCE = 90 * 86400.0
WINDOWS = ("1d", "7d", "30d")
SEVERITY_COLORS = {"critical": "#d1242f", "warning": "#bf8700", "info": "#0969da"}
OTHER_COLOR = "#8c959f"
SORTS = ("noise", "notifications", "episodes", "flaps", "mtta", "mttr", "name")


def since_of(text: str | None) -> tuple[str, float]:
    """The window asked for (`since`, default 7d); ValueError saying what to write."""
    text = (text or DEFAULT_SINCE).strip()
    seconds = parse_duration(text)
    if not 0 < seconds <= MAX_SINCE:
        raise ValueError("since must be a duration between 1s and 90d, e.g. 7d")
    return text, seconds


@answering
async def get_insights(request: web.Request) -> web.Response:
    """`GET /api/v1/insights?since=7d`: per alertname, receiver and team over the window."""
    try:
        _, seconds = since_of(request.query.get("since"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    state = request.app[STATE]
    found = await insights(state.store, state.clock(), seconds)
    return web.json_response(found.to_dict())


# --- drawing -------------------------------------------------------------------------------


def _svg(width: int, height: int, label: str, body: str, css: str = "chart") -> Markup:
    # Every text in `body` and `label` is escaped here or is a number we computed.
    return Markup(  # nosec B704 - names are escaped, the rest are numbers and our colours
        f'<svg class="{css}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{escape(label)}" preserveAspectRatio="none"><title>{escape(label)}</title>'
        f"{body}</svg>"
    )


def sparkline(values: Sequence[int], label: str) -> Markup:
    """A small line of `values` (notifications per day or hour)."""
    width, height = 100, 20
    top = max(values, default=0) or 1
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values)
    )
    body = f'<polyline points="{points}" fill="none" stroke="#0969da" stroke-width="1.5"/>'
    return _svg(width, height, label, body, "spark")


def stacked_bars(
    buckets: Sequence[int], series: Mapping[str, Sequence[int]], hourly: bool
) -> Markup:
    """Notifications per bucket, one stacked bar each, coloured by severity."""
    width, height, bottom = 600, 180, 20
    totals = [sum(s[i] for s in series.values()) for i in range(len(buckets))]
    top = max(totals, default=0) or 1
    slot = width / max(len(buckets), 1)
    parts: list[str] = []
    order = sorted(series, key=lambda n: (n not in SEVERITY_COLORS, n))
    for i, start in enumerate(buckets):
        y = float(height - bottom)
        when = datetime.fromtimestamp(start, UTC).strftime(
            "%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"
        )
        for name in order:
            value = series[name][i]
            if not value:
                continue
            h = (value / top) * (height - bottom - 10)
            y -= h
            color = SEVERITY_COLORS.get(name, OTHER_COLOR)
            parts.append(
                f'<rect x="{i * slot + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}"'
                f' height="{h:.1f}" fill="{color}"><title>{escape(when)}: {value} {escape(name)}'
                "</title></rect>"
            )
        if len(buckets) <= 31 and (not hourly or i % 6 == 0):
            day = datetime.fromtimestamp(start, UTC).strftime("%H:00" if hourly else "%d")
            parts.append(
                f'<text x="{i * slot + slot / 2:.1f}" y="{height - 5}" text-anchor="middle"'
                f' font-size="10" fill="currentColor">{day}</text>'
            )
    parts.append(f'<text x="2" y="10" font-size="10" fill="currentColor">max {top}</text>')
    return _svg(width, height, "notifications per day by severity", "".join(parts))


def week_bars(weeks: Sequence[tuple[int, float | None, float | None]]) -> Markup:
    """Median time to acknowledge and to resolve per week, side by side."""
    width, height, bottom = 600, 180, 20
    values = [v for _, a, r in weeks for v in (a, r) if v is not None]
    top = max(values, default=0.0) or 1.0
    slot = width / max(len(weeks), 1)
    parts: list[str] = []
    for i, (start, mtta, mttr) in enumerate(weeks):
        label = datetime.fromtimestamp(start, UTC).strftime("%b %d")
        for j, (value, color, what) in enumerate(
            ((mtta, "#8250df", "MTTA"), (mttr, "#1a7f37", "MTTR"))
        ):
            if value is None:
                continue
            h = (value / top) * (height - bottom - 10)
            x = i * slot + 4 + j * (slot - 8) / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{(slot - 8) / 2 - 2:.1f}"'
                f' height="{h:.1f}" fill="{color}"><title>week of {label}: {what} p50 at most'
                f" {format_duration(value)}</title></rect>"
            )
        parts.append(
            f'<text x="{i * slot + slot / 2:.1f}" y="{height - 5}" text-anchor="middle"'
            f' font-size="10" fill="currentColor">{label}</text>'
        )
    parts.append(
        f'<text x="2" y="10" font-size="10" fill="currentColor">max {format_duration(top)}</text>'
    )
    return _svg(width, height, "median time to acknowledge and to resolve per week", "".join(parts))


# --- the page ------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "–" if value is None else "≤ " + format_duration(value)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)}%"


def _change(now: int, row: Mapping[str, Any]) -> str:
    before = row["previous"]
    if before is None:
        return "new"
    delta = now - int(before["notifications"])
    return f"{delta:+d}" if delta else "="


_SORT_KEYS = {
    "notifications": lambda r: -r["notifications"],
    "episodes": lambda r: -r["episodes"],
    "flaps": lambda r: -r["flaps"],
    "mtta": lambda r: -(r["mtta_seconds"]["p50"] or -1),
    "mttr": lambda r: -(r["mttr_seconds"]["p50"] or -1),
}


def _rows(kind: str, rows: Sequence[Mapping[str, Any]], sort: str) -> list[dict[str, Any]]:
    field = {"alerts": "alertname", "receivers": "receiver", "teams": "team"}[kind]
    ordered = list(rows)
    if sort == "name":
        ordered.sort(key=lambda r: str(r[field]))
    elif sort in _SORT_KEYS:
        ordered.sort(key=_SORT_KEYS[sort])
    shown = []
    for r in ordered:
        name = str(r[field])
        query = {"receiver": name} if kind == "receivers" else {"q": name}
        shown.append(
            {
                "name": name or "(none)",
                "href": "/ui/notifications?" + urlencode(query),
                "episodes": r["episodes"],
                "notifications": r["notifications"],
                "change": _change(r["notifications"], r),
                "flaps": r["flaps"],
                "escalations": r["escalations"],
                "acknowledged": _share(r["acknowledged_share"]),
                "noise": _share(r["noise_share"]),
                "mtta": " / ".join(_seconds(r["mtta_seconds"][p]) for p in ("p50", "p90")),
                "mttr": _seconds(r["mttr_seconds"]["p50"]),
                "spark": sparkline(r["sparkline"], f"{name}: notifications over the window"),
            }
        )
    return shown


def page_context(found: Insights, since_text: str, sort: str) -> dict[str, Any]:
    """What insights.html shows."""
    return {
        "since_text": since_text,
        "windows": WINDOWS,
        "sort": sort,
        "sorts": SORTS,
        "since_at": found.since,
        "until_at": found.until,
        "severity_chart": stacked_bars(found.buckets, found.by_severity, found.hourly),
        "week_chart": week_bars(found.weeks),
        "severities": sorted(found.by_severity, key=lambda n: (n not in SEVERITY_COLORS, n)),
        "colors": SEVERITY_COLORS,
        "other_color": OTHER_COLOR,
        "tables": [
            (title, kind, _rows(kind, found.rows[kind], sort))
            for title, kind in (
                ("Alerts", "alerts"),
                ("Receivers", "receivers"),
                ("Teams", "teams"),
            )
        ],
    }
