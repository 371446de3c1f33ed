"""The real Alertmanager's Watchdog as a heartbeat of three alert-router replicas on Redis.

Debian's `prometheus-alertmanager` sends the always-firing Watchdog every few seconds
(`repeat_interval: 2s`, as the README's route does every minute). Stopping Alertmanager
must bring exactly one HeartbeatMissing to the receiver the route tree gives it, starting
it again its resolve. The delay from the last beat to the alarm is printed (it should be
interval + grace plus at most a few seconds: one judging tick and the delivery).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Running, running
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from, until
from tests.test_alertmanager_e2e import TOKEN, Alertmanager, alertmanager_binary

# Two Alertmanager starts and a stop, each with real waits: room for a busy CI machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

INTERVAL = 5.0
GRACE = 5.0


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as fake:
        yield fake


def watchdog_route(am: Alertmanager, router_url: str) -> None:
    """The README's Watchdog route, with seconds where it has minutes."""
    am.config.write_text(
        f"""
route:
  receiver: blackhole
  routes:
    - matchers: ['alertname="Watchdog"']
      receiver: alert-router-heartbeat
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 2s
receivers:
  - name: blackhole
  - name: alert-router-heartbeat
    webhook_configs:
      - url: {router_url}/webhook/alertmanager
        send_resolved: false
        http_config:
          authorization: {{type: Bearer, credentials: {TOKEN}}}
"""
    )


def watchdog() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "labels": {"alertname": "Watchdog", "severity": "none", "env": "prod"},
            "annotations": {"summary": "An alert that should always be firing"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
        }
    ]


async def test_stopping_alertmanager_raises_one_heartbeat_missing_and_starting_it_resolves(
    sink: WebhookSink, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    binary = alertmanager_binary()
    config = config_from(
        f"""
state: {{url: '{redis_url}', key_prefix: '{prefix}'}}
server: {{auth: {{alertmanager: {{bearer_token: {TOKEN}}}}}}}
receivers:
  - name: quiet
    log: {{}}
  - name: oncall
    webhook: {{url: '{sink.url("/oncall")}'}}
route:
  receiver: quiet
  routes:
    - matchers: ['alertname="HeartbeatMissing"']
      receiver: oncall
heartbeats:
  - name: prod-watchdog
    matchers: ['alertname="Watchdog"', 'env="prod"']
    interval: {INTERVAL:g}s
    grace: {GRACE:g}s
    labels: {{env: prod, severity: critical, team: sre}}
"""
    )
    async with AsyncExitStack() as stack:
        replicas: list[Running] = [
            await stack.enter_async_context(running(config)) for _ in range(3)
        ]
        store = replicas[0].state.store
        am = Alertmanager(binary, tmp_path / "am", replicas[1].url)
        watchdog_route(am, replicas[1].url)
        stack.callback(am.stop)
        await am.start()
        await am.post_alerts(watchdog())

        async def beats() -> list[float]:
            states = await store.heartbeat_states()
            return [s.last_beat for s in states if s.last_beat is not None]

        first = (await until(beats, within=30))[0]
        # Beats keep coming every few seconds: a later one replaces the first.
        await until(lambda: _later(beats, first), within=30)

        # Stopped off the event loop: the replicas (in this process) keep judging meanwhile.
        await asyncio.to_thread(am.stop)
        [alarm] = await _arrivals(sink, 1, within=60)
        [state] = await store.heartbeat_states()
        assert state.last_beat is not None
        delay = alarm[1] - state.last_beat
        print(
            f"\nlast beat -> HeartbeatMissing delivered: {delay:.2f}s"
            f" (interval + grace = {INTERVAL + GRACE:g}s)"
        )
        assert delay >= INTERVAL + GRACE
        body = alarm[0]
        assert (body["status"], body["alertname"]) == ("firing", "HeartbeatMissing")
        assert body["alerts"][0]["labels"]["heartbeat"] == "prod-watchdog"

        # Prometheus would send Watchdog again to a restarted Alertmanager: so does the test.
        await am.start()
        await am.post_alerts(watchdog())
        try:
            arrivals = await _arrivals(sink, 2, within=90)
        except TimeoutError:
            shown = [(r.path, r.json["status"]) for r in sink.requests]
            raise AssertionError(f"no resolve; the sink got {shown}\n{am.log()}") from None
        resolve = arrivals[1][0]
        assert resolve["status"] == "resolved"
        assert "it was missing for" in resolve["alerts"][0]["summary"]
        # Three replicas judged, one alarm and one resolve reached the receiver.
        assert [a[0]["status"] for a in arrivals] == ["firing", "resolved"]


async def _later(beats: Any, first: float) -> bool:
    return any(b > first for b in await beats())


async def _arrivals(
    sink: WebhookSink, count: int, within: float
) -> list[tuple[dict[str, Any], float]]:
    """The first `count` requests the sink got, each with when it arrived (wall clock)."""
    arrived: list[float] = []

    async def watch() -> None:
        while len(arrived) < count:
            await sink.wait_for(len(arrived) + 1)
            arrived.append(time.time())

    async with asyncio.timeout(within):
        await watch()
    return [(r.json, at) for r, at in zip(sink.requests, arrived, strict=False)]
