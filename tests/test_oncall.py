"""Who is on call, end to end: routes.yaml, messages naming the person on call when they go
out, overrides through the API (kept in the store), the command line."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.cli import main
from router.config.loader import ConfigError, load_config
from router.schedules.directory import OnCallDirectory
from router.schedules.rotations import Override
from router.store.sqlite import SQLiteStore
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTPServer
from tests.helpers import config_from, until

CHANNEL = "#prod-alerts"
# A day after the test starts, and an hour later.
SOON = datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()
LATER = datetime.fromtimestamp(time.time() + 90000, UTC).isoformat()


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def rotation_yaml(start: str) -> str:
    # Daily at midnight UTC from today: Alice today, Bob tomorrow.
    return f"""
oncall:
  - name: sre
    timezone: UTC
    rotation: daily
    handoff: "00:00"
    start: {start}
    members:
      - {{name: Alice, slack: U01ALICE, email: alice@example.com}}
      - {{name: Bob, slack: U02BOB, email: bob@example.com}}
"""


def routes(slack: FakeSlack, smtp: FakeSMTPServer, state_url: str) -> str:
    return f"""
state: {{url: "{state_url}"}}
receivers:
  - name: page
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url},
             mention: "oncall:sre"}}
  - name: mail
    email: {{to: ["oncall:sre", lead@example.com], from: router@example.com,
             smarthost: "{smtp.smarthost}", starttls: false}}
route:
  receiver: page
  routes:
    - {{matchers: ['severity="critical"'], receiver: page, continue: true}}
    - {{matchers: ['severity="critical"'], receiver: mail}}
""" + rotation_yaml(today())


def webhook(group: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """One firing alert in group `group` (a critical one unless `labels` are given)."""
    if labels is None:
        labels = {"alertname": "DiskFull", "env": "prod", "severity": "critical", "g": group}
    return {
        "version": "4",
        "receiver": "prod",
        "status": "firing",
        "groupKey": f'{{}}:{{g="{group}"}}',
        "groupLabels": labels,
        "commonLabels": labels,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "disk full"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp{group}",
            }
        ],
    }


async def fire(svc: Running, slack: FakeSlack, smtp: FakeSMTPServer, group: str) -> tuple[str, Any]:
    before = len(slack.messages(CHANNEL))
    mails = len(smtp.messages)
    status, _ = await svc.post("/webhook/alertmanager", webhook(group))
    assert status == 200
    await until(lambda: len(slack.messages(CHANNEL)) > before)
    [mail] = (await smtp.wait_for_messages(mails + 1))[mails:]
    return slack.messages(CHANNEL)[-1].visible_text(), mail


async def test_messages_name_whoever_is_on_call_when_they_go_out(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str
) -> None:
    async with running(config_from(routes(slack, smtp, state_url))) as svc:
        text, mail = await fire(svc, slack, smtp, "1")
        assert "<@U01ALICE>" in text and "<@U02BOB>" not in text
        assert sorted(mail.rcpt_tos) == ["alice@example.com", "lead@example.com"]
        assert mail.message["To"] == "alice@example.com, lead@example.com"

        until_ = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
        status, body = await svc.post(
            "/api/v1/oncall/overrides", {"rotation": "sre", "who": "Bob", "until": until_}
        )
        assert status == 201, body
        override_id = body["override"]["id"]
        status, now = await svc.get_json("/api/v1/oncall")
        assert status == 200
        [sre] = now["rotations"]
        assert (sre["on_call"]["name"], sre["override"]) == ("Bob", override_id)
        assert sre["next_handoff"]["to"]["name"] == "Alice"
        assert [o["who"] for o in now["overrides"]] == ["Bob"]

        text, mail = await fire(svc, slack, smtp, "2")
        assert "<@U02BOB>" in text and "<@U01ALICE>" not in text
        assert sorted(mail.rcpt_tos) == ["bob@example.com", "lead@example.com"]

        async with svc.http.get(f"{svc.url}/metrics") as resp:
            metrics = await resp.text()
        # Each message named the rotation twice (the Slack mention, the mail's `to`).
        assert 'alert_router_oncall_resolutions_total{by="rotation",rotation="sre"} 2.0' in metrics
        assert 'alert_router_oncall_resolutions_total{by="override",rotation="sre"} 2.0' in metrics

        async with svc.http.delete(f"{svc.url}/api/v1/oncall/overrides/{override_id}") as resp:
            assert resp.status == 200
        status, now = await svc.get_json("/api/v1/oncall")
        assert now["rotations"][0]["on_call"]["name"] == "Alice"
        assert now["overrides"] == []
        async with svc.http.delete(f"{svc.url}/api/v1/oncall/overrides/{override_id}") as resp:
            assert resp.status == 404


async def test_an_override_set_on_one_replica_is_honoured_by_another(
    slack: FakeSlack, smtp: FakeSMTPServer, redis_url: str, prefix: str
) -> None:
    text = routes(slack, smtp, redis_url).replace(
        f'state: {{url: "{redis_url}"}}', f'state: {{url: "{redis_url}", key_prefix: "{prefix}"}}'
    )
    async with running(config_from(text)) as first, running(config_from(text)) as second:
        status, _ = await first.post(
            "/api/v1/oncall/overrides", {"rotation": "sre", "who": "Bob", "until": SOON}
        )
        assert status == 201
        status, now = await second.get_json("/api/v1/oncall")
        assert now["rotations"][0]["on_call"]["name"] == "Bob"
        text, _ = await fire(second, slack, smtp, "3")
        assert "<@U02BOB>" in text


async def test_an_override_outlives_a_restart(
    slack: FakeSlack, smtp: FakeSMTPServer, tmp_path: Path
) -> None:
    config = config_from(routes(slack, smtp, f"sqlite:///{tmp_path}/state.db"))
    async with running(config) as first:
        status, _ = await first.post(
            "/api/v1/oncall/overrides", {"rotation": "sre", "who": "Bob", "until": SOON}
        )
        assert status == 201
    async with running(config) as again:
        status, now = await again.get_json("/api/v1/oncall")
        assert now["rotations"][0]["on_call"]["name"] == "Bob"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"rotation": "dba", "who": "Bob", "until": SOON}, "configured"),
        ({"rotation": "sre", "who": "Eve", "until": SOON}, "member of sre"),
        ({"rotation": "sre", "who": "Bob", "until": "2001-01-01T00:00:00Z"}, "in the past"),
        ({"rotation": "sre", "who": "Bob", "until": "tomorrow"}, "RFC 3339"),
        ({"rotation": "sre", "who": "Bob", "until": "9999-12-31T00:00:00Z"}, "years 1970"),
        ({"rotation": "sre", "who": "Bob", "until": "2099-01-01T00:00:00Z"}, "90 days"),
        (
            {"rotation": "sre", "who": "Bob", "from": LATER, "until": SOON},
            "after from",
        ),
        ({"rotation": "sre", "who": "Bob", "until": SOON, "x": 1}, "unknown"),
    ],
)
async def test_an_override_that_cannot_hold_is_refused_with_the_reason(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str, body: dict[str, Any], problem: str
) -> None:
    async with running(config_from(routes(slack, smtp, state_url))) as svc:
        status, answer = await svc.post("/api/v1/oncall/overrides", body)
        assert status == 400
        assert problem in answer["error"]
        status, now = await svc.get_json("/api/v1/oncall")
        assert now["overrides"] == []
        status, answer = await svc.get_json("/api/v1/oncall?at=0001-01-02T00:00:00Z")
        assert status == 400 and "years 1970" in answer["error"]


async def test_overrides_need_the_admin_once_one_is_configured(
    slack: FakeSlack, smtp: FakeSMTPServer, state_url: str
) -> None:
    admin = "server: {auth: {admin: {bearer_token: s3cret-admin}}}\n"
    async with running(config_from(admin + routes(slack, smtp, state_url))) as svc:
        body = {"rotation": "sre", "who": "Bob", "until": SOON}
        status, _ = await svc.post("/api/v1/oncall/overrides", body)
        assert status == 401
        status, _ = await svc.post(
            "/api/v1/oncall/overrides", body, {"Authorization": "Bearer s3cret-admin"}
        )
        assert status == 201


def test_check_refuses_unknown_rotations_bad_zones_and_handoffs() -> None:
    text = """
oncall:
  - {name: sre, timezone: Mars/Olympus, rotation: weekly, handoff: "09:00", start: 2026-12-07,
     members: [{name: Alice, slack: U01ALICE}]}
receivers:
  - name: page
    slack: {webhook_url: "https://hooks.example/x", mention: "<!here> oncall:sr"}
  - name: mail
    email: {to: ["oncall:sre"], from: a@example.com, smarthost: "h:25"}
route: {receiver: page}
"""
    with pytest.raises(ConfigError) as caught:
        config_from(text)
    problems = "\n".join(caught.value.problems)
    assert "test.yaml:3:27: oncall[0].timezone: unknown time zone 'Mars/Olympus'" in problems
    assert "oncall[0].handoff: handoff '09:00': a weekly rotation needs a weekday" in problems
    assert "receivers[0].slack.mention: unknown rotation 'sr'" in problems
    assert "(did you mean 'sre'?)" in problems
    assert "receivers[1].email.to[0]: oncall:sre: member 'Alice' has no email" in problems


def test_the_command_line_names_who_is_on_call_and_the_store_s_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state.db"
    path = tmp_path / "routes.yaml"
    path.write_text(
        f'state: {{url: "sqlite:///{db}"}}\n'
        "receivers: [{name: log, log: {}}]\nroute: {receiver: log}\n" + rotation_yaml("2026-12-07")
    )
    assert main(["oncall", "--config", str(path), "--at", "2026-12-08T12:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "sre (UTC, daily)\n  on call: Bob (slack U02BOB, bob@example.com)" in out
    assert "next handoff: Wed 2026-12-09 00:00 UTC (2026-12-09T00:00Z) to Alice" in out

    async def cover() -> None:
        store = SQLiteStore(str(db))
        await store.open()
        start = datetime(2026, 12, 8, 10, tzinfo=UTC).timestamp()
        await store.add_override(Override("o1", "sre", "Alice", start, start + 7200, "ana"))
        await store.close()

    asyncio.run(cover())
    assert main(["oncall", "sre", "--config", str(path), "--at", "2026-12-08T11:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "on call: Alice" in out and "by override o1 set by ana" in out
    assert "next handoff: Tue 2026-12-08 12:00 UTC (2026-12-08T12:00Z) to Bob" in out
    assert main(["oncall", "nope", "--config", str(path)]) == 1
    assert "unknown rotation 'nope'" in capsys.readouterr().err


def test_a_team_file_cannot_name_a_rotation(tmp_path: Path) -> None:
    (tmp_path / "payments.yaml").write_text(
        "receivers:\n"
        "  - name: mail\n"
        "    email: {to: ['oncall:sre'], from: a@example.com, smarthost: 'h:25'}\n"
        "route: {receiver: mail}\n"
    )
    root = tmp_path / "routes.yaml"
    root.write_text(
        "teams: [{name: payments, file: payments.yaml, matchers: ['team=\"payments\"']}]\n"
        "receivers: [{name: log, log: {}}]\n"
        "route: {receiver: log, routes: [{team: payments}]}\n" + rotation_yaml("2026-12-07")
    )
    [problem] = load_config(root).team_problems
    assert problem.startswith(f"{tmp_path}/payments.yaml:3:")
    assert "oncall:sre: rotations are declared in the root file, not here" in problem


async def test_a_store_that_does_not_answer_leaves_the_rotation_to_decide(tmp_path: Path) -> None:
    rotations = config_from(
        "receivers: [{name: log, log: {}}]\nroute: {receiver: log}\n" + rotation_yaml(today())
    ).rotations
    told: list[tuple[str, str]] = []
    # A real store, never opened: every read raises StoreUnavailable.
    closed = SQLiteStore(str(tmp_path / "state.db"))
    directory = OnCallDirectory(rotations, closed, time.time, lambda *a: told.append(a))
    assert await directory.mention("<!here> oncall:sre") == "<!here> <@U01ALICE>"
    assert await directory.addresses(["oncall:sre", "a@x", "alice@example.com"]) == [
        "alice@example.com",
        "a@x",
    ]
    assert told == [("sre", "rotation_store_down")] * 2
