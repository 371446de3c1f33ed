"""PagerDuty receivers against a fake Events API v2 (tests/fakes/pagerduty.py): the channel
alone, then the running service (webhook in, events out; Slack's Acknowledge reaching
PagerDuty)."""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest

from router.channels.base import DeliveryError
from router.channels.pagerduty import PagerDutyChannel, dedup_key, pagerduty_severity
from router.config.schema import PagerDutyReceiver
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import Link, LogExcerpt, Message, build_message
from tests.conftest import Running, running
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_clicks import click
from tests.fakes.smtp import free_port
from tests.helpers import config_from, until
from tests.test_console_access import post_form, token_of
from tests.test_console_pages import page, raw

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
GROUP = '{}:{alertname="DiskFull"}'


def clock() -> float:
    return T0.timestamp()


def event(fingerprint: str, status: Status = Status.FIRING, **labels: str) -> Event:
    return Event(
        source="alertmanager",
        fingerprint=fingerprint,
        group_key=GROUP,
        status=status,
        labels={
            "alertname": "DiskFull",
            "env": "prod",
            "severity": "critical",
            "instance": "db-1:9100",
            "namespace": "shop",
            "service": "postgres",
            **labels,
        },
        annotations={"summary": "Disk 97% full", "runbook_url": "https://runbooks/disk"},
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=30) if status is Status.RESOLVED else None,
        generator_url="http://prometheus/graph?g0",
    )


def message(*events: Event, summary: str = "") -> Message:
    notification = Notification(
        id="n-1",
        route=RouteSettings(
            receiver="pager", path="routes[0]", repeat_interval=3600.0, send_resolved=True
        ),
        group_key=GROUP,
        events=list(events) or [event("f1")],
        created_at=T0,
    )
    msg = build_message(notification, "first", router_url="https://router.example.com")
    if not msg.firing:
        return msg
    first = dataclasses.replace(
        msg.firing[0],
        summary=summary or msg.firing[0].summary,
        links=[Link("Grafana Explore", "https://grafana/explore?x")],
        logs=LogExcerpt(query='{app="db"}', lines=["ERROR no space left on device"]),
    )
    return dataclasses.replace(msg, firing=[first, *msg.firing[1:]])


def channel(pool: aiohttp.ClientSession, url: str, **overrides: Any) -> PagerDutyChannel:
    data: dict[str, Any] = {"routing_key": ROUTING_KEY, "url": url, "timeout": 5, **overrides}
    return PagerDutyChannel("pager", PagerDutyReceiver.model_validate(data), http=pool, clock=clock)


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as fake:
        yield fake


async def failure(chan: PagerDutyChannel, msg: Message) -> DeliveryError:
    with pytest.raises(DeliveryError) as excinfo:
        await chan.send(msg, {})
    await chan.close()
    return excinfo.value


# --- the channel -------------------------------------------------------------------------


async def test_a_firing_group_triggers_one_alert_with_what_the_on_call_needs(
    pool: aiohttp.ClientSession,
    pd: FakePagerDuty,
) -> None:
    chan = channel(pool, pd.url)
    state = await chan.send(message(), {})
    await chan.close()
    [sent] = pd.events
    assert sent["event_action"] == "trigger"
    assert state == {"dedup_key": dedup_key("pager", GROUP), "status": "firing"}
    assert sent["dedup_key"] == state["dedup_key"]
    payload = sent["payload"]
    assert payload["summary"] == "[FIRING:1] DiskFull (shop prod critical): Disk 97% full"
    assert payload["severity"] == "critical"
    assert payload["source"] == "db-1:9100"
    assert (payload["component"], payload["group"], payload["class"]) == (
        "postgres",
        "shop",
        "DiskFull",
    )
    assert payload["timestamp"] == T0.isoformat()
    [alert] = payload["custom_details"]["alerts"]
    assert alert["labels"]["instance"] == "db-1:9100"
    assert alert["annotations"]["summary"] == "Disk 97% full"
    assert alert["logs"] == ["ERROR no space left on device"]
    assert [link["text"] for link in sent["links"]] == [
        "alert-router",
        "Runbook",
        "Source",
        "Grafana Explore",
    ]
    assert sent["client_url"] == "https://router.example.com/ui/notifications/n-1"


async def test_a_long_summary_is_cut_to_pagerdutys_1024_characters(
    pool: aiohttp.ClientSession, pd: FakePagerDuty
) -> None:
    chan = channel(pool, pd.url)
    await chan.send(message(summary="x" * 5000), {})
    await chan.close()
    summary = pd.events[0]["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("critical", "critical"),
        ("error", "error"),
        ("warning", "warning"),
        ("info", "info"),
        ("page", "critical"),
        ("", "warning"),
        ("whatever", "warning"),
    ],
)
def test_severities_map_onto_pagerdutys_four(ours: str, theirs: str) -> None:
    assert pagerduty_severity(ours) == theirs


async def test_the_receivers_severity_overrides_the_alerts(
    pool: aiohttp.ClientSession, pd: FakePagerDuty
) -> None:
    chan = channel(pool, pd.url, severity="info")
    await chan.send(message(), {})
    await chan.close()
    assert pd.events[0]["payload"]["severity"] == "info"


async def test_trigger_repeat_and_resolve_land_on_one_pagerduty_alert(
    pool: aiohttp.ClientSession, pd: FakePagerDuty
) -> None:
    chan = channel(pool, pd.url)
    state = await chan.send(message(event("f1")), {})
    state = await chan.send(message(event("f1"), event("f2", instance="db-2")), state)
    assert await chan.acknowledge(state)
    state = await chan.send(
        message(event("f1", Status.RESOLVED), event("f2", Status.RESOLVED, instance="db-2")),
        state,
    )
    await chan.close()
    assert [e["event_action"] for e in pd.events] == [
        "trigger",
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert len(pd.alerts) == 1
    [found] = pd.alerts.values()
    assert found.status == "resolved" and len(found.events) == 4
    # Nothing is acknowledged once the alert is resolved.
    assert not await chan.acknowledge(state)


async def test_rate_limits_and_server_errors_are_retried_later(
    pool: aiohttp.ClientSession, pd: FakePagerDuty
) -> None:
    pd.script(429)
    error = await failure(channel(pool, pd.url), message())
    assert error.retryable and error.reason == "http_429"
    # PagerDuty gives no Retry-After: minutes, as it asks.
    assert error.retry_after == 60.0
    pd.script(429, headers={"Retry-After": "5"})
    assert (await failure(channel(pool, pd.url), message())).retry_after == 5.0
    pd.script(503)
    error = await failure(channel(pool, pd.url), message())
    assert error.retryable and error.reason == "http_503"


async def test_a_refused_event_is_not_retried_and_says_pagerdutys_reasons(
    pool: aiohttp.ClientSession,
    pd: FakePagerDuty,
) -> None:
    error = await failure(channel(pool, pd.url, routing_key="too-short-key"), message())
    assert not error.retryable and error.reason == "http_400"
    assert "Event object is invalid" in str(error)
    assert "Length of 'routing_key' is incorrect" in str(error)
    assert "too-short-key" not in str(error)


async def test_the_routing_key_never_shows_in_an_error(
    pool: aiohttp.ClientSession, pd: FakePagerDuty
) -> None:
    pd.script(400, body={"message": f"bad key {ROUTING_KEY}", "errors": [ROUTING_KEY]})
    error = await failure(channel(pool, pd.url), message())
    assert ROUTING_KEY not in str(error) and "<redacted>" in str(error)


async def test_an_unreachable_pagerduty_is_retried(pool: aiohttp.ClientSession) -> None:
    error = await failure(channel(pool, f"http://127.0.0.1:{free_port()}/v2/enqueue"), message())
    assert error.retryable and error.reason == "connection"


def test_check_never_shows_the_routing_key() -> None:
    from router.config.loader import ConfigError

    with pytest.raises(ConfigError) as excinfo:
        config_from(
            f"""
receivers:
  - name: pager
    pagerduty: {{routing_key: {ROUTING_KEY}, severity: {ROUTING_KEY}}}
route: {{receiver: pager}}
"""
        )
    assert ROUTING_KEY not in str(excinfo.value)
    assert "severity" in str(excinfo.value)


# --- the service ---------------------------------------------------------------------------

SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "#prod-alerts"


def webhook(status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "am",
        "status": status,
        "groupKey": GROUP,
        "groupLabels": {"alertname": "DiskFull"},
        "externalURL": "http://alertmanager.invalid:9093",
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "DiskFull",
                    "env": "prod",
                    "severity": "critical",
                    "instance": "db-1:9100",
                },
                "annotations": {"summary": "Disk 97% full"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-01T10:30:00Z",
                "fingerprint": "f1",
            }
        ],
    }


def service_config(pd: FakePagerDuty, state_url: str, slack: FakeSlack | None = None) -> str:
    slack_part = ""
    receivers = f"""
  - name: pager
    pagerduty: {{routing_key: {ROUTING_KEY}, url: "{pd.url}"}}
"""
    route = "route: {receiver: pager}"
    if slack is not None:
        slack_part = f"""
slack:
  per_channel_interval: 0
  interactivity: {{signing_secret: {SIGNING}}}
"""
        receivers += f"""
  - name: chat
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url}}}
"""
        route = """
route:
  receiver: chat
  routes:
    - {receiver: chat, continue: true}
    - {receiver: pager}
"""
    return f"""
state: {{url: '{state_url}'}}
server: {{external_url: "https://router.example.com"}}
{slack_part}
receivers:
{receivers}
{route}
"""


async def pager_records(svc: Running) -> list[dict[str, Any]]:
    return await svc.records(receiver="pager")


async def test_a_webhook_triggers_and_its_resolve_resolves_the_same_pagerduty_alert(
    pd: FakePagerDuty, state_url: str
) -> None:
    async with running(config_from(service_config(pd, state_url))) as svc:
        assert (await svc.post("/webhook/alertmanager", webhook()))[0] == 200
        await until(lambda: pd.events)
        assert (await svc.post("/webhook/alertmanager", webhook("resolved")))[0] == 200
        await until(lambda: len(pd.events) == 2)
        records = await svc.wait_for_records(
            lambda rs: len(rs) == 2 and all(r["state"] == "sent" for r in rs)
        )
    assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
    assert pd.events[0]["dedup_key"] == pd.events[1]["dedup_key"]
    [alert] = pd.alerts.values()
    assert alert.status == "resolved"
    assert pd.events[0]["payload"]["summary"].startswith("[FIRING:1] DiskFull")
    assert {r["receiver"] for r in records} == {"pager"}


async def test_a_rate_limited_event_is_sent_again(pd: FakePagerDuty, state_url: str) -> None:
    pd.script(429, headers={"Retry-After": "1"})
    async with running(config_from(service_config(pd, state_url))) as svc:
        await svc.post("/webhook/alertmanager", webhook())
        [record] = await svc.wait_for_records(lambda rs: bool(rs) and rs[0]["state"] == "sent")
    assert len(pd.requests) == 2 and len(pd.events) == 1
    assert record["attempts"] == 2


async def test_a_refused_event_fails_for_good_with_pagerdutys_message(
    pd: FakePagerDuty, state_url: str
) -> None:
    pd.script(
        400,
        body={
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["'payload.source' is missing or blank"],
        },
    )
    async with running(config_from(service_config(pd, state_url))) as svc:
        await svc.post("/webhook/alertmanager", webhook())
        [record] = await svc.wait_for_records(lambda rs: bool(rs) and rs[0]["state"] == "failed")
    assert "'payload.source' is missing or blank" in record["last_error"]
    assert len(pd.requests) == 1 and record["attempts"] == 1


async def test_acknowledge_in_slack_acknowledges_the_pagerduty_alert(
    pd: FakePagerDuty, slack: FakeSlack, state_url: str
) -> None:
    async with running(config_from(service_config(pd, state_url, slack))) as svc:
        await svc.post("/webhook/alertmanager", webhook())
        await until(lambda: pd.events and slack.messages(CHANNEL))
        await svc.wait_for_records(
            lambda rs: len(rs) == 2 and all(r["state"] == "sent" for r in rs)
        )
        [posted] = slack.messages(CHANNEL)
        status = await click(
            svc.http,
            svc.url + "/slack/interactions",
            SIGNING,
            posted,
            slack.channel_id(CHANNEL),
            "ack",
            timestamp=str(int(time.time())),
        )
        assert status == 200
        await until(lambda: len(pd.events) == 2)
        [alert] = pd.alerts.values()
        assert alert.status == "acknowledged"
        # A new alert joins the group: PagerDuty hears of it on the same (acknowledged)
        # alert, now with a link to the Slack message.
        second = webhook()
        second["alerts"].append({**second["alerts"][0], "fingerprint": "f2"})
        second["alerts"][1]["labels"] = {**second["alerts"][0]["labels"], "instance": "db-2"}
        await svc.post("/webhook/alertmanager", second)
        await until(lambda: len(pd.events) == 3)
    assert [e["event_action"] for e in pd.events] == ["trigger", "acknowledge", "trigger"]
    assert len({e["dedup_key"] for e in pd.events}) == 1
    assert alert.status == "acknowledged" and len(pd.alerts) == 1
    slack_links = [link for link in pd.events[2]["links"] if link["text"] == "Slack (chat)"]
    assert [link["href"].split("/archives/")[1] for link in slack_links] == [
        f"{slack.channel_id(CHANNEL)}/p{posted.ts.replace('.', '')}"
    ]


# --- Acknowledge from the console ----------------------------------------------------------

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin-pw").decode()}
AUTH = """
server:
  external_url: "https://router.example.com"
  auth:
    admin: {basic_auth: {username: ops, password: admin-pw}}
"""


async def acknowledge_on_console(svc: Running) -> tuple[int, str]:
    """Open the group's page as the admin and press Acknowledge: (status, Location)."""
    key = (await svc.records())[0]["group_key"]
    _, markup = await raw(svc, f"/ui/groups/{quote(key, safe='')}", ADMIN)
    assert 'id="acknowledge"' in markup
    status, location, _ = await post_form(
        svc, "/ui/acknowledge", {"csrf": token_of(markup), "group": key}, ADMIN
    )
    return status, location


async def test_acknowledge_on_the_console_acknowledges_slack_and_pagerduty(
    pd: FakePagerDuty, slack: FakeSlack, state_url: str
) -> None:
    text = service_config(pd, state_url, slack).replace(
        'server: {external_url: "https://router.example.com"}', AUTH
    )
    async with running(config_from(text)) as svc:
        await svc.post("/webhook/alertmanager", webhook())
        await svc.wait_for_records(
            lambda rs: len(rs) == 2 and all(r["state"] == "sent" for r in rs)
        )
        status, location = await acknowledge_on_console(svc)
        key = (await svc.records())[0]["group_key"]
        assert (status, unquote(location)) == (303, f"/ui/groups/{key}?acknowledged=yes")
        await until(lambda: len(pd.events) == 2)
        await until(lambda: "Acknowledged by ops" in slack.messages(CHANNEL)[0].visible_text())
        [record] = await svc.records(receiver="chat")

        async def noted() -> list[dict[str, Any]]:
            _, body = await svc.get_json(f"/api/v1/notifications/{record['id']}")
            return [e for e in body["timeline"] if e["kind"] == "acknowledged"]

        [entry] = await until(noted)
        _, shown = await page(svc, location, ADMIN)
    assert pd.events[1]["event_action"] == "acknowledge"
    assert [a.status for a in pd.alerts.values()] == ["acknowledged"]
    assert entry["text"] == "acknowledged by ops from the console"
    assert "Acknowledged: its Slack messages show it" in shown


async def test_without_slack_the_console_acknowledges_on_pagerduty_itself(
    pd: FakePagerDuty, state_url: str
) -> None:
    text = service_config(pd, state_url).replace(
        'server: {external_url: "https://router.example.com"}', AUTH
    )
    async with running(config_from(text)) as svc:
        await svc.post("/webhook/alertmanager", webhook())
        await svc.wait_for_records(lambda rs: bool(rs) and rs[0]["state"] == "sent")
        pd.script(503)
        assert (await acknowledge_on_console(svc))[1].endswith("?acknowledged=failed")
        assert (await acknowledge_on_console(svc))[1].endswith("?acknowledged=yes")
        # A resolved group has nothing left to acknowledge.
        await svc.post("/webhook/alertmanager", webhook("resolved"))
        await svc.wait_for_records(
            lambda rs: len(rs) == 2 and all(r["state"] == "sent" for r in rs)
        )
        assert (await acknowledge_on_console(svc))[1].endswith("?acknowledged=none")
    assert [e["event_action"] for e in pd.events] == ["trigger", "acknowledge", "resolve"]
