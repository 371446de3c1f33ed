"""Alert storm to one Slack channel over replicas on Redis: shared pacing, digests that
name every alert, memory.

Starts a fake Slack in this process, its own `redis-server` (append-only, `--appendfsync
always`) and `--replicas` `alert-router serve` processes on one key prefix, all posting to
one channel with the default pacing (one post per second per channel, digests from 5
waiting). Then sends `--alerts` alerts, one group each, within `--seconds`, round-robin
over the replicas, and waits until nothing is pending. Prints JSON:

- `posts_max_per_10s`: the most chat.postMessage calls (thread replies included) Slack saw
  in any 10 s window, over all replicas (Slack's budget: about 10; the contract: <= 13);
- `rss_mb`: each replica's peak resident memory;
- `alerts_named` / `alerts_unnamed`: how many alerts Slack shows by their own line (a
  message of its own, or a digest's thread), checked against every alert sent;
- the states of every notification record, posts, digests and how long naming took.

    python bench/load_storm.py --alerts 10000 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import redis_server  # noqa: E402
from load_replicas import wait_ready  # noqa: E402

from bench.harness import free_port, peak_rss_mb, spawn  # noqa: E402
from tests.fakes.slack import FakeSlack, SlackCall  # noqa: E402

CHANNEL = "#prod-alerts"
PREFIX = "storm:"
CONFIG = """
server: {{external_url: 'https://alerts.example.com', shutdown_grace: 5s}}
state: {{url: '{redis}', key_prefix: '{prefix}'}}
receivers:
  - name: slack
    slack: {{token: {token}, channel: '{channel}', api_url: '{slack}', username: {name}}}
route:
  receiver: slack
"""
_NAMED_RE = re.compile(r"`instance=node-(\d+)`")


def body(n: int) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return json.dumps(
        {
            "version": "4",
            "groupKey": f"storm-{n}",
            "receiver": "alert-router",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": f"Storm{n % 25}",
                        "severity": ("critical", "warning")[n % 2],
                        "env": ("prod", "dev", "stage")[n % 3],
                        "instance": f"node-{n}",
                    },
                    "annotations": {"summary": f"storm alert {n}"},
                    "startsAt": now,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": f"{n:016x}",
                }
            ],
        }
    ).encode()


def max_per_window(calls: list[SlackCall], window: float = 10.0) -> int:
    times = sorted(c.at for c in calls)
    most, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < start + window:
            j += 1
        most = max(most, j - i)
    return most


def named(slack: FakeSlack) -> set[int]:
    """Every alert Slack names on a line of its own (its message, or a digest's thread)."""
    found: set[int] = set()
    for top in slack.messages(CHANNEL):
        for message in [top, *top.replies]:
            found.update(int(n) for n in _NAMED_RE.findall(message.visible_text()))
    return found


def record_states(redis_url: str) -> Counter[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        states: Counter[str] = Counter()
        for key in client.scan_iter(f"{PREFIX}n:*", count=1000):
            states[str(client.hget(key, "state"))] += 1
        return states
    finally:
        client.close()


async def pending(http: aiohttp.ClientSession, urls: list[str]) -> float:
    """The store-wide outbox depth (one replica exports it, the others 0)."""
    depth = 0.0
    for url in urls:
        async with http.get(url + "/metrics") as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith("alert_router_outbox_pending "):
                depth += float(line.split()[1])
    return depth


async def storm(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    async with FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as tmp:
            procs: list[subprocess.Popen[bytes]] = []
            urls: list[str] = []
            try:
                for i in range(args.replicas):
                    home = Path(tmp) / f"replica-{i}"
                    home.mkdir()
                    cfg = home / "routes.yaml"
                    cfg.write_text(
                        CONFIG.format(
                            redis=redis_url,
                            prefix=PREFIX,
                            token=slack.token,
                            channel=CHANNEL,
                            slack=slack.api_url,
                            name=f"replica-{i}",
                        )
                    )
                    port = free_port()
                    procs.append(spawn(cfg, port))
                    urls.append(f"http://127.0.0.1:{port}")
                for url, proc in zip(urls, procs, strict=True):
                    wait_ready(url, proc)
                result = await load(args, urls, slack)
                result["rss_mb"] = [round(peak_rss_mb(p.pid), 1) for p in procs]
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(timeout=60)
    result["records_by_state"] = dict(record_states(redis_url))
    return result


async def load(args: argparse.Namespace, urls: list[str], slack: FakeSlack) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as http:
        for url in urls:
            for _ in range(400):
                try:
                    async with http.get(url + "/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        bodies = [body(n) for n in range(args.alerts)]
        rate = args.alerts / args.seconds
        statuses: Counter[int] = Counter()
        sem = asyncio.Semaphore(64)

        async def post(n: int) -> None:
            async with (
                sem,
                http.post(
                    urls[n % len(urls)] + "/webhook/alertmanager",
                    data=bodies[n],
                    headers={"Content-Type": "application/json"},
                ) as resp,
            ):
                await resp.read()
                statuses[resp.status] += 1

        started = time.monotonic()
        tasks = []
        for n in range(args.alerts):
            due = started + n / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            tasks.append(asyncio.create_task(post(n)))
        await asyncio.gather(*tasks)
        sent_in = time.monotonic() - started
        drained = False
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            if await pending(http, urls) == 0:
                drained = True
                break
            await asyncio.sleep(0.5)
        total = time.monotonic() - started
    posts = slack.calls_to("chat.postMessage")
    seen = named(slack)
    tops = slack.messages(CHANNEL)
    digests = [m for m in tops if "Digest: " in m.text]
    return {
        "alerts": args.alerts,
        "replicas": len(urls),
        "webhook_statuses": dict(statuses),
        "sent_in_s": round(sent_in, 1),
        "drained": drained,
        "all_named_after_s": round(total, 1),
        "slack_posts": len(posts),
        "slack_posts_failed": sum(1 for c in posts if not c.ok),
        "posts_max_per_10s": max_per_window(posts),
        "top_level_messages": len(tops),
        "digests": len(digests),
        "thread_replies": sum(len(m.replies) for m in tops),
        "posts_by_replica": dict(
            sorted(Counter(str(c.args.get("username")) for c in posts).items())
        ),
        "alerts_named": len(seen & set(range(args.alerts))),
        "alerts_unnamed": args.alerts - len(seen & set(range(args.alerts))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--fsync", default="always", choices=["always", "everysec", "no"])
    args = parser.parse_args()
    with redis_server(args.fsync) as redis_url:
        result = asyncio.run(storm(args, redis_url))
    print(json.dumps(result, indent=2))
    sent = result["records_by_state"].get("sent", 0)
    ok = result["alerts_unnamed"] == 0 and sent == args.alerts
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
