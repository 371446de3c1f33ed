"""Escalation steps in routes.yaml: `check` refuses a step it cannot follow (where it is
written), and `routes show`, `POST /api/v1/routes/test` and the console's tester show the
chain a route starts."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from router.cli import main
from router.config.loader import load_config
from router.model import RouteSettings
from router.routing.tree import RouteTree
from tests.conftest import running
from tests.helpers import config_from
from tests.test_console_pages import page
from tests.test_teams import PAYMENTS, layout

ROUTES = """\
receivers:
  - name: prod
    log: {}
  - name: oncall
    log: {}
  - name: leads
    log: {}
route:
  receiver: prod
  routes:
    - matchers: ['env="prod"']
      receiver: prod
      escalate:
        - {after: 10m, to: oncall}
        - {after: 30m, to: leads}
      routes:
        - matchers: ['team="quiet"']
          escalate: []
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_names_where_an_escalation_step_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        ROUTES.replace("{after: 30m, to: leads}", "{after: 5m, to: lead}").replace(
            "{after: 10m, to: oncall}", "{after: 10m, to: oncall}\n        - {after: 0s, to: leads}"
        )
    )
    code, _, err = run(capsys, "check", "--config", str(path))
    assert code != 0
    assert f"{path}:15:19: route.routes[0].escalate[1].after:" in err
    assert "greater than 0" in err
    assert f"{path}:16:27: route.routes[0].escalate[2].to: undefined receiver 'lead'" in err
    assert "did you mean 'leads'?" in err
    assert (
        f"{path}:16:19: route.routes[0].escalate[2].after: escalation steps must come later" in err
    )


def test_escalation_is_inherited_and_cleared_like_other_route_settings() -> None:
    tree = RouteTree.from_config(config_from(ROUTES))
    [prod] = tree.match({"env": "prod"})
    assert prod.escalate == ((600.0, "oncall"), (1800.0, "leads"))
    [quiet] = tree.match({"env": "prod", "team": "quiet"})
    assert quiet.escalate == ()
    assert RouteSettings.from_dict(prod.to_dict()) == prod


def test_routes_show_lists_the_steps_of_each_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    code, out, _ = run(capsys, "routes", "show", "--config", str(path))
    assert code == 0
    assert '{env="prod"}  receiver: prod  escalate: [10m -> oncall, 30m -> leads]' in out
    assert '{team="quiet"}  receiver: prod  escalate: []' in out


async def test_the_tester_and_its_api_show_the_chain_a_route_starts(state_url: str) -> None:
    config = config_from(f"state: {{url: '{state_url}'}}\n" + ROUTES)
    async with running(config) as svc:
        status, answer = await svc.post(
            "/api/v1/routes/test", {"labels": {"alertname": "A", "env": "prod"}}
        )
        assert status == 200
        [route] = answer["routes"]
        assert route["escalate"] == [
            {"after": 600.0, "to": "oncall"},
            {"after": 1800.0, "to": "leads"},
        ]
        status, text = await page(svc, "/ui/routes?labels=" + quote("alertname=A env=prod"))
        assert status == 200
        assert (
            "Unacknowledged at prod, it escalates: after 10m oncall, then after 30m leads." in text
        )
        _, text = await page(svc, "/ui/routes")
        assert "escalate: [10m -> oncall, 30m -> leads]" in text


def test_a_teams_steps_name_its_own_receivers(tmp_path: Path) -> None:
    payments = PAYMENTS.replace(
        "      mute_time_intervals: [night]\n",
        "      mute_time_intervals: [night]\n      escalate: [{after: 5m, to: slack}]\n",
    )
    config = load_config(layout(tmp_path, payments=payments), env={})
    [pager] = RouteTree.from_config(config).match({"team": "payments", "severity": "critical"})
    assert pager.receiver == "payments/pager"
    assert pager.escalate == ((300.0, "payments/slack"),)
