"""The narrow interface every delivery integration implements."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from datetime import UTC
from typing import Protocol

from router.render.message import Message

# A server may ask for an absurd wait; the retry policy caps what it honours, this caps
# what we even report.
MAX_RETRY_AFTER = 3600.0


class DeliveryError(Exception):
    """A delivery that did not happen; `retryable` says whether trying again can help.

    `reason` is a short stable code for metrics and the notification record
    (`rate_limited`, `channel_not_found`, `smtp_550`, `connection`, ...). The message must
    never contain a secret (tokens, webhook URLs, passwords).
    """

    def __init__(
        self, reason: str, detail: str = "", *, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None.

    `now` (Unix seconds) turns a date into a wait; the result is within 0..1 hour.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            # `-0000` (no zone known): HTTP dates are GMT.
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Channel(Protocol):
    """Sends a rendered message to one receiver's destination."""

    integration: str

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """Deliver `message`; `prior` is what the last successful send for this (receiver,
        group) returned (e.g. a Slack `ts`), and the returned mapping is stored in its place.
        Raises DeliveryError on failure."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
