"""Insights: per alertname, receiver and team over a window, from the hourly and daily
rollups the stores keep (router/store/rollup.py), against the window before it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.model import format_time
from router.store.protocols import Rollups
from router.store.rollup import BOUNDS, DAY, HOUR, INDEX, RollupRead, percentile

# Up to this long a window is read by the hour; longer, by whole days (UTC), today included.
HOURLY_UP_TO = 2 * DAY
WEEK = 7 * DAY
_MTTA = slice(INDEX["mtta0"], INDEX["mtta0"] + len(BOUNDS))
_MTTR = slice(INDEX["mttr0"], INDEX["mttr0"] + len(BOUNDS))
# What each kind of row is called in the API.
_NAMES = {"alert": "alertname", "receiver": "receiver", "team": "team"}


def window(now: float, seconds: float) -> tuple[int, int, bool]:
    """[since, until) covering the last `seconds` up to now, on bucket bounds, and whether
    it is read by the hour."""
    step = HOUR if seconds <= HOURLY_UP_TO else DAY
    until = (int(now) // step + 1) * step
    count = max(1, -(-int(seconds) // step))
    return until - count * step, until, step == HOUR


def _share(part: int, whole: int) -> float | None:
    return round(min(1.0, part / whole), 4) if whole else None


def _stats(row: Sequence[int]) -> dict[str, Any]:
    episodes = row[INDEX["episodes"]]
    return {
        "episodes": episodes,
        "notifications": row[INDEX["notifications"]],
        "flaps": row[INDEX["flaps"]],
        "escalations": row[INDEX["escalations"]],
        "acknowledged_share": _share(row[INDEX["acknowledged"]], episodes),
        "noise_share": _share(row[INDEX["noise"]], episodes),
        "mtta_seconds": {"p50": percentile(row[_MTTA], 0.5), "p90": percentile(row[_MTTA], 0.9)},
        "mttr_seconds": {"p50": percentile(row[_MTTR], 0.5), "p90": percentile(row[_MTTR], 0.9)},
    }


@dataclass(frozen=True, slots=True)
class Insights:
    since: int
    until: int
    hourly: bool
    # Per kind ("alerts", "receivers", "teams"): rows, noisiest first.
    rows: Mapping[str, list[dict[str, Any]]]
    # Bucket starts, notifications per bucket by severity, and weekly MTTA/MTTR p50.
    buckets: Sequence[int]
    by_severity: Mapping[str, Sequence[int]]
    weeks: Sequence[tuple[int, float | None, float | None]]

    def to_dict(self) -> dict[str, Any]:
        """The `GET /api/v1/insights` answer."""
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            **{kind: [_public(r) for r in rows] for kind, rows in self.rows.items()},
        }


def _iso(ts: float) -> str:
    return format_time(datetime.fromtimestamp(ts, UTC)) or ""


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "sparkline"}


def _noisiest(row: Mapping[str, Any]) -> tuple[float, int, int, str]:
    noise = (row["noise_share"] or 0.0) * row["episodes"]
    name = next(str(row[k]) for k in ("alertname", "receiver", "team") if k in row)
    return (-noise, -row["notifications"], -row["episodes"], name)


def build(
    current: RollupRead, previous: RollupRead, since: int, until: int, hourly: bool
) -> Insights:
    """The insights of the window read as `current`, compared with `previous`."""
    step = HOUR if hourly else DAY
    buckets = list(range(since, until, step))
    position = {b: i for i, b in enumerate(buckets)}
    rows: dict[str, list[dict[str, Any]]] = {"alerts": [], "receivers": [], "teams": []}
    for (kind, name), row in current.totals.items():
        field = _NAMES.get(kind)
        if field is None:
            continue
        stats = {field: name, **_stats(row)}
        before = previous.totals.get((kind, name))
        stats["previous"] = (
            {
                "episodes": before[INDEX["episodes"]],
                "notifications": before[INDEX["notifications"]],
                "noise_share": _share(before[INDEX["noise"]], before[INDEX["episodes"]]),
            }
            if before is not None
            else None
        )
        spark = [0] * len(buckets)
        for b in buckets:
            spark[position[b]] = current.series.get((b, kind, name), 0)
        stats["sparkline"] = spark
        rows[kind + "s"].append(stats)
    for listed in rows.values():
        listed.sort(key=_noisiest)
    by_severity: dict[str, list[int]] = {}
    for (bucket, kind, name), count in current.series.items():
        if kind == "severity" and bucket in position:
            by_severity.setdefault(name or "none", [0] * len(buckets))[position[bucket]] += count
    weeks: list[tuple[int, float | None, float | None]] = []
    for start in range(since, until, WEEK):
        total = [0] * len(next(iter(current.by_bucket.values()), []))
        for bucket, row in current.by_bucket.items():
            if start <= bucket < start + WEEK:
                total = [a + b for a, b in zip(total, row, strict=True)]
        if total:
            weeks.append((start, percentile(total[_MTTA], 0.5), percentile(total[_MTTR], 0.5)))
        else:
            weeks.append((start, None, None))
    return Insights(since, until, hourly, rows, buckets, by_severity, weeks)


async def insights(store: Rollups, now: float, seconds: float) -> Insights:
    """The insights of the last `seconds` (rounded out to whole hours or days)."""
    since, until, hourly = window(now, seconds)
    current = await store.read_rollups(since, until, hourly=hourly)
    previous = await store.read_rollups(2 * since - until, since, hourly=hourly)
    return build(current, previous, since, until, hourly)
