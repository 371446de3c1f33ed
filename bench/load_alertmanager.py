"""Load generator: realistic Alertmanager webhooks against alert-router; prints numbers.

By default it starts its own `alert-router serve` (SQLite, log receiver to a file) so it can
also report the server's peak RSS and check that every accepted notification was delivered:

    python bench/load_alertmanager.py --rate 500 --duration 30
    python bench/load_alertmanager.py --url http://127.0.0.1:8080 --rate 200   # existing server

Each webhook carries `--alerts` alerts with distinct fingerprints in a group of its own;
`--duplicates 0.5` re-sends half of them as they were (an HA pair's twin webhooks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, peak_rss_mb  # noqa: E402

CONFIG = """
state:
  url: sqlite:///{db}
receivers:
  - name: stdout
    log: {{}}
route:
  receiver: stdout
  routes:
    - matchers: ['env="prod"', 'severity="critical"']
      receiver: stdout
"""


def webhook(n: int, alerts: int) -> dict[str, Any]:
    """Alertmanager v4 webhook for group `n` with `alerts` firing alerts."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
    group = f"HighErrorRate-{n}"
    return {
        "version": "4",
        "groupKey": f'{{}}/{{env="prod"}}:{{alertname="{group}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "alert-router",
        "groupLabels": {"alertname": group},
        "commonLabels": {"alertname": group, "env": "prod", "severity": "critical"},
        "commonAnnotations": {"summary": "Error rate above 5%"},
        "externalURL": "http://alertmanager.monitoring:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": group,
                    "env": "prod",
                    "severity": "critical",
                    "namespace": "prod",
                    "app": "backend",
                    "pod": f"backend-{n}-{i}",
                    "instance": f"10.0.{n % 250}.{i}:8080",
                },
                "annotations": {
                    "summary": "Error rate above 5%",
                    "description": f"backend-{n}-{i} answers 7.2% of requests with 5xx",
                    "runbook_url": "https://runbooks.example.com/high-error-rate",
                },
                "startsAt": now,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=rate",
                "fingerprint": f"{n:010x}{i:06x}",
            }
            for i in range(alerts)
        ],
    }


@contextmanager
def spawned_server(extra_config: str = "") -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """Start `alert-router serve` on a free port with SQLite and the log receiver."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "routes.yaml"
        cfg.write_text(CONFIG.format(db=f"{tmp}/bench.db") + extra_config)
        out = Path(tmp) / "notifications.jsonl"
        port = free_port()
        with out.open("wb") as sink, open(Path(tmp) / "server.log", "wb") as errlog:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "router",
                    "serve",
                    "--config",
                    str(cfg),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                stdout=sink,
                stderr=errlog,
                cwd=tmp,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                deadline = time.time() + 20
                while time.time() < deadline:
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                            break
                    except OSError:
                        time.sleep(0.05)
                yield url, proc, out
            finally:
                proc.terminate()
                proc.wait(timeout=30)


async def metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"^{name}(\{{|\s)", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def run_load(
    url: str,
    rate: float,
    duration: float,
    alerts: int,
    duplicates: float,
    concurrency: int,
    token: str,
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=concurrency * 4)
    rng = random.Random(7)
    unique = 0

    # Bodies are made before the clock starts: the generator shares this machine's CPU
    # with the server, and should spend it on requests, not on building JSON.
    expected = int(rate * duration) if rate > 0 else 200_000
    bodies: list[tuple[bytes, bool]] = []
    last: bytes | None = None
    made = 0
    for _ in range(expected):
        if last is not None and rng.random() < duplicates:
            bodies.append((last, False))
        else:
            last = json.dumps(webhook(made, alerts)).encode()
            made += 1
            bodies.append((last, True))

    async def producer() -> None:
        nonlocal unique
        start = time.perf_counter()
        for sent, (body, new) in enumerate(bodies):
            elapsed = time.perf_counter() - start
            if elapsed >= duration:
                break
            if rate > 0:
                due = sent / rate
                if due > elapsed:
                    await asyncio.sleep(due - elapsed)
            await queue.put(body)
            unique += new
        for _ in range(concurrency):
            await queue.put(None)

    host, _, port = url.removeprefix("http://").partition(":")
    head = (
        "POST /webhook/alertmanager HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\n"
        + (f"Authorization: Bearer {token}\r\n" if token else "")
        + "Content-Length: {length}\r\n\r\n"
    )

    async def worker() -> None:
        # A bare HTTP/1.1 keep-alive client: the generator shares the machine's two CPUs
        # with the server, and aiohttp's client would spend several times more of them.
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port or 80))
        try:
            while (body := await queue.get()) is not None:
                t = time.perf_counter()
                writer.write(head.format(host=host, length=len(body)).encode() + body)
                try:
                    status_line = await reader.readline()
                    length = 0
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    await reader.readexactly(length)
                    status = int(status_line.split()[1])
                except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port or 80))
                    continue
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        before = await metric(session, url, "alert_router_notifications_total")
        start = time.perf_counter()
        await asyncio.gather(producer(), *(worker() for _ in range(concurrency)))
        took = time.perf_counter() - start
        # Wait for the outbox to drain, then compare delivered with accepted.
        drain_start = time.perf_counter()
        while time.perf_counter() - drain_start < 120:
            if await metric(session, url, "alert_router_outbox_pending") == 0:
                sent_total = await metric(session, url, "alert_router_notifications_total")
                if sent_total - before >= unique:
                    break
            await asyncio.sleep(0.25)
        delivered = await metric(session, url, "alert_router_notifications_total") - before
        suppressed = await metric(session, url, "alert_router_notifications_suppressed_total")
        latency_p99 = await histogram_quantile(session, url, 0.99)
    latencies.sort()
    ok = statuses.get(200, 0)
    return {
        "requests": len(latencies) + errors,
        "ok": ok,
        "statuses": statuses,
        "errors": errors,
        "seconds": round(took, 2),
        "req_per_s": round(ok / took, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "unique_groups": unique,
        "delivered": int(delivered),
        "suppressed_duplicates": int(suppressed),
        "delivery_latency_p99_le_s": latency_p99,
        "drain_s": round(time.perf_counter() - drain_start, 2),
    }


async def histogram_quantile(session: aiohttp.ClientSession, url: str, q: float) -> float | None:
    """Upper bucket bound holding quantile q of alert_router_notification_latency_seconds."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        m = re.match(
            r'^alert_router_notification_latency_seconds_bucket\{.*le="([^"]+)".*\} (\S+)', line
        )
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0.0) + float(m.group(2))
    if not buckets:
        return None
    total = buckets[float("inf")]
    for le in sorted(buckets):
        if buckets[le] >= q * total:
            return le
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", help="an already running alert-router (default: start one)")
    parser.add_argument("--rate", type=float, default=500, help="webhooks per second (0: flat out)")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--alerts", type=int, default=10, help="alerts per webhook")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of duplicate webhooks")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--token", default=os.environ.get("ALERTMANAGER_TOKEN", ""))
    args = parser.parse_args()
    load = dict(
        rate=args.rate,
        duration=args.duration,
        alerts=args.alerts,
        duplicates=args.duplicates,
        concurrency=args.concurrency,
        token=args.token,
    )
    if args.url:
        result = asyncio.run(run_load(args.url, **load))  # type: ignore[arg-type]
    else:
        with spawned_server() as (url, proc, out):
            result = asyncio.run(run_load(url, **load))  # type: ignore[arg-type]
            result["peak_rss_mb"] = round(peak_rss_mb(proc.pid), 1)
            time.sleep(0.5)
            result["log_lines"] = sum(1 for _ in out.open("rb"))
    result["lost"] = result["unique_groups"] - result["delivered"]
    print(json.dumps(result, indent=2))
    return 0 if result["lost"] <= 0 and result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
