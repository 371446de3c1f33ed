"""One import: an Alertmanager config's text in, routes.yaml and alertmanager.yml text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from router.importer.deadman import dead_man_heartbeats
from router.importer.document import Malformed
from router.importer.forward import forwarding_config
from router.importer.receivers import Kept, convert_receivers
from router.importer.report import EnvRef, Report
from router.importer.routes import convert_inhibit_rules, convert_routes, convert_time_intervals
from router.importer.source import Located, NotAConfig, locate

DEFAULT_ROUTER_URL = "http://alert-router.monitoring.svc.cluster.local:8080"
# Top-level keys of an Alertmanager config that the import reads.
_KNOWN = frozenset(
    {
        "global",
        "route",
        "receivers",
        "inhibit_rules",
        "templates",
        "time_intervals",
        "mute_time_intervals",
    }
)


class Unreadable(Exception):
    """The input is no Alertmanager config the import can read; `problems` say why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import writes, and what it tells."""

    routes_yaml: str
    alertmanager_yml: str
    report: Report
    wrapper: str
    routes: int
    receivers: int
    # Per receiver, what stays in Alertmanager (and why).
    kept: dict[str, list[Kept]]

    def kept_lines(self) -> list[str]:
        """One line per receiver that keeps integrations in Alertmanager."""
        return [
            f"  {name}: " + "; ".join(f"{k.key}[{k.index}] ({k.why})" for k in items)
            for name, items in self.kept.items()
        ]


class _Dumper(yaml.SafeDumper):
    """Block style, with short lists of plain values (matchers, names) on one line."""


class _Quoted(str):
    """A text written in single quotes: matchers read as they do in the README."""


def _represent_list(dumper: _Dumper, data: list[Any]) -> yaml.Node:
    flow = bool(data) and all(isinstance(item, str | EnvRef) for item in data)
    if flow:
        data = [
            _Quoted(item) if isinstance(item, str) and ('"' in item or "=" in item) else item
            for item in data
        ]
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_quoted(dumper: _Dumper, data: _Quoted) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="'")


def _represent_ref(dumper: _Dumper, data: EnvRef) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", f"${{{data.name}}}")


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(EnvRef, _represent_ref)
_Dumper.add_representer(_Quoted, _represent_quoted)


def _escape(value: object) -> object:
    """Every text value with `${` written `$${`, so that routes.yaml reads it literally."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, list):
        return [_escape(item) for item in value]
    if isinstance(value, dict):
        return {key: _escape(item) for key, item in value.items()}
    return value


def _dump(data: dict[str, object]) -> str:
    text: str = yaml.dump(
        _escape(data),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    return text


def _count_routes(route: dict[str, object]) -> int:
    children = route.get("routes")
    if not isinstance(children, list):
        return 1
    return 1 + sum(_count_routes(child) for child in children if isinstance(child, dict))


def _free_name(wanted: str, taken: set[str]) -> str:
    name = wanted
    counter = 2
    while name in taken:
        name = f"{wanted}-{counter}"
        counter += 1
    return name


def _comment(lines: list[str]) -> str:
    # A note quoting a value with a line break must not end the comment.
    return "".join(f"# {line}".replace("\n", "\\n").rstrip() + "\n" for line in lines)


def import_config(text: str, filename: str, router_url: str = DEFAULT_ROUTER_URL) -> Imported:
    """Convert one Alertmanager config; raises Unreadable when there is none to convert."""
    try:
        located = locate(text, filename)
    except NotAConfig as exc:
        raise Unreadable(str(exc).splitlines()) from None
    report = Report(located.where)
    try:
        return _convert(located, filename, report, router_url, text)
    except Malformed as exc:
        raise Unreadable([f"{located.where}:{exc.line}: {exc}"]) from None


def _convert(
    located: Located, filename: str, report: Report, router_url: str, text: str = ""
) -> Imported:
    root, wrapper = located.root, located.wrapper
    for key, line in located.siblings:
        if located.where == filename:
            report.note(line, f"{key}: not carried over (only alertmanager.yaml is imported)")
        else:
            report.note(
                0,
                f"{key} (line {line} of {filename}): not carried over (only alertmanager.yaml"
                " is imported)",
            )
    for key, value in root.items("config"):
        if key not in _KNOWN:
            report.note(
                value.line, f"{key}: not carried over (kept in the forwarding alertmanager.yml)"
            )
    templates = root.get("templates")
    if templates is not None and templates.strings("templates"):
        report.note(
            templates.line,
            "templates: Go templates are not carried over (alert-router writes messages from its"
            " own jinja2 templates/)",
        )
    receivers = convert_receivers(root, report)
    intervals, interval_names = convert_time_intervals(root, report)
    silence = _free_name("always", interval_names)
    tree = convert_routes(root, report, receivers, interval_names, silence)
    if receivers.muted:
        intervals.append({"name": silence, "time_intervals": [{}]})
    inhibit_rules = convert_inhibit_rules(root, report, receivers)

    data: dict[str, object] = {
        # The alert's own env and severity labels, unchanged: no aliases and no default, so
        # that a missing label stays missing and every route matches what it matched before.
        "environment": {"from_labels": ["env"], "default": ""},
        "severity": {"from_labels": ["severity"], "default": ""},
        "dedup": {"repeat_interval": tree.repeat_interval, "send_resolved": tree.send_resolved},
        "receivers": receivers.configs,
        "route": tree.route,
    }
    if intervals:
        data["time_intervals"] = intervals
    if inhibit_rules:
        data["inhibit_rules"] = inhibit_rules
    heartbeats = dead_man_heartbeats(root, text, report)
    if heartbeats:
        data["heartbeats"] = heartbeats

    origin = report.where + (f" ({wrapper})" if wrapper else "")
    header = [
        f"Imported by `alert-router import` from {origin}.",
        "The forwarding alertmanager.yml beside this file keeps Alertmanager's grouping, timers",
        "and silences and sends every group here; this file routes, mutes and inhibits as the",
        "original did. env and severity are the alerts' own labels, as Alertmanager saw them.",
    ]
    notes = report.lines()
    if notes:
        header += ["", "Not carried over, or carried over differently:"]
        header += [f"  {line}" for line in notes]
    if report.secrets:
        header += ["", "Environment variables to set (values are in the original file):"]
        header += report.secret_lines()
    routes_yaml = _comment(header) + "\n" + _dump(data)
    forward_lines = [
        f"Written by `alert-router import` from {origin}.",
        "The same grouping and timers, every alert sent to alert-router, which routes it",
        "with routes.yaml (receivers, continue, mute/active time intervals and inhibit",
        "rules moved there).",
    ]
    if receivers.kept:
        forward_lines += [
            "",
            "Integrations alert-router does not send to stay here: the first route below is",
            "the original tree (continue: true) for these receivers, which get the same",
            "alerts as before; the time intervals, inhibit rules, templates and global",
            "settings they may use stay too (the inhibit rules now also hold back what is",
            "sent to alert-router, which inhibits the same alerts itself). Kept:",
            *(
                f"  {name}: " + ", ".join(f"{k.key}[{k.index}]" for k in items)
                for name, items in receivers.kept.items()
            ),
        ]
    alertmanager_yml = forwarding_config(root, router_url, _comment(forward_lines), receivers.kept)
    return Imported(
        routes_yaml=routes_yaml,
        alertmanager_yml=alertmanager_yml,
        report=report,
        wrapper=wrapper,
        routes=_count_routes(tree.route),
        receivers=len(receivers.configs),
        kept=receivers.kept,
    )
