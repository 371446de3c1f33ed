"""Loading routes.yaml: env substitution, YAML types, and every problem at its line:col."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from router.config.loader import ConfigError, load_config, parse_config
from router.config.schema import Config
from router.schedules.timeintervals import InclusiveRange

EXAMPLE = Path(__file__).parent / "data" / "config_routes.example.yaml"
EXAMPLE_ENV = {
    "ALERTMANAGER_TOKEN": "am-token-0123456789",
    "ARGOCD_TOKEN": "argo-token-0123456789",
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-secretsecret",
    "SLACK_DEPLOYS_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
}
PROBLEM_RE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")

# Indented like the test bodies it is prepended to, so that one dedent fits both.
BASE = """\
        receivers:
          - name: stdout
            log: {}
        route:
          receiver: stdout
"""


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    """The problems for config text, without the file name prefix."""
    with pytest.raises(ConfigError) as excinfo:
        parse_config(textwrap.dedent(text), "routes.yaml", env=env or {})
    for problem in excinfo.value.problems:
        assert PROBLEM_RE.match(problem), problem
        assert problem.startswith("routes.yaml:")
    return [p.removeprefix("routes.yaml:") for p in excinfo.value.problems]


def load(text: str, env: dict[str, str] | None = None) -> Config:
    return parse_config(textwrap.dedent(text), "routes.yaml", env=env or {})


# --- the reference example ----------------------------------------------------------------


def test_example_config_loads_unchanged_with_its_required_env_vars(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env=EXAMPLE_ENV)
    auth = config.server.auth["alertmanager"].bearer_token
    assert auth is not None and auth.get_secret_value() == "am-token-0123456789"
    assert config.state.url == "sqlite:///./alert-router.db"
    assert config.enrich.loki is not None
    assert config.enrich.loki.url == "http://loki.monitoring:3100"
    email = config.receiver("email-sre").email
    assert email is not None
    assert email.smarthost == "smtp.example.com:587"
    assert email.username == ""
    assert email.password.get_secret_value() == ""
    slack = config.receiver("slack-deploys").slack
    assert slack is not None and slack.webhook_url is not None
    assert slack.webhook_url.get_secret_value() == EXAMPLE_ENV["SLACK_DEPLOYS_WEBHOOK_URL"]
    assert [r.name for r in config.receivers] == [
        "slack-prod",
        "slack-dev",
        "slack-deploys",
        "email-sre",
        "stdout",
    ]
    assert str(config.time_intervals[0].time_intervals[0].location) == "Europe/Berlin"


def test_example_config_names_each_missing_env_var_at_its_position() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(EXAMPLE, env={"ARGOCD_TOKEN": "x"})
    assert excinfo.value.problems == [
        f"{EXAMPLE}:11:21: server.auth.alertmanager.bearer_token: environment variable"
        " ALERTMANAGER_TOKEN is not set (set it, or give a default: ${ALERTMANAGER_TOKEN:-...})",
        f"{EXAMPLE}:71:14: receivers[0].slack.token: environment variable SLACK_BOT_TOKEN is"
        " not set (set it, or give a default: ${SLACK_BOT_TOKEN:-...})",
        f"{EXAMPLE}:76:14: receivers[1].slack.token: environment variable SLACK_BOT_TOKEN is"
        " not set (set it, or give a default: ${SLACK_BOT_TOKEN:-...})",
        f"{EXAMPLE}:80:20: receivers[2].slack.webhook_url: environment variable"
        " SLACK_DEPLOYS_WEBHOOK_URL is not set (set it, or give a default:"
        " ${SLACK_DEPLOYS_WEBHOOK_URL:-...})",
    ]


def test_example_env_defaults_apply_and_can_be_overridden() -> None:
    env = {**EXAMPLE_ENV, "SMTP_USER": "alerts", "LOKI_URL": "http://loki:3100"}
    config = load_config(EXAMPLE, env=env)
    email = config.receiver("email-sre").email
    assert email is not None and email.username == "alerts"
    assert config.enrich.loki is not None and config.enrich.loki.url == "http://loki:3100"


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ROUTER_STATE_URL", "redis://redis:6379/0")
    assert load_config(str(EXAMPLE)).state.url == "redis://redis:6379/0"


# --- env substitution -----------------------------------------------------------------


def test_substituted_plain_scalars_take_their_yaml_type() -> None:
    config = load(
        BASE
        + """\
        server:
          max_body_bytes: ${MAX_BODY:-2048}
        dedup:
          send_resolved: ${SEND_RESOLVED}
          repeat_interval: ${REPEAT:-1h}
        environment:
          default: "${QUOTED:-123}"
        """,
        env={"SEND_RESOLVED": "false"},
    )
    assert config.server.max_body_bytes == 2048
    assert config.dedup.send_resolved is False
    assert config.dedup.repeat_interval == 3600.0
    assert config.environment.default == "123"


def test_an_empty_substitution_stays_an_empty_string_not_null() -> None:
    config = load(
        """\
        receivers:
          - name: mail
            email:
              to: [a@example.com]
              from: b@example.com
              smarthost: smtp:25
              username: ${SMTP_USER:-}
              starttls: false
        route:
          receiver: mail
        argocd:
          url: ${ARGO_URL}
        """,
        env={"ARGO_URL": ""},
    )
    email = config.receiver("mail").email
    assert email is not None and email.username == ""
    assert config.argocd.url == ""


def test_default_applies_when_the_variable_is_empty_like_the_shell() -> None:
    config = load(
        BASE + "        argocd: {url: '${ARGO_URL:-https://argo}'}\n", env={"ARGO_URL": ""}
    )
    assert config.argocd.url == "https://argo"


def test_substitution_happens_inside_longer_values_and_dollar_dollar_escapes() -> None:
    config = load(
        BASE + "        argocd: {url: 'https://${HOST}:${PORT:-443}/x?y=$${literal}'}\n",
        env={"HOST": "argo.example.com"},
    )
    assert config.argocd.url == "https://argo.example.com:443/x?y=${literal}"


def test_env_values_are_not_substituted_again() -> None:
    config = load(BASE + "        argocd: {url: '${A}'}\n", env={"A": "${B}"})
    assert config.argocd.url == "${B}"


def test_references_in_comments_and_keys_are_left_alone() -> None:
    config = load(
        BASE
        + """\
        # ${NOT_SET} in a comment is not a reference
        environment:
          aliases: {"${KEY}": prod}
        """
    )
    assert config.environment.aliases == {"${KEY}": "prod"}


def test_an_aliased_value_is_substituted_once() -> None:
    config = load(
        BASE
        + """\
        argocd:
          url: &u ${URL}
        enrich:
          grafana: {url: *u}
        """,
        env={"URL": "https://x"},
    )
    assert config.enrich.grafana is not None and config.enrich.grafana.url == "https://x"
    assert config.argocd.url == "https://x"


def test_malformed_and_unset_references_are_reported_at_the_value() -> None:
    assert problems_of(
        BASE
        + """\
        argocd:
          url: ${not a name}
        state:
          url: ${STATE_URL}
        """
    ) == [
        "7:8: argocd.url: malformed variable reference: expected ${NAME} or ${NAME:-default}"
        " (write $${ for a literal ${)",
        "9:8: state.url: environment variable STATE_URL is not set"
        " (set it, or give a default: ${STATE_URL:-...})",
    ]


# --- YAML types and structure -----------------------------------------------------------


def test_unquoted_clock_times_and_dates_stay_strings() -> None:
    config = load(
        BASE
        + """\
        time_intervals:
          - name: office
            time_intervals:
              - times: [{start_time: 08:30, end_time: 17:00}]
                days_of_month: [1, -1, '2:5']
                years: [2026]
                months: [12]
        """
    )
    spec = config.time_intervals[0].time_intervals[0]
    assert spec.times is not None
    # 08:30 read as the text "08:30" is 510 minutes; as YAML 1.1's base-60 integer it
    # would not be a string and fail.
    assert (spec.times[0].start_time, spec.times[0].end_time) == (8 * 60 + 30, 17 * 60)
    assert spec.days_of_month == [
        InclusiveRange(1, 1),
        InclusiveRange(-1, -1),
        InclusiveRange(2, 5),
    ]
    assert spec.years == [InclusiveRange(2026, 2026)]
    assert spec.months == [InclusiveRange(12, 12)]


def test_anchors_and_merge_keys_work() -> None:
    config = load(
        """\
        receivers:
          - name: a
            slack: &slack
              token: xoxb-1
              channel: "#a"
              api_url: http://slack.local/api/
          - name: b
            slack:
              <<: *slack
              channel: "#b"
        route: {receiver: a}
        """
    )
    b = config.receiver("b").slack
    assert b is not None and (b.channel, b.api_url) == ("#b", "http://slack.local/api/")


def test_yaml_syntax_error_is_one_problem_at_its_position() -> None:
    assert problems_of(
        """\
        receivers:
          - name: stdout
            log: {}
        route:
          receiver: [stdout
        """
    ) == [
        "6:1: YAML syntax error: while parsing a flow sequence,"
        " expected ',' or ']', but got '<stream end>'"
    ]


def test_yaml_tab_indentation_error_is_reported() -> None:
    problems = problems_of("route:\n\treceiver: x\n")
    assert len(problems) == 1
    assert problems[0].startswith("2:1: YAML syntax error: ")


def test_empty_file_and_non_mapping_top_level_are_reported() -> None:
    assert problems_of("# only a comment\n") == ["1:1: the file is empty"]
    assert problems_of("- a\n- b\n") == ["1:1: the top level must be a mapping, not a list"]


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as excinfo:
        load_config(missing)
    assert excinfo.value.problems == [
        f"{missing}:1:1: cannot read the file: No such file or directory"
    ]
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"route: {receiver: caf\xe9}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(latin1)
    assert excinfo.value.problems == [f"{latin1}:1:1: the file is not valid UTF-8"]


def test_duplicate_keys_are_reported_at_the_second_key() -> None:
    assert problems_of(
        """\
        receivers:
          - name: stdout
            log: {}
        route:
          receiver: stdout
          receiver: other
        """
    ) == [
        "6:3: route.receiver: duplicate key 'receiver' (first given on line 5)",
        # The last value wins, as when the file is read, so it is checked too.
        "6:13: route.receiver: undefined receiver 'other' used in route",
    ]


# --- schema problems ----------------------------------------------------------------------


def test_unknown_field_points_at_the_key_and_suggests_the_right_one() -> None:
    assert problems_of(
        BASE
        + """\
        dedup:
          repeat_intervl: 4h
        state:
          bogus: 1
        """
    ) == [
        "7:3: dedup.repeat_intervl: unknown field 'repeat_intervl'"
        " (did you mean 'repeat_interval'?)",
        "9:3: state.bogus: unknown field 'bogus'"
        " (allowed: url, dead_after, workers, key_prefix, lease, lease_renew,"
        " keep_records, min_replicas)",
    ]


def test_alertmanager_only_keys_get_a_hint() -> None:
    assert problems_of(
        """\
        receivers: [{name: stdout, log: {}}]
        route:
          receiver: stdout
          routes:
            - receiver: stdout
              match:
                env: prod
        """
    ) == ["6:7: route.routes[0].match: unknown field 'match' (use matchers: ['name=\"value\"'])"]


def test_missing_required_field_points_at_the_parent_mapping() -> None:
    assert problems_of(
        """\
        receivers:
          - name: stdout
            log: {}
        enrich:
          grafana:
            url: https://grafana
            dashboards:
              - matchers: ['app="x"']
        """
    ) == [
        "1:1: route: missing required field",
        "8:9: enrich.grafana.dashboards[0].uid: missing required field",
    ]


def test_wrong_types_say_what_was_expected_and_found() -> None:
    assert problems_of(
        BASE
        + """\
        server:
          max_body_bytes: lots
        environment:
          from_labels: env
        """
    ) == [
        "7:19: server.max_body_bytes: expected an integer, got a string",
        "9:16: environment.from_labels: expected a list, got a string",
    ]


def test_model_rules_are_reported_at_the_mapping_they_concern() -> None:
    assert problems_of(
        """\
        receivers:
          - name: stdout
            log: {}
            webhook:
              url: https://hooks.example.com/secret-path
        route:
          receiver: stdout
        """
    ) == [
        "2:5: receivers[0]: a receiver needs exactly one of slack, email, webhook, log,"
        " pagerduty, msteams"
        " (has webhook, log)"
    ]


def test_invalid_dict_keys_point_at_the_key() -> None:
    assert problems_of(
        BASE
        + """\
        server:
          auth:
            gitlab: {bearer_token: x}
        """
    ) == [
        "8:5: server.auth.gitlab: invalid key 'gitlab': input should be 'alertmanager',"
        " 'argocd', 'api', 'admin' or 'heartbeat'"
    ]


# --- semantic problems --------------------------------------------------------------------


def test_undefined_receiver_in_a_nested_route_is_named_at_its_value() -> None:
    assert problems_of(
        """\
        receivers:
          - name: slack-prod
            log: {}
        route:
          receiver: slack-prod
          routes:
            - matchers: ['env="prod"']
              routes:
                - matchers: ['team="shop"']
                  receiver: slak-prod
        """
    ) == [
        "10:21: route.routes[0].routes[0].receiver: undefined receiver 'slak-prod' used in route"
        " (did you mean 'slack-prod'?)"
    ]


def test_duplicate_receiver_names_are_reported_at_the_second_name() -> None:
    assert problems_of(
        """\
        receivers:
          - name: stdout
            log: {}
          - name: stdout
            log: {}
        route:
          receiver: stdout
        """
    ) == ["4:11: receivers[1].name: duplicate receiver name 'stdout' (also receivers[0])"]


def test_bad_matchers_are_reported_wherever_they_are_used() -> None:
    assert problems_of(
        BASE
        + """\
          routes:
            - matchers: ['env="prod"', 'severity=~"crit[ical"']
            - matchers: ['team=="x"']
        inhibit_rules:
          - source_matchers: ['severity="critical"']
            target_matchers: ['severity=warning"']
            equal: [alert-name]
        enrich:
          grafana:
            url: https://grafana
            dashboards:
              - {matchers: ['app!"x"'], uid: app}
        """
    ) == [
        "7:32: route.routes[0].matchers[1]: bad matcher 'severity=~\"crit[ical\"': bad regex"
        " 'crit[ical' for label 'severity': unterminated character set at position 4",
        "8:18: route.routes[1].matchers[0]: bad matcher 'team==\"x\"': unexpected '=' at"
        " column 6, expected a value after 'team='",
        "11:23: inhibit_rules[0].target_matchers[0]: bad matcher 'severity=warning\"':"
        " unterminated quoted string starting at column 17",
        "12:13: inhibit_rules[0].equal[0]: 'alert-name' is not a valid label name",
        "17:21: enrich.grafana.dashboards[0].matchers[0]: bad matcher 'app!\"x\"': '!' at"
        " column 4 must be followed by = or ~",
    ]


def test_a_matcher_yaml_reads_as_bytes_is_parsed_like_any_other() -> None:
    # `!!binary` makes bytes that the schema takes as text: the matcher must be checked
    # then too, not found broken when the route tree is built.
    assert problems_of(
        BASE
        + """\
          routes:
            - matchers: [!!binary aGVsbG8=]
        """
    ) == [
        "7:18: route.routes[0].matchers[0]: bad matcher 'hello': unexpected end of input at"
        " column 6, expected an operator (=, !=, =~, !~) after 'hello'"
    ]


def test_root_route_follows_alertmanager_rules() -> None:
    assert problems_of(
        """\
        receivers: [{name: stdout, log: {}}]
        route:
          matchers: ['env="prod"']
          continue: true
        """
    ) == [
        "3:3: route.receiver: the root route must have a receiver",
        "3:13: route.matchers: the root route must not have any matchers",
        "4:13: route.continue: the root route cannot have continue set",
    ]


def test_time_interval_problems_are_reported_per_field() -> None:
    assert problems_of(
        BASE
        + """\
          routes:
            - matchers: [env=dev]
              mute_time_intervals: [nights, weekend]
              active_time_intervals: [offices]
        time_intervals:
          - name: nights
            time_intervals:
              - times:
                  - {start_time: "20:00", end_time: "08:00"}
                  - {start_time: "8:00", end_time: "24:00"}
                weekdays: [funday, 'friday:monday']
                days_of_month: [0, '-3:-1', '5:1']
                months: [jan, 13]
                years: ['2030:2025']
                location: Mars/Olympus
          - name: nights
          - name: office
        """
    ) == [
        "8:37: route.routes[0].mute_time_intervals[1]: undefined time interval 'weekend'",
        "9:31: route.routes[0].active_time_intervals[0]: undefined time interval 'offices'"
        " (did you mean 'office'?)",
        "14:13: time_intervals[0].time_intervals[0].times[0]: start_time 20:00 must be before"
        " end_time 08:00 (to cross midnight, use two ranges: one to 24:00, one from 00:00)",
        "15:26: time_intervals[0].time_intervals[0].times[1].start_time: invalid time '8:00':"
        " expected HH:MM from 00:00 to 24:00",
        "16:20: time_intervals[0].time_intervals[0].weekdays[0]: unknown weekday 'funday':"
        " expected a name like monday",
        "16:28: time_intervals[0].time_intervals[0].weekdays[1]: weekday range 'friday:monday'"
        " ends before it starts (weeks run sunday to saturday: split a range over the weekend"
        " in two, e.g. friday:saturday and sunday:monday)",
        "17:25: time_intervals[0].time_intervals[0].days_of_month[0]: 0 is not a valid day of"
        " the month: use 1..31, or -1..-31 counted from the end of the month",
        "17:37: time_intervals[0].time_intervals[0].days_of_month[2]: day range '5:1' ends"
        " before it starts",
        "18:18: time_intervals[0].time_intervals[0].months[0]: unknown month 'jan': expected a"
        " name or 1..12",
        "18:23: time_intervals[0].time_intervals[0].months[1]: month 13 is out of range 1..12",
        "19:17: time_intervals[0].time_intervals[0].years[0]: year range '2030:2025' ends"
        " before it starts",
        "20:19: time_intervals[0].time_intervals[0].location: unknown time zone 'Mars/Olympus':"
        " expected an IANA name like Europe/Berlin",
        "21:11: time_intervals[1].name: duplicate time interval name 'nights'"
        " (also time_intervals[0])",
    ]


def test_loki_query_must_be_a_valid_jinja2_template() -> None:
    assert problems_of(
        BASE
        + """\
        enrich:
          loki:
            url: http://loki
            query: '{app="{{ labels.app }"}'
        """
    ) == ["9:12: enrich.loki.query: invalid jinja2 template: unexpected '}' (template line 1)"]


def test_all_problems_are_collected_in_file_order() -> None:
    problems = problems_of(
        """\
        dedup:
          repeat_interval: soon
        receivers:
          - name: a
            log: {}
        route:
          receiver: b
          routes:
            - matchers: ['x=~"("']
        """
    )
    assert [p.split(": ")[0] for p in problems] == ["2:20", "7:13", "9:18"]
    assert "invalid duration 'soon'" in problems[0]
    assert "undefined receiver 'b'" in problems[1]
    assert "bad regex '('" in problems[2]


# --- secrets ------------------------------------------------------------------------------


def test_secrets_never_appear_in_problems() -> None:
    token = "xoxb-9999-8888-topsecret"
    password = "hunter2hunter2"
    text = f"""\
        server:
          auth:
            alertmanager:
              bearer_token: ${{AM_TOKEN}}
              bogus: ${{AM_TOKEN}}
          shutdown_grace: ${{SLACK_BOT_TOKEN}}
        state:
          url: redis://:{password}@redis:6379/0
          workers: {password}
        receivers:
          - name: slack
            slack:
              token: ${{SLACK_BOT_TOKEN}}
              channel: "#x"
              timeout: {token}
          - name: hook
            webhook:
              url: https://hooks.example.com/T0/B0/abcdefSECRET
              timeout: https://hooks.example.com/T0/B0/abcdefSECRET
        route:
          receiver: nobody
        """
    problems = problems_of(text, env={"AM_TOKEN": "am-secret-value", "SLACK_BOT_TOKEN": token})
    joined = "\n".join(problems)
    assert len(problems) == 6
    for secret in (token, password, "am-secret-value", "abcdefSECRET"):
        assert secret not in joined
    assert "invalid duration '<redacted>'" in joined


def test_config_error_lists_problems_in_its_message() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load("route: {receiver: x}\n")
    assert str(excinfo.value) == "\n".join(excinfo.value.problems)
    assert excinfo.value.problems == ["routes.yaml:1:1: receivers: missing required field"]
