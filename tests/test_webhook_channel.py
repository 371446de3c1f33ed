"""WebhookChannel against a real HTTP server (tests/fakes/webhook_sink.py)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from router.channels.base import DeliveryError, parse_retry_after
from router.channels.webhook import USER_AGENT, WebhookChannel, safe_origin
from router.config.schema import WebhookReceiver
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import Link, LogExcerpt, Message, build_message
from router.render.payload import notification_payload
from tests.fakes.smtp import free_port
from tests.fakes.webhook_sink import WebhookSink

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
TOKEN = "hook-token-abcdef123456"


def clock() -> float:
    return T0.timestamp()


def event(fingerprint: str, status: Status = Status.FIRING, **labels: str) -> Event:
    return Event(
        source="alertmanager",
        fingerprint=fingerprint,
        group_key='{}:{alertname="HighErrorRate"}',
        status=status,
        labels={"alertname": "HighErrorRate", "env": "prod", "severity": "critical", **labels},
        annotations={"summary": "5xx above 5%", "runbook_url": "https://runbooks/5xx"},
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=30) if status is Status.RESOLVED else None,
        generator_url="http://prometheus/graph",
        external_url="http://alertmanager",
    )


def message() -> Message:
    notification = Notification(
        id="n-42",
        route=RouteSettings(
            receiver="hook",
            path='routes[0] team="shop" > routes[2] env="prod"',
            repeat_interval=3600.0,
            send_resolved=True,
        ),
        group_key='{}:{alertname="HighErrorRate"}',
        events=[event("f1", app="shop"), event("r1", Status.RESOLVED, app="shop")],
        created_at=T0,
    )
    msg = build_message(notification, "new_alerts")
    firing = dataclasses.replace(
        msg.firing[0],
        links=[Link("Grafana Explore", "https://grafana/explore?x")],
        logs=LogExcerpt(query='{app="shop"}', lines=["ERROR a", "ERROR b"]),
    )
    return dataclasses.replace(
        msg,
        firing=[firing],
        links=[Link("Silence", "http://alertmanager/#/silences/new?filter=x")],
        notes=["deploy 9f2c1e7 10m before"],
    )


def channel(pool: aiohttp.ClientSession, url: str, **overrides: Any) -> WebhookChannel:
    data: dict[str, Any] = {"url": url, "timeout": 5}
    data.update(overrides)
    return WebhookChannel("hook", WebhookReceiver.model_validate(data), http=pool, clock=clock)


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as server:
        yield server


async def send_expecting_error(chan: WebhookChannel) -> DeliveryError:
    try:
        with pytest.raises(DeliveryError) as info:
            await chan.send(message(), {})
    finally:
        await chan.close()
    return info.value


async def test_posts_the_notification_as_versioned_json(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    chan = channel(pool, sink.url("/alerts"))
    state = await chan.send(message(), {})

    assert state == {"status": "200"}
    [request] = sink.requests
    assert request.method == "POST" and request.path == "/alerts"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Idempotency-Key"] == "n-42"
    body = request.json
    assert body == notification_payload(message())
    assert body["version"] == "1"
    assert body["notificationId"] == "n-42"
    assert body["receiver"] == "hook" and body["status"] == "firing"
    assert body["reason"] == "new_alerts"
    assert body["routePath"] == 'routes[0] team="shop" > routes[2] env="prod"'
    assert body["groupKey"] == '{}:{alertname="HighErrorRate"}'
    assert body["title"] == "[FIRING:1] HighErrorRate (shop prod critical)"
    assert body["env"] == "prod" and body["severity"] == "critical"
    assert body["alertname"] == "HighErrorRate"
    assert body["counts"] == {"firing": 1, "resolved": 1}
    assert body["commonLabels"]["app"] == "shop"
    assert body["commonAnnotations"] == {
        "summary": "5xx above 5%",
        "runbook_url": "https://runbooks/5xx",
    }
    assert body["links"] == [
        {"title": "Silence", "url": "http://alertmanager/#/silences/new?filter=x"}
    ]
    assert body["notes"] == ["deploy 9f2c1e7 10m before"]
    firing, resolved = body["alerts"]
    assert firing == {
        "status": "firing",
        "alertname": "HighErrorRate",
        "fingerprint": "f1",
        "summary": "5xx above 5%",
        "description": "",
        "labels": {
            "alertname": "HighErrorRate",
            "env": "prod",
            "severity": "critical",
            "app": "shop",
        },
        "annotations": {"summary": "5xx above 5%", "runbook_url": "https://runbooks/5xx"},
        "startsAt": "2026-11-26T10:00:00Z",
        "endsAt": None,
        "generatorURL": "http://prometheus/graph",
        "runbookURL": "https://runbooks/5xx",
        "links": [
            {"title": "Runbook", "url": "https://runbooks/5xx"},
            {"title": "Source", "url": "http://prometheus/graph"},
            {"title": "Grafana Explore", "url": "https://grafana/explore?x"},
        ],
        "logs": {"query": '{app="shop"}', "lines": ["ERROR a", "ERROR b"], "note": ""},
    }
    assert resolved["status"] == "resolved"
    assert resolved["endsAt"] == "2026-11-26T10:30:00Z"
    assert resolved["logs"] is None


async def test_bearer_token_and_configured_headers_are_sent(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    chan = channel(
        pool,
        sink.url(),
        bearer_token=TOKEN,
        headers={"X-Team": "sre", "Authorization": "Basic overridden"},
    )
    await chan.send(message(), {})

    [request] = sink.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Team"] == "sre"


async def test_credentials_in_the_url_are_sent_as_basic_auth(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    url = sink.url("/hook").replace("http://", "http://relay:pa%24%24word@")
    chan = channel(pool, url)
    await chan.send(message(), {})

    [request] = sink.requests
    expected = base64.b64encode(b"relay:pa$$word").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_and_408_are_retryable(
    pool: aiohttp.ClientSession, sink: WebhookSink, status: int
) -> None:
    sink.script(status, body="upstream unavailable")
    error = await send_expecting_error(channel(pool, sink.url()))
    assert error.reason == f"http_{status}"
    assert error.retryable
    assert error.retry_after is None
    assert "upstream unavailable" in error.detail


async def test_429_is_retryable_after_the_servers_retry_after(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    sink.script(429, headers={"Retry-After": "7"}, body="slow down")
    error = await send_expecting_error(channel(pool, sink.url()))
    assert error.reason == "http_429"
    assert error.retryable
    assert error.retry_after == 7.0


async def test_503_with_an_http_date_retry_after(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    sink.script(503, headers={"Retry-After": "Thu, 26 Nov 2026 10:01:30 GMT"})
    error = await send_expecting_error(channel(pool, sink.url()))
    assert error.retryable
    assert error.retry_after == 90.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_other_client_errors_are_not_retryable(
    pool: aiohttp.ClientSession, sink: WebhookSink, status: int
) -> None:
    sink.script(status)
    error = await send_expecting_error(channel(pool, sink.url()))
    assert error.reason == f"http_{status}"
    assert not error.retryable


async def test_redirects_are_not_followed(pool: aiohttp.ClientSession, sink: WebhookSink) -> None:
    sink.script(302, headers={"Location": "http://elsewhere.example.com/"})
    error = await send_expecting_error(channel(pool, sink.url()))
    assert error.reason == "http_302"
    assert not error.retryable
    assert len(sink.requests) == 1


async def test_a_closed_port_is_a_retryable_connection_error(pool: aiohttp.ClientSession) -> None:
    port = free_port()
    url = f"http://user:{TOKEN}@127.0.0.1:{port}/services/{TOKEN}?key={TOKEN}"
    error = await send_expecting_error(channel(pool, url))
    assert error.reason == "connection"
    assert error.retryable
    assert f"http://127.0.0.1:{port}" in error.detail
    assert TOKEN not in str(error) and "user" not in str(error)


async def test_a_slow_receiver_times_out_retryably(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    sink.script(200, delay=2.0)
    error = await send_expecting_error(channel(pool, sink.url(), timeout=0.2))
    assert error.reason == "timeout"
    assert error.retryable


async def test_url_secrets_never_appear_in_errors_even_when_echoed(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    url = sink.url(f"/services/{TOKEN}?api_key={TOKEN}").replace(
        "http://", "http://relay:s3cr3t-pw@"
    )
    # A receiver echoing the request line back must not leak it through our error.
    sink.script(500, body=f"cannot handle POST {url} /services/{TOKEN}")
    error = await send_expecting_error(channel(pool, url))

    for text in (str(error), error.detail, repr(error)):
        assert TOKEN not in text
        assert "s3cr3t-pw" not in text
    assert f"http://127.0.0.1:{sink.port}" in error.detail


async def test_url_credentials_together_with_a_bearer_token_are_a_config_error(
    pool: aiohttp.ClientSession,
    sink: WebhookSink,
) -> None:
    url = sink.url().replace("http://", "http://relay:s3cr3t-pw@")
    error = await send_expecting_error(channel(pool, url, bearer_token=TOKEN))
    assert error.reason == "invalid_config"
    assert not error.retryable
    assert "s3cr3t-pw" not in str(error) and TOKEN not in str(error)
    assert sink.requests == []


async def test_it_sends_over_the_shared_pool_which_closing_the_channel_leaves_open(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    chan = channel(pool, sink.url())
    await chan.send(message(), {})
    await chan.close()
    await chan.close()  # idempotent
    assert not pool.closed
    # A job still holding a channel that a reload retired can finish its send.
    await chan.send(message(), {})
    async with asyncio.timeout(5):
        assert len(await sink.wait_for(2)) == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("999999", 3600.0),
        ("Thu, 26 Nov 2026 10:00:30 GMT", 30.0),
        ("Thu, 26 Nov 2026 09:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, T0.timestamp()) == seconds


def test_safe_origin_drops_user_info_path_and_query() -> None:
    assert safe_origin("https://u:p@hooks.example.com/T1/B2/xyz?a=b") == "https://hooks.example.com"
    assert safe_origin("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert safe_origin("http://[::1]:9000/x") == "http://[::1]:9000"
    assert safe_origin("http://[::1/x") == "<invalid url>"


async def test_receivers_sharing_the_pool_never_share_credentials_or_cookies(
    pool: aiohttp.ClientSession, sink: WebhookSink
) -> None:
    sink.script(200, headers={"Set-Cookie": "session=of-the-first; Path=/"})
    # A host name, not an IP: aiohttp would not keep cookies of an IP address anyway.
    url = sink.url().replace("127.0.0.1", "localhost")
    await channel(pool, url.replace("http://", "http://relay:pw@")).send(message(), {})
    await channel(pool, url, bearer_token=TOKEN).send(message(), {})
    await channel(pool, url).send(message(), {})

    a, b, c = sink.requests
    assert a.headers["Authorization"].startswith("Basic ")
    assert b.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in c.headers
    assert all("Cookie" not in r.headers for r in (b, c))
