"""`alert-router import`: real Alertmanager configs in; routes.yaml and a forwarding
alertmanager.yml out, that route every label set as Alertmanager did (checked against amtool
on hundreds of generated label sets per config) and pass both `check` and `amtool`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import io
import json
import random
import re
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.cli import main
from router.config.loader import load_config
from router.config.schema import Config
from router.importer.forward import KEPT_NOTHING, RECEIVER
from router.importer.goregex import UntranslatableRegex, translate
from router.importer.matchers import parse_classic, parse_source_matchers
from router.ingest.normalize import normalize
from router.matchers import Matcher
from router.routing.inhibit import Inhibitor
from router.routing.timeintervals import TimeIntervals
from router.routing.tree import Route, RouteTree
from tests.conftest import running
from tests.fakes.webhook_sink import WebhookSink
from tests.test_alertmanager_e2e import Alertmanager, alertmanager_binary

DATA = Path(__file__).parent / "data" / "alertmanager"
AMTOOL = "amtool"
# Alertmanager configs that amtool 0.25 reads as they are.
PLAIN = sorted(p.name for p in DATA.glob("*.yml"))
# Configs wrapped in a Kubernetes Secret or Helm values: amtool gets the config inside.
WRAPPED = ["kube-prometheus-stack-values.yaml", "secret-data.yaml", "secret-stringdata.yaml"]
_SECRET_LINE = re.compile(r"^  ([A-Z_][A-Z0-9_]*)  ")


@dataclass(frozen=True)
class Imported:
    code: int
    out: str
    err: str
    out_dir: Path
    env: dict[str, str]

    @property
    def routes(self) -> Path:
        return self.out_dir / "routes.yaml"

    @property
    def forward(self) -> Path:
        return self.out_dir / "alertmanager.yml"

    def config(self) -> Config:
        return load_config(self.routes, env=self.env)

    def kept(self) -> list[str]:
        """The receivers the forwarding alertmanager.yml still delivers to itself."""
        doc: dict[str, Any] = yaml.safe_load(self.forward.read_text())
        names = [r["name"] for r in doc["receivers"]]
        return [n for n in names if n not in (RECEIVER, KEPT_NOTHING)]


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def import_file(source: Path, out_dir: Path, *extra: str) -> Imported:
    code, out, err = run_cli("import", str(source), "--out-dir", str(out_dir), *extra)
    names = [m.group(1) for line in out.splitlines() if (m := _SECRET_LINE.match(line))]
    return Imported(code, out, err, out_dir, {name: f"placeholder-{name}" for name in names})


def import_text(tmp_path: Path, text: str, name: str = "alertmanager.yml") -> Imported:
    source = tmp_path / name
    source.write_text(text)
    return import_file(source, tmp_path / "out")


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


def amtool_check(path: Path) -> None:
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def plain_config(name: str, tmp_path: Path) -> Path:
    """The Alertmanager config amtool can read, for a file in DATA."""
    path = DATA / name
    if name not in WRAPPED:
        return path
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    if "alertmanager" in doc:
        config = yaml.safe_dump(doc["alertmanager"]["config"], sort_keys=False)
    elif "stringData" in doc:
        config = doc["stringData"]["alertmanager.yaml"]
    else:
        config = base64.b64decode(doc["data"]["alertmanager.yaml"]).decode()
    out = tmp_path / f"plain-{name}.yml"
    out.write_text(config)
    return out


# --- label sets: every matcher's values, values that miss them, absent labels -------------

_parser: Any = importlib.import_module("re._parser")
_constants: Any = importlib.import_module("re._constants")


def _branch_samples(items: Any, depth: int = 0) -> list[str]:
    """Strings built along a parsed Python regex: one per alternative, per repeat count."""
    if depth > 8:
        return [""]
    parts: list[list[str]] = []
    for op, arg in items:
        parts.append(_item_samples(op, arg, depth) or [""])
    # The first choice everywhere, then each position varied once: linear, not a product.
    base = [options[0] for options in parts]
    out = ["".join(base)]
    for index, options in enumerate(parts):
        for option in options[1:4]:
            out.append("".join(base[:index] + [option] + base[index + 1 :]))
    return out


def _class_char(arg: Any) -> list[str]:
    negate = any(op is _constants.NEGATE for op, _ in arg)
    members: list[str] = []
    for op, value in arg:
        if op is _constants.LITERAL:
            members.append(chr(value))
        elif op is _constants.RANGE:
            members += [chr(value[0]), chr(value[1])]
        elif op is _constants.CATEGORY:
            # Non-ASCII members too: Go's classes are ASCII, Python's Unicode.
            members += {
                "CATEGORY_DIGIT": ["7", "\u0663"],
                "CATEGORY_SPACE": [" ", "\u00a0"],
            }.get(str(value), ["q", "\u00e9"])
    if not negate:
        return members[:3]
    return [c for c in "x-Q7 é" if c not in members][:1]


def _item_samples(op: Any, arg: Any, depth: int) -> list[str]:
    if op is _constants.LITERAL:
        return [chr(arg)]
    if op is _constants.NOT_LITERAL:
        return ["x" if chr(arg) != "x" else "y"]
    if op is _constants.ANY:
        return ["a"]
    if op is _constants.IN:
        return _class_char(arg)
    if op is _constants.BRANCH:
        return [s for branch in arg[1] for s in _branch_samples(branch, depth + 1)[:3]]
    if op is _constants.SUBPATTERN:
        return _branch_samples(arg[3], depth + 1)
    if op in (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT):
        low, high, body = arg
        inner = _branch_samples(body, depth + 1)
        counts = [low] + ([low + 1] if high is _constants.MAXREPEAT or high > low else [])
        return [inner[0] * count for count in counts] + [inner[-1] * max(low, 1)]
    return [""]


def regex_samples(pattern: str) -> list[str]:
    """Strings the regex fully matches, and near misses."""
    found = _branch_samples(_parser.parse(pattern))
    misses = [s + "x" for s in found[:2]] + [s[1:] for s in found[:2] if s] + ["zz", "A"]
    return [s for s in dict.fromkeys(found + misses) if s.isprintable()]


def _paths(route: Route, above: tuple[Matcher, ...] = ()) -> Iterator[tuple[Matcher, ...]]:
    path = above + route.matchers
    yield path
    for child in route.routes:
        yield from _paths(child, path)


def _pools(tree: RouteTree) -> dict[str, list[str | None]]:
    pools: dict[str, list[str | None]] = {}
    for node in tree.walk():
        for matcher in node.matchers:
            pool = pools.setdefault(matcher.name, [None, "other-value"])
            if matcher.op in ("=", "!="):
                values = [matcher.value, matcher.value.upper(), matcher.value + "-x"]
            else:
                values = regex_samples(matcher.value)
            pool += [v for v in values if v not in pool]
    return pools


def _pick(pool: Sequence[str | None], matchers: Sequence[Matcher], name: str) -> str | None:
    for value in pool:
        labels = {} if value is None else {name: value}
        if all(m.matches(labels) for m in matchers if m.name == name):
            return value
    return pool[0]


def label_sets(config: Config, count: int, seed: int) -> list[dict[str, str]]:
    """Per route: labels that reach it and, per matcher on the way, labels that miss only
    that one; then random mixes of every value (absent included)."""
    tree = RouteTree.from_config(config)
    pools = _pools(tree)
    found: dict[frozenset[tuple[str, str]], dict[str, str]] = {}

    def add(labels: Mapping[str, str | None]) -> None:
        clean = {k: v for k, v in labels.items() if v is not None}
        found.setdefault(frozenset(clean.items()), clean)

    add({})
    for path in _paths(tree.root):
        names = sorted({m.name for m in path})
        hit = {name: _pick(pools[name], path, name) for name in names}
        add(hit)
        for matcher in path:
            for value in pools[matcher.name]:
                labels = {} if value is None else {matcher.name: value}
                if not matcher.matches(labels):
                    add({**hit, matcher.name: value})
                    break
    rng = random.Random(seed)
    names = sorted(pools)
    for _ in range(count):
        add({name: rng.choice(pools[name]) for name in names if rng.random() < 0.7})
    return list(found.values())


def amtool_receivers(config: Path, labels: Mapping[str, str]) -> list[str]:
    args = [f'{k}="{_escape(v)}"' for k, v in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={config}", *args)
    assert result.returncode == 0, result.stderr
    # amtool names a receiver once per route that reaches it; alert-router notifies a
    # receiver once per group: compare with repeats dropped, first place kept.
    return list(dict.fromkeys(result.stdout.strip().split(",")))


def _kind(key: str) -> str:
    """The integration a `*_configs` key names, as alert-router calls it."""
    kind = key.removesuffix("_configs")
    return "msteams" if kind == "msteamsv2" else kind


def integrations(config: Path) -> dict[str, Counter[tuple[str, str]]]:
    """Per receiver of an Alertmanager config, its integrations as (receiver, kind) counts."""
    doc: dict[str, Any] = yaml.safe_load(config.read_text())
    found: dict[str, Counter[tuple[str, str]]] = {}
    for receiver in doc.get("receivers") or []:
        name = receiver["name"]
        found[name] = Counter(
            {
                (name, _kind(key)): len(items or [])
                for key, items in receiver.items()
                if key.endswith("_configs") and items
            }
        )
    return found


def delivered(
    by_receiver: Mapping[str, Counter[tuple[str, str]]], names: Sequence[str]
) -> Counter[tuple[str, str]]:
    """The integrations an Alertmanager config notifies for the receivers amtool named
    (the forwarder to alert-router aside)."""
    total: Counter[tuple[str, str]] = Counter()
    for name in names:
        if name not in (RECEIVER, KEPT_NOTHING):
            total += by_receiver[name]
    return total


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def cli_receivers(routes: Path, labels: Mapping[str, str]) -> list[str]:
    code, out, err = run_cli(
        "routes", "test", "--config", str(routes), *(f"{k}={v}" for k, v in labels.items())
    )
    assert code == 0, err
    return out.splitlines()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", PLAIN + WRAPPED)
def test_imported_routes_name_the_receivers_amtool_names_for_every_label_set(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported = import_file(DATA / name, tmp_path / "out")
    assert imported.code == 0, imported.err
    for key, value in imported.env.items():
        monkeypatch.setenv(key, value)
    original = plain_config(name, tmp_path)
    code, out, err = run_cli("check", str(imported.routes))
    assert code == 0, err
    # No problem; only the warnings that the imported file sets no credentials.
    assert all(line.startswith("warning: ") for line in err.splitlines()), err
    assert out.startswith("OK: ")
    amtool_check(original)
    amtool_check(imported.forward)

    config = imported.config()
    tree = RouteTree.from_config(config)
    cases = label_sets(config, count=min(300, 20 * len(tree)), seed=len(name))
    with ThreadPoolExecutor(max_workers=4) as pool:
        expected = list(pool.map(lambda labels: amtool_receivers(original, labels), cases))
        kept = bool(imported.kept())
        by_am = (
            list(pool.map(lambda labels: amtool_receivers(imported.forward, labels), cases))
            if kept
            else [[RECEIVER] for _ in cases]
        )
    got = [list(dict.fromkeys(r.receiver for r in tree.match(labels))) for labels in cases]
    differ = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert not differ, f"{len(differ)} of {len(cases)} label sets differ, e.g. {differ[:5]}"
    # Nothing is lost and nothing sent twice: per label set, what the forwarding
    # Alertmanager still delivers itself plus what alert-router delivers is, integration
    # by integration, what the original delivered.
    before, after = integrations(original), integrations(imported.forward)
    served = {r.name: r.integration for r in config.receivers if r.integration != "log"}
    for labels, names, am_names, ours in zip(cases, expected, by_am, got, strict=True):
        wanted = delivered(before, names)
        by_router = Counter((n, served[n]) for n in ours if n in served)
        assert delivered(after, am_names) + by_router == wanted, labels
    # The command itself prints the same as the tree it is built on.
    for labels, names in list(zip(cases, expected, strict=True))[:: max(1, len(cases) // 8)]:
        assert cli_receivers(imported.routes, labels) == names
    # At least one label set per route (a root alone has one: no labels to vary).
    assert len(cases) >= len(tree)


# --- reading Alertmanager's syntax --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{foo = "bar", dings != "bums", }', [("foo", "=", "bar"), ("dings", "!=", "bums")]),
        ("foo=bar,dings!=bums", [("foo", "=", "bar"), ("dings", "!=", "bums")]),
        ('quote="She said: \\"Hi, all!\\""', [("quote", "=", 'She said: "Hi, all!"')]),
        ('statuscode=~"5.."', [("statuscode", "=~", "5..")]),
        # The classic parser keeps a backslash it does not know as it is.
        ('path=~"a\\.b"', [("path", "=~", "a\\.b")]),
        ("severity =~ warning|info", [("severity", "=~", "warning|info")]),
        ("a=b c", [("a", "=", "b c")]),
        ("a=", [("a", "=", "")]),
    ],
)
def test_matchers_are_read_as_alertmanager_reads_them(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert [(m.name, m.op, m.value) for m in parse_source_matchers(text)] == expected


def test_matchers_only_the_new_parser_reads_are_read_by_it() -> None:
    # A quoted label name is new syntax: the classic parser refuses it, Alertmanager's
    # default mode then reads it with the new parser.
    with pytest.raises(ValueError):
        parse_classic('"team"="db"')
    assert [(m.name, m.value) for m in parse_source_matchers('"team"="db"')] == [("team", "db")]
    # Where both read a text, the classic reading wins (as in Alertmanager): `\t` stays a
    # backslash and a t.
    assert [m.value for m in parse_source_matchers('a="x\\ty"')] == ["x\\ty"]
    with pytest.raises(ValueError, match="bad matcher"):
        parse_source_matchers("=oops")


@pytest.mark.parametrize(
    ("go", "python"),
    [
        ("foo1|foo2|baz", "foo1|foo2|baz"),
        ("(?i)crit.*", "(?i)crit.*"),
        # Go's flags hold to the end of the group, across alternatives.
        ("a(?i)b|c", "a(?i:b)|(?i:c)"),
        ("5\\d\\d", "5[0-9][0-9]"),
        ("[[:alpha:]_]+", "[A-Za-z_]+"),
        ("[^\\D]", "[0-9]"),
        ("\\Qa.b*\\E+", "a\\.b\\*+"),
        ("x{,3}", "x\\{,3}"),
        ("x{2,3}", "x{2,3}"),
        ("[a-z[]", "[a-z\\[]"),
        ("a\\z", "a\\Z"),
        ("[\\w.-]+", "[0-9A-Za-z_.\\-]+"),
        ("\\x{41}\\101", "AA"),
        ("(?P<n>a)(?:b)", "(a)(?:b)"),
    ],
)
def test_go_regexes_are_rewritten_where_python_reads_them_differently(go: str, python: str) -> None:
    assert translate(go) == python


@pytest.mark.parametrize("go", ["\\p{Greek}", "(?U)a+", "[a\\D]", "a(?=b)", "\\1"])
def test_go_regexes_python_cannot_express_are_refused(go: str) -> None:
    with pytest.raises(UntranslatableRegex):
        translate(go)


def test_a_route_whose_regex_cannot_be_carried_never_matches_and_is_reported(
    tmp_path: Path,
) -> None:
    imported = import_text(
        tmp_path,
        """\
route:
  receiver: default
  routes:
    - matchers: ['script=~"\\\\p{Greek}+"']
      receiver: greek
receivers:
  - name: default
    webhook_configs: [{url: "http://hooks.example.com/a"}]
  - name: greek
    webhook_configs: [{url: "http://hooks.example.com/b"}]
""",
    )
    assert imported.code == 0
    assert f"{tmp_path / 'alertmanager.yml'}:4: route matcher script=~" in imported.out
    assert "Unicode classes" in imported.out
    tree = RouteTree.from_config(imported.config())
    assert [r.receiver for r in tree.match({"script": "αβγ"})] == ["default"]


# --- what routes.yaml carries -------------------------------------------------------------

TIMES = """\
route:
  receiver: default
  routes:
    - matchers: ['team="db"']
      receiver: db
      mute_time_intervals: [nights, maintenance]
      routes:
        - matchers: ['severity="critical"']
          receiver: db-pager
    - matchers: ['team="web"']
      receiver: web
      active_time_intervals: [office]
time_intervals:
  - name: nights
    time_intervals:
      - times:
          - start_time: 22:00
            end_time: 24:00
          - start_time: 00:00
            end_time: 06:00
  - name: office
    time_intervals:
      - times:
          - {start_time: 09:00, end_time: 17:00}
        weekdays: ['monday:friday']
        location: Europe/Berlin
        months: ~
mute_time_intervals:
  - name: maintenance
    time_intervals:
      - days_of_month: [1]
        years: []
receivers:
  - {name: default, email_configs: [{to: a@example.com, from: am@example.com, smarthost: "mx:25"}]}
  - {name: db, email_configs: [{to: b@example.com, from: am@example.com, smarthost: "mx:25"}]}
  - {name: db-pager, email_configs: [{to: c@example.com, from: am@example.com, smarthost: "mx:25"}]}
  - {name: web, email_configs: [{to: d@example.com, from: am@example.com, smarthost: "mx:25"}]}
"""


def _muted(config: Config, labels: dict[str, str], at: str) -> list[tuple[str, bool]]:
    tree = RouteTree.from_config(config)
    intervals = TimeIntervals.from_config(config.time_intervals)
    instant = datetime.fromisoformat(at).astimezone(UTC)
    return [(r.receiver, intervals.muted(r, instant)) for r in tree.match(labels)]


def test_time_intervals_are_clock_times_and_apply_to_the_route_that_names_them_only(
    tmp_path: Path,
) -> None:
    imported = import_text(tmp_path, TIMES)
    assert imported.code == 0, imported.err
    amtool_check(tmp_path / "alertmanager.yml")
    config = imported.config()
    names = {i.name: i for i in config.time_intervals}
    # `start_time: 22:00` unquoted is the clock time, not a YAML 1.1 base-60 number.
    assert names["nights"].time_intervals[0].times is not None
    assert [(t.start_time, t.end_time) for t in names["nights"].time_intervals[0].times] == [
        (22 * 60, 24 * 60),
        (0, 6 * 60),
    ]
    # The legacy top-level mute_time_intervals are time intervals like the others.
    assert "maintenance" in names
    night = "2026-03-10T23:30:00+00:00"
    assert _muted(config, {"team": "db"}, night) == [("db", True)]
    # In Alertmanager a child route is not muted by its parent's intervals.
    assert _muted(config, {"team": "db", "severity": "critical"}, night) == [("db-pager", False)]
    # `months: ~` is "any month"; `years: []` is an empty list, which contains no year.
    assert _muted(config, {"team": "db"}, "2026-03-01T12:00:00+00:00") == [("db", False)]
    assert _muted(config, {"team": "web"}, "2026-03-10T10:00:00+01:00") == [("web", False)]
    assert _muted(config, {"team": "web"}, "2026-03-14T10:00:00+01:00") == [("web", True)]


def test_both_styles_of_inhibit_rules_mute_what_alertmanager_mutes(tmp_path: Path) -> None:
    imported = import_text(
        tmp_path,
        """\
route: {receiver: default}
receivers: [{name: default, webhook_configs: [{url: "http://hooks.example.com/"}]}]
inhibit_rules:
  - source_match: {severity: critical}
    target_match_re: {severity: warning|info}
    equal: [alertname]
  - source_matchers: ['alertname="ClusterDown"']
    target_matchers: ['cluster=~".+"']
    equal: [cluster]
  - target_matchers: ['alertname="InfoInhibitor"']
""",
    )
    assert imported.code == 0, imported.err
    inhibitor = Inhibitor.from_config(imported.config().inhibit_rules)
    critical = {"alertname": "Disk", "severity": "critical"}
    assert inhibitor.inhibited_by({"alertname": "Disk", "severity": "info"}, [critical])
    assert not inhibitor.inhibited_by({"alertname": "CPU", "severity": "info"}, [critical])
    # The regex is anchored, as in Alertmanager: "warnings" is no "warning".
    assert not inhibitor.inhibited_by({"alertname": "Disk", "severity": "warnings"}, [critical])
    down = {"alertname": "ClusterDown", "cluster": "eu"}
    assert inhibitor.inhibited_by({"alertname": "X", "cluster": "eu"}, [down])
    assert not inhibitor.inhibited_by({"alertname": "X", "cluster": "us"}, [down])
    # An empty source list matches every alert, as in Alertmanager.
    assert inhibitor.inhibited_by({"alertname": "InfoInhibitor"}, [{"alertname": "Any"}])


RECEIVERS = """\
global:
  smtp_smarthost: smtp.example.com:587
  smtp_from: alertmanager@example.com
  smtp_auth_username: am
  smtp_auth_password: global-smtp-pass
  smtp_require_tls: false
  slack_api_url: https://hooks.slack.com/services/T0/B0/global-hook
route:
  receiver: slack-global
  routes:
    - {matchers: ['r="1"'], receiver: slack-own}
    - {matchers: ['r="2"'], receiver: slack-app}
    - {matchers: ['r="3"'], receiver: mail-465}
    - {matchers: ['r="4"'], receiver: hook}
    - {matchers: ['r="5"'], receiver: pager}
    - {matchers: ['r="6"'], receiver: both}
    - {matchers: ['r="7"'], receiver: nothing}
receivers:
  - name: slack-global
    slack_configs:
      - channel: '#alerts'
        title: '{{ .CommonLabels.alertname }}'
  - name: slack-own
    slack_configs:
      - api_url: https://hooks.slack.com/services/T0/B1/own-hook
        send_resolved: true
  - name: slack-app
    slack_configs:
      - api_url: https://slack.example.com/api/chat.postMessage
        channel: '#app'
        http_config:
          authorization: {credentials: xoxb-app-token}
  - name: mail-465
    email_configs:
      - to: 'Ops <ops@example.com>, dev@example.com'
        smarthost: smtp.example.com:465
        auth_password: own-smtp-pass
        send_resolved: true
  - name: hook
    webhook_configs:
      - url: https://hooks.example.com/alerts?key=hook-key
        http_config: {authorization: {credentials: hook-bearer}}
        max_alerts: 10
  - name: pager
    pagerduty_configs: [{routing_key: pd-routing-key}]
  - name: both
    email_configs: [{to: both@example.com}]
    webhook_configs: [{url: "https://hooks.example.com/both"}]
  - name: nothing
"""
SECRET_VALUES = (
    "global-smtp-pass",
    "global-hook",
    "own-hook",
    "xoxb-app-token",
    "own-smtp-pass",
    "hook-key",
    "hook-bearer",
    "pd-routing-key",
)


def test_receivers_carry_slack_email_and_webhook_with_global_defaults(tmp_path: Path) -> None:
    imported = import_text(tmp_path, RECEIVERS)
    assert imported.code == 0, imported.err
    amtool_check(tmp_path / "alertmanager.yml")
    config = imported.config()
    by_name = {r.name: r for r in config.receivers}
    assert set(imported.env) == {
        "SMTP_PASSWORD",
        "SLACK_WEBHOOK_URL",
        "SLACK_OWN_SLACK_WEBHOOK_URL",
        "SLACK_APP_SLACK_TOKEN",
        "MAIL_465_SMTP_PASSWORD",
        "HOOK_WEBHOOK_URL",
        "HOOK_WEBHOOK_TOKEN",
        "PAGER_PAGERDUTY_ROUTING_KEY",
    }
    global_slack = by_name["slack-global"].slack
    assert global_slack is not None and global_slack.webhook_url is not None
    assert global_slack.webhook_url.get_secret_value() == "placeholder-SLACK_WEBHOOK_URL"
    assert global_slack.channel == "#alerts"
    app = by_name["slack-app"].slack
    assert app is not None and app.token is not None
    assert (app.token.get_secret_value(), app.api_url) == (
        "placeholder-SLACK_APP_SLACK_TOKEN",
        "https://slack.example.com/api/",
    )
    mail = by_name["mail-465"].email
    assert mail is not None
    assert mail.to == ["ops@example.com", "dev@example.com"]
    assert (mail.smarthost, mail.username, mail.tls, mail.starttls) == (
        "smtp.example.com:465",
        "am",
        True,
        False,
    )
    assert mail.password.get_secret_value() == "placeholder-MAIL_465_SMTP_PASSWORD"
    hook = by_name["hook"].webhook
    assert hook is not None and hook.bearer_token is not None
    assert hook.bearer_token.get_secret_value() == "placeholder-HOOK_WEBHOOK_TOKEN"
    pager = by_name["pager"].pagerduty
    assert pager is not None
    assert pager.routing_key.get_secret_value() == "placeholder-PAGER_PAGERDUTY_ROUTING_KEY"
    # A receiver's first integration comes here; its second stays in Alertmanager.
    assert by_name["both"].email is not None
    where = tmp_path / "alertmanager.yml"
    assert f"{where}:22: receiver 'slack-global': slack_configs[0].title: not carried" in (
        imported.out
    )
    assert (
        f"{where}:48: receiver 'both': webhook_configs[0]: stays in Alertmanager: an"
        " alert-router receiver has one integration (it took email_configs[0])"
    ) in imported.out
    assert imported.kept() == ["both"]
    forward: dict[str, Any] = yaml.safe_load(imported.forward.read_text())
    [both] = [r for r in forward["receivers"] if r["name"] == "both"]
    assert both == {"name": "both", "webhook_configs": [{"url": "https://hooks.example.com/both"}]}
    assert f"{where}:43: receiver 'hook': webhook_configs[0].max_alerts: not carried" in (
        imported.out
    )


def test_send_resolved_follows_each_receivers_alertmanager_default(tmp_path: Path) -> None:
    config = import_text(tmp_path, RECEIVERS).config()
    tree = RouteTree.from_config(config)
    resolved = {r.receiver: r.send_resolved for n in range(1, 8) for r in tree.match({"r": str(n)})}
    assert tree.match({})[0].send_resolved is False  # Slack's default
    assert resolved == {
        "slack-own": True,
        "slack-app": False,
        "mail-465": True,
        "hook": True,  # webhooks send resolves unless told not to
        "pager": True,
        "both": False,
        "nothing": True,
    }


def test_a_receiver_without_integrations_stays_silent(tmp_path: Path) -> None:
    config = import_text(tmp_path, RECEIVERS).config()
    assert _muted(config, {"r": "7"}, "2026-06-01T12:00:00+00:00") == [("nothing", True)]
    assert _muted(config, {"r": "5"}, "2026-06-01T12:00:00+00:00") == [("pager", False)]


def test_no_secret_reaches_the_output_or_the_written_files(tmp_path: Path) -> None:
    imported = import_text(tmp_path, RECEIVERS)
    written = imported.out + imported.routes.read_text() + imported.forward.read_text()
    for secret in SECRET_VALUES:
        assert secret not in written
    for name in imported.env:
        assert f"${{{name}}}" in imported.routes.read_text()
        assert f"  {name}  " in imported.out


def test_slack_app_tokens_of_newer_alertmanagers_become_token_receivers(tmp_path: Path) -> None:
    imported = import_text(
        tmp_path,
        """\
global:
  slack_app_token_file: /etc/alertmanager/slack-token
route: {receiver: app}
receivers:
  - name: app
    slack_configs:
      - channel: '#ops'
  - name: own
    slack_configs:
      - channel: '#own'
        app_token: xoxb-own
        app_url: https://slack.example.com/api/chat.postMessage
""",
    )
    assert imported.code == 0, imported.err
    receivers = {r.name: r.slack for r in imported.config().receivers}
    app, own = receivers["app"], receivers["own"]
    assert app is not None and app.token is not None and app.api_url == "https://slack.com/api/"
    assert own is not None and own.api_url == "https://slack.example.com/api/"
    assert re.search(
        r"^  SLACK_TOKEN +global.slack_app_token_file, line 2 \(Alertmanager read it from"
        r" the file /etc/alertmanager/slack-token\)$",
        imported.out,
        re.M,
    ), imported.out
    assert "xoxb-own" not in imported.routes.read_text()


def test_missing_env_and_severity_route_as_alertmanager_routes_them(tmp_path: Path) -> None:
    imported = import_text(
        tmp_path,
        """\
route:
  receiver: default
  routes:
    - {matchers: ['env="prod"'], receiver: prod}
    - {matchers: ['env=""'], receiver: no-env}
    - {matchers: ['severity!~"warning|info"', 'team="x"'], receiver: loud}
receivers:
  - {name: default, webhook_configs: [{url: "http://hooks.example.com/"}]}
  - {name: prod, webhook_configs: [{url: "http://hooks.example.com/"}]}
  - {name: no-env, webhook_configs: [{url: "http://hooks.example.com/"}]}
  - {name: loud, webhook_configs: [{url: "http://hooks.example.com/"}]}
""",
    )
    config = imported.config()
    tree = RouteTree.from_config(config)
    source = tmp_path / "alertmanager.yml"
    for labels in (
        {"alertname": "A"},
        {"alertname": "A", "environment": "production"},
        {"alertname": "A", "env": "Production", "team": "x"},
        {"alertname": "A", "env": "prod", "severity": "page", "team": "x"},
        {"alertname": "A", "team": "x", "severity": "warning"},
    ):
        # What the service routes on: the alert's labels after normalization.
        routed = normalize(labels, config, source="alertmanager")
        got = list(dict.fromkeys(r.receiver for r in tree.match(routed)))
        assert got == amtool_receivers(source, labels), labels


def test_forwarding_config_keeps_the_route_tree_and_sends_everything_to_the_router(
    tmp_path: Path,
) -> None:
    # teams.yml without its Opsgenie integration: alert-router serves every receiver.
    source = tmp_path / "teams.yml"
    source.write_text(
        (DATA / "teams.yml")
        .read_text()
        .replace("    opsgenie_configs:\n      - api_key: og-key\n", "")
    )
    imported = import_file(source, tmp_path / "out", "--router-url", "http://router:9000/")
    assert imported.code == 0, imported.err
    forward: dict[str, Any] = yaml.safe_load(imported.forward.read_text())
    assert forward["receivers"] == [
        {
            "name": "alert-router",
            "webhook_configs": [
                {"url": "http://router:9000/webhook/alertmanager", "send_resolved": True}
            ],
        }
    ]
    assert "inhibit_rules" not in forward and "time_intervals" not in forward
    text = imported.forward.read_text()
    for moved in ("continue:", "mute_time_intervals", "active_time_intervals", "smtp_"):
        assert moved not in text

    # The same tree (so the same route keys, which make Alertmanager's groupKeys), every
    # node now with the one receiver.
    def shape(path: Path) -> list[str]:
        result = amtool("config", "routes", "show", f"--config.file={path}")
        assert result.returncode == 0, result.stderr
        return [
            re.sub(r"\s+(receiver: \S+|continue: true)", "", line)
            for line in result.stdout.splitlines()
        ]

    assert shape(imported.forward) == shape(source)
    receivers = amtool("config", "routes", "test", f"--config.file={imported.forward}", "a=b")
    assert receivers.stdout.strip() == "alert-router"


def test_continue_is_reported_where_it_changes_grouping(tmp_path: Path) -> None:
    imported = import_file(DATA / "teams.yml", tmp_path / "out")
    notes = [line for line in imported.out.splitlines() if ": continue:" in line]
    # Line 25 (group_by ['...']) groups differently from the routes after it; the
    # continue routes deeper down share their siblings' grouping.
    assert notes == [
        f"{DATA / 'teams.yml'}:25: continue: an alert that matches here and a later route"
        " reaches the later route's receiver grouped as here (the forwarding alertmanager.yml"
        " sends each alert once, grouped by the first route it matches; that route's group_by"
        " and timers apply)"
    ]


def test_values_with_dollar_braces_are_read_literally(tmp_path: Path) -> None:
    imported = import_text(
        tmp_path,
        """\
route:
  receiver: default
  routes:
    - {matchers: ['msg="cost ${HOME}"'], receiver: other}
receivers:
  - {name: default, webhook_configs: [{url: "http://hooks.example.com/"}]}
  - {name: other, webhook_configs: [{url: "http://hooks.example.com/"}]}
""",
    )
    tree = RouteTree.from_config(imported.config())
    assert [r.receiver for r in tree.match({"msg": "cost ${HOME}"})] == ["other"]


# --- what is recognised, and what is refused ----------------------------------------------


def test_a_secrets_literal_block_is_reported_with_the_files_own_lines(tmp_path: Path) -> None:
    imported = import_file(DATA / "secret-stringdata.yaml", tmp_path / "out")
    assert imported.code == 0, imported.err
    where = DATA / "secret-stringdata.yaml"
    lines = where.read_text().splitlines()
    assert imported.out.splitlines()[:2] == [
        f"{where}:25: receiver 'slack-default': slack_configs[0].text: not carried over"
        " (alert-router lays out its own Slack message, from templates/)",
        f"{where}:30: receiver 'oncall': slack_configs[0]: stays in Alertmanager: an"
        " alert-router receiver has one integration (it took pagerduty_configs[0])",
    ]
    assert lines[24].strip().startswith("text:")
    assert lines[29].strip() == "- channel: '#oncall'"
    secrets = [line.split()[0] for line in imported.out.splitlines() if "line 28" in line]
    assert secrets == ["ONCALL_PAGERDUTY_ROUTING_KEY"]


_WRAPPED_CONFIG = """route:
  receiver: a
receivers:
  - name: a
    webhook_configs: [{url: "http://hooks.example.com/"}]
"""


def _indent(text: str, by: int) -> str:
    return "".join(" " * by + line + "\n" for line in text.splitlines())


@pytest.mark.parametrize(
    ("text", "wrapper"),
    [
        (
            "alertmanager:\n  config:\n" + _indent(_WRAPPED_CONFIG, 4),
            "Helm values, alertmanager.config",
        ),
        (
            "alertmanager:\n  stringConfig: |\n" + _indent(_WRAPPED_CONFIG, 4),
            "Helm values, alertmanager.stringConfig",
        ),
        ("replicaCount: 1\nconfig:\n" + _indent(_WRAPPED_CONFIG, 2), "Helm values, config"),
        (
            'alertmanagerFiles:\n  "alertmanager.yml":\n' + _indent(_WRAPPED_CONFIG, 4),
            'Helm values, alertmanagerFiles."alertmanager.yml"',
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: am}\ndata:\n"
            "  alertmanager.yml: |\n" + _indent(_WRAPPED_CONFIG, 4),
            "Kubernetes ConfigMap am",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n---\n"
            "apiVersion: v1\nkind: Secret\nmetadata: {name: am}\nstringData:\n"
            "  alertmanager.yaml: |\n" + _indent(_WRAPPED_CONFIG, 4),
            "Kubernetes Secret am",
        ),
    ],
)
def test_helm_values_and_kubernetes_objects_that_wrap_a_config_are_read(
    tmp_path: Path, text: str, wrapper: str
) -> None:
    imported = import_text(tmp_path, text, name="wrapped.yaml")
    assert imported.code == 0, imported.err
    assert f"(read from {wrapper});" in imported.out
    config = imported.config()
    assert [r.name for r in config.receivers] == ["a"]


def test_matchers_on_the_source_label_are_reported(tmp_path: Path) -> None:
    imported = import_text(
        tmp_path,
        """\
route:
  receiver: a
  routes: [{matchers: ['source="prometheus-eu"'], receiver: a}]
receivers: [{name: a, webhook_configs: [{url: "http://hooks.example.com/"}]}]
inhibit_rules: [{source_matchers: ['source="x"'], target_matchers: ['b="c"']}]
""",
    )
    where = tmp_path / "alertmanager.yml"
    assert f'{where}:3: route matcher source="prometheus-eu": alert-router sets' in imported.out
    assert f'{where}:5: inhibit rule matcher source="x": alert-router sets' in imported.out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\n"
            "metadata: {name: team-a}\nspec: {route: {receiver: x}}\n",
            "is a prometheus-operator AlertmanagerConfig resource",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: other}\ndata: {token: eA==}\n",
            "Kubernetes Secret other has no alertmanager.yaml key in stringData or data",
        ),
        ("alertmanager:\n  alertmanagerSpec: {replicas: 2}\n", "no Alertmanager config here"),
        ("route: [1, 2\n", "YAML syntax error"),
        ("", "the file is empty"),
        ("route:\n  receiver: nowhere\nreceivers: [{name: a}]\n", "undefined receiver 'nowhere'"),
        ("route:\n  matchers: ['a=\"b\"']\n", "root route must specify a default receiver"),
    ],
)
def test_what_is_no_readable_config_is_refused_with_exit_1(
    tmp_path: Path, text: str, message: str
) -> None:
    imported = import_text(tmp_path, text, name="input.yaml")
    assert imported.code == 1
    assert message in imported.err
    assert imported.err.startswith(str(tmp_path / "input.yaml"))
    assert not (tmp_path / "out").exists()


def test_an_unreadable_file_exits_1(tmp_path: Path) -> None:
    code, out, err = run_cli("import", str(tmp_path / "missing.yml"), "--out-dir", str(tmp_path))
    assert (code, out) == (1, "")
    assert "cannot read the file" in err


# --- the forwarding Alertmanager and alert-router together ---------------------------------

E2E = """\
route:
  receiver: catch-all
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="Watchdog"']
      receiver: blackhole
    - matchers: ['team="shop"']
      receiver: shop
      continue: true
    - matchers: ['severity="critical"']
      receiver: oncall
      group_by: [alertname, instance]
receivers:
  - name: catch-all
    webhook_configs: [{url: "http://hooks.invalid/catch-all"}]
  - name: shop
    webhook_configs: [{url: "http://hooks.invalid/shop"}]
  - name: oncall
    webhook_configs: [{url: "http://hooks.invalid/oncall"}]
  - name: blackhole
"""


def _am_alert(**labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": labels,
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_forwarding_alertmanager_and_the_imported_routes_notify_each_receiver_once(
    tmp_path: Path, state_url: str
) -> None:
    binary = alertmanager_binary()
    source = tmp_path / "alertmanager.yml"
    source.write_text(E2E)
    async with WebhookSink() as sink:
        first = import_file(source, tmp_path / "out")
        assert first.code == 0, first.err
        env = {
            "CATCH_ALL_WEBHOOK_URL": sink.url("/catch-all"),
            "SHOP_WEBHOOK_URL": sink.url("/shop"),
            "ONCALL_WEBHOOK_URL": sink.url("/oncall"),
        }
        assert set(first.env) == set(env)
        routes = tmp_path / "routes.yaml"
        routes.write_text(first.routes.read_text() + f"state: {{url: '{state_url}'}}\n")
        async with running(load_config(routes, env=env)) as service:
            forward = import_file(source, tmp_path / "fwd", "--router-url", service.url)
            am = Alertmanager(binary, tmp_path / "am", service.url)
            am.config.write_text(forward.forward.read_text())
            await am.start()
            try:
                await am.post_alerts(
                    [
                        _am_alert(alertname="Checkout", team="shop", severity="critical"),
                        _am_alert(alertname="Watchdog"),
                    ]
                )

                async def checkout_delivered() -> bool:
                    records = await service.records()
                    return {r["receiver"] for r in records if r["state"] == "sent"} == {
                        "shop",
                        "oncall",
                    } and any(r["reason"] == "muted" for r in records)

                deadline = asyncio.get_running_loop().time() + 60
                while not await checkout_delivered():
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"{await service.records()}\n{am.log()}")
                    await asyncio.sleep(0.2)
                # Alertmanager holds the alert in one group (continue no longer forks it),
                # so the router got it once and told each of its receivers once.
                async with service.http.get(am.url + "/api/v2/alerts/groups") as resp:
                    groups = await resp.json()
                checkout = [g for g in groups if g["labels"].get("alertname") == "Checkout"]
                assert len(checkout) == 1
                assert checkout[0]["receiver"]["name"] == "alert-router"
                records = await service.records()
                shown = sorted((r["receiver"], r["state"], r["reason"]) for r in records)
                assert [r for r in shown if r[0] != "blackhole"] == [
                    ("oncall", "sent", "first"),
                    ("shop", "sent", "first"),
                ]
                assert [r[2] for r in shown if r[0] == "blackhole"] == ["muted"]
                assert sorted(r.path for r in sink.requests) == ["/oncall", "/shop"]
            finally:
                am.stop()


def test_a_global_setting_without_equivalent_is_reported_once(tmp_path: Path) -> None:
    imported = import_file(DATA / "upstream-conf.good.yml", tmp_path / "out")
    hello = [line for line in imported.out.splitlines() if "smtp_hello" in line]
    assert hello == [
        f"{DATA / 'upstream-conf.good.yml'}:7: global.smtp_hello: not carried over"
        " (alert-router greets with its own host name)"
    ]


# E2E with a second webhook for oncall: it stays in Alertmanager (a receiver here has one).
E2E_KEPT = E2E.replace(
    '    webhook_configs: [{url: "http://hooks.invalid/oncall"}]',
    "    webhook_configs:\n"
    '      - url: "http://hooks.invalid/oncall"\n'
    '      - url: "SINK/oncall-kept"',
)
assert E2E_KEPT != E2E


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_what_stays_in_alertmanager_is_delivered_there_and_the_rest_by_the_router(
    tmp_path: Path, state_url: str
) -> None:
    binary = alertmanager_binary()
    async with WebhookSink() as sink:
        source = tmp_path / "alertmanager.yml"
        source.write_text(E2E_KEPT.replace("SINK", sink.url("")))
        first = import_file(source, tmp_path / "out")
        assert first.code == 0, first.err
        # oncall's second webhook stays in Alertmanager (a receiver here has one).
        assert first.kept() == ["oncall"]
        env = {
            "CATCH_ALL_WEBHOOK_URL": sink.url("/catch-all"),
            "SHOP_WEBHOOK_URL": sink.url("/shop"),
            "ONCALL_WEBHOOK_URL": sink.url("/oncall"),
        }
        routes = tmp_path / "routes.yaml"
        routes.write_text(first.routes.read_text() + f"state: {{url: '{state_url}'}}\n")
        async with running(load_config(routes, env=env)) as service:
            forward = import_file(source, tmp_path / "fwd", "--router-url", service.url)
            am = Alertmanager(binary, tmp_path / "am", service.url)
            am.config.write_text(forward.forward.read_text())
            await am.start()
            try:
                await am.post_alerts(
                    [
                        _am_alert(alertname="Checkout", team="shop", severity="critical"),
                        _am_alert(alertname="Watchdog", severity="critical"),
                    ]
                )
                wanted = ["/oncall", "/oncall-kept", "/shop"]
                deadline = asyncio.get_running_loop().time() + 60
                while sorted({r.path for r in sink.requests}) != wanted:
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"{[r.path for r in sink.requests]}\n{am.log()}")
                    await asyncio.sleep(0.2)
                records = await service.wait_for_records(
                    lambda rs: (
                        {r["receiver"] for r in rs if r["state"] == "sent"} == {"shop", "oncall"}
                    )
                )
            finally:
                am.stop()
    [kept] = [r for r in sink.requests if r.path == "/oncall-kept"]
    # Alertmanager's own payload, for Checkout only (Watchdog still goes nowhere).
    assert kept.json["receiver"] == "oncall"
    assert [a["labels"]["alertname"] for a in kept.json["alerts"]] == ["Checkout"]
    ours = [r for r in sink.requests if r.path == "/oncall"]
    assert ours and "notificationId" in json.dumps(ours[0].json)
    assert sorted(r["receiver"] for r in records if r["state"] == "sent") == ["oncall", "shop"]
    assert all(r.path != "/catch-all" for r in sink.requests)


def test_pagerduty_and_teams_are_carried_and_what_cannot_be_stays_in_alertmanager(
    tmp_path: Path,
) -> None:
    imported = import_text(
        tmp_path,
        """\
global:
  pagerduty_url: https://events.eu.pagerduty.com/v2/enqueue
route:
  receiver: pd
  routes:
    - {matchers: ['r="1"'], receiver: pd-v1}
    - {matchers: ['r="2"'], receiver: teams}
    - {matchers: ['r="3"'], receiver: connector}
receivers:
  - name: pd
    pagerduty_configs:
      - routing_key: pd-key-0123456789abcdef01234567
        severity: critical
        description: '{{ .CommonAnnotations.summary }}'
  - name: pd-v1
    pagerduty_configs: [{service_key: v1-key}]
  - name: teams
    msteamsv2_configs: [{webhook_url: "https://prod.workflows.example/abc?sig=s3cret"}]
  - name: connector
    msteams_configs: [{webhook_url: "https://outlook.office.com/webhook/xyz"}]
    telegram_configs: [{bot_token: tg-token, chat_id: 42}]
""",
    )
    assert imported.code == 0, imported.err
    receivers = {r.name: r for r in imported.config().receivers}
    pd = receivers["pd"].pagerduty
    assert pd is not None
    assert (pd.severity, pd.url) == ("critical", "https://events.eu.pagerduty.com/v2/enqueue")
    teams, connector = receivers["teams"].msteams, receivers["connector"].msteams
    assert teams is not None and connector is not None
    assert teams.webhook_url.get_secret_value() == "placeholder-TEAMS_TEAMS_WEBHOOK_URL"
    # Events API v1 keys and Telegram stay in Alertmanager, which is told to keep them.
    assert receivers["pd-v1"].log is not None
    assert imported.kept() == ["pd-v1", "connector"]
    forward: dict[str, Any] = yaml.safe_load(imported.forward.read_text())
    kept = {r["name"]: r for r in forward["receivers"]}
    assert kept["pd-v1"]["pagerduty_configs"] == [{"service_key": "v1-key"}]
    assert list(kept["connector"]) == ["name", "telegram_configs"]
    assert forward["global"]["pagerduty_url"] == "https://events.eu.pagerduty.com/v2/enqueue"
    out = imported.out
    assert "pagerduty_configs[0].description: not carried over" in out
    assert (
        "receiver 'pd-v1': pagerduty_configs[0]: stays in Alertmanager: it uses service_key" in out
    )
    assert "msteams_configs[0]: an Office 365 connector (retired by Microsoft)" in out
    assert "telegram_configs[0]: stays in Alertmanager: an alert-router receiver has one" in out
    assert "Kept in Alertmanager" in out and "  connector: telegram_configs[0]" in out
    for secret in ("pd-key-0123456789abcdef01234567", "s3cret"):
        assert secret not in imported.routes.read_text() and secret not in out
    amtool_check(imported.forward)
