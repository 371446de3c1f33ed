"""What the Redis store adds to the store contract: several replicas on one Redis (one Lua
script per decision), the exporter role, bounded keys, outages, passwords, key prefixes
and the scripts shipped in the wheel."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from router.config.schema import StateConfig
from router.model import AlertState, DeliveryState, Deploy, NflogEntry, Outcome
from router.secrets import redact_url
from router.store import open_store
from router.store.protocols import StoreUnavailable, exported_outbox_depth
from router.store.redis import RedisStore, lua_source
from tests.fakes.clock import FakeClock
from tests.redis_server import RedisServer, delete_prefix, unique_prefix
from tests.test_store_contract import T0, notification

PASSWORD = "s3cret-pw"
ROOT = Path(__file__).resolve().parent.parent

Opener = Callable[..., Any]


@pytest.fixture
async def replica(redis_url: str, prefix: str) -> AsyncIterator[Opener]:
    """Opens store handles on the test's prefix, as separate replicas would; closes them."""
    opened: list[RedisStore] = []

    async def make(**settings: Any) -> RedisStore:
        settings.setdefault("lease", 60.0)
        settings.setdefault("clock", FakeClock(T0))
        store = RedisStore(redis_url, key_prefix=prefix, **settings)
        opened.append(store)
        await store.open()
        return store

    yield make
    for store in opened:
        await store.close()


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def entry(group: str, at: float, fps: frozenset[str]) -> NflogEntry:
    return NflogEntry("r1", group, fps, frozenset(), at, at, at + 7200, {"ts": f"{at}"})


# -- several replicas ------------------------------------------------------------------


async def test_open_leaves_other_replicas_leases_alone(replica: Opener) -> None:
    first = await replica()
    await first.record([notification("g1", "a")])
    [claim] = await first.claim(T0, 10)
    second = await replica()  # a replica starting while the first one delivers
    assert await second.claim(T0 + 1, 10) == []
    await first.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 2)
    assert await second.pending_count() == 0


async def test_claims_race_across_replicas_and_each_group_goes_to_one(replica: Opener) -> None:
    stores = [await replica() for _ in range(3)]
    await stores[0].record([notification(f"g{i}", "a") for i in range(60)])
    taken: list[str] = []
    for _ in range(5):
        rounds = await asyncio.gather(*(s.claim(T0, 5) for s in stores for _ in range(2)))
        taken += [c.group_key for claims in rounds for c in claims]
    assert sorted(taken) == sorted(f"g{i}" for i in range(60))


async def test_a_closing_replica_hands_its_unfinished_claims_over_at_once(
    replica: Opener,
) -> None:
    stopping, other = await replica(lease=120.0), await replica(lease=120.0)
    await stopping.record([notification(f"g{i}", "a") for i in range(3)])
    done, released, cut_short = await stopping.claim(T0, 10)
    await stopping.complete(done, Outcome(DeliveryState.SENT, "first"), T0)
    await stopping.release(released, T0 + 60, "http_500", T0)
    await stopping.close()  # SIGTERM: the grace ran out with one delivery in flight
    [taken] = await other.claim(T0 + 1, 10)
    assert (taken.group_key, taken.attempts) == (cut_short.group_key, 0)
    [retried] = await other.claim(T0 + 60, 10)
    assert retried.group_key == released.group_key


async def test_an_expired_lease_is_taken_over_by_another_replica(
    replica: Opener, redis_url: str, prefix: str
) -> None:
    dying, survivor = await replica(lease=1.0), await replica(lease=1.0)
    first, second = notification("g1", "a"), notification("g1", "a", "b")
    await dying.record([first])
    [held] = await dying.claim(T0, 10)
    await survivor.record([second])
    assert await survivor.claim(T0 + 0.9, 10) == []
    # The lease's end is the store's time, not the key's TTL: that only bounds memory.
    assert sync_client(redis_url).ttl(f'{prefix}lease:["r1","g1"]') > 3600
    [taken] = await survivor.claim(T0 + 1.0, 10)
    assert taken.ids == [first.id, second.id]
    assert taken.token != held.token
    await dying.complete(held, Outcome(DeliveryState.SENT, "first"), T0 + 1.5)
    assert await survivor.pending_count() == 2


async def test_the_log_entry_read_with_the_claim_is_the_current_one(replica: Opener) -> None:
    store = await replica()
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10)
    assert await store.nflog_get("r1", "g1", T0) is None
    first = entry("g1", T0, frozenset("a"))
    await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=first), T0)
    await store.record([notification("g1", "a", "b")])
    [claim] = await store.claim(T0 + 1, 10)
    assert await store.nflog_get("r1", "g1", T0 + 1) == first  # read with the claim
    second = entry("g1", T0 + 1, frozenset("ab"))
    await store.complete(claim, Outcome(DeliveryState.SENT, "new_alerts", nflog=second), T0 + 1)
    assert await store.nflog_get("r1", "g1", T0 + 2) == second


async def test_a_stalled_worker_reads_the_log_entry_again(replica: Opener) -> None:
    stalled, other = await replica(lease=10.0), await replica(lease=10.0)
    await stalled.record([notification("g1", "a")])
    await stalled.claim(T0, 10)
    # The lease ran out before the stalled worker got to dedup; another took the group.
    [claim] = await other.claim(T0 + 10, 10)
    log = entry("g1", T0 + 10, frozenset("a"))
    await other.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=log), T0 + 10)
    # Past half its lease (by the callers' clock), the stalled worker asks Redis again.
    assert await stalled.nflog_get("r1", "g1", T0 + 10) == log


async def test_one_replica_exports_the_outbox_depth_until_it_stops_renewing(
    replica: Opener,
) -> None:
    clock = FakeClock(T0)
    # A role's term is its own: far longer than a short delivery lease, so the worker's
    # once-a-minute maintenance keeps it.
    first, second = await replica(clock=clock, lease=3.0), await replica(clock=clock, lease=3.0)
    await first.record([notification(f"g{i}", "a") for i in range(3)])
    assert await exported_outbox_depth(first) == 3
    assert await exported_outbox_depth(second) == 0  # a sum over replicas counts once
    clock.now = T0 + 60
    assert await exported_outbox_depth(first) == 3  # renewed: held until T0 + 180
    clock.now = T0 + 179
    assert not await second.lead("outbox-depth")
    # The holder went quiet for a whole term: the other replica takes the role over.
    clock.now = T0 + 180
    assert await exported_outbox_depth(second) == 3
    assert await exported_outbox_depth(first) == 0
    # Roles are per purpose.
    assert await first.lead("another-chore")
    # A replica shutting down hands its roles over at once.
    await second.close()
    assert await exported_outbox_depth(first) == 3


# -- bounded memory --------------------------------------------------------------------


def persistent_keys(url: str, prefix: str) -> dict[str, str]:
    """Keys under `prefix` without a TTL, with their type."""
    client = sync_client(url)
    try:
        found = {}
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            if client.ttl(key) == -1:
                found[key[len(prefix) :]] = str(client.type(key))
        return found
    finally:
        client.close()


async def test_every_key_has_a_ttl_or_a_documented_bound(
    replica: Opener, redis_url: str, prefix: str
) -> None:
    now = T0
    store = await replica(keep_records=86400.0)
    alerts = [AlertState(f"fp{i}", {"alertname": f"A{i}"}, i % 3 != 0, now + 600) for i in range(9)]
    deploys = [Deploy("backend", "prod", f"rev{i}", now - i, "on-deployed") for i in range(3)]
    notes = [notification(f"g{i}", "a", receiver=f"r{i % 2}", at=now) for i in range(12)]
    await store.record(notes, alerts=alerts, deploys=deploys)
    assert await store.lead("outbox-depth")
    claims = await store.claim(now, 8)
    assert len(await store.renew(claims, now + 1)) == 8
    for i, claim in enumerate(claims):
        if i % 2:
            await store.release(claim, now + 30, "http_500", now)
        else:
            log = NflogEntry(
                claim.receiver,
                claim.group_key,
                frozenset("a"),
                frozenset(),
                now,
                now,
                now + 7200,
                {},
            )
            await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=log), now)
    await store.record([notification("g0", "a", "b", receiver="r0", at=now)])  # after done
    await store.firing_alerts(now)
    await store.list_notifications(100, receiver="r1")

    client = sync_client(redis_url)
    pending_ids = {
        key[len(prefix) + 2 :]
        for key in client.scan_iter(match=f"{prefix}n:*")
        if client.hget(key, "state") == "pending"
    }
    client.close()
    # While work is pending: its notifications, queues, the ready/due schedules and the
    # three counters have no TTL; each goes away (or stays one integer) once work completes.
    for key, kind in persistent_keys(redis_url, prefix).items():
        if key.startswith("n:"):
            assert key[2:] in pending_ids, key
        elif key.startswith("q:"):
            assert kind == "list", key
        else:
            assert key in {"seq", "pending", "alerts:gen", "ready", "due"}, key

    # Deliver everything: only the three counters stay without a TTL.
    while await store.pending_count():
        for claim in await store.claim(now + 3600, 100):
            await store.complete(claim, Outcome(DeliveryState.SENT, "first"), now + 3600)
    assert set(persistent_keys(redis_url, prefix)) == {"seq", "pending", "alerts:gen"}

    # Once everything has expired, expire() leaves the counters and the role's key (its
    # TTL bounds it).
    gone = await store.expire(now + 30 * 86400)
    assert gone == len(notes) + 1 + 4 + 6 + 3
    client = sync_client(redis_url)
    left = sorted(k[len(prefix) :] for k in client.scan_iter(match=f"{prefix}*"))
    # Insights rollups outlive the records they count (ROLLUP_KEEP, their keys' TTL).
    rollups = [k for k in left if k.startswith("ru:")]
    assert all(client.ttl(prefix + k) > 0 for k in rollups)
    client.close()
    assert [k for k in left if k not in rollups] == [
        "alerts:gen",
        "lead:outbox-depth",
        "pending",
        "seq",
    ]


async def test_firing_alerts_scale_past_lua_unpack_limits(replica: Opener) -> None:
    store = await replica()
    alerts = [AlertState(f"fp{i}", {"i": str(i)}, True, T0 + 100) for i in range(12_000)]
    await store.record([notification("g1", "a")], alerts=alerts)
    assert len(await store.firing_alerts(T0)) == 12_000


# -- the scripts -----------------------------------------------------------------------


def test_the_package_build_ships_every_lua_script(tmp_path: Path) -> None:
    # setuptools' build_py lays out what the wheel holds; run on a copy, as the image's
    # build does, so the checkout stays clean.
    for part in ("pyproject.toml", "README.md", "router"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, tmp_path / part)
    built = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py"]
        + ["--build-lib", str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    shipped = {p.name for p in (tmp_path / "out" / "router" / "store" / "lua").glob("*.lua")}
    used = {p.name for p in (ROOT / "router" / "store" / "lua").glob("*.lua")}
    assert shipped == used
    assert "local function requeue" in lua_source("complete")


# -- isolation, URLs and passwords ----------------------------------------------------


async def test_prefixes_keep_deployments_apart(redis_url: str) -> None:
    prefixes = [unique_prefix(), unique_prefix()]
    a, b = (RedisStore(redis_url, key_prefix=p) for p in prefixes)
    await a.open()
    await b.open()
    try:
        await a.record([notification("g1", "a")])
        assert (await a.pending_count(), await b.pending_count()) == (1, 0)
        assert await b.claim(T0, 10) == []
        assert await b.list_notifications(10) == []
        [claim] = await a.claim(T0, 10)
        log = entry("g1", T0, frozenset("a"))
        await a.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=log), T0)
        assert await b.nflog_get("r1", "g1", T0) is None
        assert await a.nflog_get("r1", "g1", T0) == log
        assert await a.lead("chore") and await b.lead("chore")
    finally:
        await a.close()
        await b.close()
        for p in prefixes:
            delete_prefix(redis_url, p)


def test_passwords_are_redacted() -> None:
    assert redact_url("rediss://u:pw@redis.example:6380/2?ssl_cert_reqs=none") == (
        "rediss://u:<redacted>@redis.example:6380/2?ssl_cert_reqs=none"
    )
    assert redact_url("redis://:pw@h/0") == "redis://:<redacted>@h/0"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    store = RedisStore("redis://:pw@h:1/0", key_prefix="x:")
    assert "pw" not in repr(store)


def test_open_store_picks_redis_with_the_state_settings() -> None:
    state = StateConfig(url="redis://:pw@127.0.0.1:6379/3?lease=30s", key_prefix="team-a:")
    store = open_store(state)
    assert isinstance(store, RedisStore)
    assert (store.prefix, store.lease, store.keep_records) == ("team-a:", 30.0, 7 * 86400.0)
    assert "lease" not in repr(store) and "pw" not in repr(store)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password=PASSWORD)
    server.start()
    yield server
    server.stop()


async def test_password_from_the_environment(
    secured: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = "TEST_ROUTER_REDIS_PASSWORD"
    monkeypatch.delenv(env, raising=False)
    without = RedisStore(secured.url, password_env=env)
    with pytest.raises(StoreUnavailable) as refused:
        await without.open()
    await without.close()
    monkeypatch.setenv(env, PASSWORD)
    store = RedisStore(secured.url, password_env=env)
    await store.open()
    try:
        await store.record([notification("g1", "a")])
        assert await store.pending_count() == 1
    finally:
        await store.close()
    # A password in the URL wins over the environment; neither shows up in errors.
    monkeypatch.setenv(env, "wrong")
    in_url = secured.url.replace("//", f"//:{PASSWORD}@", 1)
    store = RedisStore(in_url, password_env=env)
    await store.open()
    await store.close()
    wrong = RedisStore(secured.url.replace("//", "//:not-it@", 1), password_env=env)
    with pytest.raises(StoreUnavailable) as denied:
        await wrong.open()
    await wrong.close()
    for message in (str(refused.value), str(denied.value), repr(wrong)):
        assert PASSWORD not in message and "not-it" not in message


# -- outages ---------------------------------------------------------------------------


class CountingServer:
    """A TCP server on loopback that counts connections and either hangs up at once or
    reads forever without answering."""

    def __init__(self, *, answer: bool) -> None:
        self.hang_up = not answer
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if not self.hang_up:
            await reader.read()  # reads the command, never replies
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_nothing_listening_is_unavailable_and_names_the_host() -> None:
    from tests.fakes.smtp import free_port

    port = free_port()
    store = RedisStore(f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    with pytest.raises(StoreUnavailable) as refused:
        await store.open()
    await store.close()
    assert f"127.0.0.1:{port}" in str(refused.value) and PASSWORD not in str(refused.value)


async def test_a_redis_that_hangs_up_is_retried_once_then_unavailable() -> None:
    counting = CountingServer(answer=False)
    async with counting as url:
        store = RedisStore(url)
        with pytest.raises(StoreUnavailable):
            await store.open()
        await store.close()
    # One fresh connection after a dead one (a Redis restart), never a retry loop.
    assert counting.connections == 2


async def test_a_redis_that_never_answers_is_not_retried() -> None:
    counting = CountingServer(answer=True)
    async with counting as url:
        store = RedisStore(url)
        with pytest.raises(StoreUnavailable):
            await store.open()
        await store.close()
    # A slow Redis gets one try within the socket timeout: no pile-up of retries.
    assert counting.connections == 1


async def test_an_outage_is_unavailable_then_recovers_without_reopening(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    store = RedisStore(server.url, key_prefix="outage:")
    try:
        await store.open()
        accepted = notification("g1", "a")
        await store.record([accepted])
        server.stop()
        calls = [
            store.ping(),
            store.record([notification("g2", "b")]),
            store.claim(T0, 10),
            store.nflog_get("r1", "g1", T0),
            store.pending_count(),
            store.next_due(),
            store.list_notifications(10),
            store.firing_alerts(T0),
            store.expire(T0),
            store.lead("outbox-depth"),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailable):
                await call
        server.start()  # same port and append-only file
        await store.ping()
        [claim] = await store.claim(T0, 10)
        assert claim.ids == [accepted.id]
    finally:
        await store.close()
        server.stop()


async def test_records_and_completions_made_at_once_all_land(replica: Opener) -> None:
    store = await replica()
    # Made in one go, they are sent together (one pipeline per round trip).
    await asyncio.gather(*(store.record([notification(f"g{i}", f"a{i}")]) for i in range(40)))
    claims = await store.claim(T0, 100)
    assert sorted(c.group_key for c in claims) == sorted(f"g{i}" for i in range(40))
    await asyncio.gather(
        *(
            store.complete(
                c,
                Outcome(DeliveryState.SENT, "sent", nflog=entry(c.group_key, T0, frozenset())),
                T0,
            )
            for c in claims
        )
    )
    assert await store.pending_count() == 0
    records = await store.list_notifications(100)
    assert {r.state for r in records} == {"sent"} and len(records) == 40
    assert await store.nflog_get("r1", "g7", T0 + 1) == entry("g7", T0, frozenset())


async def test_records_go_out_first_in_pipelines_of_their_own(
    replica: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await replica()
    await store.record([notification(f"g{i}", f"a{i}") for i in range(3)])
    claims = await store.claim(T0, 10)
    sent: list[list[str]] = []
    send = store._send

    async def spy(batch: Any) -> None:
        sent.append([name for name, _, _ in batch])
        await send(batch)

    monkeypatch.setattr(store, "_send", spy)
    # Completions made first in the same turn do not hold the webhook's acknowledgement.
    await asyncio.gather(
        *(store.complete(c, Outcome(DeliveryState.SENT, "sent"), T0) for c in claims),
        store.record([notification("g3", "b")]),
        store.record([notification("g4", "c")]),
    )
    assert sent == [["record", "record"], ["complete"] * 3]
    assert sorted(c.group_key for c in await store.claim(T0, 10)) == ["g3", "g4"]


async def test_a_failing_script_sent_with_others_fails_alone(replica: Opener) -> None:
    store = await replica()
    answers: list[object] = await asyncio.gather(
        store.record([notification("g1", "a")]),
        store._run_grouped("record", ["not a count"]),
        store.record([notification("g2", "b")]),
        return_exceptions=True,
    )
    assert answers[0] is None and answers[2] is None
    assert isinstance(answers[1], redis.exceptions.ResponseError)
    assert sorted(c.group_key for c in await store.claim(T0, 10)) == ["g1", "g2"]


async def test_calls_sent_together_load_the_scripts_redis_lost(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    store = RedisStore(server.url, key_prefix="flushed:")
    try:
        await store.open()
        await store.record([notification("g0", "a")])
        sync_client(server.url).script_flush()  # as a restart without persistence does
        await asyncio.gather(*(store.record([notification(f"g{i}", "a")]) for i in range(1, 6)))
        assert await store.pending_count() == 6
    finally:
        await store.close()
        server.stop()


async def test_calls_sent_together_during_an_outage_are_all_unavailable(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    store = RedisStore(server.url, key_prefix="outage:")
    try:
        await store.open()
        await store.record([notification("g0", "a")])
        server.stop()
        failed = await asyncio.gather(
            *(store.record([notification(f"g{i}", "a")]) for i in range(1, 6)),
            return_exceptions=True,
        )
        assert all(isinstance(f, StoreUnavailable) for f in failed)
        server.start()
        await asyncio.gather(*(store.record([notification(f"g{i}", "a")]) for i in range(1, 6)))
        assert await store.pending_count() == 6
    finally:
        await store.close()
        server.stop()


async def test_replicas_share_one_post_budget_per_destination(replica: Opener) -> None:
    a, b = await replica(), await replica()
    starts = await asyncio.gather(*(s.reserve_slot("chan", 1.0, T0) for s in (a, b, a, b)))
    assert sorted(starts) == [pytest.approx(T0 + i) for i in range(4)]


# -- replicas and Sentinel -----------------------------------------------------------------


async def test_a_record_no_replica_confirms_is_unavailable(redis_url: str, prefix: str) -> None:
    # The shared Redis has no replica: with min_replicas the webhook must not be acknowledged.
    store = RedisStore(redis_url, key_prefix=prefix, min_replicas=1)
    await store.open()
    try:
        with pytest.raises(StoreUnavailable) as refused:
            await store.record([notification("g1", "a")])
        assert "0 of 1 replicas acknowledged the write" in str(refused.value)
        assert "state.min_replicas" in str(refused.value)
        # Claims, renewals and completions do not wait: delivery goes on without replicas.
        [claim] = await store.claim(T0, 10)
        assert await store.renew([claim], T0 + 1) == {claim.token}
        await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 2)
    finally:
        await store.close()


async def test_a_sentinel_nobody_answers_is_unavailable_and_hides_the_password() -> None:
    from tests.fakes.smtp import free_port

    port = free_port()
    store = RedisStore(f"redis+sentinel://:{PASSWORD}@127.0.0.1:{port}/alerts/0")
    with pytest.raises(StoreUnavailable) as refused:
        await store.open()
    await store.close()
    message = str(refused.value)
    assert f"sentinel 127.0.0.1:{port} primary 'alerts'" in message
    assert PASSWORD not in message
