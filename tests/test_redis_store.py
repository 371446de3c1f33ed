"""What the Redis store adds to the store contract: several replicas on one Redis, leases
and takeover, bounded keys, outages, passwords and key prefixes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from router.config.schema import StateConfig
from router.model import AlertState, DeliveryState, Deploy, NflogEntry, Outcome
from router.secrets import redact_url
from router.store import open_store
from router.store.protocols import StoreUnavailable
from router.store.redis import RedisStore, split_url
from tests.redis_server import RedisServer, delete_prefix, unique_prefix
from tests.test_store_contract import T0, notification

PASSWORD = "s3cret-pw"


Opener = Callable[..., RedisStore]


@pytest.fixture
async def replica(redis_url: str, prefix: str) -> AsyncIterator[Opener]:
    """Opens store handles on the test's prefix, as separate replicas would; closes them."""
    opened: list[RedisStore] = []

    def make(query: str = "") -> RedisStore:
        store = RedisStore(redis_url + query, key_prefix=prefix)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


async def opened(store: RedisStore) -> RedisStore:
    await store.open()
    return store


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def entry(group: str, at: float, fps: frozenset[str]) -> NflogEntry:
    return NflogEntry("r1", group, fps, frozenset(), at, at, at + 7200, {"ts": f"{at}"})


# -- several replicas ------------------------------------------------------------------


async def test_open_leaves_other_replicas_leases_alone(replica: Opener) -> None:
    first = await opened(replica())
    await first.record([notification("g1", "a")])
    [claim] = await first.claim(T0, 10, 60)
    second = await opened(replica())  # a replica starting while the first one delivers
    assert await second.claim(T0 + 1, 10, 60) == []
    await first.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 2)
    assert await second.pending_count() == 0


async def test_claims_race_across_replicas_and_each_group_goes_to_one(replica: Opener) -> None:
    stores = [await opened(replica()) for _ in range(3)]
    await stores[0].record([notification(f"g{i}", "a") for i in range(60)])
    taken: list[str] = []
    for _ in range(5):
        rounds = await asyncio.gather(*(s.claim(T0, 5, 60) for s in stores for _ in range(2)))
        taken += [c.group_key for claims in rounds for c in claims]
    assert sorted(taken) == sorted(f"g{i}" for i in range(60))


async def test_a_closing_replica_hands_its_unfinished_claims_over_at_once(
    replica: Opener,
) -> None:
    stopping, other = await opened(replica()), await opened(replica())
    await stopping.record([notification(f"g{i}", "a") for i in range(3)])
    done, released, cut_short = await stopping.claim(T0, 10, 120)
    await stopping.complete(done, Outcome(DeliveryState.SENT, "first"), T0)
    await stopping.release(released, T0 + 60, "http_500", T0)
    await stopping.close()  # SIGTERM: the grace ran out with one delivery in flight
    [taken] = await other.claim(T0 + 1, 10, 120)
    assert (taken.group_key, taken.attempts) == (cut_short.group_key, 0)
    [retried] = await other.claim(T0 + 60, 10, 120)
    assert retried.group_key == released.group_key


async def test_an_expired_lease_is_taken_over_by_another_replica(
    replica: Opener, redis_url: str, prefix: str
) -> None:
    # `lease=1` on the URL overrides the 120 s the worker asks for.
    dying, survivor = await opened(replica("?lease=1")), await opened(replica("?lease=1"))
    first, second = notification("g1", "a"), notification("g1", "a", "b")
    await dying.record([first])
    [held] = await dying.claim(time.time(), 10, 120)
    await survivor.record([second])
    assert await survivor.claim(time.time(), 10, 120) == []
    ttl = sync_client(redis_url).ttl(f'{prefix}lease:["r1","g1"]')
    assert 0 < ttl <= 61
    await asyncio.sleep(1.1)
    [taken] = await survivor.claim(time.time(), 10, 120)
    assert taken.ids == [first.id, second.id]
    assert taken.token != held.token


async def test_a_late_completion_after_takeover_changes_nothing(replica: Opener) -> None:
    late, current = await opened(replica()), await opened(replica())
    await late.record([notification("g1", "a")])
    [stale] = await late.claim(T0, 10, 60)
    [claim] = await current.claim(T0 + 61, 10, 60)
    await late.complete(
        stale, Outcome(DeliveryState.SENT, "first", nflog=entry("g1", T0 + 62, frozenset("x"))), T0
    )
    assert await current.pending_count() == 1
    assert await current.nflog_get("r1", "g1", T0 + 63) is None
    mine = entry("g1", T0 + 64, frozenset("a"))
    await current.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=mine), T0 + 64)
    # Completing again (a retried call, or the late worker once more) is a no-op.
    await current.complete(claim, Outcome(DeliveryState.FAILED, "x", error="boom"), T0 + 65)
    await late.complete(stale, Outcome(DeliveryState.SENT, "first"), T0 + 66)
    assert await current.nflog_get("r1", "g1", T0 + 70) == mine
    [record] = await current.list_notifications(10)
    assert (record.state, record.attempts, record.updated_at) == ("sent", 1, T0 + 64)
    assert await current.next_due() is None


async def test_a_completion_after_the_lease_counts_while_nobody_took_over(
    replica: Opener,
) -> None:
    store = await opened(replica())
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0 + 100)
    assert await store.claim(T0 + 101, 10, 60) == []
    assert [r.state for r in await store.list_notifications(10)] == ["sent"]


async def test_the_log_entry_read_with_the_claim_is_the_current_one(replica: Opener) -> None:
    store = await opened(replica())
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    assert await store.nflog_get("r1", "g1", T0) is None
    first = entry("g1", T0, frozenset("a"))
    await store.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=first), T0)
    await store.record([notification("g1", "a", "b")])
    [claim] = await store.claim(T0 + 1, 10, 60)
    assert await store.nflog_get("r1", "g1", T0 + 1) == first  # read with the claim
    second = entry("g1", T0 + 1, frozenset("ab"))
    await store.complete(claim, Outcome(DeliveryState.SENT, "new_alerts", nflog=second), T0 + 1)
    assert await store.nflog_get("r1", "g1", T0 + 2) == second


async def test_a_stalled_worker_reads_the_log_entry_again(replica: Opener) -> None:
    stalled, other = await opened(replica("?lease=0.2")), await opened(replica("?lease=0.2"))
    await stalled.record([notification("g1", "a")])
    await stalled.claim(time.time(), 10, 120)
    await asyncio.sleep(0.25)  # the lease ran out before the stalled worker got to dedup
    [claim] = await other.claim(time.time(), 10, 120)
    log = entry("g1", time.time(), frozenset("a"))
    await other.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=log), time.time())
    assert await stalled.nflog_get("r1", "g1", time.time()) == log


async def test_a_retried_record_is_recorded_once(replica: Opener) -> None:
    store = await opened(replica())
    n = notification("g1", "a")
    await store.record([n])
    await store.record([n])  # the reply to the first was lost, the client sent it again
    assert await store.pending_count() == 1
    [claim] = await store.claim(T0, 10, 60)
    assert claim.ids == [n.id]


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
    store = await opened(replica())
    now = time.time()
    alerts = [AlertState(f"fp{i}", {"alertname": f"A{i}"}, i % 3 != 0, now + 600) for i in range(9)]
    deploys = [Deploy("backend", "prod", f"rev{i}", now - i, "on-deployed") for i in range(3)]
    notes = [notification(f"g{i}", "a", receiver=f"r{i % 2}", at=now) for i in range(12)]
    await store.record(notes, alerts=alerts, deploys=deploys)
    claims = await store.claim(now, 8, 60)
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
    # two counters have no TTL; each goes away (or stays one integer) once work completes.
    for key, kind in persistent_keys(redis_url, prefix).items():
        if key.startswith("n:"):
            assert key[2:] in pending_ids, key
        elif key.startswith("q:"):
            assert kind == "list", key
        else:
            assert key in {"seq", "pending", "ready", "due"}, key

    # Deliver everything: only the two counters stay without a TTL.
    while await store.pending_count():
        for claim in await store.claim(now + 3600, 100, 60):
            await store.complete(claim, Outcome(DeliveryState.SENT, "first"), now + 3600)
    assert set(persistent_keys(redis_url, prefix)) == {"seq", "pending"}

    # Once everything has expired, expire() leaves nothing but the counters.
    gone = await store.expire(now + 30 * 86400, keep_records=86400)
    assert gone >= len(notes) + 1 + 4 + 6 + 3
    client = sync_client(redis_url)
    left = sorted(k[len(prefix) :] for k in client.scan_iter(match=f"{prefix}*"))
    client.close()
    assert left == ["pending", "seq"]


async def test_keep_records_on_the_url_caps_what_the_worker_asks(replica: Opener) -> None:
    store = await opened(replica("?keep_records=60s"))
    await store.record([notification("g1", "a")])
    [claim] = await store.claim(T0, 10, 60)
    await store.complete(claim, Outcome(DeliveryState.SENT, "first"), T0)
    assert await store.expire(T0 + 59, keep_records=7 * 86400) == 0
    assert await store.expire(T0 + 61, keep_records=7 * 86400) == 1
    assert await store.list_notifications(10) == []


async def test_firing_alerts_scale_past_lua_unpack_limits(replica: Opener) -> None:
    store = await opened(replica())
    alerts = [AlertState(f"fp{i}", {"i": str(i)}, True, T0 + 100) for i in range(12_000)]
    await store.record([notification("g1", "a")], alerts=alerts)
    assert len(await store.firing_alerts(T0)) == 12_000


# -- isolation, URLs and passwords ----------------------------------------------------


async def test_prefixes_keep_deployments_apart(redis_url: str) -> None:
    prefixes = [unique_prefix(), unique_prefix()]
    a, b = (RedisStore(redis_url, key_prefix=p) for p in prefixes)
    await a.open()
    await b.open()
    try:
        await a.record([notification("g1", "a")])
        assert (await a.pending_count(), await b.pending_count()) == (1, 0)
        assert await b.claim(T0, 10, 60) == []
        assert await b.list_notifications(10) == []
        [claim] = await a.claim(T0, 10, 60)
        log = entry("g1", T0, frozenset("a"))
        await a.complete(claim, Outcome(DeliveryState.SENT, "first", nflog=log), T0)
        assert await b.nflog_get("r1", "g1", T0) is None
        assert await a.nflog_get("r1", "g1", T0) == log
    finally:
        await a.close()
        await b.close()
        for p in prefixes:
            delete_prefix(redis_url, p)


def test_store_settings_ride_on_the_url_and_passwords_are_redacted() -> None:
    url, settings = split_url("rediss://u:pw@redis.example:6380/2?lease=30s&keep_records=1d&ssl=1")
    assert url == "rediss://u:pw@redis.example:6380/2?ssl=1"
    assert settings == {"lease": 30.0, "keep_records": 86400.0}
    assert redact_url(url) == "rediss://u:<redacted>@redis.example:6380/2?ssl=1"
    assert redact_url("redis://:pw@h/0") == "redis://:<redacted>@h/0"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    with pytest.raises(ValueError):
        split_url("redis://h/0?lease=0s")
    store = RedisStore("redis://:pw@h:1/0?lease=5", key_prefix="x:")
    assert "pw" not in repr(store) and store.lease == 5.0


def test_open_store_picks_redis_for_redis_urls() -> None:
    store = open_store(StateConfig(url="redis://127.0.0.1:6379/3", key_prefix="team-a:"))
    assert isinstance(store, RedisStore)
    assert store.prefix == "team-a:"


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


async def test_nothing_listening_is_unavailable_at_once() -> None:
    from tests.fakes.smtp import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert time.monotonic() - started < 1.0
    await store.close()


async def test_a_redis_that_never_answers_is_unavailable_within_the_socket_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the command, never replies
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0")
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            await store.open()
        assert time.monotonic() - started < 3.0
    finally:
        await store.close()
        server.close()
        await server.wait_closed()


async def test_an_outage_is_unavailable_then_recovers_without_reopening(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    store = RedisStore(server.url, key_prefix="outage:")
    try:
        await store.open()
        accepted = notification("g1", "a")
        await store.record([accepted])
        server.stop()
        started = time.monotonic()
        calls = [
            store.ping(),
            store.record([notification("g2", "b")]),
            store.claim(T0, 10, 60),
            store.nflog_get("r1", "g1", T0),
            store.pending_count(),
            store.next_due(),
            store.list_notifications(10),
            store.firing_alerts(T0),
            store.expire(T0, 60),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailable):
                await call
        assert time.monotonic() - started < 2.0
        server.start()  # same port and append-only file
        await store.ping()
        [claim] = await store.claim(T0, 10, 60)
        assert claim.ids == [accepted.id]
    finally:
        await store.close()
        server.stop()
