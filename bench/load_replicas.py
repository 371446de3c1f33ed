"""Replicas on Redis against one replica on SQLite, and Redis memory under new alerts.

Starts its own `redis-server` on a free port (append-only file, `--appendfsync always` by
default, so an acknowledged webhook is on disk as with SQLite's synchronous=FULL), then:

1. throughput: the core benchmark's load (`load_alertmanager.run_load`) against one replica
   on SQLite and one on Redis, and the same load with its connections spread over three
   replicas on Redis: flat out, then paced at 70% of SQLite's flat-out rate and at `--rates`; a
   fresh service and empty state per run; requests/s, p50/p99 webhook latency, and whether
   everything was delivered;
2. memory: `--memory-alerts` distinct alerts (`--alerts` per webhook, each webhook its own
   group) through one replica with `keep_records` shortened on the URL; Redis
   `used_memory` before, after delivery, after the service's own expiry of the records
   (its maintenance runs every minute), and after an `expire()` run at a time when the
   notification-log entries (kept at least a day) have expired too.

    python bench/load_replicas.py                       # everything, ~10 minutes
    python bench/load_replicas.py --skip-memory --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import free_port, redis_server  # noqa: E402
from load_alertmanager import (  # noqa: E402
    CONFIG,
    run_load,
    spawned_server,
    total,
    webhook,
)

from router.store.redis import RedisStore  # noqa: E402

PREFIX = "bench:"


@contextmanager
def replicas(state_url: str, count: int, extra: str = "") -> Iterator[list[str]]:
    """`count` `alert-router serve` processes on one Redis prefix, the core benchmark's
    routes and log receiver; yields their base URLs."""
    # The core benchmark's routes and receiver, with the state on Redis.
    state = f"url: '{state_url}'\n  key_prefix: '{PREFIX}'"
    config = CONFIG.replace("url: sqlite:///{db}", state).format()
    with tempfile.TemporaryDirectory() as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        urls: list[str] = []
        try:
            for i in range(count):
                home = Path(tmp) / f"replica-{i}"
                home.mkdir()
                cfg = home / "routes.yaml"
                cfg.write_text(config + extra)
                port = free_port()
                with (home / "out.jsonl").open("wb") as out, (home / "err.log").open("wb") as err:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "router", "serve", "--config", str(cfg)]
                            + ["--host", "127.0.0.1", "--port", str(port)],
                            stdout=out,
                            stderr=err,
                            cwd=home,
                        )
                    )
                urls.append(f"http://127.0.0.1:{port}")
            for url, proc in zip(urls, procs, strict=True):
                wait_ready(url, proc)
            yield urls
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    host, port = url.rsplit("/", 1)[-1].split(":")
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited at start: see its err.log")
        try:
            with socket.create_connection((host, int(port)), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not start")


def used_memory(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    try:
        info = client.info("memory")
        return {"used_memory_mb": round(info["used_memory"] / 1e6, 2), "keys": client.dbsize()}
    finally:
        client.close()


async def pending(urls: list[str]) -> float:
    async with aiohttp.ClientSession() as session:
        return await total(session, urls, "alert_router_outbox_pending")


def memory_run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Redis memory through a stream of distinct alerts and after their expiry."""
    keep = args.keep_records
    result: dict[str, Any] = {"baseline": used_memory(url)}
    webhooks = args.memory_alerts // args.alerts
    # A short repeat interval as a team with a fast stream would set; log entries still
    # live at least a day (dedup.MIN_ENTRY_TTL).
    extra = "  repeat_interval: 1m\n"
    with replicas(f"{url}?keep_records={keep}s", 1, extra) as urls:
        load = asyncio.run(run_count(urls, webhooks, args.alerts, args.concurrency))
        result["load"] = load
        result["after_delivery"] = used_memory(url)
        # The worker's maintenance (every 60 s) expires records older than keep_records.
        time.sleep(keep + 65)
        result[f"after_{keep}s_keep_records"] = used_memory(url)
    store = RedisStore(url, key_prefix=PREFIX, keep_records=keep)

    async def later() -> int:
        await store.open()
        try:
            # Two days on, past every notification-log entry's expiry (one day at least).
            return await store.expire(time.time() + 2 * 86400)
        finally:
            await store.close()

    result["expired_two_days_later"] = asyncio.run(later())
    result["after_log_entries_expired"] = used_memory(url)
    return result


async def run_count(
    urls: list[str], webhooks: int, alerts: int, concurrency: int
) -> dict[str, Any]:
    """Send exactly `webhooks` distinct webhooks (new groups) and wait for delivery."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(webhooks):
        queue.put_nowait(n)
    statuses: dict[int, int] = {}
    start = time.perf_counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = json.dumps(webhook(1_000_000 + n, alerts)).encode()
            async with session.post(
                f"{urls[n % len(urls)]}/webhook/alertmanager",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    took = time.perf_counter() - start
    while True:
        if await pending(urls) == 0:
            break
        await asyncio.sleep(0.5)
    return {
        "webhooks": webhooks,
        "alerts": webhooks * alerts,
        "statuses": statuses,
        "seconds": round(took, 1),
    }


def flush(url: str) -> None:
    """Empty the bench's Redis: each run starts from nothing, as the SQLite runs do."""
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def core(url: str | list[str], rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """One run of the core benchmark (`load_alertmanager.run_load`) against `url`."""
    return asyncio.run(
        run_load(url, rate, args.duration, args.alerts, 0.0, args.concurrency, token="")
    )


def one_run(setup: str, redis_url: str, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """A fresh service (and empty state) for `setup`, loaded at `rate` (0: flat out)."""
    if setup == "sqlite_1":
        with spawned_server() as (url, _, _):
            return core(url, rate, args)
    flush(redis_url)
    count = int(setup.rsplit("_", 1)[1])
    with replicas(redis_url, count) as urls:
        return core(urls[0] if count == 1 else urls, rate, args)


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Flat out, then paced (at `--paced-share` of the SQLite replica's flat-out rate and at
    each of `--rates`), for 1 replica on SQLite, 1 on Redis and 3 on Redis."""
    setups = ("sqlite_1", "redis_1", "redis_3")
    runs: dict[str, dict[str, Any]] = {setup: {} for setup in setups}
    summary: list[str] = []
    with redis_server(args.fsync) as redis_url:
        for setup in setups:
            runs[setup]["flat_out"] = one_run(setup, redis_url, 0.0, args)
        share = round(args.paced_share * runs["sqlite_1"]["flat_out"]["req_per_s"])
        rates = sorted({share, *args.rates})
        for rate in rates:
            for setup in setups:
                runs[setup][f"paced_{rate}"] = one_run(setup, redis_url, float(rate), args)
    for setup in setups:
        for name, run in runs[setup].items():
            summary.append(
                f"{setup:9} {name:11} {run['req_per_s']:7.1f} webhooks/s"
                + (" in total" if "req_per_s_per_replica" in run else "")
                + f"  p50 {run['p50_ms']:7.2f} ms  p99 {run['p99_ms']:7.2f} ms"
                f"  delivered {run['delivered']}/{run['unique_groups']}"
                + (
                    f"  per replica {run['req_per_s_per_replica']} webhooks/s"
                    if "req_per_s_per_replica" in run
                    else ""
                )
            )
    flat = {setup: runs[setup]["flat_out"]["req_per_s"] for setup in setups}
    return {
        "summary": summary,
        "redis_1_vs_sqlite_1_flat_out": round(flat["redis_1"] / flat["sqlite_1"], 2),
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--alerts", type=int, default=10, help="alerts per webhook")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--paced-share", type=float, default=0.7)
    parser.add_argument(
        "--rates",
        type=lambda v: [int(r) for r in v.split(",") if r],
        default=[100],
        help="more paced rates, comma-separated",
    )
    parser.add_argument("--fsync", default="always", choices=["always", "everysec", "no"])
    parser.add_argument("--memory-alerts", type=int, default=100_000)
    parser.add_argument("--keep-records", type=int, default=20, help="seconds, memory run")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"redis_appendfsync": args.fsync}
    if not args.skip_throughput:
        report["throughput"] = throughput(args)
    if not args.skip_memory:
        with redis_server(args.fsync) as redis_url:
            report["memory"] = memory_run(redis_url, args)
    print(json.dumps(report, indent=2))
    # The throughput table again, readable, below the figures.
    for line in report.get("throughput", {}).get("summary", []):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
