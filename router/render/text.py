"""The words every channel uses for the same things: durations, status, "resolved after".

One spelling each, so a reader sees the same figure in Slack, mail, webhook and log:

- durations: as `router.durations.format_duration` writes them;
- status: `FIRING:2` while any alert fires, else `RESOLVED`, as Alertmanager writes it;
- "resolved after": from the earliest start of the group's alerts to the latest resolve.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from router.model import Status

# Why a notification went out, in words (the codes are the dedup reasons).
_REASONS = {
    "first": "first notification",
    "new_alerts": "new alerts",
    "resolved": "alerts resolved",
    "repeat": "still firing (repeat reminder)",
    "digest": "digest of a backlog",
}


def plural(count: int, word: str) -> str:
    """`1 alert`, `3 alerts`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


_SEVERITY_ORDER = ("critical", "warning", "info")


def severity_rank(severity: str) -> int:
    """0 for critical, 1 for warning, 2 for info; unknown severities rank with warning:
    loud enough, never calmer than info."""
    try:
        return _SEVERITY_ORDER.index(severity)
    except ValueError:
        return 1


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters.

    After this, `<!channel>`, `<@U123>` and `<http://x|y>` in alert text show literally.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def status_text(firing: int) -> str:
    """`FIRING:<n>` while `firing` alerts fire, else `RESOLVED`."""
    return f"FIRING:{firing}" if firing else Status.RESOLVED.value.upper()


def reason_text(reason: str) -> str:
    """Why a notification was sent, in words (`new_alerts` -> `new alerts`)."""
    return _REASONS.get(reason, reason.replace("_", " "))


def resolved_after(
    starts: Iterable[datetime | None],
    ends: Iterable[datetime | None],
    *,
    first_notified: datetime | None,
    now: datetime,
) -> float | None:
    """Seconds from the earliest alert start to the latest resolve; None when unknowable.

    Without any start time (an Argo CD recovery carries none) the span counts from when the
    receiver was first told; without any end time, until `now`.
    """
    known_starts = [s for s in starts if s is not None]
    known_ends = [e for e in ends if e is not None]
    start = min(known_starts) if known_starts else first_notified
    if start is None:
        return None
    end = max(known_ends) if known_ends else now
    return max((end - start).total_seconds(), 0.0)
