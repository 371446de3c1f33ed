"""Alertmanager's route tree, time intervals and inhibit rules in routes.yaml form.

Routing is Alertmanager's (depth first, first match unless `continue`, a node no child
matched delivers itself) in both, and receivers, `repeat_interval` and matchers inherit the
same way. Two settings differ and are written out explicitly where needed:
`mute_time_intervals` and `active_time_intervals` apply in Alertmanager to the route that
names them only, where routes.yaml hands them down to child routes; and `send_resolved` is
a setting of each of Alertmanager's integrations, of each route here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.durations import parse_duration
from router.importer.document import Malformed, Node
from router.importer.matchers import (
    SourceMatcher,
    UnsupportedMatcher,
    parse_source_matchers,
    to_router,
)
from router.importer.receivers import Receivers
from router.importer.report import Report
from router.matchers import is_label_name

Body = dict[str, object]

_ROUTE_KEYS = frozenset(
    {
        "receiver",
        "group_by",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "match",
        "match_re",
        "matchers",
        "continue",
        "routes",
        "mute_time_intervals",
        "active_time_intervals",
    }
)
_INTERVAL_FIELDS = ("weekdays", "days_of_month", "months", "years")
# What matches every alert, for an Alertmanager matcher list left empty.
MATCH_ALL = 'alertname=~".*"'
# Alertmanager's route defaults.
_DEFAULT_GROUPING = ((), "30s", "5m", "4h")


@dataclass(frozen=True, slots=True)
class _Inherited:
    """What a node hands its children, in routes.yaml's terms."""

    receiver: str
    send_resolved: bool
    mute: tuple[str, ...] = ()
    active: tuple[str, ...] = ()


# group_by (sorted; ("...",) for all labels), group_wait, group_interval, repeat_interval.
Grouping = tuple[tuple[str, ...], str, str, str]


@dataclass(slots=True)
class _Grouped:
    """An Alertmanager route with its effective grouping, to see what `continue` changes."""

    grouping: Grouping
    continue_line: int | None
    children: list[_Grouped] = field(default_factory=list)

    def groupings(self) -> set[Grouping]:
        found = {self.grouping}
        for child in self.children:
            found |= child.groupings()
        return found


@dataclass(slots=True)
class RouteTree:
    """The converted tree and the root settings that go to `dedup:`."""

    route: Body
    repeat_interval: str
    send_resolved: bool


def _duration(node: Node, what: str) -> str:
    text = node.text(what)
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise Malformed(node.line, f"{what}: {text!r} is not a duration") from None
    if seconds == 0 and what != "group_wait":
        raise Malformed(node.line, f"{what} cannot be zero")
    return text if text != "0" else "0s"


class _Converter:
    def __init__(
        self, report: Report, receivers: Receivers, intervals: set[str], silence: str
    ) -> None:
        self.report = report
        self.receivers = receivers
        self.intervals = intervals
        # The time interval that mutes routes to receivers without integrations.
        self.silence = silence

    def matchers(self, node: Node, keys: tuple[str, str, str], what: str) -> list[str] | None:
        """The alert-router matchers of a route or an inhibit rule side; None if one of them
        cannot be carried over (noted)."""
        match_key, regex_key, matchers_key = keys
        found: list[tuple[SourceMatcher, int]] = []
        match = node.get(match_key)
        for name, value in match.items(match_key) if match is not None else []:
            found.append((SourceMatcher(name, "=", value.text(f"{match_key}.{name}")), value.line))
        regex = node.get(regex_key)
        for name, value in regex.items(regex_key) if regex is not None else []:
            found.append((SourceMatcher(name, "=~", value.text(f"{regex_key}.{name}")), value.line))
        listed = node.get(matchers_key)
        for item in listed.seq(matchers_key) if listed is not None else []:
            text = item.text(f"each item of {matchers_key}")
            try:
                parsed = parse_source_matchers(text)
            except ValueError as exc:
                raise Malformed(item.line, f"{matchers_key}: {exc}") from None
            found.extend((m, item.line) for m in parsed)
        out: list[str] = []
        carried = True
        for matcher, line in found:
            if matcher.name == "source":
                self.report.note(
                    line,
                    f"{what} matcher {matcher}: alert-router sets the label `source` itself"
                    " (`alertmanager` for every alert), so this matcher sees that value",
                )
            try:
                out.append(to_router(matcher))
            except UnsupportedMatcher as exc:
                self.report.note(line, f"{what} matcher {matcher}: not carried over: {exc}")
                carried = False
        return out if carried else None

    def interval_names(self, node: Node, key: str) -> tuple[str, ...]:
        value = node.get(key)
        names = tuple(value.strings(key)) if value is not None else ()
        for name in names:
            if name not in self.intervals:
                raise Malformed(
                    value.line if value else node.line,
                    f"undefined time interval {name!r} used in route",
                )
        return names

    def grouping(self, node: Node, parent: Grouping) -> Grouping:
        group_by, wait, interval, repeat = parent
        by = node.get("group_by")
        if by is not None and not by.is_null:
            labels = by.strings("group_by")
            group_by = ("...",) if "..." in labels else tuple(sorted(set(labels)))
        for index, key in ((1, "group_wait"), (2, "group_interval"), (3, "repeat_interval")):
            value = node.get(key)
            if value is not None and not value.is_null:
                text = _duration(value, key)
                if index == 1:
                    wait = text
                elif index == 2:
                    interval = text
                else:
                    repeat = text
        return group_by, wait, interval, repeat

    def node(
        self, node: Node, parent: _Inherited, parent_grouping: Grouping, root: bool
    ) -> tuple[Body, _Inherited, _Grouped]:
        if not node.is_map:
            raise Malformed(node.line, "a route must be a mapping")
        for key, value in node.items("route"):
            if key not in _ROUTE_KEYS:
                self.report.note(value.line, f"route: {key}: not carried over")
        out: Body = {}
        receiver_node = node.get("receiver")
        receiver = receiver_node.text("receiver") if receiver_node is not None else ""
        if receiver and receiver not in self.receivers.send_resolved:
            assert receiver_node is not None
            raise Malformed(receiver_node.line, f"undefined receiver {receiver!r} used in route")
        if root and not receiver:
            raise Malformed(node.line, "root route must specify a default receiver")
        effective = receiver or parent.receiver
        matchers = self.matchers(node, ("match", "match_re", "matchers"), "route")
        if root and matchers:
            raise Malformed(node.line, "root route must not have any matchers")
        if matchers is None:
            # Never matches, so alerts go where they would have gone had this route not been
            # there; the report says so.
            matchers = [f'import_failed="{self.report.where}:{node.line}"']
            self.report.note(
                node.line,
                "route: never matches here (see the matcher above): fix its matchers by hand",
            )
        if matchers:
            out["matchers"] = matchers
        if receiver:
            out["receiver"] = receiver
        continue_node = node.get("continue")
        continues = continue_node.flag("continue") if continue_node is not None else False
        if continues and not root:
            out["continue"] = True
        repeat = node.get("repeat_interval")
        if repeat is not None and not repeat.is_null and not root:
            out["repeat_interval"] = _duration(repeat, "repeat_interval")
        send_resolved = self.receivers.send_resolved[effective]
        if send_resolved != parent.send_resolved and not root:
            out["send_resolved"] = send_resolved
        mute = self.interval_names(node, "mute_time_intervals")
        active = self.interval_names(node, "active_time_intervals")
        if root and (mute or active):
            raise Malformed(node.line, "root route must not have any mute or active time intervals")
        if effective in self.receivers.muted:
            mute = (*mute, self.silence)
        if mute != parent.mute:
            out["mute_time_intervals"] = list(mute)
        if active != parent.active:
            out["active_time_intervals"] = list(active)
        inherited = _Inherited(effective, send_resolved, mute, active)
        grouping = self.grouping(node, parent_grouping)
        grouped = _Grouped(grouping, node.key_line("continue") if continues else None)
        children: list[Body] = []
        routes = node.get("routes")
        for child in routes.seq("routes") if routes is not None else []:
            body, _, child_grouped = self.node(child, inherited, grouping, root=False)
            children.append(body)
            grouped.children.append(child_grouped)
        if children:
            out["routes"] = children
        return out, inherited, grouped

    def continue_notes(self, grouped: _Grouped) -> None:
        for index, child in enumerate(grouped.children):
            if child.continue_line is not None:
                later: set[Grouping] = set()
                for sibling in grouped.children[index + 1 :]:
                    later |= sibling.groupings()
                if later and len(child.groupings() | later) > 1:
                    self.report.note(
                        child.continue_line,
                        "continue: an alert that matches here and a later route reaches the"
                        " later route's receiver grouped as here (the forwarding"
                        " alertmanager.yml sends each alert once, grouped by the first route"
                        " it matches; that route's group_by and timers apply)",
                    )
            self.continue_notes(child)


def convert_routes(
    root: Node, report: Report, receivers: Receivers, intervals: set[str], silence: str
) -> RouteTree:
    """The route tree; Malformed for what Alertmanager itself would refuse."""
    route = root.get("route")
    if route is None or route.is_null:
        raise Malformed(root.line, "no routes provided")
    converter = _Converter(report, receivers, intervals, silence)
    top = _Inherited("", True)
    body, inherited, grouped = converter.node(route, top, _DEFAULT_GROUPING, root=True)
    converter.continue_notes(grouped)
    repeat = grouped.grouping[3]
    # The root's own send_resolved is dedup.send_resolved; its children compare with it.
    return RouteTree(body, repeat, inherited.send_resolved)


def convert_time_intervals(root: Node, report: Report) -> tuple[list[Body], set[str]]:
    """`time_intervals` and the legacy top-level `mute_time_intervals`, as one list."""
    out: list[Body] = []
    names: set[str] = set()
    for key in ("mute_time_intervals", "time_intervals"):
        section = root.get(key)
        for item in section.seq(key) if section is not None else []:
            name_node = item.get("name")
            name = name_node.text("time interval name") if name_node is not None else ""
            if not name:
                raise Malformed(item.line, f"missing name in {key}")
            if name in names:
                raise Malformed(item.line, f"time interval {name!r} is not unique")
            names.add(name)
            entries = item.get("time_intervals")
            specs = [
                _interval_spec(entry, report)
                for entry in (entries.seq("time_intervals") if entries is not None else [])
            ]
            out.append({"name": name, "time_intervals": specs})
    return out, names


def _interval_spec(entry: Node, report: Report) -> Body:
    spec: Body = {}
    for key, value in entry.items("time interval"):
        if value.is_null:
            continue  # null is "any", as an absent field
        if key == "times":
            ranges = []
            for item in value.seq("times"):
                start = item.get("start_time")
                end = item.get("end_time")
                ranges.append(
                    {
                        "start_time": start.text("start_time") if start is not None else "",
                        "end_time": end.text("end_time") if end is not None else "",
                    }
                )
            spec["times"] = ranges
        elif key in _INTERVAL_FIELDS:
            spec[key] = value.strings(key)
        elif key == "location":
            spec["location"] = value.text("location")
        else:
            report.note(value.line, f"time interval: {key}: not carried over")
    return spec


def convert_inhibit_rules(root: Node, report: Report, receivers: Receivers) -> list[Body]:
    """Both styles of inhibit rules; a rule that cannot be carried over is left out (noted):
    without it more is sent, never less."""
    converter = _Converter(report, receivers, set(), "")
    out: list[Body] = []
    rules = root.get("inhibit_rules")
    for rule in rules.seq("inhibit_rules") if rules is not None else []:
        if not rule.is_map:
            raise Malformed(rule.line, "an inhibit rule must be a mapping")
        source = converter.matchers(
            rule, ("source_match", "source_match_re", "source_matchers"), "inhibit rule"
        )
        target = converter.matchers(
            rule, ("target_match", "target_match_re", "target_matchers"), "inhibit rule"
        )
        equal_node = rule.get("equal")
        equal = equal_node.strings("equal") if equal_node is not None else []
        bad = [name for name in equal if not is_label_name(name)]
        for key, value in rule.items("inhibit rule"):
            if key not in {
                "source_match",
                "source_match_re",
                "source_matchers",
                "target_match",
                "target_match_re",
                "target_matchers",
                "equal",
            }:
                report.note(value.line, f"inhibit rule: {key}: not carried over")
        if source is None or target is None or bad:
            why = f"equal names {bad!r}, not label names alert-router has" if bad else "see above"
            report.note(rule.line, f"inhibit rule left out ({why}): nothing it would mute is muted")
            continue
        body: Body = {
            "source_matchers": source or [MATCH_ALL],
            "target_matchers": target or [MATCH_ALL],
        }
        if equal:
            body["equal"] = equal
        out.append(body)
    return out
