"""Everything derived from one loaded config; swapped whole on reload. And the one HTTP
client pool every runtime's clients share, which outlives them."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp

from router.channels import build_channel, pace_of
from router.channels.base import Channel
from router.config.heartbeats import Heartbeats
from router.config.schema import Config, TeamLoad
from router.enrich.enricher import Enricher
from router.metrics import Metrics
from router.routing.inhibit import Inhibitor
from router.routing.timeintervals import TimeIntervals
from router.routing.tree import RouteTree
from router.schedules.directory import OnCallDirectory, OverrideSource

log = logging.getLogger(__name__)


@asynccontextmanager
async def http_pool() -> AsyncIterator[aiohttp.ClientSession]:
    """The one HTTP client session (one connection pool) for every outgoing call, closed
    on exit; it must be opened on the loop that uses it.

    Nothing of a destination lives on it: credentials, timeouts and whether redirects are
    followed go on each request. It keeps no cookies, so what one receiver's server sets
    never reaches another receiver on the same host. No connection limit (each client's
    own pool allowed 100): workers, Loki's query slots and clicks in progress bound the calls.
    """
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        # Every call brings its own bound (a per-request timeout, or asyncio.timeout around
        # slack_sdk's calls): aiohttp's default (30 s to connect) would cut a longer
        # configured timeout short.
        timeout=aiohttp.ClientTimeout(total=None),
    ) as session:
        yield session


@dataclass
class Runtime:
    config: Config
    tree: RouteTree
    intervals: TimeIntervals
    inhibitor: Inhibitor
    enricher: Enricher
    # The shared pool (see http_pool): handed from runtime to runtime, closed by its opener.
    http: aiohttp.ClientSession
    channels: dict[str, Channel] = field(default_factory=dict)
    # Who is on call (rotations of this config, overrides from the store).
    oncall: OnCallDirectory = field(default_factory=lambda: OnCallDirectory({}))
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    # The service's clock (Unix seconds), handed to everything built here.
    clock: Callable[[], float] = time.time

    @classmethod
    def build(
        cls,
        config: Config,
        previous: Runtime | None = None,
        metrics: Metrics | None = None,
        *,
        http: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] | None = None,
        overrides: OverrideSource | None = None,
    ) -> Runtime:
        """Compile a validated config; channels whose receiver config is unchanged are kept,
        and so is the Loki client (cache, queries in flight) while its settings are.

        `http` (the shared pool), `clock` and `overrides` (the store's on-call overrides)
        default to the previous runtime's, so a reload keeps them.
        """
        if http is None:
            if previous is None:
                raise ValueError("a first runtime needs the HTTP pool (http=)")
            http = previous.http
        if clock is None:
            clock = previous.clock if previous is not None else time.time
        if overrides is None and previous is not None:
            overrides = previous.oncall.overrides
        counted = None
        if metrics is not None:
            resolutions = metrics.oncall_resolutions

            def counted(rotation: str, by: str) -> None:
                resolutions.labels(rotation, by).inc()

        oncall = OnCallDirectory(config.rotations, overrides, clock, counted)
        _report_teams(config, previous, metrics)
        channels: dict[str, Channel] = {}
        for receiver in config.receivers:
            if previous is not None and receiver.name in previous.channels:
                try:
                    old = previous.config.receiver(receiver.name)
                except KeyError:
                    old = None
                same_pace = old is not None and pace_of(old, previous.config) == pace_of(
                    receiver, config
                )
                same_templates = previous.config.templates_dir == config.templates_dir
                # The buttons a Slack message carries come with its channel.
                same_buttons = previous.config.slack.interactivity == config.slack.interactivity
                # A channel resolves `oncall:<name>` with the rotations it was built with.
                same_oncall = previous.config.oncall == config.oncall
                if (
                    old == receiver
                    and same_pace
                    and same_templates
                    and same_buttons
                    and same_oncall
                ):
                    channels[receiver.name] = previous.channels[receiver.name]
                    continue
            channels[receiver.name] = build_channel(receiver, config, clock, oncall, http=http)
        if previous is not None and previous.http is http:
            enricher = previous.enricher.renewed(config, metrics)
        else:
            enricher = Enricher(config, metrics, http=http)
        return cls(
            config=config,
            tree=RouteTree.from_config(config),
            intervals=TimeIntervals.from_config(config.time_intervals),
            inhibitor=Inhibitor.from_config(config.inhibit_rules),
            enricher=enricher,
            http=http,
            channels=channels,
            oncall=oncall,
            heartbeats=Heartbeats.from_config(config),
            clock=clock,
        )

    @property
    def failed_teams(self) -> list[TeamLoad]:
        """The teams whose file failed to load (each routed by its last good version or its
        fallback receiver)."""
        return [load for load in self.config.team_loads if not load.ok]

    async def close(self) -> None:
        """At shutdown: end the Loki queries in flight and close the channels (the HTTP pool
        is closed by whoever opened it). A reload closes nothing: the runtime it replaces
        may still be serving jobs in flight."""
        await self.enricher.close()
        for channel in self.channels.values():
            try:
                await channel.close()
            except Exception:  # noqa: BLE001 - closing must not stop shutdown
                log.exception("closing channel failed")


def _report_teams(config: Config, previous: Runtime | None, metrics: Metrics | None) -> None:
    """One ERROR line per team whose file failed, and `alert_router_config_team_ok`."""
    for load in config.team_loads:
        if metrics is not None:
            metrics.config_team_ok.labels(load.name).set(1 if load.ok else 0)
        if not load.ok:
            log.error(
                "team file failed to load",
                extra={
                    "team": load.name,
                    "file": load.file,
                    "serving": load.serving,
                    "problems": list(load.problems),
                },
            )
    if metrics is not None and previous is not None:
        current = {load.name for load in config.team_loads}
        for load in previous.config.team_loads:
            if load.name not in current:
                metrics.config_team_ok.remove(load.name)
