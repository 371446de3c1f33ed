"""The console in a real browser (Debian's chromium driven by Playwright) against the
running service fed by real webhooks. Screenshots of each page are kept as artifacts."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

from router.config.schema import Config
from tests.conftest import Running, running
from tests.fakes.smtp import FakeSMTPServer
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from
from tests.test_console_pages import alert

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "console"

if shutil.which(CHROMIUM) is None and os.environ.get("CI") != "true":
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

CONFIG = """
state: {{url: "{state_url}", dead_after: 1s}}
server:
  external_url: "{url}"
  auth:
    api: {{basic_auth: {{username: viewer, password: view-pw}}}}
    admin: {{basic_auth: {{username: ops, password: admin-pw}}}}
email: {{pacing: {{interval: 3s, digest_threshold: 2}}}}
receivers:
  - name: default
    webhook: {{url: "{sink}/default"}}
  - name: oncall
    webhook: {{url: "{sink}/oncall"}}
  - name: mail
    email: {{to: [sre@example.com], from: router@example.com, smarthost: "{smarthost}",
             starttls: false}}
route:
  receiver: default
  routes:
    - matchers: ['severity="critical"']
      receiver: oncall
    - matchers: ['team="mail"']
      receiver: mail
inhibit_rules:
  - name: node-down-mutes-pods
    source_matchers: ['alertname="NodeDown"']
    target_matchers: ['alertname="PodSlow"']
    equal: [node]
"""

VIEWER = {"username": "viewer", "password": "view-pw"}
ADMIN = {"username": "ops", "password": "admin-pw"}


@pytest.fixture(scope="module", autouse=True)
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as fake:
        yield fake


def browser_config(state_url: str, sink: WebhookSink, smtp: FakeSMTPServer, url: str) -> Config:
    base = sink.url("").rstrip("/")
    return config_from(
        CONFIG.format(state_url=state_url, sink=base, smarthost=smtp.smarthost, url=url)
    )


@pytest.fixture
async def service(
    state_url: str, sink: WebhookSink, smtp: FakeSMTPServer
) -> AsyncIterator[Running]:
    async with running(browser_config(state_url, sink, smtp, "https://alerts.example.com")) as svc:
        # The records API is guarded too: the test reads it as the viewer.
        reader_auth = {"Authorization": "Basic " + base64.b64encode(b"viewer:view-pw").decode()}
        async with aiohttp.ClientSession(headers=reader_auth) as reader:
            yield Running(svc.url, svc.app, reader)


async def as_user(browser: Browser, credentials: dict[str, str] | None) -> Page:
    context = await browser.new_context(
        http_credentials=credentials,  # type: ignore[arg-type]
        viewport={"width": 1280, "height": 900},
    )
    return await context.new_page()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def settled(svc: Running, count: int) -> list[dict[str, Any]]:
    return await svc.wait_for_records(
        lambda rs: len(rs) >= count and all(r["state"] != "pending" for r in rs)
    )


async def test_the_list_shows_webhooks_filters_narrow_it_and_a_click_opens_the_timeline(
    service: Running, browser: Browser
) -> None:
    await service.post(
        "/webhook/alertmanager",
        alert({"alertname": "DiskFull", "env": "prod", "severity": "critical"}, group="d"),
    )
    await service.post(
        "/webhook/alertmanager",
        alert({"alertname": "SlowQuery", "env": "staging", "severity": "warning"}, group="s"),
    )
    await settled(service, 2)
    page = await as_user(browser, VIEWER)
    await page.goto(service.url + "/")
    await expect(page.locator("#latest")).to_contain_text("DiskFull")
    await shot(page, "overview")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "overview-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})

    await page.get_by_role("link", name="Notifications", exact=True).click()
    rows = page.locator("#records tbody tr")
    await expect(rows).to_have_count(2)
    await shot(page, "notifications")
    await page.locator("#filters select[name=receiver]").select_option("oncall")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("DiskFull")
    await page.locator("#filters select[name=receiver]").select_option("")
    await page.locator("#filters input[name=q]").fill("slowq")
    await page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("SlowQuery")

    await rows.first.get_by_role("link", name="SlowQuery").click()
    await expect(page.locator("h1")).to_contain_text("SlowQuery to default")
    await expect(page.locator("#timeline")).to_contain_text("received")
    await expect(page.locator("#timeline")).to_contain_text("sent")
    await shot(page, "notification")
    await page.locator("dd.key a.group").click()
    await expect(page.locator("h1")).to_contain_text("Group")
    await expect(page.locator("section.receiver")).to_contain_text("default")
    await shot(page, "group")


async def test_an_inhibited_alerts_page_names_the_rule_and_the_source_alert(
    service: Running, browser: Browser
) -> None:
    await service.post(
        "/webhook/alertmanager",
        alert({"alertname": "NodeDown", "node": "n1", "severity": "critical"}, group="n"),
    )
    await settled(service, 1)
    await service.post(
        "/webhook/alertmanager", alert({"alertname": "PodSlow", "node": "n1"}, group="p")
    )
    records = await settled(service, 2)
    inhibited = next(r for r in records if r["reason"] == "inhibited")
    page = await as_user(browser, VIEWER)
    await page.goto(f"{service.url}/ui/notifications/{inhibited['id']}")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("inhibited")
    await expect(timeline).to_contain_text("node-down-mutes-pods")
    await expect(timeline).to_contain_text("NodeDown")
    await shot(page, "notification-inhibited")


async def test_the_route_tester_answers_from_its_form(service: Running, browser: Browser) -> None:
    page = await as_user(browser, VIEWER)
    await page.goto(service.url + "/ui/routes")
    await expect(page.locator("#outline")).to_contain_text("receiver: oncall")
    await page.get_by_label("labels").fill("alertname=DiskFull env=prod severity=critical")
    await page.get_by_role("button", name="Test route").click()
    await expect(page.locator("#receivers")).to_contain_text("oncall")
    await expect(page.locator("#not-inhibited")).to_be_visible()
    await expect(page.locator("#answer")).to_contain_text("[FIRING:1] DiskFull (prod critical)")
    await page.get_by_label("labels").fill("alertname=Backup team=mail")
    await page.get_by_role("button", name="Test route").click()
    await expect(page.locator("#answer code.subject")).to_contain_text("[FIRING:1] Backup")
    await shot(page, "routes")


async def test_a_retry_button_redelivers_a_dead_notification(
    service: Running, browser: Browser, sink: WebhookSink
) -> None:
    # Down until the notification is given up (state.dead_after 1s), up again after.
    sink.default_status = 503
    await service.post("/webhook/alertmanager", alert({"alertname": "Flaky"}, group="f"))
    [record] = await service.wait_for_records(lambda rs: bool(rs) and rs[0]["state"] == "dead")
    page = await as_user(browser, ADMIN)
    await page.goto(f"{service.url}/ui/notifications/{record['id']}")
    await expect(page.locator("#state")).to_contain_text("dead")
    await shot(page, "notification-dead")
    sink.default_status = 200
    delivered = len(sink.requests)
    await page.get_by_role("button", name="Retry now").click()
    await expect(page.get_by_role("status")).to_contain_text("Retry requested")
    await service.wait_for_records(lambda rs: rs[0]["state"] == "sent")
    assert len(sink.requests) > delivered
    await page.reload()
    await expect(page.locator("#state")).to_contain_text("sent")


async def test_a_digest_page_lists_every_alert_it_stands_for(
    service: Running, browser: Browser, smtp: FakeSMTPServer
) -> None:
    await service.post(
        "/webhook/alertmanager", alert({"alertname": "Mail0", "team": "mail"}, group="m0")
    )
    async with asyncio.timeout(10):
        await smtp.wait_for_messages(1)
    for i in range(1, 4):
        await service.post(
            "/webhook/alertmanager",
            alert({"alertname": f"Mail{i}", "team": "mail"}, group=f"m{i}"),
        )
    records = await service.wait_for_records(
        lambda rs: len(rs) == 4 and all(r["state"] == "sent" for r in rs)
    )
    digests = {r["delivered_in"] for r in records if r["delivered_in"]}
    [digest_id] = [d for d in digests if d not in {r["id"] for r in records}]
    page = await as_user(browser, VIEWER)
    await page.goto(f"{service.url}/ui/digests/{digest_id}")
    table = page.locator("#digest-alerts")
    for i in range(1, 4):
        await expect(table).to_contain_text(f"Mail{i}")
    await shot(page, "digest")


async def refused(page: Page, url: str) -> bool:
    """Whether the browser was refused `url`: a 401 page, or (headless chromium, which
    cannot show a sign-in prompt) the navigation failing for want of credentials."""
    try:
        answer = await page.goto(url)
    except PlaywrightError as exc:
        return "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
    return answer is not None and answer.status == 401


async def test_without_credentials_the_console_is_refused(
    service: Running, browser: Browser
) -> None:
    page = await as_user(browser, None)
    for path in ("/ui/", "/ui/notifications", "/ui/routes"):
        assert await refused(page, service.url + path), path
        direct = await page.request.get(service.url + path)
        assert direct.status == 401
        assert direct.headers["www-authenticate"].startswith('Basic realm="alert-router"')
    page = await as_user(browser, VIEWER)
    answer = await page.goto(service.url + "/ui/")
    assert answer is not None and answer.status == 200
    await expect(page.locator(".who")).to_contain_text("Signed in as viewer")
    await expect(page.get_by_role("button", name="Reload the configuration")).to_have_count(0)


def _episode(name: str, severity: str, minutes: int, status: str) -> dict[str, Any]:
    """An Alertmanager webhook for one alert that started `minutes` ago (and, resolved,
    ended a minute ago)."""
    now = datetime.now(UTC).replace(microsecond=0)
    starts = (now - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    ends = (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    labels = {"alertname": name, "severity": severity, "team": "web"}
    body = alert(labels, group=name, status=status)
    first = body["alerts"][0]
    first.update(fingerprint=f"fp-{name}", startsAt=starts)
    first["endsAt"] = ends if status == "resolved" else "0001-01-01T00:00:00Z"
    return body


async def _noisy_history(service: Running) -> None:
    for name, severity, minutes in (("CPUHigh", "warning", 3), ("DiskFull", "critical", 50)):
        for status in ("firing", "resolved"):
            status_code, _ = await service.post(
                "/webhook/alertmanager", _episode(name, severity, minutes, status)
            )
            assert status_code == 200
    await settled(service, 4)


async def test_the_insights_page_reads_on_a_phone_without_javascript(
    service: Running, browser: Browser
) -> None:
    await _noisy_history(service)
    context = await browser.new_context(
        http_credentials=VIEWER,  # type: ignore[arg-type]
        viewport={"width": 1280, "height": 900},
        java_script_enabled=False,
    )
    page = await context.new_page()
    await page.goto(service.url + "/ui/insights?since=7d")
    rows = page.locator("#insights-alerts tbody tr")
    await expect(rows).to_have_count(2)
    # Noisiest first: CPUHigh resolved within 5 minutes with nobody acting.
    await expect(rows.first).to_contain_text("CPUHigh")
    await expect(rows.first).to_contain_text("100%")
    await expect(page.locator("#chart-severity svg.chart rect").first).to_be_visible()
    await expect(page.locator("#chart-weeks svg.chart")).to_be_visible()
    await shot(page, "insights")
    await page.set_viewport_size({"width": 390, "height": 844})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    await expect(rows.first.locator("svg.spark")).to_be_visible()
    await shot(page, "insights-phone")
    await rows.first.get_by_role("link", name="CPUHigh").click()
    await expect(page.locator("#records tbody tr").first).to_contain_text("CPUHigh")


async def test_the_routes_page_replays_a_pasted_config_for_the_admin(
    service: Running, browser: Browser, sink: WebhookSink, smtp: FakeSMTPServer
) -> None:
    await _noisy_history(service)
    page = await as_user(browser, ADMIN)
    await page.goto(service.url + "/ui/routes")
    proposed = CONFIG.format(
        state_url="sqlite:///unused.db",
        sink=sink.url("").rstrip("/"),
        smarthost=smtp.smarthost,
        url="https://alerts.example.com",
    ).replace("      receiver: oncall\n", "      receiver: default\n")
    await page.get_by_label("proposed routes.yaml").fill(proposed)
    await page.get_by_role("button", name="Replay recorded events").click()
    await expect(page.locator("#replay-summary")).to_contain_text("1 groups changed of 2")
    await expect(page.locator("#replay-diff")).to_contain_text("oncall")
    await shot(page, "routes-replay")
    await page.locator("#replay-diff").get_by_role("link", name="preview").click()
    await expect(page.locator("#receivers")).to_contain_text("oncall")
