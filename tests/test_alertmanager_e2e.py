"""The real Prometheus Alertmanager in front of alert-router, end to end.

Each test starts `prometheus-alertmanager` (Debian's package) on free loopback ports with
`group_wait`/`group_interval` of 1s, its webhook receiver pointed at alert-router (running
in-process) with bearer credentials, and injects alerts through Alertmanager's API v2.
Slack is the fake Slack server and email is aiosmtpd.

In CI (CI set) a missing Alertmanager binary is a failure; elsewhere the tests skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.channels.slack.blocks import COLOR_RESOLVED
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.smtp import FakeSMTPServer, ReceivedMail, free_port
from tests.helpers import config_from

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TOKEN = "alertmanager-e2e-token"
WAIT = 30.0


def alertmanager_binary() -> str:
    """Path of the Alertmanager binary; fails in CI and skips elsewhere when it is missing."""
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        message = (
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class Alertmanager:
    """One Alertmanager process, not clustered, sending every group to alert-router."""

    def __init__(self, binary: str, workdir: Path, router_url: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(
            f"""
route:
  receiver: alert-router
  group_by: [alertname, env]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 24h
receivers:
  - name: alert-router
    webhook_configs:
      - url: {router_url}/webhook/alertmanager
        send_resolved: true
        max_alerts: 50
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # An empty cluster address disables gossip: each instance stands alone.
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        with (self.workdir / "alertmanager.log").open("ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=log)

    async def start(self) -> None:
        self.proc = self._spawn()
        async with asyncio.timeout(20), aiohttp.ClientSession() as http:
            while True:
                assert self.proc.poll() is None, self.log()
                try:
                    async with http.get(self.url + "/-/ready") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return (self.workdir / "alertmanager.log").read_text(errors="replace")

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "/api/v2/alerts", json=alerts) as resp,
        ):
            assert resp.status == 200, await resp.text()


def alert(name: str, *, env: str, severity: str, resolved: bool = False) -> dict[str, Any]:
    """An alert for POST /api/v2/alerts; resolved ones end a minute ago."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "labels": {"alertname": name, "env": env, "severity": severity, "namespace": "shop"},
        "annotations": {"summary": f"{name} in {env}"},
        "startsAt": (now - timedelta(minutes=5)).isoformat(),
        "generatorURL": f"http://prometheus.example/graph?g0.expr={name}",
    }
    body["endsAt"] = (
        (now - timedelta(minutes=1)).isoformat()
        if resolved
        else (now + timedelta(hours=1)).isoformat()
    )
    return body


@asynccontextmanager
async def router(slack: FakeSlack, smtp: FakeSMTPServer, state_url: str) -> AsyncIterator[Running]:
    """alert-router with the routes of the README: prod critical to Slack and email."""
    config = config_from(
        f"""
state: {{url: '{state_url}'}}
server:
  auth:
    alertmanager: {{bearer_token: {TOKEN}}}
slack: {{per_channel_interval: 0.1, digest_threshold: 5}}
receivers:
  - name: slack-prod
    slack:
      token: {slack.token}
      channel: "#prod-alerts"
      api_url: {slack.api_url}
  - name: email-sre
    email:
      to: [sre@example.com]
      from: alert-router@example.com
      smarthost: {smtp.smarthost}
      starttls: false
  - name: stdout
    log: {{}}
route:
  receiver: stdout
  routes:
    - matchers: ['env="prod"', 'severity="critical"']
      receiver: slack-prod
      continue: true
    - matchers: ['env="prod"', 'severity=~"critical|warning"']
      receiver: email-sre
"""
    )
    async with running(config) as service:
        yield service


@asynccontextmanager
async def alertmanagers(
    count: int, tmp_path: Path, router_url: str
) -> AsyncIterator[list[Alertmanager]]:
    binary = alertmanager_binary()
    started = [Alertmanager(binary, tmp_path / f"am{i}", router_url) for i in range(count)]
    try:
        for instance in started:
            await instance.start()
        yield started
    finally:
        for instance in started:
            instance.stop()


async def settled(service: Running, events: int, within: float = WAIT) -> None:
    """Wait until the router has accepted `events` events and finished every record."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        received = await events_received(service)
        records = await service.records()
        if received >= events and all(r["state"] != "pending" for r in records):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out: {received} of {events} events, {records}")
        await asyncio.sleep(0.1)


async def wait_until(predicate: Callable[[], bool], what: str, within: float = WAIT) -> None:
    """Poll `predicate` (the fakes record from other tasks and threads) until it holds."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def top_level_posts(slack: FakeSlack) -> int:
    """chat.postMessage calls that started a message (thread replies not counted)."""
    return len([c for c in slack.calls_to("chat.postMessage") if c.thread_ts is None])


def subject(mail: ReceivedMail) -> str:
    return str(mail.message["Subject"])


async def events_received(service: Running) -> float:
    async with service.http.get(service.url + "/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith('alert_router_events_received_total{source="alertmanager"}'):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_alerts_injected_into_alertmanager_reach_slack_and_email_as_routed(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, tmp_path: Path
) -> None:
    async with (
        router(slack, smtp, state_url) as service,
        alertmanagers(1, tmp_path, service.url) as [am],
    ):
        await am.post_alerts(
            [
                alert("CheckoutErrors", env="prod", severity="critical"),
                alert("DiskFilling", env="prod", severity="warning"),
                alert("DevOnly", env="dev", severity="critical"),
            ]
        )
        await wait_until(lambda: len(slack.messages("#prod-alerts")) >= 1, "the Slack message")
        await wait_until(lambda: len(smtp.messages) >= 2, "two mails")
        # Every alert reached the router and everything it recorded is finished: a dev
        # alert routed to Slack or email would be among what was sent.
        await settled(service, events=3)

        [message] = slack.messages("#prod-alerts")
        assert "CheckoutErrors" in message.visible_text()
        assert "DevOnly" not in message.visible_text()
        subjects = sorted(subject(m) for m in smtp.messages)
        assert len(subjects) == 2
        assert "CheckoutErrors" in subjects[0] and "DiskFilling" in subjects[1]
        assert all("DevOnly" not in s for s in subjects)
        [first_mail] = [m for m in smtp.messages if "CheckoutErrors" in subject(m)]

        await am.post_alerts(
            [alert("CheckoutErrors", env="prod", severity="critical", resolved=True)]
        )

        def resolved(msg: SlackMessage) -> bool:
            return msg.edited and msg.colors[-1:] == [COLOR_RESOLVED]

        await wait_until(lambda: resolved(slack.messages("#prod-alerts")[0]), "the Slack edit")
        await wait_until(lambda: len(smtp.messages) >= 3, "the resolved mail")

    [message] = slack.messages("#prod-alerts")  # edited in place, not posted again
    assert top_level_posts(slack) == 1
    resolved_mail = smtp.messages[2]
    assert "CheckoutErrors" in subject(resolved_mail)
    assert resolved_mail.message["In-Reply-To"] == first_mail.message["Message-ID"]
    assert first_mail.message["Message-ID"] in str(resolved_mail.message["References"])


async def test_ha_pair_sends_every_group_twice_but_slack_gets_one_message_per_group(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, tmp_path: Path
) -> None:
    firing = [
        alert("CheckoutErrors", env="prod", severity="critical"),
        alert("PaymentsDown", env="prod", severity="critical"),
    ]
    async with (
        router(slack, smtp, state_url) as service,
        alertmanagers(2, tmp_path, service.url) as pair,
    ):
        for am in pair:
            await am.post_alerts(firing)
        # Both instances flushed both groups: 2 alerts x 2 Alertmanagers reached the router.
        for _ in range(int(WAIT * 10)):
            if await events_received(service) >= 4:
                break
            await asyncio.sleep(0.1)
        assert await events_received(service) >= 4
        await wait_until(lambda: len(slack.messages("#prod-alerts")) >= 2, "two Slack messages")
        # Both senders' webhooks are recorded and finished: the twins were not told twice.
        await settled(service, events=4)

        texts = sorted(m.visible_text() for m in slack.messages("#prod-alerts"))
        assert len(texts) == 2
        assert "CheckoutErrors" in texts[0] and "PaymentsDown" in texts[1]
        assert top_level_posts(slack) == 2

        resolved = [
            alert(a["labels"]["alertname"], env="prod", severity="critical", resolved=True)
            for a in firing
        ]
        for am in pair:
            await am.post_alerts(resolved)
        await wait_until(
            lambda: all(m.colors[-1:] == [COLOR_RESOLVED] for m in slack.messages("#prod-alerts")),
            "both messages resolved",
        )
        await settled(service, events=8)

    assert len(slack.messages("#prod-alerts")) == 2
    assert top_level_posts(slack) == 2
    # One resolve per group, not one per sender: each message edited once.
    assert [m.edits for m in slack.messages("#prod-alerts")] == [1, 1]
    assert len(slack.calls_to("chat.update")) == 2
