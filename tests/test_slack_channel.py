"""SlackChannel against a fake Slack server: message lifecycle, limits, escaping, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from router.channels.base import Channel, DeliveryError
from router.channels.slack.blocks import COLOR_CRITICAL, COLOR_RESOLVED, COLOR_WARNING
from router.channels.slack.channel import SlackChannel
from router.config.schema import SlackInteractivity, SlackReceiver
from router.model import GroupActions, Status
from router.notify.digest import build_digest
from router.render.message import LogExcerpt, Message
from tests.fakes.slack import WEBHOOK, FakeSlack, Reply, SlackMessage
from tests.test_slack_blocks import MENTION, T0, make_event, make_message, with_logs

NOW = T0 + timedelta(minutes=20)

ChannelFactory = Callable[..., SlackChannel]


@pytest.fixture
async def make_channel(
    slack: FakeSlack, pool: aiohttp.ClientSession
) -> AsyncIterator[ChannelFactory]:
    """Builds SlackChannels on the fake (bot mode unless webhook_url is given); closes them."""
    made: list[SlackChannel] = []

    def factory(**overrides: Any) -> SlackChannel:
        settings: dict[str, Any] = {"mention": MENTION, "timeout": 5.0}
        if "webhook_url" in overrides:
            settings["webhook_url"] = overrides.pop("webhook_url")
        else:
            settings.update(token=slack.token, channel="#prod-alerts", api_url=slack.api_url)
        settings.update(overrides)
        channel = SlackChannel(
            "slack-prod", SlackReceiver(**settings), clock=lambda: NOW.timestamp(), http=pool
        )
        made.append(channel)
        return channel

    yield factory
    for channel in made:
        await channel.close()


@pytest.fixture
def bot(make_channel: ChannelFactory) -> SlackChannel:
    return make_channel()


def only_message(slack: FakeSlack, channel: str = "#prod-alerts") -> SlackMessage:
    [message] = slack.messages(channel)
    return message


async def send_error(
    channel: SlackChannel, prior: Mapping[str, str] | None = None, reason: str = "first"
) -> DeliveryError:
    """The DeliveryError a send of one critical firing alert raises."""
    with pytest.raises(DeliveryError) as info:
        await channel.send(make_message([make_event("a")], reason), prior or {})
    return info.value


async def test_slack_channel_implements_the_channel_protocol(pool: aiohttp.ClientSession) -> None:
    cfg = SlackReceiver(token=SecretStr("xoxb-1"), channel="#prod-alerts")
    channel: Channel = SlackChannel("slack-prod", cfg, http=pool)
    assert channel.integration == "slack"


async def test_first_notification_posts_header_sections_and_fallback_text(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    message = make_message([make_event("a"), make_event("b", severity="warning")])
    state = await bot.send(message, {})

    posted = only_message(slack)
    assert state["channel"] == "C0PRODALRT" == posted.channel
    assert state["ts"] == posted.ts
    # Slack's permalink form: the workspace address, the channel, p and the ts' digits.
    assert state["permalink"] == (f"{slack.url}/archives/C0PRODALRT/p{posted.ts.replace('.', '')}")
    assert posted.text.startswith(f"{MENTION} [FIRING:2] HighErrorRate")
    assert posted.blocks[0]["type"] == "header"
    assert "[FIRING:2] HighErrorRate" in posted.blocks[0]["text"]["text"]
    assert posted.colors == [COLOR_CRITICAL]
    alert_sections = [t for t in posted.visible_text().splitlines() if "*HighErrorRate*" in t]
    assert len(alert_sections) == 2
    # Links are not unfurled into big previews.
    assert slack.calls[0].args["unfurl_links"] is False


async def test_label_channel_ping_arrives_escaped(slack: FakeSlack, bot: SlackChannel) -> None:
    event = make_event(labels={"team": "<!channel>", "owner": "<@U123>"}, summary="<!here> down")
    await bot.send(make_message([event]), {})

    seen = only_message(slack).visible_text()
    assert "<!channel>" not in seen and "<@U123>" not in seen and "<!here>" not in seen
    assert "&lt;!channel&gt;" in seen and "&lt;@U123&gt;" in seen


async def test_two_hundred_alerts_are_accepted_with_a_more_marker(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    events = [make_event(f"fp{i:03d}", description="d" * 300) for i in range(200)]
    await bot.send(make_message(events), {})

    posted = only_message(slack)
    assert len(posted.all_blocks) <= 50
    assert posted.all_blocks[-1]["text"]["text"].startswith("... and ")
    assert "more alerts" in posted.all_blocks[-1]["text"]["text"]
    assert slack.calls[0].ok


async def test_log_excerpts_of_long_lines_are_accepted(slack: FakeSlack, bot: SlackChannel) -> None:
    logs = LogExcerpt(query='{app="backend"}', lines=["E" * 500] * 15, note="last 15 lines")
    message = with_logs(make_message([make_event(f"fp{i}") for i in range(5)]), logs)
    await bot.send(message, {})

    assert slack.calls[0].ok
    texts = [b["text"]["text"] for b in only_message(slack).all_blocks if "text" in b]
    log_texts = [t for t in texts if t.startswith("*Logs*")]
    # Five full excerpts exceed what Slack takes in one message: the first ones are shown,
    # the others' alerts say where their logs are.
    assert 0 < len(log_texts) < 5
    assert all(len(t) <= 3000 and t.count("```") == 2 for t in log_texts)
    assert sum("*HighErrorRate*" in t for t in texts) == 5
    assert sum("_Logs: left out" in t for t in texts) == 5 - len(log_texts)


async def test_long_header_is_truncated_and_accepted(slack: FakeSlack, bot: SlackChannel) -> None:
    await bot.send(make_message([make_event(alertname="VeryLongAlertName" * 30)]), {})

    header = only_message(slack).blocks[0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")


async def test_new_alerts_update_original_message_and_reply_in_thread(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    later = make_message(
        [make_event("a"), make_event("b", alertname="DiskFull", summary="/ at 97%")],
        "new_alerts",
    )
    state = await bot.send(later, first)

    assert state["ts"] == first["ts"]
    assert [c.method for c in slack.calls] == [
        "chat.postMessage",
        "auth.test",  # once per channel: the workspace address for message links
        "chat.update",
        "chat.postMessage",
    ]
    parent = only_message(slack)
    assert parent.edited
    assert "[FIRING:2]" in parent.blocks[0]["text"]["text"]
    assert "Updated <!date^" in parent.visible_text()
    # The edited parent carries no mention; the thread reply announcing a new critical
    # alert does, since that is news someone must look at.
    assert MENTION not in parent.visible_text()
    [reply] = parent.replies
    assert reply.text == f"{MENTION} :red_circle: 1 new alert firing: DiskFull (/ at 97%)"


async def test_new_warning_alerts_reply_without_mention(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    later = make_message([make_event("a"), make_event("b", severity="warning")], "new_alerts")
    await bot.send(later, first)

    [reply] = only_message(slack).replies
    assert MENTION not in reply.text
    assert reply.text.startswith(":red_circle: 1 new alert firing")


async def test_resolved_alert_updates_original_slack_message(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    resolved = make_message([make_event("a", status=Status.RESOLVED)], "resolved")
    state = await bot.send(resolved, first)

    assert state["ts"] == first["ts"]
    assert state["status"] == "resolved"
    parent = only_message(slack)
    assert parent.colors == [COLOR_RESOLVED]
    assert "[RESOLVED]" in parent.blocks[0]["text"]["text"]
    assert MENTION not in parent.visible_text()
    [reply] = parent.replies
    assert reply.text.startswith(":white_check_mark: All resolved after 14m")
    assert MENTION not in reply.text
    assert not any(MENTION in str(c.args) for c in slack.calls[1:])


async def test_partial_resolve_keeps_firing_colour_and_names_what_resolved(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a"), make_event("b")]), {})
    partial = make_message(
        [make_event("a"), make_event("b", status=Status.RESOLVED, alertname="DiskFull")],
        "resolved",
    )
    state = await bot.send(partial, first)

    assert state["firing"] == "a"
    parent = only_message(slack)
    assert parent.colors == [COLOR_CRITICAL]
    assert parent.replies[0].text.startswith(":large_green_circle: 1 resolved: DiskFull")


async def test_repeat_reminder_is_a_quiet_thread_reply(slack: FakeSlack, bot: SlackChannel) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    state = await bot.send(make_message([make_event("a")], "repeat"), first)

    assert state["ts"] == first["ts"]
    parent = only_message(slack)
    [reply] = parent.replies
    assert reply.text.startswith(":repeat: Still firing (reminder): 1 alert")
    assert MENTION not in reply.text
    assert not slack.calls[-1].args.get("reply_broadcast")


async def test_only_critical_news_carries_the_mention(slack: FakeSlack, bot: SlackChannel) -> None:
    await bot.send(make_message([make_event("w", severity="warning")]), {})
    await bot.send(make_message([make_event("c", severity="critical")], "repeat"), {})
    await bot.send(make_message([make_event("r", status=Status.RESOLVED)], "resolved"), {})
    await bot.send(make_message([make_event("n", severity="critical")], "first"), {})

    warning, repeat, resolved, critical = slack.messages("#prod-alerts")
    assert warning.colors == [COLOR_WARNING]
    for quiet in (warning, repeat, resolved):
        assert MENTION not in quiet.visible_text()
    assert critical.text.startswith(MENTION)
    assert critical.blocks[1]["text"]["text"] == f"{MENTION} critical alert firing"


async def test_deleted_original_message_gets_a_new_post(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    slack.delete_message("#prod-alerts", first["ts"])
    resolved = make_message([make_event("a", status=Status.RESOLVED)], "resolved")
    state = await bot.send(resolved, first)

    assert state["ts"] != first["ts"]
    posted = only_message(slack)
    assert posted.ts == state["ts"]
    assert posted.colors == [COLOR_RESOLVED]
    assert posted.replies == []
    assert MENTION not in posted.visible_text()


@pytest.mark.parametrize("code", ["cant_update_message", "edit_window_closed"])
async def test_uneditable_original_message_gets_a_new_post(
    slack: FakeSlack, bot: SlackChannel, code: str
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    slack.script("chat.update", Reply.error(code))
    state = await bot.send(make_message([make_event("a")], "repeat"), first)

    assert state["ts"] != first["ts"]
    assert len(slack.messages("#prod-alerts")) == 2


async def test_new_incident_after_all_resolved_posts_a_new_message(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    resolved = make_message([make_event("a", status=Status.RESOLVED)], "resolved")
    done = await bot.send(resolved, first)
    again = await bot.send(make_message([make_event("b")], "new_alerts"), done)

    assert again["ts"] != first["ts"]
    old, new = slack.messages("#prod-alerts")
    assert old.colors == [COLOR_RESOLVED]
    assert new.colors == [COLOR_CRITICAL]
    assert new.text.startswith(MENTION)


async def test_changed_channel_in_config_posts_to_the_new_channel(
    slack: FakeSlack, make_channel: ChannelFactory
) -> None:
    first = await make_channel().send(make_message([make_event("a")]), {})
    moved = make_channel(channel="#dev-alerts")
    state = await moved.send(make_message([make_event("a")], "repeat"), first)

    assert state["channel"] == "C0DEVALERT"
    assert len(slack.messages("#dev-alerts")) == 1
    assert only_message(slack).edits == 0


async def test_digest_is_always_a_new_message(slack: FakeSlack, bot: SlackChannel) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    digest = build_digest(
        [make_message([make_event(fp)]) for fp in "abcdefg"], destination=bot.destination
    )
    await bot.send(digest, first)

    _, posted = slack.messages("#prod-alerts")
    assert posted.blocks[0]["text"]["text"].endswith("Digest: 7 alerts firing in #prod-alerts")
    assert "Digest of 7 notifications" in posted.visible_text()


async def test_rate_limit_is_retryable_with_retry_after(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    slack.script("chat.postMessage", Reply.rate_limited(1))
    error = await send_error(bot)

    assert (error.reason, error.retryable, error.retry_after) == ("rate_limited", True, 1.0)
    # No hidden SDK retry: the caller's retry stage sees the 429 and owns the wait.
    assert len(slack.calls) == 1
    assert slack.messages("#prod-alerts") == []


async def test_rate_limited_update_is_retryable_and_posts_nothing_new(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    slack.script("chat.update", Reply.rate_limited(3))
    error = await send_error(bot, first, "repeat")

    assert (error.reason, error.retry_after) == ("rate_limited", 3.0)
    assert len(slack.messages("#prod-alerts")) == 1
    assert only_message(slack).replies == []


async def test_failed_thread_reply_fails_the_delivery_so_it_is_retried(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    first = await bot.send(make_message([make_event("a")]), {})
    resolved = make_message([make_event("a", status=Status.RESOLVED)], "resolved")
    slack.script("chat.postMessage", Reply.http(503))
    with pytest.raises(DeliveryError) as info:
        await bot.send(resolved, first)
    assert info.value.retryable

    # The retry edits the parent again (harmless) and posts the reply once.
    state = await bot.send(resolved, first)
    assert state["ts"] == first["ts"]
    assert len(only_message(slack).replies) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply.http(500), "http_500"),
        (Reply.http(503), "http_503"),
        (Reply(status=502, body="<html>bad gateway", content_type="application/json"), "http_502"),
        (Reply.error("fatal_error"), "fatal_error"),
        (Reply.error("internal_error"), "internal_error"),
        (Reply.error("service_unavailable"), "service_unavailable"),
        (Reply.error("request_timeout"), "request_timeout"),
        (Reply.error("ratelimited"), "rate_limited"),
    ],
)
async def test_server_errors_are_retryable(
    slack: FakeSlack, bot: SlackChannel, reply: Reply, reason: str
) -> None:
    slack.script("chat.postMessage", reply)
    error = await send_error(bot)
    assert (error.reason, error.retryable) == (reason, True)


@pytest.mark.parametrize(
    "code",
    [
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "account_inactive",
        "missing_scope",
        "invalid_blocks",
        "msg_too_long",
        "no_text",
        "restricted_action",
    ],
)
async def test_permanent_errors_are_not_retryable(
    slack: FakeSlack, bot: SlackChannel, code: str
) -> None:
    slack.script("chat.postMessage", Reply.error(code))
    error = await send_error(bot)
    assert (error.reason, error.retryable, error.retry_after) == (code, False, None)


async def test_unknown_channel_is_permanent_and_error_hides_the_token(
    slack: FakeSlack, make_channel: ChannelFactory
) -> None:
    error = await send_error(make_channel(channel="#no-such-channel"))

    assert (error.reason, error.retryable) == ("channel_not_found", False)
    assert "#no-such-channel" in str(error)
    assert slack.token not in f"{error} {error!r} {error.detail} {error.args}"


async def test_wrong_token_is_permanent_and_error_hides_the_token(
    make_channel: ChannelFactory,
) -> None:
    token = "xoxb-9999-secret-wrong-token"
    error = await send_error(make_channel(token=token))

    assert (error.reason, error.retryable) == ("invalid_auth", False)
    assert token not in f"{error} {error!r} {error.detail} {error.args}"
    assert error.__cause__ is None and error.__suppress_context__


async def test_archived_channel_is_permanent(slack: FakeSlack, bot: SlackChannel) -> None:
    slack.archive("#prod-alerts")
    error = await send_error(bot)
    assert (error.reason, error.retryable) == ("is_archived", False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_a_retryable_connection_error(
    make_channel: ChannelFactory,
) -> None:
    channel = make_channel(api_url=f"http://127.0.0.1:{free_port()}/api/")
    error = await send_error(channel)
    assert (error.reason, error.retryable) == ("connection", True)


async def test_timeout_is_a_retryable_connection_error(
    slack: FakeSlack, make_channel: ChannelFactory
) -> None:
    slack.delay("chat.postMessage", 2.0)
    error = await send_error(make_channel(timeout=0.2))
    assert (error.reason, error.retryable) == ("connection", True)
    assert "timeout" in error.detail


async def test_closing_leaves_the_shared_pool_open_for_a_later_send(
    slack: FakeSlack, bot: SlackChannel, pool: aiohttp.ClientSession
) -> None:
    await bot.send(make_message([make_event("a")]), {})
    await bot.close()
    await bot.close()
    assert not pool.closed
    await bot.send(make_message([make_event("b")]), {})
    assert len(slack.messages("#prod-alerts")) == 2


async def test_concurrent_sends_share_one_client(slack: FakeSlack, bot: SlackChannel) -> None:
    messages = [make_message([make_event(f"fp{i}")]) for i in range(10)]
    await asyncio.gather(*(bot.send(m, {}) for m in messages))
    assert len(slack.messages("#prod-alerts")) == 10


async def test_pace_key_names_the_channel_and_never_the_secret(
    pool: aiohttp.ClientSession,
) -> None:
    cfg = SlackReceiver(token=SecretStr("xoxb-secret"), channel="#prod-alerts")
    bot = SlackChannel("p", cfg, http=pool)
    assert bot.pace_key == "https://slack.com/api/|#prod-alerts"
    url = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
    hook = SlackChannel("h", SlackReceiver(webhook_url=SecretStr(url)), http=pool)
    assert hook.pace_key.startswith("webhook|")
    assert "SECRET" not in hook.pace_key and "hooks.slack.com" not in hook.pace_key
    other = SlackChannel("h2", SlackReceiver(webhook_url=SecretStr(url + "2")), http=pool)
    assert other.pace_key != hook.pace_key


# ---- digests --------------------------------------------------------------------------------


class CountingSlots:
    """A slot gate that records what the channel asked of it."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.taken: list[int] = []
        self.holds: list[float] = []

    async def next(self) -> None:
        # How many posts Slack had seen when this slot was taken.
        self.taken.append(
            len(self.slack.calls_to("chat.postMessage") + self.slack.calls_to(WEBHOOK))
        )

    async def hold(self, seconds: float) -> None:
        self.holds.append(seconds)


def crash_loop(count: int) -> list[Message]:
    return [
        make_message([make_event(f"fp{i}", labels={"pod": f"web-{i}"}, description="d" * 120)])
        for i in range(count)
    ]


async def test_digest_posts_the_counts_then_lists_every_alert_in_its_thread(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    slots = CountingSlots(slack)
    digest = build_digest(crash_loop(300), destination=bot.destination)
    await bot.send_digest(digest, slots)

    [top] = slack.messages("#prod-alerts")
    assert top.blocks[0]["text"]["text"].endswith("Digest: 300 alerts firing in #prod-alerts")
    assert len(top.replies) > 1
    assert all(call.ok for call in slack.calls)
    listed = [p for r in top.replies for p in re.findall(r"`pod=(web-\d+)`", r.visible_text())]
    assert sorted(listed) == sorted(f"web-{i}" for i in range(300))
    # Every post, the digest itself included, waited for its own slot first.
    assert slots.taken == list(range(1 + len(top.replies)))


async def test_rate_limited_thread_post_holds_the_channel_and_is_posted_once(
    slack: FakeSlack, bot: SlackChannel
) -> None:
    slots = CountingSlots(slack)
    digest = build_digest(crash_loop(6), destination=bot.destination)
    slack.script("chat.postMessage", Reply.slow(0), Reply.rate_limited(3))
    await bot.send_digest(digest, slots)

    [top] = slack.messages("#prod-alerts")
    [reply] = top.replies
    assert len(re.findall(r"`pod=web-\d+`", reply.visible_text())) == 6
    assert slots.holds == [3.0]
    assert [c.error for c in slack.calls_to("chat.postMessage")] == [None, "ratelimited", None]


async def test_webhook_digest_lists_its_alerts_in_the_messages_after_it(
    slack: FakeSlack, make_channel: ChannelFactory
) -> None:
    hook = make_channel(webhook_url=slack.webhook_url)
    slots = CountingSlots(slack)
    assert hook.destination == "for slack-prod"
    await hook.send_digest(build_digest(crash_loop(250), destination=hook.destination), slots)

    top, *listing = slack.messages("#deploys")
    assert "listed in the messages after this one" in top.visible_text()
    assert listing
    listed = [p for m in listing for p in re.findall(r"`pod=(web-\d+)`", m.visible_text())]
    assert sorted(listed) == sorted(f"web-{i}" for i in range(250))
    assert slots.taken == list(range(1 + len(listing)))


@pytest.mark.parametrize(
    ("channel", "destination"),
    [
        ("#prod-alerts", "in #prod-alerts"),
        ("prod-alerts", "in #prod-alerts"),
        ("C0PRODALRT", "in C0PRODALRT"),
    ],
)
async def test_digest_destination_names_the_channel(
    channel: str, destination: str, pool: aiohttp.ClientSession
) -> None:
    cfg = SlackReceiver(token=SecretStr("xoxb-1"), channel=channel)
    assert SlackChannel("slack-prod", cfg, http=pool).destination == destination


# ---- incoming webhook ---------------------------------------------------------------------


async def test_webhook_posts_a_new_message_for_every_notification(
    slack: FakeSlack, make_channel: ChannelFactory
) -> None:
    hook = make_channel(webhook_url=slack.webhook_url)
    first = await hook.send(make_message([make_event("a")]), {})
    await hook.send(make_message([make_event("a", status=Status.RESOLVED)], "resolved"), first)

    firing, resolved = slack.messages("#deploys")
    assert firing.text.startswith(MENTION)
    assert firing.colors == [COLOR_CRITICAL]
    assert resolved.colors == [COLOR_RESOLVED]
    assert MENTION not in resolved.visible_text()
    assert [c.ok for c in slack.calls_to(WEBHOOK)] == [True, True]


@pytest.mark.parametrize(
    ("reply", "reason", "retryable"),
    [
        (Reply.webhook_error(400, "no_text"), "no_text", False),
        (Reply.webhook_error(400, "invalid_payload"), "invalid_payload", False),
        (Reply.webhook_error(403, "action_prohibited"), "action_prohibited", False),
        (Reply.webhook_error(404, "channel_not_found"), "channel_not_found", False),
        (Reply.webhook_error(410, "channel_is_archived"), "channel_is_archived", False),
        (Reply.webhook_error(500, "rollup_error"), "rollup_error", True),
        (Reply.http(502), "http_502", True),
    ],
)
async def test_webhook_failures_are_mapped_from_status_and_body(
    slack: FakeSlack,
    make_channel: ChannelFactory,
    reply: Reply,
    reason: str,
    retryable: bool,
) -> None:
    slack.script(WEBHOOK, reply)
    error = await send_error(make_channel(webhook_url=slack.webhook_url))
    assert (error.reason, error.retryable) == (reason, retryable)
    assert slack.webhook_path not in str(error) and "XXXX" not in str(error)


async def test_webhook_rate_limit_carries_retry_after(
    slack: FakeSlack, make_channel: ChannelFactory
) -> None:
    slack.script(WEBHOOK, Reply.rate_limited(2))
    error = await send_error(make_channel(webhook_url=slack.webhook_url))
    assert (error.reason, error.retryable, error.retry_after) == ("rate_limited", True, 2.0)


async def test_webhook_to_a_missing_or_archived_channel_is_permanent(
    slack: FakeSlack, make_channel: ChannelFactory
) -> None:
    gone = slack.add_webhook("/services/T1/B1/GONE", "#nowhere")
    error = await send_error(make_channel(webhook_url=gone))
    assert (error.reason, error.retryable) == ("channel_not_found", False)
    assert "GONE" not in str(error)

    slack.archive("#deploys")
    error = await send_error(make_channel(webhook_url=slack.webhook_url))
    assert (error.reason, error.retryable) == ("channel_is_archived", False)


async def test_webhook_connection_error_hides_the_url(make_channel: ChannelFactory) -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/TOPSECRET"
    error = await send_error(make_channel(webhook_url=url))
    assert (error.reason, error.retryable) == ("connection", True)
    assert "TOPSECRET" not in f"{error!r} {error.detail}"


async def test_webhook_ignores_prior_state(slack: FakeSlack, make_channel: ChannelFactory) -> None:
    hook = make_channel(webhook_url=slack.webhook_url)
    state = await hook.send(make_message([make_event()], "repeat"), {"ts": "1.000001"})
    assert state == {}
    assert len(slack.messages("#deploys")) == 1


# ---- buttons: what was done to the group ---------------------------------------------------


def interactive_channel(slack: FakeSlack, pool: aiohttp.ClientSession) -> SlackChannel:
    cfg = SlackReceiver(
        token=SecretStr(slack.token), channel="#prod-alerts", api_url=slack.api_url, timeout=5.0
    )
    buttons = SlackInteractivity(signing_secret=SecretStr("s3cret"))
    return SlackChannel(
        "slack-prod", cfg, clock=lambda: NOW.timestamp(), interactivity=buttons, http=pool
    )


def acked(message: Message) -> GroupActions:
    return GroupActions(
        "slack-prod",
        message.group_key,
        acked_by="U0ALICE001",
        acked_by_name="alice",
        acked_at=NOW.timestamp(),
        version=1,
    )


async def test_a_firing_message_shows_who_acknowledged_its_group(
    slack: FakeSlack, pool: aiohttp.ClientSession
) -> None:
    channel = interactive_channel(slack, pool)
    message = make_message([make_event("a")])
    try:
        await channel.send(dataclasses.replace(message, actions=acked(message)), {})
    finally:
        await channel.close()
    posted = only_message(slack)
    # A fresh post names the person without pinging them.
    assert "Acknowledged by alice" in posted.visible_text()
    assert [b["text"]["text"] for b in buttons_of(posted)] == ["Unacknowledge"]


async def test_actions_kept_in_a_group_state_by_an_earlier_version_still_show(
    slack: FakeSlack, pool: aiohttp.ClientSession
) -> None:
    channel = interactive_channel(slack, pool)
    message = make_message([make_event("a")])
    try:
        state = await channel.send(message, {})
        assert "Acknowledged" not in only_message(slack).visible_text()
        # Earlier versions handed the actions over inside the state, and kept them there.
        stored = {**state, "actions": acked(message).to_json()}
        await channel.send(make_message([make_event("a"), make_event("b")], "new_alerts"), stored)
    finally:
        await channel.close()
    edited = only_message(slack)
    assert edited.edited and "Acknowledged by <@U0ALICE001>" in edited.visible_text()


def buttons_of(message: SlackMessage) -> list[dict[str, Any]]:
    return [
        element
        for block in message.all_blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]
