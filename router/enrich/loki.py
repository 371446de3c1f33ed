"""Loki log excerpts for alerts: LogQL from a jinja2 template, one bounded `query_range` call.

`LokiEnricher.lookup` never raises and never takes longer than `enrich.loki.timeout`: every
failure (missing label, timeout, connection error, Loki's plain-text 4xx/5xx errors, a body
that is not a streams response) becomes a `LogExcerpt` whose `note` says why in one line.

The query template is rendered in the LogQL sandbox of `router/enrich/logql.py`.

Load protection: identical queries (same LogQL, same start bucket, same tenant) within
`cache_ttl` are answered from an LRU cache; identical queries already in flight are joined
(single flight); at most `max_concurrency` requests reach Loki at once, and waiting for a
slot counts against the same timeout, so a storm cannot overload Loki or delay delivery.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp

from router.cancel import cancel_and_wait
from router.config.schema import LokiConfig
from router.durations import format_duration
from router.enrich.logql import LogQLTemplate, MissingLabelError, QueryTemplateError
from router.enrich.streams import MalformedResponse, clean_line, one_line, parse_streams
from router.metrics import Metrics
from router.render.message import LogExcerpt

log = logging.getLogger(__name__)

ENRICHER = "loki"
QUERY_RANGE_PATH = "/loki/api/v1/query_range"
DEFAULT_CACHE_SIZE = 1024
# Transient failures (timeouts, 5xx, unreachable) are remembered only briefly: long enough
# to spare a struggling Loki the same query from every receiver, short enough to recover.
FAILURE_CACHE_TTL = 5.0
# Alerts of one storm start seconds apart; a lookback of minutes makes their windows
# practically the same, so they share one query.
DEFAULT_START_BUCKET = 60.0
# An excerpt is at most a few hundred lines; anything far bigger is not a sane answer.
MAX_BODY_BYTES = 8 * 1024 * 1024

# Failure reasons, the `reason` label of alert_router_enrich_failures_total.
REASON_MISSING_LABEL = "missing_label"
REASON_TEMPLATE = "template"
REASON_TIMEOUT = "timeout"
REASON_OVERLOADED = "overloaded"
REASON_UNREACHABLE = "unreachable"
REASON_REJECTED = "rejected"
REASON_SERVER_ERROR = "server_error"
REASON_MALFORMED = "malformed"
REASON_INTERNAL = "internal"
REASON_CIRCUIT_OPEN = "circuit_open"
# After this many transient failures in a row, Loki is left alone for a while: a hanging
# Loki must not hold every delivery for the full timeout during a storm.
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN = 30.0
TRANSIENT_REASONS = frozenset(
    {REASON_TIMEOUT, REASON_OVERLOADED, REASON_UNREACHABLE, REASON_SERVER_ERROR, REASON_INTERNAL}
)

# Our own deadline (asyncio.timeout) bounds every call; aiohttp's must not fire first with
# a different error.
_NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None)
_NS_PER_SECOND = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ---- helpers ---------------------------------------------------------------------------


def epoch_ns(when: datetime) -> int:
    """Nanoseconds since the Unix epoch, exact; naive datetimes are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


def _connection_detail(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        # A resolver failure (ClientConnectorDNSError in newer aiohttp) carries a gaierror.
        if isinstance(exc.os_error, socket.gaierror):
            return f"cannot resolve {exc.host}"
        errno = exc.os_error.errno
        if errno:
            return os.strerror(errno).lower()
        return one_line(str(exc.os_error) or "connection failed", 120)
    return one_line(str(exc), 120) or type(exc).__name__


# ---- the client -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LokiResult:
    """An excerpt and, when it is one, the failure reason (a metrics `reason` label)."""

    excerpt: LogExcerpt
    failure: str | None = None


@dataclass(slots=True)
class _CacheEntry:
    result: LokiResult
    end: datetime
    ttl: float


_Key = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class BreakerState:
    """The Loki circuit breaker as the console shows it."""

    # Seconds until Loki is asked again; 0 while queries go out.
    open_for: float
    failures_in_a_row: int
    last_failure: str


class LokiEnricher:
    """Fetches log excerpts from Loki for alerts; shared by every receiver's enrichment."""

    def __init__(
        self,
        cfg: LokiConfig,
        metrics: Metrics | None = None,
        *,
        http: aiohttp.ClientSession,
        max_concurrency: int = 4,
        cache_ttl: float = 30.0,
        cache_size: int = DEFAULT_CACHE_SIZE,
        start_bucket: float = DEFAULT_START_BUCKET,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.cfg = cfg
        self._metrics = metrics
        self._max_concurrency = max_concurrency
        self._cache_ttl = cache_ttl
        self._cache_size = max(cache_size, 1)
        self._bucket_ns = max(int(start_bucket * _NS_PER_SECOND), 1)
        self._url = cfg.url.strip().rstrip("/") + QUERY_RANGE_PATH
        self._template: LogQLTemplate | None = None
        self._template_error = ""
        try:
            self._template = LogQLTemplate(cfg.query)
        except QueryTemplateError as exc:
            self._template_error = str(exc)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._cache: collections.OrderedDict[_Key, _CacheEntry] = collections.OrderedDict()
        self._inflight: dict[_Key, asyncio.Task[LokiResult]] = {}
        self._http = http
        self._failures_in_a_row = 0
        self._last_failure = ""
        self._open_until = 0.0

    # ---- public ------------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        """The most one excerpt may take (`enrich.loki.timeout`)."""
        return self.cfg.timeout

    def render_query(self, labels: Mapping[str, str]) -> str:
        """The LogQL for these labels; raises `MissingLabelError` / `QueryTemplateError`."""
        if self._template is None:
            raise QueryTemplateError(self._template_error)
        return self._template.render(labels)

    def query_or_none(self, labels: Mapping[str, str]) -> str | None:
        """The LogQL for these labels, or None when the template cannot give one."""
        try:
            return self.render_query(labels)
        except (MissingLabelError, QueryTemplateError):
            return None

    async def lookup(
        self, labels: Mapping[str, str], starts_at: datetime | None, now: datetime
    ) -> LokiResult:
        """The newest log lines for an alert (or a note saying why there are none), and
        whether (and why) that failed. Never raises."""
        try:
            query = self.render_query(labels)
        except MissingLabelError as exc:
            return self._failed(REASON_MISSING_LABEL, f"no log query: label {exc.label!r} missing")
        except QueryTemplateError as exc:
            return self._failed(REASON_TEMPLATE, f"no log query: {exc}")
        return await self.query(query, starts_at, now)

    async def query(self, query: str, starts_at: datetime | None, now: datetime) -> LokiResult:
        """Run (or reuse) the `query_range` call for `query` over the alert's window."""
        try:
            return await self._query(query, starts_at, now)
        except asyncio.CancelledError:
            raise
        except Exception:  # enrichment must never stop a notification
            log.exception("loki enrichment failed", extra={"query": query})
            return self._failed(
                REASON_INTERNAL, "log excerpt failed: internal error (see logs)", query
            )

    async def close(self) -> None:
        """Cancel queries in flight (the HTTP pool is not its to close)."""
        await cancel_and_wait(self._inflight.values())
        self._inflight.clear()

    # ---- internals ---------------------------------------------------------------------

    def _failed(self, reason: str, note: str, query: str = "") -> LokiResult:
        if self._metrics is not None:
            self._metrics.enrich_failures.labels(enricher=ENRICHER, reason=reason).inc()
        return LokiResult(LogExcerpt(query=query, note=note), reason)

    def _window(self, starts_at: datetime | None, now: datetime) -> tuple[int, int]:
        lookback_ns = int(self.cfg.lookback * _NS_PER_SECOND)
        end = epoch_ns(now)
        start = epoch_ns(starts_at or now) - lookback_ns
        if start >= end:
            # An alert "starting" after our now (clock skew) still gets the lookback window.
            start = end - max(lookback_ns, 1)
        return start, end

    def breaker(self) -> BreakerState:
        """Whether Loki is being skipped after failures, and the last one."""
        return BreakerState(self._breaker_open(), self._failures_in_a_row, self._last_failure)

    def _breaker_open(self) -> float:
        """Seconds until Loki is tried again, or 0 when queries may go out."""
        return max(0.0, self._open_until - time.monotonic())

    def _note_outcome(self, result: LokiResult) -> None:
        if result.failure in TRANSIENT_REASONS:
            self._failures_in_a_row += 1
            self._last_failure = result.excerpt.note
            if self._failures_in_a_row >= BREAKER_THRESHOLD:
                self._open_until = time.monotonic() + BREAKER_COOLDOWN
                # Half-open afterwards: one more failure opens it again.
                self._failures_in_a_row = BREAKER_THRESHOLD - 1
        elif result.failure is None or result.failure == REASON_REJECTED:
            # Loki answered: it is up, whatever it thought of the query.
            self._failures_in_a_row = 0

    async def _query(self, query: str, starts_at: datetime | None, now: datetime) -> LokiResult:
        start_ns, end_ns = self._window(starts_at, now)
        key: _Key = (query, start_ns // self._bucket_ns, self.cfg.tenant)
        cached = self._cache_get(key, now)
        if cached is not None:
            self._count_hit()
            return cached
        wait = self._breaker_open()
        if wait > 0:
            return self._failed(
                REASON_CIRCUIT_OPEN,
                f"Loki skipped after {BREAKER_THRESHOLD} failures in a row "
                f"({self._last_failure}); next try in {format_duration(wait)}",
                query,
            )
        flight = self._inflight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch(key, query, start_ns, end_ns, now))
            self._inflight[key] = flight
            flight.add_done_callback(lambda done: self._forget(key, done))
        else:
            # Joining a query in flight costs Loki nothing, like a cache hit.
            self._count_hit()
        try:
            # Shielded: one waiter giving up must not cancel the query the others share.
            return await asyncio.shield(flight)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if flight.cancelled() and (current is None or not current.cancelling()):
                # The shared query was cancelled by close(), not us.
                return LokiResult(LogExcerpt(query=query, note="Loki query cancelled"))
            raise

    def _forget(self, key: _Key, task: asyncio.Task[LokiResult]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    def _count_hit(self) -> None:
        if self._metrics is not None:
            self._metrics.enrich_cache_hits.labels(enricher=ENRICHER).inc()

    def _cache_get(self, key: _Key, now: datetime) -> LokiResult | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        # Fresh while our end is within the TTL of the cached answer's end: in effect the
        # end bucket. A `now` earlier than the cached end (receivers' clocks) still counts.
        if (now - entry.end).total_seconds() >= entry.ttl:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry.result

    def _cache_put(self, key: _Key, result: LokiResult, end: datetime) -> None:
        ttl = self._cache_ttl
        if result.failure in TRANSIENT_REASONS:
            ttl = min(ttl, FAILURE_CACHE_TTL)
        if ttl <= 0:
            return
        self._cache[key] = _CacheEntry(result, end, ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _fetch(
        self, key: _Key, query: str, start_ns: int, end_ns: int, now: datetime
    ) -> LokiResult:
        result = await self._request(query, start_ns, end_ns)
        self._note_outcome(result)
        self._cache_put(key, result, now)
        return result

    async def _request(self, query: str, start_ns: int, end_ns: int) -> LokiResult:
        params = {
            "query": query,
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": str(self.cfg.max_lines),
            "direction": "backward",
        }
        headers = {"Accept": "application/json"}
        if self.cfg.tenant:
            headers["X-Scope-OrgID"] = self.cfg.tenant
        timeout = self.cfg.timeout
        acquired = False
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout), self._semaphore:
                acquired = True
                if self._metrics is not None:
                    self._metrics.enrich_queries.labels(enricher=ENRICHER).inc()
                async with self._http.get(
                    self._url, params=params, headers=headers, timeout=_NO_AIOHTTP_TIMEOUT
                ) as resp:
                    body = await _read_capped(resp, MAX_BODY_BYTES)
                    status = resp.status
                    reason_phrase = resp.reason or ""
                    content_type = resp.content_type
        except TimeoutError:
            if not acquired:
                return self._failed(
                    REASON_OVERLOADED,
                    f"Loki busy: no query slot free within {format_duration(timeout)} "
                    f"({self._max_concurrency} queries in flight)",
                    query,
                )
            return self._failed(
                REASON_TIMEOUT, f"Loki timed out after {format_duration(timeout)}", query
            )
        except _TooLarge:
            return self._failed(
                REASON_MALFORMED,
                f"Loki sent a malformed response: more than {MAX_BODY_BYTES} bytes",
                query,
            )
        except aiohttp.ClientError as exc:
            return self._failed(
                REASON_UNREACHABLE, f"Loki unreachable: {_connection_detail(exc)}", query
            )
        except OSError as exc:
            detail = os.strerror(exc.errno).lower() if exc.errno else one_line(str(exc), 120)
            return self._failed(REASON_UNREACHABLE, f"Loki unreachable: {detail}", query)
        finally:
            if acquired and self._metrics is not None:
                self._metrics.enrich_duration.labels(enricher=ENRICHER).observe(
                    time.perf_counter() - started
                )
        return self._interpret(query, status, reason_phrase, content_type, body)

    def _interpret(
        self, query: str, status: int, reason_phrase: str, content_type: str, body: bytes
    ) -> LokiResult:
        if status != 200:
            # Loki's errors are plain text (pkg/util/server/error.go), one line at most.
            text = one_line(body.decode("utf-8", "replace")) or reason_phrase
            if 400 <= status < 500:
                return self._failed(
                    REASON_REJECTED, f"Loki rejected the query ({status}): {text}", query
                )
            return self._failed(REASON_SERVER_ERROR, f"Loki failed ({status}): {text}", query)
        try:
            entries = parse_streams(json.loads(body))
        except MalformedResponse as exc:
            return self._failed(
                REASON_MALFORMED, f"Loki sent a malformed response: {one_line(str(exc))}", query
            )
        except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
            kind = f" ({content_type})" if content_type and "json" not in content_type else ""
            return self._failed(
                REASON_MALFORMED, f"Loki sent a malformed response: not JSON{kind}", query
            )
        newest = entries[-self.cfg.max_lines :]
        lines = tuple(clean_line(line, self.cfg.max_line_chars) for _, line in newest)
        if not lines:
            lookback = format_duration(self.cfg.lookback)
            note = f"no matching log lines from {lookback} before the alert until now"
            return LokiResult(LogExcerpt(query=query, note=note))
        return LokiResult(LogExcerpt(query=query, lines=lines))


class _TooLarge(Exception):
    pass


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
