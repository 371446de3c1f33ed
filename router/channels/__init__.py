"""Delivery integrations; `build_channel` picks one from a receiver's config."""

from __future__ import annotations

from collections.abc import Callable

from router.channels.base import Channel
from router.config.schema import ReceiverConfig


def build_channel(
    receiver: ReceiverConfig, templates_dir: str, clock: Callable[[], float]
) -> Channel:
    """The channel that delivers to `receiver` (exactly one integration is configured).

    `clock` (Unix seconds) is the service's clock: message times, mail dates and
    Retry-After dates are read from it, never from the system directly.
    """
    if receiver.slack is not None:
        from router.channels.slack.channel import SlackChannel

        return SlackChannel(receiver.name, receiver.slack, clock=clock)
    if receiver.email is not None:
        from router.channels.email import EmailChannel

        return EmailChannel(receiver.name, receiver.email, templates_dir, clock=clock)
    if receiver.webhook is not None:
        from router.channels.webhook import WebhookChannel

        return WebhookChannel(receiver.name, receiver.webhook, clock=clock)
    if receiver.log is not None:
        from router.channels.log import LogChannel

        return LogChannel(receiver.name, receiver.log, clock=clock)
    raise ValueError(f"receiver {receiver.name!r} has no integration")
