"""What people read, end to end: the real sample webhooks posted over HTTP to the running
service, and every channel's output checked (Slack bot, email, webhook, log).

Events built by hand skip normalization; these go through it, so bookkeeping that
normalization adds (and the route path, the group key) would show up here if it leaked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from router.config.schema import Config
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.smtp import FakeSMTPServer, ReceivedMail
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from, payload

CHANNEL = "#prod-alerts"
RECEIVERS = ("slack-oncall", "email-sre", "hook", "stdout")
# The route each receiver is reached by, as every channel must name it.
PATHS = {
    "slack-oncall": 'routes[0] severity=~"warning|critical"',
    "email-sre": 'routes[1] severity=~"warning|critical"',
    "hook": 'routes[2] source=~"alertmanager|argocd"',
    "stdout": 'routes[3] source=~"alertmanager|argocd"',
}
AM_GROUP_KEY = '{}:{alertname="CPUHigh"}'
# The sample resolve: the first alert started 20:17:50, the last one ended 21:18:50.
RESOLVED_AFTER = "1h 1m"


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as server:
        yield server


def every_channel(slack: FakeSlack, smtp: FakeSMTPServer, sink: WebhookSink, state: str) -> Config:
    """Every event reaches all four receivers, each through its own child route."""
    return config_from(
        f"""
state: {{url: '{state}'}}
slack: {{per_channel_interval: 0.1}}
environment:
  from_labels: [env, environment, namespace]
  aliases: {{production: prod}}
  default: unknown
receivers:
  - name: slack-oncall
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url}}}
  - name: email-sre
    email:
      to: [sre@example.com]
      from: alert-router@example.com
      smarthost: {smtp.smarthost}
      starttls: false
  - name: hook
    webhook: {{url: "{sink.url("/hook")}"}}
  - name: stdout
    log: {{}}
route:
  receiver: stdout
  routes:
    - {{matchers: ['severity=~"warning|critical"'], receiver: slack-oncall, continue: true}}
    - {{matchers: ['severity=~"warning|critical"'], receiver: email-sre, continue: true}}
    - {{matchers: ['source=~"alertmanager|argocd"'], receiver: hook, continue: true}}
    - {{matchers: ['source=~"alertmanager|argocd"'], receiver: stdout}}
"""
    )


async def delivered(svc: Running, count: int) -> None:
    """Wait until `count` notifications are recorded as sent (the record follows the send)."""
    async with asyncio.timeout(30):
        while True:
            records = await svc.records()
            if sum(r["state"] == "sent" for r in records) >= count:
                return
            failed = [r for r in records if r["state"] in ("failed", "dead")]
            assert not failed, failed
            await asyncio.sleep(0.05)


async def post(svc: Running, path: str, body: dict[str, Any], events: int) -> None:
    status, answer = await svc.post(path, body)
    assert (status, answer) == (200, {"accepted": events})


def slack_texts(message: SlackMessage) -> list[str]:
    """The parent as it reads now, then each thread reply."""
    return [message.visible_text(), *(reply.visible_text() for reply in message.replies)]


def context_line(message: SlackMessage) -> list[str]:
    """The context elements under the fields (the first context block of the attachment)."""
    context = next(b for b in message.attachments[0]["blocks"] if b["type"] == "context")
    return [element["text"] for element in context["elements"]]


def log_records(out: str) -> list[dict[str, Any]]:
    lines = [line for line in out.splitlines() if line.startswith('{"type":"notification"')]
    return [json.loads(line) for line in lines]


def mail_text(mail: ReceivedMail) -> str:
    return "\n".join([str(mail.message["Subject"]), mail.text, mail.html])


async def test_real_webhooks_read_well_in_every_channel(
    slack: FakeSlack,
    smtp: FakeSMTPServer,
    sink: WebhookSink,
    state_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running(every_channel(slack, smtp, sink, state_url)) as svc:
        await post(svc, "/webhook/alertmanager", payload("alertmanager_firing.json"), 2)
        await delivered(svc, 4)
        # Two events: the failure, and the end of any sync-status-unknown incident (its sync
        # status is known), which nobody was told about and so nobody hears of.
        await post(svc, "/webhook/argocd", payload("argocd_sync_failed.json"), 2)
        await delivered(svc, 8)
        await post(svc, "/webhook/alertmanager", payload("alertmanager_resolved.json"), 2)
        await delivered(svc, 12)
    logs = log_records(capsys.readouterr().out)

    cpu, argo = slack.messages(CHANNEL)
    mails = smtp.messages
    hooks = [r.json for r in sink.requests]
    everything = [
        *slack_texts(cpu),
        *slack_texts(argo),
        *(json.dumps(c.args) for c in slack.calls),
        *(mail_text(m) for m in mails),
        *(r.body.decode() for r in sink.requests),
        *(json.dumps(record) for record in logs),
    ]

    # Nothing of our own bookkeeping reaches a reader, nor the route's internal spelling.
    for text in everything:
        assert "original:" not in text
        assert "truncatedAlerts" not in text
        assert "route route" not in text and "route > " not in text

    # Slack: one message per incident, the route readable, no group key anywhere.
    for message in (cpu, argo):
        context = context_line(message)
        assert f"Route: {PATHS['slack-oncall']}" in context
        assert "Receiver: slack-oncall" in context
        for text in slack_texts(message):
            assert AM_GROUP_KEY not in text and "am/devops_team" not in text
            assert "argocd/backend" not in text and "Group:" not in text
    assert "[RESOLVED] CPUHigh" in cpu.visible_text()
    assert "cpu usage is high than 20% for 5 minutes" in cpu.visible_text()
    assert "`instance=10.30.1.161`" in cpu.visible_text()
    assert "`instance=10.30.1.162`" in cpu.visible_text()
    assert f"Resolved after {RESOLVED_AFTER}." in cpu.visible_text()
    [cpu_reply] = cpu.replies
    assert cpu_reply.text.startswith(f":white_check_mark: All resolved after {RESOLVED_AFTER}")
    argo_text = argo.visible_text()
    assert "[FIRING:1] on-sync-failed (backend prod critical)" in argo_text
    assert "Sync of backend failed" in argo_text
    assert "one or more objects failed to apply" in argo_text
    assert "*revision*\n9f2c1e7" in argo_text
    assert "<https://argocd.example.com/applications/backend|Argo CD>" in argo_text

    # Email: the same facts, the route in the footer, no group key in the body.
    cpu_firing, argo_mail, cpu_resolved = mails
    for mail in mails:
        body = mail_text(mail)
        assert f"Route: {PATHS['email-sre']}" in mail.text
        assert f"Route: {PATHS['email-sre']}".replace('"', "&#34;") in mail.html
        assert AM_GROUP_KEY not in body and "am/devops_team" not in body
        assert "argocd/backend" not in body
    assert cpu_firing.message["Subject"] == "[FIRING:2] CPUHigh (unknown warning)"
    assert "cpu usage is high than 20% for 5 minutes" in cpu_firing.text
    assert "instance = 10.30.1.161" in cpu_firing.text
    assert "Sync of backend failed" in argo_mail.text and "9f2c1e7" in argo_mail.text
    assert cpu_resolved.message["Subject"] == "Re: [FIRING:2] CPUHigh (unknown warning)"
    assert cpu_resolved.text.startswith("[RESOLVED] CPUHigh (unknown warning)")
    assert f"Resolved after {RESOLVED_AFTER}." in cpu_resolved.text

    # Webhook and log: the same JSON; the group key only as groupKey, the path readable.
    for bodies, receiver in ((hooks, "hook"), (logs, "stdout")):
        assert [b["receiver"] for b in bodies] == [receiver] * 3
        assert {b["routePath"] for b in bodies} == {PATHS[receiver]}
        cpu_first, argo_body, cpu_last = bodies
        assert cpu_first["groupKey"] == f"am/devops_team/{AM_GROUP_KEY}"
        assert argo_body["groupKey"] == "argocd/backend/on-sync-failed"
        assert cpu_first["details"] == {} and cpu_last["details"] == {}
        assert cpu_first["alerts"][0]["labels"]["instance"] == "10.30.1.161"
        assert cpu_first["alerts"][0]["description"] == "cpu usage is high than 20% for 5 minutes"
        assert argo_body["alerts"][0]["summary"] == "Sync of backend failed"
        assert argo_body["details"]["revision"] == "9f2c1e7"
        assert cpu_last["status"] == "resolved"
        assert f"Resolved after {RESOLVED_AFTER}." in cpu_last["notes"]
        titles = [link["title"] for link in cpu_first["alerts"][0]["links"]]
        assert titles == ["Source", "Silence"]
        silence = cpu_first["alerts"][0]["links"][1]["url"]
        # The silence names the labels Alertmanager knows, not ours.
        assert "source%3D" not in silence and "env%3D" not in silence
        assert "severity%3D%22warning%22" in silence
