"""Delivery integrations; `build_channel` picks one from a receiver's config."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from router.channels.base import Channel, PaceSettings
from router.config.schema import Config, ReceiverConfig
from router.schedules.directory import OnCallDirectory


def pace_of(receiver: ReceiverConfig, config: Config) -> PaceSettings | None:
    """How `config` paces `receiver`'s destination: Slack per channel, email per recipient
    set, Teams per webhook URL; None for integrations without a rate limit."""
    router_url = config.server.external_url
    if receiver.slack is not None:
        slack = config.slack
        return PaceSettings(slack.per_channel_interval, slack.digest_threshold, router_url)
    if receiver.email is not None:
        mail = config.email.pacing
        return PaceSettings(mail.interval, mail.digest_threshold, router_url)
    if receiver.msteams is not None:
        from router.channels.msteams import DEFAULT_PACE

        return PaceSettings(DEFAULT_PACE.interval, DEFAULT_PACE.digest_threshold, router_url)
    return None


def build_channel(
    receiver: ReceiverConfig,
    config: Config,
    clock: Callable[[], float],
    oncall: OnCallDirectory | None = None,
    *,
    http: aiohttp.ClientSession,
) -> Channel:
    """The channel that delivers to `receiver` (exactly one integration is configured),
    paced as `config` says.

    `clock` (Unix seconds) is the service's clock: message times, mail dates and
    Retry-After dates are read from it, never from the system directly. `oncall`
    resolves `oncall:<name>` in a Slack mention or an email `to` at send time. `http` is
    the shared HTTP pool the HTTP integrations send over.
    """
    pace = pace_of(receiver, config)
    if receiver.slack is not None:
        from router.channels.slack.channel import SlackChannel

        assert pace is not None
        return SlackChannel(
            receiver.name,
            receiver.slack,
            clock=clock,
            pace=pace,
            interactivity=config.slack.interactivity,
            oncall=oncall,
            http=http,
        )
    if receiver.email is not None:
        from router.channels.email import EmailChannel

        assert pace is not None
        return EmailChannel(
            receiver.name,
            receiver.email,
            config.templates_dir,
            clock=clock,
            pace=pace,
            oncall=oncall,
        )
    if receiver.webhook is not None:
        from router.channels.webhook import WebhookChannel

        return WebhookChannel(receiver.name, receiver.webhook, http=http, clock=clock)
    if receiver.log is not None:
        from router.channels.log import LogChannel

        return LogChannel(receiver.name, receiver.log, clock=clock)
    if receiver.pagerduty is not None:
        from router.channels.pagerduty import PagerDutyChannel

        return PagerDutyChannel(receiver.name, receiver.pagerduty, http=http, clock=clock)
    if receiver.msteams is not None:
        from router.channels.msteams import MSTeamsChannel

        assert pace is not None
        return MSTeamsChannel(receiver.name, receiver.msteams, http=http, clock=clock, pace=pace)
    raise ValueError(f"receiver {receiver.name!r} has no integration")
