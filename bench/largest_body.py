"""/healthz while the largest webhook the router accepts is being accepted.

Starts `alert-router serve` (SQLite, a `log` receiver) and posts, one after another,
`--bodies` webhooks of the largest size the defaults accept: 10,000 alerts in 100 groups
(just under `server.max_body_bytes`), each once the previous one's 100 notifications are
delivered; then as many refused ones (20,000 alerts: 413). Meanwhile a second connection
asks `/healthz` every 5 ms. Prints, as JSON, the accept times and the /healthz latencies
(p50, p99, max) while a body is being accepted, while its notifications are delivered,
and with no load at all, side by side in one run.

    python bench/largest_body.py --bodies 10
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

from bench.harness import free_port, peak_rss_mb, spawn, wait_ready  # noqa: E402

CONFIG = """
state: {{url: 'sqlite:///{tmp}/bench.db'}}
receivers: [{{name: stdout, log: {{}}}}]
route: {{receiver: stdout}}
"""


def body(alerts: int, groups: int, round_: int) -> bytes:
    """An Alertmanager-shaped body without groupKey: `groups` alert names, `alerts` alerts."""
    return json.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "bench",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": f"A{i % groups}", "i": f"{round_}-{i}"},
                    "startsAt": "2026-12-01T10:00:00Z",
                }
                for i in range(alerts)
            ],
        },
        separators=(",", ":"),
    ).encode()


def refused_body(round_: int) -> bytes:
    """20,000 alerts in under a megabyte: refused for its count, not its size."""
    alerts = [{"labels": {"alertname": f"A{i % 100}", "i": f"{round_}-{i}"}} for i in range(20_000)]
    return json.dumps({"version": "4", "alerts": alerts}, separators=(",", ":")).encode()


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def probe(
    http: aiohttp.ClientSession, url: str, stop: asyncio.Event
) -> list[tuple[float, float]]:
    """/healthz every 5 ms until `stop`: (when it was sent, how long the answer took)."""
    seen: list[tuple[float, float]] = []
    while not stop.is_set():
        started = time.perf_counter()
        async with http.get(url) as resp:
            await resp.read()
            assert resp.status == 200
        seen.append((started, time.perf_counter() - started))
        await asyncio.sleep(0.005)
    return seen


async def delivered(http: aiohttp.ClientSession, base: str, total: int) -> None:
    """Until `total` notifications are recorded and none is pending."""
    url = base + "/api/v1/notifications?limit=1&state=pending"
    async with asyncio.timeout(120):
        while True:
            async with http.get(base + "/metrics") as resp:
                text = await resp.text()
            attempted = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("alert_router_notifications_total{")
            )
            async with http.get(url) as resp:
                pending = (await resp.json())["notifications"]
            if attempted >= total and not pending:
                return
            await asyncio.sleep(0.1)


async def phase(
    posting: aiohttp.ClientSession,
    probing: aiohttp.ClientSession,
    base: str,
    bodies: list[bytes],
    expect: int,
) -> dict[str, Any]:
    stop = asyncio.Event()
    health = asyncio.create_task(probe(probing, base + "/healthz", stop))
    await asyncio.sleep(0.05)
    accepts = []
    windows = []
    for n, data in enumerate(bodies, start=1):
        started = time.perf_counter()
        async with posting.post(
            base + "/webhook/alertmanager",
            data=data,
            headers={"Content-Type": "application/json"},
        ) as resp:
            await resp.read()
            assert resp.status == expect, resp.status
        accepts.append(time.perf_counter() - started)
        windows.append((started, time.perf_counter()))
        if expect == 200:
            await delivered(posting, base, n * 100)
    stop.set()
    probes = await health
    during = [took for at, took in probes if any(a <= at <= b for a, b in windows)]
    after = [took for at, took in probes if not any(a <= at <= b for a, b in windows)]
    return {
        "accept": summary(accepts),
        "healthz_while_accepting": summary(during),
        "healthz_while_delivering": summary(after),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bodies", type=int, default=10)
    args = parser.parse_args()
    largest = [body(10_000, 100, n) for n in range(args.bodies)]
    refused = [refused_body(n) for n in range(args.bodies)]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        cfg = tmp / "routes.yaml"
        cfg.write_text(CONFIG.format(tmp=tmp))
        port = free_port()
        router = spawn(cfg, port)
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as posting, aiohttp.ClientSession() as probing:
                await wait_ready(probing, base + "/readyz", router)
                stop = asyncio.Event()
                quiet = asyncio.create_task(probe(probing, base + "/healthz", stop))
                await asyncio.sleep(2)
                stop.set()
                idle = summary([took for _, took in await quiet])
                accepted = await phase(posting, probing, base, largest, 200)
                too_large = await phase(posting, probing, base, refused, 413)
            print(
                json.dumps(
                    {
                        "body_bytes": {"largest": len(largest[0]), "refused": len(refused[0])},
                        "healthz_idle": idle,
                        "largest_accepted": accepted,
                        "refused_413": too_large,
                        "peak_rss_mb": round(peak_rss_mb(router.pid), 1),
                    },
                    indent=2,
                )
            )
        finally:
            router.terminate()
            router.wait(30)


if __name__ == "__main__":
    asyncio.run(main())
