"""Microsoft Teams receivers against a fake Workflows trigger (tests/fakes/msteams.py): the
cards themselves, errors, and the running service (firing and resolved cards, a storm
folded into a digest card)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from router.channels.base import DeliveryError
from router.channels.msteams import MAX_MESSAGE_BYTES, MSTeamsChannel, escape_markdown
from router.config.schema import MSTeamsReceiver
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import Link, LogExcerpt, Message, build_message
from tests.conftest import running
from tests.fakes.msteams import SIGNATURE, FakeTeams
from tests.helpers import config_from, until

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
GROUP = '{}:{alertname="HighLatency"}'


def clock() -> float:
    return T0.timestamp()


def event(
    fingerprint: str, status: Status = Status.FIRING, description: str = "", **labels: str
) -> Event:
    return Event(
        source="alertmanager",
        fingerprint=fingerprint,
        group_key=GROUP,
        status=status,
        labels={"alertname": "HighLatency", "env": "prod", "severity": "critical", **labels},
        annotations={
            "summary": "p99 above 2s",
            "description": description,
            "runbook_url": "https://runbooks/latency",
        },
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=5) if status is Status.RESOLVED else None,
    )


def message(*events: Event) -> Message:
    notification = Notification(
        id="n-7",
        route=RouteSettings(
            receiver="teams", path="routes[0]", repeat_interval=3600.0, send_resolved=True
        ),
        group_key=GROUP,
        events=list(events) or [event("f1", app="checkout")],
        created_at=T0,
    )
    msg = build_message(notification, "first", router_url="https://router.example.com")
    if not msg.firing:
        return msg
    first = dataclasses.replace(
        msg.firing[0],
        links=[Link("Grafana Explore", "https://grafana/explore?x")],
        logs=LogExcerpt(query='{app="checkout"}', lines=["ERROR upstream timeout *5s*"]),
    )
    return dataclasses.replace(msg, firing=[first, *msg.firing[1:]])


def channel(pool: aiohttp.ClientSession, url: str) -> MSTeamsChannel:
    cfg = MSTeamsReceiver.model_validate({"webhook_url": url, "timeout": 5})
    return MSTeamsChannel("teams", cfg, http=pool, clock=clock)


@pytest.fixture
async def teams() -> AsyncIterator[FakeTeams]:
    async with FakeTeams() as fake:
        yield fake


async def sent_card(pool: aiohttp.ClientSession, teams: FakeTeams, msg: Message) -> dict[str, Any]:
    chan = channel(pool, teams.url)
    assert await chan.send(msg, {}) == {"status": "202"}
    await chan.close()
    return teams.cards[-1]


async def test_a_firing_card_reads_like_the_slack_message(
    pool: aiohttp.ClientSession, teams: FakeTeams
) -> None:
    card = await sent_card(pool, teams, message())
    title = card["body"][0]
    assert title["text"] == escape_markdown("[FIRING:1] HighLatency (checkout prod critical)")
    assert (title["weight"], title["color"]) == ("Bolder", "Attention")
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Env"] == "prod" and facts["Severity"] == "critical"
    assert facts["Alert"] == "HighLatency"
    texts = FakeTeams.texts(card)
    assert any("p99 above 2s" in t for t in texts)
    [code] = [b for b in card["body"] if b["type"] == "Container"]
    assert code["items"][0]["fontType"] == "Monospace"
    # Alert text is shown as written, never as Teams formatting.
    assert code["items"][0]["text"] == "ERROR upstream timeout \\*5s\\*"
    assert [(a["type"], a["title"]) for a in card["actions"]] == [
        ("Action.OpenUrl", "alert-router"),
        ("Action.OpenUrl", "Runbook"),
        ("Action.OpenUrl", "Grafana Explore"),
    ]


async def test_a_resolve_is_a_new_green_card(pool: aiohttp.ClientSession, teams: FakeTeams) -> None:
    await sent_card(pool, teams, message())
    card = await sent_card(pool, teams, message(event("f1", Status.RESOLVED, app="checkout")))
    assert len(teams.cards) == 2
    assert card["body"][0]["color"] == "Good"
    assert card["body"][0]["text"].startswith("\\[RESOLVED\\]")


async def test_alert_text_cannot_add_links_or_formatting(
    pool: aiohttp.ClientSession, teams: FakeTeams
) -> None:
    card = await sent_card(
        pool, teams, message(event("f1", description="[click me](https://evil.example) **now**"))
    )
    texts = FakeTeams.texts(card)
    assert "\\[click me\\](https://evil.example) \\*\\*now\\*\\*" in texts
    assert all("https://evil.example" not in a["url"] for a in card["actions"])


async def test_a_huge_group_fits_teams_limit_and_counts_what_it_left_out(
    pool: aiohttp.ClientSession,
    teams: FakeTeams,
) -> None:
    many = [event(f"f{i}", description="d" * 1500, pod=f"pod-{i}") for i in range(200)]
    card = await sent_card(pool, teams, message(*many))
    size = len(teams.requests[-1])
    assert size <= MAX_MESSAGE_BYTES
    assert any(t.startswith("…and ") and "more alerts" in t for t in FakeTeams.texts(card))


async def test_throttling_and_server_errors_are_retried_bad_cards_are_not(
    pool: aiohttp.ClientSession,
    teams: FakeTeams,
) -> None:
    chan = channel(pool, teams.url)
    teams.script(429, headers={"Retry-After": "3"})
    teams.script(502)
    teams.script(400, body=f"bad card for {teams.url}")
    errors: list[DeliveryError] = []
    for _ in range(3):
        with pytest.raises(DeliveryError) as excinfo:
            await chan.send(message(), {})
        errors.append(excinfo.value)
    await chan.close()
    assert [(e.reason, e.retryable, e.retry_after) for e in errors] == [
        ("http_429", True, 3.0),
        ("http_502", True, None),
        ("http_400", False, None),
    ]
    # The URL's signature is a secret.
    assert all(SIGNATURE not in str(e) for e in errors)


# --- the service ---------------------------------------------------------------------------


def webhook(group: str, status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": "am",
        "status": status,
        "groupKey": f'{{}}:{{alertname="{group}"}}',
        "groupLabels": {"alertname": group},
        "externalURL": "http://alertmanager.invalid:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": group, "env": "prod", "severity": "warning"},
                "annotations": {"summary": f"{group} is unhappy"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-01T10:30:00Z",
                "fingerprint": f"fp-{group}",
            }
        ],
    }


def service_config(teams: FakeTeams, state_url: str) -> str:
    return f"""
state: {{url: '{state_url}'}}
server: {{external_url: "https://router.example.com"}}
receivers:
  - name: teams
    msteams: {{webhook_url: "{teams.url}"}}
route: {{receiver: teams}}
"""


async def test_a_group_fires_and_resolves_as_two_cards(teams: FakeTeams, state_url: str) -> None:
    async with running(config_from(service_config(teams, state_url))) as svc:
        assert (await svc.post("/webhook/alertmanager", webhook("Disk")))[0] == 200
        await until(lambda: teams.cards)
        assert (await svc.post("/webhook/alertmanager", webhook("Disk", "resolved")))[0] == 200
        await until(lambda: len(teams.cards) == 2)
        await svc.wait_for_records(
            lambda rs: len(rs) == 2 and all(r["state"] == "sent" for r in rs)
        )
    colors = [card["body"][0]["color"] for card in teams.cards]
    assert colors == ["Warning", "Good"]


async def test_a_storm_to_one_workflow_becomes_a_digest_card(
    teams: FakeTeams, state_url: str
) -> None:
    groups = [f"Storm{i:02d}" for i in range(12)]
    async with running(config_from(service_config(teams, state_url))) as svc:
        for group in groups:
            assert (await svc.post("/webhook/alertmanager", webhook(group)))[0] == 200
        records = await svc.wait_for_records(
            lambda rs: len(rs) == len(groups) and all(r["state"] == "sent" for r in rs), within=60
        )
    digested = [r for r in records if r["delivered_in"]]
    assert digested, "no notification went out in a digest"
    digests = [c for c in teams.cards if c["body"][0]["text"].startswith("Digest:")]
    assert digests
    listed = "\n".join(t for card in digests for t in FakeTeams.texts(card))
    for record in digested:
        assert f"**{escape_markdown(record['alertname'])}**" in listed
    # Every group was told: on its own card or in a digest, fewer posts than groups.
    assert len(teams.cards) < len(groups)
