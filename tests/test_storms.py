"""Storms through the running service: every alert named in Slack (digest threads) or in
the digest mail, mail paced per recipient set, one Slack budget per channel across
replicas on one Redis."""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

from router.config.schema import Config
from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack, SlackCall, SlackMessage
from tests.fakes.smtp import FakeSMTPServer, free_port
from tests.helpers import config_from

CHANNEL = "#dev-alerts"
ROUTER_URL = "https://alerts.example.com"


def slack_config(
    api_url: str, token: str, state: str, *, interval: float = 0.2, extra: str = ""
) -> Config:
    return config_from(
        f"""
server: {{external_url: '{ROUTER_URL}', shutdown_grace: 1s}}
state: {state}
slack: {{per_channel_interval: {interval}, digest_threshold: 5}}
receivers:
  - name: slack-dev
    slack: {{token: {token}, channel: '{CHANNEL}', api_url: '{api_url}'}}
route: {{receiver: slack-dev, repeat_interval: 1h}}
{extra}
"""
    )


def webhook(i: int, *, alertname: str = "KubePodCrashLooping") -> dict[str, Any]:
    """One group per pod, one firing alert each: the shape of a real storm."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{pod="web-{i}"}}',
        "receiver": "alert-router",
        "status": "firing",
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": alertname,
                    "env": "dev",
                    "severity": "warning",
                    "namespace": "shop",
                    "pod": f"web-{i}",
                },
                "annotations": {"summary": f"Pod web-{i} restarts"},
                "startsAt": "2026-11-26T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{i:016x}",
            }
        ],
    }


async def post_all(targets: Sequence[Running], bodies: Sequence[dict[str, Any]]) -> None:
    """Post every body (round-robin over `targets`), 50 at a time; all must be accepted."""
    for start in range(0, len(bodies), 50):
        batch = bodies[start : start + 50]
        answers = await asyncio.gather(
            *(
                targets[(start + i) % len(targets)].post("/webhook/alertmanager", body)
                for i, body in enumerate(batch)
            )
        )
        assert [status for status, _ in answers] == [200] * len(batch)


async def settle(services: Sequence[Running], within: float = 40.0) -> None:
    """Wait until nothing is pending in the store or in flight in any service."""
    async with asyncio.timeout(within):
        while True:
            pending = await services[0].state.store.pending_count()
            if not pending and not any(s.state.deliverer.in_flight for s in services):
                return
            await asyncio.sleep(0.05)


def every_post(slack: FakeSlack) -> list[SlackMessage]:
    """Every message of the channel, thread replies included, oldest first."""
    return [m for top in slack.messages(CHANNEL) for m in [top, *top.replies]]


def named_pods(slack: FakeSlack) -> list[str]:
    """The pods Slack names, once per line that names one (labels are shown as code)."""
    return [p for m in every_post(slack) for p in re.findall(r"`pod=(web-\d+)`", m.visible_text())]


def is_digest(message: SlackMessage) -> bool:
    return "Digest: " in message.blocks[0]["text"]["text"]


async def test_pending_backlog_after_an_outage_and_a_restart_names_every_alert(
    slack: FakeSlack, state_url: str
) -> None:
    clock = FakeClock()
    state = f"{{url: '{state_url}'}}"
    down = slack_config(f"http://127.0.0.1:{free_port()}/api/", slack.token, state)
    async with running(down, clock=clock) as svc:
        await post_all([svc], [webhook(i) for i in range(20)])
        async with asyncio.timeout(20):
            # Every notification was tried (and failed) once before the restart.
            while any(r["attempts"] < 1 for r in await svc.records()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    clock.now += 3600  # every retry is due when the service is back
    async with running(slack_config(slack.api_url, slack.token, state), clock=clock) as svc:
        await settle([svc])
        records = await svc.records()
    assert sorted(r["state"] for r in records) == ["sent"] * 20
    assert all(call.ok for call in slack.calls)
    assert sorted(named_pods(slack)) == sorted(f"web-{i}" for i in range(20))
    tops = slack.messages(CHANNEL)
    digests = [m for m in tops if is_digest(m)]
    assert digests, "twenty waiting notifications for one channel make a digest"
    for digest in digests:
        title = digest.blocks[0]["text"]["text"]
        count = int(re.findall(r"Digest: (\d+) alerts firing in #dev-alerts", title)[0])
        listed = [
            p
            for m in digest.replies
            for p in re.findall(r"`pod=(web-\d+)`", m.text + m.visible_text())
        ]
        assert len(set(listed)) == count
        assert "web-" not in digest.visible_text()  # the top only counts; the thread names
    singles = [m for m in tops if not is_digest(m)]
    assert (
        len(singles)
        + sum(int(re.findall(r"Digest: (\d+)", d.blocks[0]["text"]["text"])[0]) for d in digests)
        == 20
    )


async def test_storm_of_three_hundred_is_a_few_posts_naming_every_alert(
    slack: FakeSlack, state_url: str
) -> None:
    config = slack_config(slack.api_url, slack.token, f"{{url: '{state_url}'}}")
    async with running(config) as svc:
        await post_all([svc], [webhook(i) for i in range(300)])
        await settle([svc])
        records = await svc.records()
        digest_ids = sorted({r["delivered_in"] for r in records if r["delivered_in"]})
        carried = {d: await svc.records(digest=d) for d in digest_ids}
    assert sorted(r["state"] for r in records) == ["sent"] * 300
    assert all(call.ok for call in slack.calls)
    assert sorted(named_pods(slack)) == sorted(f"web-{i}" for i in range(300))
    tops = slack.messages(CHANNEL)
    assert len(tops) < 20
    # Each digest links to the records it carried, and the read API lists exactly those.
    assert digest_ids
    for digest_id in digest_ids:
        [top] = [m for m in tops if digest_id in m.visible_text()]
        assert f"{ROUTER_URL}/ui/digests/{digest_id}" in top.visible_text()
        assert {r["delivered_in"] for r in carried[digest_id]} == {digest_id}
        listed = {p for m in top.replies for p in re.findall(r"`pod=(web-\d+)`", m.visible_text())}
        assert {r["alerts"][0]["labels"]["pod"] for r in carried[digest_id]} == listed


def mail_config(smtp: FakeSMTPServer, state_url: str, interval: str) -> Config:
    return config_from(
        f"""
state: {{url: '{state_url}'}}
email: {{pacing: {{interval: {interval}, digest_threshold: 5}}}}
receivers:
  - name: email-sre
    email: {{to: [sre@example.com], from: router@example.com, smarthost: '{smtp.smarthost}',
             starttls: false}}
route: {{receiver: email-sre, repeat_interval: 1h}}
"""
    )


async def test_mail_storm_is_one_mail_then_one_digest_mail_listing_every_alert(
    smtp: FakeSMTPServer, state_url: str
) -> None:
    async with running(mail_config(smtp, state_url, "2s")) as svc:
        await post_all([svc], [webhook(0)])
        async with asyncio.timeout(10):
            await smtp.wait_for_messages(1)
        # The storm proper, while the recipients' next slot is still two seconds away.
        await post_all([svc], [webhook(i) for i in range(1, 12)])
        await settle([svc])
        records = await svc.records()
    assert sorted(r["state"] for r in records) == ["sent"] * 12
    first, digest = smtp.messages
    assert "web-0" in first.text and "Digest" not in str(first.message["Subject"])
    # At most one mail per interval to the same recipients.
    sent_at = [email.utils.parsedate_to_datetime(m.message["Date"]) for m in (first, digest)]
    assert (sent_at[1] - sent_at[0]).total_seconds() >= 1
    assert digest.message["Subject"] == "Digest: 11 alerts firing to sre@example.com"
    # Every alert of the digest is listed, in both parts, with what tells it apart.
    assert sorted(re.findall(r"pod=(web-\d+)", digest.text)) == sorted(
        f"web-{i}" for i in range(1, 12)
    )
    assert set(re.findall(r"pod=(web-\d+)", digest.html)) == {f"web-{i}" for i in range(1, 12)}
    assert "Every alert has: env=dev, namespace=shop, severity=warning" in digest.text


def posts_per_window(calls: Sequence[SlackCall], window: float = 10.0) -> int:
    """The most chat.postMessage calls Slack saw within any `window` seconds."""
    times = sorted(c.at for c in calls)
    most = 0
    for i, start in enumerate(times):
        most = max(most, sum(1 for t in times[i:] if t < start + window))
    return most


async def test_three_replicas_on_one_redis_share_the_channels_budget(
    slack: FakeSlack, redis_url: str, prefix: str
) -> None:
    state = f"{{url: '{redis_url}', key_prefix: '{prefix}'}}"
    # Slack's own pace: about one post per second per channel, thread replies included.
    config = slack_config(slack.api_url, slack.token, state, interval=1.0)
    async with AsyncExitStack() as stack:
        services = [await stack.enter_async_context(running(config)) for _ in range(3)]
        # 480 alerts over 12 s, spread over the replicas as a load balancer would.
        for second in range(12):
            started = time.monotonic()
            await post_all(services, [webhook(i) for i in range(second * 40, second * 40 + 40)])
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        await settle(services, within=45)
        records = await services[0].records()
    assert sorted(r["state"] for r in records) == ["sent"] * 480
    posts = slack.calls_to("chat.postMessage")
    assert all(call.ok for call in posts)
    assert posts_per_window(posts) <= 13
    assert sorted(named_pods(slack)) == sorted(f"web-{i}" for i in range(480))
    # The replicas shared the work (each posted some of it).
    assert len(slack.messages(CHANNEL)) >= 3
