"""Checks of acknowledged and silenced groups against a fake Alertmanager, with an injected
clock: an alert gone from one listing is not resolved, from two it is (a resolve lost
while acknowledged is caught); each replica checks at most `poll_max_groups` groups per
interval, the longest-waiting first, and says how many wait."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.loopback import LoopbackServer
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.slack_clicks import click
from tests.helpers import config_from, until

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "#prod-alerts"
EXTERNAL_URL = "http://alertmanager.invalid:9093"


class FakeAlertmanager(LoopbackServer):
    """`GET /api/v2/alerts` lists `alerts` matching the `filter`s; `/api/v2/status` says it
    has run for a day. Every listing's filters are kept, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[dict[str, Any]] = []
        self.listings: list[list[str]] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v2/alerts", self._alerts)
        app.router.add_get("/api/v2/status", self._status)
        return app

    async def _alerts(self, request: web.Request) -> web.Response:
        self.listings.append(request.query.getall("filter", []))
        return web.json_response(self.alerts)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"uptime": "2026-01-01T00:00:00Z"})


def listed(name: str) -> dict[str, Any]:
    return {"fingerprint": f"fp-{name}", "labels": labels(name)}


def labels(name: str) -> dict[str, str]:
    return {"alertname": name, "env": "prod", "severity": "warning"}


def webhook(name: str) -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "prod",
        "status": "firing",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "groupLabels": {"alertname": name},
        "externalURL": EXTERNAL_URL,
        "alerts": [
            {
                "status": "firing",
                "labels": labels(name),
                "annotations": {"summary": f"{name} is failing"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp-{name}",
            }
        ],
    }


@pytest.fixture
async def fake_am() -> AsyncIterator[FakeAlertmanager]:
    async with FakeAlertmanager() as fake:
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


def config_text(slack: FakeSlack, state: str, am: FakeAlertmanager, most: int) -> str:
    return f"""
state: {state}
alertmanager:
  url: {am.base_url}
  external_url: {EXTERNAL_URL}
  poll_interval: 5s
  poll_max_groups: {most}
slack:
  per_channel_interval: 0
  interactivity: {{signing_secret: {SECRET}}}
receivers:
  - name: slack-prod
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url}}}
route:
  receiver: slack-prod
"""


def about(slack: FakeSlack, name: str) -> SlackMessage | None:
    found = [m for m in slack.messages(CHANNEL) if name in m.visible_text()]
    return found[0] if found else None


async def fired_and_acknowledged(
    service: Running,
    slack: FakeSlack,
    clock: FakeClock,
    name: str,
    body: dict[str, Any] | None = None,
) -> None:
    """`name` fired (in `body`, its own webhook by default), posted and acknowledged."""
    status, _ = await service.post("/webhook/alertmanager", body or webhook(name))
    assert status == 200
    message: SlackMessage = await until(lambda: about(slack, name))
    await until(lambda: delivered(service, "slack-prod", name))
    answer = await click(
        service.http,
        service.url + "/slack/interactions",
        SECRET,
        message,
        slack.channel_id(CHANNEL),
        "ack",
        timestamp=str(int(clock())),
    )
    assert answer == 200
    await until(lambda: "Acknowledged by" in (about(slack, name) or message).visible_text())


def sample(service: Running, metric: str, **labels: str) -> float:
    return service.state.metrics.registry.get_sample_value(metric, labels) or 0.0


async def test_an_alert_gone_from_two_listings_of_an_acknowledged_group_is_resolved(
    slack: FakeSlack, state_url: str, fake_am: FakeAlertmanager, clock: FakeClock
) -> None:
    config = config_from(config_text(slack, f"{{url: '{state_url}'}}", fake_am, 500))
    async with running(config, clock=clock) as service:
        await fired_and_acknowledged(service, slack, clock, "Lost")
        # Alertmanager's resolve never reached us; it lists nothing any more.
        clock.now += 5
        await until(lambda: len(fake_am.listings) == 1)
        assert fake_am.listings == [['alertname="Lost"']]
        assert await service.records(reason="resolved_while_silenced") == []
        clock.now += 5
        await until(lambda: service.records(reason="resolved_while_silenced"))
        message = about(slack, "Lost")
        assert message is not None
        await until(lambda: "RESOLVED" in (about(slack, "Lost") or message).visible_text())


async def test_checks_are_bounded_per_interval_oldest_first(
    slack: FakeSlack, state_url: str, fake_am: FakeAlertmanager, clock: FakeClock
) -> None:
    fake_am.alerts = [listed("First"), listed("Second"), listed("Third")]
    config = config_from(config_text(slack, f"{{url: '{state_url}'}}", fake_am, 1))
    async with running(config, clock=clock) as service:
        for name in ("First", "Second", "Third"):
            await fired_and_acknowledged(service, slack, clock, name)
            clock.now += 1
        clock.now += 10
        await until(lambda: fake_am.listings)
        await until(lambda: sample(service, "alert_router_silence_polls_waiting") == 2)
        assert fake_am.listings == [['alertname="First"']]
        clock.now += 5
        await until(lambda: len(fake_am.listings) == 2)
        clock.now += 5
        await until(lambda: len(fake_am.listings) == 3)
        assert fake_am.listings == [
            ['alertname="First"'],
            ['alertname="Second"'],
            ['alertname="Third"'],
        ]


async def delivered(service: Running, receiver: str, name: str) -> bool:
    """Whether `receiver` was told of alert `name` and the store knows it (a click on the
    message is only taken once the store has it as the group's current message)."""
    records = await service.records(receiver=receiver)
    return any(r["state"] == "sent" and name in str(r["alerts"]) for r in records)


async def test_replicas_on_redis_share_the_checks_one_per_group_and_interval(
    slack: FakeSlack,
    redis_url: str,
    prefix: str,
    fake_am: FakeAlertmanager,
    clock: FakeClock,
) -> None:
    fake_am.alerts = [listed("Shared")]
    state = f"{{url: '{redis_url}', key_prefix: '{prefix}'}}"
    config = config_from(config_text(slack, state, fake_am, 500))
    async with contextlib.AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(running(config, clock=clock)) for _ in range(3)]
        await fired_and_acknowledged(replicas[0], slack, clock, "Shared")
        for interval in range(1, 4):
            clock.now += 5
            await until(functools.partial(listed_at_least, fake_am, interval))
        name = fake_am.base_url.removeprefix("http://")

        def polls() -> float:
            return sum(
                sample(r, "alert_router_silence_polls_total", alertmanager=name, outcome="listed")
                for r in replicas
            )

        # The third check is over (counted): one listing per interval, whichever replica.
        await until(lambda: polls() >= 3)
        assert len(fake_am.listings) == 3 and polls() == 3


def listed_at_least(am: FakeAlertmanager, count: int) -> bool:
    return len(am.listings) >= count


def cluster_webhook(*names: str) -> dict[str, Any]:
    """A webhook of the group `cluster="c1"` (Alertmanager's group_by: [cluster])."""
    body = webhook(names[0])
    body["groupKey"] = '{}:{cluster="c1"}'
    body["groupLabels"] = {"cluster": "c1"}
    body["alerts"] = [
        {**webhook(name)["alerts"][0], "labels": {**labels(name), "cluster": "c1"}}
        for name in names
    ]
    return body


async def test_an_alert_outside_the_checked_matchers_is_never_resolved_by_the_check(
    slack: FakeSlack, state_url: str, fake_am: FakeAlertmanager, clock: FakeClock
) -> None:
    # The message was posted for DiskFull alone: the check asks with alertname="DiskFull".
    # HighCPU joins the group later; Alertmanager still holds both.
    fake_am.alerts = [
        {"fingerprint": f"fp-{n}", "labels": {**labels(n), "cluster": "c1"}}
        for n in ("DiskFull", "HighCPU")
    ]
    config = config_from(config_text(slack, f"{{url: '{state_url}'}}", fake_am, 500))
    async with running(config, clock=clock) as service:
        await fired_and_acknowledged(service, slack, clock, "DiskFull", cluster_webhook("DiskFull"))
        joined = cluster_webhook("DiskFull", "HighCPU")
        status, _ = await service.post("/webhook/alertmanager", joined)
        assert status == 200
        await until(lambda: delivered(service, "slack-prod", "HighCPU"))
        name = fake_am.base_url.removeprefix("http://")

        def listings_checked(count: int) -> bool:
            metric = "alert_router_silence_polls_total"
            return sample(service, metric, alertmanager=name, outcome="listed") >= count

        for count in range(1, 4):
            clock.now += 5
            await until(functools.partial(listings_checked, count))
        # The third listing began after the second check was carried out in full.
        assert fake_am.listings[0] == ['cluster="c1"', 'alertname="DiskFull"']
        assert await service.records(reason="resolved_while_silenced") == []
