"""Leases kept by a live worker, through the running service: a delivery slower than the
lease is not taken over, a claim another replica took is not delivered twice, and a
worker that cannot renew stops before its lease can run out."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import pytest

from router.config.schema import Config
from router.model import DeliveryState, Outcome
from router.store.redis import RedisStore
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack
from tests.helpers import config_from, until
from tests.redis_server import RedisServer

CHANNEL = "#prod-alerts"


def slack_config(
    slack: FakeSlack,
    state: str,
    *,
    interval: float = 0.01,
    timeout: str = "10s",
) -> Config:
    return config_from(
        f"""
state: {{{state}}}
slack: {{per_channel_interval: {interval}, digest_threshold: 100000}}
receivers:
  - name: slack
    slack: {{token: {slack.token}, channel: '{CHANNEL}', api_url: '{slack.api_url}',
             timeout: {timeout}}}
route: {{receiver: slack, repeat_interval: 1h}}
"""
    )


def webhook(group: str) -> dict[str, Any]:
    """One group with one firing alert named after it."""
    return {
        "version": "4",
        "groupKey": group,
        "receiver": "alert-router",
        "status": "firing",
        "groupLabels": {"alertname": group},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": group, "severity": "warning"},
                "annotations": {"summary": f"{group} is failing"},
                "startsAt": "2026-11-26T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp-{group}",
            }
        ],
    }


def posts_about(slack: FakeSlack, group: str) -> int:
    return sum(group in str(c.args.get("text", "")) for c in slack.calls_to("chat.postMessage"))


async def settled(app: Running, count: int) -> bool:
    found = await app.records()
    return len(found) == count and all(r["state"] != "pending" for r in found)


@pytest.fixture(params=["sqlite", "redis"])
def state_settings(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The state settings of one service with a 3 s lease renewed every second."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
        return f"url: '{url}', lease: 3s, lease_renew: 1s"
    redis_url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("prefix")
    return f"url: '{redis_url}', key_prefix: '{prefix}', lease: 3s, lease_renew: 1s"


async def test_a_delivery_slower_than_the_lease_is_sent_once(
    slack: FakeSlack, state_settings: str
) -> None:
    # Slack answers after more than two leases: a worker that did not renew would see its
    # own claim taken again and post a second time.
    slack.delay("chat.postMessage", 7.0)
    async with running(slack_config(slack, state_settings)) as app:
        assert (await app.post("/webhook/alertmanager", webhook("slow-1")))[0] == 200
        await until(lambda: settled(app, 1), 20)
        [record] = await app.records()
    assert (record["state"], record["attempts"]) == ("sent", 1)
    assert posts_about(slack, "slow-1") == 1


async def test_a_claim_another_replica_took_over_is_not_delivered_here(
    slack: FakeSlack, redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Posts are 30 s apart, so the second group waits in this replica's pacer; meanwhile
    # another replica (its clock a lease ahead, as if this one had stopped renewing) takes
    # the claim over and finishes it. The waiting delivery must not post it again.
    state = f"url: '{redis_url}', key_prefix: '{prefix}', lease: 3s, lease_renew: 1s"
    other = RedisStore(redis_url, key_prefix=prefix, lease=3.0)
    await other.open()
    try:
        async with running(slack_config(slack, state, interval=30)) as app:
            assert (await app.post("/webhook/alertmanager", webhook("first-1")))[0] == 200
            await slack.wait_for_calls(1, "chat.postMessage")
            assert (await app.post("/webhook/alertmanager", webhook("parked-1")))[0] == 200

            async def parked() -> bool:
                return app.state.deliverer.pacer.parked == 1

            await until(parked, 10)
            far_ahead = app.state.clock() + 3600
            [taken] = await other.claim(far_ahead, 10)
            await other.complete(taken, Outcome(DeliveryState.SENT, "first"), far_ahead)
            with caplog.at_level(logging.WARNING, logger="router.notify.worker"):

                async def stopped() -> bool:
                    return app.state.deliverer.in_flight == 0

                await until(stopped, 10)
            records = {r["group_key"].rsplit("/", 1)[1]: r for r in await app.records()}
    finally:
        await other.close()
    assert posts_about(slack, "parked-1") == 0
    assert records["parked-1"]["state"] == "sent"  # by the replica that took it over
    assert "claims taken over by another worker" in caplog.text


async def test_a_worker_that_cannot_renew_stops_before_its_lease_runs_out(
    slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The second group waits 8 s in the pacer; Redis dies for longer than the lease. The
    # waiting delivery is stopped (another replica could take the claim as soon as Redis is
    # back); once Redis answers, the group is claimed again and posted exactly once.
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    state = f"url: '{redis_server.url}', key_prefix: 'fence:', lease: 3s, lease_renew: 1s"
    try:
        async with running(slack_config(slack, state, interval=8)) as app:
            assert (await app.post("/webhook/alertmanager", webhook("first-2")))[0] == 200
            assert (await app.post("/webhook/alertmanager", webhook("parked-2")))[0] == 200

            async def first_sent() -> bool:
                found = {r["group_key"].rsplit("/", 1)[1]: r["state"] for r in await app.records()}
                return found.get("first-2") == "sent" and app.state.deliverer.pacer.parked == 1

            await until(first_sent, 10)
            with caplog.at_level(logging.WARNING, logger="router.notify.worker"):
                redis_server.stop(signal.SIGKILL)

                async def stopped() -> bool:
                    return "leases could not be renewed" in caplog.text

                await until(stopped, 10)

            async def nothing_in_flight() -> bool:
                return app.state.deliverer.in_flight == 0

            await until(nothing_in_flight, 5)
            redis_server.start()
            await until(lambda: settled(app, 2), 30)
    finally:
        redis_server.stop()
    assert posts_about(slack, "first-2") == 1
    assert posts_about(slack, "parked-2") == 1
