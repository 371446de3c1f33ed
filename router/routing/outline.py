"""The route tree as an indented outline, in the style of `amtool config routes show`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from router.routing.tree import Route, RouteTree

# (unit, seconds), largest first: a configured duration is shown exactly, the way it is
# written in routes.yaml (`1h30m`), not rounded the way messages show elapsed time.
_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def config_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: 5400 -> `1h30m`, 0.5 -> `500ms`."""
    whole = int(seconds)
    millis = round((seconds - whole) * 1000)
    parts = []
    for unit, size in _UNITS:
        if whole >= size:
            count, whole = divmod(whole, size)
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts) or "0s"


def _describe(route: Route, is_root: bool, team_files: Mapping[str, str]) -> str:
    config = route.config
    fields = [
        ",".join(str(m) for m in route.matchers).join("{}") if route.matchers else "default-route"
    ]
    if config.team is not None:
        fields.append(f"team: {config.team}")
    if route.continue_:
        fields.append("continue: true")
    fields.append(f"receiver: {route.settings.receiver}")
    if config.repeat_interval is not None:
        fields.append(f"repeat_interval: {config_duration(config.repeat_interval)}")
    if config.send_resolved is not None:
        fields.append(f"send_resolved: {str(config.send_resolved).lower()}")
    if config.mute_time_intervals is not None:
        fields.append(f"mute_time_intervals: [{', '.join(config.mute_time_intervals)}]")
    if config.active_time_intervals is not None:
        fields.append(f"active_time_intervals: [{', '.join(config.active_time_intervals)}]")
    if config.escalate is not None:
        steps = ", ".join(f"{config_duration(s.after)} -> {s.to}" for s in config.escalate)
        fields.append(f"escalate: [{steps}]")
    if is_root:
        # The defaults every node inherits unless it sets its own.
        fields.append(f"repeat_interval: {config_duration(route.settings.repeat_interval)}")
        fields.append(f"send_resolved: {str(route.settings.send_resolved).lower()}")
    if route.team is not None and route.team in team_files:
        fields.append(f"file: {team_files[route.team]}")
    return "  ".join(dict.fromkeys(fields))


def _lines(
    route: Route, prefix: str, last: bool, is_root: bool, team_files: Mapping[str, str]
) -> Iterator[str]:
    yield prefix + ("└── " if last else "├── ") + _describe(route, is_root, team_files)
    inner = prefix + ("    " if last else "│   ")
    for i, child in enumerate(route.routes):
        yield from _lines(child, inner, i == len(route.routes) - 1, False, team_files)


def outline(tree: RouteTree, team_files: Mapping[str, str]) -> list[str]:
    """The tree, one node a line; `team_files` names the file of each team."""
    return ["Routing tree:", ".", *_lines(tree.root, "", True, True, team_files)]
