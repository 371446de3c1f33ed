"""The notification lifecycle through the whole service, against the fake Slack."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from router.config.schema import Config
from router.web.state import STATE
from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack, Reply
from tests.helpers import config_from, until

MENTION = "<!subteam^S0123ONCALL>"


def slack_config(slack: FakeSlack, state_url: str, extra: str = "") -> Config:
    return config_from(slack_config_text(slack, state_url, extra))


def slack_config_text(slack: FakeSlack, state_url: str, extra: str = "") -> str:
    return f"""
state: {{url: '{state_url}'}}
slack: {{per_channel_interval: 0.2, digest_threshold: 5}}
receivers:
  - name: slack-prod
    slack:
      token: {slack.token}
      channel: "#prod-alerts"
      api_url: {slack.api_url}
      mention: "{MENTION}"
route:
  receiver: slack-prod
  repeat_interval: 1h
{extra}
"""


def webhook(
    alerts: list[tuple[str, str]], *, group: str = "g1", severity: str = "critical", **extra: str
) -> dict[str, Any]:
    """An Alertmanager webhook for one group; alerts are (fingerprint, status)."""
    return {
        "version": "4",
        "groupKey": group,
        "receiver": "alert-router",
        "status": "firing" if any(s == "firing" for _, s in alerts) else "resolved",
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "HighErrorRate",
                    "env": "prod",
                    "severity": severity,
                    "pod": fp,
                    **extra,
                },
                "annotations": {"summary": f"errors on {fp}"},
                "startsAt": "2026-11-26T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-26T10:20:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": fp,
            }
            for fp, status in alerts
        ],
    }


async def settle(svc: Running, within: float = 10.0) -> None:
    """Wait until nothing is pending or in flight."""
    async with asyncio.timeout(within):
        # The store has no change notification to wait on: poll it.
        while await svc.state.store.pending_count() or svc.state.deliverer.in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def metrics_text(svc: Running) -> str:
    async with svc.http.get(svc.url + "/metrics") as resp:
        return await resp.text()


async def test_label_that_pings_channel_arrives_escaped(slack: FakeSlack, state_url: str) -> None:
    async with running(slack_config(slack, state_url)) as svc:
        status, _ = await svc.post(
            "/webhook/alertmanager", webhook([("a1", "firing")], team="<!channel>")
        )
        assert status == 200
        await settle(svc)
    [message] = slack.messages("#prod-alerts")
    text = message.visible_text()
    assert "&lt;!channel&gt;" in text
    assert "<!channel>" not in text


async def test_ha_pair_sending_the_same_group_gives_one_message(
    slack: FakeSlack, state_url: str
) -> None:
    async with running(slack_config(slack, state_url)) as svc:
        body = webhook([("a1", "firing"), ("a2", "firing")])
        answers = await asyncio.gather(
            svc.post("/webhook/alertmanager", body), svc.post("/webhook/alertmanager", body)
        )
        assert [a[0] for a in answers] == [200, 200]
        await settle(svc)
        await svc.post("/webhook/alertmanager", body)  # the slower peer, a bit later
        await settle(svc)
        reasons = sorted(r["reason"] for r in await svc.records())
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert "duplicate" in reasons


async def test_new_alert_updates_message_and_replies_in_thread(
    slack: FakeSlack, state_url: str
) -> None:
    async with running(slack_config(slack, state_url)) as svc:
        await svc.post("/webhook/alertmanager", webhook([("a1", "firing")]))
        await settle(svc)
        await svc.post("/webhook/alertmanager", webhook([("a1", "firing"), ("a2", "firing")]))
        await settle(svc)
    [message] = slack.messages("#prod-alerts")
    assert message.edited
    assert "FIRING:2" in message.visible_text() or "2" in message.visible_text()
    assert len(message.replies) == 1


async def test_all_resolved_turns_the_message_green_without_mention(
    slack: FakeSlack, state_url: str
) -> None:
    async with running(slack_config(slack, state_url)) as svc:
        await svc.post("/webhook/alertmanager", webhook([("a1", "firing")]))
        await settle(svc)
        await svc.post("/webhook/alertmanager", webhook([("a1", "resolved")]))
        await settle(svc)
    [message] = slack.messages("#prod-alerts")
    assert message.edited
    assert message.colors[-1].lower() == "#2eb67d"
    assert MENTION not in message.visible_text()
    assert all(MENTION not in r.visible_text() for r in message.replies)
    first_post = slack.calls_to("chat.postMessage")[0]
    assert MENTION in str(first_post.args)  # the firing critical did ping


async def test_repeat_interval_sends_a_reminder_in_the_thread(
    slack: FakeSlack, state_url: str
) -> None:
    clock = FakeClock()
    async with running(slack_config(slack, state_url), clock=clock) as svc:
        body = webhook([("a1", "firing")])
        await svc.post("/webhook/alertmanager", body)
        await settle(svc)
        clock.advance(1800)
        await svc.post("/webhook/alertmanager", body)
        await settle(svc)
        assert slack.messages("#prod-alerts")[0].replies == []
        clock.advance(1800)
        await svc.post("/webhook/alertmanager", body)
        await settle(svc)
    [message] = slack.messages("#prod-alerts")
    assert len(message.replies) == 1
    assert MENTION not in message.replies[0].visible_text()


async def test_restart_between_firing_and_resolve_updates_the_original_message(
    slack: FakeSlack, state_url: str
) -> None:
    config = slack_config(slack, state_url)
    async with running(config) as svc:
        await svc.post("/webhook/alertmanager", webhook([("a1", "firing")]))
        await settle(svc)
    async with running(config) as svc:
        await svc.post("/webhook/alertmanager", webhook([("a1", "resolved")]))
        await settle(svc)
    [message] = slack.messages("#prod-alerts")
    assert message.edited
    assert len(slack.calls_to("chat.postMessage")) == 2  # the parent, then one thread reply


async def test_slack_429_is_waited_for_then_delivered(slack: FakeSlack, state_url: str) -> None:
    slack.script("chat.postMessage", Reply.rate_limited(1))
    async with running(slack_config(slack, state_url)) as svc:
        await svc.post("/webhook/alertmanager", webhook([("a1", "firing")]))
        await until(lambda: len(slack.messages("#prod-alerts")) == 1)
        await settle(svc)
        [record] = await svc.records()
        metrics = await metrics_text(svc)
    calls = slack.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    # Retry-After was honoured: the second post came no sooner than it said.
    assert calls[1].at - calls[0].at >= 1.0
    assert (record["state"], record["attempts"]) == ("sent", 2)
    assert "rate_limited" in record["last_error"]
    # Both posts were attempts; one of them failed.
    labels = 'integration="slack",receiver="slack-prod"'
    assert f"alert_router_notifications_total{{{labels}}} 2.0" in metrics
    assert (
        'alert_router_notifications_failed_total{integration="slack",reason="rate_limited",'
        'receiver="slack-prod"} 1.0' in metrics
    )


async def test_channel_not_found_fails_once_and_stays_visible(
    slack: FakeSlack, state_url: str
) -> None:
    slack.remove_channel("#prod-alerts")
    async with running(slack_config(slack, state_url)) as svc:
        await svc.post("/webhook/alertmanager", webhook([("a1", "firing")]))
        await settle(svc)
        [record] = await svc.records()
        metrics = await metrics_text(svc)
    assert len(slack.calls_to("chat.postMessage")) == 1  # not retried
    assert record["state"] == "failed"
    assert "channel_not_found" in record["last_error"]
    assert slack.token not in record["last_error"]
    labels = 'integration="slack",receiver="slack-prod"'
    assert f"alert_router_notifications_total{{{labels}}} 1.0" in metrics
    assert (
        'alert_router_notifications_failed_total{integration="slack",reason="channel_not_found",'
        'receiver="slack-prod"} 1.0' in metrics
    )
    assert f"alert_router_notifications_dead_total{{{labels}}} 1.0" in metrics


async def test_storm_to_one_channel_is_paced_and_folded_into_digests(
    slack: FakeSlack, state_url: str
) -> None:
    interval = 0.2
    async with running(slack_config(slack, state_url)) as svc:
        groups = 2000
        for start in range(0, groups, 100):
            await asyncio.gather(
                *(
                    svc.post(
                        "/webhook/alertmanager",
                        webhook([(f"fp{i}", "firing")], group=f"g{i}"),
                    )
                    for i in range(start, start + 100)
                )
            )
        await settle(svc, within=60)
        records = [r.to_dict() for r in await svc.state.store.list_notifications(5000)]
    posts = slack.calls_to("chat.postMessage")
    times = sorted(c.at for c in posts)
    # Never faster than the channel's pace over any window of posts. Slots are `interval`
    # apart; a post may reach Slack up to one slot late on a busy machine (and the next
    # one on time), never early: six posts span at least four intervals.
    for i in range(len(times) - 5):
        assert times[i + 5] - times[i] >= 4 * interval
    assert len(records) == groups
    assert all(r["state"] == "sent" for r in records)
    digested = [r for r in records if r["delivered_in"]]
    assert digested, "a storm of this size must produce digests"
    shown_alone = len(records) - len(digested)
    digests = {r["delivered_in"] for r in digested}
    # One message per notification sent alone and per digest; a digest's thread names
    # every alert it stands for.
    messages = slack.messages("#prod-alerts")
    assert len(messages) == shown_alone + len(digests)
    named = "\n".join(
        part.visible_text() for message in messages for part in [message, *message.replies]
    )
    assert all(f"`pod=fp{i}`" in named or f"errors on fp{i}" in named for i in range(groups))


async def test_one_http_pool_outlives_reloads_and_is_closed_at_shutdown(
    slack: FakeSlack, state_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "routes.yaml"
    text = slack_config_text(slack, state_url)
    path.write_text(text)
    async with running(config_from(text), config_path=path) as svc:
        state = svc.app[STATE]
        pool = state.runtime.http
        path.write_text(text.replace('"#prod-alerts"', '"#dev-alerts"'))
        assert await state.reload() == []
        assert state.runtime.http is pool and not pool.closed
        # The channel the reload rebuilt posts over the same pool.
        status, _ = await svc.post("/webhook/alertmanager", webhook([("a1", "firing")]))
        assert status == 200
        await until(lambda: slack.messages("#dev-alerts"))
    assert pool.closed
