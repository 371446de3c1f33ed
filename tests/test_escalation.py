"""Escalation with an injected clock: each step's receiver is told once when the group has
fired unacknowledged for its `after`; an acknowledgement (before or between steps) or the
resolve stops the chain; three replicas on one Redis tell each step once.

Every test fires a second group nobody touches: its escalations are the positive signal
that the escalator looked at the time the test set, so the first group's silence is real.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from router.notify import escalation
from router.replay.insights import insights
from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.slack_clicks import click
from tests.helpers import config_from, until

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PROD, ONCALL, LEADS = "#prod-alerts", "#oncall", "#leads"


def receivers_text(slack: FakeSlack) -> str:
    """`receivers:` items for #prod-alerts, #oncall and #leads (created in `slack`)."""
    slack.add_channel(ONCALL, "C0ONCALL01")
    slack.add_channel(LEADS, "C0LEADS001")
    return "\n".join(
        f"  - name: {name}\n    slack: {{token: {slack.token}, channel: '{channel}',"
        f" api_url: {slack.api_url}}}"
        for name, channel in (
            ("slack-prod", PROD),
            ("slack-oncall", ONCALL),
            ("slack-leads", LEADS),
        )
    )


def config_text(slack: FakeSlack, state: str) -> str:
    receivers = receivers_text(slack)
    return f"""
state: {state}
server: {{external_url: 'https://router.example.com'}}
slack:
  per_channel_interval: 0
  interactivity: {{signing_secret: {SECRET}}}
dedup: {{repeat_interval: 4h}}
receivers:
{receivers}
route:
  receiver: slack-prod
  routes:
    - matchers: ['env="prod"']
      receiver: slack-prod
      escalate:
        - {{after: 10m, to: slack-oncall}}
        - {{after: 30m, to: slack-leads}}
"""


def webhook(
    name: str, status: str = "firing", *, starts: float | None = None, ends: float | None = None
) -> dict[str, Any]:
    started = "2026-12-01T10:00:00Z" if starts is None else _rfc3339(starts)
    ended = "2026-12-01T10:30:00Z" if ends is None else _rfc3339(ends)
    return {
        "version": "4",
        "receiver": "prod",
        "status": status,
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "groupLabels": {"alertname": name},
        "externalURL": "http://alertmanager.invalid:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "env": "prod", "severity": "critical"},
                "annotations": {"summary": f"{name} is failing"},
                "startsAt": started,
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else ended,
                "fingerprint": f"fp-{name}",
            }
        ],
    }


def about(slack: FakeSlack, channel: str, name: str) -> list[SlackMessage]:
    """Top-level messages in `channel` about alert `name`."""
    return [m for m in slack.messages(channel) if name in m.visible_text()]


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


async def fire(
    service: Running, slack: FakeSlack, name: str, starts: float | None = None
) -> SlackMessage:
    status, _ = await service.post("/webhook/alertmanager", webhook(name, starts=starts))
    assert status == 200
    found: list[SlackMessage] = await until(lambda: about(slack, PROD, name))
    await until(lambda: delivered(service, "slack-prod", name))
    return found[0]


async def acknowledge(service: Running, slack: FakeSlack, clock: FakeClock, name: str) -> None:
    [message] = about(slack, PROD, name)
    status = await click(
        service.http,
        service.url + "/slack/interactions",
        SECRET,
        message,
        slack.channel_id(PROD),
        "ack",
        timestamp=str(int(clock())),
    )
    assert status == 200
    # Acknowledging ends the chain at once (the timer is gone).
    await until(lambda: chain_gone(service, name))


async def chain_gone(service: Running, name: str) -> bool:
    key = escalation.chain_key("slack-prod", group_key(name))
    return await service.state.store.get_timer(escalation.KIND, key) is None


async def chain(service: Running, name: str) -> escalation.Chain | None:
    key = escalation.chain_key("slack-prod", group_key(name))
    timer = await service.state.store.get_timer(escalation.KIND, key)
    return None if timer is None else escalation.Chain.from_json(timer.body)


def group_key(name: str) -> str:
    return f'am/prod/{{}}:{{alertname="{name}"}}'


def sample(service: Running, metric: str, **labels: str) -> float:
    found = service.state.metrics.registry.get_sample_value(metric, labels)
    return found or 0.0


@pytest.fixture
def clock() -> FakeClock:
    # Close to the wall clock: the fake Slack's message times are real.
    return FakeClock(time.time())


@pytest.fixture
async def service(slack: FakeSlack, state_url: str, clock: FakeClock) -> AsyncIterator[Running]:
    config = config_from(config_text(slack, f"{{url: '{state_url}'}}"))
    async with running(config, clock=clock) as svc:
        yield svc


async def test_nothing_escalates_for_a_group_acknowledged_before_the_first_step(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, "Acked")
    await fire(service, slack, "Ignored")
    await acknowledge(service, slack, clock, "Acked")

    clock.now += 601
    await until(lambda: about(slack, ONCALL, "Ignored"))
    clock.now += 1200
    await until(lambda: about(slack, LEADS, "Ignored"))
    assert about(slack, ONCALL, "Acked") == [] and about(slack, LEADS, "Acked") == []
    assert (
        sample(service, "alert_router_time_to_acknowledge_seconds_count", receiver="slack-prod")
        == 1
    )


async def test_an_acknowledgement_between_steps_stops_the_rest_of_the_chain(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    first = await fire(service, slack, "Acked")
    await fire(service, slack, "Ignored")

    clock.now += 601
    [paged] = await until(lambda: about(slack, ONCALL, "Acked"))
    await until(lambda: about(slack, ONCALL, "Ignored"))
    text = paged.visible_text()
    assert "Unacknowledged for 10m" in text and "escalation step 1 of slack-prod" in text
    # The first message's thread names who was escalated to.
    reply = await until(
        lambda: [r.text for r in slack.message(PROD, first.ts).replies if "escalated" in r.text]
    )
    assert reply == [
        ":rotating_light: Unacknowledged for 10m: escalated to slack-oncall (step 1 of 2)."
    ]
    await acknowledge(service, slack, clock, "Acked")

    clock.now += 1200
    await until(lambda: about(slack, LEADS, "Ignored"))
    assert about(slack, LEADS, "Acked") == []
    assert len(about(slack, ONCALL, "Acked")) == 1
    assert sample(service, "alert_router_escalations_total", receiver="slack-oncall", step="1") == 2
    assert sample(service, "alert_router_escalations_total", receiver="slack-leads", step="2") == 1
    # Insights count each step told once, under the receiver the group was routed to.
    assert await escalations(service, clock) == {"Acked": 1, "Ignored": 2, "slack-prod": 3}
    # The escalated record says why it exists.
    await until(lambda: escalated_to(service, {"slack-oncall", "slack-leads"}))
    # The first message's timeline shows the step told and the next one due.
    [prod] = [r for r in await service.records(receiver="slack-prod") if "Acked" in str(r)]
    kinds = [e.kind for e in await service.state.store.timeline(prod["id"])]
    assert "escalation" in kinds and "escalated" in kinds
    notes = [e.text for e in await service.state.store.timeline(prod["id"])]
    assert any(
        n.startswith("escalated to slack-oncall (step 1 of 2)") and "next: step 2" in n
        for n in notes
    )


async def test_a_short_episode_acknowledged_in_slack_is_not_noise(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    start = clock.now
    for name in ("Acked", "Ignored"):
        await fire(service, slack, name, starts=start)
    await acknowledge(service, slack, clock, "Acked")
    clock.now += 180
    for name in ("Acked", "Ignored"):
        status, _ = await service.post(
            "/webhook/alertmanager", webhook(name, "resolved", starts=start, ends=start + 180)
        )
        assert status == 200
    # The resolve clears the acknowledgement only after its record counted the episode.
    found = await until(lambda: episodes(service, clock, 2))
    shares = {a["alertname"]: a["noise_share"] for a in found["alerts"]}
    assert shares == {"Acked": 0.0, "Ignored": 1.0}


async def episodes(service: Running, clock: FakeClock, count: int) -> dict[str, Any] | None:
    """The insights of the last day once `count` episodes ended."""
    found = (await insights(service.state.store, clock.now, 86400.0)).to_dict()
    ended = sum(a["episodes"] for a in found["alerts"])
    return found if ended == count else None


async def test_the_resolve_stops_the_chain(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await fire(service, slack, "Resolved")
    await fire(service, slack, "Ignored")
    status, _ = await service.post("/webhook/alertmanager", webhook("Resolved", "resolved"))
    assert status == 200
    await until(lambda: chain_gone(service, "Resolved"))

    clock.now += 601
    await until(lambda: about(slack, ONCALL, "Ignored"))
    clock.now += 1200
    await until(lambda: about(slack, LEADS, "Ignored"))
    assert about(slack, ONCALL, "Resolved") == [] and about(slack, LEADS, "Resolved") == []
    # Those escalated to are told the all-clear too.
    status, _ = await service.post("/webhook/alertmanager", webhook("Ignored", "resolved"))
    assert status == 200
    for channel in (ONCALL, LEADS):
        await until(functools.partial(resolved_in, slack, channel, "Ignored"))


async def test_three_replicas_on_redis_tell_each_step_once(
    slack: FakeSlack, redis_url: str, prefix: str, clock: FakeClock
) -> None:
    config = config_from(config_text(slack, f"{{url: '{redis_url}', key_prefix: '{prefix}'}}"))
    async with contextlib.AsyncExitStack() as stack:
        replicas = [await stack.enter_async_context(running(config, clock=clock)) for _ in range(3)]
        await fire(replicas[0], slack, "Storm")

        clock.now += 601
        await until(lambda: about(slack, ONCALL, "Storm"))
        clock.now += 1200
        await until(lambda: about(slack, LEADS, "Storm"))
        # Every replica has looked since: the chain is parked after its last step.
        told = await until(lambda: _parked(replicas[1]))
        assert told.done == 2
        assert len(about(slack, ONCALL, "Storm")) == 1
        assert len(about(slack, LEADS, "Storm")) == 1
        steps = sum(
            sample(r, "alert_router_escalations_total", receiver=to, step=step)
            for r in replicas
            for to, step in (("slack-oncall", "1"), ("slack-leads", "2"))
        )
        assert steps == 2
        assert await escalations(replicas[2], clock) == {"Storm": 2, "slack-prod": 2}


async def _parked(service: Running) -> escalation.Chain | None:
    found = await chain(service, "Storm")
    return found if found is not None and found.done == 2 else None


async def delivered(service: Running, receiver: str, name: str) -> bool:
    """Whether `receiver` was told of alert `name` and the store knows it (a click on the
    message is only taken once the store has it as the group's current message)."""
    records = await service.records(receiver=receiver)
    return any(r["state"] == "sent" and name in str(r["alerts"]) for r in records)


def resolved_in(slack: FakeSlack, channel: str, name: str) -> bool:
    return any("RESOLVED" in m.visible_text() for m in about(slack, channel, name))


async def escalated_to(service: Running, receivers: set[str]) -> bool:
    """Whether the records sent with reason `escalated` went to exactly `receivers`."""
    records = await service.records(reason="escalated")
    return {r["receiver"] for r in records} == receivers


async def escalations(service: Running, clock: FakeClock) -> dict[str, int]:
    """The escalations the insights of the last day count, per alert and per receiver."""
    found = (await insights(service.state.store, clock.now, 86400.0)).to_dict()
    out = {a["alertname"]: a["escalations"] for a in found["alerts"] if a["escalations"]}
    for r in found["receivers"]:
        if r["escalations"]:
            out[r["receiver"]] = r["escalations"]
    return out
