"""One file per team: merged into the root config, confined to the team's scope, and a broken
file contained (fallback at start, last good version on reload), in the loader and through
the running service with the fake Slack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from router.config.loader import ConfigError, load_config
from router.config.schema import Config, TeamStatus
from router.routing.inhibit import Inhibitor
from router.routing.tree import RouteTree
from tests.conftest import running
from tests.fakes.slack import FakeSlack, Reply

ROOT = """\
receivers:
  - name: stdout
    log: {}
  - name: email-sre
    log: {}
teams:
  - name: payments
    file: routes.d/payments.yaml
    matchers: ['team="payments"']
    fallback: email-sre
  - name: shop
    file: routes.d/shop.yaml
    matchers: ['team="shop"']
route:
  receiver: stdout
  repeat_interval: 2h
  routes:
    - team: payments
    - team: shop
    - matchers: ['env="prod"']
      receiver: email-sre
"""

PAYMENTS = """\
receivers:
  - name: slack
    log: {}
  - name: pager
    log: {}
route:
  receiver: slack
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      mute_time_intervals: [night]
    # Outside the team's scope: never matches anything.
    - matchers: ['team="shop"']
      receiver: pager
time_intervals:
  - name: night
    time_intervals:
      - times: [{start_time: "00:00", end_time: "06:00"}]
inhibit_rules:
  - name: down-mutes-warnings
    source_matchers: ['alertname="PaymentsDown"']
    target_matchers: ['severity="warning"']
"""

SHOP = """\
receivers:
  - name: slack
    log: {}
route:
  receiver: slack
"""

# `receivers[0].log` is misspelt: a schema error at line 3.
BROKEN = """\
receivers:
  - name: slack
    lgo: {}
route:
  receiver: slack
"""


def write(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "routes.yaml"


def layout(tmp_path: Path, payments: str = PAYMENTS, shop: str = SHOP, root: str = ROOT) -> Path:
    return write(
        tmp_path,
        {"routes.yaml": root, "routes.d/payments.yaml": payments, "routes.d/shop.yaml": shop},
    )


def receivers(config: Config, **labels: str) -> list[str]:
    return [route.receiver for route in RouteTree.from_config(config).match(labels)]


def problems_of(path: Path) -> list[str]:
    """The problems of a root file (which fail the whole config)."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return caught.value.problems


def team_problems_of(path: Path) -> list[str]:
    """The problems of its team files (which the config contains)."""
    problems = load_config(path, env={}).team_problems
    assert problems
    return problems


# --- merging and scope ------------------------------------------------------------------


def test_team_receivers_are_named_after_the_team_outside_its_file(tmp_path: Path) -> None:
    config = load_config(layout(tmp_path), env={})
    names = [r.name for r in config.receivers]
    assert names == ["stdout", "email-sre", "payments/slack", "payments/pager", "shop/slack"]
    assert receivers(config, team="payments", severity="warning") == ["payments/slack"]
    assert receivers(config, team="payments", severity="critical") == ["payments/pager"]
    assert receivers(config, team="shop", env="prod") == ["shop/slack"]
    assert receivers(config, env="prod") == ["email-sre"]
    assert [load.status for load in config.team_loads] == [TeamStatus.LOADED] * 2
    assert config.team_problems == []


def test_a_team_route_matching_outside_its_scope_sees_nothing(tmp_path: Path) -> None:
    config = load_config(layout(tmp_path), env={})
    # payments' second route asks for team="shop": those alerts never enter payments' subtree.
    assert receivers(config, team="shop", severity="warning") == ["shop/slack"]
    tree = RouteTree.from_config(config)
    [payments] = [node for node in tree.root.routes if node.team == "payments"]
    outside = payments.routes[1]
    assert str(outside.matchers[0]) == 'team="shop"'
    for labels in ({"team": "shop"}, {"team": "shop", "severity": "critical"}, {"env": "prod"}):
        assert outside.settings not in tree.match(labels)


def test_team_nodes_say_which_team_they_came_from_and_settings_inherit(tmp_path: Path) -> None:
    tree = RouteTree.from_config(load_config(layout(tmp_path), env={}))
    [route] = tree.match({"team": "payments", "severity": "critical"})
    assert (
        route.path == 'routes[0] {team: payments} team="payments" > routes[0] severity="critical"'
    )
    assert route.mute_time_intervals == ("payments/night",)
    # Timers the team does not set come from where it is mounted.
    assert route.repeat_interval == 7200
    assert [node.team for node in tree.walk()] == [
        None, "payments", "payments", "payments", "shop", None,
    ]  # fmt: skip


def test_team_inhibit_rules_only_mute_targets_inside_the_scope(tmp_path: Path) -> None:
    config = load_config(layout(tmp_path), env={})
    inhibitor = Inhibitor.from_config(config.inhibit_rules)
    firing = [{"alertname": "PaymentsDown", "team": "payments"}]
    found = inhibitor.inhibition({"team": "payments", "severity": "warning"}, firing)
    assert found is not None and found[0].name == "payments/down-mutes-warnings"
    assert inhibitor.inhibition({"team": "shop", "severity": "warning"}, firing) is None
    assert inhibitor.inhibition({"severity": "warning"}, firing) is None


def test_team_names_are_its_own(tmp_path: Path) -> None:
    # A team file cannot use the root's receivers or intervals, nor mount teams.
    payments = PAYMENTS.replace("receiver: pager\n      mute", "receiver: email-sre\n      mute")
    payments = payments.replace("[night]", "[quiet-hours]")
    payments += "\n".join(["", "  - name: x", "    source_matchers: ['a=\"b\"']", ""])
    problems = team_problems_of(layout(tmp_path, payments=payments))
    team_file = tmp_path / "routes.d" / "payments.yaml"
    assert problems[0].startswith(f"{team_file}:")
    text = "\n".join(problems)
    assert "route.routes[0].receiver: undefined receiver 'email-sre' used in route" in text
    assert "route.routes[0].mute_time_intervals[0]: undefined time interval 'quiet-hours'" in text
    assert "inhibit_rules[1].target_matchers: missing required field" in text


# --- mistakes in the root file -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("    - team: shop\n", "    - team: shopp\n"),
            "19:13: route.routes[1].team: undefined team 'shopp': declare it under teams"
            " (did you mean 'shop'?)",
        ),
        (
            ("    - team: shop\n", ""),
            "11:11: teams[1].name: team 'shop' is declared but not mounted",
        ),
        (
            ("    - team: shop\n", "    - team: payments\n"),
            "19:13: route.routes[1].team: team 'payments' is mounted twice"
            " (also at route.routes[0])",
        ),
        (
            ("    - team: shop\n", "    - team: shop\n      receiver: stdout\n"),
            "20:17: route.routes[1].receiver: a team mount takes only `team` and `continue`",
        ),
        (
            ("fallback: email-sre", "fallback: email"),
            "10:15: teams[0].fallback: undefined receiver 'email' used as fallback",
        ),
        (
            ("  - name: email-sre\n", "  - name: payments/email\n"),
            "4:11: receivers[1].name: receiver name 'payments/email' is reserved for team",
        ),
        (
            ("matchers: ['team=\"shop\"']", "matchers: []"),
            "13:15: teams[1].matchers: list should have at least 1 item",
        ),
        (
            ("name: shop\n", "name: shop/x\n"),
            "11:11: teams[1].name: string should match pattern",
        ),
    ],
)
def test_root_file_team_mistakes_are_reported_at_their_position(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    old, new = change
    assert old in ROOT
    problems = problems_of(layout(tmp_path, root=ROOT.replace(old, new, 1)))
    root = tmp_path / "routes.yaml"
    assert any(p.startswith(f"{root}:{problem}") for p in problems), problems


def test_a_team_route_top_takes_no_matchers_and_team_files_mount_no_teams(
    tmp_path: Path,
) -> None:
    payments = PAYMENTS.replace(
        "route:\n  receiver: slack\n",
        "route:\n  receiver: slack\n  matchers: ['team=\"x\"']\n",
    ).replace("    - matchers: ['team=\"shop\"']\n", "    - team: shop\n")
    problems = team_problems_of(layout(tmp_path, payments=payments))
    file = tmp_path / "routes.d" / "payments.yaml"
    assert any(
        p.startswith(f"{file}:8:13: route.matchers: the team's route must not") for p in problems
    )
    assert any("route.routes[1].team: a team file cannot mount a team" in p for p in problems)


# --- containment -------------------------------------------------------------------------


def test_a_broken_team_file_sends_its_scope_to_the_fallback_and_the_rest_loads(
    tmp_path: Path,
) -> None:
    config = load_config(layout(tmp_path, payments=BROKEN), env={})
    file = tmp_path / "routes.d" / "payments.yaml"
    [problem] = config.team_problems
    assert problem.startswith(f"{file}:3:5: receivers[0].lgo: unknown field 'lgo'")
    payments, shop = config.team_loads
    assert (payments.status, payments.ok, shop.ok) == (TeamStatus.FALLBACK, False, True)
    assert receivers(config, team="payments", severity="critical") == ["email-sre"]
    assert receivers(config, team="shop") == ["shop/slack"]
    assert receivers(config, env="prod") == ["email-sre"]
    assert "payments/slack" not in [r.name for r in config.receivers]


def test_without_a_fallback_a_broken_team_goes_to_the_root_receiver(tmp_path: Path) -> None:
    config = load_config(layout(tmp_path, shop="route: [\n"), env={})
    [problem] = config.team_problems
    assert problem.startswith(f"{tmp_path / 'routes.d' / 'shop.yaml'}:2:1: YAML syntax error")
    assert receivers(config, team="shop", env="prod") == ["stdout"]


def test_a_missing_team_file_is_contained_like_a_broken_one(tmp_path: Path) -> None:
    path = layout(tmp_path)
    (tmp_path / "routes.d" / "shop.yaml").unlink()
    config = load_config(path, env={})
    [problem] = config.team_problems
    shop = tmp_path / "routes.d" / "shop.yaml"
    assert problem == f"{shop}:1:1: cannot read the file: No such file or directory"


def test_a_team_file_failing_on_reload_keeps_its_last_good_version(tmp_path: Path) -> None:
    path = layout(tmp_path)
    good = load_config(path, env={})
    (tmp_path / "routes.d" / "payments.yaml").write_text(BROKEN)
    (tmp_path / "routes.d" / "shop.yaml").write_text(
        SHOP.replace("name: slack", "name: chat").replace("receiver: slack", "receiver: chat")
    )
    reloaded = load_config(path, env={}, previous=good)
    payments, shop = reloaded.team_loads
    assert payments.status is TeamStatus.LAST_GOOD and not payments.ok
    assert receivers(reloaded, team="payments", severity="critical") == ["payments/pager"]
    # The other team's change is in force.
    assert shop.status is TeamStatus.LOADED
    assert receivers(reloaded, team="shop") == ["shop/chat"]
    # Still broken at the next reload: still the same last good version.
    again = load_config(path, env={}, previous=reloaded)
    assert again.team_loads[0].status is TeamStatus.LAST_GOOD
    assert receivers(again, team="payments") == ["payments/slack"]


def test_a_team_file_is_substituted_from_the_environment_like_the_root(tmp_path: Path) -> None:
    payments = PAYMENTS.replace(
        "  - name: slack\n    log: {}", "  - name: slack\n    webhook: {url: '${HOOK}'}"
    )
    path = layout(tmp_path, payments=payments)
    config = load_config(path, env={"HOOK": "https://hooks.example.com/x"})
    assert config.team_problems == []
    webhook = config.receiver("payments/slack").webhook
    assert webhook is not None and webhook.url.get_secret_value() == "https://hooks.example.com/x"
    [problem] = load_config(path, env={}).team_problems
    assert "environment variable HOOK is not set" in problem


# --- through the running service ----------------------------------------------------------

SERVICE_ROOT = """\
state: {{url: '{state_url}'}}
slack: {{per_channel_interval: 0.01, digest_threshold: 50}}
receivers:
  - name: ops
    slack: {{token: {token}, channel: "#prod-alerts", api_url: {api_url}}}
teams:
  - name: payments
    file: routes.d/payments.yaml
    matchers: ['team="payments"']
  - name: shop
    file: routes.d/shop.yaml
    matchers: ['team="shop"']
route:
  receiver: ops
  routes:
    - team: payments
    - team: shop
"""

SERVICE_TEAM = """\
receivers:
  - name: slack
    slack: {{token: {token}, channel: "{channel}", api_url: {api_url}}}
route:
  receiver: slack
"""


def service_layout(tmp_path: Path, slack: FakeSlack, state_url: str, **teams: str) -> Path:
    """Root and team files; each team posts to its channel unless given a file's text."""
    for channel, channel_id in (
        ("#payments", "C0PAYMENTS"),
        ("#shop", "C0SHOP0000"),
        ("#shop-oncall", "C0SHOPONCL"),
    ):
        slack.add_channel(channel, channel_id)
    fill = {"token": slack.token, "api_url": slack.api_url}
    files = {"routes.yaml": SERVICE_ROOT.format(state_url=state_url, **fill)}
    for team in ("payments", "shop"):
        files[f"routes.d/{team}.yaml"] = teams.get(team) or SERVICE_TEAM.format(
            channel=f"#{team}", **fill
        )
    return write(tmp_path, files)


def team_file(slack: FakeSlack, channel: str) -> str:
    return SERVICE_TEAM.format(channel=channel, token=slack.token, api_url=slack.api_url)


def webhook(team: str, group: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group,
        "receiver": "alert-router",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": f"{team.title()}Errors", "team": team, "env": "prod"},
                "annotations": {"summary": f"{team} is failing"},
                "startsAt": "2026-11-26T10:00:00Z",
                "fingerprint": f"fp-{group}",
            }
        ],
    }


async def posted_to(slack: FakeSlack, count: int) -> dict[str, list[str]]:
    """Wait for `count` posts; the alertnames each channel got."""
    async with asyncio.timeout(15):
        calls = await slack.wait_for_calls(count, "chat.postMessage")
    by_channel: dict[str, list[str]] = {}
    for channel in ("#prod-alerts", "#payments", "#shop", "#shop-oncall"):
        for message in slack.messages(channel):
            by_channel.setdefault(channel, []).append(message.visible_text())
    assert len(calls) == count
    return by_channel


async def send(svc: Any, *alerts: tuple[str, str]) -> None:
    for team, group in alerts:
        status, body = await svc.post("/webhook/alertmanager", webhook(team, group))
        assert (status, body) == (200, {"accepted": 1})


async def team_ok(svc: Any) -> dict[str, str]:
    async with svc.http.get(svc.url + "/metrics") as resp:
        text = await resp.text()
    found = {}
    for line in text.splitlines():
        if line.startswith("alert_router_config_team_ok{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('"')[1]] = value
    return found


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_service_routes_each_team_by_its_own_file(
    tmp_path: Path, slack: FakeSlack, state_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = service_layout(tmp_path, slack, state_url)
    async with running(load_config(path), config_path=path) as svc:
        await send(svc, ("payments", "g1"), ("shop", "g2"), ("other", "g3"))
        seen = await posted_to(slack, 3)
        assert [len(seen.get(c, [])) for c in ("#payments", "#shop", "#prod-alerts")] == [1, 1, 1]
        assert "PaymentsErrors" in seen["#payments"][0]
        assert await team_ok(svc) == {"payments": "1.0", "shop": "1.0"}
        status, ready = await svc.get_json("/readyz")
        assert (status, ready) == (200, {"status": "ready"})
    assert errors_logged(caplog) == []


async def test_a_team_file_broken_at_start_sends_its_alerts_to_the_fallback(
    tmp_path: Path, slack: FakeSlack, state_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = service_layout(tmp_path, slack, state_url, payments=BROKEN)
    file = str(tmp_path / "routes.d" / "payments.yaml")
    async with running(load_config(path), config_path=path) as svc:
        [logged] = errors_logged(caplog)
        assert logged.getMessage() == "team file failed to load"
        assert (vars(logged)["team"], vars(logged)["file"]) == ("payments", file)
        assert vars(logged)["problems"][0].startswith(f"{file}:3:5: receivers[0].lgo")
        await send(svc, ("payments", "g1"), ("shop", "g2"))
        seen = await posted_to(slack, 2)
        assert "PaymentsErrors" in seen["#prod-alerts"][0]
        assert "ShopErrors" in seen["#shop"][0]
        assert await team_ok(svc) == {"payments": "0.0", "shop": "1.0"}
        status, ready = await svc.get_json("/readyz")
        assert status == 200
        assert ready["status"] == "ready"
        [failed] = ready["failed_teams"]
        assert failed["team"] == "payments" and failed["status"] == "fallback"
        assert failed["serving"] == "the fallback receiver 'ops'"
        assert failed["errors"][0].startswith(f"{file}:3:5:")

        # Fixed and reloaded: the team's own file routes its alerts from now on.
        (tmp_path / "routes.d" / "payments.yaml").write_text(team_file(slack, "#payments"))
        async with svc.http.post(svc.url + "/-/reload") as resp:
            assert (resp.status, await resp.json()) == (200, {"status": "reloaded"})
        await send(svc, ("payments", "g3"))
        seen = await posted_to(slack, 3)
        assert "PaymentsErrors" in seen["#payments"][0]
        assert await team_ok(svc) == {"payments": "1.0", "shop": "1.0"}
        assert (await svc.get_json("/readyz"))[1] == {"status": "ready"}


async def test_a_team_file_broken_on_reload_keeps_its_last_good_version(
    tmp_path: Path, slack: FakeSlack, state_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = service_layout(tmp_path, slack, state_url)
    async with running(load_config(path), config_path=path) as svc:
        (tmp_path / "routes.d" / "payments.yaml").write_text(BROKEN)
        # Another team's change in the same reload is applied.
        (tmp_path / "routes.d" / "shop.yaml").write_text(team_file(slack, "#shop-oncall"))
        async with svc.http.post(svc.url + "/-/reload") as resp:
            status, answer = resp.status, await resp.json()
        assert status == 200 and answer["status"] == "reloaded"
        [failed] = answer["failed_teams"]
        assert (failed["team"], failed["status"]) == ("payments", "last_good")
        assert failed["serving"] == "its last good version"
        [logged] = errors_logged(caplog)
        assert vars(logged)["team"] == "payments"

        await send(svc, ("payments", "g1"), ("shop", "g2"))
        seen = await posted_to(slack, 2)
        assert "PaymentsErrors" in seen["#payments"][0]
        assert "ShopErrors" in seen["#shop-oncall"][0]
        assert await team_ok(svc) == {"payments": "0.0", "shop": "1.0"}
        status, ready = await svc.get_json("/readyz")
        assert status == 200 and [t["team"] for t in ready["failed_teams"]] == ["payments"]

        # A broken root file is refused whole, as before.
        path.write_text("route: [\n")
        async with svc.http.post(svc.url + "/-/reload") as resp:
            assert resp.status == 400
            assert (await resp.json())["status"] == "failed"
        await send(svc, ("payments", "g3"))
        seen = await posted_to(slack, 3)
        assert len(seen["#payments"]) == 2


async def test_work_pending_for_a_team_that_fails_at_restart_waits_for_its_file(
    tmp_path: Path, slack: FakeSlack, state_url: str
) -> None:
    path = service_layout(tmp_path, slack, state_url)
    async with running(load_config(path), config_path=path) as svc:
        # Slack is down for the first post: the notification stays pending, to be retried.
        slack.script("chat.postMessage", Reply.http(500))
        await send(svc, ("payments", "g1"))
        await slack.wait_for_calls(1, "chat.postMessage")
        await svc.wait_for_records(lambda records: records[0]["attempts"] >= 1)

    # The service restarts with the team's file broken: its receiver is gone for now.
    (tmp_path / "routes.d" / "payments.yaml").write_text(BROKEN)
    async with running(load_config(path), config_path=path) as svc:
        [record] = await svc.wait_for_records(
            lambda records: records[0]["last_error"].startswith("team_config_failed")
        )
        assert record["state"] == "pending"

        (tmp_path / "routes.d" / "payments.yaml").write_text(team_file(slack, "#payments"))
        async with svc.http.post(svc.url + "/-/reload") as resp:
            assert resp.status == 200
        seen = await posted_to(slack, 2)
        assert "PaymentsErrors" in seen["#payments"][0]
        # The record is finished just after the post reaches Slack.
        await svc.wait_for_records(lambda records: records[0]["state"] == "sent")
