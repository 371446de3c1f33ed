"""Clicks on the fake Slack's messages, signed and posted the way Slack does it.

Slack sends a click as `POST <request URL>` with `Content-Type:
application/x-www-form-urlencoded`, one field `payload` holding the `block_actions` JSON,
signed with the app's signing secret (v0: HMAC-SHA256 of `v0:<ts>:<raw body>`)::

    status = await click(http, service.url + "/slack/interactions", SECRET, message,
                         channel_id, "ack", user=ALICE)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack import SlackMessage


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str


ALICE = SlackUser("U0ALICE001", "alice")
BOB = SlackUser("U0BOB00001", "bob")


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """Slack's v0 signature of `body` sent at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def buttons(message: SlackMessage) -> dict[str, dict[str, Any]]:
    """The buttons a reader sees on `message`, by action_id."""
    found: dict[str, dict[str, Any]] = {}
    for block in message.all_blocks:
        if block.get("type") == "actions":
            for element in block.get("elements") or []:
                if element.get("type") == "button":
                    found[element["action_id"]] = {**element, "block_id": block.get("block_id")}
    return found


def button_labels(message: SlackMessage) -> list[str]:
    return [b["text"]["text"] for b in buttons(message).values()]


def block_actions(
    message: SlackMessage,
    channel_id: str,
    action_id: str,
    user: SlackUser,
    *,
    action_ts: str | None = None,
) -> dict[str, Any]:
    """The `block_actions` payload of a click on `action_id` of `message`."""
    button = buttons(message)[action_id]
    return {
        "type": "block_actions",
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": "T000"},
        "api_app_id": "A0FAKEAPP1",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": "1.2.3",
        "team": {"id": "T000", "domain": "example"},
        "channel": {"id": channel_id, "name": "prod-alerts"},
        "message": message.as_json(),
        "response_url": "https://hooks.slack.com/actions/T000/1/fake",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": button["block_id"],
                "text": button["text"],
                "value": button.get("value", ""),
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }


def form_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


async def post_signed(
    http: aiohttp.ClientSession,
    url: str,
    secret: str,
    body: bytes,
    *,
    timestamp: str | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    """POST `body` as Slack would, signed with `secret` at `timestamp` (default now)."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    sent = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(secret, body, ts),
    }
    if headers is not None:
        sent = {**sent, **headers}
        sent = {k: v for k, v in sent.items() if v}
    async with http.post(url, data=body, headers=sent) as resp:
        await resp.read()
        return resp.status


async def click(
    http: aiohttp.ClientSession,
    url: str,
    secret: str,
    message: SlackMessage,
    channel_id: str,
    action_id: str,
    user: SlackUser = ALICE,
    *,
    timestamp: str | None = None,
    action_ts: str | None = None,
) -> int:
    """Click a button of `message` as `user`; the HTTP status the router answered."""
    body = form_body(block_actions(message, channel_id, action_id, user, action_ts=action_ts))
    return await post_signed(http, url, secret, body, timestamp=timestamp)
