"""Team files: one file per team, merged into the root config, each confined to its scope.

The root file declares each team (its file, the matchers that are its scope, a fallback
receiver) and places the team's subtree in the route tree with `{team: NAME}`. Loading
merges every team into one plain Config, so nothing downstream knows about teams:

- the mount node becomes a route whose matchers are the team's scope and whose subtree is
  the team's route, so no team route ever sees an alert outside the scope;
- the team's receivers and time intervals are renamed `<team>/<name>`, and every reference
  inside the team's file to them with them;
- the team's inhibit rules get the scope prepended to their target matchers, so they only
  ever mute alerts inside the scope (their sources may be any alert);
- the team's heartbeats are named `<team>/<name>`, only alerts inside the scope beat them,
  and their HeartbeatMissing event carries the scope's `name="value"` labels, so it is
  routed inside the scope;
- a team whose file failed to load keeps the version it had (a reload), or its mount
  routes the whole scope to the fallback receiver (no version yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router.config.schema import (
    Config,
    HeartbeatConfig,
    InhibitRule,
    ReceiverConfig,
    RouteConfig,
    TeamConfig,
    TeamLoad,
    TimeIntervalConfig,
)

SEPARATOR = "/"


def qualified(team: str, name: str) -> str:
    """A team's own name as the rest of the config sees it: `payments/slack`."""
    return f"{team}{SEPARATOR}{name}"


def inhibit_rule_name(rule: InhibitRule, index: int) -> str:
    """A rule's name, or its place in its file (`inhibit_rules[2]`) when it has none."""
    return rule.name or f"inhibit_rules[{index}]"


def _route(route: RouteConfig, team: str) -> RouteConfig:
    """A team's route with its receiver and interval names qualified, all the way down."""

    def names(values: list[str] | None) -> list[str] | None:
        return None if values is None else [qualified(team, v) for v in values]

    return route.model_copy(
        update={
            "receiver": qualified(team, route.receiver) if route.receiver else None,
            "mute_time_intervals": names(route.mute_time_intervals),
            "active_time_intervals": names(route.active_time_intervals),
            "escalate": None
            if route.escalate is None
            else [s.model_copy(update={"to": qualified(team, s.to)}) for s in route.escalate],
            "routes": [_route(child, team) for child in route.routes],
        }
    )


def _heartbeat(heartbeat: HeartbeatConfig, team: TeamConfig) -> HeartbeatConfig:
    """A team's heartbeat confined to the team's scope (see the module docstring)."""
    scoped = dict(heartbeat.labels)
    for matcher in team.matchers:
        if matcher.op == "=":
            scoped[matcher.name] = matcher.value
    return heartbeat.model_copy(
        update={
            "name": qualified(team.name, heartbeat.name),
            # With no matchers of its own it beats only by POST, whatever the scope says.
            "matchers": (*team.matchers, *heartbeat.matchers) if heartbeat.matchers else (),
            "labels": scoped,
        }
    )


def _mount(route: RouteConfig, teams: Mapping[str, tuple[TeamConfig, TeamLoad]]) -> RouteConfig:
    if route.team is None:
        if not route.routes:
            return route
        return route.model_copy(update={"routes": [_mount(child, teams) for child in route.routes]})
    team, load = teams[route.team]
    scope = {"matchers": team.matchers, "continue_": route.continue_, "team": team.name}
    if load.content is None:
        return RouteConfig(receiver=load.fallback).model_copy(update=scope)
    return _route(load.content.route, team.name).model_copy(update=scope)


def mount_teams(config: Config, loads: Sequence[TeamLoad]) -> Config:
    """`config` with every team merged in (see the module docstring); `loads` has one entry
    per team the config declares."""
    by_name = {load.name: load for load in loads}
    teams = {team.name: (team, by_name[team.name]) for team in config.teams}
    receivers: list[ReceiverConfig] = list(config.receivers)
    intervals: list[TimeIntervalConfig] = list(config.time_intervals)
    # Root rules come first, so those without a name keep their place (`inhibit_rules[0]`).
    rules: list[InhibitRule] = list(config.inhibit_rules)
    heartbeats: list[HeartbeatConfig] = list(config.heartbeats)
    for team, load in teams.values():
        content = load.content
        if content is None:
            continue
        name = team.name
        receivers += [
            r.model_copy(update={"name": qualified(name, r.name)}) for r in content.receivers
        ]
        intervals += [
            i.model_copy(update={"name": qualified(name, i.name)}) for i in content.time_intervals
        ]
        rules += [
            rule.model_copy(
                update={
                    "name": qualified(name, inhibit_rule_name(rule, i)),
                    "target_matchers": (*team.matchers, *rule.target_matchers),
                }
            )
            for i, rule in enumerate(content.inhibit_rules)
        ]
        heartbeats += [_heartbeat(h, team) for h in content.heartbeats]
    merged = config.model_copy(
        update={
            "receivers": receivers,
            "time_intervals": intervals,
            "inhibit_rules": rules,
            "heartbeats": heartbeats,
            "route": _mount(config.route, teams),
        }
    )
    return merged.with_team_loads(tuple(by_name[team.name] for team in config.teams))
