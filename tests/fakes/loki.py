"""A fake Loki: a real aiohttp server on loopback answering `GET /loki/api/v1/query_range`.

It speaks Loki's exact shapes (facts: protocols.md section 3)::

    async with FakeLoki() as loki:
        loki.push({"namespace": "prod", "app": "backend"}, ts_ns, "ERROR boom")
        ... point LokiConfig(url=loki.url, ...) at it ...
        [request] = loki.requests
        assert request.direction == "backward"

What it does, as Loki does:

- parses the LogQL it gets: a stream selector `{name="value", name=~"re", ...}` (Go string
  escapes, raw backtick strings) and line filters `|=`, `!=`, `|~`, `!~`; other pipeline
  stages are tokenized and ignored. A query that does not parse is a 400
  `parse error at line 1, col N: syntax error: unexpected ...`, so a badly escaped label
  value in a query fails here as it would in Loki.
- keeps the entries of matching streams with `start <= ts < end` (nanosecond epochs,
  start inclusive, end exclusive; defaults one hour ago and now), applies `limit`
  (default 100) across all streams, newest first for `direction=backward` (the default),
  oldest first for `forward`, and answers `{"status": "success", "data": {"resultType":
  "streams", "result": [{"stream": {...}, "values": [["<ns>", "<line>"], ...]}], "stats":
  {...}}}`; entries with structured metadata carry it as a third tuple element.
- errors are plain text with `Content-Type: text/plain; charset=utf-8` and a trailing
  newline (Go's http.Error): `limit` above `max_entries` -> 400 `max entries limit per
  query exceeded, ...`; `require_tenant` and no `X-Scope-OrgID` -> 401 `no org id`.

Test controls: `requests` (every request, in order), `max_in_flight` (the most requests
handled at once), `delay` (seconds every answer waits; a stop answers at once),
`script(*replies)` (the next answers, e.g. `Reply.parse_error()`, `Reply.server_error()`,
`Reply.timeout()`), `always` (a reply for every request), `wait_for_requests(n)`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

QUERY_RANGE_PATH = "/loki/api/v1/query_range"
TEXT_PLAIN = "text/plain; charset=utf-8"
DEFAULT_LIMIT = 100
DEFAULT_MAX_ENTRIES = 5000
HOUR_NS = 3600 * 1_000_000_000

# Loki's texts (pkg/logqlmodel/error.go, pkg/util/server/error.go, dskit http_auth.go).
PARSE_ERROR_TEXT = "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER"
NO_ORG_ID_TEXT = "no org id"
TIMEOUT_TEXT = (
    "request timed out, decrease the duration of the request or add more label matchers "
    "(prefer exact match over regex match) to reduce the amount of data processed"
)
MAX_ENTRIES_TEXT = (
    "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {})"
)
SERVER_ERROR_TEXT = "rpc error: code = Unavailable desc = connection error"


@dataclass(frozen=True)
class Reply:
    """A scripted answer: status, body and content type."""

    status: int
    body: str
    content_type: str = TEXT_PLAIN

    @classmethod
    def text(cls, status: int, text: str) -> Reply:
        """A plain-text error the way Loki writes it (Go's http.Error adds a newline)."""
        return cls(status, text + "\n")

    @classmethod
    def parse_error(cls) -> Reply:
        return cls.text(400, PARSE_ERROR_TEXT)

    @classmethod
    def max_entries(cls, limit: int, cap: int = DEFAULT_MAX_ENTRIES) -> Reply:
        return cls.text(400, MAX_ENTRIES_TEXT.format(limit, cap))

    @classmethod
    def no_org_id(cls) -> Reply:
        return cls.text(401, NO_ORG_ID_TEXT)

    @classmethod
    def server_error(cls, text: str = SERVER_ERROR_TEXT) -> Reply:
        return cls.text(500, text)

    @classmethod
    def timeout(cls) -> Reply:
        return cls.text(504, TIMEOUT_TEXT)

    @classmethod
    def json(cls, body: Any, status: int = 200) -> Reply:
        """Any JSON body, e.g. a malformed success answer."""
        return cls(status, json.dumps(body), "application/json")


@dataclass(frozen=True)
class LokiRequest:
    """One request as the fake received it."""

    path: str
    params: Mapping[str, str]
    tenant: str | None
    received_at: float

    @property
    def query(self) -> str:
        return self.params.get("query", "")

    @property
    def start(self) -> int | None:
        value = self.params.get("start")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def end(self) -> int | None:
        value = self.params.get("end")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def limit(self) -> int | None:
        value = self.params.get("limit")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def direction(self) -> str | None:
        return self.params.get("direction")

    @property
    def selector(self) -> list[tuple[str, str, str]]:
        """The (name, op, value) matchers of the query's stream selector, decoded."""
        return parse_logql(self.query).matchers


@dataclass
class _Entry:
    ts: int
    line: str
    metadata: Mapping[str, str] | None
    seq: int


@dataclass
class _Stream:
    labels: dict[str, str]
    entries: list[_Entry] = field(default_factory=list)


# ---- a small LogQL parser ---------------------------------------------------------------


class LogQLParseError(ValueError):
    """A query Loki would refuse; the message is Loki's parse error text."""

    def __init__(self, col: int, what: str) -> None:
        super().__init__(f"parse error at line 1, col {col}: {what}")


@dataclass
class ParsedQuery:
    matchers: list[tuple[str, str, str]]
    line_filters: list[tuple[str, str]]


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|`[^`]*`)
  | (?P<unterminated>["`])
  | (?P<op>\|=|\|~|!=|!~|=~|=|\|)
  | (?P<punct>[{},()\[\]])
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_.]*)
  | (?P<number>[0-9][0-9a-zA-Z_.]*)
  | (?P<other>.)
    """,
    re.VERBOSE,
)

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}


def go_unquote(token: str, col: int) -> str:
    """The value of a Go string literal (double-quoted with escapes, or backtick raw)."""
    if token.startswith("`"):
        return token[1:-1]
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            if ch < " ":
                raise LogQLParseError(col, "invalid char escape")
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise LogQLParseError(col, "invalid char escape")
        code = body[i + 1]
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
            i += 2
        elif code in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[code]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise LogQLParseError(col, "invalid char escape")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif code in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise LogQLParseError(col, "invalid char escape")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise LogQLParseError(col, "invalid char escape")
    return "".join(out)


def _tokens(query: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    for match in _TOKEN_RE.finditer(query):
        kind = match.lastgroup or "other"
        col = match.start() + 1
        if kind == "space":
            continue
        if kind == "unterminated":
            raise LogQLParseError(col, "literal not terminated")
        tokens.append((kind, match.group(), col))
    tokens.append(("end", "", len(query) + 1))
    return tokens


def _unexpected(token: tuple[str, str, int]) -> LogQLParseError:
    kind, text, col = token
    names = {"string": "STRING", "ident": "IDENTIFIER", "number": "NUMBER", "end": "$end"}
    return LogQLParseError(col, f"syntax error: unexpected {names.get(kind, text)}")


def parse_logql(query: str) -> ParsedQuery:
    """Parse a log query: a stream selector and line filters (other stages are skipped)."""
    tokens = _tokens(query)
    pos = 0

    def take(*kinds: str, text: str | None = None) -> tuple[str, str, int]:
        nonlocal pos
        token = tokens[pos]
        if token[0] not in kinds or (text is not None and token[1] != text):
            raise _unexpected(token)
        pos += 1
        return token

    take("punct", text="{")
    matchers: list[tuple[str, str, str]] = []
    while True:
        name = take("ident")[1]
        op_token = take("op")
        if op_token[1] not in ("=", "!=", "=~", "!~"):
            raise _unexpected(op_token)
        value_token = take("string")
        matchers.append((name, op_token[1], go_unquote(value_token[1], value_token[2])))
        separator = take("punct")
        if separator[1] == "}":
            break
        if separator[1] != ",":
            raise _unexpected(separator)
    line_filters: list[tuple[str, str]] = []
    while tokens[pos][0] != "end":
        kind, text, col = tokens[pos]
        if kind == "op" and text in ("|=", "!=", "|~", "!~"):
            pos += 1
            value_token = take("string")
            line_filters.append((text, go_unquote(value_token[1], value_token[2])))
        elif kind == "string":
            go_unquote(text, col)  # a bad literal anywhere is still a parse error
            pos += 1
        else:
            pos += 1
    return ParsedQuery(matchers, line_filters)


def _matches(matchers: Sequence[tuple[str, str, str]], labels: Mapping[str, str]) -> bool:
    for name, op, value in matchers:
        actual = labels.get(name, "")
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op in ("=~", "!~"):
            found = re.fullmatch(value, actual) is not None
            if found != (op == "=~"):
                return False
    return True


def _passes(filters: Sequence[tuple[str, str]], line: str) -> bool:
    for op, value in filters:
        if op == "|=" and value not in line:
            return False
        if op == "!=" and value in line:
            return False
        if op == "|~" and re.search(value, line) is None:
            return False
        if op == "!~" and re.search(value, line) is not None:
            return False
    return True


# ---- the server --------------------------------------------------------------------------


class FakeLoki(LoopbackServer):
    """A Loki `query_range` endpoint on 127.0.0.1 with recorded requests and scripted faults."""

    def __init__(
        self, *, require_tenant: bool = False, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        super().__init__()
        self.require_tenant = require_tenant
        self.max_entries = max_entries
        self.requests: list[LokiRequest] = []
        self.delay = 0.0
        self.always: Reply | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._scripted: collections.deque[Reply] = collections.deque()
        self._streams: dict[tuple[tuple[str, str], ...], _Stream] = {}
        self._seq = 0
        self._arrived = asyncio.Condition()
        self._port = 0

    # ---- data --------------------------------------------------------------------------

    def push(
        self,
        labels: Mapping[str, str],
        ts_ns: int,
        line: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Store one log entry in the stream with these labels."""
        key = tuple(sorted(labels.items()))
        stream = self._streams.setdefault(key, _Stream(dict(labels)))
        self._seq += 1
        stream.entries.append(_Entry(ts_ns, line, metadata, self._seq))

    def push_many(self, labels: Mapping[str, str], entries: Iterable[tuple[int, str]]) -> None:
        """Store several (ts_ns, line) entries in one stream."""
        for ts_ns, line in entries:
            self.push(labels, ts_ns, line)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        self._scripted.extend(replies)

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.base_url

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(QUERY_RANGE_PATH, self._handle_query_range)
        return app

    async def wait_for_requests(self, count: int, within: float = 5.0) -> list[LokiRequest]:
        """Wait (at most `within` seconds) until `count` requests arrived; returns them all."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    # ---- handling ----------------------------------------------------------------------

    async def _handle_query_range(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            recorded = LokiRequest(
                path=request.path,
                params=dict(request.query),
                tenant=request.headers.get("X-Scope-OrgID"),
                received_at=time.monotonic(),
            )
            async with self._arrived:
                self.requests.append(recorded)
                self._arrived.notify_all()
            if self.delay > 0:
                try:
                    await asyncio.wait_for(self._closing.wait(), self.delay)
                except TimeoutError:
                    pass
            return self._answer(recorded)
        finally:
            self.in_flight -= 1

    def _answer(self, request: LokiRequest) -> web.Response:
        reply = self._scripted.popleft() if self._scripted else self.always
        if reply is not None:
            return _reply(reply)
        if self.require_tenant and not request.tenant:
            return _reply(Reply.no_org_id())
        try:
            parsed = parse_logql(request.query)
        except LogQLParseError as exc:
            return _reply(Reply.text(400, str(exc)))
        now_ns = time.time_ns()
        start = request.start if request.start is not None else now_ns - HOUR_NS
        end = request.end if request.end is not None else now_ns
        limit = request.limit if request.limit is not None else DEFAULT_LIMIT
        if limit > self.max_entries:
            return _reply(Reply.max_entries(limit, self.max_entries))
        backward = (request.direction or "backward") == "backward"
        return web.json_response(self._streams_body(parsed, start, end, limit, backward))

    def _streams_body(
        self, parsed: ParsedQuery, start: int, end: int, limit: int, backward: bool
    ) -> dict[str, Any]:
        selected: list[tuple[_Stream, _Entry]] = []
        for stream in self._streams.values():
            if not _matches(parsed.matchers, stream.labels):
                continue
            for entry in stream.entries:
                if start <= entry.ts < end and _passes(parsed.line_filters, entry.line):
                    selected.append((stream, entry))
        selected.sort(key=lambda pair: (pair[1].ts, pair[1].seq), reverse=backward)
        selected = selected[:limit]
        grouped: dict[int, tuple[_Stream, list[_Entry]]] = {}
        for stream, entry in selected:
            grouped.setdefault(id(stream), (stream, []))[1].append(entry)
        result = []
        for stream, entries in grouped.values():
            values: list[list[Any]] = []
            for entry in entries:
                value: list[Any] = [str(entry.ts), entry.line]
                if entry.metadata:
                    value.append({"structuredMetadata": dict(entry.metadata)})
                values.append(value)
            result.append({"stream": dict(stream.labels), "values": values})
        total_bytes = sum(len(e.line.encode()) for _, e in selected)
        return {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": result,
                "stats": _stats(len(selected), total_bytes),
            },
        }


def _reply(reply: Reply) -> web.Response:
    response = web.Response(status=reply.status, body=reply.body.encode())
    response.headers["Content-Type"] = reply.content_type
    if reply.content_type == TEXT_PLAIN:
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _stats(lines: int, total_bytes: int) -> dict[str, Any]:
    """A `stats` object with Loki's keys (values are plausible, not measured)."""
    exec_time = 0.002
    return {
        "summary": {
            "bytesProcessedPerSecond": int(total_bytes / exec_time),
            "linesProcessedPerSecond": int(lines / exec_time),
            "totalBytesProcessed": total_bytes,
            "totalLinesProcessed": lines,
            "execTime": exec_time,
            "queueTime": 0.0001,
            "subqueries": 0,
            "totalEntriesReturned": lines,
            "splits": 1,
            "shards": 1,
        },
        "querier": {"store": {"totalChunksRef": 0, "totalChunksDownloaded": 0}},
        "ingester": {
            "totalReached": 1,
            "totalChunksMatched": 1,
            "totalBatches": 1,
            "totalLinesSent": lines,
        },
    }
