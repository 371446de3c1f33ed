"""Takeover after kill -9: how long the work of a dead replica waits for the survivors.

Starts its own `redis-server` (append-only, fsync always) and two fake Slacks in this
process. Each run, on a fresh key prefix: one replica (`alert-router serve`) posting to a
Slack that never answers accepts `--pending` webhooks (one group each) and claims them
all (one post in flight, the rest queued for the channel); two more replicas, posting to
a Slack that answers, start; the first is killed with SIGKILL. The run's figure is the
time from the kill until the survivors have posted every group (and the first one), and
how many groups were posted more than once. Prints median and worst of `--runs` as JSON.

    python bench/load_takeover.py                      # 10 runs, default lease settings
    python bench/load_takeover.py --runs 3 --lease 30s --lease-renew 10s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import statistics
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

from bench.harness import free_port, spawn  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

CHANNEL = "#prod-alerts"
CONFIG = """
state: {{url: '{state_url}', key_prefix: '{prefix}'}}
server: {{shutdown_grace: 1s}}
slack: {{per_channel_interval: 0.01, digest_threshold: 100000}}
receivers:
  - name: slack
    slack: {{token: {token}, channel: '{channel}', api_url: '{api_url}', username: {name}}}
route: {{receiver: slack, repeat_interval: 1h}}
"""


def webhook(run: int, n: int) -> dict[str, Any]:
    group = f"run{run}-grp{n}"
    return {
        "version": "4",
        "groupKey": group,
        "receiver": "alert-router",
        "status": "firing",
        "groupLabels": {"alertname": group},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": group, "severity": "critical"},
                "annotations": {"summary": f"{group} is failing"},
                "startsAt": "2026-11-26T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp-{group}",
            }
        ],
    }


class Replica:
    def __init__(self, home: Path, name: str, slack: FakeSlack, state_url: str, prefix: str):
        home.mkdir(parents=True)
        self.config = home / "routes.yaml"
        self.config.write_text(
            CONFIG.format(
                state_url=state_url,
                prefix=prefix,
                token=slack.token,
                channel=CHANNEL,
                api_url=slack.api_url,
                name=name,
            )
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.proc = spawn(self.config, self.port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"replica exited at start: see {self.config.parent}/server.log")
            try:
                async with http.get(self.url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise SystemExit("replica did not become ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def leases(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}lease:*"))
    finally:
        client.close()


def groups_posted(slack: FakeSlack, run: int) -> list[tuple[str, float]]:
    """(group, arrival) of each answered post of this run, in arrival order."""
    found = []
    for call in slack.calls_to("chat.postMessage"):
        match = re.search(rf"run{run}-grp\d+", str(call.args.get("text", "")))
        if match and call.ok:
            found.append((match.group(0), call.at))
    return found


async def one_run(
    run: int,
    tmp: Path,
    state_url: str,
    hanging: FakeSlack,
    answering: FakeSlack,
    args: argparse.Namespace,
) -> dict[str, Any]:
    prefix = f"takeover{run}:"
    home = tmp / f"run{run}"
    victim = Replica(home / "victim", "victim", hanging, state_url, prefix)
    survivors = [
        Replica(home / f"survivor{i}", f"survivor{i}", answering, state_url, prefix) for i in (1, 2)
    ]
    async with aiohttp.ClientSession() as http:
        try:
            await victim.start(http)
            for n in range(args.pending):
                async with http.post(
                    victim.url + "/webhook/alertmanager", json=webhook(run, n)
                ) as resp:
                    assert resp.status == 200, resp.status
            deadline = time.monotonic() + 30
            while leases(state_url, prefix) < args.pending:
                assert time.monotonic() < deadline, "the victim did not claim everything"
                await asyncio.sleep(0.05)
            await asyncio.gather(*(s.start(http) for s in survivors))
            victim.stop(signal.SIGKILL)
            killed = time.monotonic()
            while len({g for g, _ in groups_posted(answering, run)}) < args.pending:
                if time.monotonic() - killed > args.give_up:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.0)  # a second post of a group would have come by now
            posted = groups_posted(answering, run)
        finally:
            victim.stop(signal.SIGKILL)
            for survivor in survivors:
                survivor.stop()
    first: dict[str, float] = {}
    for group, at in posted:
        first.setdefault(group, at)
    counts = Counter(g for g, _ in posted)
    return {
        "all_s": round(max(first.values()) - killed, 2) if len(first) == args.pending else None,
        "first_s": round(min(first.values()) - killed, 2) if first else None,
        "delivered": len(first),
        "posted_twice": sum(1 for c in counts.values() if c > 1),
    }


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "worst": round(max(values), 2)}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="takeover-") as tmp_dir:
        tmp = Path(tmp_dir)
        server = RedisServer(tmp / "redis")
        server.start()
        query = "&".join(
            f"{k}={v}" for k, v in (("lease", args.lease), ("lease_renew", args.lease_renew)) if v
        )
        state_url = server.url + (f"?{query}" if query else "")
        runs = []
        try:
            async with FakeSlack() as hanging, FakeSlack() as answering:
                hanging.delay("chat.postMessage", 3600.0)
                for run in range(args.runs):
                    result = await one_run(run, tmp, state_url, hanging, answering, args)
                    print(json.dumps({"run": run, **result}), file=sys.stderr)
                    runs.append(result)
        finally:
            server.stop()
    complete = [r["all_s"] for r in runs if r["all_s"] is not None]
    return {
        "runs": args.runs,
        "pending_on_the_killed_replica": args.pending,
        "lease": args.lease or "default (15s)",
        "lease_renew": args.lease_renew or "default (5s)",
        "every_item_delivered_s": summary(complete) if complete else None,
        "first_item_delivered_s": summary([r["first_s"] for r in runs if r["first_s"]]),
        "runs_missing_items": sum(1 for r in runs if r["all_s"] is None),
        "groups_posted_twice": sum(r["posted_twice"] for r in runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pending", type=int, default=5, help="work held by the killed one")
    parser.add_argument(
        "--lease", default="", help="state.lease (e.g. 15s); default: the service's"
    )
    parser.add_argument("--lease-renew", default="", help="state.lease_renew")
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds to wait per run")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
