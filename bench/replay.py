"""`alert-router replay` over 7 days of recorded events: wall time of the whole command.

Generates `--events` events (default 100,000) spread over the last 7 days: 400 alertnames
over 30 services, firing and resolving, with a few `*Down` alerts that inhibit their
service's warnings. The live config routes by service and severity with a night mute; the
proposed one moves a service, adds an inhibit rule and a business-hours active interval.
Then runs `python -m router replay` on an export file and, with `--store`, on a SQLite
store holding the same events (recorded as the intake records them):

    python bench/replay.py                 # 100,000 events, from an export file
    python bench/replay.py --store         # and from a SQLite store

Target: under 10 s for 100,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench.harness  # noqa: E402,F401 - sets PYTHONPATH for the command it runs
from router.config.loader import load_config  # noqa: E402
from router.ingest.intake import plan_notifications  # noqa: E402
from router.model import Event, Status  # noqa: E402
from router.replay.engine import Recorded  # noqa: E402
from router.routing.tree import RouteTree  # noqa: E402
from router.store.protocols import RecordQuery  # noqa: E402
from router.store.sqlite import SQLiteStore  # noqa: E402

SERVICES = [f"svc{i}" for i in range(30)]

_RECEIVERS = "".join(f"  - name: team{i}\n    log: {{}}\n" for i in range(10))
_ROUTES = "".join(
    f"    - matchers: ['service=~\"svc{i}|svc{i + 10}|svc{i + 20}\"']\n      receiver: team{i}\n"
    "      routes:\n"
    f"        - matchers: ['severity=\"critical\"']\n          receiver: team{(i + 1) % 10}\n"
    "          continue: true\n"
    "          mute_time_intervals: [night]\n"
    for i in range(10)
)

LIVE = f"""\
state: {{url: "sqlite:///{{db}}"}}
receivers:
  - name: sre
    log: {{}}
{_RECEIVERS}time_intervals:
  - name: night
    time_intervals:
      - times: [{{start_time: "00:00", end_time: "06:00"}}]
  - name: business
    time_intervals:
      - weekdays: ["monday:friday"]
        times: [{{start_time: "08:00", end_time: "18:00"}}]
        location: Europe/Berlin
inhibit_rules:
  - name: down-mutes-warnings
    source_matchers: ['alertname=~".*Down"']
    target_matchers: ['severity="warning"']
    equal: [service]
route:
  receiver: sre
  routes:
{_ROUTES}"""

PROPOSED = (
    LIVE.replace('service=~"svc3|svc13|svc23"', 'service=~"svc3|svc13"')
    .replace(
        "route:\n",
        "  - name: critical-mutes-info\n"
        "    source_matchers: ['severity=\"critical\"']\n"
        "    target_matchers: ['severity=\"info\"']\n"
        "    equal: [service]\n"
        "route:\n",
    )
    .replace(
        "\n      receiver: team5\n",
        "\n      receiver: team5\n      active_time_intervals: [business]\n",
        1,
    )
)


def generate(count: int, now: float, seed: int = 7) -> list[Recorded]:
    rng = random.Random(seed)
    start = now - 7 * 86400 + 60
    step = (7 * 86400 - 120) / count
    firing: dict[str, Event] = {}
    out: list[Recorded] = []
    for i in range(count):
        at = float(int(start + i * step))
        if firing and rng.random() < 0.45:
            key = rng.choice(list(firing))
            e = firing.pop(key)
            out.append(
                Recorded.of(
                    at,
                    Event(e.source, e.fingerprint, e.group_key, Status.RESOLVED, e.labels),
                )
            )
            continue
        service = rng.choice(SERVICES)
        down = rng.random() < 0.03
        name = f"{service.capitalize()}Down" if down else f"Alert{rng.randrange(400)}"
        severity = "critical" if down else rng.choice(["warning", "warning", "info", "critical"])
        labels = {
            "alertname": name,
            "service": service,
            "severity": severity,
            "env": "prod",
            "source": "alertmanager",
            "instance": f"host{rng.randrange(50)}",
        }
        fp = f"{name}-{labels['instance']}"
        event = Event("alertmanager", fp, f'{{}}:{{alertname="{name}"}}', Status.FIRING, labels)
        firing[fp] = event
        out.append(Recorded.of(at, event))
    return out


async def record(db: Path, config: Path, events: list[Recorded]) -> None:
    tree = RouteTree.from_config(load_config(config, env={}))
    store = SQLiteStore(str(db))
    await store.open()
    try:
        batch = []
        for r in events:
            batch.extend(plan_notifications([r.event], tree, datetime.fromtimestamp(r.at, UTC)))
            if len(batch) >= 500:
                await store.record(batch)
                batch = []
        if batch:
            await store.record(batch)
    finally:
        await store.close()
    # A week-old store's records are delivered: a pending one would be loaded into the
    # outbox when `replay` opens the store, which is not what is measured here.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE notifications SET state = 'sent', reason = 'first'")
    # The live service indexes each record's text as it goes; catch up once here, so the
    # replay does not pay for a backlog a running service would not have.
    store = SQLiteStore(str(db))
    await store.open()
    await store.query_notifications(RecordQuery(text="svc"), 1)
    await store.close()


def timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"replay failed ({done.returncode}): {done.stderr}")
    return elapsed, done.stdout.splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--store", action="store_true", help="also replay from a SQLite store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "state.db"
        live, proposed = folder / "live.yaml", folder / "proposed.yaml"
        live.write_text(LIVE.replace("{db}", str(db)))
        proposed.write_text(PROPOSED.replace("{db}", str(db)))
        events = generate(args.events, time.time())
        export = folder / "events.jsonl"
        export.write_text("".join(r.to_json() + "\n" for r in events))
        base = [sys.executable, "-m", "router", "replay", "--config", str(proposed)]
        base += ["--against", str(live)]
        seconds, summary = timed([*base, "--events", str(export)])
        print(f"replay --events: {args.events} events in {seconds:.2f} s ({summary})")
        if args.store:
            asyncio.run(record(db, live, events))
            seconds, summary = timed(base)
            print(f"replay from SQLite: {args.events} events in {seconds:.2f} s ({summary})")


if __name__ == "__main__":
    main()
