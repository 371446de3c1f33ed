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
import itertools
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
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import cpu_seconds, free_port, peak_rss_mb, redis_server  # noqa: E402

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
def spawned_server(
    extra_config: str = "", *, state: str = "", checkout: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """Start `alert-router serve` on a free port with the log receiver, on SQLite unless
    `state` is another `state:` section body; `checkout` runs another copy of the code."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "routes.yaml"
        config = CONFIG.format(db=f"{tmp}/bench.db")
        if state:
            config = config.replace(f"url: sqlite:///{tmp}/bench.db", state)
        cfg.write_text(config + extra_config)
        out = Path(tmp) / "notifications.jsonl"
        port = free_port()
        env = dict(os.environ)
        if checkout is not None:
            env["PYTHONPATH"] = str(checkout)
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
                env=env,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                wait_port(port)
                yield url, proc, out
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def wait_port(port: int) -> None:
    """Until something listens on 127.0.0.1:port (20 s at most)."""
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)


async def metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"^{name}(\{{|\s)", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def total(session: aiohttp.ClientSession, urls: Sequence[str], name: str) -> float:
    """A metric summed over replicas."""
    return sum([await metric(session, url, name) for url in urls])


async def run_load(
    url: str | Sequence[str],
    rate: float,
    duration: float,
    alerts: int,
    duplicates: float,
    concurrency: int,
    token: str,
    *,
    deliveries: bool = True,
) -> dict[str, Any]:
    """Webhooks at `rate` per second (0: flat out) for `duration` seconds; with
    `deliveries`, then waits until the router delivered every one (a baseline endpoint
    delivers nothing and has no metrics). Several URLs (replicas of one service) share the
    connections, connection i going to URL i modulo their number."""
    urls = [url] if isinstance(url, str) else list(url)
    accepted = [0] * len(urls)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=concurrency * 4)
    rng = random.Random(7)
    unique = 0

    # Bodies are made before the clock starts: the generator shares this machine's CPU
    # with the server, and should spend it on requests, not on building JSON.
    expected = int(rate * duration) if rate > 0 else min(200_000, int(10_000 * duration))
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

    head = (
        "POST /webhook/alertmanager HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\n"
        + (f"Authorization: Bearer {token}\r\n" if token else "")
        + "Content-Length: {length}\r\n\r\n"
    )

    async def worker(replica: int) -> None:
        # A bare HTTP/1.1 keep-alive client: the generator shares the machine's two CPUs
        # with the server, and aiohttp's client would spend several times more of them.
        nonlocal errors
        host, _, port = urls[replica].removeprefix("http://").partition(":")
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
                accepted[replica] += status == 200
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    if not deliveries:
        start = time.perf_counter()
        await asyncio.gather(producer(), *(worker(i % len(urls)) for i in range(concurrency)))
        took = time.perf_counter() - start
        return summarize(latencies, statuses, errors, took) | {"unique_groups": unique}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        before = await total(session, urls, "alert_router_notifications_total")
        start = time.perf_counter()
        await asyncio.gather(producer(), *(worker(i % len(urls)) for i in range(concurrency)))
        took = time.perf_counter() - start
        # Wait for the outbox to drain, then compare delivered with accepted.
        drain_start = time.perf_counter()
        while time.perf_counter() - drain_start < 120:
            if await total(session, urls, "alert_router_outbox_pending") == 0:
                sent_total = await total(session, urls, "alert_router_notifications_total")
                if sent_total - before >= unique:
                    break
            await asyncio.sleep(0.25)
        delivered = await total(session, urls, "alert_router_notifications_total") - before
        suppressed = await total(session, urls, "alert_router_notifications_suppressed_total")
        latency_p99 = await histogram_quantile(session, urls[0], 0.99)
    row = summarize(latencies, statuses, errors, took) | {
        "unique_groups": unique,
        "delivered": int(delivered),
        "suppressed_duplicates": int(suppressed),
        "delivery_latency_p99_le_s": latency_p99,
        "drain_s": round(time.perf_counter() - drain_start, 2),
    }
    if len(urls) > 1:
        row["req_per_s_per_replica"] = [round(a / took, 1) for a in accepted]
    return row


def summarize(
    latencies: list[float], statuses: dict[int, int], errors: int, took: float
) -> dict[str, Any]:
    """Requests answered, webhooks/s (200s only) and the accept latency quantiles."""
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


def baseline(args: argparse.Namespace, load: dict[str, Any]) -> int:
    """The bare endpoint, the durable floor and the router under the same load, one after
    another; prints their rows and the router's ratios to both."""
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("bare", "floor"):
            port = free_port()
            argv = [sys.executable, str(ROOT / "bench" / "floor.py"), mode, "--port", str(port)]
            proc = subprocess.Popen([*argv, "--db", f"{tmp}/{mode}.db"])
            try:
                wait_port(port)
                rows[mode] = measured(
                    proc.pid, run_load(f"http://127.0.0.1:{port}", **load, deliveries=False)
                )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    checkouts = [("router", None), *((f"router@{c}", Path(c)) for c in args.compare)]
    with redis_state(args.store, args.redis_fsync) as state:
        for name, checkout in checkouts:
            with spawned_server(state=state(), checkout=checkout) as (url, proc, out):
                rows[name] = measured(proc.pid, run_load(url, **load))
                time.sleep(0.5)
                rows[name]["log_lines"] = sum(1 for _ in out.open("rb"))
    print(
        f"store: {args.store}, rate: {args.rate or 'flat out'}, {args.concurrency} connections,"
        f" {args.duration:g} s, {args.alerts} alerts per webhook"
    )
    print(
        f"{'endpoint':28} {'webhooks/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>9}  delivered"
    )
    lost = 0
    for name, row in rows.items():
        told = ""
        if "delivered" in row:
            told = f"{row['delivered']}/{row['unique_groups']} ({row['log_lines']} log lines)"
            lost += max(0, row["unique_groups"] - row["log_lines"]) + row["errors"]
        print(
            f"{name:28} {row['req_per_s']:10.1f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}"
            f" {row['cpu_ms_per_webhook']:9.2f}  {told}"
        )
    for name, _ in checkouts:
        r, floor, bare = rows[name], rows["floor"], rows["bare"]
        print(
            f"{name}: {r['req_per_s'] / floor['req_per_s']:.2f}x floor,"
            f" {r['req_per_s'] / bare['req_per_s']:.2f}x bare;"
            f" p50 {r['p50_ms'] / floor['p50_ms']:.2f}x, p99 {r['p99_ms'] / floor['p99_ms']:.2f}x"
            " the floor's;"
            f" CPU per webhook {r['cpu_ms_per_webhook'] / floor['cpu_ms_per_webhook']:.2f}x"
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if lost == 0 else 1


def measured(pid: int, load: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """The load's figures and the server's CPU time per accepted webhook (delivery
    included): unlike webhooks/s, barely moved by whatever else runs on the machine."""
    before = cpu_seconds(pid)
    row = asyncio.run(load)
    row["cpu_ms_per_webhook"] = (cpu_seconds(pid) - before) * 1000 / max(1, row["ok"])
    return row


@contextmanager
def redis_state(store: str, fsync: str) -> Iterator[Callable[[], str]]:
    """What a router's `state:` section says for `store`: "" (SQLite, the default), or a
    fresh prefix on a throwaway redis-server (append-only; fsync `always` is as durable
    as SQLite's synchronous=FULL) for each call."""
    if store == "sqlite":
        yield lambda: ""
        return
    runs = itertools.count()
    with redis_server(fsync) as url:
        yield lambda: f"url: '{url}'\n  key_prefix: 'bench{next(runs)}:'"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", help="an already running alert-router (default: start one)")
    parser.add_argument(
        "--rate",
        type=float,
        help="webhooks per second, 0: flat out (default 500; 0 with --baseline)",
    )
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--alerts", type=int, default=10, help="alerts per webhook")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of duplicate webhooks")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--token", default=os.environ.get("ALERTMANAGER_TOKEN", ""))
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="bare aiohttp, the durable floor (bench/floor.py) and the router, one after another",
    )
    parser.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument(
        "--redis-fsync",
        choices=["always", "everysec", "no"],
        default="always",
        help="with --store redis: its appendfsync (always: as durable as the floor)",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="CHECKOUT",
        help="with --baseline: also a router run from this checkout (e.g. main), same run",
    )
    parser.add_argument("--json", action="store_true", help="with --baseline: every figure")
    args = parser.parse_args()
    if args.rate is None:
        args.rate = 0.0 if args.baseline else 500.0
    load = dict(
        rate=args.rate,
        duration=args.duration,
        alerts=args.alerts,
        duplicates=args.duplicates,
        concurrency=args.concurrency,
        token=args.token,
    )
    if args.baseline:
        return baseline(args, load)
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
