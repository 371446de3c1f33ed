"""Runs route test files: each case's labels through the real route tree, time intervals
and inhibit rules of a routes.yaml, compared with what the case expects."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from router.config.loader import ConfigError, Document, load_config
from router.config.schema import Config
from router.config.validate import did_you_mean
from router.ingest.normalize import normalize
from router.routetest.cases import Case, RouteTestFile, read_test_file
from router.routing.inhibit import Inhibitor
from router.routing.timeintervals import TimeIntervals
from router.routing.tree import RouteTree


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the router would do with one alert."""

    notified: tuple[str, ...]
    muted: tuple[str, ...]
    # The rule's name and the firing alert (as the case gave it) it inhibits with; None
    # when not inhibited.
    inhibited_by: tuple[str, Mapping[str, str]] | None


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    # One `expected ..., got ...` per expectation that did not hold.
    failures: tuple[str, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class FileRun:
    """One test file: its results, or the problems that kept it (or its config) from running."""

    path: str
    config: str
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Routing:
    """A config compiled the way the service compiles it, asked about single alerts."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.tree = RouteTree.from_config(config)
        self.intervals = TimeIntervals.from_config(config.time_intervals)
        self.inhibitor = Inhibitor.from_config(config.inhibit_rules)
        self.receivers = [r.name for r in config.receivers]
        self.rules = [rule.name for rule in self.inhibitor.rules]

    def labels(self, given: Mapping[str, str]) -> dict[str, str]:
        """The labels a webhook alert with `given` labels has once normalized."""
        return self.normalized(self.config, given)

    @staticmethod
    def normalized(config: Config, given: Mapping[str, str]) -> dict[str, str]:
        """The labels a webhook alert with `given` labels has once `config` normalized them."""
        source = given.get("source", "alertmanager")
        severity = None
        if source == "argocd":
            severity = config.argocd.severity.get(given.get("alertname", ""))
        return normalize(given, config, source=source, severity=severity)

    def evaluate(self, case: Case) -> Outcome:
        labels = self.labels(case.labels)
        notified: list[str] = []
        muted: list[str] = []
        for route in self.tree.match(labels):
            reason = self.intervals.mute_reason(route, case.at) if case.at is not None else None
            (muted if reason else notified).append(route.receiver)
        inhibited_by = None
        if case.firing:
            firing = [self.labels(f) for f in case.firing]
            found = self.inhibitor.inhibition(labels, firing)
            if found is not None:
                rule, source = found
                given = next(g for g, f in zip(case.firing, firing, strict=True) if f is source)
                inhibited_by = (rule.name, given)
                notified = []
        return Outcome(tuple(notified), tuple(muted), inhibited_by)


def _names(names: Sequence[str]) -> str:
    return "[" + ", ".join(names) + "]"


def _labels(labels: Mapping[str, str]) -> str:
    pairs = (f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items()))
    return "{" + ", ".join(pairs) + "}"


def _inhibition(outcome: Outcome, *, source: bool = True) -> str:
    if outcome.inhibited_by is None:
        return "not inhibited"
    rule, labels = outcome.inhibited_by
    return f"inhibited by {rule}" + (f" (firing {_labels(labels)})" if source else "")


def compare(case: Case, outcome: Outcome) -> tuple[str, ...]:
    """One `expected ..., got ...` per expectation of `case` that `outcome` does not meet."""
    expect = case.expect
    failures: list[str] = []
    if list(outcome.notified) != expect.receivers:
        got = _names(outcome.notified)
        context = []
        if outcome.muted:
            context.append(f"muted {_names(outcome.muted)}")
        if outcome.inhibited_by is not None:
            context.append(_inhibition(outcome, source=False))
        if context:
            got += f" ({'; '.join(context)})"
        failures.append(f"expected receivers {_names(expect.receivers)}, got {got}")
    if expect.muted is not None and set(outcome.muted) != set(expect.muted):
        failures.append(f"expected muted {_names(expect.muted)}, got {_names(outcome.muted)}")
    wanted = expect.inhibited
    if wanted is not None:
        rule = outcome.inhibited_by[0] if outcome.inhibited_by is not None else None
        if wanted is False and rule is not None:
            failures.append(f"expected not inhibited, got {_inhibition(outcome)}")
        elif wanted is True and rule is None:
            failures.append("expected inhibited, got not inhibited")
        elif isinstance(wanted, str) and rule != wanted:
            failures.append(f"expected inhibited by {wanted}, got {_inhibition(outcome)}")
    return tuple(failures)


def _unknown_names(document: Document[RouteTestFile], routing: Routing) -> list[str]:
    """Names the cases expect that the config does not have (a typo would fail forever)."""
    problems: list[str] = []

    def check(loc: tuple[str | int, ...], name: str, known: list[str], what: str) -> None:
        if name not in known:
            problems.append(
                document.problem(
                    loc, f"no {what} {name!r} in the config" + did_you_mean(name, known)
                )
            )

    for i, case in enumerate(document.value.tests):
        expect = case.expect
        for j, name in enumerate(expect.receivers):
            check(("tests", i, "expect", "receivers", j), name, routing.receivers, "receiver")
        for j, name in enumerate(expect.muted or []):
            check(("tests", i, "expect", "muted", j), name, routing.receivers, "receiver")
        if isinstance(expect.inhibited, str):
            check(
                ("tests", i, "expect", "inhibited"), expect.inhibited, routing.rules, "inhibit rule"
            )
    return problems


def config_for(path: Path, test_file: RouteTestFile, override: str | None, default: str) -> str:
    """Which routes.yaml a test file runs against: --config, else its `config:` (relative
    to the test file), else the default config path."""
    if override:
        return override
    if test_file.config:
        return str(path.parent / test_file.config)
    return default


class Runner:
    """Runs test files; each config is loaded (strictly: every team file too) once."""

    def __init__(
        self,
        *,
        config: str | None,
        default_config: str,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.override = config
        self.default_config = default_config
        self.timer = timer
        self._routing: dict[str, Routing | list[str]] = {}

    def _load(self, path: str) -> Routing | list[str]:
        if path not in self._routing:
            try:
                config = load_config(path)
            except ConfigError as exc:
                self._routing[path] = list(exc.problems)
            else:
                problems = config.team_problems
                self._routing[path] = problems if problems else Routing(config)
        return self._routing[path]

    def run(self, path: Path) -> FileRun:
        """Every case of one test file, or why it could not run."""
        try:
            document = read_test_file(path)
        except ConfigError as exc:
            return FileRun(str(path), self.override or "", errors=list(exc.problems))
        config = config_for(path, document.value, self.override, self.default_config)
        run = FileRun(str(path), config)
        routing = self._load(config)
        if isinstance(routing, list):
            run.errors = routing
            return run
        run.errors = _unknown_names(document, routing)
        if run.errors:
            return run
        for case in document.value.tests:
            started = self.timer()
            failures = compare(case, routing.evaluate(case))
            run.results.append(Result(case.name, failures, self.timer() - started))
        return run
