"""The on-call page and the console's Acknowledge in a real browser (chromium): the forms
work under the console's CSP, and what they do shows on the next page."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser, expect

from tests import test_console_browser as console
from tests.conftest import Running, running
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from, until
from tests.test_console_pages import alert

# The browser tests' fixtures and helpers (chromium, screenshots).
browser = console.browser
sink = console.sink
artifacts = console.artifacts
as_user, shot, ADMIN = console.as_user, console.shot, console.ADMIN


@pytest.fixture
async def service(state_url: str, sink: WebhookSink) -> AsyncIterator[Running]:
    start = datetime.now(UTC).date().isoformat()
    config = config_from(
        f"""
state: {{url: "{state_url}"}}
server:
  external_url: https://alerts.example.com
  auth:
    api: {{basic_auth: {{username: viewer, password: view-pw}}}}
    admin: {{basic_auth: {{username: ops, password: admin-pw}}}}
oncall:
  - name: sre
    timezone: America/New_York
    rotation: daily
    handoff: "09:00"
    start: {start}
    members:
      - {{name: Alice, email: alice@example.com}}
      - {{name: Bob, email: bob@example.com}}
receivers:
  - name: default
    webhook: {{url: "{sink.url("").rstrip("/")}/default"}}
route: {{receiver: default}}
"""
    )
    async with running(config) as svc:
        yield svc


async def test_an_admin_covers_a_rotation_from_the_oncall_page(
    service: Running, browser: Browser
) -> None:
    page = await as_user(browser, ADMIN)
    await page.goto(f"{service.url}/ui/oncall")
    await expect(page.locator("#rotations")).to_contain_text("America/New_York")
    until_ = datetime.fromtimestamp(time.time() + 3 * 3600, UTC).strftime("%Y-%m-%dT%H:%M")
    await page.select_option("select[name=who]", "Bob")
    await page.fill("input[name=until]", until_)
    await shot(page, "oncall")
    await page.get_by_role("button", name="Add override").click()
    await expect(page.get_by_role("status")).to_contain_text("Override added.")
    await expect(page.locator("#rotations .who")).to_contain_text("Bob (override by ops)")
    await expect(page.locator("#overrides")).to_contain_text("Bob")
    await page.get_by_role("button", name="Remove").click()
    await expect(page.get_by_role("status")).to_contain_text("Override removed.")
    await expect(page.locator("#overrides")).to_have_count(0)


async def test_an_admin_acknowledges_a_group_from_its_notification_page(
    service: Running, browser: Browser
) -> None:
    await service.post("/webhook/alertmanager", alert({"alertname": "DiskFull"}, group="d"))

    async def delivered() -> str:
        records = await service.state.store.list_notifications(1)
        return records[0].id if records and records[0].state == "sent" else ""

    record_id = await until(delivered)
    page = await as_user(browser, ADMIN)
    await page.goto(f"{service.url}/ui/notifications/{record_id}")
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.get_by_role("status")).to_contain_text("Acknowledged")
    await expect(page.locator("#actions")).to_contain_text("Acknowledged by ops")
    await expect(page.get_by_role("button", name="Unacknowledge")).to_be_visible()
    await shot(page, "acknowledged")
