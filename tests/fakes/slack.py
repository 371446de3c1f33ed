"""A fake Slack: a real aiohttp server on loopback speaking the Web API and incoming webhooks.

Point slack_sdk at it the way production points at Slack::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.token, base_url=slack.api_url)
        await client.chat_postMessage(channel="#prod-alerts", text="hi")
        [msg] = slack.messages("#prod-alerts")
        assert msg.text == "hi"

What it checks, as Slack does (facts: protocols.md section 5):

- auth: `Authorization: Bearer <token>` (or a form `token`): none -> `not_authed`, unknown ->
  `invalid_auth`; `revoke(token)` makes it `token_revoked`.
- `channel`: required and must exist (`#name`, `name` or the ID) -> `channel_not_found`;
  archived -> `is_archived`; a channel the bot is not a member of -> `not_in_channel`.
- content: neither text nor blocks nor attachments -> `no_text`; text over 40,000 ->
  `msg_too_long`; more than 100 attachments -> `too_many_attachments`; Block Kit rule
  breaks (see `block_errors`) -> `invalid_blocks` with an `errors` list of JSON pointers;
  more than 12,000 characters of text in all blocks of a message (attachments' included)
  -> `msg_blocks_too_long`, as Slack answers however valid each block is.
- `chat.postMessage` with `thread_ts` must name an existing top-level message of the same
  channel -> else `thread_not_found`.
- `chat.update`: `channel` must be an ID (a name is `channel_not_found`); `ts` must exist ->
  `message_not_found`; only the poster's token may edit ->
  `cant_update_message`; omitted `blocks`/`attachments` keep the old ones.
- errors are HTTP 200 `{"ok": false, "error": ...}`; bodies may be JSON or form-encoded (form
  `blocks`/`attachments` are JSON strings).

Incoming webhooks live at `webhook_path` (default `/services/T000/B000/XXXX`) and post into
`webhook_channel`: 200 text/plain `ok`, or the plain-text errors of the facts
(400 `invalid_payload`/`no_text`/`invalid_blocks`, 404 `channel_not_found`, 410
`channel_is_archived`; script 500 `rollup_error` and others with `script`). An unknown
`/services/...` path answers 404 `no_service`.

Test helpers: `calls` (every request, in order), `wait_for_calls(n)`, `messages(channel)`
(what a human sees, with thread replies), `script(method, *replies)` (the next responses of
a method, e.g. `Reply.rate_limited(1)`, `Reply.http(500)`, `Reply.error("fatal_error")`),
`delay(method, seconds)` (slow every call of a method). The webhook's method is `WEBHOOK`.

Fixture for a test module (pytest-asyncio, asyncio_mode=auto)::

    @pytest.fixture
    async def slack() -> AsyncIterator[FakeSlack]:
        async with FakeSlack() as fake:
            yield fake
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

WEBHOOK = "webhook"
"""The method name under which incoming-webhook calls are scripted and recorded."""

DEFAULT_TOKEN = "xoxb-0000-fake-bot-token"
DEFAULT_CHANNELS: Mapping[str, str] = {
    "#prod-alerts": "C0PRODALRT",
    "#dev-alerts": "C0DEVALERT",
    "#deploys": "C0DEPLOYS1",
}
DEFAULT_WEBHOOK_PATH = "/services/T000/B000/XXXX"

MAX_TEXT = 40_000
MAX_BLOCKS_TEXT = 12_000
MAX_ATTACHMENTS = 100
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_BLOCK_ID = 255
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTION_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000

_BOT_ID = "B0FAKEBOT1"
_BOT_USER = "U0FAKEBOT1"
_TEAM = "T000"


@dataclass(frozen=True)
class Reply:
    """One scripted response: used instead of the normal handling of the next call.

    `body` is sent as JSON when it is a dict, as `content_type` text otherwise.
    """

    status: int = 200
    body: dict[str, Any] | str = field(default_factory=lambda: {"ok": True})
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "text/plain"

    @classmethod
    def error(cls, code: str, *, status: int = 200) -> Reply:
        """A Web API error as Slack sends it: HTTP 200 and `{"ok": false, "error": code}`."""
        return cls(status=status, body={"ok": False, "error": code})

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Reply:
        """HTTP 429 with `Retry-After` and the body `{"ok": false, "error": "ratelimited"}`."""
        return cls(
            status=429,
            body={"ok": False, "error": "ratelimited"},
            headers={"Retry-After": str(retry_after)},
        )

    @classmethod
    def http(cls, status: int, body: str = "", content_type: str = "text/html") -> Reply:
        """A bare HTTP failure (e.g. a 500 or 503 from Slack's edge), body not JSON."""
        return cls(
            status=status,
            body=body or f"<html><body>{status}</body></html>",
            content_type=content_type,
        )

    @classmethod
    def webhook_error(cls, status: int, code: str) -> Reply:
        """An incoming-webhook failure: plain-text body such as `rollup_error`."""
        return cls(status=status, body=code, content_type="text/plain")

    @classmethod
    def slow(cls, seconds: float) -> Reply:
        """Handle the next call normally, but only after `seconds`."""
        return cls(status=0, delay=seconds)

    @property
    def passthrough(self) -> bool:
        """True for `slow()`: the call is handled normally after the delay."""
        return self.status == 0


@dataclass
class SlackMessage:
    """The current state of one message as a human would see it."""

    ts: str
    channel: str
    text: str
    blocks: list[Any]
    attachments: list[Any]
    token: str
    thread_ts: str | None = None
    username: str = ""
    icon_emoji: str = ""
    via_webhook: bool = False
    edits: int = 0
    replies: list[SlackMessage] = field(default_factory=list)

    @property
    def edited(self) -> bool:
        """Whether chat.update changed the message after it was posted."""
        return self.edits > 0

    @property
    def colors(self) -> list[str]:
        """The attachment side-bar colours, in order."""
        return [a["color"] for a in self.attachments if isinstance(a, dict) and "color" in a]

    @property
    def all_blocks(self) -> list[dict[str, Any]]:
        """Top-level blocks followed by the blocks of every attachment."""
        blocks = [b for b in self.blocks if isinstance(b, dict)]
        for attachment in self.attachments:
            if isinstance(attachment, dict):
                blocks += [b for b in attachment.get("blocks") or [] if isinstance(b, dict)]
        return blocks

    def visible_text(self) -> str:
        """All text a reader can see (or a screen reader reads), newline-joined.

        Includes `text`, every block text/field/context element/button label, and the
        legacy attachment `text`/`fallback`/`title`/`pretext` fields.
        """
        parts = [self.text]
        for block in self.all_blocks:
            parts += _texts_of(block)
        for attachment in self.attachments:
            if isinstance(attachment, dict):
                for key in ("pretext", "title", "text", "fallback"):
                    value = attachment.get(key)
                    if isinstance(value, str):
                        parts.append(value)
        return "\n".join(p for p in parts if p)

    def as_json(self) -> dict[str, Any]:
        """The message object Slack returns in `message`."""
        data: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": self.text,
            "ts": self.ts,
            "bot_id": _BOT_ID,
            "user": _BOT_USER,
            "team": _TEAM,
        }
        if self.username:
            data["username"] = self.username
        if self.blocks:
            data["blocks"] = self.blocks
        if self.attachments:
            data["attachments"] = [
                {**a, "id": i + 1} if isinstance(a, dict) else a
                for i, a in enumerate(self.attachments)
            ]
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        return data


@dataclass
class SlackCall:
    """One request the fake received, with what it answered."""

    method: str
    args: dict[str, Any]
    at: float
    token: str | None
    channel: str | None
    thread_ts: str | None
    status: int = 0
    response: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Slack would call this a success."""
        if self.method == WEBHOOK:
            return self.status == 200 and self.response == "ok"
        return self.status == 200 and isinstance(self.response, dict) and bool(self.response["ok"])

    @property
    def error(self) -> str | None:
        """The error code answered (`channel_not_found`, `ratelimited`, ...), if any."""
        if self.ok:
            return None
        if isinstance(self.response, dict):
            value = self.response.get("error")
            return str(value) if value is not None else None
        return self.response


@dataclass
class _Channel:
    id: str
    name: str
    archived: bool = False
    member: bool = True
    messages: list[SlackMessage] = field(default_factory=list)


class _ApiError(Exception):
    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


def _texts_of(block: Mapping[str, Any]) -> list[str]:
    texts: list[str] = []
    text = block.get("text")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        texts.append(text["text"])
    for key in ("fields", "elements"):
        for item in block.get(key) or []:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("text"), str):
                texts.append(item["text"])
            elif isinstance(item.get("text"), dict):
                texts += _texts_of(item)
    return texts


def blocks_text_size(blocks: Any) -> int:
    """Characters of text in a block array (what Slack totals for `msg_blocks_too_long`)."""
    if not isinstance(blocks, list):
        return 0
    return sum(len(t) for b in blocks if isinstance(b, dict) for t in _texts_of(b))


def _text_object_errors(
    obj: Any, pointer: str, *, max_len: int, plain_only: bool = False
) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        return [f"must be one of {list(allowed)} [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str):
        return [f"missing required field: text [json-pointer:{pointer}]"]
    if not text:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    if len(text) > max_len:
        return [f"must be less than {max_len + 1} characters [json-pointer:{pointer}/text]"]
    return []


def _element_errors(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    kind = element.get("type")
    if kind == "button":
        errors = _text_object_errors(
            element.get("text"), f"{pointer}/text", max_len=MAX_BUTTON_TEXT, plain_only=True
        )
        url = element.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > MAX_URL):
            errors.append(f"must be at most {MAX_URL} characters [json-pointer:{pointer}/url]")
        action_id = element.get("action_id")
        if action_id is not None and len(str(action_id)) > MAX_BLOCK_ID:
            errors.append(f"must be less than 256 characters [json-pointer:{pointer}/action_id]")
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
            errors.append(f"must be less than 2001 characters [json-pointer:{pointer}/value]")
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            errors.append(f"must be one of primary, danger [json-pointer:{pointer}/style]")
        confirm = element.get("confirm")
        if confirm is not None:
            errors += _confirm_errors(confirm, f"{pointer}/confirm")
        return errors
    return [f"unsupported element type {kind!r} [json-pointer:{pointer}/type]"]


def _confirm_errors(confirm: Any, pointer: str) -> list[str]:
    if not isinstance(confirm, dict):
        return [f"must provide an object [json-pointer:{pointer}]"]
    errors = _text_object_errors(
        confirm.get("title"), f"{pointer}/title", max_len=100, plain_only=True
    )
    errors += _text_object_errors(confirm.get("text"), f"{pointer}/text", max_len=300)
    for key in ("confirm", "deny"):
        errors += _text_object_errors(
            confirm.get(key), f"{pointer}/{key}", max_len=30, plain_only=True
        )
    return errors


def block_errors(blocks: Any, pointer: str = "/blocks") -> list[str]:
    """Why Slack would answer `invalid_blocks` for this array (empty when it is valid).

    Checks the limits of facts 5.4 for the block types a notification uses: header,
    section, context, divider, actions (buttons) and image; any other type is rejected.
    """
    if not isinstance(blocks, list):
        return [f"must provide an array [json-pointer:{pointer}]"]
    errors: list[str] = []
    ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(set(ids)) != len(ids):
        errors.append(f"block_id must be unique in a message [json-pointer:{pointer}]")
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"must be less than {MAX_BLOCKS + 1} items [json-pointer:{pointer}]")
    for index, block in enumerate(blocks):
        at = f"{pointer}/{index}"
        if not isinstance(block, dict):
            errors.append(f"must provide an object [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
            errors.append(f"must be less than 256 characters [json-pointer:{at}/block_id]")
        kind = block.get("type")
        if kind == "header":
            errors += _text_object_errors(
                block.get("text"), f"{at}/text", max_len=MAX_HEADER_TEXT, plain_only=True
            )
        elif kind == "section":
            errors += _section_errors(block, at)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                errors.append(f"missing required field: elements [json-pointer:{at}]")
                continue
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                errors.append(f"must be less than 11 items [json-pointer:{at}/elements]")
            for i, element in enumerate(elements):
                if isinstance(element, dict) and element.get("type") == "image":
                    continue
                errors += _text_object_errors(
                    element, f"{at}/elements/{i}", max_len=MAX_SECTION_TEXT
                )
        elif kind == "divider":
            pass
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                errors.append(f"missing required field: elements [json-pointer:{at}]")
                continue
            if len(elements) > MAX_ACTION_ELEMENTS:
                errors.append(f"must be less than 26 items [json-pointer:{at}/elements]")
            action_ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
            if len({a for a in action_ids if a}) != len([a for a in action_ids if a]):
                errors.append(f"action_id must be unique in its block [json-pointer:{at}]")
            for i, element in enumerate(elements):
                errors += _element_errors(element, f"{at}/elements/{i}")
        elif kind == "image":
            if not isinstance(block.get("image_url"), str) or not isinstance(
                block.get("alt_text"), str
            ):
                errors.append(f"missing required field: image_url, alt_text [json-pointer:{at}]")
        else:
            errors.append(f"unsupported type {kind!r} [json-pointer:{at}/type]")
    return errors


def _section_errors(block: Mapping[str, Any], at: str) -> list[str]:
    errors: list[str] = []
    text = block.get("text")
    fields = block.get("fields")
    if text is None and fields is None:
        return [f"must provide either text or fields [json-pointer:{at}]"]
    if text is not None:
        errors += _text_object_errors(text, f"{at}/text", max_len=MAX_SECTION_TEXT)
    if fields is not None:
        if not isinstance(fields, list) or not fields:
            errors.append(f"must provide a non-empty array [json-pointer:{at}/fields]")
        else:
            if len(fields) > MAX_FIELDS:
                errors.append(f"must be less than 11 items [json-pointer:{at}/fields]")
            for i, item in enumerate(fields):
                errors += _text_object_errors(item, f"{at}/fields/{i}", max_len=MAX_FIELD_TEXT)
    accessory = block.get("accessory")
    if accessory is not None:
        errors += _element_errors(accessory, f"{at}/accessory")
    return errors


def _attachment_errors(attachments: Any) -> list[str]:
    if not isinstance(attachments, list):
        return ["must provide an array [json-pointer:/attachments]"]
    errors: list[str] = []
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            errors.append(f"must provide an object [json-pointer:/attachments/{index}]")
            continue
        if "blocks" in attachment:
            errors += block_errors(attachment["blocks"], f"/attachments/{index}/blocks")
    return errors


class FakeSlack(LoopbackServer):
    """A Slack Web API + incoming-webhook server for tests; see the module docstring.

    `channels` maps names (`#prod-alerts`) to IDs; every ID is also accepted as is.
    `tokens` are the valid bot tokens. Use as `async with FakeSlack() as slack:` or call
    `start()`/`stop()` yourself.
    """

    def __init__(
        self,
        *,
        tokens: Sequence[str] = (DEFAULT_TOKEN,),
        channels: Mapping[str, str] = DEFAULT_CHANNELS,
        webhook_path: str = DEFAULT_WEBHOOK_PATH,
        webhook_channel: str = "#deploys",
    ) -> None:
        super().__init__()
        if not tokens:
            raise ValueError("FakeSlack needs at least one valid token")
        self.tokens: set[str] = set(tokens)
        self._primary_token = tokens[0]
        self.revoked: set[str] = set()
        self._channels: dict[str, _Channel] = {}
        for name, channel_id in channels.items():
            self.add_channel(name, channel_id)
        self.webhooks: dict[str, str] = {webhook_path: webhook_channel}
        self.webhook_path = webhook_path
        self.calls: list[SlackCall] = []
        self._scripts: dict[str, collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )
        self._delays: dict[str, float] = {}
        self._arrived = asyncio.Condition()
        self._last_ts = (0, 0)

    # ---- lifecycle -------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._handle_api)
        app.router.add_post("/services/{rest:.*}", self._handle_webhook)
        return app

    # ---- addresses ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` (no trailing slash)."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """The Web API base URL for `AsyncWebClient(base_url=...)` / `SlackReceiver.api_url`."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        """The default incoming-webhook URL."""
        return f"{self.url}{self.webhook_path}"

    @property
    def token(self) -> str:
        """A valid bot token (the first one configured)."""
        return self._primary_token

    # ---- configuration -----------------------------------------------------------------

    def add_channel(
        self, name: str, channel_id: str, *, archived: bool = False, member: bool = True
    ) -> None:
        """Create (or reconfigure) a channel reachable as `#name`, `name` and its ID."""
        existing = self._channels.get(channel_id)
        channel = existing or _Channel(channel_id, name.lstrip("#"))
        channel.archived = archived
        channel.member = member
        self._channels[channel_id] = channel

    def archive(self, channel: str) -> None:
        """Archive a channel: posts answer `is_archived`, webhooks 410."""
        self._channel(channel).archived = True

    def remove_channel(self, channel: str) -> None:
        """Delete a channel and its messages: it is `channel_not_found` from now on."""
        del self._channels[self._channel(channel).id]

    def add_webhook(self, path: str, channel: str) -> str:
        """Another incoming webhook posting into `channel`; returns its full URL."""
        self.webhooks[path] = channel
        return f"{self.url}{path}"

    def revoke(self, token: str) -> None:
        """Calls with this token now answer `token_revoked`."""
        self.revoked.add(token)

    def script(self, method: str, *replies: Reply) -> None:
        """Queue responses for the next calls of `method` (`chat.postMessage`, `WEBHOOK`...).

        Each call takes the next reply instead of being handled (no state changes),
        except `Reply.slow()`, which is handled normally after its delay.
        """
        self._scripts[method].extend(replies)

    def delay(self, method: str, seconds: float) -> None:
        """Delay every call of `method` by `seconds` (0 removes it); handled normally."""
        if seconds > 0:
            self._delays[method] = seconds
        else:
            self._delays.pop(method, None)

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message (as a user would): a later chat.update gets `message_not_found`."""
        chan = self._channel(channel)
        chan.messages = [m for m in chan.messages if m.ts != ts]
        for message in chan.messages:
            message.replies = [r for r in message.replies if r.ts != ts]

    # ---- inspection --------------------------------------------------------------------

    def channel_id(self, channel: str) -> str:
        """The ID of a channel given by name or ID."""
        return self._channel(channel).id

    def messages(self, channel: str) -> list[SlackMessage]:
        """Top-level messages of a channel, oldest first, each with its `replies`."""
        return list(self._channel(channel).messages)

    def message(self, channel: str, ts: str) -> SlackMessage:
        """One message (top-level or reply) by ts; KeyError when there is none."""
        found = self._find(self._channel(channel), ts)
        if found is None:
            raise KeyError(ts)
        return found

    def calls_to(self, method: str) -> list[SlackCall]:
        """The calls of one method, in order."""
        return [c for c in self.calls if c.method == method]

    async def wait_for_calls(self, count: int = 1, method: str | None = None) -> list[SlackCall]:
        """Wait until `count` calls (of `method`, or of any method) have arrived.

        A call counts as soon as its request is read, before any delay or answer. Bound the
        wait with `asyncio.timeout(...)` around the call.
        """

        def matching() -> list[SlackCall]:
            return self.calls if method is None else self.calls_to(method)

        async with self._arrived:
            await self._arrived.wait_for(lambda: len(matching()) >= count)
        return matching()

    # ---- internals ---------------------------------------------------------------------

    def _channel(self, ref: str) -> _Channel:
        found = self._lookup(ref)
        if found is None:
            raise KeyError(ref)
        return found

    def _lookup(self, ref: str) -> _Channel | None:
        if ref in self._channels:
            return self._channels[ref]
        name = ref.lstrip("#")
        for channel in self._channels.values():
            if channel.name == name:
                return channel
        return None

    @staticmethod
    def _find(channel: _Channel, ts: str) -> SlackMessage | None:
        for message in channel.messages:
            if message.ts == ts:
                return message
            for reply in message.replies:
                if reply.ts == ts:
                    return reply
        return None

    def _next_ts(self) -> str:
        now = time.time()
        candidate = (int(now), int((now % 1) * 1_000_000))
        if candidate <= self._last_ts:
            sec, micro = self._last_ts
            micro += 1
            candidate = (sec + micro // 1_000_000, micro % 1_000_000)
        self._last_ts = candidate
        return f"{candidate[0]}.{candidate[1]:06d}"

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _read_args(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if request.content_type == "application/json":
            try:
                parsed = json.loads(raw or b"{}")
            except ValueError as err:
                raise _ApiError("invalid_json") from err
            if not isinstance(parsed, dict):
                raise _ApiError("invalid_json")
            return parsed
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            args: dict[str, Any] = {k: str(v) for k, v in form.items()}
            for key in ("blocks", "attachments"):
                if key in args:
                    try:
                        args[key] = json.loads(args[key])
                    except ValueError as err:
                        raise _ApiError(
                            "invalid_blocks" if key == "blocks" else "invalid_attachments"
                        ) from err
            return args
        # Slack accepts a query string on any method as well.
        return dict(request.query)

    def _auth(self, request: web.Request, args: Mapping[str, Any]) -> str:
        header = request.headers.get("Authorization", "")
        token: str | None = None
        if header.startswith("Bearer "):
            token = header[len("Bearer ") :].strip()
        elif request.content_type != "application/json" and isinstance(args.get("token"), str):
            token = args["token"]
        if not token:
            raise _ApiError("not_authed")
        if token in self.revoked:
            raise _ApiError("token_revoked")
        if token not in self.tokens:
            raise _ApiError("invalid_auth")
        return token

    def _writable_channel(self, args: Mapping[str, Any]) -> _Channel:
        ref = args.get("channel")
        if not isinstance(ref, str) or not ref:
            raise _ApiError("channel_not_found")
        channel = self._lookup(ref)
        if channel is None:
            raise _ApiError("channel_not_found")
        if channel.archived:
            raise _ApiError("is_archived")
        if not channel.member:
            raise _ApiError("not_in_channel")
        return channel

    @staticmethod
    def _content(args: Mapping[str, Any], *, update: bool) -> None:
        text = args.get("text")
        blocks = args.get("blocks")
        attachments = args.get("attachments")
        has_text = isinstance(text, str) and text.strip() != ""
        if not update and not has_text and not blocks and not attachments:
            raise _ApiError("no_text")
        if update and text is None and blocks is None and attachments is None:
            raise _ApiError("no_text")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise _ApiError("msg_too_long")
        if attachments is not None:
            if isinstance(attachments, list) and len(attachments) > MAX_ATTACHMENTS:
                raise _ApiError("too_many_attachments")
            errors = _attachment_errors(attachments)
            if errors:
                raise _ApiError("invalid_blocks", errors=errors)
        if blocks is not None:
            errors = block_errors(blocks)
            if errors:
                raise _ApiError("invalid_blocks", errors=errors)
        attached = [a.get("blocks") for a in attachments or [] if isinstance(a, dict)]
        if sum(blocks_text_size(b) for b in [blocks, *attached]) > MAX_BLOCKS_TEXT:
            raise _ApiError("msg_blocks_too_long")

    def _post_message(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._writable_channel(args)
        self._content(args, update=False)
        thread_ts = args.get("thread_ts") or None
        parent: SlackMessage | None = None
        if thread_ts is not None:
            parent = next((m for m in channel.messages if m.ts == str(thread_ts)), None)
            if parent is None:
                raise _ApiError("thread_not_found")
        message = SlackMessage(
            ts=self._next_ts(),
            channel=channel.id,
            text=str(args.get("text") or ""),
            blocks=list(args.get("blocks") or []),
            attachments=list(args.get("attachments") or []),
            token=token,
            thread_ts=parent.ts if parent else None,
            username=str(args.get("username") or ""),
            icon_emoji=str(args.get("icon_emoji") or ""),
        )
        if parent is not None:
            parent.replies.append(message)
        else:
            channel.messages.append(message)
        return {"ok": True, "channel": channel.id, "ts": message.ts, "message": message.as_json()}

    def _update(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        ref = args.get("channel")
        # chat.update wants the channel ID that chat.postMessage answered, not a name.
        channel = self._channels.get(ref) if isinstance(ref, str) else None
        if channel is None:
            raise _ApiError("channel_not_found")
        ts = args.get("ts")
        if not isinstance(ts, str) or not ts:
            raise _ApiError("invalid_arguments")
        message = self._find(channel, ts)
        if message is None:
            raise _ApiError("message_not_found")
        if message.token != token or message.via_webhook:
            raise _ApiError("cant_update_message")
        if channel.archived:
            raise _ApiError("is_archived")
        self._content(args, update=True)
        if "text" in args:
            message.text = str(args["text"] or "")
        # Omitting blocks/attachments keeps the old ones; [] removes them (facts 5.2).
        if "blocks" in args:
            message.blocks = list(args["blocks"] or [])
        if "attachments" in args:
            message.attachments = list(args["attachments"] or [])
        message.edits += 1
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": message.as_json(),
        }

    async def _record(self, call: SlackCall) -> None:
        self.calls.append(call)
        async with self._arrived:
            self._arrived.notify_all()

    def _respond(self, call: SlackCall, reply: Reply) -> web.Response:
        call.status = reply.status
        call.response = reply.body
        call.headers = dict(reply.headers)
        if isinstance(reply.body, dict):
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        return web.Response(
            status=reply.status,
            text=reply.body,
            headers=reply.headers,
            content_type=reply.content_type,
        )

    async def _scripted(self, method: str) -> Reply | None:
        """The scripted reply for this call (after its delay), None to handle normally."""
        await self._sleep(self._delays.get(method, 0.0))
        queue = self._scripts.get(method)
        if not queue:
            return None
        reply = queue.popleft()
        await self._sleep(reply.delay)
        return None if reply.passthrough else reply

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = SlackCall(method, {}, time.monotonic(), None, None, None)
        try:
            args = await self._read_args(request)
        except _ApiError as err:
            await self._record(call)
            return self._respond(call, Reply.error(err.code))
        call.args = args
        call.channel = str(args["channel"]) if "channel" in args else None
        call.thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        header = request.headers.get("Authorization", "")
        call.token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        await self._record(call)
        scripted = await self._scripted(method)
        if scripted is not None:
            return self._respond(call, scripted)
        try:
            token = self._auth(request, args)
            if method == "chat.postMessage":
                body = self._post_message(token, args)
            elif method == "chat.update":
                body = self._update(token, args)
            elif method == "auth.test":
                body = {
                    "ok": True,
                    "url": f"{self.url}/",
                    "team": "Fake",
                    "user": "alert-router",
                    "team_id": _TEAM,
                    "user_id": _BOT_USER,
                    "bot_id": _BOT_ID,
                }
            else:
                raise _ApiError("unknown_method")
        except _ApiError as err:
            return self._respond(call, Reply(body={"ok": False, "error": err.code, **err.extra}))
        if "channel" in body:
            call.channel = str(body["channel"])
        return self._respond(call, Reply(body=body))

    async def _handle_webhook(self, request: web.Request) -> web.Response:
        call = SlackCall(WEBHOOK, {}, time.monotonic(), None, None, None)
        raw = await request.read()
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                form = await request.post()
                parsed = json.loads(str(form.get("payload", "")))
            else:
                parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            call.args = parsed
        await self._record(call)
        scripted = await self._scripted(WEBHOOK)
        if scripted is not None:
            return self._respond(call, scripted)
        channel_ref = self.webhooks.get(request.path)
        if channel_ref is None:
            return self._respond(call, Reply.webhook_error(404, "no_service"))
        if not isinstance(parsed, dict):
            return self._respond(call, Reply.webhook_error(400, "invalid_payload"))
        channel = self._lookup(channel_ref)
        if channel is None:
            return self._respond(call, Reply.webhook_error(404, "channel_not_found"))
        call.channel = channel.id
        if channel.archived:
            return self._respond(call, Reply.webhook_error(410, "channel_is_archived"))
        try:
            self._content(parsed, update=False)
        except _ApiError as err:
            # Webhooks answer a too-long text as a bad payload; the rest keep their code.
            code = "invalid_payload" if err.code == "msg_too_long" else err.code
            return self._respond(call, Reply.webhook_error(400, code))
        channel.messages.append(
            SlackMessage(
                ts=self._next_ts(),
                channel=channel.id,
                text=str(parsed.get("text") or ""),
                blocks=list(parsed.get("blocks") or []),
                attachments=list(parsed.get("attachments") or []),
                token="",
                username=str(parsed.get("username") or ""),
                icon_emoji=str(parsed.get("icon_emoji") or ""),
                via_webhook=True,
            )
        )
        return self._respond(call, Reply.webhook_error(200, "ok"))
