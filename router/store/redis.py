"""Redis store: shared state for several replicas behind one Service.

Every decision that two replicas could race on is one Lua script, so Redis runs it alone:
recording a webhook, claiming due groups, releasing and completing a claim. Keys (all under
the prefix `P`, default `alert-router:`; `gid` is the JSON `[receiver, group_key]`):

- `P n:<id>` hash, one notification (route, events, state, attempts, ...). No TTL while
  pending: accepted work is never dropped by Redis; once finished it gets a TTL of
  `keep_records` plus a day, and `expire()` deletes it at `keep_records`.
- `P q:<gid>` list, the group's pending notification ids in recording order. Exists only
  while the group has pending work (bounded by the outbox).
- `P ready` zset, groups with work due at once, scored by the seq of their oldest pending
  notification (so groups are claimed first come, first served).
- `P due` zset, groups waiting for a time: a retry's backoff, or the end of a lease. A
  group is in at most one of `ready` and `due`, and in neither when nothing is pending.
- `P lease:<gid>` string, the token of the claim holding the group; a TTL of the lease plus
  a minute, so a lost lease key cannot outlive its use.
- `P nf:<gid>` string, the notification log entry (JSON), TTL until its `expires_at`;
  `P nfx` zset of groups by `expires_at` lets `expire()` count and drop them.
- `P recs`, `P recs:r:<receiver>`, `P recs:k:<group_key>` zsets of notification ids by seq,
  for `list_notifications` newest first; `P done` zset of finished ids by finish time, for
  `expire()`. All trimmed by `expire()`, and each has a TTL refreshed on write.
- `P alerts` hash fingerprint -> labels of firing alerts, `P alerts:x` zset by expiry.
- `P deploys` hash, `P deploys:x`, `P deploys:a:<app>`, `P deploys:ns:<namespace>` zsets by
  deploy time; trimmed after 7 days, TTL refreshed on write.
- `P seq` (notification counter) and `P pending` (outbox depth): one integer each, no TTL.

Claims: `claim` takes the oldest `ready` groups, then `due` groups whose time has come,
moves each to `due` scored at the lease's end and stores a fresh token in `P lease:<gid>`.
A leased group is never in `ready` and its `due` score is in the future, so no other worker
can take it until the lease runs out; then it is simply due again (takeover). `release`
and `complete` act only while `P lease:<gid>` still holds the claim's token: a worker whose
lease ran out and was taken over (or whose group was already completed) changes nothing.
Webhooks recorded for a leased group wait in its queue and make it `ready` again when the
claim ends. `close()` gives claims the process did not finish (a shutdown's cancelled
deliveries) back at once instead of leaving them to their lease; `open()` touches no lease.

URL: `redis://[[user]:password@]host:port/db` or `rediss://...`. Without a password in the
URL, the one in the environment variable `password_env` is used (`open_store` names
`ROUTER_REDIS_PASSWORD`). Two store settings may ride on the URL's query string and are
removed before connecting: `lease=30s` (how long a claim is held before another replica may
take it over; default: what the worker asks for, 120 s) and `keep_records=1d` (how long
finished notification records are kept; default: what the worker asks for, 7 days).

Durability: `record` returns once Redis has executed the script; how much survives a crash
of Redis itself is Redis's persistence setting (use `appendonly yes`, `appendfsync always`
to lose nothing acknowledged). Not for Redis Cluster: scripts build their key names.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router.config.schema import parse_duration
from router.model import (
    AlertState,
    Claim,
    DeliveryState,
    Deploy,
    Event,
    NflogEntry,
    Notification,
    NotificationRecord,
    Outcome,
    RouteSettings,
)
from router.secrets import redact_url
from router.store.protocols import DEPLOY_TTL, StoreUnavailable, events_json

# Finished records' retention when the URL sets no keep_records (as delivery.KEEP_RECORDS).
DEFAULT_KEEP_RECORDS = 7 * 86400.0
# Key TTLs are a safety net behind expire(), which is exact: give them room.
TTL_MARGIN = 86400
LEASE_KEY_MARGIN = 60
# Index keys outlive the records they list by this much (a pending notification can wait
# up to state.dead_after, a day by default, before it finishes).
INDEX_MARGIN = 2 * 86400
SOCKET_TIMEOUT = 2.0
_EXPIRE_BATCH = 500
_CLAIMED_LOG_MAX = 10_000
_LIST_PAGE = 200

# Redis answers these while it cannot serve writes; they are outages, not bugs.
_OUTAGE_ERRORS = ("OOM", "MISCONF", "READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY")

_LUA_RECORD = """
local P = ARGV[1]
local n, na, nd = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local index_ttl, deploy_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local function extend(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
local i = 7
for _ = 1, n do
  local id, gid, receiver, group_key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local route, events, created = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  i = i + 7
  local nkey = P .. 'n:' .. id
  -- A client retrying after a lost reply must not queue the notification twice.
  if redis.call('EXISTS', nkey) == 0 then
    local seq = redis.call('INCR', P .. 'seq')
    redis.call('HSET', nkey, 'receiver', receiver, 'group_key', group_key, 'gid', gid,
      'route', route, 'events', events, 'created_at', created, 'updated_at', created,
      'state', 'pending', 'reason', '', 'attempts', 0, 'last_error', '',
      'next_attempt_at', 0, 'delivered_in', '', 'seq', seq)
    redis.call('RPUSH', P .. 'q:' .. gid, id)
    -- A held group stays held; otherwise new work supersedes a retry's backoff.
    if redis.call('EXISTS', P .. 'lease:' .. gid) == 0 then
      redis.call('ZREM', P .. 'due', gid)
      redis.call('ZADD', P .. 'ready', 'NX', seq, gid)
    end
    for _, idx in ipairs({P .. 'recs', P .. 'recs:r:' .. receiver, P .. 'recs:k:' .. group_key}) do
      redis.call('ZADD', idx, seq, id)
      redis.call('EXPIRE', idx, index_ttl)
    end
    redis.call('INCR', P .. 'pending')
  end
end
for _ = 1, na do
  local fp, labels, firing, expires, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3],
    tonumber(ARGV[i + 4])
  i = i + 5
  if firing == '1' and ttl > 0 then
    redis.call('HSET', P .. 'alerts', fp, labels)
    redis.call('ZADD', P .. 'alerts:x', expires, fp)
    extend(P .. 'alerts', ttl)
    extend(P .. 'alerts:x', ttl)
  else
    redis.call('HDEL', P .. 'alerts', fp)
    redis.call('ZREM', P .. 'alerts:x', fp)
  end
end
for _ = 1, nd do
  local member, app, ns, data, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  redis.call('HSET', P .. 'deploys', member, data)
  local idx = {P .. 'deploys:x'}
  if app ~= '' then idx[#idx + 1] = P .. 'deploys:a:' .. app end
  if ns ~= '' then idx[#idx + 1] = P .. 'deploys:ns:' .. ns end
  for _, key in ipairs(idx) do
    redis.call('ZADD', key, at, member)
    redis.call('EXPIRE', key, deploy_ttl)
  end
  redis.call('EXPIRE', P .. 'deploys', deploy_ttl)
end
return 1
"""

_LUA_CLAIM = """
local P, now, limit, lease_until, token, lease_ttl =
  ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local gids = redis.call('ZRANGE', P .. 'ready', 0, limit - 1)
if #gids < limit then
  local more = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now, 'LIMIT', 0, limit - #gids)
  for _, gid in ipairs(more) do gids[#gids + 1] = gid end
end
local out, seen = {}, {}
for _, gid in ipairs(gids) do
  if not seen[gid] then
    seen[gid] = true
    local q = P .. 'q:' .. gid
    redis.call('ZREM', P .. 'ready', gid)
    -- The log entry as of taking the lease: only the lease holder writes it from now on.
    local group = {redis.call('GET', P .. 'nf:' .. gid) or ''}
    for _, id in ipairs(redis.call('LRANGE', q, 0, -1)) do
      local f = redis.call('HMGET', P .. 'n:' .. id,
        'receiver', 'group_key', 'route', 'events', 'created_at', 'attempts')
      if f[1] then
        group[#group + 1] = id
        for k = 1, 6 do group[#group + 1] = f[k] end
      else
        redis.call('LREM', q, 0, id)
      end
    end
    if #group == 1 then
      redis.call('ZREM', P .. 'due', gid)
      redis.call('DEL', P .. 'lease:' .. gid)
    else
      redis.call('ZADD', P .. 'due', lease_until, gid)
      redis.call('SET', P .. 'lease:' .. gid, token, 'EX', lease_ttl)
      out[#out + 1] = group
    end
  end
end
return out
"""

# After a claim ends, webhooks recorded meanwhile make the group ready at once.
_LUA_REQUEUE = """
local function requeue(P, gid, otherwise_due)
  local q = P .. 'q:' .. gid
  local first = redis.call('LINDEX', q, 0)
  if not first then
    redis.call('ZREM', P .. 'due', gid)
    redis.call('ZREM', P .. 'ready', gid)
  elseif otherwise_due then
    redis.call('ZREM', P .. 'ready', gid)
    redis.call('ZADD', P .. 'due', otherwise_due, gid)
  else
    redis.call('ZREM', P .. 'due', gid)
    redis.call('ZADD', P .. 'ready', redis.call('HGET', P .. 'n:' .. first, 'seq') or 0, gid)
  end
end
"""

_LUA_RELEASE = (
    _LUA_REQUEUE
    + """
local P, gid, token, next_at, err, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local lease = P .. 'lease:' .. gid
if redis.call('GET', lease) ~= token then return 0 end
local held = 0
for k = 7, #ARGV do
  local nkey = P .. 'n:' .. ARGV[k]
  if redis.call('HGET', nkey, 'state') == 'pending' then
    redis.call('HINCRBY', nkey, 'attempts', 1)
    redis.call('HSET', nkey, 'last_error', err, 'next_attempt_at', next_at, 'updated_at', now)
    held = held + 1
  end
end
redis.call('DEL', lease)
-- Only the claimed notifications wait for the retry; newer ones are due at once.
if redis.call('LLEN', P .. 'q:' .. gid) > held then
  requeue(P, gid, nil)
else
  requeue(P, gid, next_at)
end
return 1
"""
)

_LUA_COMPLETE = (
    _LUA_REQUEUE
    + """
local P, gid, token, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local state, reason, err, attempted = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local delivered_in, record_ttl = ARGV[9], tonumber(ARGV[10])
local entry, entry_ttl, entry_expires = ARGV[11], tonumber(ARGV[12]), ARGV[13]
local lease = P .. 'lease:' .. gid
-- Not our lease any more: taken over after it expired, or already completed.
if redis.call('GET', lease) ~= token then return 0 end
local q = P .. 'q:' .. gid
for k = 14, #ARGV do
  local id = ARGV[k]
  local nkey = P .. 'n:' .. id
  if redis.call('HGET', nkey, 'state') == 'pending' then
    redis.call('HSET', nkey, 'state', state, 'reason', reason, 'updated_at', now,
      'delivered_in', delivered_in)
    if err ~= '' then redis.call('HSET', nkey, 'last_error', err) end
    if attempted > 0 then redis.call('HINCRBY', nkey, 'attempts', attempted) end
    redis.call('EXPIRE', nkey, record_ttl)
    redis.call('ZADD', P .. 'done', now, id)
    redis.call('EXPIRE', P .. 'done', record_ttl)
    redis.call('LREM', q, 1, id)
    redis.call('DECR', P .. 'pending')
  end
end
redis.call('DEL', lease)
requeue(P, gid, nil)
if entry ~= '' then
  if entry_ttl > 0 then
    redis.call('SET', P .. 'nf:' .. gid, entry, 'EX', entry_ttl)
    redis.call('ZADD', P .. 'nfx', entry_expires, gid)
    if redis.call('TTL', P .. 'nfx') < entry_ttl then
      redis.call('EXPIRE', P .. 'nfx', entry_ttl)
    end
  else
    redis.call('DEL', P .. 'nf:' .. gid)
    redis.call('ZREM', P .. 'nfx', gid)
  end
end
return 1
"""
)

# A claim this process will not finish (shutdown): ready for another replica at once.
_LUA_GIVE_BACK = (
    _LUA_REQUEUE
    + """
local P, given = ARGV[1], 0
for k = 2, #ARGV, 2 do
  local gid, token = ARGV[k], ARGV[k + 1]
  local lease = P .. 'lease:' .. gid
  if redis.call('GET', lease) == token then
    redis.call('DEL', lease)
    requeue(P, gid, nil)
    given = given + 1
  end
end
return given
"""
)

_LUA_EXPIRE = """
local P, now, records_before, deploys_before, batch =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local gone, full = 0, 0
local function due(key, upto)
  local items = redis.call('ZRANGEBYSCORE', key, '-inf', upto, 'LIMIT', 0, batch)
  if #items == batch then full = 1 end
  gone = gone + #items
  return items
end
for _, gid in ipairs(due(P .. 'nfx', now)) do
  redis.call('DEL', P .. 'nf:' .. gid)
  redis.call('ZREM', P .. 'nfx', gid)
end
for _, fp in ipairs(due(P .. 'alerts:x', now)) do
  redis.call('HDEL', P .. 'alerts', fp)
  redis.call('ZREM', P .. 'alerts:x', fp)
end
for _, member in ipairs(due(P .. 'deploys:x', '(' .. deploys_before)) do
  local key = cjson.decode(member)
  redis.call('ZREM', P .. 'deploys:a:' .. key[1], member)
  redis.call('ZREM', P .. 'deploys:ns:' .. key[2], member)
  redis.call('HDEL', P .. 'deploys', member)
  redis.call('ZREM', P .. 'deploys:x', member)
end
for _, id in ipairs(due(P .. 'done', '(' .. records_before)) do
  local nkey = P .. 'n:' .. id
  local f = redis.call('HMGET', nkey, 'receiver', 'group_key')
  if f[1] then
    redis.call('ZREM', P .. 'recs:r:' .. f[1], id)
    redis.call('ZREM', P .. 'recs:k:' .. f[2], id)
  end
  redis.call('DEL', nkey)
  redis.call('ZREM', P .. 'recs', id)
  redis.call('ZREM', P .. 'done', id)
end
return {gone, full}
"""

_LUA_FIRING = """
local P, now = ARGV[1], ARGV[2]
local fps = redis.call('ZRANGEBYSCORE', P .. 'alerts:x', '(' .. now, '+inf')
local out = {}
-- In slices: Lua's unpack() cannot spread tens of thousands of values.
for first = 1, #fps, 1000 do
  local slice = {}
  for k = first, math.min(first + 999, #fps) do slice[#slice + 1] = fps[k] end
  for _, labels in ipairs(redis.call('HMGET', P .. 'alerts', unpack(slice))) do
    if labels then out[#out + 1] = labels end
  end
end
return out
"""


def _num(value: float) -> str:
    """A float as Redis and Lua read it back exactly (repr round-trips)."""
    return repr(float(value))


def _ttl(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _gid(receiver: str, group_key: str) -> str:
    # JSON keeps any receiver and group key apart, whatever characters they hold.
    return json.dumps([receiver, group_key], separators=(",", ":"))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def split_url(url: str) -> tuple[str, dict[str, float]]:
    """Remove the store's own settings (`lease`, `keep_records`) from a Redis URL's query
    string; returns the URL for redis-py and the settings in seconds."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a redis URL: {parts.scheme}://...")
    settings: dict[str, float] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("lease", "keep_records"):
            # Bare numbers are seconds (`lease=2.5`); else a duration (`lease=30s`).
            try:
                seconds = float(value)
            except ValueError:
                seconds = parse_duration(value)
            if seconds <= 0:
                raise ValueError(f"{key} must be positive")
            settings[key] = seconds
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), settings


def _is_outage(exc: ResponseError) -> bool:
    return str(exc).split(" ", 1)[0] in _OUTAGE_ERRORS


class RedisStore:
    """The `Store` protocol on Redis, shared by every replica using the same key prefix."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "alert-router:",
        password_env: str | None = None,
    ) -> None:
        self._url, settings = split_url(url)
        self.prefix = key_prefix
        self.lease: float | None = settings.get("lease")
        self.keep_records: float | None = settings.get("keep_records")
        self._where = redact_url(self._url)
        self._password_env = password_env
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        # gid -> (log entry as raw JSON or None, trusted until) read with a claim.
        self._claimed_log: dict[str, tuple[str | None, float]] = {}
        # gid -> token of the claims this process holds and has not finished.
        self._held: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, key_prefix={self.prefix!r})"

    # -- plumbing ------------------------------------------------------------------------

    def _connect(self) -> aioredis.Redis:
        kwargs: dict[str, Any] = {}
        if urlsplit(self._url).password is None and self._password_env:
            password = os.environ.get(self._password_env, "")
            if password:
                kwargs["password"] = password
        client = aioredis.Redis.from_url(
            self._url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            # One immediate retry on a fresh connection: a pooled connection is dead after
            # Redis restarts. No retry on timeouts (a slow Redis gets 503s, not pile-ups).
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            **kwargs,
        )
        for name, lua in (
            ("record", _LUA_RECORD),
            ("claim", _LUA_CLAIM),
            ("release", _LUA_RELEASE),
            ("complete", _LUA_COMPLETE),
            ("expire", _LUA_EXPIRE),
            ("firing", _LUA_FIRING),
            ("give_back", _LUA_GIVE_BACK),
        ):
            self._scripts[name] = client.register_script(lua)
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

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check Redis answers. Leases of other replicas are left alone."""
        if self._client is None:
            self._client = self._connect()
        await self.ping()

    async def close(self) -> None:
        """Hand claims this process still holds to the other replicas, then disconnect;
        nothing is buffered, every write was acknowledged."""
        held, self._held = self._held, {}
        if self._client is not None:
            # Without this, deliveries cut short by a shutdown would wait for their lease
            # (2 minutes) before another replica takes them.
            with contextlib.suppress(StoreUnavailable):
                await self._run("give_back", [x for pair in held.items() for x in pair])
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

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
        # Alert TTLs are relative to the webhook's own clock (the notifications' time).
        ref = max(n.created_at.timestamp() for n in notifications) if notifications else time.time()
        keep = self.keep_records or DEFAULT_KEEP_RECORDS
        args: list[str | int | float] = [
            len(notifications),
            len(alerts),
            len(deploys),
            _ttl(keep + INDEX_MARGIN),
            _ttl(DEPLOY_TTL + TTL_MARGIN),
        ]
        for n, events in zip(notifications, events_json(notifications), strict=True):
            created = _num(n.created_at.timestamp())
            args += [
                n.id,
                _gid(n.receiver, n.group_key),
                n.receiver,
                n.group_key,
                _dumps(n.route.to_dict()),
                events,
                created,
            ]
        for a in alerts:
            remaining = a.expires_at - ref
            args += [
                a.fingerprint,
                _dumps(dict(a.labels)),
                "1" if a.firing else "0",
                _num(a.expires_at),
                _ttl(remaining + TTL_MARGIN) if remaining > 0 else 0,
            ]
        for d in deploys:
            member = _dumps([d.app, d.namespace, d.revision, d.trigger])
            args += [member, d.app, d.namespace, _dumps(d.to_dict()), _num(d.at)]
        await self._run("record", args)

    async def claim(self, now: float, limit: int, lease: float) -> list[Claim]:
        """Atomically take up to `limit` due groups, each with all its pending webhooks."""
        if limit <= 0:
            return []
        held = self.lease if self.lease is not None else lease
        token = uuid.uuid4().hex
        groups = await self._run(
            "claim",
            [_num(now), limit, _num(now + held), token, _ttl(held + LEASE_KEY_MARGIN)],
        )
        claims: list[Claim] = []
        for flat in groups:
            notifications: list[Notification] = []
            attempts = 0
            receiver = group_key = ""
            for i in range(1, len(flat), 7):
                nid, receiver, group_key, route, events, created, tried = flat[i : i + 7]
                notifications.append(
                    Notification(
                        id=nid,
                        route=RouteSettings.from_dict(json.loads(route)),
                        group_key=group_key,
                        events=[Event.from_dict(e) for e in json.loads(events)],
                        created_at=datetime.fromtimestamp(float(created), UTC),
                    )
                )
                attempts = max(attempts, int(tried))
            claims.append(Claim(receiver, group_key, notifications, attempts, token))
            gid = _gid(receiver, group_key)
            self._remember_log(gid, flat[0] or None, held)
            self._hold(gid, token)
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

    def _remember_log(self, gid: str, raw: str | None, held: float) -> None:
        # Dedup asks for the log entry right after the claim. Only the lease holder writes
        # it, so the value read with the claim stays current while the lease lasts (trusted
        # for half of it); it saves a round trip per delivery. Bounded, as claims dropped
        # mid-way leave entries behind.
        self._claimed_log.pop(gid, None)
        self._claimed_log[gid] = (raw, time.monotonic() + held / 2)
        while len(self._claimed_log) > _CLAIMED_LOG_MAX:
            del self._claimed_log[next(iter(self._claimed_log))]

    async def release(self, claim: Claim, next_attempt_at: float, error: str, now: float) -> None:
        """Give the claim back for a retry at `next_attempt_at`, if it still holds the lease."""
        gid = _gid(claim.receiver, claim.group_key)
        self._finished(gid, claim.token)
        await self._run(
            "release",
            [
                gid,
                claim.token,
                _num(next_attempt_at),
                error,
                _num(now),
                *claim.ids,
            ],
        )

    async def complete(self, claim: Claim, outcome: Outcome, now: float) -> None:
        """Finish the claim and write its log entry in one script; a no-op once the lease
        was taken over or the claim already completed."""
        attempted = 1 if outcome.state is not DeliveryState.SUPPRESSED else 0
        keep = self.keep_records or DEFAULT_KEEP_RECORDS
        entry, entry_ttl, entry_expires = "", 0, "0"
        if outcome.nflog is not None:
            entry = _dumps(outcome.nflog.to_dict())
            remaining = outcome.nflog.expires_at - now
            entry_ttl = _ttl(remaining) if remaining > 0 else 0
            entry_expires = _num(outcome.nflog.expires_at)
        gid = _gid(claim.receiver, claim.group_key)
        self._finished(gid, claim.token)
        await self._run(
            "complete",
            [
                gid,
                claim.token,
                _num(now),
                outcome.state.value,
                outcome.reason,
                outcome.error,
                attempted,
                outcome.delivered_in,
                _ttl(keep + TTL_MARGIN),
                entry,
                entry_ttl,
                entry_expires,
                *claim.ids,
            ],
        )

    async def expire(self, now: float, keep_records: float) -> int:
        """Drop expired log entries, alert states, old deploys and finished records, in
        batches so Redis never blocks long; returns how many went."""
        keep = min(keep_records, self.keep_records) if self.keep_records else keep_records
        args: list[str | int | float] = [
            _num(now),
            _num(now - keep),
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
        raw, trusted_until = self._claimed_log.pop(gid, (None, 0.0))
        if time.monotonic() >= trusted_until:
            client = self._redis
            with self._guard("nflog_get"):
                found = await client.get(f"{self.prefix}nf:{gid}")
            raw = None if found is None else str(found)
        if raw is None:
            return None
        entry = NflogEntry.from_dict(json.loads(raw))
        return entry if entry.expires_at > now else None

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
        self, limit: int, receiver: str | None = None, group_key: str | None = None
    ) -> list[NotificationRecord]:
        """Recent notification records, newest first, optionally of one receiver/group."""
        if group_key:
            index = f"{self.prefix}recs:k:{group_key}"
        elif receiver:
            index = f"{self.prefix}recs:r:{receiver}"
        else:
            index = f"{self.prefix}recs"
        client = self._redis
        records: list[NotificationRecord] = []
        stale: list[str] = []
        start = 0
        with self._guard("list_notifications"):
            while len(records) < limit:
                page = max(limit - len(records), _LIST_PAGE if group_key and receiver else 1)
                ids = [str(i) for i in await client.zrevrange(index, start, start + page - 1)]
                if not ids:
                    break
                start += len(ids)
                async with client.pipeline(transaction=False) as pipe:
                    for nid in ids:
                        pipe.hgetall(f"{self.prefix}n:{nid}")
                    rows: list[dict[str, str]] = await pipe.execute()
                for nid, row in zip(ids, rows, strict=True):
                    if not row:
                        # Its hash outlived its TTL before expire() ran: drop the index entry.
                        stale.append(nid)
                    elif receiver and row["receiver"] != receiver:
                        continue
                    elif len(records) < limit:
                        records.append(_record(nid, row))
            if stale:
                await client.zrem(index, *stale)
        return records


def _record(nid: str, row: Mapping[str, str]) -> NotificationRecord:
    route = json.loads(row["route"])
    return NotificationRecord(
        id=nid,
        receiver=row["receiver"],
        group_key=row["group_key"],
        route_path=route.get("path", ""),
        alerts=json.loads(row["events"]),
        state=row["state"],
        reason=row["reason"],
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        delivered_in=row["delivered_in"],
    )
