"""Redis under Sentinel, for real: a primary, a replica and one Sentinel (Debian's
redis-server and redis-sentinel on free ports). With `state.min_replicas: 1` a webhook is
answered 200 only once the replica has it, so killing the primary right after a batch of
200s loses none of them: the service follows the failover and delivers every one."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from router.config.schema import Config
from tests.conftest import running
from tests.fakes.slack import FakeSlack, Reply, SlackCall
from tests.fakes.smtp import free_port
from tests.helpers import config_from, until
from tests.test_replicas import alert_webhook, group_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

MASTER = "alerts"
CHANNEL = "#prod-alerts"


class Node:
    """One redis-server or redis-sentinel process on a free loopback port."""

    def __init__(self, directory: Path, binary: str, *args: str) -> None:
        self.directory = directory
        self.port = free_port()
        path = shutil.which(binary)
        assert path is not None, f"{binary} is not installed (CI apt-installs it)"
        self.argv = [path, *args]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [*self.argv, *extra, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.directory), "--loglevel", "warning"]
        with (self.directory / "node.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        wait_until(self.answers, 10, f"{self.argv[0]} on {self.port} did not start")

    def answers(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"exited: see {self.directory}/node.log"
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


def wait_until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[tuple[Node, Node, Node]]:
    """A primary, its replica and a Sentinel that fails over a second after the primary
    stops answering."""
    # No 5 s pause before the full sync a new replica asks for.
    primary = Node(
        tmp_path / "primary", "redis-server", "--save", "", "--repl-diskless-sync-delay", "0"
    )
    replica = Node(tmp_path / "replica", "redis-server", "--save", "", "--appendonly", "no")
    sentinel = Node(tmp_path / "sentinel", "redis-sentinel")
    nodes = (primary, replica, sentinel)
    try:
        primary.start()
        replica.start("--replicaof", "127.0.0.1", str(primary.port))
        wait_until(
            lambda: replica.client().info("replication").get("master_link_status") == "up",
            10,
            "the replica did not sync",
        )
        conf = tmp_path / "sentinel" / "sentinel.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text(
            "protected-mode no\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 3000\n"
        )
        sentinel.argv.insert(1, str(conf))
        sentinel.start()

        def knows_the_replica() -> bool:
            found = sentinel.client().sentinel_slaves(MASTER)
            return any(r["flags"] == "slave" for r in found)

        wait_until(knows_the_replica, 20, "the Sentinel did not discover the replica")
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def sentinel_config(slack: FakeSlack, sentinel: Node) -> Config:
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{MASTER}/0"
    return config_from(
        f"""
state: {{url: '{url}', key_prefix: 'failover:', min_replicas: 1}}
slack: {{per_channel_interval: 0.01, digest_threshold: 100000}}
receivers:
  - name: slack
    slack: {{token: {slack.token}, channel: '{CHANNEL}', api_url: '{slack.api_url}'}}
route: {{receiver: slack, repeat_interval: 1h}}
"""
    )


async def test_a_primary_killed_right_after_its_200s_loses_none_of_them(
    slack: FakeSlack, sentinel_set: tuple[Node, Node, Node]
) -> None:
    primary, replica, sentinel = sentinel_set
    # Deliveries are slowed so most are still pending (or in flight) when the primary dies;
    # the first is held 2 s, so every group's claim is seen at once on a busy machine too.
    slack.delay("chat.postMessage", 0.2)
    slack.script("chat.postMessage", Reply.slow(2.0))
    groups = [f"grp-fo{i}" for i in range(30)]
    async with running(sentinel_config(slack, sentinel)) as app:
        statuses = await asyncio.gather(
            *(app.post("/webhook/alertmanager", alert_webhook(g)) for g in groups)
        )
        assert [status for status, _ in statuses] == [200] * len(groups)

        def claimed_everywhere() -> bool:
            return all(
                len(node.client().keys("failover:lease:*")) == len(groups)
                for node in (primary, replica)
            )

        # Every group is being delivered (one post at a time, the rest queued for the
        # channel), and the replica knows it: then the primary dies.
        await until(lambda: asyncio.to_thread(claimed_everywhere), 10)
        primary.kill()

        def promoted() -> bool:
            return replica.client().info("replication").get("role") == "master"

        async def watch_promotion() -> float:
            await until(lambda: asyncio.to_thread(promoted), 30)
            return time.monotonic()

        promotion = asyncio.create_task(watch_promotion())

        async def delivered() -> bool:
            return {group_of(c) for c in posts(slack) if c.ok} == set(groups)

        async def settled() -> bool:
            found = await app.records()
            return len(found) == len(groups) and all(r["state"] == "sent" for r in found)

        await until(delivered, 45)
        await until(settled, 20)
        promoted_at = await promotion
        found = await app.records()
        # The new primary has no replica: nothing more can be acknowledged as replicated.
        refused, _ = await app.post("/webhook/alertmanager", alert_webhook("grp-late1"))
    assert refused == 503
    assert sorted(r["state"] for r in found) == ["sent"] * len(groups)
    # At least once: a group posted again had been posted before the replica took over
    # (its completion may not have reached the replica), and only once more.
    by_group: dict[str, list[SlackCall]] = {}
    for call in posts(slack):
        if call.ok:
            by_group.setdefault(group_of(call), []).append(call)
    for group, calls in by_group.items():
        assert len(calls) <= 2, group
        if len(calls) == 2:
            assert calls[0].at < promoted_at, group


def posts(slack: FakeSlack) -> list[SlackCall]:
    return slack.calls_to("chat.postMessage")
