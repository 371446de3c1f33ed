"""Time every console page over a store of a million delivery records (SQLite).

    python bench/console_pages.py [--records 1000000] [--requests 200] [--db PATH]

Builds the store once through the store's own `record` (so every index the queries use is
filled as in production), then sets states, reasons and digests directly; a store already
holding enough records is reused. Then starts `alert-router serve` on it and asks each page
`--requests` times, one at a time, as a browser would. Prints JSON: p50/p99 per page, ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The server runs this checkout's code too, whatever else is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from bench.harness import free_port, peak_rss_mb, spawn  # noqa: E402
from router.config.schema import StateConfig  # noqa: E402
from router.model import Event, Notification, RouteSettings, Status  # noqa: E402
from router.store import open_store  # noqa: E402

RECEIVERS = ["oncall", "team-a", "team-b", "audit", "email-sre"]
ENVS = ["prod", "staging", "dev", "qa"]
SEVERITIES = ["critical", "warning", "info"]
NAMES = [f"Alert{i:02d}" for i in range(50)]
# state, reason, weight: mostly sent or suppressed, as in a real week.
OUTCOMES = [
    ("sent", "first", 40),
    ("sent", "resolved", 25),
    ("sent", "repeat", 10),
    ("suppressed", "duplicate", 12),
    ("suppressed", "inhibited", 6),
    ("suppressed", "muted", 4),
    ("failed", "bad_request", 2),
    ("dead", "timeout", 1),
]
DIGEST = "bench-digest"
SPAN = 6 * 86400.0
BATCH = 2000

CONFIG = """
state: {{url: "sqlite:///{db}", keep_records: 30d}}
receivers:
{receivers}
route:
  receiver: audit
  routes:
{routes}
"""


def config_text(db: Path) -> str:
    receivers = "\n".join(f"  - name: {r}\n    log: {{}}" for r in RECEIVERS)
    routes = "\n".join(
        f"    - matchers: ['team=\"{r}\"']\n      receiver: {r}\n      continue: true"
        for r in RECEIVERS
    )
    return CONFIG.format(db=db, receivers=receivers, routes=routes)


def notification(i: int, now: float, rng: random.Random) -> Notification:
    receiver = RECEIVERS[i % len(RECEIVERS)]
    labels = {
        "alertname": rng.choice(NAMES),
        "env": rng.choice(ENVS),
        "severity": rng.choice(SEVERITIES),
        "source": "alertmanager",
        "team": receiver,
        "instance": f"host-{rng.randrange(5000)}:9100",
        "job": f"job-{rng.randrange(40)}",
    }
    group = f'am/{receiver}/{{}}:{{alertname="{labels["alertname"]}",job="{labels["job"]}"}}'
    created = now - SPAN * (1 - i / 1_000_000) if i < 1_000_000 else now
    event = Event(
        source="alertmanager",
        fingerprint=f"{i:016x}",
        group_key=group,
        status=Status.FIRING,
        labels=labels,
        annotations={"summary": f"{labels['alertname']} on {labels['instance']}"},
        starts_at=datetime.fromtimestamp(created, UTC),
    )
    route = RouteSettings(
        receiver=receiver, path=f"routes[{i % 5}]", repeat_interval=14400.0, send_resolved=True
    )
    return Notification(
        id=f"bench{i:011d}",
        route=route,
        group_key=group,
        events=[event],
        created_at=datetime.fromtimestamp(created, UTC),
    )


def count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM notifications").fetchone()[0])
        except sqlite3.Error:
            return 0


async def build(db: Path, records: int) -> float:
    """Record `records` notifications, then give them their outcomes; seconds taken."""
    started = time.perf_counter()
    store = open_store(StateConfig(url=f"sqlite:///{db}"))
    await store.open()
    rng = random.Random(1)
    now = time.time()
    try:
        for start in range(0, records, BATCH):
            batch = [notification(i, now, rng) for i in range(start, min(start + BATCH, records))]
            await store.record(batch)
    finally:
        await store.close()
    weights = [w for _, _, w in OUTCOMES]
    cases = " ".join(f"WHEN {i} THEN '{state}'" for i, (state, _, _) in enumerate(OUTCOMES))
    reasons = " ".join(f"WHEN {i} THEN '{reason}'" for i, (_, reason, _) in enumerate(OUTCOMES))
    # A weighted outcome per record, from its number: deterministic and one statement.
    bucket = (
        "CASE "
        + " ".join(
            f"WHEN (seq * 7919) % 100 < {sum(weights[: i + 1])} THEN {i}"
            for i in range(len(OUTCOMES))
        )
        + " END"
    )
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"UPDATE notifications SET state = CASE {bucket} {cases} END,"  # noqa: S608
            f" reason = CASE {bucket} {reasons} END, attempts = 1, updated_at = created_at"
        )
        conn.execute(
            "UPDATE notifications SET delivered_in = ? WHERE seq > (SELECT max(seq) - 40"
            " FROM notifications)",
            (DIGEST,),
        )
    return time.perf_counter() - started


def sample_ids(db: Path) -> tuple[str, str]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT id, group_key FROM notifications ORDER BY seq DESC LIMIT 1 OFFSET 5000"
        ).fetchone()
    return str(row[0]), str(row[1])


async def time_pages(
    base: str, pages: dict[str, str], requests: int
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as http:
        for name, path in pages.items():
            took: list[float] = []
            status = 0
            first = 0.0
            for i in range(requests + 5):
                t0 = time.perf_counter()
                async with http.get(base + path) as resp:
                    await resp.read()
                    status = resp.status
                elapsed = (time.perf_counter() - t0) * 1000
                if i == 0:
                    # The overview's first request is the one that waits for the counts.
                    first = elapsed
                if i >= 5:  # the first few warm the caches
                    took.append(elapsed)
            took.sort()
            out[name] = {
                "status": status,
                "first_ms": round(first, 1),
                "p50_ms": round(statistics.median(took), 1),
                "p99_ms": round(took[min(len(took) - 1, int(len(took) * 0.99))], 1),
            }
    return out


def fresh(db: Path) -> None:
    """Remove a store too small to reuse."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", type=Path, default=Path("/tmp/alert-router-console-bench/state.db"))
    args = parser.parse_args()
    db: Path = args.db.resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    built = None
    if count(db) < args.records:
        fresh(db)
        built = round(await build(db, args.records), 1)
    cfg = db.parent / "routes.yaml"
    cfg.write_text(config_text(db))
    port = free_port()
    server = spawn(cfg, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(base + "/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            async with http.get(base + "/ui/notifications?receiver=team-a") as resp:
                markup = await resp.text()
        cursor = markup.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        one, group = sample_ids(db)
        pages = {
            "overview /ui/": "/ui/",
            "list /ui/notifications": "/ui/notifications",
            "list, receiver+state": "/ui/notifications?receiver=team-a&state=failed",
            "list, env+severity+reason": (
                "/ui/notifications?env=prod&severity=critical&reason=inhibited"
            ),
            "list, text q=host-42": "/ui/notifications?q=host-42",
            "list, next page (cursor)": cursor,
            "notification /ui/notifications/{id}": f"/ui/notifications/{one}",
            "group /ui/groups/{key}": f"/ui/groups/{quote(group, safe='')}",
            "routes /ui/routes": "/ui/routes",
            "route tester": "/ui/routes?labels=" + quote("alertname=X team=team-a env=prod"),
            "digest /ui/digests/{id}": f"/ui/digests/{DIGEST}",
        }
        timings = await time_pages(base, pages, args.requests)
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    print(
        json.dumps(
            {
                "records": count(db),
                "build_seconds": built,
                "peak_rss_mb": round(rss),
                "pages": timings,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
