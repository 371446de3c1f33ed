"""The narrow interface every delivery integration implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from router.render.message import Message


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
