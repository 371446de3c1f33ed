"""Memory stays flat: nothing of a delivered webhook outlives its delivery, and what the
stores keep per group in memory is bounded (bench/soak.py measures the same over hours)."""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path
from typing import Any

import pytest

from router.model import Event, NflogEntry, Notification
from router.store.protocols import Store
from router.store.sqlite import SQLiteStore
from router.store.sqlite.logcache import LogCache
from tests.conftest import running
from tests.helpers import config_from, until

WEBHOOKS = 60
ALERTS = 5
# The SQLite store's in-memory log, shrunk so a few webhooks overflow it.
CACHE_ALERTS = 100
# Only this module's groups are counted: other tests' objects may be alive in the process.
MARK = "MemoryProbe"


def probe(n: int) -> dict[str, Any]:
    """Webhook n: a group of its own with ALERTS firing alerts."""
    name = f"{MARK}-{n}"
    labels = {"alertname": name, "env": "prod", "severity": "critical"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "alert-router",
        "groupLabels": {"alertname": name},
        "alerts": [
            {
                "status": "firing",
                "labels": {**labels, "pod": f"backend-{n}-{i}"},
                "annotations": {"summary": "Error rate above 5%"},
                "startsAt": "2026-01-01T00:00:00Z",
                "fingerprint": f"{n:010x}{i:06x}",
            }
            for i in range(ALERTS)
        ],
    }


def alive(kind: type[Notification | Event | NflogEntry]) -> list[Any]:
    """Instances of `kind` from this module's webhooks that are still reachable."""
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is kind and MARK in o.group_key]


@pytest.fixture(params=["sqlite", "redis"])
def state_yaml(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"url: sqlite:///{tmp_path}/state.db"
    url = request.getfixturevalue("redis_url")
    return f"url: {url}\n  key_prefix: '{request.getfixturevalue('prefix')}'"


async def test_delivered_webhooks_leave_no_notification_or_event_alive_and_a_bounded_log(
    state_yaml: str, tmp_path: Path
) -> None:
    # The SQLite store is built here, its log cache small (Redis keeps no such cache).
    store: Store | None = None
    if state_yaml.startswith("url: sqlite"):
        store = SQLiteStore(f"{tmp_path}/state.db", nflog_cache_alerts=CACHE_ALERTS)
    config = config_from(
        f"""
state:
  {state_yaml}
receivers:
  - name: stdout
    log: {{}}
route:
  receiver: stdout
"""
    )
    async with running(config, store=store) as service:
        for n in range(WEBHOOKS):
            status, _ = await service.post("/webhook/alertmanager", probe(n))
            assert status == 200
        await service.wait_for_records(
            lambda records: sum(r["state"] == "sent" for r in records) == WEBHOOKS
        )
        # Delivered and recorded: once the last delivery has returned, nothing holds them.
        await until(lambda: service.state.deliverer.in_flight == 0)
        with contextlib.suppress(TimeoutError):
            await until(lambda: not alive(Notification) and not alive(Event), within=5)
        assert (len(alive(Notification)), len(alive(Event))) == (0, 0)
        # The log entries kept in memory name at most CACHE_ALERTS alerts, not every group's.
        assert len(alive(NflogEntry)) <= CACHE_ALERTS // ALERTS


def entry(group: str, alerts: int, expires_at: float = 100.0) -> NflogEntry:
    return NflogEntry(
        receiver="r",
        group_key=group,
        firing=frozenset(f"{group}-{i}" for i in range(alerts)),
        resolved=frozenset(),
        first_notified_at=0.0,
        last_notified_at=0.0,
        expires_at=expires_at,
    )


def test_the_log_cache_is_bounded_by_the_alerts_it_holds_least_recently_used_out_first() -> None:
    cache = LogCache(max_alerts=30)
    for group in ("a", "b", "c"):
        cache.put(("r", group), entry(group, 9))
    # a, b, c weigh 10 each: the 30 allowed. Reading a makes b the oldest.
    assert cache.lookup(("r", "a"), now=0.0)[1] == entry("a", 9)
    cache.put(("r", "d"), entry("d", 9))
    assert cache.weight <= 30
    assert cache.lookup(("r", "b"), now=0.0) == (False, None)
    assert cache.lookup(("r", "a"), now=0.0)[0]
    # One big group pushes out as many small ones as it weighs.
    cache.put(("r", "big"), entry("big", 25))
    assert len(cache) == 1 and cache.weight == 26


def test_an_expired_log_entry_is_kept_as_a_miss_without_its_alerts() -> None:
    cache = LogCache(max_alerts=100)
    cache.put(("r", "a"), entry("a", 50, expires_at=10.0))
    assert cache.lookup(("r", "a"), now=5.0)[1] is not None
    assert cache.lookup(("r", "a"), now=10.0) == (True, None)
    assert cache.weight == 1


async def test_the_sqlite_state_size_on_disk_is_exported_and_redis_exports_none(
    state_yaml: str,
) -> None:
    config = config_from(
        f"state:\n  {state_yaml}\nreceivers:\n  - name: stdout\n    log: {{}}\n"
        "route:\n  receiver: stdout\n"
    )
    async with running(config) as service:
        status, _ = await service.post("/webhook/alertmanager", probe(0))
        assert status == 200
        async with service.http.get(f"{service.url}/metrics") as resp:
            text = await resp.text()
    sizes = [
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("alert_router_sqlite_size_bytes ")
    ]
    if "sqlite" in state_yaml:
        # At least the file's header page and the WAL that recorded the webhook.
        assert len(sizes) == 1 and sizes[0] >= 4096
    else:
        assert sizes == []
