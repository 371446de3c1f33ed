"""LokiEnricher against a fake Loki: what it asks, what it shows, and how it fails."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from router.config.schema import LokiConfig
from router.enrich.logql import (
    LogQLTemplate,
    MissingLabelError,
    QueryTemplateError,
    logql_escape,
    logql_regex,
)
from router.enrich.loki import LokiEnricher, epoch_ns
from router.enrich.streams import clean_line, parse_streams
from router.metrics import Metrics
from router.render.message import LogExcerpt
from tests.fakes.loki import (
    NO_ORG_ID_TEXT,
    PARSE_ERROR_TEXT,
    TIMEOUT_TEXT,
    FakeLoki,
    Reply,
    parse_logql,
)

QUERY = (
    '{namespace="{{ labels.namespace }}", app="{{ labels.app }}"}'
    ' |~ "(?i)error|exception|fatal|panic"'
)
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STARTS_AT = NOW - timedelta(minutes=3)
LABELS = {"namespace": "prod", "app": "backend", "alertname": "HighErrorRate"}
SECOND_NS = 1_000_000_000


def ns(when: datetime) -> int:
    return epoch_ns(when)


EnricherFactory = Callable[..., LokiEnricher]


@pytest.fixture
async def make_enricher(
    loki: FakeLoki, metrics: Metrics, pool: aiohttp.ClientSession
) -> AsyncIterator[EnricherFactory]:
    """LokiEnrichers pointed at the fake (overrides go to LokiConfig or the constructor)."""
    made: list[LokiEnricher] = []

    def factory(**overrides: Any) -> LokiEnricher:
        kwargs = {
            k: overrides.pop(k)
            for k in ("max_concurrency", "cache_ttl", "cache_size", "start_bucket")
            if k in overrides
        }
        settings: dict[str, Any] = {
            "url": loki.url,
            "query": QUERY,
            "lookback": 900,
            "max_lines": 5,
            "timeout": 2.0,
            **overrides,
        }
        enricher = LokiEnricher(LokiConfig(**settings), metrics, http=pool, **kwargs)
        made.append(enricher)
        return enricher

    yield factory
    for enricher in made:
        await enricher.close()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value if value is not None else 0.0


async def excerpt_of(
    enricher: LokiEnricher, labels: Mapping[str, str], starts_at: datetime | None, now: datetime
) -> LogExcerpt:
    """The excerpt part of `lookup`: what a message shows."""
    return (await enricher.lookup(labels, starts_at, now)).excerpt


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---- excerpts ---------------------------------------------------------------------------


async def test_excerpt_merges_interleaved_streams_and_keeps_the_newest_lines_oldest_first(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    pod_a = {**LABELS, "pod": "backend-a"}
    pod_b = {**LABELS, "pod": "backend-b"}
    base = ns(STARTS_AT)
    for i in range(8):
        # Even seconds on pod a, odd on pod b: the streams interleave in time.
        stream = pod_a if i % 2 == 0 else pod_b
        loki.push(stream, base + i * SECOND_NS, f"ERROR request {i} failed")
    loki.push(pod_a, base + 100 * SECOND_NS, "INFO all good")  # filtered out by |~
    loki.push({**LABELS, "app": "frontend"}, base, "ERROR other app")  # other stream
    loki.push(pod_a, ns(NOW) + SECOND_NS, "ERROR from the future")  # after end

    excerpt = await excerpt_of(make_enricher(max_lines=5), LABELS, STARTS_AT, NOW)

    assert excerpt.note == ""
    assert list(excerpt.lines) == [f"ERROR request {i} failed" for i in (3, 4, 5, 6, 7)]
    assert excerpt.query == (
        '{namespace="prod", app="backend"} |~ "(?i)error|exception|fatal|panic"'
    )
    [request] = loki.requests
    assert request.limit == 5


async def test_request_carries_query_window_limit_direction_and_tenant(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    enricher = make_enricher(tenant="team-a", lookback="15m", max_lines=15)

    await excerpt_of(enricher, LABELS, STARTS_AT, NOW)

    [request] = loki.requests
    assert request.path == "/loki/api/v1/query_range"
    assert request.query == (
        '{namespace="prod", app="backend"} |~ "(?i)error|exception|fatal|panic"'
    )
    assert request.start == ns(STARTS_AT) - 15 * 60 * SECOND_NS
    assert request.end == ns(NOW)
    assert request.params["start"].isdigit() and request.params["end"].isdigit()
    assert request.limit == 15
    assert request.direction == "backward"
    assert request.tenant == "team-a"
    assert request.selector == [("namespace", "=", "prod"), ("app", "=", "backend")]


async def test_no_tenant_header_without_a_tenant_and_window_from_now_without_starts_at(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    await excerpt_of(make_enricher(lookback="10m"), LABELS, None, NOW)

    [request] = loki.requests
    assert request.tenant is None
    assert request.start == ns(NOW) - 600 * SECOND_NS
    assert request.end == ns(NOW)


async def test_no_matching_lines_is_a_note_not_a_failure(
    loki: FakeLoki, make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    result = await make_enricher().lookup(LABELS, STARTS_AT, NOW)

    assert result.failure is None
    assert result.excerpt.lines == ()
    assert result.excerpt.note == "no matching log lines from 15m before the alert until now"
    assert len(loki.requests) == 1


async def test_lines_are_stripped_of_terminal_escapes_and_cut_to_width(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    base = ns(STARTS_AT)
    loki.push(LABELS, base, "\x1b[31mERROR\x1b[0m red\ttabbed\r\nsecond\x07 line\x00")
    loki.push(LABELS, base + 1, "ERROR " + "x" * 500)
    loki.push(LABELS, base + 2, "ERROR \u202eevil\x1b]8;;http://x\x07link\x1b]8;;\x07")

    excerpt = await excerpt_of(make_enricher(max_line_chars=40), LABELS, STARTS_AT, NOW)

    first, long, third = excerpt.lines
    assert first == "ERROR red tabbed second line"
    assert len(long) == 40 and long.endswith("…") and long.startswith("ERROR xxx")
    assert third == "ERROR evillink"


async def test_structured_metadata_tuples_are_read(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    loki.push(LABELS, ns(STARTS_AT), "ERROR with metadata", metadata={"trace_id": "abc"})
    loki.push(LABELS, ns(STARTS_AT) + 1, "ERROR without")

    excerpt = await excerpt_of(make_enricher(), LABELS, STARTS_AT, NOW)

    assert list(excerpt.lines) == ["ERROR with metadata", "ERROR without"]


def test_parse_streams_orders_equal_timestamps_in_push_order() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": [
                {"stream": {"a": "1"}, "values": [["30", "c"], ["20", "b2"], ["20", "b1"]]},
                {"stream": {"a": "2"}, "values": [["25", "x", {}], ["10", "a"]]},
            ],
            "stats": {},
        },
    }
    assert [line for _, line in parse_streams(body)] == ["a", "b1", "b2", "x", "c"]


# ---- failures ---------------------------------------------------------------------------


async def test_slow_loki_gives_a_timeout_note_within_the_timeout(
    loki: FakeLoki, make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    loki.delay = 5.0
    loki.push(LABELS, ns(STARTS_AT), "ERROR never seen")

    result = await make_enricher(timeout="300ms").lookup(LABELS, STARTS_AT, NOW)

    # Ended by our timeout: the fake Loki is still holding the request, unanswered.
    assert loki.in_flight == 1
    assert result.excerpt.lines == ()
    assert result.excerpt.note == "Loki timed out after 300ms"
    assert result.excerpt.query.startswith('{namespace="prod"')
    assert result.failure == "timeout"
    assert sample(metrics, "alert_router_enrich_failures_total", enricher="loki", reason="timeout")
    assert len(loki.requests) == 1


@pytest.mark.parametrize(
    ("reply", "note", "reason"),
    [
        (
            Reply.parse_error(),
            f"Loki rejected the query (400): {PARSE_ERROR_TEXT}",
            "rejected",
        ),
        (
            Reply.max_entries(6000),
            "Loki rejected the query (400): max entries limit per query exceeded, "
            "limit > max_entries_limit_per_query (6000 > 5000)",
            "rejected",
        ),
        (
            Reply.server_error("internal error"),
            "Loki failed (500): internal error",
            "server_error",
        ),
        (
            Reply.text(502, ""),
            "Loki failed (502): Bad Gateway",
            "server_error",
        ),
    ],
)
async def test_loki_http_errors_become_a_one_line_note_with_the_reason(
    loki: FakeLoki,
    make_enricher: EnricherFactory,
    metrics: Metrics,
    reply: Reply,
    note: str,
    reason: str,
) -> None:
    loki.always = reply

    result = await make_enricher().lookup(LABELS, STARTS_AT, NOW)

    assert result.excerpt.note == note
    assert result.excerpt.lines == ()
    assert result.failure == reason
    assert sample(metrics, "alert_router_enrich_failures_total", enricher="loki", reason=reason)


async def test_a_real_parse_error_from_an_invalid_template_query_is_reported(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    excerpt = await excerpt_of(
        make_enricher(query="{{ labels.app }} |= error"), LABELS, STARTS_AT, NOW
    )

    assert excerpt.note == (
        "Loki rejected the query (400): parse error at line 1, col 1: "
        "syntax error: unexpected IDENTIFIER"
    )
    assert excerpt.query == "backend |= error"


async def test_missing_tenant_is_a_401_note(make_enricher: EnricherFactory) -> None:
    async with FakeLoki(require_tenant=True) as strict:
        enricher = make_enricher(url=strict.url)
        excerpt = await excerpt_of(enricher, LABELS, STARTS_AT, NOW)
        with_tenant = await excerpt_of(
            make_enricher(url=strict.url, tenant="t1"), LABELS, STARTS_AT, NOW
        )

    assert excerpt.note == f"Loki rejected the query (401): {NO_ORG_ID_TEXT}"
    assert with_tenant.note.startswith("no matching log lines")
    assert [r.tenant for r in strict.requests] == [None, "t1"]


async def test_long_error_text_is_cut_to_one_short_line(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    loki.always = Reply.timeout()

    note = (await excerpt_of(make_enricher(), LABELS, STARTS_AT, NOW)).note

    assert note.startswith("Loki failed (504): request timed out, decrease the duration")
    assert TIMEOUT_TEXT.startswith(note.removeprefix("Loki failed (504): ").rstrip("…"))
    assert len(note) <= len("Loki failed (504): ") + 200
    assert "\n" not in note


async def test_unreachable_loki_says_connection_refused(
    make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    enricher = make_enricher(url=f"http://127.0.0.1:{free_port()}")

    result = await enricher.lookup(LABELS, STARTS_AT, NOW)

    assert result.excerpt.note == "Loki unreachable: connection refused"
    assert result.failure == "unreachable"
    assert sample(
        metrics, "alert_router_enrich_failures_total", enricher="loki", reason="unreachable"
    )


@pytest.mark.parametrize(
    ("reply", "note"),
    [
        (Reply(200, "<html>oops</html>", "text/html"), "not JSON (text/html)"),
        (Reply.json({"status": "error"}), "status is 'error', not 'success'"),
        (
            Reply.json({"status": "success", "data": {"resultType": "matrix", "result": []}}),
            "a matrix result, not log lines (the query must be a log query)",
        ),
        (
            Reply.json(
                {"status": "success", "data": {"resultType": "streams", "result": [{"x": 1}]}}
            ),
            "a stream without a values list",
        ),
        (
            Reply.json(
                {
                    "status": "success",
                    "data": {
                        "resultType": "streams",
                        "result": [{"stream": {}, "values": [[1.5, "line"]]}],
                    },
                }
            ),
            "a value that is not [nanosecond string, line]",
        ),
    ],
)
async def test_malformed_success_bodies_are_a_note(
    loki: FakeLoki, make_enricher: EnricherFactory, reply: Reply, note: str
) -> None:
    loki.always = reply

    result = await make_enricher().lookup(LABELS, STARTS_AT, NOW)

    assert result.excerpt.note == f"Loki sent a malformed response: {note}"
    assert result.failure == "malformed"


async def test_missing_label_sends_no_request_and_names_the_label(
    loki: FakeLoki, make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    result = await make_enricher().lookup({"namespace": "prod"}, STARTS_AT, NOW)

    assert result.excerpt == type(result.excerpt)(note="no log query: label 'app' missing")
    assert result.failure == "missing_label"
    assert loki.requests == []
    assert sample(
        metrics, "alert_router_enrich_failures_total", enricher="loki", reason="missing_label"
    )


async def test_a_failing_template_sends_no_request(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    excerpt = await excerpt_of(
        make_enricher(query='{app="{{ labels.app + 1 }}"}'), LABELS, STARTS_AT, NOW
    )

    assert excerpt.note.startswith("no log query: query template failed: ")
    assert loki.requests == []


# ---- LogQL escaping ---------------------------------------------------------------------


async def test_label_values_with_quotes_and_backslashes_are_escaped_in_logql(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    labels = {"namespace": 'prod", app=~".*', "app": "back\\end\n"}
    loki.push(labels, ns(STARTS_AT), "ERROR in the oddly named app")
    loki.push({"namespace": "prod", "app": "other"}, ns(STARTS_AT), "ERROR not ours")

    excerpt = await excerpt_of(make_enricher(), labels, STARTS_AT, NOW)

    [request] = loki.requests
    assert request.query.startswith(r'{namespace="prod\", app=~\".*", app="back\\end\n"}')
    # Loki (the fake's parser) reads back exactly the label values: no injected matcher.
    assert request.selector == [("namespace", "=", 'prod", app=~".*'), ("app", "=", "back\\end\n")]
    assert list(excerpt.lines) == ["ERROR in the oddly named app"]


def test_logql_filters_escape_once_and_quote_regexes() -> None:
    template = LogQLTemplate(
        '{app="{{ labels.app | logql }}"} |~ "{{ labels.pod | logql_regex }}" '
        '|= "{{ labels["odd name"] }}{{ labels.get("absent", "dflt") }}"'
    )
    query = template.render({"app": 'a"b', "pod": "api-7d9.x+", "odd name": "q\\"})

    assert query == r'{app="a\"b"} |~ "api-7d9\\.x\\+" |= "q\\dflt"'
    parsed = parse_logql(query)
    assert parsed.matchers == [("app", "=", 'a"b')]
    assert parsed.line_filters == [("|~", r"api-7d9\.x\+"), ("|=", "q\\dflt")]
    assert logql_escape(logql_escape('"')) == '\\"'
    assert logql_regex("a|b") == "a\\\\|b"


def test_template_errors_name_the_missing_label_even_after_a_default() -> None:
    template = LogQLTemplate('{a="{{ labels.x | default("none") }}", b="{{ labels.y }}"}')
    with pytest.raises(MissingLabelError) as missing:
        template.render({})
    assert missing.value.label == "y"
    with pytest.raises(QueryTemplateError, match="unsafe"):
        LogQLTemplate("{{ labels.__class__ }}").render({"app": "x"})
    with pytest.raises(QueryTemplateError, match="empty"):
        LogQLTemplate("{{ labels.get('x') }}  ").render({})


def test_clean_line_cuts_with_an_ellipsis_at_the_width() -> None:
    assert clean_line("abcdef", 4) == "abc…"
    assert clean_line("abcd", 4) == "abcd"


# ---- cache, single flight, concurrency --------------------------------------------------


async def test_a_duplicate_query_is_answered_from_the_cache(
    loki: FakeLoki, make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    loki.push(LABELS, ns(STARTS_AT), "ERROR once")
    enricher = make_enricher(cache_ttl=30.0)

    first = await excerpt_of(enricher, LABELS, STARTS_AT, NOW)
    second = await excerpt_of(enricher, LABELS, STARTS_AT, NOW + timedelta(seconds=10))

    assert first == second and list(first.lines) == ["ERROR once"]
    assert len(loki.requests) == 1
    assert sample(metrics, "alert_router_enrich_cache_hits_total", enricher="loki") == 1
    assert sample(metrics, "alert_router_enrich_queries_total", enricher="loki") == 1

    await excerpt_of(enricher, LABELS, STARTS_AT, NOW + timedelta(seconds=31))
    assert len(loki.requests) == 2


async def test_other_labels_or_start_windows_are_separate_queries(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    enricher = make_enricher(start_bucket=60.0)

    await excerpt_of(enricher, LABELS, STARTS_AT, NOW)
    await excerpt_of(enricher, {**LABELS, "app": "frontend"}, STARTS_AT, NOW)
    await excerpt_of(enricher, LABELS, STARTS_AT - timedelta(minutes=5), NOW)

    assert len(loki.requests) == 3


async def test_transient_failures_are_cached_only_briefly(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    loki.script(Reply.server_error())
    enricher = make_enricher(cache_ttl=30.0)

    failed = await excerpt_of(enricher, LABELS, STARTS_AT, NOW)
    again = await excerpt_of(enricher, LABELS, STARTS_AT, NOW + timedelta(seconds=2))
    recovered = await excerpt_of(enricher, LABELS, STARTS_AT, NOW + timedelta(seconds=6))

    assert failed.note.startswith("Loki failed (500)") and again == failed
    assert recovered.note.startswith("no matching log lines")
    assert len(loki.requests) == 2


async def test_the_cache_is_bounded_least_recently_used_first(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    enricher = make_enricher(cache_size=2)
    apps = [{**LABELS, "app": name} for name in ("a", "b", "c")]

    for labels in (apps[0], apps[1], apps[0], apps[2]):  # c evicts b, the least recent
        await excerpt_of(enricher, labels, STARTS_AT, NOW)
    assert len(loki.requests) == 3
    await excerpt_of(enricher, apps[0], STARTS_AT, NOW)
    assert len(loki.requests) == 3
    await excerpt_of(enricher, apps[1], STARTS_AT, NOW)
    assert len(loki.requests) == 4


async def test_concurrent_identical_queries_share_one_request(
    loki: FakeLoki, make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    loki.delay = 0.2
    loki.push(LABELS, ns(STARTS_AT), "ERROR shared")
    enricher = make_enricher()

    excerpts = await asyncio.gather(
        *(excerpt_of(enricher, LABELS, STARTS_AT, NOW) for _ in range(10))
    )

    assert len(loki.requests) == 1
    assert all(list(e.lines) == ["ERROR shared"] for e in excerpts)
    assert sample(metrics, "alert_router_enrich_cache_hits_total", enricher="loki") == 9


async def test_a_waiter_giving_up_does_not_cancel_the_shared_query(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    loki.delay = 0.2
    loki.push(LABELS, ns(STARTS_AT), "ERROR shared")
    enricher = make_enricher()

    impatient = asyncio.ensure_future(excerpt_of(enricher, LABELS, STARTS_AT, NOW))
    patient = asyncio.ensure_future(excerpt_of(enricher, LABELS, STARTS_AT, NOW))
    await loki.wait_for_requests(1)
    impatient.cancel()

    assert list((await patient).lines) == ["ERROR shared"]
    assert impatient.cancelled()
    assert len(loki.requests) == 1


async def test_concurrent_loki_requests_are_bounded(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    loki.delay = 0.1
    enricher = make_enricher(max_concurrency=3)
    apps = [{**LABELS, "app": f"app-{i}"} for i in range(12)]

    excerpts = await asyncio.gather(*(excerpt_of(enricher, a, STARTS_AT, NOW) for a in apps))

    assert len(loki.requests) == 12
    assert loki.max_in_flight == 3
    assert all(e.note.startswith("no matching log lines") for e in excerpts)


async def test_a_storm_against_a_hanging_loki_finishes_within_the_timeout(
    loki: FakeLoki, make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    loki.delay = 10.0
    enricher = make_enricher(max_concurrency=2, timeout="300ms")
    apps = [{**LABELS, "app": f"app-{i}"} for i in range(6)]

    results = await asyncio.gather(*(enricher.lookup(a, STARTS_AT, NOW) for a in apps))

    # Ended by our timeout: every query that reached the fake Loki is still unanswered.
    assert loki.in_flight == len(loki.requests)
    assert loki.max_in_flight <= 2
    reasons = [r.failure for r in results]
    assert set(reasons) <= {"timeout", "overloaded"}
    # Two hold the slots until their timeout; those still queued then give up unsent.
    assert reasons.count("overloaded") >= 2
    sent = sample(metrics, "alert_router_enrich_queries_total", enricher="loki")
    assert sent == 6 - reasons.count("overloaded")
    # A slot freed right at the deadline may let a query start that never reaches Loki.
    assert 2 <= len(loki.requests) <= sent
    busy = next(r for r in results if r.failure == "overloaded")
    assert busy.excerpt.note == "Loki busy: no query slot free within 300ms (2 queries in flight)"
    assert sample(
        metrics, "alert_router_enrich_failures_total", enricher="loki", reason="overloaded"
    ) == reasons.count("overloaded")


async def test_duration_of_sent_queries_is_observed(
    loki: FakeLoki, make_enricher: EnricherFactory, metrics: Metrics
) -> None:
    await excerpt_of(make_enricher(), LABELS, STARTS_AT, NOW)

    assert sample(metrics, "alert_router_enrich_duration_seconds_count", enricher="loki") == 1


async def test_close_cancels_queries_in_flight_without_raising_to_waiters(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    loki.delay = 5.0
    enricher = make_enricher()
    waiter = asyncio.ensure_future(excerpt_of(enricher, LABELS, STARTS_AT, NOW))
    await loki.wait_for_requests(1)

    await enricher.close()

    assert (await waiter).note == "Loki query cancelled"


async def test_repeated_loki_failures_open_the_breaker_and_skip_queries(
    loki: FakeLoki, make_enricher: EnricherFactory
) -> None:
    loki.delay = 10.0
    enricher = make_enricher(timeout="200ms")
    for i in range(3):
        result = await enricher.lookup({**LABELS, "app": f"app-{i}"}, STARTS_AT, NOW)
        assert result.failure == "timeout"
    sent = len(loki.requests)
    skipped = await enricher.lookup({**LABELS, "app": "app-9"}, STARTS_AT, NOW)
    assert skipped.failure == "circuit_open"
    assert "next try in" in skipped.excerpt.note
    assert len(loki.requests) == sent  # nothing more reached the hanging Loki
