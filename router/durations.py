"""Durations, read as Prometheus writes them (`30s`, `5m`, `1h30m`) and written as people
read them (`300ms`, `45s`, `2m 30s`, `3h 5m`, `2d 4h`: the largest unit and the next one
when it is not zero, rounded down; under ten seconds a fraction keeps one decimal)."""

from __future__ import annotations

import re
from typing import Any

_DURATION_RE = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$")
_PARSE_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_duration(value: Any) -> float:
    """Prometheus duration (`30s`, `5m`, `1h30m`, `1d`) to seconds; bare numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 4h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("duration must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration like 30s, 5m or 4h")
    text = value.strip()
    match = _DURATION_RE.match(text)
    if not text or match is None:
        raise ValueError(f"invalid duration {value!r}: expected e.g. 30s, 5m, 4h, 1d")
    groups = match.groups()[1::2]
    return float(sum(int(g) * unit for g, unit in zip(groups, _PARSE_UNITS, strict=True) if g))


_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """A span as people read it: `300ms`, `1.5s`, `45s`, `2m 30s`, `3h 5m`, `2d 4h`."""
    if seconds != seconds or seconds <= 0:  # NaN or nothing
        return "0s"
    if seconds < 1:
        return f"{max(round(seconds * 1000), 1)}ms"
    if seconds < 10 and seconds != int(seconds):
        return f"{int(seconds * 10) / 10:g}s"
    rest = int(seconds)
    for index, (unit, size) in enumerate(_FORMAT_UNITS[:-1]):
        if rest >= size:
            count, rest = divmod(rest, size)
            next_unit, next_size = _FORMAT_UNITS[index + 1]
            following = rest // next_size
            return f"{count}{unit}" + (f" {following}{next_unit}" if following else "")
    return f"{rest}s"
