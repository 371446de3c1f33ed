"""Silences that end right, against Debian's real Alertmanager (0.25): it sends nothing when
a silenced alert resolves, so the router asks it. Fire -> Silence click -> resolve in
Alertmanager: the message, thread, email and record say resolved while silenced, and the
silence is expired. A restarted Alertmanager (which forgot its alerts) and one that is
down resolve nothing.

In CI (CI set) a missing Alertmanager binary is a failure; elsewhere the tests skip.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest

from router.interact import watch
from router.store.protocols import Store
from tests import helpers
from tests.conftest import Running, running
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.slack_clicks import click
from tests.fakes.smtp import FakeSMTPServer, free_port
from tests.helpers import config_from
from tests.test_alertmanager_e2e import alert
from tests.test_escalation import delivered
from tests.test_slack_interactions_e2e import (
    CHANNEL,
    SECRET,
    TOKEN,
    SilencingAlertmanager,
    _group_key,
    active,
    alertmanager,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

POLL = 5.0
# A resolve shows within two polls (two listings without the alert) plus delivery.
until = functools.partial(helpers.until, within=4 * POLL + 30)
ALERT = functools.partial(alert, "CheckoutErrors", env="prod", severity="critical")


def config_text(slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, port: int) -> str:
    return f"""
state: {{url: '{state_url}'}}
alertmanager: {{url: 'http://127.0.0.1:{port}', poll_interval: 5s}}
server:
  auth:
    alertmanager: {{bearer_token: {TOKEN}}}
slack:
  per_channel_interval: 0
  interactivity:
    signing_secret: {SECRET}
receivers:
  - name: slack-prod
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url}}}
  - name: email-sre
    email:
      to: [sre@example.com]
      from: alert-router@example.com
      smarthost: {smtp.smarthost}
      starttls: false
route:
  receiver: slack-prod
  routes:
    - matchers: ['env="prod"']
      receiver: slack-prod
      continue: true
    - matchers: ['env="prod"']
      receiver: email-sre
"""


def the_message(slack: FakeSlack) -> SlackMessage:
    [message] = slack.messages(CHANNEL)
    return message


def polls(service: Running, am: SilencingAlertmanager, outcome: str) -> float:
    """How many checks of silenced groups ended with `outcome` so far."""
    value = service.state.metrics.registry.get_sample_value(
        "alert_router_silence_polls_total",
        {"alertmanager": am.url.removeprefix("http://"), "outcome": outcome},
    )
    return value or 0.0


async def silenced(
    service: Running, am: SilencingAlertmanager, slack: FakeSlack, smtp: FakeSMTPServer
) -> str:
    """Fire, click Silence 1h, wait until the silence exists; its id."""
    await am.post_alerts([ALERT()])
    message = await until(lambda: slack.messages(CHANNEL) and the_message(slack))
    await until(lambda: smtp.messages)
    await until(lambda: delivered(service, "slack-prod", "CheckoutErrors"))
    url = service.url + "/slack/interactions"
    assert (
        await click(service.http, url, SECRET, message, slack.channel_id(CHANNEL), "silence_3600")
        == 200
    )
    [silence] = await until(lambda: _active(am))
    await until(lambda: "Silenced by" in the_message(slack).visible_text())
    return str(silence["id"])


async def _active(am: SilencingAlertmanager) -> list[dict[str, object]]:
    return active(await am.silences())


async def test_a_group_resolved_while_silenced_is_shown_resolved_and_its_silence_expired(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = config_from(config_text(slack, smtp, state_url, port))
    async with running(config) as service, alertmanager(tmp_path, service.url, port) as am:
        silence_id = await silenced(service, am, slack, smtp)
        await until(lambda: polls(service, am, "listed") >= 1)

        await am.post_alerts([ALERT(resolved=True)])
        resolved_at = time.monotonic()
        await until(
            lambda: (
                "RESOLVED" in the_message(slack).visible_text().upper()
                and "while silenced" in the_message(slack).visible_text()
                and the_message(slack)
            )
        )
        shown_after = time.monotonic() - resolved_at
        print(f"resolve while silenced shown after {shown_after:.1f}s (poll_interval 5s)")
        replies = await until(
            lambda: [r.text for r in the_message(slack).replies if "resolved" in r.text]
        )
        [reply] = replies
        assert reply.startswith(":white_check_mark: All resolved while silenced after 5m")
        mails = await until(lambda: len(smtp.messages) >= 2 and smtp.messages)
        # In the firing mail's thread (its subject kept), saying what happened.
        assert str(mails[-1].message["Subject"]).startswith("Re: ")
        assert "RESOLVED" in mails[-1].text
        assert "Resolved while silenced" in mails[-1].text
        # Both receivers' records say so, once each delivery is recorded.
        await service.wait_for_records(
            lambda rs: (
                {
                    (r["receiver"], r["state"])
                    for r in rs
                    if r["reason"] == "resolved_while_silenced"
                }
                == {("slack-prod", "sent"), ("email-sre", "sent")}
            )
        )
        # The silence went with the problem, so its next occurrence is told.
        silences = await am.silences()
        [ours] = [s for s in silences if s["id"] == silence_id]
        assert ours["status"]["state"] == "expired"
        store = service.state.store
        notes = [
            e.text
            for r in await service.records(receiver="slack-prod")
            for e in await store.timeline(r["id"])
        ]
        assert f"silence {silence_id} expired: the group resolved" in " ".join(notes)


async def test_a_restarted_alertmanager_that_forgot_its_alerts_resolves_nothing(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = config_from(config_text(slack, smtp, state_url, port))
    async with running(config) as service, alertmanager(tmp_path, service.url, port) as am:
        await silenced(service, am, slack, smtp)
        await until(lambda: polls(service, am, "listed") >= 1)
        am.stop()
        await am.start()
        # It lists nothing now; each of these listings would count as a miss if trusted.
        before = polls(service, am, "restarted")
        await until(lambda: polls(service, am, "restarted") >= before + 3)
        # Prometheus sends the alert again, as it does every evaluation.
        await am.post_alerts([ALERT()])
        await until(lambda: polls(service, am, "restarted") >= before + 4)
        text = the_message(slack).visible_text()
        assert "Silenced by" in text and "while silenced" not in text
        assert await service.records(reason="resolved_while_silenced") == []
        assert await _active(am)


async def test_an_alertmanager_that_is_down_changes_nothing(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = config_from(config_text(slack, smtp, state_url, port))
    async with running(config) as service, alertmanager(tmp_path, service.url, port) as am:
        await silenced(service, am, slack, smtp)
        await until(lambda: polls(service, am, "listed") >= 1)
        am.stop()
        await until(lambda: polls(service, am, "failed") >= 3)
        text = the_message(slack).visible_text()
        assert "Silenced by" in text and "while silenced" not in text
        assert await service.records(reason="resolved_while_silenced") == []
        assert len(smtp.messages) == 1


async def test_a_silence_that_ends_while_the_group_fires_is_said_once_in_the_thread(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, tmp_path: Path
) -> None:
    port = free_port()
    clock = FakeClock(time.time())
    config = config_from(config_text(slack, smtp, state_url, port))
    async with (
        running(config, clock=clock) as service,
        alertmanager(tmp_path, service.url, port) as am,
    ):
        # The fake time starts once Alertmanager runs, as it does in production.
        clock.now = time.time()
        await silenced(service, am, slack, smtp)
        clock.now += POLL
        await until(lambda: polls(service, am, "listed") >= 1)
        clock.now += 3601
        [said] = await until(
            lambda: [r.text for r in the_message(slack).replies if "silence ended" in r.text]
        )
        assert said.startswith(":bell: The silence ended at ") and said.endswith(
            "after 1h: 1 alert still fires."
        )
        await until(lambda: "Silenced by" not in the_message(slack).visible_text())
        # Neither silenced nor acknowledged now: no more checks, so it is said once.
        store = service.state.store
        key = watch.watch_key("slack-prod", _group_key(service, the_message(slack)))
        await until(lambda: _unwatched(store, key))
        replies = [r.text for r in the_message(slack).replies if "silence ended" in r.text]
        assert len(replies) == 1
        assert await service.records(reason="resolved_while_silenced") == []


async def _unwatched(store: Store, key: str) -> bool:
    return await store.get_timer(watch.KIND, key) is None
