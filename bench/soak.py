"""Soak: does `alert-router serve` keep a flat memory and a bounded database under load?

Starts `serve` (SQLite, or Redis on a `redis-server` of its own), sends a steady stream of
Alertmanager webhooks for `--minutes`, and prints every minute the server's RSS, the
database's size (SQLite file plus WAL, or Redis `used_memory`) and what is pending; at the
end, the RSS per minute and its growth over the last 20 minutes (or what the run had after
its warm-up minutes).

Modes (`--mode`):
  new     each webhook a new group of `--alerts` alerts (memory that grows per group);
  repeat  a fixed set of `--groups` groups, each alternately firing and resolved (the
          steady state of a real fleet: the same groups over and over);
  mixed   both, alternately.

    python bench/soak.py --store sqlite --minutes 30 --rate 50
    python bench/soak.py --store redis --mode repeat --minutes 10

`--keep-records` is short by default (10m), so the records' expiry runs during the soak
and the database's size shows whether freed space is reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import free_port, spawn  # noqa: E402
from load_alertmanager import CONFIG, metric, webhook  # noqa: E402
from load_replicas import redis_server, wait_ready  # noqa: E402

# Groups of the `new` stream are numbered from here, apart from the repeated set.
_NEW_BASE = 1_000_000
_PREFIX = "soak:"


def rss_mb(pid: int) -> float:
    """VmRSS: the process's resident set size now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def body(n: int, mode: str, alerts: int, groups: int) -> bytes:
    """The n-th webhook of the stream."""
    if mode == "new" or (mode == "mixed" and n % 2 == 0):
        return json.dumps(webhook(_NEW_BASE + n, alerts)).encode()
    turn = n // 2 if mode == "mixed" else n
    group, round_ = turn % groups, turn // groups
    payload = webhook(group, alerts)
    if round_ % 2:
        # Every other round the whole group resolves: a new notification, then a new firing.
        ended = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        payload["status"] = "resolved"
        for alert in payload["alerts"]:
            alert["status"], alert["endsAt"] = "resolved", ended
    return json.dumps(payload).encode()


class Store:
    """Where the served state lives, and how big it is."""

    def __init__(self, kind: str, url: str, db: Path | None) -> None:
        self.kind, self.url, self.db = kind, url, db

    def size_mb(self) -> float:
        if self.db is not None:
            files = [self.db, Path(f"{self.db}-wal")]
            return sum(f.stat().st_size for f in files if f.exists()) / 2**20
        client = redis.Redis.from_url(self.url)
        try:
            return int(client.info("memory")["used_memory"]) / 2**20
        finally:
            client.close()


@contextmanager
def state(kind: str, folder: Path) -> Iterator[Store]:
    if kind == "sqlite":
        db = folder / "soak.db"
        yield Store(kind, f"sqlite:///{db}", db)
        return
    # A server of its own: its used_memory is this service's alone.
    with redis_server("everysec") as url:
        yield Store(kind, url, None)


async def send(url: str, args: argparse.Namespace, stop_at: float, counts: Counter[str]) -> None:
    """Paced webhooks until `stop_at`, `args.concurrency` at a time at most."""
    slots = asyncio.Semaphore(args.concurrency)
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()

    async def one(session: aiohttp.ClientSession, data: bytes) -> None:
        try:
            async with session.post(
                f"{url}/webhook/alertmanager",
                data=data,
                headers={"Content-Type": "application/json"},
            ) as resp:
                await resp.read()
                counts["ok" if resp.status == 200 else f"status_{resp.status}"] += 1
        except aiohttp.ClientError:
            counts["errors"] += 1
        finally:
            slots.release()

    async with aiohttp.ClientSession() as session:
        n = 0
        while time.monotonic() < stop_at:
            due = start + n / args.rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            await slots.acquire()
            task = asyncio.create_task(one(session, body(n, args.mode, args.alerts, args.groups)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)
    counts["sent"] = n


async def watch(
    url: str, pid: int, store: Store, stop_at: float, samples: list[dict[str, Any]]
) -> None:
    """One sample a minute (and one at the start) until `stop_at`."""
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        minute = 0
        while True:
            sample = {
                "minute": minute,
                "rss_mb": round(rss_mb(pid), 1),
                "db_mb": round(store.size_mb(), 1),
                "pending": int(await metric(session, url, "alert_router_outbox_pending")),
                "delivered": int(await metric(session, url, "alert_router_notifications_total")),
            }
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            minute += 1
            wake = start + 60 * minute
            if wake > stop_at + 1:
                return
            await asyncio.sleep(max(0.0, wake - time.monotonic()))


def growth(samples: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """RSS growth over the last 20 minutes, or over what came after the warm-up."""
    rss = [s["rss_mb"] for s in samples]
    first = max(warmup, len(rss) - 1 - 20)
    if first >= len(rss) - 1:
        return {"over_minutes": 0, "rss_growth_mb": None}
    return {
        "over_minutes": len(rss) - 1 - first,
        "from_minute": first,
        "rss_growth_mb": round(rss[-1] - rss[first], 1),
    }


async def soak(url: str, pid: int, store: Store, args: argparse.Namespace) -> dict[str, Any]:
    counts: Counter[str] = Counter(ok=0, errors=0)
    samples: list[dict[str, Any]] = []
    stop_at = time.monotonic() + args.minutes * 60
    await asyncio.gather(send(url, args, stop_at, counts), watch(url, pid, store, stop_at, samples))
    return {
        "store": store.kind,
        "mode": args.mode,
        "rate": args.rate,
        "alerts": args.alerts,
        "minutes": args.minutes,
        "keep_records": args.keep_records,
        "requests": dict(counts),
        "rss_mb_per_minute": [s["rss_mb"] for s in samples],
        "db_mb_per_minute": [s["db_mb"] for s in samples],
        **growth(samples, args.warmup),
        "pending_at_end": samples[-1]["pending"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--mode", choices=("new", "repeat", "mixed"), default="mixed")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=50, help="webhooks per second")
    parser.add_argument("--alerts", type=int, default=10, help="alerts per webhook")
    parser.add_argument("--groups", type=int, default=500, help="groups of the repeat stream")
    parser.add_argument("--keep-records", default="10m", help="state.keep_records")
    parser.add_argument("--warmup", type=int, default=3, help="minutes left out of the growth")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, state(args.store, Path(tmp)) as store:
        config = CONFIG.replace(
            "url: sqlite:///{db}",
            f"url: '{store.url}'\n  key_prefix: '{_PREFIX}'\n  keep_records: {args.keep_records}",
        ).format()
        cfg = Path(tmp) / "routes.yaml"
        cfg.write_text(config)
        port = free_port()
        proc = spawn(cfg, port)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc)
            result = asyncio.run(soak(url, proc.pid, store, args))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        if proc.returncode not in (0, -15):
            print((Path(tmp) / "server.log").read_text()[-2000:], file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0 if result["requests"]["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
