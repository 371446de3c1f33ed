"""The command line, through main() and once as a real `python -m router` process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from importlib import metadata
from pathlib import Path

import pytest

from router.cli import main
from tests.test_configfile import EXAMPLE, EXAMPLE_ENV
from tests.test_teams import BROKEN, layout

OPTIONAL_VARS = ("ROUTER_STATE_URL", "LOKI_URL", "SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD")


@pytest.fixture
def example_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's required variables set, its optional ones unset."""
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    for name in OPTIONAL_VARS:
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def routes_test(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run(capsys, "routes", "test", "--config", str(EXAMPLE), *argv)


# --- check --------------------------------------------------------------------------------


@pytest.mark.usefixtures("example_env")
def test_check_accepts_the_example_and_counts_routes_and_receivers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The example asks webhooks for credentials, but not readers: check says so.
    assert run(capsys, "check", str(EXAMPLE)) == (
        0,
        "OK: 5 routes, 5 receivers\n",
        "warning: the read API and the console answer anyone (server.auth.api and"
        " server.trusted_proxy unset)\n"
        "warning: actions accept anyone: POST /-/reload (server.auth.admin unset)\n",
    )


def test_check_prints_every_problem_on_stderr_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            receivers:
              - name: slack-prod
                log: {}
            route:
              receiver: slack-prod
              routes:
                - matchers: ['env="prod"']
                  receiver: slak-prod
                - matchers: ['env=~"("']
                  receiver: slack-prod
            """
        )
    )
    code, out, err = run(capsys, "check", str(path))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"{path}:8:17: route.routes[0].receiver: undefined receiver 'slak-prod' used in route"
        " (did you mean 'slack-prod'?)",
        f"{path}:9:18: route.routes[1].matchers[0]: bad matcher 'env=~\"(\"': bad regex '(' for"
        " label 'env': missing ), unterminated subpattern at position 0",
    ]


def test_check_names_missing_env_vars_without_printing_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALERTMANAGER_TOKEN", "am-secret-token")
    monkeypatch.setenv("ARGOCD_TOKEN", "argo-secret-token")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_DEPLOYS_WEBHOOK_URL", raising=False)
    code, out, err = run(capsys, "check", str(EXAMPLE))
    assert code == 1
    assert [line.split(": ", 2)[2].split(" (")[0] for line in err.splitlines()] == [
        "environment variable SLACK_BOT_TOKEN is not set",
        "environment variable SLACK_BOT_TOKEN is not set",
        "environment variable SLACK_DEPLOYS_WEBHOOK_URL is not set",
    ]
    assert "am-secret-token" not in out + err
    assert "argo-secret-token" not in out + err


def test_check_finds_the_file_like_the_other_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = "receivers: [{name: a, log: {}}]\nroute: {receiver: a}\n"
    (tmp_path / "routes.yaml").write_text(good)
    (tmp_path / "other.yaml").write_text(good.replace("receiver: a}", "receiver: b}"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    assert run(capsys, "check")[:2] == (0, "OK: 1 routes, 1 receivers\n")
    monkeypatch.setenv("ROUTER_CONFIG", "other.yaml")
    assert run(capsys, "check")[0] == 1
    assert run(capsys, "check", "--config", "routes.yaml")[0] == 0
    assert run(capsys, "check", "routes.yaml")[0] == 0
    assert run(capsys, "check", "other.yaml", "--config", "other.yaml")[0] == 1


def test_check_of_a_missing_file_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "absent.yaml"))
    assert code == 1
    assert (
        err == f"{tmp_path / 'absent.yaml'}:1:1: cannot read the file: No such file or directory\n"
    )


def test_check_loads_team_files_and_fails_on_a_broken_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = layout(tmp_path)
    assert run(capsys, "check", str(path))[:2] == (0, "OK: 6 routes, 5 receivers\n")
    team = tmp_path / "routes.d" / "payments.yaml"
    team.write_text(BROKEN)
    code, out, err = run(capsys, "check", str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"{team}:3:5: receivers[0].lgo: unknown field 'lgo'")


# --- routes show --------------------------------------------------------------------------


@pytest.mark.usefixtures("example_env")
def test_routes_show_prints_the_tree_like_amtool_with_what_each_node_sets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "routes", "show", "--config", str(EXAMPLE))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Routing tree:",
        ".",
        "└── default-route  receiver: stdout  repeat_interval: 4h  send_resolved: true",
        '    ├── {source="argocd",severity="info"}  receiver: slack-deploys',
        '    ├── {env="prod",severity="critical"}  continue: true  receiver: slack-prod',
        '    ├── {env="prod",severity=~"critical|warning"}  receiver: email-sre',
        '    └── {env="dev"}  receiver: slack-dev  repeat_interval: 12h'
        "  mute_time_intervals: [dev-nights]",
    ]


def test_routes_show_names_the_team_file_each_node_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = layout(tmp_path)
    payments = tmp_path / "routes.d" / "payments.yaml"
    shop = tmp_path / "routes.d" / "shop.yaml"
    code, out, _ = run(capsys, "routes", "show", "--config", str(path))
    assert code == 0
    assert out.splitlines() == [
        "Routing tree:",
        ".",
        "└── default-route  receiver: stdout  repeat_interval: 2h  send_resolved: true",
        f'    ├── {{team="payments"}}  team: payments  receiver: payments/slack  file: {payments}',
        f'    │   ├── {{severity="critical"}}  receiver: payments/pager'
        f"  mute_time_intervals: [payments/night]  file: {payments}",
        f'    │   └── {{team="shop"}}  receiver: payments/pager  file: {payments}',
        f'    ├── {{team="shop"}}  team: shop  receiver: shop/slack  file: {shop}',
        '    └── {env="prod"}  receiver: email-sre',
    ]
    shop.write_text("route: [\n")
    code, out, err = run(capsys, "routes", "show", "--config", str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"{shop}:2:1: YAML syntax error")


# --- routes test --------------------------------------------------------------------------


@pytest.mark.usefixtures("example_env")
@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["env=prod", "severity=critical"], "slack-prod\nemail-sre\n"),
        (["source=argocd", "severity=info"], "slack-deploys\n"),
        (["env=dev"], "slack-dev\n"),
        (["env=prod", "severity=warning"], "email-sre\n"),
        (["env=stage", "severity=critical"], "stdout\n"),
        ([], "stdout\n"),
    ],
)
def test_routes_test_prints_receivers_in_delivery_order(
    labels: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert routes_test(capsys, *labels) == (0, expected, "")


@pytest.mark.usefixtures("example_env")
def test_routes_test_tree_prints_the_matched_route_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = routes_test(capsys, "--tree", "env=prod", "severity=critical")
    assert code == 0
    assert out.splitlines() == [
        'routes[1] env="prod", severity="critical" -> slack-prod',
        'routes[2] env="prod", severity=~"critical|warning" -> email-sre',
    ]
    assert routes_test(capsys, "--tree", "team=x")[1] == "root route -> stdout\n"


@pytest.mark.usefixtures("example_env")
def test_routes_test_at_shows_receivers_muted_at_that_instant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    night = "2026-01-15T23:00:00+01:00"  # 23:00 in Europe/Berlin
    assert routes_test(capsys, "--at", night, "env=dev") == (
        0,
        "slack-dev (muted by dev-nights)\n",
        "",
    )
    assert routes_test(capsys, "--at", "2026-01-15T22:00:00Z", "env=dev")[1] == (
        "slack-dev (muted by dev-nights)\n"
    )
    assert routes_test(capsys, "--at", "2026-01-15T12:00:00+01:00", "env=dev")[1] == "slack-dev\n"
    # Without --at, time intervals are ignored.
    assert routes_test(capsys, "env=dev")[1] == "slack-dev\n"
    code, out, _ = routes_test(capsys, "--tree", "--at", night, "env=dev")
    assert out == 'routes[3] env="dev" -> slack-dev (muted by dev-nights)\n'


@pytest.mark.usefixtures("example_env")
def test_routes_test_expect_passes_when_receivers_match_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = routes_test(
        capsys, "--expect", "slack-prod,email-sre", "env=prod", "severity=critical"
    )
    assert (code, out, err) == (0, "slack-prod\nemail-sre\n", "")


@pytest.mark.usefixtures("example_env")
def test_routes_test_expect_fails_with_a_diff_when_receivers_differ(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = routes_test(
        capsys, "--expect", "email-sre,slack-prod", "env=prod", "severity=critical"
    )
    assert code == 1
    assert err == (
        "receivers differ from --expect:\n"
        "  expected: email-sre, slack-prod\n"
        "  got:      slack-prod, email-sre\n"
    )


@pytest.mark.usefixtures("example_env")
def test_routes_test_expect_does_not_count_muted_receivers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    night = "2026-01-15T23:00:00+01:00"
    code, _, err = routes_test(capsys, "--at", night, "--expect", "slack-dev", "env=dev")
    assert code == 1
    assert "muted, not counted: slack-dev" in err
    assert routes_test(capsys, "--at", night, "--expect", "", "env=dev")[0] == 0


def test_routes_test_reports_config_problems_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("route: {receiver: x}\n")
    code, out, err = run(capsys, "routes", "test", "--config", str(path), "env=prod")
    assert (code, out) == (1, "")
    assert err == f"{path}:1:1: receivers: missing required field\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["routes", "test", "--config", "x", "envprod"], "expected a label as name=value"),
        (["routes", "test", "--config", "x", "bad-name=1"], "bad label name 'bad-name'"),
        (["routes", "test", "--config", "x", "--at", "tonight"], "expected an RFC 3339 time"),
        (["routes"], "required: COMMAND"),
        ([], "required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["check", "a.yaml", "--config", "b.yaml"], "give the file once"),
        (["serve", "--log-level", "loud"], "invalid choice: 'loud'"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_help_exits_0_and_documents_expect_and_route_counting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "routes", "test", "--help")
    assert code == 0
    assert "muted ones do not count" in out
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    assert "n counts every node of the route" in out
    code, out, _ = run(capsys, "test", "--help")
    assert code == 0
    assert "--junit-xml OUT" in out and "2 when a test file" in out
    code, out, _ = run(capsys, "routes", "show", "--help")
    assert code == 0
    assert "team file they came from" in out


# --- serve --------------------------------------------------------------------------------


ServeCall = tuple[str, str | None, int, str]


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[ServeCall]:
    """Stands in for router.web.app so that serve's argument handling is tested alone."""
    calls: list[ServeCall] = []

    def run_server(config_path: str, host: str | None, port: int, log_level: str) -> int:
        calls.append((config_path, host, port, log_level))
        return 0

    module = types.ModuleType("router.web.app")
    module.run_server = run_server  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "router.web.app", module)
    for name in ("ROUTER_CONFIG", "ROUTER_HOST", "ROUTER_PORT", "ROUTER_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_serve_defaults(fake_app: list[ServeCall]) -> None:
    assert main(["serve"]) == 0
    # No host given: the server chooses by the config (see test_trust_boundaries.py).
    assert fake_app == [("./routes.yaml", None, 8080, "info")]


def test_serve_reads_env_and_flags_win_over_env(
    fake_app: list[ServeCall], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_CONFIG", "/etc/router/routes.yaml")
    monkeypatch.setenv("ROUTER_HOST", "127.0.0.1")
    monkeypatch.setenv("ROUTER_PORT", "9000")
    monkeypatch.setenv("ROUTER_LOG_LEVEL", "WARNING")
    assert main(["serve"]) == 0
    argv = ["--config", "c.yaml", "--host", "::1", "--port", "9100", "--log-level", "debug"]
    assert main(["serve", *argv]) == 0
    assert fake_app == [
        ("/etc/router/routes.yaml", "127.0.0.1", 9000, "warning"),
        ("c.yaml", "::1", 9100, "debug"),
    ]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ROUTER_PORT", "http", "ROUTER_PORT must be a port number"),
        ("ROUTER_LOG_LEVEL", "loud", "ROUTER_LOG_LEVEL must be one of debug, info, warning"),
    ],
)
def test_serve_rejects_a_bad_environment_setting(
    fake_app: list[ServeCall],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    assert main(["serve"]) == 2
    assert message in capsys.readouterr().err
    assert fake_app == []


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"alert-router {metadata.version('alert-router')}\n", "")


# --- as a process -------------------------------------------------------------------------


def test_python_dash_m_router_check_runs_as_a_process(tmp_path: Path) -> None:
    env = {**os.environ, **EXAMPLE_ENV}
    for name in OPTIONAL_VARS:
        env.pop(name, None)
    ok = subprocess.run(
        [sys.executable, "-m", "router", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert (ok.returncode, ok.stdout) == (0, "OK: 5 routes, 5 receivers\n")
    assert ok.stderr.startswith("warning: the read API and the console answer anyone")
    broken = tmp_path / "broken.yaml"
    broken.write_text("receivers: [{name: a, log: {}}]\nroute: {receiver: b}\n")
    failed = subprocess.run(
        [sys.executable, "-m", "router", "check", str(broken)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr == f"{broken}:2:19: route.receiver: undefined receiver 'b' used in route\n"
