"""`alert-router test`: route test files, run through main() against real configs."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from router.cli import main
from tests.test_teams import layout

ROUTES = """\
receivers:
  - name: stdout
    log: {}
  - name: slack-prod
    log: {}
  - name: email-sre
    log: {}
  - name: slack-dev
    log: {}
route:
  receiver: stdout
  routes:
    - matchers: ['env="prod"', 'severity="critical"']
      receiver: slack-prod
      continue: true
    - matchers: ['env="prod"']
      receiver: email-sre
    - matchers: ['env="dev"']
      receiver: slack-dev
      mute_time_intervals: [nights]
environment:
  aliases: {production: prod}
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "20:00", end_time: "24:00"}]
        location: Europe/Berlin
inhibit_rules:
  - name: cluster-down
    source_matchers: ['alertname="ClusterDown"']
    target_matchers: ['severity="warning"']
    equal: [env]
  - source_matchers: ['alertname="Maintenance"']
    target_matchers: ['env="dev"']
"""

PASSING = """\
config: routes.yaml
tests:
  - name: prod critical pages slack and mails the SREs
    labels: {alertname: CheckoutDown, env: prod, severity: critical}
    expect:
      receivers: [slack-prod, email-sre]
  - name: labels are normalized like a webhook's
    labels: {alertname: CheckoutDown, environment: production, severity: critical, code: 500}
    expect:
      receivers: [slack-prod, email-sre]
  - name: nobody else
    labels: {alertname: Other}
    expect:
      receivers: [stdout]
  - name: dev at night is muted
    labels: {alertname: X, env: dev}
    at: "2026-11-28T21:30:00+01:00"
    expect:
      receivers: []
      muted: [slack-dev]
  - name: dev by day is not
    labels: {alertname: X, env: dev}
    at: 2026-11-28T10:00:00Z
    expect:
      receivers: [slack-dev]
      muted: []
  - name: a warning is inhibited while its cluster is down
    labels: {alertname: Slow, env: prod, severity: warning}
    firing:
      - {alertname: ClusterDown, env: prod, severity: critical}
    expect:
      receivers: []
      inhibited: cluster-down
  - name: but not by another env's cluster
    labels: {alertname: Slow, env: prod, severity: warning}
    firing:
      - {alertname: ClusterDown, env: dev, severity: critical}
    expect:
      receivers: [email-sre]
      inhibited: false
  - name: unnamed rules go by their place
    labels: {alertname: X, env: dev}
    firing: [{alertname: Maintenance}]
    expect:
      receivers: []
      inhibited: inhibit_rules[1]
"""

FAILING = """\
config: routes.yaml
tests:
  - name: passes
    labels: {alertname: X, env: prod}
    expect:
      receivers: [email-sre]
  - name: wrong order
    labels: {alertname: X, env: prod, severity: critical}
    expect:
      receivers: [email-sre, slack-prod]
  - name: not muted by day
    labels: {alertname: X, env: dev}
    at: 2026-11-28T10:00:00Z
    expect:
      receivers: []
      muted: [slack-dev]
  - name: expected inhibited
    labels: {alertname: Slow, env: prod, severity: warning}
    expect:
      receivers: [email-sre]
      inhibited: true
  - name: inhibited after all
    labels: {alertname: Slow, env: prod, severity: warning}
    firing: [{alertname: ClusterDown, env: prod}]
    expect:
      receivers: [email-sre]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A routes repo: routes.yaml beside the test files."""
    (tmp_path / "routes.yaml").write_text(ROUTES)
    (tmp_path / "passing.test.yaml").write_text(PASSING)
    (tmp_path / "failing.test.yaml").write_text(FAILING)
    return tmp_path


def test_all_cases_passing_print_pass_lines_and_exit_0(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "test", str(repo / "passing.test.yaml"))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "PASS prod critical pages slack and mails the SREs",
        "PASS labels are normalized like a webhook's",
        "PASS nobody else",
        "PASS dev at night is muted",
        "PASS dev by day is not",
        "PASS a warning is inhibited while its cluster is down",
        "PASS but not by another env's cluster",
        "PASS unnamed rules go by their place",
        "8 passed, 0 failed",
    ]


def test_failing_cases_say_what_was_expected_and_what_happened_and_exit_1(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "test", str(repo / "failing.test.yaml"))
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "PASS passes",
        "FAIL wrong order: expected receivers [email-sre, slack-prod], got [slack-prod, email-sre]",
        "FAIL not muted by day: expected receivers [], got [slack-dev];"
        " expected muted [slack-dev], got []",
        "FAIL expected inhibited: expected inhibited, got not inhibited",
        "FAIL inhibited after all: expected receivers [email-sre],"
        " got [] (inhibited by cluster-down)",
        "1 passed, 4 failed",
    ]


def test_several_files_run_together_and_config_overrides_each_files_own(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(repo / "passing.test.yaml"), str(repo / "failing.test.yaml")]
    code, out, _ = run(capsys, "test", *files)
    assert code == 1
    assert out.splitlines()[-1] == "9 passed, 4 failed"
    # The same cases against a config where everything goes to stdout.
    other = tmp_path / "other.yaml"
    head, _ = ROUTES.split("  routes:\n")
    _, tail = ROUTES.split("environment:")
    other.write_text(head + "environment:" + tail)
    code, out, _ = run(capsys, "test", "--config", str(other), files[1])
    assert code == 1
    assert "FAIL passes: expected receivers [email-sre], got [stdout]" in out.splitlines()


def test_without_config_key_the_default_config_is_used(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "bare.test.yaml").write_text(PASSING.replace("config: routes.yaml\n", ""))
    monkeypatch.chdir(repo)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    assert run(capsys, "test", "bare.test.yaml")[0] == 0
    monkeypatch.setenv("ROUTER_CONFIG", "absent.yaml")
    code, out, err = run(capsys, "test", "bare.test.yaml")
    assert code == 2
    assert err == "absent.yaml:1:1: cannot read the file: No such file or directory\n"
    assert out == "0 passed, 0 failed\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tests: [\n", "2:1: YAML syntax error"),
        ("tests: []\n", "1:8: tests: list should have at least 1 item"),
        (
            "tests:\n  - name: a\n    labels: {x: 1}\n    expect: {receivers: [stdout]}\n"
            "  - name: a\n    labels: {x: 1}\n    expect: {receivers: [stdout]}\n",
            "5:11: tests[1].name: duplicate test name 'a' (also tests[0])",
        ),
        (
            "tests:\n  - name: a\n    labels: {x: 1}\n    expct: {receivers: [stdout]}\n",
            "2:5: tests[0].expect: missing required field",
        ),
        (
            "tests:\n  - name: a\n    labels: {x: 1}\n    at: tomorrow\n"
            "    expect: {receivers: [stdout]}\n",
            "4:9: tests[0].at: expected an RFC 3339 time like 2026-11-28T03:00:00+01:00,"
            " got 'tomorrow'",
        ),
        (
            "tests:\n  - name: a\n    labels: {x: 1}\n    expect: {receivers: [stdot]}\n",
            "4:26: tests[0].expect.receivers[0]: no receiver 'stdot' in the config"
            " (did you mean 'stdout'?)",
        ),
        (
            "tests:\n  - name: a\n    labels: {x: 1}\n"
            "    expect: {receivers: [], muted: [slack-dev]}\n",
            "4:36: tests[0].expect.muted: muted receivers need `at`",
        ),
        (
            "tests:\n  - name: a\n    labels: {x: 1}\n"
            "    expect: {receivers: [], inhibited: cluster-dwn}\n",
            "4:40: tests[0].expect.inhibited: no inhibit rule 'cluster-dwn' in the config"
            " (did you mean 'cluster-down'?)",
        ),
        (
            "tests:\n  - name: a\n    labels: {x-y: 1}\n    expect: {receivers: [stdout]}\n",
            "3:19: tests[0].labels.x-y: 'x-y' is not a valid label name",
        ),
    ],
)
def test_a_malformed_test_file_is_reported_at_its_position_and_exits_2(
    repo: Path, text: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repo / "bad.test.yaml"
    path.write_text("config: routes.yaml\n" + text)
    code, out, err = run(capsys, "test", str(path), str(repo / "passing.test.yaml"))
    assert code == 2
    # Line numbers count the `config:` line prepended above.
    line, col, message = problem.split(":", 2)
    assert err.splitlines()[0].startswith(f"{path}:{int(line) + 1}:{col}:{message}"), err
    # The other file still ran.
    assert out.splitlines()[-1] == "8 passed, 0 failed"


def test_a_broken_config_exits_2_naming_its_problems(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "routes.yaml").write_text(ROUTES.replace("receiver: email-sre", "receiver: email"))
    code, _, err = run(capsys, "test", str(repo / "passing.test.yaml"))
    assert code == 2
    assert f"{repo / 'routes.yaml'}:17:17: route.routes[1].receiver: undefined receiver" in err


def test_team_receivers_are_tested_by_their_outside_names_and_broken_teams_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout(tmp_path)
    test = tmp_path / "teams.test.yaml"
    test.write_text(
        textwrap.dedent(
            """\
            config: routes.yaml
            tests:
              - name: payments criticals page the payments pager
                labels: {team: payments, severity: critical}
                expect: {receivers: [payments/pager]}
              - name: payments criticals at night are muted by the team's interval
                labels: {team: payments, severity: critical}
                at: 2026-11-28T01:00:00Z
                expect: {receivers: [], muted: [payments/pager]}
              - name: the payments rule mutes payments warnings
                labels: {team: payments, severity: warning}
                firing: [{alertname: PaymentsDown, team: payments}]
                expect: {receivers: [], inhibited: payments/down-mutes-warnings}
              - name: but never the shop's
                labels: {team: shop, severity: warning}
                firing: [{alertname: PaymentsDown, team: payments}]
                expect: {receivers: [shop/slack], inhibited: false}
            """
        )
    )
    code, out, _ = run(capsys, "test", str(test))
    assert (code, out.splitlines()[-1]) == (0, "4 passed, 0 failed")
    (tmp_path / "routes.d" / "shop.yaml").write_text("route: [\n")
    code, out, err = run(capsys, "test", str(test))
    assert code == 2
    assert err.startswith(f"{tmp_path / 'routes.d' / 'shop.yaml'}:2:1: YAML syntax error")


# --- JUnit XML ------------------------------------------------------------------------------

# What the JUnit XML schema (the Ant/Jenkins junit XSD) requires of each element.
REQUIRED = {
    "testsuites": {"name", "tests", "failures", "errors", "time"},
    "testsuite": {
        "name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname",
        "id", "package",
    },
    "property": {"name", "value"},
    "testcase": {"name", "classname", "time"},
    "failure": {"message", "type"},
    "error": {"message", "type"},
}  # fmt: skip


def check_junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    for element in root.iter():
        missing = REQUIRED.get(element.tag, set()) - set(element.attrib)
        assert not missing, f"<{element.tag}> lacks {missing}"
    for suite in root.iter("testsuite"):
        assert [c.tag for c in suite][0] == "properties"
        assert [c.tag for c in suite][-2:] == ["system-out", "system-err"]
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "")) == len(cases)
        assert int(suite.get("failures", "")) == sum(
            1 for c in cases if c.find("failure") is not None
        )
        assert int(suite.get("errors", "")) == sum(1 for c in cases if c.find("error") is not None)
        float(suite.get("time", ""))
        # xs:dateTime without a zone, as the schema has it.
        assert len(suite.get("timestamp", "")) == 19 and suite.get("timestamp", "")[10] == "T"
    return root


def test_junit_xml_is_what_a_junit_parser_reads(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report" / "junit.xml"
    out.parent.mkdir()
    (repo / "bad.test.yaml").write_text("tests: [\n")
    files = [repo / "passing.test.yaml", repo / "failing.test.yaml", repo / "bad.test.yaml"]
    code, _, _ = run(capsys, "test", "--junit-xml", str(out), *map(str, files))
    assert code == 2
    root = check_junit(out)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("14", "4", "1")
    passing, failing, bad = root.findall("testsuite")
    assert passing.get("name") == str(files[0])
    assert [c.get("name") for c in passing.findall("testcase")][:2] == [
        "prod critical pages slack and mails the SREs",
        "labels are normalized like a webhook's",
    ]
    wrong = failing.findall("testcase")[1]
    failure = wrong.find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "expected receivers [email-sre, slack-prod], got [slack-prod, email-sre]"
    )
    assert wrong.get("classname") == str(files[1])
    error = bad.find("testcase/error")
    assert error is not None and (error.text or "").startswith(f"{files[2]}:2:1: YAML syntax")


def test_the_route_test_files_shipped_with_the_examples_pass(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples" / "routes"
    # Placeholders for the ${VAR}s the example configs need set, as scripts/ci-checks.sh does.
    for name in ("SLACK_BOT_TOKEN", "SLACK_DEPLOYS_WEBHOOK_URL", "TICKETS_TOKEN",
                 "ALERTMANAGER_TOKEN", "ARGOCD_TOKEN", "PAYMENTS_ONCALL_TOKEN",
                 "SLACK_SIGNING_SECRET", "PAGERDUTY_ROUTING_KEY", "TEAMS_WEBHOOK_URL"):  # fmt: skip
        monkeypatch.setenv(name, f"placeholder-{name}")
    files = sorted(str(p) for p in examples.rglob("*.test.yaml"))
    assert len(files) == 3
    code, out, err = run(capsys, "test", *files)
    assert (code, err) == (0, ""), out
    assert out.splitlines()[-1].endswith(" passed, 0 failed")
