"""Three `python -m router serve` processes on one Redis, as three pods behind a Service:
one message per change however many replicas get the webhook, none lost when one dies or
when Redis restarts."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from router.config.schema import Config
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack, Reply, SlackCall
from tests.fakes.smtp import free_port
from tests.helpers import config_from, until
from tests.redis_server import RedisServer
from tests.test_process import Server

pytestmark = pytest.mark.slow

CHANNEL = "#prod-alerts"


def write_config(
    path: Path,
    *,
    state_url: str,
    prefix: str,
    slack: FakeSlack,
    name: str,
    slack_timeout: str = "10s",
) -> None:
    """routes.yaml of one replica; its name goes out as the Slack username, so each
    message tells which replica sent it."""
    path.write_text(
        f"state: {{url: '{state_url}', key_prefix: '{prefix}'}}\n"
        "server: {shutdown_grace: 1s}\n"
        # No pacing or digests in the way: one message per notification, quickly.
        "slack: {per_channel_interval: 0.01, digest_threshold: 100000}\n"
        "receivers:\n"
        "  - name: slack\n"
        f"    slack: {{token: {slack.token}, channel: '{CHANNEL}', api_url: '{slack.api_url}',"
        f" username: {name}, timeout: {slack_timeout}}}\n"
        "route: {receiver: slack, repeat_interval: 1h}\n"
    )


def replica(
    tmp_path: Path, name: str, slack: FakeSlack, state_url: str, prefix: str, **kw: str
) -> Server:
    """One replica's serve process (not started yet), named `name`."""
    home = tmp_path / name
    home.mkdir()
    config = home / "routes.yaml"
    write_config(config, state_url=state_url, prefix=prefix, slack=slack, name=name, **kw)
    return Server(config, free_port())


@asynccontextmanager
async def killed_on_exit(servers: list[Server]) -> AsyncIterator[list[Server]]:
    try:
        yield servers
    finally:
        for server in servers:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()


@asynccontextmanager
async def replicas(
    tmp_path: Path, slack: FakeSlack, state_url: str, prefix: str, count: int = 3, **kw: str
) -> AsyncIterator[list[Server]]:
    """`count` serve processes sharing one Redis key prefix; killed on exit."""
    servers = [
        replica(tmp_path, f"replica-{i}", slack, state_url, prefix, **kw) for i in range(count)
    ]
    async with killed_on_exit(servers):
        await asyncio.gather(*(s.start() for s in servers))
        yield servers


def alert_webhook(group: str) -> dict[str, Any]:
    """An Alertmanager webhook of one group with one firing alert named after the group."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{group}"}}',
        "receiver": "alert-router",
        "status": "firing",
        "externalURL": "http://alertmanager:9093",
        "groupLabels": {"alertname": group},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": group, "env": "prod", "severity": "warning"},
                "annotations": {"summary": f"{group} is failing"},
                "startsAt": "2026-11-26T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp-{group}",
            }
        ],
    }


async def post(server: Server, body: dict[str, Any]) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.url + "/webhook/alertmanager", json=body) as resp,
    ):
        return resp.status


async def get_status(server: Server, path: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(server.url + path) as resp:
        return resp.status


async def records(server: Server) -> list[dict[str, Any]]:
    """Every replica lists the same records: they live in Redis."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + "/api/v1/notifications?limit=1000") as resp,
    ):
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
        return list(data["notifications"])


def leases_held(url: str, prefix: str) -> int:
    """How many groups some replica holds a lease on."""
    client = redis.Redis.from_url(url)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}lease:*"))
    finally:
        client.close()


def posts(slack: FakeSlack) -> list[SlackCall]:
    return slack.calls_to("chat.postMessage")


def group_of(call: SlackCall) -> str:
    """Which group a chat.postMessage was about (its alert is named after the group)."""
    found: set[str] = set(re.findall(r"grp-[a-z]+\d+", str(call.args.get("text", ""))))
    assert len(found) == 1, call.args
    return found.pop()


async def settled(server: Server, expected: int) -> bool:
    """All `expected` notifications are finished (none pending): a record ends only once
    Slack answered its post, so no message about them is still on its way."""
    found = await records(server)
    return len(found) == expected and all(r["state"] != "pending" for r in found)


async def test_the_same_webhook_on_three_replicas_at_once_is_one_message(
    tmp_path: Path, slack: FakeSlack, redis_url: str, prefix: str
) -> None:
    groups = [f"grp-dup{i}" for i in range(5)]
    async with replicas(tmp_path, slack, redis_url, prefix) as servers:
        for group in groups:
            body = alert_webhook(group)
            # Both Alertmanager peers (and a retry) reach different pods at the same moment.
            assert await asyncio.gather(*(post(s, body) for s in servers)) == [200] * 3
        await until(lambda: settled(servers[0], 3 * len(groups)), 20)
        found = await records(servers[1])
    assert sorted(group_of(c) for c in posts(slack)) == sorted(groups)
    assert len(slack.messages(CHANNEL)) == len(groups)
    # Twins that arrived together went out in that one message (all three "sent"); a twin
    # recorded after it was sent is a logged duplicate.
    assert len(found) == 15
    assert {(r["state"], r["reason"]) for r in found} <= {
        ("sent", "first"),
        ("suppressed", "duplicate"),
    }


async def test_two_hundred_groups_over_three_replicas_are_two_hundred_messages(
    tmp_path: Path, slack: FakeSlack, redis_url: str, prefix: str
) -> None:
    groups = [f"grp-many{i}" for i in range(200)]
    async with replicas(tmp_path, slack, redis_url, prefix) as servers:
        statuses = await asyncio.gather(
            *(post(servers[i % 3], alert_webhook(g)) for i, g in enumerate(groups))
        )
        assert statuses == [200] * 200
        await until(lambda: settled(servers[2], 200), 40)
    assert sorted(group_of(c) for c in posts(slack)) == sorted(groups)
    assert len(slack.messages(CHANNEL)) == 200
    # The work really was shared.
    assert len({c.args.get("username") for c in posts(slack)}) >= 2


async def test_a_killed_replicas_claims_are_delivered_by_another(
    tmp_path: Path, slack: FakeSlack, redis_url: str, prefix: str
) -> None:
    lease = 6.0  # longer than a slowed delivery (2 s) queued behind another one
    slack.delay("chat.postMessage", 2.0)
    groups = [f"grp-kill{i}" for i in range(3)]
    state_url = f"{redis_url}?lease={lease}"
    async with replicas(tmp_path, slack, state_url, prefix) as servers:
        for server, group in zip(servers, groups, strict=True):
            assert await post(server, alert_webhook(group)) == 200
        async with asyncio.timeout(10):
            first = (await slack.wait_for_calls(1, "chat.postMessage"))[0]
        victim = str(first.args["username"])
        dead = servers[int(victim.rsplit("-", 1)[1])]
        dead.kill(signal.SIGKILL)  # mid-delivery: Slack has the request, no answer yet
        await dead.wait(10)
        alive = next(s for s in servers if s is not dead)
        await until(lambda: settled(alive, len(groups)), lease + 20)
        found = await records(alive)
    assert sorted(r["state"] for r in found) == ["sent"] * 3
    taken_over = group_of(first)
    by_survivors = [c for c in posts(slack) if c.args["username"] != victim]
    assert taken_over in {group_of(c) for c in by_survivors}
    # Nothing is missing. At least once: the dead replica's request may still have been
    # handled by Slack after the kill; that message is the only possible repeat.
    dead_posted = [c for c in posts(slack) if c.args["username"] == victim and c.ok]
    assert sorted({group_of(c) for c in posts(slack)}) == sorted(groups)
    assert len(slack.messages(CHANNEL)) == len(groups) + len(dead_posted)
    assert len(dead_posted) <= 1


async def test_a_replica_killed_with_work_in_flight_is_taken_over_within_a_lease(
    tmp_path: Path, slack: FakeSlack, redis_url: str, prefix: str
) -> None:
    # Default lease settings (15 s, renewed every 5 s). The victim posts to a Slack that
    # never answers, so its five deliveries are all in flight when it dies (one waiting
    # for Slack, four queued behind it for the channel); the survivors post to one that
    # answers.
    groups = [f"grp-take{i}" for i in range(5)]
    async with FakeSlack() as hanging:
        hanging.delay("chat.postMessage", 120.0)
        victim = replica(tmp_path, "victim", hanging, redis_url, prefix)
        survivors = [replica(tmp_path, f"survivor-{i}", slack, redis_url, prefix) for i in (1, 2)]
        async with killed_on_exit([victim, *survivors]):
            await victim.start()
            for group in groups:
                assert await post(victim, alert_webhook(group)) == 200
            async with asyncio.timeout(10):
                await hanging.wait_for_calls(1, "chat.postMessage")

            async def all_claimed() -> bool:
                return leases_held(redis_url, prefix) == len(groups)

            await until(all_claimed, 10)
            # Started now, so the work was the victim's alone.
            await asyncio.gather(*(s.start() for s in survivors))
            victim.kill(signal.SIGKILL)
            await victim.wait(10)

            async def all_posted() -> bool:
                return len({group_of(c) for c in posts(slack) if c.ok}) == len(groups)

            # The bound: every item of a dead replica within 20 s of its death.
            await until(all_posted, 20)
            await until(lambda: settled(survivors[0], len(groups)), 10)
            found = await records(survivors[1])
    assert sorted(group_of(c) for c in posts(slack)) == sorted(groups)  # each once
    assert {c.args["username"] for c in posts(slack)} <= {"survivor-1", "survivor-2"}
    assert sorted((r["state"], r["attempts"]) for r in found) == [("sent", 1)] * len(groups)


@pytest.mark.timeout(120)
async def test_live_but_slow_deliveries_are_never_taken_over(
    tmp_path: Path, slack: FakeSlack, redis_url: str, prefix: str
) -> None:
    # Default lease settings (15 s, renewed every 5 s). One post takes Slack 25 s to answer;
    # another is refused with Retry-After: 30, which holds that replica's channel, so the
    # two posts queued behind it wait there 30 s. No other replica takes any of them.
    slack.script("chat.postMessage", Reply.slow(25.0), Reply.rate_limited(30))
    async with replicas(tmp_path, slack, redis_url, prefix, slack_timeout="40s") as servers:
        assert await post(servers[0], alert_webhook("grp-slow0")) == 200
        async with asyncio.timeout(10):
            await slack.wait_for_calls(1, "chat.postMessage")
        assert await post(servers[1], alert_webhook("grp-held0")) == 200
        async with asyncio.timeout(10):
            await slack.wait_for_calls(2, "chat.postMessage")
        for group in ("grp-held1", "grp-held2"):
            assert await post(servers[1], alert_webhook(group)) == 200
        await until(lambda: settled(servers[2], 4), 60)
        found = await records(servers[2])
    by_group: dict[str, list[SlackCall]] = {}
    for call in posts(slack):
        by_group.setdefault(group_of(call), []).append(call)
    # One post each; grp-held0 also had its refused try (then retried after Retry-After).
    assert {g: len(calls) for g, calls in by_group.items()} == {
        "grp-slow0": 1,
        "grp-held0": 2,
        "grp-held1": 1,
        "grp-held2": 1,
    }
    assert by_group["grp-slow0"][0].args["username"] == "replica-0"
    # What replica 1 claimed sat out the whole hold in its memory (another replica's poll
    # may have claimed one of them first: then that one went out at once, also just once).
    refused_at = by_group["grp-held0"][0].at
    parked = [
        call
        for group in ("grp-held1", "grp-held2")
        for call in by_group[group]
        if call.args["username"] == "replica-1" and call.at - refused_at >= 29
    ]
    assert parked and all(call.ok for call in parked)
    assert sorted(r["state"] for r in found) == ["sent"] * 4


async def test_a_redis_restart_is_503_while_down_and_loses_nothing_accepted(
    tmp_path: Path, slack: FakeSlack
) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    slack.delay("chat.postMessage", 0.5)
    before = [f"grp-before{i}" for i in range(4)]
    after = [f"grp-after{i}" for i in range(4)]
    try:
        state_url = f"{redis_server.url}?lease=4"
        async with replicas(tmp_path, slack, state_url, "restart:", count=2) as servers:
            for i, group in enumerate(before):
                assert await post(servers[i % 2], alert_webhook(group)) == 200
            # Redis dies right after accepting (acknowledged writes are in its fsynced log).
            redis_server.stop(signal.SIGKILL)
            for server in servers:
                assert await post(server, alert_webhook("grp-refused")) == 503
                assert await get_status(server, "/readyz") == 503
            redis_server.start()

            async def ready() -> bool:
                return all([await get_status(s, "/readyz") == 200 for s in servers])

            await until(ready, 10)
            for i, group in enumerate(after):
                assert await post(servers[i % 2], alert_webhook(group)) == 200
            await until(lambda: settled(servers[0], len(before) + len(after)), 30)
            found = await records(servers[1])
    finally:
        redis_server.stop()
    assert sorted(r["state"] for r in found) == ["sent"] * 8
    delivered = {group_of(c) for c in posts(slack) if c.ok}
    assert delivered == set(before) | set(after)
    assert "grp-refused" not in {group_of(c) for c in posts(slack)}


# -- inhibition across replicas -----------------------------------------------------------


def inhibiting_config(slack: FakeSlack, redis_url: str, prefix: str) -> Config:
    return config_from(
        f"""
state: {{url: '{redis_url}', key_prefix: '{prefix}'}}
slack: {{per_channel_interval: 0.01, digest_threshold: 100000}}
receivers:
  - name: slack
    slack: {{token: {slack.token}, channel: '{CHANNEL}', api_url: '{slack.api_url}'}}
route: {{receiver: slack, repeat_interval: 1h}}
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
"""
    )


def cluster_webhook(group: str, severity: str) -> dict[str, Any]:
    body = alert_webhook(group)
    body["alerts"][0]["labels"].update(severity=severity, cluster="eu-1")
    return body


async def test_a_source_accepted_by_one_replica_inhibits_at_once_on_another(
    slack: FakeSlack, redis_url: str, prefix: str
) -> None:
    config = inhibiting_config(slack, redis_url, prefix)
    async with running(config) as a, running(config) as b, running(config) as c:
        # A and B only accept webhooks; C delivers everything, so what C knows of the
        # firing alerts must come from the store, not from its own webhooks.
        for intake_only in (a, b):
            await intake_only.state.deliverer.stop(0)
        assert (await c.post("/webhook/alertmanager", cluster_webhook("grp-warm1", "info")))[
            0
        ] == 200
        await until(lambda: settled_in(c, 1), 10)  # C has read the firing alerts once
        assert (await a.post("/webhook/alertmanager", cluster_webhook("grp-src1", "critical")))[
            0
        ] == 200
        await asyncio.sleep(0.2)
        assert (await b.post("/webhook/alertmanager", cluster_webhook("grp-tgt1", "warning")))[
            0
        ] == 200
        await until(lambda: settled_in(c, 3), 10)
        found = {r["group_key"]: (r["state"], r["reason"]) for r in await c.records()}
    assert found[next(k for k in found if "grp-tgt1" in k)] == ("suppressed", "inhibited")
    assert sorted(group_of(call) for call in posts(slack)) == ["grp-src1", "grp-warm1"]


async def settled_in(app: Running, expected: int) -> bool:
    found = await app.records()
    return len(found) == expected and all(r["state"] != "pending" for r in found)
