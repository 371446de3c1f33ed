"""The one semantic pass over routes.yaml: what the schema cannot say on its own.

It runs on the plain data the YAML file was read into (before or despite schema errors), so
that every problem of a file is found in one go, and names each problem by its path into
the config; the loader turns paths into `file:line:col`. Whatever passes here and the schema
is safe for the builders (route tree, time intervals, inhibition): they do not check again.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jinja2
import jinja2.sandbox
from pydantic import ValidationError

from router.config.schema import Loc, TimeIntervalSpec
from router.routing.matchers import is_label_name, parse_matchers
from router.routing.timeintervals import check_time_interval

# Called once per problem with the path of the value it is about.
Report = Callable[[Loc, str], None]


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or an empty string."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_semantics(data: Mapping[str, Any], report: Report) -> None:
    """Report every semantic problem of a config read from YAML (schema problems aside)."""
    receivers = _receivers(data, report)
    intervals = _time_intervals(data, report)
    _route(data.get("route"), ("route",), receivers, intervals, report)
    _inhibit_rules(data, report)
    _enrich(data, report)


def _items(value: object) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _matcher_list(value: object, loc: Loc, report: Report) -> None:
    for i, item in _items(value):
        if isinstance(item, str):
            try:
                parse_matchers(item)
            except ValueError as exc:
                report((*loc, i), str(exc))


def _unique_names(items: object, section: str, what: str, report: Report) -> dict[str, int]:
    names: dict[str, int] = {}
    for i, item in _items(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in names:
            report(
                (section, i, "name"),
                f"duplicate {what} name {name!r} (also {section}[{names[name]}])",
            )
        else:
            names[name] = i
    return names


def _receivers(data: Mapping[str, Any], report: Report) -> set[str] | None:
    receivers = data.get("receivers")
    if not isinstance(receivers, list):
        # Reported by the schema; without a list, receiver references cannot be checked.
        return None
    return set(_unique_names(receivers, "receivers", "receiver", report))


def _time_intervals(data: Mapping[str, Any], report: Report) -> set[str]:
    intervals = data.get("time_intervals")
    names = _unique_names(intervals, "time_intervals", "time interval", report)
    for i, interval in _items(intervals):
        if not isinstance(interval, dict):
            continue
        for j, entry in _items(interval.get("time_intervals")):
            try:
                spec = TimeIntervalSpec.model_validate(entry)
            except ValidationError:
                continue  # the schema reports it
            for sub_loc, message in check_time_interval(spec):
                report(("time_intervals", i, "time_intervals", j, *sub_loc), message)
    return set(names)


def _route(
    route: object,
    loc: Loc,
    receivers: set[str] | None,
    intervals: set[str],
    report: Report,
) -> None:
    if not isinstance(route, dict):
        return
    receiver = route.get("receiver")
    if len(loc) == 1:
        # Alertmanager's rules for the root: it catches everything and has somewhere to send it.
        if receiver is None or receiver == "":
            report((*loc, "receiver"), "the root route must have a receiver")
        if route.get("matchers"):
            report((*loc, "matchers"), "the root route must not have any matchers")
        if route.get("continue") is True:
            report((*loc, "continue"), "the root route cannot have continue set")
    elif receiver == "":
        report((*loc, "receiver"), "empty receiver: leave the key out to inherit the parent's")
    if isinstance(receiver, str) and receiver and receivers is not None:
        if receiver not in receivers:
            report(
                (*loc, "receiver"),
                f"undefined receiver {receiver!r} used in route"
                + did_you_mean(receiver, sorted(receivers)),
            )
    _matcher_list(route.get("matchers"), (*loc, "matchers"), report)
    for field in ("mute_time_intervals", "active_time_intervals"):
        for i, name in _items(route.get(field)):
            if isinstance(name, str) and name not in intervals:
                report(
                    (*loc, field, i),
                    f"undefined time interval {name!r}" + did_you_mean(name, sorted(intervals)),
                )
    for i, child in _items(route.get("routes")):
        _route(child, (*loc, "routes", i), receivers, intervals, report)


def _inhibit_rules(data: Mapping[str, Any], report: Report) -> None:
    for i, rule in _items(data.get("inhibit_rules")):
        if not isinstance(rule, dict):
            continue
        for side in ("source_matchers", "target_matchers"):
            _matcher_list(rule.get(side), ("inhibit_rules", i, side), report)
        for j, name in _items(rule.get("equal")):
            if isinstance(name, str) and not is_label_name(name):
                report(("inhibit_rules", i, "equal", j), f"{name!r} is not a valid label name")


def _enrich(data: Mapping[str, Any], report: Report) -> None:
    enrich = data.get("enrich")
    if not isinstance(enrich, dict):
        return
    grafana = enrich.get("grafana")
    if isinstance(grafana, dict):
        for i, dashboard in _items(grafana.get("dashboards")):
            if isinstance(dashboard, dict):
                _matcher_list(
                    dashboard.get("matchers"),
                    ("enrich", "grafana", "dashboards", i, "matchers"),
                    report,
                )
    loki = enrich.get("loki")
    query = loki.get("query") if isinstance(loki, dict) else None
    if isinstance(query, str):
        try:
            jinja2.sandbox.SandboxedEnvironment().parse(query)
        except jinja2.TemplateSyntaxError as exc:
            report(
                ("enrich", "loki", "query"),
                f"invalid jinja2 template: {exc.message} (template line {exc.lineno})",
            )
