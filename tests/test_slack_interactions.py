"""Slack buttons against the running service: signed clicks from the fake Slack, real
HTTP, SQLite; Alertmanager silences are in tests/test_slack_interactions_e2e.py."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest

from router.model import GroupActions
from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.slack_clicks import (
    ALICE,
    BOB,
    block_actions,
    button_labels,
    buttons,
    click,
    form_body,
    post_signed,
    sign,
)
from tests.helpers import config_from, until

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "#prod-alerts"
RECEIVER = "slack-prod"
GROUP = 'am/prod/{}:{alertname="CPUHigh", env="prod"}'
EXTERNAL_URL = "http://alertmanager.invalid:9093"


# The Alertmanager the webhooks below name as their externalURL; nothing answers at its
# url unless a test starts one there.
ALERTMANAGER = "alertmanager: {url: 'http://127.0.0.1:9', external_url: '" + EXTERNAL_URL + "'}"


def config_text(slack: FakeSlack, state_url: str, extra: str = "") -> str:
    if "alertmanager:" not in extra:
        extra = f"{ALERTMANAGER}\n{extra}"
    return f"""
state: {{url: '{state_url}'}}
slack:
  per_channel_interval: 0
  interactivity:
    signing_secret: {SECRET}
    silence_durations: [1h, 4h, 1d]
dedup: {{repeat_interval: 1h}}
{extra}
receivers:
  - name: {RECEIVER}
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url}}}
route:
  receiver: {RECEIVER}
"""


def alert(fingerprint: str, *, status: str = "firing", instance: str = "a") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "CPUHigh",
            "env": "prod",
            "severity": "warning",
            "instance": instance,
        },
        "annotations": {"summary": f"CPU high on {instance}"},
        "startsAt": "2026-12-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-01T10:30:00Z",
        "fingerprint": fingerprint,
    }


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "receiver": "prod",
        "status": "firing" if firing else "resolved",
        "groupKey": '{}:{alertname="CPUHigh", env="prod"}',
        "groupLabels": {"alertname": "CPUHigh", "env": "prod"},
        "externalURL": EXTERNAL_URL,
        "alerts": list(alerts),
    }


@pytest.fixture
def clock() -> FakeClock:
    # Close to the wall clock: the fake Slack's message times are real.
    import time

    return FakeClock(time.time())


@pytest.fixture
async def service(slack: FakeSlack, state_url: str, clock: FakeClock) -> AsyncIterator[Running]:
    async with running(config_from(config_text(slack, state_url)), clock=clock) as svc:
        yield svc


def the_message(slack: FakeSlack) -> SlackMessage:
    [message] = slack.messages(CHANNEL)
    return message


async def fire(service: Running, slack: FakeSlack, *alerts: dict[str, Any]) -> SlackMessage:
    status, _ = await service.post("/webhook/alertmanager", webhook(*alerts))
    assert status == 200
    await until(lambda: slack.messages(CHANNEL))
    # A click is taken once the store has the message as its group's current one.
    await service.wait_for_records(lambda rs: any(r["state"] == "sent" for r in rs))
    return the_message(slack)


async def press(
    service: Running, slack: FakeSlack, clock: FakeClock, action_id: str, **kw: Any
) -> int:
    channel_id = slack.channel_id(CHANNEL)
    kw.setdefault("timestamp", str(int(clock())))
    return await click(
        service.http,
        service.url + "/slack/interactions",
        SECRET,
        the_message(slack),
        channel_id,
        action_id,
        **kw,
    )


async def group_state(service: Running) -> GroupActions | None:
    return await service.state.store.group_actions(RECEIVER, GROUP)


async def test_a_firing_message_offers_acknowledge_and_a_silence_per_duration(
    service: Running, slack: FakeSlack
) -> None:
    message = await fire(service, slack, alert("f1"))
    assert button_labels(message) == ["Acknowledge", "Silence 1h", "Silence 4h", "Silence 1d"]
    assert "<@" not in message.text and "<!" not in message.text


async def test_acknowledge_names_who_and_when_and_offers_unacknowledge(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, alert("f1"))
    assert await press(service, slack, clock, "ack") == 200
    message = await until(
        lambda: "Acknowledged by" in the_message(slack).visible_text() and the_message(slack)
    )
    assert f"Acknowledged by <@{ALICE.id}> at <!date^" in message.visible_text()
    assert button_labels(message) == ["Unacknowledge", "Silence 1h", "Silence 4h", "Silence 1d"]
    # The edit pings nobody: no mention in the text notifications show.
    assert "<@" not in message.text and "@channel" not in message.visible_text()
    state = await group_state(service)
    assert state is not None and state.to_dict()["acked_by"] == ALICE.id
    assert state.acked_by_name == "alice" and state.acked_at == pytest.approx(clock(), abs=1)

    assert await press(service, slack, clock, "unack", user=BOB) == 200
    message = await until(
        lambda: "Acknowledge" in button_labels(the_message(slack)) and the_message(slack)
    )
    assert "Acknowledged by" not in message.visible_text()
    state = await group_state(service)
    assert state is not None and not state.acknowledged
    registry = service.state.metrics.registry

    def carried_out(action: str) -> Callable[[], float | None]:
        labels = {"action": action, "outcome": "done"}
        return lambda: registry.get_sample_value("alert_router_slack_actions_total", labels)

    for action in ("ack", "unack"):
        await until(carried_out(action))


async def test_an_acknowledgement_shows_in_the_read_api_the_console_and_the_timeline(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, alert("f1"))
    [record] = await service.records()
    assert await press(service, slack, clock, "ack") == 200

    async def acknowledged() -> Any:
        status, body = await service.get_json(f"/api/v1/notifications/{record['id']}")
        assert status == 200
        kinds = [e["kind"] for e in body["timeline"]]
        return body if "acknowledged" in kinds else None

    body = await until(acknowledged)
    assert body["actions"]["acked_by"] == ALICE.id
    [entry] = [e for e in body["timeline"] if e["kind"] == "acknowledged"]
    assert entry["text"] == "acknowledged by alice from Slack"
    assert entry["detail"]["user"] == ALICE.id
    status, group = await service.get_json("/api/v1/groups/" + quote(GROUP, safe=""))
    assert status == 200
    [receiver] = group["receivers"]
    assert receiver["actions"]["acked_by_name"] == "alice"
    # The console's pages say it too, in words.
    for page in (f"/ui/notifications/{record['id']}", "/ui/groups/" + quote(GROUP, safe="")):
        async with service.http.get(service.url + page) as resp:
            assert resp.status == 200
            assert "Acknowledged by alice at" in await resp.text()


async def test_an_acknowledged_group_gets_no_reminder_but_hears_of_new_alerts_and_the_resolve(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, alert("f1"))
    await press(service, slack, clock, "ack")
    await until(lambda: "Acknowledged by" in the_message(slack).visible_text())

    clock.now += 3601  # repeat_interval has passed
    await service.post("/webhook/alertmanager", webhook(alert("f1")))
    records = await service.wait_for_records(
        lambda rs: any(r["reason"] == "acknowledged" for r in rs)
    )
    assert [r["state"] for r in records if r["reason"] == "acknowledged"] == ["suppressed"]
    assert the_message(slack).replies == []

    # A new alert joining the group is news, acknowledged or not.
    await service.post("/webhook/alertmanager", webhook(alert("f1"), alert("f2", instance="b")))
    await service.wait_for_records(lambda rs: any(r["reason"] == "new_alerts" for r in rs))
    message = the_message(slack)
    assert len(message.replies) == 1
    # Still acknowledged: the edit says so, the buttons stay.
    assert "Acknowledged by" in message.visible_text()

    await service.post(
        "/webhook/alertmanager",
        webhook(alert("f1", status="resolved"), alert("f2", status="resolved", instance="b")),
    )
    await service.wait_for_records(lambda rs: any(r["reason"] == "resolved" for r in rs))
    message = the_message(slack)
    assert button_labels(message) == []
    assert "Acknowledged by" not in message.visible_text()
    state = await group_state(service)
    assert state is not None and not state.acknowledged


async def test_a_double_click_and_a_replayed_click_acknowledge_once(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, alert("f1"))
    body = form_body(
        block_actions(the_message(slack), slack.channel_id(CHANNEL), "ack", ALICE, action_ts="1.1")
    )
    url = service.url + "/slack/interactions"
    ts = str(int(clock()))
    statuses = await asyncio.gather(
        post_signed(service.http, url, SECRET, body, timestamp=ts),
        post_signed(service.http, url, SECRET, body, timestamp=ts),
        press(service, slack, clock, "ack", user=BOB, action_ts="1.2"),
    )
    assert list(statuses) == [200, 200, 200]
    await until(lambda: "Acknowledged by" in the_message(slack).visible_text())
    # Every click is carried out (or known) before the state is read.
    await until(_no_action_due(service, clock))
    state = await group_state(service)
    assert state is not None and state.version == 1
    assert state.acked_by in (ALICE.id, BOB.id)
    # The same signed click replayed once it was carried out: known, nothing changes.
    assert await post_signed(service.http, url, SECRET, body, timestamp=ts) == 200
    assert await service.state.store.pending_actions() == 0
    assert await group_state(service) == state


def _no_action_due(service: Running, clock: FakeClock) -> Callable[[], Any]:
    async def check() -> bool:
        return await service.state.store.pending_actions() == 0

    return check


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Signature": ""},
        {"X-Slack-Request-Timestamp": ""},
        {"X-Slack-Request-Timestamp": "not-a-number"},
    ],
    ids=["bad signature", "no signature", "no timestamp", "non-numeric timestamp"],
)
async def test_a_click_not_signed_by_slack_is_refused_and_changes_nothing(
    service: Running, slack: FakeSlack, clock: FakeClock, headers: dict[str, str]
) -> None:
    await fire(service, slack, alert("f1"))
    body = form_body(block_actions(the_message(slack), slack.channel_id(CHANNEL), "ack", ALICE))
    url = service.url + "/slack/interactions"
    async with service.http.post(
        url,
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **{
                "X-Slack-Request-Timestamp": str(int(clock())),
                "X-Slack-Signature": sign(SECRET, body, str(int(clock()))),
                **headers,
            },
        },
    ) as resp:
        assert resp.status == 401
        answer = await resp.json()
    assert "error" in answer and SECRET not in answer["error"]
    assert await group_state(service) is None
    assert await service.state.store.pending_actions() == 0
    refused = service.state.metrics.registry.get_sample_value(
        "alert_router_webhooks_rejected_total", {"source": "slack", "reason": "unauthorized"}
    )
    assert refused == 1


async def test_a_click_signed_more_than_five_minutes_ago_is_refused(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, alert("f1"))
    status = await press(service, slack, clock, "ack", timestamp=str(int(clock()) - 301))
    assert status == 401
    assert await group_state(service) is None


async def test_a_click_on_a_message_the_router_never_sent_is_a_no_op(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    real = await fire(service, slack, alert("f1"))
    forged = copy.deepcopy(real)
    forged.ts = "1111111111.000001"
    status = await click(
        service.http,
        service.url + "/slack/interactions",
        SECRET,
        forged,
        slack.channel_id(CHANNEL),
        "ack",
        timestamp=str(int(clock())),
    )
    assert status == 200
    assert await group_state(service) is None
    assert await service.state.store.pending_actions() == 0
    assert not the_message(slack).edited


async def test_a_click_naming_another_group_than_its_message_is_a_no_op(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, alert("f1"))
    payload = block_actions(the_message(slack), slack.channel_id(CHANNEL), "ack", ALICE)
    payload["actions"][0]["value"] = '{"r":"slack-prod","g":"am/prod/{}:{alertname=\\"Other\\"}"}'
    status = await post_signed(
        service.http,
        service.url + "/slack/interactions",
        SECRET,
        form_body(payload),
        timestamp=str(int(clock())),
    )
    assert status == 200
    assert await service.state.store.pending_actions() == 0


ARGO = """
argocd:
  hold: {on-health-degraded: 0s}
"""


def argo(trigger: str, **fields: str) -> dict[str, Any]:
    body = {
        "trigger": trigger,
        "app": "backend",
        "project": "default",
        "namespace": "prod",
        "syncStatus": "OutOfSync",
        "healthStatus": "Degraded",
        "operationPhase": "Failed",
        "message": "one or more objects failed to apply",
        "revision": "9f2c1e7",
        "argocdUrl": "https://argocd.example.com",
    }
    return {**body, **fields}


async def test_silencing_an_argocd_group_mutes_it_in_the_router_until_unsilenced(
    slack: FakeSlack, state_url: str, clock: FakeClock
) -> None:
    config = config_from(config_text(slack, state_url, ARGO))
    async with running(config, clock=clock) as service:
        status, _ = await service.post("/webhook/argocd", argo("on-sync-failed"))
        assert status == 200
        await service.wait_for_records(lambda rs: any(r["state"] == "sent" for r in rs))
        assert "Silence 4h" in button_labels(the_message(slack))
        assert await press(service, slack, clock, "silence_14400") == 200
        message = await until(
            lambda: "Silenced by" in the_message(slack).visible_text() and the_message(slack)
        )
        assert "(muted by alert-router)" in message.visible_text()
        assert button_labels(message) == ["Acknowledge", "Unsilence"]

        # The app still failing past repeat_interval is not told while muted (4h).
        clock.now += 3601
        await service.post("/webhook/argocd", argo("on-sync-failed"))
        records = await service.wait_for_records(
            lambda rs: any(r["reason"] == "silenced" for r in rs)
        )
        assert [r["state"] for r in records if r["reason"] == "silenced"] == ["suppressed"]

        assert await press(service, slack, clock, "unsilence") == 200
        message = await until(
            lambda: "Silenced by" not in the_message(slack).visible_text() and the_message(slack)
        )
        assert "Silence 1h" in button_labels(message)
        group_key = json.loads(buttons(message)["ack"]["value"])["g"]
        state = await service.state.store.group_actions(RECEIVER, group_key)
        assert state is not None and not state.silenced(clock())


async def test_a_silence_button_posted_by_an_earlier_version_still_silences(
    slack: FakeSlack, state_url: str, clock: FakeClock
) -> None:
    config = config_from(config_text(slack, state_url, ARGO))
    async with running(config, clock=clock) as service:
        status, _ = await service.post("/webhook/argocd", argo("on-sync-failed"))
        assert status == 200
        await service.wait_for_records(lambda rs: any(r["state"] == "sent" for r in rs))
        payload = block_actions(the_message(slack), slack.channel_id(CHANNEL), "silence_3600", BOB)
        # Earlier versions wrote the silence's length into the value as well.
        value = json.loads(payload["actions"][0]["value"])
        payload["actions"][0]["value"] = json.dumps({**value, "d": 3600})
        url = service.url + "/slack/interactions"
        body = form_body(payload)
        assert (
            await post_signed(service.http, url, SECRET, body, timestamp=str(int(clock()))) == 200
        )
        message = await until(
            lambda: "Silenced by" in the_message(slack).visible_text() and the_message(slack)
        )
        assert button_labels(message) == ["Acknowledge", "Unsilence"]
        state = await service.state.store.group_actions(RECEIVER, value["g"])
        assert state is not None and state.silenced_by == BOB.id
        assert state.silenced_until - state.silenced_at == 3600


async def test_a_click_answered_by_a_replica_that_dies_at_once_is_done_by_the_next(
    slack: FakeSlack, state_url: str, clock: FakeClock
) -> None:
    from router.web.slack import RUNNER

    config = config_from(config_text(slack, state_url))
    async with running(config, clock=clock) as first:
        await fire(first, slack, alert("f1"))
        # This replica answers the click and dies before carrying it out.
        await first.app[RUNNER].stop()
        assert await press(first, slack, clock, "ack") == 200
        assert await first.state.store.pending_actions() == 1
    assert "Acknowledged by" not in the_message(slack).visible_text()
    async with running(config, clock=clock) as second:
        await until(lambda: "Acknowledged by" in the_message(slack).visible_text())
        state = await second.state.store.group_actions(RECEIVER, GROUP)
        assert state is not None and state.acked_by == ALICE.id


async def test_alertmanager_refusing_the_silence_is_said_in_the_thread_and_not_retried(
    slack: FakeSlack, state_url: str, clock: FakeClock
) -> None:
    from aiohttp import web

    posts: list[dict[str, Any]] = []

    async def refuse(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.json_response("silence invalid: at least one matcher must not match", status=400)

    async def none_yet(request: web.Request) -> web.Response:
        return web.json_response([])

    am = web.Application()
    am.router.add_post("/api/v2/silences", refuse)
    am.router.add_get("/api/v2/silences", none_yet)
    runner = web.AppRunner(am)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    extra = (
        f"alertmanager: {{url: 'http://127.0.0.1:{port}', external_url: '{EXTERNAL_URL}',"
        " bearer_token: am-t0ken}"
    )
    try:
        config = config_from(config_text(slack, state_url, extra))
        async with running(config, clock=clock) as service:
            await fire(service, slack, alert("f1"))
            assert await press(service, slack, clock, "silence_3600") == 200
            [reply] = await until(lambda: the_message(slack).replies)
            assert reply.text.startswith("Could not create the silence: Alertmanager answered 400")
            assert "at least one matcher" in reply.text and "am-t0ken" not in reply.text
            await until(_no_action_due(service, clock))
            assert len(posts) == 1
            assert {m["name"]: m["value"] for m in posts[0]["matchers"]} == {
                "alertname": "CPUHigh",
                "env": "prod",
            }
            state = await group_state(service)
            assert state is not None and not state.silenced(clock()) and not state.silence_pending
            assert "Silence 1h" in button_labels(the_message(slack))
    finally:
        await runner.cleanup()
