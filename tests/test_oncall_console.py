"""The console's on-call page and its overrides, and acknowledging a group from the console
(the Slack message shows it, the timeline records who), over HTTP with real forms."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from router.config.schema import Config
from router.model import NotificationRecord
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_clicks import button_labels
from tests.fakes.smtp import FakeSMTPServer
from tests.helpers import config_from, until
from tests.test_console_access import post_form, token_of
from tests.test_console_pages import page, raw
from tests.test_oncall import webhook

VIEWER = {"Authorization": "Basic " + base64.b64encode(b"viewer:view-pw").decode()}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin-pw").decode()}
CHANNEL = "#prod-alerts"


def config(slack: FakeSlack, smtp: FakeSMTPServer, state_url: str) -> Config:
    start = datetime.now(UTC).date().isoformat()
    return config_from(
        f"""
state: {{url: "{state_url}"}}
server:
  external_url: https://alerts.example.com
  auth:
    api: {{basic_auth: {{username: viewer, password: view-pw}}}}
    admin: {{basic_auth: {{username: ops, password: admin-pw}}}}
slack:
  per_channel_interval: 0
  interactivity: {{signing_secret: 8f742231b10e8888abcd99yyyzzz85a5}}
oncall:
  - name: sre
    timezone: Europe/Berlin
    rotation: weekly
    handoff: "mon 09:00"
    start: {start}
    members:
      - {{name: Alice, slack: U01ALICE, email: alice@example.com}}
      - {{name: Bob, slack: U02BOB, email: bob@example.com}}
receivers:
  - name: page
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url}}}
  - name: mail
    email: {{to: ["oncall:sre"], from: router@example.com, smarthost: "{smtp.smarthost}",
             starttls: false}}
route:
  receiver: page
  routes:
    - {{matchers: ['team="mail"'], receiver: mail}}
"""
    )


async def sent(svc: Running) -> NotificationRecord:
    """The one record, once delivered (read from the store: the API asks for credentials)."""

    async def delivered() -> NotificationRecord | None:
        records = await svc.state.store.list_notifications(10)
        return records[0] if records and records[0].state == "sent" else None

    found: NotificationRecord = await until(delivered)
    return found


def here(svc: Running) -> dict[str, str]:
    return {**ADMIN, "Origin": svc.url}


async def test_the_oncall_page_shows_who_and_lets_admins_cover_a_rotation(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str
) -> None:
    async with running(config(slack, smtp, state_url)) as svc:
        status, text = await page(svc, "/ui/oncall", VIEWER)
        assert status == 200
        # A week-long shift from the first Monday on or after today; Bob before it.
        assert "sre weekly, Europe/Berlin" in text
        assert "Add an override" not in text and "No override now or ahead" in text

        status, markup = await raw(svc, "/ui/oncall", ADMIN)
        assert 'id="add-override"' in markup
        token = token_of(markup)
        until_ = datetime.fromtimestamp(time.time() + 7200, UTC).strftime("%Y-%m-%dT%H:%M")
        form = {"csrf": token, "rotation": "sre", "who": "Alice", "from": "", "until": until_}
        status, location, _ = await post_form(svc, "/ui/oncall/overrides", form, here(svc))
        assert (status, location) == (303, "/ui/oncall?done=added")
        _, text = await page(svc, "/ui/oncall?done=added", VIEWER)
        assert "Override added." in text
        assert "Alice (override by ops)" in text
        [override] = await svc.state.store.list_overrides(time.time())
        assert (override.who, override.created_by) == ("Alice", "ops")

        # Who the page names is who the next mail goes to.
        status, _ = await svc.post(
            "/webhook/alertmanager", webhook("g-mail", {"alertname": "X", "team": "mail"})
        )
        assert status == 200
        [mail] = await smtp.wait_for_messages(1)
        assert mail.rcpt_tos == ("alice@example.com",)

        bad = {**form, "who": "Mallory"}
        status, _, text = await post_form(svc, "/ui/oncall/overrides", bad, here(svc))
        assert status == 400 and "who must be a member of sre" in text
        forged = {**form, "csrf": "1.forged"}
        status, _, _ = await post_form(svc, "/ui/oncall/overrides", forged, here(svc))
        assert status == 403
        elsewhere = {**ADMIN, "Origin": "https://evil.example"}
        status, _, _ = await post_form(svc, "/ui/oncall/overrides", form, elsewhere)
        assert status == 403
        status, _, _ = await post_form(svc, "/ui/oncall/overrides", form, VIEWER)
        assert status == 403
        assert len(await svc.state.store.list_overrides(time.time())) == 1

        path = f"/ui/oncall/overrides/{override.id}/remove"
        status, location, _ = await post_form(svc, path, {"csrf": token}, here(svc))
        assert (status, location) == (303, "/ui/oncall?done=removed")
        assert await svc.state.store.list_overrides(time.time()) == []


async def test_acknowledge_from_the_console_edits_the_slack_message_and_records_who(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str
) -> None:
    group = "disk"
    async with running(config(slack, smtp, state_url)) as svc:
        status, _ = await svc.post("/webhook/alertmanager", webhook(group, {"alertname": "DF"}))
        assert status == 200
        await until(lambda: slack.messages(CHANNEL))
        record = await sent(svc)
        key = record.group_key
        group_page = f"/ui/groups/{quote(key, safe='')}"

        _, text = await page(svc, group_page, VIEWER)
        assert "Acknowledge" not in text
        _, markup = await raw(svc, group_page, ADMIN)
        form = {"csrf": token_of(markup), "receiver": "page", "group_key": key, "ack": "1"}
        status, location, _ = await post_form(svc, "/ui/groups/acknowledge", form, here(svc))
        # aiohttp writes the Location with `:` and `=` unescaped: the same path.
        assert (status, unquote(location)) == (303, unquote(f"{group_page}?ack=acked"))

        acked = await svc.state.store.group_actions("page", key)
        assert acked is not None and (acked.acked_by, acked.acked_by_name) == ("console:ops", "ops")
        message = await until(
            lambda: next(
                (m for m in slack.messages(CHANNEL) if "Acknowledged by ops" in m.visible_text()),
                None,
            )
        )
        assert "Unacknowledge" in button_labels(message)
        _, text = await page(svc, f"{group_page}?ack=acked", ADMIN)
        assert "Acknowledged: repeat reminders are held back" in text
        assert "Acknowledged by ops" in text and "Unacknowledge" in text
        _, text = await page(svc, f"/ui/notifications/{record.id}", ADMIN)
        assert "acknowledged by ops from the console" in text

        undo = {"csrf": form["csrf"], "ack": "0"}
        path = f"/ui/notifications/{record.id}/acknowledge"
        status, location, _ = await post_form(svc, path, undo, here(svc))
        assert (status, location) == (303, f"/ui/notifications/{record.id}?ack=unacked")
        await until(lambda: "Acknowledged by" not in slack.messages(CHANNEL)[0].visible_text())
        status, _, _ = await post_form(
            svc, "/ui/groups/acknowledge", {**form, "receiver": "mail"}, here(svc)
        )
        assert status == 404
        status, _, _ = await post_form(svc, "/ui/notifications/nope/acknowledge", undo, here(svc))
        assert status == 404


async def test_the_mail_of_a_firing_group_links_to_where_admins_acknowledge_it(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str
) -> None:
    async with running(config(slack, smtp, state_url)) as svc:
        await svc.post("/webhook/alertmanager", webhook("g", {"alertname": "X", "team": "mail"}))
        [mail] = await smtp.wait_for_messages(1)
        record = await sent(svc)
        link = f"https://alerts.example.com/ui/notifications/{record.id}"
        assert f"Acknowledge it (console admins): {link}" in mail.text
        assert f'<a href="{link}"' in mail.html and "Acknowledge it in alert-router" in mail.html
        _, markup = await raw(svc, f"/ui/notifications/{record.id}", ADMIN)
        assert 'class="ack-button">Acknowledge<' in markup
