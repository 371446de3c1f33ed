"""Slack's Silence buttons against Debian's real Alertmanager (0.25): the silence exists with
the group's matchers, the clicking user and the chosen end; Unsilence expires it; a click
while Alertmanager is down is answered at once, explained in the thread and carried out
when it is back; three replicas on one Redis make one silence and one acknowledgement of
the same clicks.

In CI (CI set) a missing Alertmanager binary is a failure; elsewhere the tests skip.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.alertmanager_api.client import AlertmanagerClient
from router.config.schema import AlertmanagerAPI
from router.matchers import Matcher
from router.model import parse_time
from tests import helpers
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.slack_clicks import (
    ALICE,
    BOB,
    block_actions,
    button_labels,
    click,
    form_body,
    post_signed,
)
from tests.fakes.smtp import free_port
from tests.helpers import config_from
from tests.test_alertmanager_e2e import Alertmanager, alert, alertmanager_binary

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SECRET = "e2e-signing-secret-0123456789"
CHANNEL = "#prod-alerts"
TOKEN = "alertmanager-e2e-token"


class SilencingAlertmanager(Alertmanager):
    """Alertmanager announcing its own URL as externalURL: the router's default API URL."""

    def _spawn(self) -> Any:
        import subprocess

        argv = [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        with (self.workdir / "alertmanager.log").open("ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=log)

    async def silences(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(self.url + "/api/v2/silences") as r:
            assert r.status == 200
            found: list[dict[str, Any]] = await r.json()
            return found


def config_text(slack: FakeSlack, state: str, am_url: str) -> str:
    return f"""
state: {state}
alertmanager: {{url: '{am_url}'}}
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
route:
  receiver: slack-prod
"""


# Real Alertmanager and the retry backoff after it comes back take longer than a fake.
until = functools.partial(helpers.until, within=30.0)


def the_message(slack: FakeSlack) -> SlackMessage:
    [message] = slack.messages(CHANNEL)
    return message


@asynccontextmanager
async def alertmanager(
    tmp_path: Path, router_url: str, port: int
) -> AsyncIterator[SilencingAlertmanager]:
    am = SilencingAlertmanager(alertmanager_binary(), tmp_path / "am", router_url)
    # The port routes.yaml names for it, chosen before either was started.
    am.port, am.url = port, f"http://127.0.0.1:{port}"
    try:
        await am.start()
        yield am
    finally:
        am.stop()


def active(silences: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in silences if s["status"]["state"] == "active"]


async def fired(am: SilencingAlertmanager, slack: FakeSlack, service: Running) -> SlackMessage:
    await am.post_alerts([alert("CheckoutErrors", env="prod", severity="critical")])
    await until(lambda: slack.messages(CHANNEL))
    # A click is taken once the store has the message as its group's current one.
    await service.wait_for_records(lambda rs: any(r["state"] == "sent" for r in rs))
    return the_message(slack)


async def test_silence_creates_the_alertmanager_silence_and_unsilence_expires_it(
    slack: FakeSlack, state_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = config_from(config_text(slack, f"{{url: '{state_url}'}}", f"http://127.0.0.1:{port}"))
    async with running(config) as service, alertmanager(tmp_path, service.url, port) as am:
        message = await fired(am, slack, service)
        assert "Silence 4h" in button_labels(message)
        clicked = time.time()
        url = service.url + "/slack/interactions"
        channel_id = slack.channel_id(CHANNEL)
        assert await click(service.http, url, SECRET, message, channel_id, "silence_14400") == 200

        [silence] = await until(lambda: _active(am))
        matchers = {
            (m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in silence["matchers"]
        }
        # Alertmanager's group labels (group_by: alertname, env), not the router's own labels.
        assert matchers == {
            ("alertname", "CheckoutErrors", False, True),
            ("env", "prod", False, True),
        }
        assert silence["createdBy"] == "alice"
        ends = parse_time(silence["endsAt"])
        assert ends is not None
        assert abs(ends.timestamp() - (clicked + 4 * 3600)) < 60
        # The comment names the message the silence was made from (its permalink).
        assert f"/archives/{slack.channel_id(CHANNEL)}/p" in silence["comment"]

        # A retried click finds its silence by the group's matchers, as Alertmanager
        # filters them (and not by listing every silence it holds).
        client = AlertmanagerClient(AlertmanagerAPI(url=am.url), service.state.runtime.http)
        [marker] = re.findall(r"\[alert-router [0-9a-f]{16}\]", silence["comment"])
        ours = [Matcher("alertname", "=", "CheckoutErrors"), Matcher("env", "=", "prod")]
        assert await client.find(marker, ours) == silence["id"]
        other = [Matcher("alertname", "=", "CheckoutErrors"), Matcher("env", "=", 'd"ev')]
        assert await client.find(marker, other) is None
        edited = await until(
            lambda: "Silenced by" in the_message(slack).visible_text() and the_message(slack)
        )
        assert silence["id"] in edited.visible_text()
        assert button_labels(edited) == ["Acknowledge", "Unsilence"]
        state = await service.state.store.group_actions("slack-prod", _group_key(service, edited))
        assert state is not None and state.silence_id == silence["id"]

        assert await click(service.http, url, SECRET, edited, channel_id, "unsilence", BOB) == 200
        await until(lambda: _expired(am, silence["id"]))
        edited = await until(
            lambda: "Silence 1h" in button_labels(the_message(slack)) and the_message(slack)
        )
        assert "Silenced by" not in edited.visible_text()


def _group_key(service: Running, message: SlackMessage) -> str:
    import json

    from tests.fakes.slack_clicks import buttons

    [first, *_] = buttons(message).values()
    key: str = json.loads(first["value"])["g"]
    return key


async def _active(am: SilencingAlertmanager) -> list[dict[str, Any]]:
    return active(await am.silences())


async def _expired(am: SilencingAlertmanager, silence_id: str) -> bool:
    return any(
        s["id"] == silence_id and s["status"]["state"] == "expired" for s in await am.silences()
    )


async def test_a_click_while_alertmanager_is_down_is_answered_explained_and_done_later(
    slack: FakeSlack, state_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = config_from(config_text(slack, f"{{url: '{state_url}'}}", f"http://127.0.0.1:{port}"))
    async with running(config) as service, alertmanager(tmp_path, service.url, port) as am:
        message = await fired(am, slack, service)
        am.stop()
        url = service.url + "/slack/interactions"
        status = await click(
            service.http, url, SECRET, message, slack.channel_id(CHANNEL), "silence_3600"
        )
        assert status == 200
        reply = await until(
            lambda: [
                r for r in the_message(slack).replies if "Could not create the silence" in r.text
            ]
        )
        assert "trying again" in reply[0].text
        await am.start()
        [silence] = await until(lambda: _active(am), within=60)
        assert silence["createdBy"] == "alice"
        await until(lambda: "Silenced by" in the_message(slack).visible_text())
        # One silence however many tries it took.
        assert len(active(await am.silences())) == 1


async def test_three_replicas_make_one_silence_and_one_acknowledgement_of_repeated_clicks(
    slack: FakeSlack, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    state = f"{{url: '{redis_url}', key_prefix: '{prefix}'}}"
    port = free_port()
    text = config_text(slack, state, f"http://127.0.0.1:{port}")
    async with AsyncExitStack() as stack:
        services = [await stack.enter_async_context(running(config_from(text))) for _ in range(3)]
        am = await stack.enter_async_context(alertmanager(tmp_path, services[0].url, port))
        message = await fired(am, slack, services[0])
        channel_id = slack.channel_id(CHANNEL)
        now = str(int(time.time()))
        silence_click = form_body(
            block_actions(message, channel_id, "silence_3600", ALICE, action_ts="7.1")
        )
        double_click = form_body(
            block_actions(message, channel_id, "silence_86400", BOB, action_ts="7.2")
        )
        ack = form_body(block_actions(message, channel_id, "ack", ALICE, action_ts="7.3"))
        ack_again = form_body(block_actions(message, channel_id, "ack", BOB, action_ts="7.4"))
        posts = []
        for i, service in enumerate(services):
            url = service.url + "/slack/interactions"
            # The same click reaching every replica (Slack's retry), plus a double click.
            posts.append(post_signed(service.http, url, SECRET, silence_click, timestamp=now))
            posts.append(post_signed(service.http, url, SECRET, ack, timestamp=now))
            body = double_click if i == 1 else ack_again
            posts.append(post_signed(service.http, url, SECRET, body, timestamp=now))
        assert set(await asyncio.gather(*posts)) == {200}
        await until(
            lambda: (
                "Silenced by" in the_message(slack).visible_text()
                and "Acknowledged by" in the_message(slack).visible_text()
            )
        )
        store = services[0].state.store
        # Wait until no click is left to carry out, then count.
        await until(_settled(store))
        silences = active(await am.silences())
        assert len(silences) == 1
        group_key = _group_key(services[0], the_message(slack))
        state_now = await store.group_actions("slack-prod", group_key)
        assert state_now is not None
        assert state_now.silence_id == silences[0]["id"]
        assert state_now.acknowledged
        # Two changes: one acknowledgement, one silence reserved and one recorded.
        assert state_now.version == 3


def _settled(store: Any) -> Callable[[], Any]:
    async def check() -> bool:
        pending: int = await store.pending_actions()
        return pending == 0

    return check
