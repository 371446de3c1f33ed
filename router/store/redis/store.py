"""Redis store: shared state for several replicas behind one Service.

Every decision that two replicas could race on is one Lua script (router/store/lua/), so
Redis runs it alone: recording a webhook, claiming due groups, releasing and completing a
claim, taking a role. Keys (all under the prefix `P`, default `alert-router:`; `gid` is the
JSON `[receiver, group_key]`):

- `P n:<id>` hash, one notification (route, events, state, attempts, ...). No TTL while
  pending: accepted work is never dropped by Redis; once finished it gets a TTL of
  `keep_records` plus a day, and `expire()` deletes it at `keep_records`.
- `P q:<gid>` list, the group's pending notification ids in recording order. Exists only
  while the group has pending work (bounded by the outbox).
- `P ready` zset, groups with work due at once, scored by the seq of their oldest pending
  notification (so groups are claimed first come, first served).
- `P due` zset, groups waiting for a time: a retry's backoff, or the end of a lease. A
  group is in at most one of `ready` and `due`, and in neither when nothing is pending.
- `P lease:<gid>` string, the token of the claim holding the group. When the lease ends is
  the group's `due` score (moved on by each renewal); the key's TTL (the lease plus a day)
  only bounds a lost key.
- `P nf:<gid>` string, the notification log entry (JSON); `P nfx` zset of groups by the
  entry's `expires_at` lets `expire()` count and drop them (the key's TTL is a safety net);
  `P nff` zset of the groups whose entry has a non-empty firing set, by the entry's
  `last_notified_at` (written with the entry, dropped with it), for `firing_groups`.
- `P recs`, `P recs:r:<receiver>`, `P recs:k:<group_key>` zsets of notification ids by seq,
  for `list_notifications` newest first; `P done` zset of finished ids by finish time, for
  `expire()`. All trimmed by `expire()`, and each has a TTL refreshed on write.
- For the console's queries, also zsets of ids by seq per value: `P recs:e:<env>`,
  `recs:v:<severity>`, `recs:s:<source>`, `recs:st:<state>`, `recs:re:<reason>` (moved by
  every state change); `P recs:c` ids by creation time; `P stats:<minute>` hashes of
  "state|reason" -> count by creation minute, listed in the `P stats` zset (summed by
  `count_states`); `P tl:<id>` list of a record's timeline entries, expiring with it. The
  notification hash keeps `text` (lowercased label values) for the free-text search, which
  a script checks on each record of the smallest index that applies.
- `P alerts` hash fingerprint -> labels of firing alerts (a resolve deletes the alert),
  `P alerts:x` zset by expiry, `P alerts:gen` a counter bumped whenever a record changes
  the firing set (so every replica's cached copy is checked with one GET).
- `P deploys` hash, `P deploys:x`, `P deploys:a:<app>`, `P deploys:ns:<namespace>` zsets by
  deploy time; trimmed after DEPLOY_TTL, TTL refreshed on write.
- `P lead:<purpose>` hash, which process holds a once-per-deployment role until when.
- `P hbs`, `P hb:<name>`: heartbeats (router/store/redis/heartbeats.py).
- `P seq` (notification counter), `P pending` (outbox depth) and `P alerts:gen`: one
  integer each, no TTL.

Claims: `claim` takes the oldest `ready` groups, then `due` groups whose time has come,
moves each to `due` scored at the lease's end and stores a fresh token (one per claim) in
`P lease:<gid>`. A leased group is never in `ready` and its `due` score is in the future,
so no other worker can take it until the lease runs out; then it is simply due again
(takeover). Its holder's `renew` pushes the `due` score on while it works. `renew`,
`release` and `complete` act only while `P lease:<gid>` still holds the claim's token: a
worker whose lease ran out and was taken over (or whose group was already completed)
changes nothing.
Webhooks recorded for a leased group wait in its queue and make it `ready` again when the
claim ends. `close()` gives claims the process did not finish (a shutdown's cancelled
deliveries) back at once instead of leaving them to their lease; `open()` touches no lease.

Time: every decision compares times the callers pass (`now`) or the store's `clock`, never
Redis's clock or this host's; key TTLs only bound memory and are far longer than the
times they back.

URL: what `router.store.url.parse_state_url` leaves of `state.url` (store options
removed). Without a password in the URL, the one in the environment variable
`password_env` is used (`open_store` names `ROUTER_REDIS_PASSWORD`). A `redis+sentinel://`
URL names Sentinels and a primary: each new connection asks the Sentinels where the primary
is, so the store follows a failover (writes fail, and webhooks get 503, until one is
promoted); the password is the primary's.

Durability: `record` returns once Redis has executed the script; with `min_replicas` it
also waits (WAIT, on the connection that wrote) until that many replicas have it, so an
acknowledged webhook survives the primary's death. Only recording waits: a completion,
claim or renewal lost in a failover can make a message go out twice, never lose one. How
much survives a crash of Redis itself is Redis's persistence setting (use `appendonly yes`,
`appendfsync always` to lose nothing acknowledged). Not for Redis Cluster: scripts build
their key names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router.model import (
    AlertState,
    Claim,
    DeliveryState,
    Deploy,
    NflogEntry,
    Notification,
    NotificationRecord,
    Outcome,
    TimelineEntry,
)
from router.secrets import redact_url
from router.store.codec import (
    compact_json,
    events_json,
    facets,
    merged_timeline,
    stored_notification,
    stored_record,
    timeline_texts,
)
from router.store.codec import float_text as _num
from router.store.protocols import (
    DEFAULT_KEEP_RECORDS,
    DEFAULT_LEASE,
    DEPLOY_TTL,
    ROLE_TERM,
    RecordPage,
    RecordQuery,
    StoreUnavailable,
    decode_cursor,
    encode_cursor,
)
from router.store.redis.actions import ACTION_SCRIPTS, RedisActions
from router.store.redis.heartbeats import HEARTBEAT_SCRIPTS, RedisHeartbeats
from router.store.redis.oncall import RedisOncall
from router.store.redis.rollups import ROLLUP_SCRIPTS, RedisRollups
from router.store.redis.timers import TIMER_SCRIPTS, RedisTimers
from router.store.url import SENTINEL_SCHEME, parse_state_url

# Key TTLs are a safety net behind expire() and the scripts' own times: give them room.
TTL_MARGIN = 86400
# Index keys outlive the records they list by this much (a pending notification can wait
# up to state.dead_after, a day by default, before it finishes).
INDEX_MARGIN = 2 * 86400
SOCKET_TIMEOUT = 2.0
# Connections per process. Sentinel's pool cannot make callers wait for a free one, so it
# gets more room.
_MAX_CONNECTIONS = 64
_SENTINEL_CONNECTIONS = 512
# How long a write waits for `min_replicas` replicas to have it (well inside the socket
# timeout, which covers the whole round trip).
WAIT_TIMEOUT_MS = 1000
_EXPIRE_BATCH = 500
_CLAIMED_LOG_MAX = 10_000
_LIST_PAGE = 200
# Script calls sent in one pipeline at most.
_PIPELINE_MAX = 128
# Claims renewed per script run: a renewal of thousands of claims never blocks Redis long.
_RENEW_BATCH = 1000

# Redis answers these while it cannot serve writes; they are outages, not bugs.
_OUTAGE_ERRORS = ("OOM", "MISCONF", "READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY")

# Each script, and the shared Lua it starts with (router/store/lua/<name>.lua).
_SCRIPTS: Mapping[str, tuple[str, ...]] = {
    "record": ("records",),
    "claim": (),
    "release": ("requeue",),
    "complete": ("requeue", "records", "rollup_counts"),
    "give_back": ("requeue",),
    "renew": (),
    "expire": ("records",),
    "firing": (),
    "lead": (),
    "pace": (),
    **ACTION_SCRIPTS,
    **HEARTBEAT_SCRIPTS,
    **TIMER_SCRIPTS,
    **ROLLUP_SCRIPTS,
    "query": (),
    "timeline": (),
    "counts": (),
    "retry": ("requeue", "records"),
}
# Records one query call examines at most: a page of a rare combination of filters over
# millions of records comes back short, with a cursor to go on, instead of blocking Redis.
_QUERY_BUDGET = 20_000
# RecordQuery fields: the index of records with that value, and the hash field.
_INDEXES = {
    "receiver": "recs:r:",
    "group_key": "recs:k:",
    "delivered_in": "recs:in:",
    "env": "recs:e:",
    "severity": "recs:v:",
    "source": "recs:s:",
    "state": "recs:st:",
    "reason": "recs:re:",
}
# A destination's slot key outlives its last post by this much (slots are seconds apart).
_PACE_KEY_TTL_MS = 3_600_000


@cache
def lua_source(name: str) -> str:
    """The text Redis runs for script `name`: its shared parts, then its own file."""
    folder = resources.files("router.store") / "lua"
    parts = [*_SCRIPTS[name], name]
    return "\n".join((folder / f"{part}.lua").read_text(encoding="utf-8") for part in parts)


def _ttl(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _gid(receiver: str, group_key: str) -> str:
    # JSON keeps any receiver and group key apart, whatever characters they hold.
    return json.dumps([receiver, group_key], separators=(",", ":"))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _is_outage(exc: ResponseError) -> bool:
    return str(exc).split(" ", 1)[0] in _OUTAGE_ERRORS


class RedisStore(RedisActions, RedisHeartbeats, RedisTimers, RedisRollups, RedisOncall):
    """The `Store` protocol on Redis, shared by every replica using the same key prefix."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "alert-router:",
        password_env: str | None = None,
        lease: float = DEFAULT_LEASE,
        keep_records: float = DEFAULT_KEEP_RECORDS,
        min_replicas: int = 0,
        clock: Callable[[], float] = time.time,
        query_budget: int = _QUERY_BUDGET,
    ) -> None:
        self._url = url
        self.prefix = key_prefix
        self.lease = lease
        self.keep_records = keep_records
        self.min_replicas = min_replicas
        self._clock = clock
        self._query_budget = query_budget
        # Who this process is when it takes a role (`lead`), and the roles it took.
        self._me = uuid.uuid4().hex
        self._roles: set[str] = set()
        self._sentinel_address = (
            parse_state_url(url) if url.startswith(f"{SENTINEL_SCHEME}://") else None
        )
        self._sentinel: Sentinel | None = None
        if self._sentinel_address is None:
            self._where = redact_url(self._url)
        else:
            hosts = ",".join(f"{h}:{p}" for h, p in self._sentinel_address.sentinels)
            self._where = f"sentinel {hosts} primary {self._sentinel_address.master!r}"
        self._password_env = password_env
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        # gid -> (log entry as raw JSON or None, trusted until) read with a claim.
        self._claimed_log: dict[str, tuple[str | None, float]] = {}
        # gid -> token of the claims this process holds and has not finished.
        self._held: dict[str, str] = {}
        # Tokens of the claims being released or completed right now: still held for
        # `renew` until that call returns, though Redis no longer has their lease.
        self._finishing: set[str] = set()
        # Records and completions asked for in this turn of the event loop: sent at its
        # end, the records in one pipeline, the completions in another.
        self._queued: list[tuple[str, Sequence[str | int | float], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, key_prefix={self.prefix!r})"

    # -- plumbing ------------------------------------------------------------------------

    def _connect(self) -> aioredis.Redis:
        kwargs: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            # One immediate retry on a fresh connection: a pooled connection is dead after
            # Redis restarts (or fails over). No retry on timeouts (a slow Redis gets 503s,
            # not pile-ups).
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }
        if urlsplit(self._url).password is None and self._password_env:
            password = os.environ.get(self._password_env, "")
            if password:
                kwargs["password"] = password
        sentinel = self._sentinel_address
        if sentinel is None:
            # A storm can finish hundreds of deliveries at once: callers queue for one of a
            # bounded set of connections (for up to a socket timeout) instead of failing.
            pool = aioredis.BlockingConnectionPool.from_url(
                self._url, max_connections=_MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT, **kwargs
            )
            client = aioredis.Redis.from_pool(pool)
        else:
            parts = urlsplit(self._url)
            if parts.password is not None:
                kwargs["password"] = unquote(parts.password)
            if parts.username:
                kwargs["username"] = unquote(parts.username)
            # Sentinels are asked without the primary's password (they rarely have one).
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(sentinel.sentinels),
                sentinel_kwargs={
                    "decode_responses": True,
                    "socket_timeout": SOCKET_TIMEOUT,
                    "socket_connect_timeout": SOCKET_TIMEOUT,
                    "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                },
            )
            # Every new connection asks the Sentinels where the primary is now, and one
            # still open to a primary demoted to replica is dropped on its first write.
            client = self._sentinel.master_for(
                sentinel.master, db=sentinel.db, max_connections=_SENTINEL_CONNECTIONS, **kwargs
            )
        for name in _SCRIPTS:
            self._scripts[name] = client.register_script(lua_source(name))
        return client

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise StoreUnavailable("redis store is not open")
        return self._client

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Map Redis being unreachable, slow or unable to write to StoreUnavailable."""
        try:
            yield
        except MasterNotFoundError as exc:
            # Its text lists every Sentinel client in full; what matters fits in a line.
            raise StoreUnavailable(
                f"redis {self._where}: {what}: no Sentinel answers with a live primary"
            ) from exc
        except (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"redis {self._where}: {what}: {exc}") from exc
        except ResponseError as exc:
            if _is_outage(exc):
                raise StoreUnavailable(f"redis {self._where}: {what}: {exc}") from exc
            raise

    async def _run(self, name: str, args: Sequence[str | int | float]) -> Any:
        script = self._scripts[name]
        client = self._redis
        with self._guard(name):
            return await script(keys=[], args=[self.prefix, *args], client=client)

    async def _run_grouped(self, name: str, args: Sequence[str | int | float]) -> Any:
        """`_run`, sent in one pipeline with the calls of its kind (records, or the rest)
        made in the same turn of the event loop: a storm's webhooks take one round trip,
        its deliveries another, while earlier ones may still be in flight."""
        self._redis  # noqa: B018 - raises StoreUnavailable unless open
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._queued:
            # Its first step runs after the callbacks of this turn, and sends every call
            # they queued: one loop turn between a call and its request, not two.
            self._spawn(self._send_queued())
        self._queued.append((name, args, fut))
        return await fut

    def _spawn(self, sending: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(sending)
        # Held until done: the loop keeps only weak references to tasks.
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        # A caller cancelled before its call went out: it is not made at all.
        live = [item for item in queued if not item[2].done()]
        # Records first, in pipelines of their own: a webhook's acknowledgement waits for
        # its record alone, not for a storm's completions queued in the same turn.
        records = [item for item in live if item[0] == "record"]
        others = [item for item in live if item[0] != "record"] if records else live
        batches = [
            calls[first : first + _PIPELINE_MAX]
            for calls in (records, others)
            for first in range(0, len(calls), _PIPELINE_MAX)
        ]
        for batch in batches[1:]:
            self._spawn(self._send(batch))
        if batches:
            await self._send(batches[0])

    async def _send(
        self, batch: Sequence[tuple[str, Sequence[str | int | float], asyncio.Future[Any]]]
    ) -> None:
        try:
            await self._send_batch(batch)
        finally:
            # Cancelled mid-way (the loop shutting down): its callers are not left waiting.
            for _, _, fut in batch:
                if not fut.done():
                    fut.cancel()

    async def _send_batch(
        self, batch: Sequence[tuple[str, Sequence[str | int | float], asyncio.Future[Any]]]
    ) -> None:
        if len(batch) == 1:
            # Alone: a script call of its own, as when nothing else is in flight.
            name, args, fut = batch[0]
            try:
                result = await self._run(name, args)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                _settle(fut, None, exc)
            else:
                _settle(fut, result, None)
            return
        try:
            client = self._redis
            async with client.pipeline(transaction=False) as pipe:
                for name, args, _ in batch:
                    # By hash alone: a script registered on the pipeline would cost a SCRIPT
                    # EXISTS round trip first.
                    pipe.evalsha(self._scripts[name].sha, 0, self.prefix, *args)
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # noqa: BLE001 - handed to every caller
            for name, _, fut in batch:
                _settle(fut, None, self._failure(name, exc))
            return
        unknown = []
        for item, result in zip(batch, results, strict=True):
            name, _, fut = item
            if isinstance(result, NoScriptError):
                unknown.append(item)
            elif isinstance(result, Exception):
                _settle(fut, None, self._failure(name, result))
            else:
                _settle(fut, result, None)
        # Redis lost its scripts (a restart): one call each loads them again.
        for item in unknown:
            await self._send_batch([item])

    def _failure(self, what: str, exc: Exception) -> Exception:
        """What a call of `what` that failed with `exc` raises (see `_guard`)."""
        try:
            with self._guard(what):
                raise exc
        except Exception as mapped:  # noqa: BLE001 - returned, raised by the caller
            return mapped
        return exc

    async def _hget(self, key: str, field: str) -> str | None:
        client = self._redis
        with self._guard("hget"):
            found = await client.hget(key, field)
        return None if found is None else str(found)

    async def _zcard(self, key: str) -> int:
        client = self._redis
        with self._guard("zcard"):
            return int(await client.zcard(key))

    async def _zscore(self, key: str, member: str) -> float | None:
        client = self._redis
        with self._guard("zscore"):
            found = await client.zscore(key, member)
        return None if found is None else float(found)

    async def _zcount(self, key: str, high: float) -> int:
        client = self._redis
        with self._guard("zcount"):
            return int(await client.zcount(key, "-inf", repr(float(high))))

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check Redis answers. Leases of other replicas are left alone."""
        if self._client is None:
            self._client = self._connect()
        await self.ping()

    async def lead(self, purpose: str, term: float = ROLE_TERM) -> bool:
        """Take or renew `purpose` for `term`, unless another live process holds it."""
        held = bool(await self._take(purpose, term))
        if held:
            self._roles.add(purpose)
        else:
            self._roles.discard(purpose)
        return held

    async def reserve_slot(self, key: str, interval: float, now: float) -> float:
        """The next post slot for `key` across every replica on this prefix, reserved."""
        start = await self._run(
            "pace", [key, _num(now), _num(interval), "reserve", _PACE_KEY_TTL_MS]
        )
        return float(start)

    async def hold_slots(self, key: str, until: float) -> None:
        """No replica's slot for `key` starts before `until`."""
        await self._run("pace", [key, "0", _num(until), "hold", _PACE_KEY_TTL_MS])

    async def _take(self, purpose: str, term: float) -> Any:
        now = self._clock()
        return await self._run(
            "lead",
            [purpose, self._me, _num(now), _num(now + term), _ttl(ROLE_TERM + TTL_MARGIN)],
        )

    async def close(self) -> None:
        """Hand claims this process still holds to the other replicas, then disconnect;
        nothing is buffered, every write was acknowledged."""
        held, self._held = self._held, {}
        roles, self._roles = self._roles, set()
        if self._client is not None:
            # Without this, deliveries cut short by a shutdown would wait for their lease
            # before another replica takes them, and so would the roles.
            with contextlib.suppress(StoreUnavailable):
                if held:
                    await self._run("give_back", [x for pair in held.items() for x in pair])
                for purpose in roles:
                    await self._take(purpose, 0.0)  # held until now: free
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            for node in sentinel.sentinels:
                await node.aclose()

    async def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers now."""
        client = self._redis
        with self._guard("ping"):
            await client.ping()

    # -- writes --------------------------------------------------------------------------

    async def record(
        self,
        notifications: Sequence[Notification],
        *,
        alerts: Sequence[AlertState] = (),
        deploys: Sequence[Deploy] = (),
    ) -> None:
        """Record a webhook's notifications, alert states and deploys in one script."""
        # Only the keys' TTLs depend on the time now: expiry itself compares expires_at.
        now = self._clock() if alerts else 0.0
        args: list[str | int | float] = [
            len(notifications),
            len(alerts),
            len(deploys),
            _ttl(self.keep_records + INDEX_MARGIN),
            _ttl(DEPLOY_TTL + TTL_MARGIN),
        ]
        found = [facets(n) for n in notifications]
        for n, events, f in zip(notifications, events_json(notifications), found, strict=True):
            created = _num(n.created_at.timestamp())
            args += [
                n.id,
                _gid(n.receiver, n.group_key),
                n.receiver,
                n.group_key,
                compact_json(n.route.to_dict()),
                events,
                created,
                _num(n.not_before),
                f.env,
                f.severity,
                f.source,
                f.alertname,
                f.text,
            ]
        for a in alerts:
            args += [
                a.fingerprint,
                _dumps(dict(a.labels)),
                "1" if a.firing else "0",
                _num(a.expires_at),
                _ttl(max(0.0, a.expires_at - now) + TTL_MARGIN),
            ]
        for d in deploys:
            member = _dumps([d.app, d.namespace, d.revision, d.trigger])
            args += [member, d.app, d.namespace, _dumps(d.to_dict()), _num(d.at)]
        if self.min_replicas <= 0:
            await self._run_grouped("record", args)
        else:
            await self._run_replicated("record", args)

    async def _run_replicated(self, name: str, args: Sequence[str | int | float]) -> Any:
        """Run a script, then WAIT on the same connection until `min_replicas` replicas
        have it; fewer within WAIT_TIMEOUT_MS is StoreUnavailable (the caller answers 503
        and the sender retries: recording again is harmless)."""
        script = self._scripts[name]
        client = self._redis
        with self._guard(name):
            async with client.pipeline(transaction=False) as pipe:
                await script(keys=[], args=[self.prefix, *args], client=pipe)
                pipe.execute_command("WAIT", self.min_replicas, WAIT_TIMEOUT_MS)
                result, acknowledged = await pipe.execute()
        if int(acknowledged) < self.min_replicas:
            raise StoreUnavailable(
                f"redis {self._where}: {name}: {acknowledged} of {self.min_replicas} replicas"
                f" acknowledged the write within {WAIT_TIMEOUT_MS}ms (state.min_replicas)"
            )
        return result

    async def claim(self, now: float, limit: int) -> list[Claim]:
        """Atomically take up to `limit` due groups, each with all its pending webhooks."""
        if limit <= 0:
            return []
        token = uuid.uuid4().hex
        groups = await self._run(
            "claim",
            [_num(now), limit, _num(now + self.lease), token, _ttl(self.lease + TTL_MARGIN)],
        )
        claims: list[Claim] = []
        for flat in groups:
            notifications: list[Notification] = []
            attempts = 0
            receiver = group_key = ""
            mine = str(flat[1])
            for i in range(2, len(flat), 8):
                nid, receiver, group_key, route, events, created, tried, held = flat[i : i + 8]
                notifications.append(
                    stored_notification(nid, group_key, route, events, float(created), float(held))
                )
                attempts = max(attempts, int(tried))
            claims.append(Claim(receiver, group_key, notifications, attempts, mine))
            gid = _gid(receiver, group_key)
            self._remember_log(gid, flat[0] or None, now)
            self._hold(gid, mine)
        return claims

    def _hold(self, gid: str, token: str) -> None:
        self._held.pop(gid, None)
        self._held[gid] = token
        # Claims dropped mid-way (store outage) are not finished here: their lease ends them.
        while len(self._held) > _CLAIMED_LOG_MAX:
            del self._held[next(iter(self._held))]

    def _finished(self, gid: str, token: str) -> None:
        self._claimed_log.pop(gid, None)
        if self._held.get(gid) == token:
            del self._held[gid]

    def _remember_log(self, gid: str, raw: str | None, now: float) -> None:
        # Dedup asks for the log entry right after the claim. Only the lease holder writes
        # it, so the value read with the claim stays current while the lease lasts (trusted
        # for half of it, by the callers' clock); it saves a round trip per delivery.
        # Claims dropped mid-way leave entries behind: those no longer trusted (the oldest,
        # first in line) go, and at most _CLAIMED_LOG_MAX stay whatever happens.
        entries = self._claimed_log
        entries.pop(gid, None)
        entries[gid] = (raw, now + self.lease / 2)
        while True:
            oldest = next(iter(entries))
            if len(entries) <= _CLAIMED_LOG_MAX and entries[oldest][1] > now:
                break
            del entries[oldest]

    async def renew(self, claims: Sequence[Claim], now: float) -> set[str]:
        """Extend the leases of the claims still held, in one round trip."""
        if not claims:
            return set()
        head: list[str | int] = [self.prefix, _num(now + self.lease), _ttl(self.lease + TTL_MARGIN)]
        script = self._scripts["renew"]
        client = self._redis
        with self._guard("renew"):
            async with client.pipeline(transaction=False) as pipe:
                for first in range(0, len(claims), _RENEW_BATCH):
                    args = list(head)
                    for c in claims[first : first + _RENEW_BATCH]:
                        args += [_gid(c.receiver, c.group_key), c.token]
                    await script(keys=[], args=args, client=pipe)
                renewed: list[list[str]] = await pipe.execute()
        held = {token for tokens in renewed for token in tokens}
        # Read after the round trip: a claim finished meanwhile has ended its delivery.
        held |= {c.token for c in claims if c.token in self._finishing}
        for c in claims:
            if c.token not in held:
                # Taken over: never hand it back at close, it is not ours.
                self._finished(_gid(c.receiver, c.group_key), c.token)
        return held

    async def release(
        self,
        claim: Claim,
        next_attempt_at: float,
        error: str,
        now: float,
        *,
        attempted: bool = True,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        """Give the claim back until `next_attempt_at`, if it still holds the lease."""
        gid = _gid(claim.receiver, claim.group_key)
        self._finished(gid, claim.token)
        with self._finishing_claim(claim):
            await self._run(
                "release",
                [
                    gid,
                    claim.token,
                    _num(next_attempt_at),
                    error,
                    _num(now),
                    1 if attempted else 0,
                    _timeline_json(timeline),
                    *claim.ids,
                ],
            )

    @contextlib.contextmanager
    def _finishing_claim(self, claim: Claim) -> Iterator[None]:
        self._finishing.add(claim.token)
        try:
            yield
        finally:
            self._finishing.discard(claim.token)

    async def complete(
        self,
        claim: Claim,
        outcome: Outcome,
        now: float,
        *,
        timeline: Sequence[tuple[str, TimelineEntry]] = (),
    ) -> None:
        """Finish the claim and write its log entry in one script; a no-op once the lease
        was taken over or the claim already completed."""
        attempted = 1 if outcome.state is not DeliveryState.SUPPRESSED else 0
        entry, entry_ttl, entry_expires, entry_firing_at = "", 0, "0", ""
        if outcome.nflog is not None:
            entry = compact_json(outcome.nflog.to_dict())
            entry_ttl = _ttl(max(0.0, outcome.nflog.expires_at - now) + TTL_MARGIN)
            entry_expires = _num(outcome.nflog.expires_at)
            if outcome.nflog.firing:
                entry_firing_at = _num(outcome.nflog.last_notified_at)
        # Written by the same script unless they need reads first.
        counted = self._counted(claim, outcome)
        rollup = self._inline_rollup(counted, now)
        gid = _gid(claim.receiver, claim.group_key)
        self._finished(gid, claim.token)
        args: list[str | int | float] = [
            gid,
            claim.token,
            _num(now),
            outcome.state.value,
            outcome.reason,
            outcome.error,
            attempted,
            outcome.delivered_in,
            _ttl(self.keep_records + TTL_MARGIN),
            entry,
            entry_ttl,
            entry_expires,
            entry_firing_at,
            _timeline_json(timeline),
            "" if rollup is None else rollup,
            *claim.ids,
        ]
        with self._finishing_claim(claim):
            await self._run_grouped("complete", args)
        if rollup is None:
            await self._roll_up(claim, outcome, now, counted)

    async def expire(self, now: float) -> int:
        """Drop expired log entries, alert states, old deploys and finished records, in
        batches so Redis never blocks long; returns how many went."""
        args: list[str | int | float] = [
            _num(now),
            _num(now - self.keep_records),
            _num(now - DEPLOY_TTL),
            _EXPIRE_BATCH,
        ]
        total = 0
        while True:
            gone, full = await self._run("expire", args)
            total += int(gone)
            if not int(full):
                return total

    # -- reads ---------------------------------------------------------------------------

    async def firing_alerts(self, now: float) -> list[Mapping[str, str]]:
        """Label sets of alerts last seen firing whose state has not expired."""
        found = await self._run("firing", [_num(now)])
        return [json.loads(labels) for labels in found if labels]

    async def alerts_generation(self) -> int:
        """The counter the record script bumps when the firing set changes: one GET."""
        client = self._redis
        with self._guard("alerts_generation"):
            raw = await client.get(f"{self.prefix}alerts:gen")
        return int(raw or 0)

    async def recent_deploys(
        self, since: float, until: float, *, app: str = "", namespace: str = ""
    ) -> list[Deploy]:
        """Deploys in [since, until] of `app` or of `namespace`, newest first (at most 20)."""
        indexes = []
        if app:
            indexes.append(f"{self.prefix}deploys:a:{app}")
        if namespace:
            indexes.append(f"{self.prefix}deploys:ns:{namespace}")
        if not indexes:
            return []
        client = self._redis
        with self._guard("recent_deploys"):
            async with client.pipeline(transaction=False) as pipe:
                for key in indexes:
                    pipe.zrevrangebyscore(key, _num(until), _num(since), start=0, num=20)
                found: list[list[str]] = await pipe.execute()
            members = list(dict.fromkeys(m for ms in found for m in ms))
            data = await client.hmget(f"{self.prefix}deploys", members) if members else []
        deploys = [Deploy.from_dict(json.loads(d)) for d in data if d]
        deploys.sort(key=lambda d: d.at, reverse=True)
        return deploys[:20]

    async def nflog_get(self, receiver: str, group_key: str, now: float) -> NflogEntry | None:
        """The live log entry of (receiver, group), if any."""
        gid = _gid(receiver, group_key)
        raw: str | None
        raw, trusted_until = self._claimed_log.pop(gid, (None, -math.inf))
        if now >= trusted_until:
            client = self._redis
            with self._guard("nflog_get"):
                found = await client.get(f"{self.prefix}nf:{gid}")
            raw = None if found is None else str(found)
        if raw is None:
            return None
        entry = NflogEntry.from_dict(json.loads(raw))
        return entry if entry.expires_at > now else None

    async def firing_groups(self, now: float, limit: int) -> list[NflogEntry]:
        """Live entries with firing alerts, most recently notified first (from `P nff`)."""
        found: list[NflogEntry] = []
        client = self._redis
        chunk = max(limit, 50)
        start = 0
        while len(found) < limit:
            with self._guard("firing_groups"):
                gids = [
                    str(g)
                    for g in await client.zrevrange(f"{self.prefix}nff", start, start + chunk - 1)
                ]
                raws = await client.mget([f"{self.prefix}nf:{g}" for g in gids]) if gids else []
            for raw in raws:
                # Gone (the key's TTL) or expired and not dropped by expire() yet: skipped.
                entry = NflogEntry.from_dict(json.loads(raw)) if raw else None
                if entry is not None and entry.firing and entry.expires_at > now:
                    found.append(entry)
            if len(gids) < chunk:
                break
            start += chunk
        return found[:limit]

    async def pending_count(self) -> int:
        """Notifications waiting for delivery, across all replicas."""
        client = self._redis
        with self._guard("pending_count"):
            raw = await client.get(f"{self.prefix}pending")
        return int(raw or 0)

    async def next_due(self) -> float | None:
        """0 when a group is ready now, else the earliest retry or lease end."""
        client = self._redis
        with self._guard("next_due"):
            async with client.pipeline(transaction=False) as pipe:
                pipe.zcard(f"{self.prefix}ready")
                pipe.zrange(f"{self.prefix}due", 0, 0, withscores=True)
                ready, due = await pipe.execute()
        if ready:
            return 0.0
        return float(due[0][1]) if due else None

    async def list_notifications(
        self,
        limit: int,
        receiver: str | None = None,
        group_key: str | None = None,
        *,
        delivered_in: str | None = None,
    ) -> list[NotificationRecord]:
        """Recent notification records, newest first, optionally of one receiver/group or
        those another record (a digest) carried."""
        query = RecordQuery(receiver=receiver, group_key=group_key, delivered_in=delivered_in)
        records: list[NotificationRecord] = []
        cursor = None
        # Callers of this older form expect full pages: go on past the examine budget.
        while len(records) < limit:
            page = await self.query_notifications(query, limit - len(records), cursor)
            records += page.records
            cursor = page.next_cursor
            if cursor is None:
                break
        return records

    async def query_notifications(
        self, query: RecordQuery, limit: int, cursor: str | None = None
    ) -> RecordPage:
        """Records matching `query` newest first, from the smallest index that applies,
        the other filters checked on each record by one script (at most _QUERY_BUDGET
        examined per call)."""
        before = decode_cursor(cursor)
        if limit <= 0:
            return RecordPage([], None)
        indexes: list[str] = []
        pairs: list[str] = []
        for name, index in _INDEXES.items():
            value = getattr(query, name)
            if value:
                indexes.append(f"{self.prefix}{index}{value}")
                pairs += [name, value]
        if not indexes:
            indexes.append(f"{self.prefix}recs")
        args: list[str | int | float] = [
            "" if before is None else before,
            limit,
            self._query_budget,
            (query.text or "").lower(),
            len(indexes),
            *indexes,
            *pairs,
        ]
        found = await self._run("query", args)
        nxt = str(found[0]) if found[0] else None
        ids = [str(i) for i in found[1:]]
        rows = await self._rows(ids, "query_notifications")
        records = [stored_record(nid, row) for nid, row in zip(ids, rows, strict=True) if row]
        return RecordPage(records, encode_cursor(int(float(nxt))) if nxt else None)

    async def _rows(self, ids: Sequence[str], what: str) -> list[dict[str, str]]:
        if not ids:
            return []
        client = self._redis
        with self._guard(what):
            async with client.pipeline(transaction=False) as pipe:
                for nid in ids:
                    pipe.hgetall(f"{self.prefix}n:{nid}")
                rows: list[dict[str, str]] = await pipe.execute()
        return rows

    async def get_notification(self, notification_id: str) -> NotificationRecord | None:
        """One record by id, if it is kept."""
        [row] = await self._rows([notification_id], "get_notification")
        return stored_record(notification_id, row) if row else None

    async def timeline(self, notification_id: str) -> list[TimelineEntry]:
        """The record's own entries (received, routed, held), then those stored, by time."""
        client = self._redis
        with self._guard("timeline"):
            async with client.pipeline(transaction=False) as pipe:
                pipe.hgetall(f"{self.prefix}n:{notification_id}")
                pipe.lrange(f"{self.prefix}tl:{notification_id}", 0, -1)
                row, raw = await pipe.execute()
        if not row:
            return []
        return merged_timeline(stored_record(notification_id, row), raw)

    async def add_timeline(self, entries: Sequence[tuple[str, TimelineEntry]]) -> None:
        """Append entries to records that exist, each list expiring with its record."""
        if entries:
            args = [x for pair in timeline_texts(entries) for x in pair]
            await self._run("timeline", args)

    async def count_states(self, since: float) -> Mapping[tuple[str, str], int]:
        """Per (state, reason), the records created since `since`, from per-minute counts."""
        flat = await self._run("counts", [_num(since)])
        out: dict[tuple[str, str], int] = {}
        for k in range(0, len(flat), 2):
            state, _, reason = str(flat[k]).partition("|")
            out[(state, reason)] = int(flat[k + 1])
        return out

    async def retry_now(self, notification_id: str, now: float) -> bool:
        """A failed or dead record pending again and due now, in one script."""
        entry = TimelineEntry(now, "retried", "retried now by an admin: pending, attempts reset")
        done = await self._run(
            "retry",
            [
                notification_id,
                _num(now),
                compact_json(entry.to_dict()),
                _ttl(self.keep_records + INDEX_MARGIN),
            ],
        )
        return bool(done)


def _settle(fut: asyncio.Future[Any], value: Any, error: Exception | None) -> None:
    # The caller may have been cancelled meanwhile; its result is then nobody's.
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)


def _timeline_json(entries: Sequence[tuple[str, TimelineEntry]]) -> str:
    # An empty table encodes as {} in Lua's cjson and decodes back the same: ipairs skips it.
    return compact_json([[nid, text] for nid, text in timeline_texts(entries)])
