"""Fake Slack itself: it must check what Slack checks, or the channel tests prove nothing."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack import WEBHOOK, FakeSlack, Reply

TS_RE = re.compile(r"^\d{10}\.\d{6}$")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def client(slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(
            token=slack.token, base_url=slack.api_url, session=session, retry_handlers=[]
        )


async def raw_call(
    http: aiohttp.ClientSession,
    slack: FakeSlack,
    method: str,
    body: dict[str, Any],
    *,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """A JSON call without slack_sdk, for requests slack_sdk would refuse or warn about."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"{slack.api_url}{method}", json=body, headers=headers) as resp:
        data: dict[str, Any] = await resp.json()
        return resp.status, data


async def post_error(client: AsyncWebClient, **kwargs: Any) -> str:
    """The Slack error code chat.postMessage answers with these arguments."""
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(**kwargs)
    assert info.value.response.status_code == 200
    return str(info.value.response["error"])


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_post_message_answers_like_slack(slack: FakeSlack, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="#prod-alerts", text="hello")
    second = await client.chat_postMessage(channel="prod-alerts", text="again")
    third = await client.chat_postMessage(channel="C0PRODALRT", text="and again")

    assert first["ok"] is True
    assert first["channel"] == "C0PRODALRT"
    assert TS_RE.match(first["ts"])
    assert first["message"]["text"] == "hello"
    assert first["message"]["ts"] == first["ts"]
    assert first["ts"] < second["ts"] < third["ts"]
    assert [m.text for m in slack.messages("#prod-alerts")] == ["hello", "again", "and again"]


async def test_missing_unknown_and_revoked_tokens_are_refused(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    body = {"channel": "#prod-alerts", "text": "hi"}
    assert await raw_call(http, slack, "chat.postMessage", body) == (
        200,
        {"ok": False, "error": "not_authed"},
    )
    _, data = await raw_call(http, slack, "chat.postMessage", body, token="xoxb-nope")
    assert data["error"] == "invalid_auth"
    slack.revoke(slack.token)
    _, data = await raw_call(http, slack, "chat.postMessage", body, token=slack.token)
    assert data["error"] == "token_revoked"
    assert slack.messages("#prod-alerts") == []


async def test_channel_must_exist_be_open_and_joined(
    slack: FakeSlack, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    _, data = await raw_call(http, slack, "chat.postMessage", {"text": "x"}, token=slack.token)
    assert data["error"] == "channel_not_found"
    assert await post_error(client, channel="#nope", text="x") == "channel_not_found"
    slack.add_channel("#secret", "C0SECRET01", member=False)
    assert await post_error(client, channel="#secret", text="x") == "not_in_channel"
    slack.archive("#dev-alerts")
    assert await post_error(client, channel="#dev-alerts", text="x") == "is_archived"


async def test_text_is_required_and_bounded(
    slack: FakeSlack, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    _, data = await raw_call(
        http, slack, "chat.postMessage", {"channel": "#prod-alerts"}, token=slack.token
    )
    assert data["error"] == "no_text"
    assert await post_error(client, channel="#prod-alerts", text="x" * 40001) == "msg_too_long"
    ok = await client.chat_postMessage(channel="#prod-alerts", text="x" * 40000)
    assert ok["ok"] is True


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "/blocks"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([section("")], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}], "/blocks/0/text/type"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "/blocks/0/fields",
        ),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            "/blocks/0/fields/0/text",
        ),
        ([{**section("x"), "block_id": "b" * 256}], "/blocks/0/block_id"),
        ([{"type": "table", "rows": []}], "/blocks/0/type"),
        ([{"type": "section"}], "/blocks/0"),
        ([{"type": "context", "elements": []}], "/blocks/0"),
    ],
)
async def test_blocks_breaking_block_kit_limits_are_invalid_blocks(
    client: AsyncWebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="#prod-alerts", text="t", blocks=blocks)
    assert info.value.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}" in e for e in info.value.response["errors"])


async def test_blocks_inside_attachments_are_checked_too(client: AsyncWebClient) -> None:
    attachments = [{"color": "#D40E0D", "blocks": [section("x" * 3001)]}]
    error = await post_error(client, channel="#prod-alerts", text="t", attachments=attachments)
    assert error == "invalid_blocks"
    too_many = [{"text": "a", "fallback": "a"}] * 101
    error = await post_error(client, channel="#prod-alerts", text="t", attachments=too_many)
    assert error == "too_many_attachments"


async def test_valid_blocks_are_stored_as_sent(slack: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("x" * 3000),
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}]},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open"},
                    "url": "https://x",
                }
            ],
        },
    ]
    attachments = [{"color": "#2EB67D", "blocks": [section("inner")]}]
    await client.chat_postMessage(
        channel="#prod-alerts", text="t", blocks=blocks, attachments=attachments
    )
    [message] = slack.messages("#prod-alerts")
    assert message.blocks == blocks
    assert message.colors == ["#2EB67D"]
    assert "inner" in message.visible_text() and "Open" in message.visible_text()


async def test_thread_ts_must_name_an_existing_parent(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="#prod-alerts", text="parent")
    reply = await client.chat_postMessage(
        channel="#prod-alerts", text="reply", thread_ts=parent["ts"]
    )
    assert reply["message"]["thread_ts"] == parent["ts"]
    error = await post_error(client, channel="#prod-alerts", text="x", thread_ts="1.000001")
    assert error == "thread_not_found"
    # A thread lives in one channel only.
    error = await post_error(client, channel="#dev-alerts", text="x", thread_ts=parent["ts"])
    assert error == "thread_not_found"
    [message] = slack.messages("#prod-alerts")
    assert [r.text for r in message.replies] == ["reply"]


async def test_update_edits_in_place_and_keeps_omitted_blocks(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(
        channel="#prod-alerts", text="v1", blocks=[section("one")], attachments=[{"text": "a"}]
    )
    updated = await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="v2")
    assert updated["ok"] is True
    assert updated["ts"] == posted["ts"]
    assert updated["channel"] == "C0PRODALRT"
    assert updated["text"] == "v2"
    [message] = slack.messages("#prod-alerts")
    assert (message.text, message.blocks, message.edits) == ("v2", [section("one")], 1)
    await client.chat_update(channel="C0PRODALRT", ts=posted["ts"], text="v3", blocks=[])
    assert slack.message("#prod-alerts", posted["ts"]).blocks == []


async def test_update_of_unknown_or_foreign_message_fails(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C0PRODALRT", ts="1500000000.000001", text="x")
    assert info.value.response["error"] == "message_not_found"
    posted = await client.chat_postMessage(channel="#prod-alerts", text="by name")
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="#prod-alerts", ts=posted["ts"], text="x")
    assert info.value.response["error"] == "channel_not_found"

    posted = await client.chat_postMessage(channel="#prod-alerts", text="mine")
    slack.tokens.add("xoxb-other-app")
    other = AsyncWebClient(token="xoxb-other-app", base_url=slack.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as info:
        await other.chat_update(channel="C0PRODALRT", ts=posted["ts"], text="theirs")
    assert info.value.response["error"] == "cant_update_message"

    slack.delete_message("#prod-alerts", posted["ts"])
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C0PRODALRT", ts=posted["ts"], text="x")
    assert info.value.response["error"] == "message_not_found"


async def test_form_encoded_bodies_are_accepted(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    form = {
        "token": slack.token,
        "channel": "#prod-alerts",
        "text": "from a form",
        "blocks": json.dumps([section("block from a form")]),
    }
    async with http.post(f"{slack.api_url}chat.postMessage", data=form) as resp:
        data = await resp.json()
    assert data["ok"] is True
    [message] = slack.messages("#prod-alerts")
    assert message.blocks == [section("block from a form")]
    assert slack.calls[-1].args["blocks"] == [section("block from a form")]


async def test_scripted_replies_come_first_then_normal_handling(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.script(
        "chat.postMessage", Reply.rate_limited(1), Reply.http(500), Reply.error("fatal_error")
    )
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="#prod-alerts", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"
    assert info.value.response["error"] == "ratelimited"
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel="#prod-alerts", text="x")
    assert info.value.response.status_code == 500
    assert await post_error(client, channel="#prod-alerts", text="x") == "fatal_error"
    assert slack.messages("#prod-alerts") == []

    await client.chat_postMessage(channel="#prod-alerts", text="finally")
    assert [c.error for c in slack.calls_to("chat.postMessage")] == [
        "ratelimited",
        "<html><body>500</body></html>",
        "fatal_error",
        None,
    ]
    assert len(slack.messages("#prod-alerts")) == 1


async def test_delays_slow_calls_down(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.delay("chat.postMessage", 0.3)
    started = time.monotonic()
    await client.chat_postMessage(channel="#prod-alerts", text="slow")
    assert time.monotonic() - started >= 0.3
    slack.delay("chat.postMessage", 0)
    slack.script("chat.postMessage", Reply.slow(0.2))
    started = time.monotonic()
    await client.chat_postMessage(channel="#prod-alerts", text="slow once")
    assert time.monotonic() - started >= 0.2
    assert len(slack.messages("#prod-alerts")) == 2


async def test_calls_are_recorded_with_channel_and_thread(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="#prod-alerts", text="p")
    await client.chat_postMessage(channel="#prod-alerts", text="r", thread_ts=parent["ts"])
    await client.chat_update(channel=parent["channel"], ts=parent["ts"], text="p2")
    assert [(c.method, c.channel, c.thread_ts, c.ok) for c in slack.calls] == [
        ("chat.postMessage", "C0PRODALRT", None, True),
        ("chat.postMessage", "C0PRODALRT", parent["ts"], True),
        ("chat.update", "C0PRODALRT", None, True),
    ]
    assert slack.calls[0].token == slack.token
    assert slack.calls[0].at <= slack.calls[1].at <= slack.calls[2].at


async def test_stop_does_not_wait_for_a_delayed_call() -> None:
    slack = await FakeSlack().start()
    # Far longer than the test may run: waiting for it would fail the test by its timeout.
    slack.delay("chat.postMessage", 3600)
    client = AsyncWebClient(token=slack.token, base_url=slack.api_url, retry_handlers=[])
    pending = asyncio.create_task(client.chat_postMessage(channel="#prod-alerts", text="x"))
    await slack.wait_for_calls(1, "chat.postMessage")
    await slack.stop()
    # The call was cut short: whatever the client saw, it ends (a wait would outlast the
    # test's timeout).
    await asyncio.gather(pending, return_exceptions=True)


async def test_incoming_webhook_accepts_and_stores(slack: FakeSlack) -> None:
    hook = AsyncWebhookClient(slack.webhook_url, retry_handlers=[])
    response = await hook.send(text="deployed", blocks=[section("backend 9f2c1e7")])
    assert (response.status_code, response.body) == (200, "ok")
    [message] = slack.messages("#deploys")
    assert message.via_webhook and message.blocks == [section("backend 9f2c1e7")]
    assert slack.calls_to(WEBHOOK)[0].ok


async def test_incoming_webhook_errors_are_plain_text(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    hook = AsyncWebhookClient(slack.webhook_url, retry_handlers=[])
    response = await hook.send_dict({"username": "alert-router"})
    assert (response.status_code, response.body) == (400, "no_text")
    response = await hook.send_dict({"text": "t", "blocks": [section("x" * 3001)]})
    assert (response.status_code, response.body) == (400, "invalid_blocks")
    async with http.post(
        slack.webhook_url, data=b"{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert (resp.status, await resp.text()) == (400, "invalid_payload")
    unknown = AsyncWebhookClient(f"{slack.url}/services/T000/B000/WRONG", retry_handlers=[])
    response = await unknown.send(text="x")
    assert (response.status_code, response.body) == (404, "no_service")

    gone = AsyncWebhookClient(slack.add_webhook("/services/T1/B1/GONE", "#nowhere"))
    response = await gone.send(text="x")
    assert (response.status_code, response.body) == (404, "channel_not_found")
    slack.archive("#deploys")
    response = await hook.send(text="x")
    assert (response.status_code, response.body) == (410, "channel_is_archived")

    slack.script(WEBHOOK, Reply.webhook_error(500, "rollup_error"), Reply.rate_limited(2))
    response = await hook.send(text="x")
    assert (response.status_code, response.body) == (500, "rollup_error")
    response = await hook.send(text="x")
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    assert slack.messages("#deploys") == []
