"""Escalation across a kill -9 of `python -m router serve` (real time, short steps): the
step told before the kill is not told again, the next one is told once, on time when the
process is back before it is due, at start when its time passed while it was down."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.smtp import free_port
from tests.helpers import until
from tests.test_escalation import LEADS, ONCALL, PROD, about, receivers_text, webhook
from tests.test_process import Server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FIRST, SECOND = 2.0, 8.0


def write_config(path: Path, slack: FakeSlack) -> None:
    receivers = receivers_text(slack)
    path.write_text(
        f"""
state: {{url: 'sqlite:///{path.parent}/state.db'}}
server: {{shutdown_grace: 1s}}
slack: {{per_channel_interval: 0}}
receivers:
{receivers}
route:
  receiver: slack-prod
  escalate:
    - {{after: {FIRST:g}s, to: slack-oncall}}
    - {{after: {SECOND:g}s, to: slack-leads}}
"""
    )


@pytest.fixture
async def server(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Server]:
    config = tmp_path / "routes.yaml"
    write_config(config, slack)
    found = Server(config, free_port())
    try:
        yield found
    finally:
        if found.proc is not None and found.proc.poll() is None:
            found.proc.kill()
            found.proc.wait()


async def fired_then_killed_after_the_first_step(server: Server, slack: FakeSlack) -> float:
    """Fire, wait for step 1, kill -9; when the group was first told (wall clock)."""
    await server.start()
    assert await server.post(webhook("Outage")) == 200
    await until(lambda: about(slack, PROD, "Outage"))
    told = time.time()
    await until(lambda: about(slack, ONCALL, "Outage"))
    # Between the steps: the first is recorded as sent and announced in the thread.
    await until(lambda: step_sent(server))
    [first] = about(slack, PROD, "Outage")
    await until(lambda: any("escalated" in r.text for r in slack.message(PROD, first.ts).replies))
    server.kill(signal.SIGKILL)
    await server.wait(10)
    return told


async def step_sent(server: Server) -> bool:
    return any(
        r["receiver"] == "slack-oncall" and r["state"] == "sent" for r in await server.records()
    )


def arrived(slack: FakeSlack, channel: str) -> list[SlackMessage]:
    return about(slack, channel, "Outage")


async def test_a_step_due_after_a_kill_9_is_told_once_on_time(
    server: Server, slack: FakeSlack
) -> None:
    told = await fired_then_killed_after_the_first_step(server, slack)
    await server.start()
    await until(lambda: arrived(slack, LEADS))
    # Not before it was due (the first message was posted a little before `told`).
    assert time.time() >= told + SECOND - 1.0
    assert len(arrived(slack, ONCALL)) == 1
    assert len(arrived(slack, LEADS)) == 1


async def test_a_step_whose_time_passed_while_down_is_told_at_start(
    server: Server, slack: FakeSlack
) -> None:
    told = await fired_then_killed_after_the_first_step(server, slack)
    # Down past the second step's time.
    await asyncio.sleep(max(0.0, told + SECOND + 1.0 - time.time()))
    assert arrived(slack, LEADS) == []
    await server.start()
    await until(lambda: arrived(slack, LEADS))
    assert len(arrived(slack, ONCALL)) == 1
    assert len(arrived(slack, LEADS)) == 1
