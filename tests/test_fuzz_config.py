"""The config loader fuzzed, and YAML read as Go's yaml reads it where PyYAML differs.

Every text `parse_config` is given ends in a Config or in a ConfigError whose every line is
`file:line:col: message`: never another exception, never a problem line without a place.
Alertmanager reads its config with Go's yaml (YAML 1.1 style): `start_time: 10:00` is the
text "10:00" (PyYAML: the base-60 integer 600), dates stay text, `0o17` is octal, and a
leading zero does not make a number octal for the text fields time intervals use.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from router.config.loader import ConfigError, parse_config
from router.config.schema import Config
from router.routing.timeintervals import TimeIntervals
from tests.fuzzing import FUZZ, TIMEOUT

pytestmark = pytest.mark.timeout(TIMEOUT)

EXAMPLE = (Path(__file__).parent / "data" / "config_routes.example.yaml").read_text()
ENV = {
    "ALERTMANAGER_TOKEN": "am-token-0123456789",
    "ARGOCD_TOKEN": "argo-token-0123456789",
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-secretsecret",
    "SLACK_DEPLOYS_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
}
PLACED = re.compile(r"^fuzz\.yaml:[1-9]\d*:[1-9]\d*: .")


def load(text: str) -> Config | ConfigError:
    """The loader's verdict: a Config, or the ConfigError it raised (and nothing else)."""
    try:
        return parse_config(text, "fuzz.yaml", env=ENV)
    except ConfigError as exc:
        return exc


def assert_config_or_placed_problems(text: str) -> None:
    verdict = load(text)
    if isinstance(verdict, Config):
        return
    assert verdict.problems
    for problem in verdict.problems:
        # One line each, whatever the file held: no line break, no control character.
        assert PLACED.match(problem) and problem.isprintable(), problem
        for secret in ENV.values():
            assert secret not in problem


# --- what people write in routes.yaml ----------------------------------------------------

SCALARS = [
    "10:00",
    "24:00",
    "1:30.5",
    "190:20:30",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "~",
    "null",
    "0o17",
    "017",
    "08",
    "0x1F",
    "0b101",
    "1_000",
    "2026-01-01",
    "2026-01-01T10:00:00Z",
    ".inf",
    "-.5",
    "1e3",
    "4h",
    "30s",
    "1d",
    "-1",
    "''",
    '""',
    "'#prod'",
    "[]",
    "{}",
    "${SLACK_BOT_TOKEN}",
    "${UNSET}",
    "${UNSET:-5m}",
    "${",
    "$${literal}",
    "&a x",
    "*a",
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "!!str 10:00",
    "|\n  text",
    "'env=\"prod\"'",
    "'severity=~\"critical|warning\"'",
    "'{env=\"prod\",}'",
    "'foo=~\"(\"'",
    "Europe/Berlin",
    "Local",
    "monday:friday",
    "'-3:-1'",
    "http://sink.example/hook",
    "sqlite:///./x.db",
    "redis://127.0.0.1:6379/0",
]
KEYS = [
    "receivers",
    "route",
    "routes",
    "receiver",
    "name",
    "matchers",
    "continue",
    "repeat_interval",
    "mute_time_intervals",
    "active_time_intervals",
    "time_intervals",
    "times",
    "start_time",
    "end_time",
    "weekdays",
    "days_of_month",
    "months",
    "years",
    "location",
    "inhibit_rules",
    "source_matchers",
    "target_matchers",
    "equal",
    "slack",
    "email",
    "webhook",
    "log",
    "url",
    "token",
    "channel",
    "to",
    "from",
    "smarthost",
    "server",
    "auth",
    "max_body_bytes",
    "state",
    "environment",
    "severity",
    "from_labels",
    "aliases",
    "default",
    "dedup",
    "send_resolved",
    "match",
    "group_wait",
    "<<",
]
keys = st.sampled_from(KEYS) | st.text(min_size=1, max_size=10)
plain = st.sampled_from(SCALARS) | st.text(max_size=12)


@st.composite
def yaml_lines(draw: st.DrawFn) -> str:
    """Block YAML of random keys and scalars at random depths: mostly parses, rarely fits."""
    lines = []
    depth = 0
    for _ in range(draw(st.integers(1, 25))):
        depth = draw(st.integers(0, min(depth + 1, 6)))
        indent = "  " * depth
        key = draw(keys)
        shape = draw(st.sampled_from(["key", "scalar", "item", "item-key", "flow"]))
        if shape == "key":
            lines.append(f"{indent}{key}:")
        elif shape == "scalar":
            lines.append(f"{indent}{key}: {draw(plain)}")
        elif shape == "item":
            lines.append(f"{indent}- {draw(plain)}")
        elif shape == "item-key":
            lines.append(f"{indent}- {key}: {draw(plain)}")
        else:
            items = ", ".join(
                f"{draw(keys)}: {draw(plain)}" for _ in range(draw(st.integers(0, 3)))
            )
            lines.append(f"{indent}{key}: {{{items}}}")
    return "\n".join(lines) + "\n"


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | plain,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def example_with_edits(draw: st.DrawFn) -> str:
    """The documented example with a few lines removed, repeated, swapped or rewritten."""
    lines = EXAMPLE.splitlines()
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "repeat", "swap", "value", "indent", "chars"]))
        if edit == "drop":
            del lines[at]
        elif edit == "repeat":
            lines.insert(at, lines[at])
        elif edit == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif edit == "value" and ":" in lines[at]:
            lines[at] = lines[at].split(":", 1)[0] + ": " + draw(plain)
        elif edit == "indent":
            lines[at] = " " * draw(st.integers(0, 7)) + lines[at].lstrip()
        else:
            cut = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:cut] + draw(st.text(max_size=3)) + lines[at][cut:]
        if not lines:
            break
    return "\n".join(lines) + "\n"


config_texts = (
    yaml_lines()
    | example_with_edits()
    | yaml_values.map(lambda value: yaml.safe_dump(value, default_flow_style=None))
    | st.text(max_size=200)
    | st.sampled_from(["", "\n", "---\n---\n", "\t", "a: &x [*x]\n", "%YAML 1.1\n--- 1\n"])
)


@FUZZ
@given(text=config_texts)
def test_every_config_text_is_a_config_or_problems_each_with_a_place(text: str) -> None:
    assert_config_or_placed_problems(text)


def test_the_documented_example_still_loads() -> None:
    assert isinstance(load(EXAMPLE), Config)


# --- YAML as Go reads it -----------------------------------------------------------------


def config_with(fragment: str) -> str:
    base = """
    receivers:
      - {name: stdout, log: {}}
    route:
      receiver: stdout
    """
    return textwrap.dedent(base) + textwrap.dedent(fragment)


def interval(text: str) -> TimeIntervals:
    verdict = load(config_with(text))
    assert isinstance(verdict, Config), verdict
    return TimeIntervals.from_config(verdict.time_intervals)


def test_an_unquoted_clock_time_is_the_time_of_day_not_a_base_60_number() -> None:
    intervals = interval(
        """
        time_intervals:
          - name: mornings
            time_intervals:
              - times: [{start_time: 10:00, end_time: 12:30}]
        """
    )
    assert intervals.contains("mornings", datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    assert intervals.contains("mornings", datetime(2026, 11, 26, 12, 29, tzinfo=UTC))
    assert not intervals.contains("mornings", datetime(2026, 11, 26, 9, 59, tzinfo=UTC))
    assert not intervals.contains("mornings", datetime(2026, 11, 26, 12, 30, tzinfo=UTC))


@pytest.mark.parametrize("text", ["1:30.5", "190:20:30", "2026-01-01", "2026-01-01T10:00:00Z"])
def test_base_60_numbers_and_timestamps_stay_the_text_they_are(text: str) -> None:
    verdict = load(config_with(f"time_intervals: [{{name: {text}, time_intervals: []}}]\n"))
    assert isinstance(verdict, Config), verdict
    assert verdict.time_intervals[0].name == text


@pytest.mark.parametrize(
    ("text", "value"),
    [("yes", True), ("Yes", True), ("on", True), ("ON", True), ("true", True)]
    + [("no", False), ("off", False), ("Off", False), ("false", False)],
)
def test_yes_no_on_off_are_booleans_where_a_boolean_belongs(text: str, value: bool) -> None:
    verdict = load(config_with(f"dedup: {{send_resolved: {text}}}\n"))
    assert isinstance(verdict, Config), verdict
    assert verdict.dedup.send_resolved is value


def test_yes_where_text_belongs_is_refused_at_its_place_not_read_as_true() -> None:
    # Go's yaml would keep the text "yes"; this loader asks for quotes instead of guessing.
    verdict = load(config_with("time_intervals: [{name: yes, time_intervals: []}]\n"))
    assert isinstance(verdict, ConfigError)
    assert verdict.problems == [
        "fuzz.yaml:6:25: time_intervals[0].name: expected a string, got a boolean"
    ]


@pytest.mark.parametrize(("text", "value"), [("0o17", 15), ("0x400", 1024), ("2048", 2048)])
def test_octal_and_hex_integers_are_read_as_go_reads_them(text: str, value: int) -> None:
    verdict = load(config_with(f"server: {{max_body_bytes: {text}}}\n"))
    assert isinstance(verdict, Config), verdict
    assert verdict.server.max_body_bytes == value


def test_a_leading_zero_in_a_day_or_month_is_decimal_as_in_alertmanager() -> None:
    # Alertmanager reads these as text and then as decimal numbers: 010 is October.
    intervals = interval(
        """
        time_intervals:
          - name: q4
            time_intervals:
              - {months: [010, 011, 012], days_of_month: [01, 015]}
        """
    )
    assert intervals.contains("q4", datetime(2026, 10, 15, tzinfo=UTC))
    assert intervals.contains("q4", datetime(2026, 12, 1, tzinfo=UTC))
    assert not intervals.contains("q4", datetime(2026, 8, 15, tzinfo=UTC))
    assert not intervals.contains("q4", datetime(2026, 10, 13, tzinfo=UTC))
