"""Console queries over a million records: p50/p99 of `GET /api/v1/notifications` pages
and of the console's HTML pages.

Generates a SQLite store of `--records` delivery records directly (one transaction of
executemany, a realistic spread of receivers, envs, severities, sources, states, reasons,
alertnames and labels over six days), starts `alert-router serve` on it, then times each
query over HTTP and prints a table (and JSON with `--json`):

    python bench/console_queries.py                   # 1,000,000 records, 40 runs each
    python bench/console_queries.py --db /tmp/1m.db   # keep (and reuse) the database

Target: p99 < 150 ms per page. The machine is shared with the load generator's client, so
these are floors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, spawn, wait_ready  # noqa: E402
from router.store.protocols import encode_cursor  # noqa: E402
from router.store.sqlite import SQLiteStore  # noqa: E402

RECEIVERS = [
    f"team-{t}-{k}" for t in ("web", "db", "pay", "infra", "ml", "edge") for k in ("slack", "mail")
]
ENVS = [("prod", 40), ("staging", 25), ("dev", 30), ("unknown", 5)]
SEVERITIES = [("critical", 10), ("warning", 60), ("info", 30)]
# (state, reason, weight): most records are sent or suppressed as duplicates.
OUTCOMES = [
    ("sent", "first", 30),
    ("sent", "new_alerts", 10),
    ("sent", "resolved", 12),
    ("sent", "repeat", 3),
    ("suppressed", "duplicate", 25),
    ("suppressed", "muted", 7),
    ("suppressed", "inhibited", 6),
    ("suppressed", "flapped", 2),
    ("failed", "invalid_auth", 1),
    ("dead", "http_503", 1),
]
ALERTNAMES = [
    f"{p}{s}"
    for p in ("KubePod", "Disk", "CPU", "Memory", "Latency", "ErrorRate", "Certificate", "Queue")
    for s in ("CrashLooping", "Full", "High", "Pressure", "SLOBurn", "Expiring", "Backlog")
]
NAMESPACES = [f"ns-{i:02d}" for i in range(40)]
SPAN = 6 * 86400.0

CONFIG = """
state: {{url: 'sqlite:///{db}'}}
receivers:
{receivers}
route: {{receiver: {first}}}
"""


def _weighted(pairs: list[tuple[Any, int]], rng: random.Random, n: int) -> list[Any]:
    values = [p[0] for p in pairs]
    weights = [p[1] for p in pairs]
    return rng.choices(values, weights=weights, k=n)


def generate(db: Path, records: int, seed: int = 7) -> None:
    """Write `records` finished delivery records (and a few pending) straight into a store
    file created by the store itself, so the layout is the service's."""
    store = SQLiteStore(str(db))

    async def create() -> None:
        await store.open()
        await store.close()

    asyncio.run(create())
    rng = random.Random(seed)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    now = time.time()
    start = now - SPAN
    envs = _weighted(ENVS, rng, records)
    severities = _weighted(SEVERITIES, rng, records)
    outcomes = _weighted([((s, r), w) for s, r, w in OUTCOMES], rng, records)
    route = {"receiver": "", "path": "", "repeat_interval": 14400.0, "send_resolved": True}
    conn.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    texts: list[tuple[int, str]] = []
    for i in range(records):
        seq = i + 1
        receiver = RECEIVERS[rng.randrange(len(RECEIVERS))]
        alertname = ALERTNAMES[rng.randrange(len(ALERTNAMES))]
        ns = NAMESPACES[rng.randrange(len(NAMESPACES))]
        source = "argocd" if rng.random() < 0.1 else "alertmanager"
        pod = f"{ns}-api-{rng.getrandbits(32):08x}"
        labels = {
            "alertname": alertname,
            "namespace": ns,
            "pod": pod,
            "job": "kube-state-metrics",
            "team": receiver.split("-")[1],
            "env": envs[i],
            "severity": severities[i],
            "source": source,
        }
        event = {
            "source": source,
            "fingerprint": f"{rng.getrandbits(64):016x}",
            "group_key": f'{{}}:{{alertname="{alertname}",namespace="{ns}"}}',
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": f"{alertname} in {ns}", "runbook_url": "https://r/x"},
            "starts_at": "2026-11-26T10:00:00Z",
            "ends_at": None,
            "generator_url": "http://prometheus:9090/graph",
            "external_url": "http://alertmanager:9093",
            "one_shot": False,
            "details": {},
            "replaced_labels": {},
            "truncated_alerts": 0,
        }
        created = start + SPAN * i / records
        state, reason = outcomes[i]
        route["receiver"], route["path"] = receiver, f"root/{receiver}"
        batch.append(
            (
                seq,
                f"n{seq:08d}",
                receiver,
                event["group_key"],
                json.dumps(route),
                json.dumps([event]),
                created,
                created + 1.5,
                state,
                reason,
                1 if state != "suppressed" else 0,
                "",
                0.0,
                envs[i],
                severities[i],
                source,
                alertname,
            )
        )
        texts.append((seq, "\n".join(dict.fromkeys(v.lower() for v in labels.values()))))
        if len(batch) == 20_000 or i == records - 1:
            conn.executemany(
                "INSERT INTO notifications (seq, id, receiver, group_key, route, events,"
                " created_at, updated_at, state, reason, attempts, last_error,"
                " next_attempt_at, env, severity, source, alertname)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                batch,
            )
            conn.executemany("INSERT INTO notifications_text (rowid, text) VALUES (?, ?)", texts)
            batch.clear()
            texts.clear()
    conn.execute("COMMIT")
    conn.execute("PRAGMA optimize")
    conn.execute("INSERT INTO notifications_text (notifications_text) VALUES ('optimize')")
    conn.close()


@contextmanager
def serving(db: Path) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "routes.yaml"
        receivers = "\n".join(f"  - name: {r}\n    log: {{}}" for r in RECEIVERS)
        cfg.write_text(CONFIG.format(db=db, receivers=receivers, first=RECEIVERS[0]))
        port = free_port()
        proc = spawn(cfg, port)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


def queries(records: int) -> list[tuple[str, str]]:
    deep = encode_cursor(max(1, records // 2))
    return [
        ("unfiltered, first page", ""),
        ("unfiltered, deep page (cursor at the middle)", f"cursor={deep}"),
        ("receiver", "receiver=team-pay-slack"),
        ("env", "env=staging"),
        ("severity", "severity=critical"),
        ("source", "source=argocd"),
        ("state", "state=dead"),
        ("reason", "reason=inhibited"),
        ("env + severity", "env=prod&severity=critical"),
        (
            "env + severity + state + receiver",
            "env=prod&severity=critical&state=sent&receiver=team-db-slack",
        ),
        ("state + reason, deep page", f"state=suppressed&reason=muted&cursor={deep}"),
        (
            "rare combination (failed + argocd + critical)",
            "state=failed&source=argocd&severity=critical",
        ),
        ("text: alertname part", "q=crashloop"),
        ("text: namespace", "q=ns-07"),
        ("text: a pod (one record)", "q=POD"),
        ("text + env + severity", "q=diskfull&env=prod&severity=critical"),
        ("text, deep page", f"q=latency&cursor={deep}"),
        ("limit=1000", "limit=1000&env=dev"),
        ("no match: receiver", "receiver=nobody"),
        ("no match: text", "q=zzzzzz"),
        ("common text + rare filter", "q=kube-state&state=dead&source=argocd"),
        ("common text + filter matching nothing", "q=kube-state&receiver=nobody"),
    ]


# The records a digest carried, for its page: the newest few are marked as such.
DIGEST = "bench-digest"


def pages(record_id: str, group_key: str) -> list[tuple[str, str]]:
    """The console's HTML pages, as a browser asks for them."""
    return [
        ("page: overview", "/ui/"),
        ("page: list", "/ui/notifications"),
        ("page: list, receiver + state", "/ui/notifications?receiver=team-pay-slack&state=sent"),
        (
            "page: list, env + severity + reason",
            "/ui/notifications?env=prod&severity=critical&reason=inhibited",
        ),
        ("page: list, text", "/ui/notifications?q=crashloop"),
        ("page: one notification", f"/ui/notifications/{quote(record_id, safe='')}"),
        ("page: group", f"/ui/groups/{quote(group_key, safe='')}"),
        ("page: routes", "/ui/routes"),
        ("page: route tester", "/ui/routes?labels=" + quote("alertname=DiskFull env=prod")),
        ("page: digest", f"/ui/digests/{DIGEST}"),
    ]


async def measure_pages(
    url: str, runs: int, record_id: str, group_key: str
) -> list[dict[str, Any]]:
    rows = []
    async with aiohttp.ClientSession() as http:
        for name, path in pages(record_id, group_key):
            times = []
            first = 0.0
            for i in range(runs + 3):
                started = time.perf_counter()
                async with http.get(url + path) as resp:
                    await resp.read()
                    assert resp.status == 200, (path, resp.status)
                elapsed = (time.perf_counter() - started) * 1000
                if i == 0:
                    # The overview's first request waits for the 24 h counts (cached 10 s).
                    first = elapsed
                if i >= 3:
                    times.append(elapsed)
            times.sort()
            rows.append(
                {
                    "query": name,
                    "params": path,
                    "rows": 0,
                    "first_ms": round(first, 1),
                    "p50_ms": round(statistics.median(times), 1),
                    "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1),
                }
            )
    return rows


async def measure(url: str, records: int, runs: int, pod: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        # A store of a million records may take a while to open.
        await wait_ready(http, url + "/readyz", within=120)
        rows = []
        for name, query in queries(records):
            query = query.replace("POD", pod)
            path = f"/api/v1/notifications?{query}"
            times = []
            count = 0
            for i in range(runs + 3):
                started = time.perf_counter()
                async with http.get(url + path) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                elapsed = (time.perf_counter() - started) * 1000
                if i >= 3:  # the first runs warm the page cache
                    times.append(elapsed)
                count = len(body["notifications"])
            times.sort()
            rows.append(
                {
                    "query": name,
                    "params": query,
                    "rows": count,
                    "p50_ms": round(statistics.median(times), 1),
                    "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1),
                }
            )
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--db", type=Path, help="keep the database here (reused if present)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "console.db"
        generated = 0.0
        if not db.exists():
            started = time.perf_counter()
            generate(db, args.records)
            generated = time.perf_counter() - started
        conn = sqlite3.connect(db)
        (records,) = conn.execute("SELECT count(*) FROM notifications").fetchone()
        (pod_text,) = conn.execute(
            "SELECT text FROM notifications_text WHERE rowid = ?", (records // 3,)
        ).fetchone()
        pod = next(v for v in pod_text.split("\n") if "-api-" in v)
        record_id, group_key = conn.execute(
            "SELECT id, group_key FROM notifications WHERE seq = ?", (records // 3,)
        ).fetchone()
        with conn:
            conn.execute(
                "UPDATE notifications SET delivered_in = ? WHERE seq > ?", (DIGEST, records - 40)
            )
        conn.close()
        with serving(db) as url:
            rows = asyncio.run(measure(url, records, args.runs, pod))
            rows += asyncio.run(measure_pages(url, args.runs, record_id, group_key))
    if args.json:
        print(
            json.dumps(
                {"records": records, "generate_s": round(generated, 1), "queries": rows}, indent=2
            )
        )
        return
    print(
        f"{records:,} records (generated in {generated:.0f} s)"
        if generated
        else f"{records:,} records"
    )
    width = max(len(r["query"]) for r in rows)
    print(f"{'query':<{width}}  {'rows':>5}  {'p50 ms':>7}  {'p99 ms':>7}")
    for r in rows:
        print(f"{r['query']:<{width}}  {r['rows']:>5}  {r['p50_ms']:>7}  {r['p99_ms']:>7}")


if __name__ == "__main__":
    main()
