"""The 30-day insights page and API over the rollups of a million records, on both stores.

Writes the hourly and daily rollups that `--records` finished records (default 1,000,000)
spread over 30 days would leave (through the stores' own `add_rollups`, one call per hour
of aggregated counts: the records themselves are not needed to read insights): 400
alertnames, 24 receivers, 12 teams, 4 severities, a third of the records resolving an
episode, one in ten acknowledged. Then starts `alert-router serve` on each store and times
`GET /api/v1/insights?since=30d` and `GET /ui/insights?since=30d`:

    python bench/insights.py                      # SQLite and Redis (127.0.0.1:6379)
    python bench/insights.py --store sqlite --runs 20

Target: p99 < 300 ms for each, on each store.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, spawn, wait_ready  # noqa: E402
from router.store.protocols import Store  # noqa: E402
from router.store.redis import RedisStore  # noqa: E402
from router.store.rollup import BOUNDS, COLUMNS, DAY, HOUR, INDEX, Key  # noqa: E402
from router.store.sqlite import SQLiteStore  # noqa: E402

ALERTNAMES = [f"Alert{i:03d}" for i in range(400)]
RECEIVERS = [f"recv-{i:02d}" for i in range(24)]
TEAMS = [f"team-{i:02d}" for i in range(12)]
SEVERITIES = ["critical", "warning", "warning", "info"]


def _add(counts: dict[Key, list[int]], key: Key, column: str) -> None:
    row = counts.get(key)
    if row is None:
        row = counts[key] = [0] * len(COLUMNS)
    row[INDEX[column]] += 1


def generate(records: int, now: float, seed: int = 7) -> dict[int, dict[Key, list[int]]]:
    """Per hour, the counts `records` finished records would have added."""
    rng = random.Random(seed)
    start = int(now - 30 * DAY) // HOUR * HOUR
    hours: dict[int, dict[Key, list[int]]] = {}
    weights = [1 / (i + 1) for i in range(len(ALERTNAMES))]
    names = rng.choices(ALERTNAMES, weights=weights, k=records)
    for name in names:
        hour = start + rng.randrange(30 * 24) * HOUR
        counts = hours.setdefault(hour, {})
        receiver = RECEIVERS[hash(name) % len(RECEIVERS)]
        team = TEAMS[hash(name) % len(TEAMS)]
        keys = [("alert", name), ("receiver", receiver), ("team", team)]
        for key in keys:
            _add(counts, key, "notifications")
        _add(counts, ("severity", rng.choice(SEVERITIES)), "notifications")
        if rng.random() < 0.33:
            took = rng.expovariate(1 / 1800)
            bucket = next((i for i, b in enumerate(BOUNDS) if took <= b), len(BOUNDS) - 1)
            for key in keys:
                _add(counts, key, "episodes")
                _add(counts, key, f"mttr{bucket}")
                if took <= 300:
                    _add(counts, key, "noise")
                if rng.random() < 0.1:
                    _add(counts, key, "flaps")
        if rng.random() < 0.1:
            waited = rng.expovariate(1 / 600)
            bucket = next((i for i, b in enumerate(BOUNDS) if waited <= b), len(BOUNDS) - 1)
            for key in keys:
                _add(counts, key, "acknowledged")
                _add(counts, key, f"mtta{bucket}")
    return hours


async def fill(store: Store, hours: dict[int, dict[Key, list[int]]]) -> None:
    await store.open()
    try:
        for hour, counts in sorted(hours.items()):
            await store.add_rollups(hour + 1, counts)
    finally:
        await store.close()


async def measure(url: str, runs: int) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    async with aiohttp.ClientSession() as http:
        # A store of a million records may take a while to open.
        await wait_ready(http, url + "/readyz", within=120)
        for path in ("/api/v1/insights?since=30d", "/ui/insights?since=30d"):
            took = []
            for _ in range(runs + 2):
                started = time.perf_counter()
                async with http.get(url + path) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                took.append((time.perf_counter() - started) * 1000)
            took = sorted(took[2:])
            p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
            out[path] = (statistics.median(took), p99)
    return out


def run(kind: str, records: int, runs: int, redis_url: str) -> None:
    hours = generate(records, time.time())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if kind == "sqlite":
            url = f"sqlite:///{folder}/state.db"
            store: Store = SQLiteStore(f"{folder}/state.db")
            prefix = "alert-router:"
        else:
            url = redis_url
            prefix = f"bench-insights-{uuid.uuid4().hex[:8]}:"
            store = RedisStore(redis_url, key_prefix=prefix)
        started = time.perf_counter()
        asyncio.run(fill(store, hours))
        filled = time.perf_counter() - started
        cfg = folder / "routes.yaml"
        cfg.write_text(
            f"state: {{url: '{url}', key_prefix: '{prefix}'}}\n"
            "receivers: [{name: log, log: {}}]\nroute: {receiver: log}\n"
        )
        port = free_port()
        proc = spawn(cfg, port)
        try:
            found = asyncio.run(measure(f"http://127.0.0.1:{port}", runs))
        finally:
            proc.terminate()
            proc.wait(10)
        for path, (p50, p99) in found.items():
            print(f"{kind:6} {records} records  {path:30} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
        print(f"{kind:6} rollups written in {filled:.1f} s")
        if kind == "redis":

            async def clean() -> None:
                import redis.asyncio as aioredis

                client = aioredis.from_url(redis_url)
                async for key in client.scan_iter(f"{prefix}*"):
                    await client.delete(key)
                await client.aclose()

            asyncio.run(clean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--store", choices=("sqlite", "redis", "both"), default="both")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    for kind in ("sqlite", "redis") if args.store == "both" else (args.store,):
        run(kind, args.records, args.runs, args.redis_url)


if __name__ == "__main__":
    main()
