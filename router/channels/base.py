"""The narrow interface every delivery integration implements."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Protocol, cast

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


@dataclass(frozen=True, slots=True)
class PaceSettings:
    """How often one destination may be posted to, and when its backlog becomes a digest."""

    interval: float
    digest_threshold: int
    # Where people reach the router (`server.external_url`): a digest links to the full
    # list of what it carried there. Empty: the link is given as a path.
    router_url: str = ""


class SlotGate(Protocol):
    """The destination's post budget, handed to a channel that needs more than one post."""

    async def next(self) -> None:
        """Wait for (and spend) the destination's next post slot."""
        ...

    async def hold(self, seconds: float) -> None:
        """No post to the destination for `seconds` (its Retry-After)."""
        ...


class PacedChannel(Channel, Protocol):
    """A channel whose destination limits how fast it may be posted to (Slack, email)."""

    pace: PaceSettings

    @property
    def pace_key(self) -> str:
        """What the destination's limit applies to (a Slack channel, a recipient set);
        never a secret: it names a key in the shared store."""
        ...

    @property
    def destination(self) -> str:
        """How a digest's title names where it went: `in #dev-alerts`, `to sre@example.com`."""
        ...

    async def send_digest(self, digest: Message, slots: SlotGate) -> Mapping[str, str]:
        """Deliver a digest, each post of it (the digest, each Slack thread chunk) right
        after `await slots.next()`. Raises DeliveryError."""
        ...


def paced(channel: Channel) -> PacedChannel | None:
    """`channel` when it is paced, else None."""
    if getattr(channel, "pace", None) is None:
        return None
    return cast(PacedChannel, channel)
