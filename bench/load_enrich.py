"""End-to-end latency with enrichment: webhook accepted -> message at the fake Slack.

Starts a fake Loki (answering after `--loki-delay`, or never with `--loki-hang`) and a fake
Slack in this process, and `alert-router serve` as a subprocess routing every alert to one
Slack channel with Loki enrichment on. Posts `--rate` webhooks per second (one alert each,
distinct groups) and prints the p50/p99 of the time from the 200 answer to the
`chat.postMessage` at the fake Slack.

    python bench/load_enrich.py --rate 50 --duration 20 --loki-delay 0.02
    python bench/load_enrich.py --rate 50 --duration 20 --loki-hang --timeout 2s

Slack pacing is set far below Slack's one post per second per channel so the number
measured is the pipeline's latency, not the pacer's queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, spawn  # noqa: E402
from tests.fakes.loki import FakeLoki  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

CONFIG = """
state: {{url: 'sqlite:///{tmp}/bench.db'}}
slack: {{per_channel_interval: 0.001, digest_threshold: 100000}}
enrich:
  loki:
    url: {loki}
    query: '{{namespace="{{{{ labels.namespace }}}}", app="{{{{ labels.app }}}}"}} |= "error"'
    lookback: 15m
    max_lines: 15
    timeout: {timeout}
  grafana: {{url: 'https://grafana.example.com', loki_datasource_uid: loki}}
receivers:
  - name: slack
    slack: {{token: {token}, channel: '#prod-alerts', api_url: '{slack}'}}
route:
  receiver: slack
"""


def webhook(n: int) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": f"bench-{n}",
        "receiver": "alert-router",
        "status": "firing",
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HighErrorRate",
                    "severity": "critical",
                    "namespace": "prod",
                    "app": f"app-{n % 1000}",
                    "pod": f"pod-{n}",
                },
                "annotations": {"summary": f"error rate above 5% [b{n}]"},
                "startsAt": now,
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{n:016x}",
            }
        ],
    }
    return json.dumps(body).encode()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    async with FakeLoki() as loki, FakeSlack() as slack:
        now_ns = time.time_ns()
        for app in range(1000):
            for i in range(15):
                loki.push(
                    {"namespace": "prod", "app": f"app-{app}"},
                    now_ns - (600 - i * 10) * 10**9,
                    f"error: request {i} failed: upstream timed out " + "x" * 120,
                )
        loki.delay = 3600.0 if args.loki_hang else args.loki_delay
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "routes.yaml"
            cfg.write_text(
                CONFIG.format(
                    tmp=tmp,
                    loki=loki.url,
                    timeout=args.timeout,
                    token=slack.token,
                    slack=slack.api_url,
                )
            )
            port = free_port()
            proc = spawn(cfg, port)
            try:
                return await run(args, f"http://127.0.0.1:{port}", slack)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


async def run(args: argparse.Namespace, url: str, slack: FakeSlack) -> dict[str, Any]:
    accepted: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        total = int(args.rate * args.duration)
        bodies = [webhook(n) for n in range(total)]

        async def post(n: int) -> None:
            async with http.post(
                url + "/webhook/alertmanager",
                data=bodies[n],
                headers={"Content-Type": "application/json"},
            ) as resp:
                assert resp.status == 200, resp.status
                accepted[f"[b{n}]"] = time.monotonic()

        start = time.monotonic()
        tasks = []
        for n in range(total):
            due = start + n / args.rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            tasks.append(asyncio.create_task(post(n)))
        await asyncio.gather(*tasks)
        wait_until = time.monotonic() + 30
        # The fake records calls; it has no event to wait on.
        while len(slack.calls_to("chat.postMessage")) < total and time.monotonic() < wait_until:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    latencies = []
    for call in slack.calls_to("chat.postMessage"):
        text = str(call.args.get("text", ""))
        start_at = text.find("[b")
        tag = text[start_at : text.find("]", start_at) + 1] if start_at >= 0 else ""
        if tag in accepted:
            latencies.append(call.at - accepted[tag])
    latencies.sort()
    return {
        "webhooks": total,
        "slack_messages": len(slack.calls_to("chat.postMessage")),
        "matched": len(latencies),
        "loki": "hanging" if args.loki_hang else f"{args.loki_delay * 1000:.0f} ms",
        "loki_timeout": args.timeout,
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1)
        if latencies
        else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--loki-delay", type=float, default=0.02)
    parser.add_argument("--loki-hang", action="store_true")
    parser.add_argument("--timeout", default="2s", help="enrich.loki.timeout")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))
    return 0 if result["slack_messages"] == result["webhooks"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
