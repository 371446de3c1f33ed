"""Slack delivery: one message per incident, edited in place, changes told in its thread.

Bot-token mode (`token` + `channel`) keeps one message per (receiver, group):

- no usable prior message: `chat.postMessage`; the state returned is the message's channel
  ID and `ts`, plus what it announced (see `_state`).
- a prior message: `chat.update` it to the current state (status, counts, colour; green
  once everything is resolved), then post a short reply in its thread saying what changed
  ("2 new alerts firing: ...", "All resolved after 14m 10s", "Still firing (reminder)"). The
  returned state keeps the original `ts`. If the original is gone or can no longer be
  edited (`message_not_found`, `cant_update_message`, `edit_window_closed`), a new message
  is posted and its `ts` returned.
- a new incident gets a new message: when the caller says `first`, when the prior message
  already showed everything resolved, when it was posted to a different configured
  channel, and for a `digest` (which folds several groups together).

Incoming-webhook mode (`webhook_url`) cannot edit: every notification is a new message.

A digest (a channel's backlog folded into one notification) is a new message with the
counts, and every alert it stands for listed below it: in its thread in bot mode, in the
messages right after it in webhook mode. Each of those posts waits for its own slot of the
channel's budget, as any post does.

The receiver's `mention` goes only into freshly posted news (first notification, new
alerts, digest) that has a firing critical alert, or into the thread reply announcing new
critical alerts; never into resolves, reminders or the edited parent.

Errors become `DeliveryError` with Slack's own error code as reason. No slack_sdk retry
handler is installed: the caller's retry stage owns retries and must see `retry_after`,
and a silent SDK retry of a post whose connection dropped could post it twice. Error
texts are built here from status and error code (slack_sdk's own include the URL) and are
scrubbed of the token and webhook URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient
from slack_sdk.webhook.webhook_response import WebhookResponse

from router.channels.base import DeliveryError, PaceSettings, SlotGate, parse_retry_after
from router.channels.slack.blocks import (
    build_message_payload,
    build_thread_reply,
    is_critical,
    mention_allowed,
)
from router.channels.slack.buttons import Buttons, with_buttons
from router.channels.slack.digest import build_digest_chunks
from router.channels.slack.mrkdwn import SlackPayload
from router.config.schema import SlackInteractivity, SlackReceiver
from router.model import GroupActions, SilenceScope, Status
from router.render.message import Message
from router.schedules.directory import OnCallDirectory
from router.secrets import redact

# slack_sdk logs request URLs (a webhook URL is a secret) and bodies at DEBUG: keep its
# loggers for our clients at INFO whatever the root logger says.
_SDK_LOGGER = logging.getLogger("router.channels.slack.channel.sdk")
_SDK_LOGGER.setLevel(logging.INFO)
log = logging.getLogger(__name__)

# Web API error codes a later attempt can succeed on (Slack's own 5xx-like codes).
RETRYABLE_ERRORS = frozenset(
    {"fatal_error", "internal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
# chat.update errors that mean "this message can no longer be edited": post a new one.
GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})

_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# A Slack channel ID (C..., G... private, D... direct) rather than a name.
_CHANNEL_ID_RE = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# Slack's own pace: about one post per second per channel.
DEFAULT_PACE = PaceSettings(interval=1.0, digest_threshold=5)
# How often one post of a digest's list is tried again after a 429 before the digest fails.
_CHUNK_ATTEMPTS = 3


def _retry_after_header(headers: Mapping[str, Any] | None) -> str | None:
    # slack_sdk hands headers over as a plain dict, its keys as the server spelt them.
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            return str(value[0] if isinstance(value, list) and value else value)
    return None


def _code(text: str, status: int) -> str:
    """Slack's error code when `text` looks like one, else `http_<status>`."""
    text = text.strip()
    return text if _CODE_RE.match(text) else f"http_{status}"


# Where a message's channel state keeps what its Silence buttons create.
SILENCE_SCOPE_KEY = "silence"
# Earlier versions handed the group's actions to the channel inside its state, and a
# digested notification kept that state as handed, so some stored states still hold a
# copy; read as before when the store has none for the group.
_LEGACY_ACTIONS_KEY = "actions"


def posted_scope(prior: Mapping[str, str]) -> SilenceScope | None:
    """What the Silence buttons of the message `prior` describes create, as fixed when it
    was posted; None for a message posted before scopes were kept (it offers no Silence)."""
    raw = prior.get(SILENCE_SCOPE_KEY)
    if not raw:
        return None
    try:
        return SilenceScope.from_json(raw)
    except (ValueError, TypeError, KeyError):
        return None


def is_current_message(prior: Mapping[str, str], channel: str, ts: str) -> bool:
    """Whether the message (`channel` ID, `ts`) is the one the group's state `prior` keeps:
    the only message of the group whose buttons the router acts on."""
    return bool(channel and ts) and (prior.get("channel"), prior.get("ts")) == (channel, ts)


def message_link(prior: Mapping[str, str], team_domain: str, channel: str, ts: str) -> str:
    """Where people find the message (`channel` ID, `ts`): the permalink its state `prior`
    keeps, else one built from the workspace's domain, else the two ids."""
    permalink = prior.get("permalink", "")
    if permalink:
        return permalink
    if team_domain:
        return f"https://{team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    return f"{channel}/{ts}"


class SlackChannel:
    """Delivers notifications to one Slack receiver (bot token or incoming webhook)."""

    integration = "slack"

    def __init__(
        self,
        name: str,
        cfg: SlackReceiver,
        *,
        clock: Callable[[], float] = time.time,
        pace: PaceSettings = DEFAULT_PACE,
        interactivity: SlackInteractivity | None = None,
        oncall: OnCallDirectory | None = None,
        http: aiohttp.ClientSession,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.oncall = oncall
        self.interactivity = interactivity
        self.pace = pace
        self._clock = clock
        self._token = cfg.token.get_secret_value() if cfg.token is not None else None
        self._webhook_url = cfg.webhook_url.get_secret_value() if cfg.webhook_url else None
        self._session = http
        self._web: AsyncWebClient | None = None
        self._hook: AsyncWebhookClient | None = None
        # The workspace's address (auth.test), for message links; "" once it failed.
        self._workspace: str | None = None

    # ---- public ------------------------------------------------------------------------

    @property
    def pace_key(self) -> str:
        """The key Slack rate-limits on (one post per second per channel), without secrets.

        Bot mode: `<api_url>|<channel>`. Webhook mode: `webhook|<sha256 of the URL, 16 hex>`
        (one webhook posts into one channel).
        """
        if self._webhook_url is not None:
            digest = hashlib.sha256(self._webhook_url.encode()).hexdigest()[:16]
            return f"webhook|{digest}"
        return f"{self.cfg.api_url}|{self.cfg.channel}"

    @property
    def destination(self) -> str:
        """`in #dev-alerts` (the configured channel), or the receiver for a webhook."""
        channel = self.cfg.channel or ""
        if self._webhook_url is not None or not channel:
            return f"for {self.name}"
        if channel.startswith("#") or _CHANNEL_ID_RE.match(channel):
            return f"in {channel}"
        return f"in #{channel}"

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """Post or update the group's Slack message; returns the state to keep for the group.

        Raises DeliveryError (never with the token or webhook URL in its text).
        """
        if self._webhook_url is not None:
            return await self._send_webhook(message)
        return await self._send_bot(message, prior)

    async def send_digest(self, digest: Message, slots: SlotGate) -> Mapping[str, str]:
        """Post a digest, then the list of every alert it stands for (in its thread, or
        after it for a webhook), each post on its own slot of `slots`."""
        threaded = self._webhook_url is None
        await slots.next()
        if threaded:
            state = await self._post_new(digest)
        else:
            state = await self._send_webhook(digest)
        # Replies go to the channel ID the post answered with, under the digest's ts.
        parent = (state.get("channel", ""), state.get("ts", "")) if threaded else None
        for chunk in build_digest_chunks(digest):
            await self._post_paced(chunk, parent, slots)
        return state

    @property
    def interactive(self) -> bool:
        """Whether its messages carry buttons: interactivity is on and it posts as a bot."""
        return self.interactivity is not None and self._token is not None

    async def show_actions(self, prior: Mapping[str, str], state: GroupActions | None) -> None:
        """Edit the group's message (`prior`, as `send` returned it) to show `state`: the
        last message sent, with its status line and buttons renewed. Raises DeliveryError."""
        channel, ts, base = prior.get("channel"), prior.get("ts"), prior.get("payload")
        if not channel or not ts or not base:
            raise DeliveryError("no_message", "no Slack message to edit", retryable=False)
        firing = prior.get("status") == Status.FIRING.value
        buttons = self._buttons_for(
            prior.get("group_key", ""), state, fresh=False, silence=posted_scope(prior)
        )
        payload = with_buttons(json.loads(base), buttons if firing else None)
        client = self._web_client()
        await self._call(
            "chat.update", lambda: client.chat_update(channel=channel, ts=ts, **payload)
        )

    async def tell_thread(self, prior: Mapping[str, str], text: str) -> None:
        """Post `text` (our own mrkdwn) in the thread of the group's message."""
        channel, ts = prior.get("channel"), prior.get("ts")
        if not channel or not ts:
            raise DeliveryError("no_message", "no Slack message to reply to", retryable=False)
        client = self._web_client()
        await self._call(
            "chat.postMessage",
            lambda: client.chat_postMessage(
                channel=channel, thread_ts=ts, text=text, **self._extras()
            ),
        )

    def _buttons_for(
        self,
        group_key: str,
        state: GroupActions | None,
        *,
        fresh: bool,
        silence: SilenceScope | None,
    ) -> Buttons | None:
        if self.interactivity is None or self._token is None or not group_key:
            return None
        return Buttons(
            receiver=self.name,
            group_key=group_key,
            durations=self.interactivity.silence_durations,
            state=state,
            now=self._clock(),
            fresh=fresh,
            silence=silence,
        )

    def _buttons(
        self, message: Message, prior: Mapping[str, str], *, fresh: bool
    ) -> Buttons | None:
        """Buttons for a firing group's own message (a digest stands for several: none)."""
        if message.status is not Status.FIRING or message.digest is not None:
            return None
        state = message.actions
        if state is None and prior.get(_LEGACY_ACTIONS_KEY):
            state = GroupActions.from_json(prior[_LEGACY_ACTIONS_KEY])
        # A new post fixes what its Silence creates; an edit keeps what was posted.
        silence = message.silence if fresh else posted_scope(prior)
        return self._buttons_for(message.group_key, state, fresh=fresh, silence=silence)

    async def close(self) -> None:
        """Nothing to release: its connections belong to the shared HTTP pool."""

    # ---- clients -----------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        # The shared pool has no timeout of this receiver's: each call is bounded by
        # `_bounded` instead (slack_sdk puts none on a request to a session it was given).
        return self._session

    def _bounded(self) -> asyncio.Timeout:
        """`cfg.timeout` for one Web API or webhook call, as its own session gave it."""
        return asyncio.timeout(self.cfg.timeout)

    def _web_client(self) -> AsyncWebClient:
        session = self._http()
        if self._web is None:
            self._web = AsyncWebClient(
                token=self._token,
                base_url=self.cfg.api_url,
                timeout=max(int(self.cfg.timeout), 1),
                session=session,
                logger=_SDK_LOGGER,
                retry_handlers=[],
            )
        return self._web

    def _webhook_client(self) -> AsyncWebhookClient:
        session = self._http()
        if self._hook is None:
            assert self._webhook_url is not None
            self._hook = AsyncWebhookClient(
                self._webhook_url,
                timeout=max(int(self.cfg.timeout), 1),
                session=session,
                logger=_SDK_LOGGER,
                retry_handlers=[],
            )
        return self._hook

    # ---- bot token ---------------------------------------------------------------------

    def _parent(self, message: Message, prior: Mapping[str, str]) -> tuple[str, str] | None:
        """(channel ID, ts) of the message to edit, or None to post a new one."""
        ts, channel = prior.get("ts"), prior.get("channel")
        if not ts or not channel:
            return None
        if message.reason in ("first", "digest", "escalated"):
            return None
        # The receiver was pointed at another channel since: start over there.
        if prior.get("target", self.cfg.channel) != self.cfg.channel:
            return None
        # The last message showed the incident over; new firing alerts are a new incident
        # and belong in a new message people see, not in an old green one up-channel.
        if prior.get("status") == Status.RESOLVED.value and message.status is Status.FIRING:
            return None
        return channel, ts

    def _extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {"unfurl_links": False, "unfurl_media": False}
        if self.cfg.username:
            extras["username"] = self.cfg.username
        if self.cfg.icon_emoji:
            extras["icon_emoji"] = self.cfg.icon_emoji
        return extras

    async def _permalink(self, channel: str, ts: str) -> str:
        """The message's address, built as Slack builds permalinks, from the workspace
        address asked once per channel (no chat.getPermalink round trip per post)."""
        if self._workspace is None:
            client = self._web_client()
            try:
                async with self._bounded():
                    answer = await client.auth_test()
                url = str(answer.get("url") or "")
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as err:
                log.info(
                    "no Slack message links: auth.test failed",
                    extra={"receiver": self.name, "error": self._scrub(str(err))},
                )
                url = ""
            self._workspace = url if url.startswith(("https://", "http://")) else ""
        if not self._workspace or not channel or not ts:
            return ""
        return f"{self._workspace.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

    def _state(
        self,
        message: Message,
        channel: str,
        ts: str,
        payload: SlackPayload | None = None,
        permalink: str = "",
        silence: SilenceScope | None = None,
    ) -> dict[str, str]:
        """What to remember for the group.

        `channel`/`ts`: the message to edit next time; `target`: the configured channel it
        went to; `status`: what it last showed; `firing`: fingerprints the thread has
        announced as firing (to tell new alerts from known ones). With buttons, also
        `group_key`, `payload` (what was sent, which a click's edit starts from) and
        `silence` (what its Silence buttons create, fixed when it was posted).
        """
        state = {
            "channel": channel,
            "ts": ts,
            "target": self.cfg.channel or "",
            "status": message.status.value,
            "firing": " ".join(a.fingerprint for a in message.firing),
        }
        if permalink:
            state["permalink"] = permalink
        if payload is not None and self.interactive and message.digest is None:
            state["group_key"] = message.group_key
            state["payload"] = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            if silence is not None:
                state[SILENCE_SCOPE_KEY] = silence.to_json()
        return state

    async def _post_paced(
        self, payload: SlackPayload, parent: tuple[str, str] | None, slots: SlotGate
    ) -> None:
        """One more post after a slot; a 429 holds the channel and the post is tried again
        (the posts before it are out: failing here would post them all twice)."""
        for attempt in range(1, _CHUNK_ATTEMPTS + 1):
            await slots.next()
            try:
                if parent is None:
                    await self._post_webhook_body(dict(payload))
                else:
                    await self._post_reply(payload, *parent)
                return
            except DeliveryError as err:
                if not err.retryable or attempt == _CHUNK_ATTEMPTS:
                    raise
                if err.reason == "rate_limited":
                    await slots.hold(err.retry_after or self.pace.interval)

    async def _post_reply(self, payload: SlackPayload, channel: str, thread_ts: str) -> None:
        client = self._web_client()
        await self._call(
            "chat.postMessage",
            lambda: client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **payload, **self._extras()
            ),
        )

    async def _post_new(
        self, message: Message, prior: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        client = self._web_client()
        mention = await self._mention() if mention_allowed(message) else ""
        buttons = self._buttons(message, prior or {}, fresh=True)
        payload = build_message_payload(message, mention=mention, buttons=buttons)
        channel = self.cfg.channel or ""
        response = await self._call(
            "chat.postMessage",
            lambda: client.chat_postMessage(channel=channel, **payload, **self._extras()),
        )
        # A click's edit starts from this without the mention: an edit pings nobody.
        edit_base = build_message_payload(message, buttons=buttons) if mention else payload
        posted, ts = str(response["channel"]), str(response["ts"])
        link = await self._permalink(posted, ts)
        return self._state(message, posted, ts, edit_base, link, message.silence)

    async def _send_bot(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        parent = self._parent(message, prior)
        if parent is None:
            return await self._post_new(message, prior)
        channel, ts = parent
        client = self._web_client()
        # The edited parent never carries the mention: an edit pings nobody anyway, and a
        # mention left on a resolved message reads like a page.
        payload = build_message_payload(
            message,
            updated_at=datetime.fromtimestamp(self._clock(), UTC),
            buttons=self._buttons(message, prior, fresh=False),
        )
        try:
            await self._call(
                "chat.update",
                lambda: client.chat_update(channel=channel, ts=ts, **payload),
            )
        except DeliveryError as err:
            if err.reason in GONE_ERRORS:
                return await self._post_new(message, prior)
            raise
        reply = await self._thread_reply(message, prior)
        await self._call(
            "chat.postMessage",
            lambda: client.chat_postMessage(
                channel=channel, thread_ts=ts, **reply, **self._extras()
            ),
        )
        return self._state(
            message, channel, ts, payload, prior.get("permalink", ""), posted_scope(prior)
        )

    async def _mention(self) -> str:
        """The configured mention, `oncall:<name>` resolved to whoever is on call now."""
        if self.oncall is None or "oncall:" not in self.cfg.mention:
            return self.cfg.mention
        return await self.oncall.mention(self.cfg.mention)

    async def _thread_reply(self, message: Message, prior: Mapping[str, str]) -> SlackPayload:
        known: set[str] | None = None
        if "firing" in prior:
            known = set(prior["firing"].split())
        mention = ""
        if message.reason == "new_alerts" and message.status is Status.FIRING:
            new_critical = [
                a
                for a in message.firing
                if is_critical(a) and (known is None or a.fingerprint not in known)
            ]
            if new_critical:
                mention = await self._mention()
        return build_thread_reply(message, previously_firing=known, mention=mention)

    async def _call(
        self, method: str, call: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        """Run one Web API call, turning every failure into a DeliveryError."""
        where = f"{method} to {self.cfg.channel} (receiver {self.name})"
        with self._failures(where):
            async with self._bounded():
                response = await call()
        return response

    @contextlib.contextmanager
    def _failures(self, where: str) -> Iterator[None]:
        """Turns what the Web API or webhook client raised into a DeliveryError."""
        try:
            yield
        except SlackApiError as err:
            raise self._api_error(err, where) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise self._connection_error(err, where) from None
        except SlackClientError as err:
            raise DeliveryError(
                "client_error", self._scrub(f"{where}: {type(err).__name__}"), retryable=False
            ) from None

    def _api_error(self, err: SlackApiError, where: str) -> DeliveryError:
        response = err.response
        # Usually an AsyncSlackResponse; for a body that claims JSON but is not, slack_sdk
        # passes the raw aiohttp response instead, which calls it `status`.
        status = int(getattr(response, "status_code", 0) or getattr(response, "status", 0) or 0)
        data = getattr(response, "data", None)
        headers = getattr(response, "headers", None)
        # Only a JSON body's `error` is a Slack error code; a plain-text or HTML body is
        # some proxy's page and is named by its status (stable metric labels).
        code = str(data.get("error") or "") if isinstance(data, dict) else ""
        reason = _code(code, status)
        retry_after = parse_retry_after(_retry_after_header(headers), self._clock())
        detail = self._scrub(f"{where}: HTTP {status}, error {reason}")
        if status == 429 or reason in RATE_LIMIT_ERRORS:
            return DeliveryError("rate_limited", detail, retryable=True, retry_after=retry_after)
        if status >= 500 or reason in RETRYABLE_ERRORS:
            return DeliveryError(reason, detail, retryable=True, retry_after=retry_after)
        return DeliveryError(reason, detail, retryable=False)

    def _connection_error(self, err: BaseException, where: str) -> DeliveryError:
        kind = "timeout" if isinstance(err, TimeoutError) else type(err).__name__
        return DeliveryError("connection", self._scrub(f"{where}: {kind}"), retryable=True)

    def _scrub(self, text: str) -> str:
        """Remove the secrets from a text meant for logs and the notification record."""
        return redact(text, (self._webhook_url, self._token))

    # ---- incoming webhook --------------------------------------------------------------

    async def _send_webhook(self, message: Message) -> dict[str, str]:
        mention = await self._mention() if mention_allowed(message) else ""
        await self._post_webhook_body(
            build_message_payload(message, mention=mention, threaded=False)
        )
        return {}

    async def _post_webhook_body(self, body: SlackPayload) -> None:
        client = self._webhook_client()
        if self.cfg.username:
            body["username"] = self.cfg.username
        if self.cfg.icon_emoji:
            body["icon_emoji"] = self.cfg.icon_emoji
        body["unfurl_links"] = False
        body["unfurl_media"] = False
        where = f"incoming webhook {self.pace_key} (receiver {self.name})"
        with self._failures(where):
            async with self._bounded():
                response: WebhookResponse = await client.send_dict(body)
        status = response.status_code
        if 200 <= status < 300:
            return
        # AsyncWebhookClient does not raise on failures: map status and plain-text body.
        reason = _code(str(response.body or ""), status)
        detail = self._scrub(f"{where}: HTTP {status}, error {reason}")
        if status == 429:
            raise DeliveryError(
                "rate_limited",
                detail,
                retryable=True,
                retry_after=parse_retry_after(_retry_after_header(response.headers), self._clock()),
            )
        raise DeliveryError(reason, detail, retryable=status >= 500)
