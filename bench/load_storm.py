"""Alert storm to one Slack channel: pacing, digests, memory, and nothing lost.

Starts a fake Slack in this process and `alert-router serve` (SQLite) as a subprocess,
then sends `--alerts` alerts in distinct groups within `--seconds` to one channel. Prints
how many Slack posts that became (at most about one per second), the server's peak RSS,
and checks in the state database that every notification ended `sent`, on its own or in
a digest.

    python bench/load_storm.py --alerts 10000 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, peak_rss_mb, spawn  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

CONFIG = """
state: {{url: 'sqlite:///{tmp}/storm.db'}}
receivers:
  - name: slack
    slack: {{token: {token}, channel: '#prod-alerts', api_url: '{slack}'}}
route:
  receiver: slack
"""


def states(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT state, count(*) FROM notifications GROUP BY state")
        return {state: count for state, count in rows}


def digested(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM notifications WHERE delivered_in != ''")
        return int(row.fetchone()[0])


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


async def storm(args: argparse.Namespace) -> dict[str, Any]:
    async with FakeSlack() as slack:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "routes.yaml"
            cfg.write_text(CONFIG.format(tmp=tmp, token=slack.token, slack=slack.api_url))
            port = free_port()
            proc = spawn(cfg, port)
            url = f"http://127.0.0.1:{port}"
            try:
                async with aiohttp.ClientSession() as http:
                    await ready(http, url)
                    started = time.monotonic()
                    bodies = [body(n) for n in range(args.alerts)]
                    rate = args.alerts / args.seconds
                    sem = asyncio.Semaphore(32)

                    async def post(n: int) -> None:
                        async with (
                            sem,
                            http.post(
                                url + "/webhook/alertmanager",
                                data=bodies[n],
                                headers={"Content-Type": "application/json"},
                            ) as resp,
                        ):
                            assert resp.status == 200

                    tasks = []
                    for n in range(args.alerts):
                        due = started + n / rate
                        if due > time.monotonic():
                            await asyncio.sleep(due - time.monotonic())
                        tasks.append(asyncio.create_task(post(n)))
                    await asyncio.gather(*tasks)
                    sent_in = time.monotonic() - started
                    drained = await drain(http, url)
                    total = time.monotonic() - started
                rss = peak_rss_mb(proc.pid)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            db = Path(tmp) / "storm.db"
            by_state = states(db)
            in_digests = digested(db)
    posts = slack.calls_to("chat.postMessage")
    times = sorted(c.at for c in posts)
    span = (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {
        "alerts": args.alerts,
        "sent_in_s": round(sent_in, 1),
        "drained": drained,
        "total_s": round(total, 1),
        "slack_posts": len(posts),
        "posts_per_s": round(len(posts) / span, 2) if span else None,
        "records_by_state": by_state,
        "delivered_in_digests": in_digests,
        "peak_rss_mb": round(rss, 1),
    }


async def ready(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(400):
        try:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("server did not become ready")


async def drain(http: aiohttp.ClientSession, url: str) -> bool:
    for _ in range(1200):
        async with http.get(url + "/metrics") as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith("alert_router_outbox_pending ") and float(line.split()[1]) == 0:
                return True
        await asyncio.sleep(0.25)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    result = asyncio.run(storm(args))
    print(json.dumps(result, indent=2))
    lost = args.alerts - result["records_by_state"].get("sent", 0)
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
