"""The one semantic pass over routes.yaml: what the schema cannot say on its own.

The schema parses every value (matchers, time intervals, durations, label names) where it
stands. What is left here relates parts of the file to each other: names unique, names
referred to defined, the root route and team mounts shaped as they must be. It runs on the
plain data the YAML file was read into, because it must also run when the schema failed
elsewhere: every problem of a file is found in one go. Problems are named by their path
into the config; the loader turns paths into `file:line:col`. Whatever passes here and the
schema is safe for the builders (route tree, time intervals, inhibition): they do not
check again.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.config.schema import Loc, format_loc
from router.durations import parse_duration
from router.matchers import is_label_name
from router.schedules.rotations import ONCALL_REFERENCE

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
    teams = _teams(data, receivers, report)
    mounts: dict[str, Loc] = {}
    _route(data.get("route"), ("route",), _Scope(receivers, intervals, teams, mounts), report)
    for name, i in teams.items():
        if name not in mounts:
            report(
                ("teams", i, "name"),
                f"team {name!r} is declared but not mounted: add `- team: {name}` to the"
                " routes of the route where its alerts belong",
            )
    _reserved_names(data, teams, report)
    _unique_names(data.get("inhibit_rules"), "inhibit_rules", "inhibit rule", report)
    _heartbeats(data, report)
    _interactivity(data, report)
    _alertmanagers(data, report)
    _oncall(data, report)
    for i, entry in _items(data.get("reports")):
        wanted = entry.get("receiver") if isinstance(entry, dict) else None
        if receivers is not None and isinstance(wanted, str) and wanted not in receivers:
            hint = did_you_mean(wanted, sorted(receivers))
            report(("reports", i, "receiver"), f"no receiver {wanted!r}{hint}")


def check_team_semantics(data: Mapping[str, Any], report: Report) -> None:
    """Report every semantic problem of a team file (schema problems aside); its names are
    its own: its routes refer to its receivers and time intervals only."""
    receivers = _receivers(data, report)
    intervals = _time_intervals(data, report)
    _route(data.get("route"), ("route",), _Scope(receivers, intervals, None, {}), report)
    _unique_names(data.get("inhibit_rules"), "inhibit_rules", "inhibit rule", report)
    _oncall_references(data, None, report)
    _heartbeats(data, report)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a route of one file may refer to."""

    receivers: set[str] | None
    intervals: set[str]
    # The root file's declared teams (name -> index); None in a team file.
    teams: dict[str, int] | None
    # Where each team is mounted, filled in while walking the tree.
    mounts: dict[str, Loc]


# The keys a mount (`- team: payments`) may have: the rest is the team file's business.
_MOUNT_KEYS = ("team", "continue")


def _teams(data: Mapping[str, Any], receivers: set[str] | None, report: Report) -> dict[str, int]:
    teams = data.get("teams")
    names = _unique_names(teams, "teams", "team", report)
    for i, team in _items(teams):
        if not isinstance(team, dict):
            continue
        fallback = team.get("fallback")
        if isinstance(fallback, str) and receivers is not None and fallback not in receivers:
            report(
                ("teams", i, "fallback"),
                f"undefined receiver {fallback!r} used as fallback (a receiver of this file)"
                + did_you_mean(fallback, sorted(receivers)),
            )
    return names


def _reserved_names(data: Mapping[str, Any], teams: Mapping[str, int], report: Report) -> None:
    """`payments/...` names belong to the payments team's file."""
    for section, what in (("receivers", "receiver"), ("time_intervals", "time interval")):
        for i, item in _items(data.get(section)):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or "/" not in name:
                continue
            team = name.split("/", 1)[0]
            if team in teams:
                report(
                    (section, i, "name"),
                    f"{what} name {name!r} is reserved for team {team!r}: names starting with"
                    f" {team}/ are that team's file's own",
                )


def _mount(route: Mapping[str, Any], loc: Loc, scope: _Scope, report: Report) -> None:
    name = route.get("team")
    if scope.teams is None:
        report(
            (*loc, "team"), "a team file cannot mount a team: teams are mounted in the root file"
        )
        return
    if len(loc) == 1:
        report((*loc, "team"), "the root route cannot be a team mount: mount teams in its routes")
        return
    for key in route:
        if key not in _MOUNT_KEYS:
            report(
                (*loc, key),
                f"a team mount takes only `team` and `continue`: {key} belongs in the team's"
                " file (its route)",
            )
    if not isinstance(name, str):
        return  # the schema reports it
    if name not in scope.teams:
        report(
            (*loc, "team"),
            f"undefined team {name!r}: declare it under teams"
            + did_you_mean(name, sorted(scope.teams)),
        )
    elif name in scope.mounts:
        report(
            (*loc, "team"),
            f"team {name!r} is mounted twice (also at {format_loc(scope.mounts[name])})",
        )
    else:
        scope.mounts[name] = loc


def _items(value: object) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


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
    return set(_unique_names(data.get("time_intervals"), "time_intervals", "time interval", report))


def _route(route: object, loc: Loc, scope: _Scope, report: Report) -> None:
    if not isinstance(route, dict):
        return
    if "team" in route:
        _mount(route, loc, scope, report)
        return
    receivers, intervals = scope.receivers, scope.intervals
    receiver = route.get("receiver")
    if len(loc) == 1 and scope.teams is None:
        # A team's route is its subtree's top: the mount in the root file gives its
        # matchers (the team's scope) and `continue`.
        if receiver is None or receiver == "":
            report((*loc, "receiver"), "the team's route must have a receiver: the team's default")
        if route.get("matchers"):
            report(
                (*loc, "matchers"),
                "the team's route must not have matchers: the team's scope is its matchers"
                " in the root file",
            )
        if "continue" in route:
            report((*loc, "continue"), "set continue on the team's mount in the root file")
    elif len(loc) == 1:
        # Alertmanager's rules for the root: it catches everything (that it has somewhere
        # to send it is the schema's RootRoute).
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
    for field in ("mute_time_intervals", "active_time_intervals"):
        for i, name in _items(route.get(field)):
            if isinstance(name, str) and name not in intervals:
                report(
                    (*loc, field, i),
                    f"undefined time interval {name!r}" + did_you_mean(name, sorted(intervals)),
                )
    _escalate(route.get("escalate"), (*loc, "escalate"), receivers, report)
    for i, child in _items(route.get("routes")):
        _route(child, (*loc, "routes", i), scope, report)


def _heartbeats(data: Mapping[str, Any], report: Report) -> None:
    _unique_names(data.get("heartbeats"), "heartbeats", "heartbeat", report)
    for i, beat in _items(data.get("heartbeats")):
        if not isinstance(beat, dict):
            continue
        labels = beat.get("labels")
        for name in labels if isinstance(labels, dict) else ():
            if not isinstance(name, str) or not is_label_name(name):
                report(("heartbeats", i, "labels", name), f"{name!r} is not a valid label name")
            elif name in ("alertname", "heartbeat", "source"):
                report(
                    ("heartbeats", i, "labels", name),
                    f"{name!r} is set by the heartbeat itself (HeartbeatMissing, its name,"
                    " heartbeat)",
                )


def _escalate(steps: object, loc: Loc, receivers: set[str] | None, report: Report) -> None:
    """Each step names a receiver of this file, and each comes later than the one before."""
    last = 0.0
    for i, step in _items(steps):
        if not isinstance(step, dict):
            continue
        to = step.get("to")
        if isinstance(to, str) and to and receivers is not None and to not in receivers:
            report(
                (*loc, i, "to"),
                f"undefined receiver {to!r} used in escalate" + did_you_mean(to, sorted(receivers)),
            )
        try:
            after = parse_duration(step.get("after"))
        except ValueError:
            continue  # the schema says why
        if after <= last and after > 0:
            report(
                (*loc, i, "after"),
                "escalation steps must come later one after another: after must be greater"
                " than the step before's",
            )
        last = max(last, after)


def _interactivity(data: Mapping[str, Any], report: Report) -> None:
    slack = data.get("slack")
    if not isinstance(slack, dict) or not isinstance(slack.get("interactivity"), dict):
        return
    if data.get("teams"):
        # A team's file may hold the bot-token receivers.
        return
    for _, receiver in _items(data.get("receivers")):
        if isinstance(receiver, dict) and isinstance(receiver.get("slack"), dict):
            if receiver["slack"].get("token"):
                return
    report(
        ("slack", "interactivity"),
        "no receiver posts with a bot token (slack.token + channel): buttons are only on"
        " bot-token messages, incoming webhooks cannot carry them",
    )


def _alertmanagers(data: Mapping[str, Any], report: Report) -> None:
    one, several = data.get("alertmanager"), data.get("alertmanagers")
    if isinstance(one, dict) and one and isinstance(several, list) and several:
        report(("alertmanagers",), "set alertmanager (one) or alertmanagers (several), not both")
        return
    if not isinstance(several, list):
        return
    names: dict[str, int] = {}
    externals: dict[str, int] = {}
    for i, entry in _items(several):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        url = entry["url"].strip().rstrip("/")
        name = entry.get("name") or url.partition("://")[2].partition("/")[0]
        external = str(entry.get("external_url") or url).strip().rstrip("/")
        if name in names:
            report(("alertmanagers", i, "name"), f"{name!r} names alertmanagers[{names[name]}] too")
        names.setdefault(name, i)
        if external in externals:
            # A webhook's externalURL must lead to exactly one of them.
            report(
                ("alertmanagers", i, "external_url"),
                f"{external!r} is alertmanagers[{externals[external]}]'s external_url too",
            )
        externals.setdefault(external, i)


def _oncall(data: Mapping[str, Any], report: Report) -> None:
    names = _unique_names(data.get("oncall"), "oncall", "rotation", report)
    members: dict[str, list[dict[str, Any]]] = {}
    for name, i in names.items():
        rotation = data["oncall"][i]
        found = rotation.get("members") if isinstance(rotation, dict) else None
        members[name] = [m for _, m in _items(found) if isinstance(m, dict)]
    _oncall_references(data, members, report)


def _oncall_references(
    data: Mapping[str, Any], rotations: Mapping[str, list[dict[str, Any]]] | None, report: Report
) -> None:
    """`oncall:<name>` in a Slack mention or an email `to` names a rotation whose members
    all have what it needs (a Slack user ID, an email address); `rotations` is None in a
    team file, which cannot see the root file's rotations."""
    for i, receiver in _items(data.get("receivers")):
        if not isinstance(receiver, dict):
            continue
        slack, mail = receiver.get("slack"), receiver.get("email")
        uses: list[tuple[Loc, str, str]] = []
        if isinstance(slack, dict) and isinstance(slack.get("mention"), str):
            for name in ONCALL_REFERENCE.findall(slack["mention"]):
                uses.append((("receivers", i, "slack", "mention"), name, "slack"))
        if isinstance(mail, dict):
            for j, to in _items(mail.get("to")):
                if isinstance(to, str) and to.strip().startswith("oncall:"):
                    uses.append((("receivers", i, "email", "to", j), to.strip()[7:], "email"))
        for loc, name, field in uses:
            if rotations is None:
                report(loc, f"oncall:{name}: rotations are declared in the root file, not here")
            elif name not in rotations:
                report(
                    loc,
                    f"unknown rotation {name!r} in oncall:{name}: declare it under oncall"
                    + did_you_mean(name, sorted(rotations)),
                )
            else:
                lacking = [str(m.get("name")) for m in rotations[name] if not m.get(field)]
                if lacking:
                    report(
                        loc,
                        f"oncall:{name}: member {lacking[0]!r} has no {field}: every member"
                        f" needs one to be reached here",
                    )
