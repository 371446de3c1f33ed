"""The console's pages, read over HTTP from the running service fed by real webhooks."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from router.config.schema import Config
from router.web.console import pages
from router.web.state import Tuning
from tests.conftest import Running, running
from tests.fakes.smtp import FakeSMTPServer
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from, payload

ROUTES = """
state: {{url: "{state_url}"}}
server: {{external_url: "https://alerts.example.com"}}
receivers:
  - name: default
    webhook: {{url: "{sink}/default"}}
  - name: oncall
    webhook: {{url: "{sink}/oncall"}}
  - name: audit
    webhook: {{url: "{sink}/audit"}}
  - name: mail
    email: {{to: [sre@example.com], from: router@example.com, smarthost: "127.0.0.1:1"}}
route:
  receiver: default
  routes:
    - matchers: ['env="prod"', 'severity="critical"']
      receiver: oncall
      continue: true
    - matchers: ['env="prod"']
      receiver: audit
    - matchers: ['team="mail"']
      receiver: mail
      mute_time_intervals: [nights]
time_intervals:
  # One night only (the routes page's example): a test run at night must not be muted.
  - name: nights
    time_intervals:
      - times: [{{start_time: "00:00", end_time: "06:00"}}]
        days_of_month: ["1"]
        months: ["december"]
        years: ["2026"]
inhibit_rules:
  - name: critical-mutes-warning
    source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
"""


def alert(
    labels: dict[str, str],
    *,
    group: str,
    status: str = "firing",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An Alertmanager webhook with one alert."""
    body = payload("alertmanager_firing.json")
    body["groupKey"] = group
    body["status"] = status
    first = body["alerts"][0]
    first.update(status=status, labels=labels, fingerprint="")
    first["annotations"] = annotations or {"summary": f"{labels.get('alertname', '')} is up"}
    body["alerts"] = [first]
    body["groupLabels"] = {"alertname": labels.get("alertname", "")}
    body["commonLabels"] = labels
    return body


def console_config(state_url: str, sink: WebhookSink, extra: str = "") -> Config:
    base = sink.url("").rstrip("/")
    return config_from(ROUTES.format(state_url=state_url, sink=base) + extra)


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as fake:
        yield fake


@pytest.fixture
async def console(state_url: str, sink: WebhookSink) -> AsyncIterator[Running]:
    async with running(console_config(state_url, sink)) as svc:
        yield svc


async def page(svc: Running, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET a page: (status, text with tags stripped and whitespace folded)."""
    async with svc.http.get(svc.url + path, headers=headers, allow_redirects=False) as resp:
        return resp.status, visible(await resp.text())


async def raw(svc: Running, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with svc.http.get(svc.url + path, headers=headers, allow_redirects=False) as resp:
        return resp.status, await resp.text()


def visible(markup: str) -> str:
    """What a reader sees of `markup`, roughly: no tags, entities decoded, one space."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S)
    # Inline elements run on with their neighbours (`<b>env</b>=prod` reads `env=prod`).
    text = re.sub(r"</?(?:a|b|code|em|small|span|strong|time)\b[^>]*>", "", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(html.unescape(text).split())


async def settled(
    svc: Running, count: int, holds: Callable[[list[dict[str, Any]]], bool] | None = None
) -> list[dict[str, Any]]:
    """The records, once `count` exist and none is pending (and `holds`, if given)."""

    def done(records: list[dict[str, Any]]) -> bool:
        finished = len(records) >= count and all(r["state"] != "pending" for r in records)
        return finished and (holds is None or holds(records))

    return await svc.wait_for_records(done)


async def test_root_redirects_to_the_overview(console: Running) -> None:
    async with console.http.get(console.url + "/", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/ui/"


async def test_overview_shows_what_fires_by_env_severity_and_receiver(console: Running) -> None:
    await console.post(
        "/webhook/alertmanager",
        alert({"alertname": "DiskFull", "env": "prod", "severity": "critical"}, group="g1"),
    )
    await console.post(
        "/webhook/alertmanager",
        alert({"alertname": "SlowQuery", "env": "staging", "severity": "warning"}, group="g2"),
    )
    await settled(console, 3)
    status, text = await page(console, "/ui/")
    assert status == 200
    assert "Firing now 2" in text
    assert "by env prod 1 staging 1" in text
    assert "by severity critical 1 warning 1" in text
    assert "by receiver oncall 1 audit 1 default 1" in text
    assert "DiskFull prod critical oncall, audit" in text
    # SlowQuery has no cluster, like DiskFull: the rule's `equal` holds and inhibits it.
    assert "Sent 24 h 2 Suppressed 24 h 1 inhibited: 1 Failed 24 h 0 Dead 24 h 0" in text


@pytest.fixture
async def uninhibited(state_url: str, sink: WebhookSink) -> AsyncIterator[Running]:
    """The console's service with no inhibit rules: no alert states are kept."""
    config = console_config(state_url, sink)
    async with running(config.model_copy(update={"inhibit_rules": []})) as svc:
        yield svc


def firing_section(text: str) -> str:
    """The overview's "What is firing" section, as a reader sees it."""
    return text.partition("What is firing")[2].partition("Newest notifications")[0]


def counted(firing: str, caption: str) -> list[tuple[str, int]]:
    """The (value, count) pairs of one of the firing section's tables, sorted."""
    following = ("by env", "by severity", "by receiver", "alert env")
    table = firing.partition(caption)[2]
    for mark in following:
        if mark != caption:
            table = table.partition(mark)[0]
    return sorted((k, int(n)) for k, n in re.findall(r"(\S+) (\d+)", table))


async def test_without_inhibit_rules_the_overview_shows_what_receivers_were_told_fires(
    uninhibited: Running,
) -> None:
    disk = {"alertname": "DiskFull", "env": "prod", "severity": "critical"}
    await uninhibited.post("/webhook/alertmanager", alert(disk, group="g1"))
    await uninhibited.post(
        "/webhook/alertmanager",
        alert({"alertname": "SlowQuery", "env": "staging", "severity": "warning"}, group="g2"),
    )
    await settled(uninhibited, 3)
    status, text = await page(uninhibited, "/ui/")
    assert status == 200
    firing = firing_section(text)
    assert "As last told to receivers" in firing
    assert "Firing now 2" in text
    assert counted(firing, "by env") == [("prod", 1), ("staging", 1)]
    assert counted(firing, "by severity") == [("critical", 1), ("warning", 1)]
    assert counted(firing, "by receiver") == [("audit", 1), ("default", 1), ("oncall", 1)]
    assert "DiskFull prod critical audit, oncall" in firing
    assert "SlowQuery staging warning default" in firing

    await uninhibited.post("/webhook/alertmanager", alert(disk, group="g1", status="resolved"))
    await settled(uninhibited, 5)
    _, text = await page(uninhibited, "/ui/")
    firing = firing_section(text)
    assert "Firing now 1" in text
    assert "SlowQuery staging warning default" in firing
    assert "DiskFull" not in firing
    assert counted(firing, "by receiver") == [("default", 1)]


async def test_without_inhibit_rules_the_overview_says_when_it_read_only_some_groups(
    state_url: str, sink: WebhookSink
) -> None:
    config = console_config(state_url, sink).model_copy(update={"inhibit_rules": []})
    async with running(config, tuning=Tuning(console_firing_groups=1)) as uninhibited:
        await uninhibited.post("/webhook/alertmanager", alert({"alertname": "First"}, group="g1"))
        await settled(uninhibited, 1)
        await uninhibited.post("/webhook/alertmanager", alert({"alertname": "Second"}, group="g2"))
        await settled(uninhibited, 2)
        _, text = await page(uninhibited, "/ui/")
    firing = firing_section(text)
    assert "Only the 1 most recently notified groups are read." in firing
    assert "Firing now 1" in text
    assert "Second" in firing and "First" not in firing


async def test_without_inhibit_rules_and_nothing_told_the_overview_says_so(
    uninhibited: Running,
) -> None:
    _, text = await page(uninhibited, "/ui/")
    assert "Firing now 0" in text
    assert "No receiver was last told of a firing alert." in firing_section(text)


async def test_overview_shows_the_sample_alert_just_posted(console: Running) -> None:
    await console.post("/webhook/alertmanager", payload("alertmanager_firing.json"))
    await settled(console, 1)
    status, text = await page(console, "/ui/")
    assert status == 200
    assert re.search(
        r"Newest notifications .* CPUHigh \(2 alerts\) unknown warning default sent", text
    )


async def test_overview_health_names_each_receivers_last_failure(
    state_url: str, sink: WebhookSink
) -> None:
    config = console_config(state_url, sink)
    async with running(config) as svc:
        await svc.post(
            "/webhook/alertmanager", alert({"alertname": "Mailed", "team": "mail"}, group="m")
        )
        async with asyncio.timeout(15):
            while True:  # the worker's first attempt fails on a port nobody listens on
                _, text = await page(svc, "/ui/")
                if "Receiver mail email" in text and "last failure" in text:
                    break
                await asyncio.sleep(0.05)
        assert re.search(r"Receiver mail email last delivered never; last failure .*UTC: ", text)
        assert "State store (sqlite) answers" in text
        assert "Loki enrichment not configured" in text
        assert "not reloaded since the start" in text


async def test_list_is_newest_first_and_filters_narrow_it(console: Running) -> None:
    bodies = [
        alert({"alertname": "DiskFull", "env": "prod", "severity": "critical"}, group="a"),
        alert({"alertname": "SlowQuery", "env": "staging", "severity": "warning"}, group="b"),
        alert(
            {"alertname": "CertExpiry", "env": "dev", "severity": "info", "host": "web-7"},
            group="c",
        ),
    ]
    for body in bodies:
        await console.post("/webhook/alertmanager", body)
    await settled(console, 4)
    _, text = await page(console, "/ui/notifications")
    order = [text.index(name) for name in ("CertExpiry", "SlowQuery", "DiskFull")]
    assert order == sorted(order)

    async def names(query: str) -> set[str]:
        status, markup = await raw(console, "/ui/notifications?" + query)
        assert status == 200
        return set(re.findall(r'class="open"[^>]*>([^<]+)<', markup))

    assert await names("receiver=oncall") == {"DiskFull"}
    assert await names("env=staging") == {"SlowQuery"}
    assert await names("severity=info") == {"CertExpiry"}
    assert await names("q=web-7") == {"CertExpiry"}
    assert await names("q=slowq") == {"SlowQuery"}
    assert await names("state=sent&source=alertmanager&env=prod") == {"DiskFull"}
    assert await names("state=dead") == set()
    _, text = await page(console, "/ui/notifications?state=dead")
    assert "No notification matches these filters." in text


async def test_list_pages_with_the_cursor(state_url: str, sink: WebhookSink) -> None:
    paged = Tuning(console_page_size=2)
    async with running(console_config(state_url, sink), tuning=paged) as console:
        for i in range(5):
            await console.post(
                "/webhook/alertmanager", alert({"alertname": f"Alert{i}"}, group=f"g{i}")
            )
        await settled(console, 5)
        listed: list[list[str]] = []
        path = "/ui/notifications?receiver=default"
        for _ in range(5):
            _, markup = await raw(console, path)
            listed.append(re.findall(r'class="open"[^>]*>([^<]+)<', markup))
            older = re.search(r'<a rel="next" href="([^"]+)"', markup)
            if older is None:
                break
            assert "receiver=default" in older.group(1)
            path = html.unescape(older.group(1))
        assert listed == [["Alert4", "Alert3"], ["Alert2", "Alert1"], ["Alert0"]]


async def test_notification_page_shows_alerts_route_path_timeline_and_links(
    console: Running,
) -> None:
    await console.post(
        "/webhook/alertmanager",
        alert(
            {"alertname": "DiskFull", "env": "prod", "severity": "critical", "disk": "sda"},
            group="disk",
            annotations={"summary": "sda is 97% full", "runbook_url": "https://runbooks/disk"},
        ),
    )
    records = await settled(console, 2)
    oncall = next(r for r in records if r["receiver"] == "oncall")
    status, markup = await raw(console, f"/ui/notifications/{oncall['id']}")
    assert status == 200
    text = visible(markup)
    assert "DiskFull to oncall" in text
    assert "state sent first" in text
    assert f"route path {oncall['route_path']}" in text
    assert "disk=sda" in text and "sda is 97% full" in text
    assert '<a href="https://runbooks/disk"' in markup
    assert f'href="/ui/groups/{quote(oncall["group_key"], safe="")}"' in markup
    assert "Timeline" in text
    assert re.search(r"received .*sent", text)


async def test_group_page_shows_every_receivers_records(console: Running) -> None:
    await console.post(
        "/webhook/alertmanager",
        alert({"alertname": "DiskFull", "env": "prod", "severity": "critical"}, group="disk"),
    )
    records = await settled(console, 2)
    key = records[0]["group_key"]
    status, text = await page(console, f"/ui/groups/{quote(key, safe='')}")
    assert status == 200
    assert f"Group {key}" in text
    assert re.search(r"audit 1 record .*DiskFull sent first", text)
    assert re.search(r"oncall 1 record .*DiskFull sent first", text)


async def test_routes_page_draws_the_tree_and_answers_the_tester(console: Running) -> None:
    _, text = await page(console, "/ui/routes")
    assert "default-route receiver: default" in text
    assert '{env="prod",severity="critical"} continue: true receiver: oncall' in text
    labels = quote("alertname=DiskFull env=prod severity=critical")
    status, text = await page(console, f"/ui/routes?labels={labels}")
    assert status == 200
    assert (
        'matched path muted oncall routes[0] env="prod", severity="critical" no'
        ' audit routes[1] env="prod" no'
    ) in text
    assert "is not inhibited by what fires now" in text
    assert "Title: [FIRING:1] DiskFull (prod critical)" in text


async def test_route_tester_says_when_a_receiver_is_muted_and_previews_the_email(
    console: Running,
) -> None:
    labels = quote("alertname=Backup team=mail")
    status, text = await page(console, f"/ui/routes?labels={labels}&at=2026-12-01T03:00:00Z")
    assert status == 200
    assert "At 2026-12-01 03:00:00 UTC" in text
    assert 'mail routes[2] team="mail" muted by nights' in text
    assert "Subject: [FIRING:1] Backup" in text


async def test_route_tester_names_the_inhibiting_rule_and_the_firing_source(
    console: Running,
) -> None:
    await console.post(
        "/webhook/alertmanager",
        alert({"alertname": "NodeDown", "severity": "critical", "cluster": "eu1"}, group="n"),
    )
    await settled(console, 1)
    labels = quote("alertname=PodSlow severity=warning cluster=eu1")
    _, text = await page(console, f"/ui/routes?labels={labels}")
    assert "is inhibited by rule critical-mutes-warning" in text
    assert "alertname=NodeDown" in text and "is firing. Nobody is told." in text


async def test_route_tester_refuses_labels_it_cannot_read(console: Running) -> None:
    status, text = await page(console, "/ui/routes?labels=env")
    assert status == 400
    assert "'env' is not name=value" in text
    status, text = await page(console, "/ui/routes?labels=env%3Dprod&at=tomorrow")
    assert status == 400
    assert "'tomorrow' is not an RFC 3339 time" in text


async def test_unknown_notification_and_digest_are_404_pages(console: Running) -> None:
    status, text = await page(console, "/ui/notifications/nope")
    assert status == 404
    assert "No notification 'nope' is kept" in text
    status, text = await page(console, "/ui/digests/nope")
    assert status == 404


async def test_pages_escape_what_alerts_carry(console: Running) -> None:
    await console.post(
        "/webhook/alertmanager",
        alert({"alertname": "<script>alert(1)</script>", "env": "<b>x</b>"}, group="x"),
    )
    records = await settled(console, 1)
    for path in ("/ui/", "/ui/notifications", f"/ui/notifications/{records[0]['id']}"):
        _, markup = await raw(console, path)
        assert "<script>alert(1)" not in markup
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup


async def test_the_stylesheet_is_served_locally(console: Running) -> None:
    _, markup = await raw(console, "/ui/")
    assert '<link rel="stylesheet" href="/ui/static/console.css">' in markup
    assert "http://" not in re.sub(r'href="http[^"]*"', "", markup.split("<main>")[0])
    async with console.http.get(console.url + "/ui/static/console.css") as resp:
        assert resp.status == 200
        assert "prefers-color-scheme" in await resp.text()


async def test_messages_link_to_their_console_page(console: Running, sink: WebhookSink) -> None:
    await console.post("/webhook/alertmanager", alert({"alertname": "Linked"}, group="l"))
    async with asyncio.timeout(10):
        [request] = await sink.wait_for(1)
    notification_id = request.json["notificationId"]
    assert {
        "title": "alert-router",
        "url": f"https://alerts.example.com/ui/notifications/{notification_id}",
    } in request.json["links"]


def test_console_templates_are_shipped_with_the_package() -> None:
    here = Path(pages.__file__).parent
    assert {"base.html", "overview.html", "notifications.html"} <= {
        p.name for p in (here / "templates").iterdir()
    }


async def test_pages_read_a_redis_store_as_they_read_sqlite(
    redis_url: str, prefix: str, sink: WebhookSink
) -> None:
    config = console_config(redis_url, sink, "").model_copy(deep=True)
    config = config.model_copy(
        update={"state": config.state.model_copy(update={"key_prefix": prefix})}
    )
    async with running(config) as svc:
        await svc.post(
            "/webhook/alertmanager",
            alert({"alertname": "DiskFull", "env": "prod", "severity": "critical"}, group="d"),
        )
        records = await settled(svc, 2)
        _, text = await page(svc, "/ui/")
        assert "State store (redis) answers" in text
        assert "Firing now 1" in text
        _, markup = await raw(svc, "/ui/notifications?receiver=audit")
        assert re.findall(r'class="open"[^>]*>([^<]+)<', markup) == ["DiskFull"]
        audit = next(r for r in records if r["receiver"] == "audit")
        status, text = await page(svc, f"/ui/notifications/{audit['id']}")
        assert status == 200 and "DiskFull to audit" in text


async def test_emails_link_to_their_console_page(state_url: str, smtp: FakeSMTPServer) -> None:
    config = config_from(
        f"""
state: {{url: "{state_url}"}}
server: {{external_url: "https://alerts.example.com/"}}
receivers:
  - name: mail
    email: {{to: [sre@example.com], from: router@example.com, smarthost: "{smtp.smarthost}",
             starttls: false}}
route: {{receiver: mail}}
"""
    )
    async with running(config) as svc:
        await svc.post("/webhook/alertmanager", alert({"alertname": "Mailed"}, group="m"))
        async with asyncio.timeout(10):
            [mail] = await smtp.wait_for_messages(1)
        [record] = await settled(svc, 1)
    url = f"https://alerts.example.com/ui/notifications/{record['id']}"
    assert url in mail.text
    assert f'href="{url}"' in mail.html
