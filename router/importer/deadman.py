"""An Alertmanager route that sends Watchdog to a dead man's switch, as a heartbeat.

kube-prometheus tells users to route its always-firing Watchdog to an external dead man's
switch (Dead Man's Snitch, healthchecks.io, ...). alert-router is that switch itself: the
route becomes a heartbeat (Watchdog is a beat, never notified; HeartbeatMissing when it
stops). A route counts when it selects `alertname="Watchdog"` and its receiver posts to a
known dead-man service, or the route or receiver is named or commented as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from router.durations import parse_duration
from router.importer.document import Node
from router.importer.matchers import SourceMatcher, parse_source_matchers
from router.importer.report import Report

# Hosts (or their parents) of services whose webhooks are dead man's switches.
DEAD_MAN_HOSTS = (
    "nosnch.in",
    "deadmanssnitch.com",
    "hc-ping.com",
    "healthchecks.io",
    "cronitor.link",
    "cronitor.io",
    "betteruptime.com",
    "uptime.betterstack.com",
    "heartbeat.uptimerobot.com",
    "deadmanswitch.io",
)
# Words that name a route or receiver as a dead man's switch ("watchdog" alone does not:
# kube-prometheus routes Watchdog to a receiver that drops it).
_NAMED = re.compile(r"dead[\s_'-]*man|snitch|heart[\s_-]*beat", re.IGNORECASE)
# Alertmanager's defaults, for a route tree that does not set them.
_DEFAULT_REPEAT = 4 * 3600.0
_DEFAULT_GROUP_INTERVAL = 300.0
_MIN_GRACE = 120.0


@dataclass(frozen=True, slots=True)
class _Timers:
    receiver: str
    group_interval: float
    repeat_interval: float


def _duration(seconds: float) -> str:
    """`4h5m`, `90s` -> `1m30s`: a Prometheus duration routes.yaml reads back exactly."""
    rest, out = int(seconds), ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


def _dead_man_receivers(root: Node) -> dict[str, str]:
    """Receiver name -> why it is a dead man's switch."""
    found: dict[str, str] = {}
    section = root.get("receivers")
    for receiver in section.seq("receivers") if section is not None else []:
        name_node = receiver.get("name")
        name = name_node.text("receiver name") if name_node is not None else ""
        hooks = receiver.get("webhook_configs")
        for hook in hooks.seq("webhook_configs") if hooks is not None else []:
            url = hook.get("url")
            host = urlsplit(url.text("url")).hostname or "" if url is not None else ""
            known = next((h for h in DEAD_MAN_HOSTS if host == h or host.endswith("." + h)), None)
            if known is not None:
                found[name] = f"its webhook posts to {known}"
        if name not in found and _NAMED.search(name):
            found[name] = "named as one"
    return found


def _matchers(route: Node) -> list[SourceMatcher]:
    out: list[SourceMatcher] = []
    match = route.get("match")
    for name, value in match.items("match") if match is not None else []:
        out.append(SourceMatcher(name, "=", value.text("match")))
    match_re = route.get("match_re")
    for name, value in match_re.items("match_re") if match_re is not None else []:
        out.append(SourceMatcher(name, "=~", value.text("match_re")))
    listed = route.get("matchers")
    for text in listed.strings("matchers") if listed is not None else []:
        try:
            out.extend(parse_source_matchers(text))
        except ValueError:
            return []
    return out


def _selects_watchdog(matchers: list[SourceMatcher]) -> bool:
    return any(
        m.name == "alertname" and m.op in ("=", "=~") and m.value == "Watchdog" for m in matchers
    )


def _commented(lines: list[str], line: int) -> bool:
    """Whether a comment on the route's line or the two above it names a dead man's switch."""
    for number in range(max(1, line - 2), line + 1):
        text = lines[number - 1] if number - 1 < len(lines) else ""
        _, hash_mark, comment = text.partition("#")
        if hash_mark and _NAMED.search(comment):
            return True
    return False


def dead_man_heartbeats(root: Node, text: str, report: Report) -> list[dict[str, Any]]:
    """`heartbeats:` entries for every Watchdog route to a dead man's switch (each noted in
    the report)."""
    route = root.get("route")
    if route is None or not route.is_map:
        return []
    receivers = _dead_man_receivers(root)
    lines = text.splitlines()
    out: list[dict[str, Any]] = []
    top = _timers(route, _Timers("", _DEFAULT_GROUP_INTERVAL, _DEFAULT_REPEAT))
    _walk(route, top, receivers, lines, report, out)
    return out


def _timers(route: Node, parent: _Timers) -> _Timers:
    def seconds(key: str, inherited: float) -> float:
        node = route.get(key)
        if node is None or node.is_null:
            return inherited
        try:
            return parse_duration(node.text(key)) or inherited
        except ValueError:
            return inherited

    receiver = route.get("receiver")
    return _Timers(
        receiver.text("receiver")
        if receiver is not None and not receiver.is_null
        else parent.receiver,
        seconds("group_interval", parent.group_interval),
        seconds("repeat_interval", parent.repeat_interval),
    )


def _walk(
    route: Node,
    timers: _Timers,
    receivers: dict[str, str],
    lines: list[str],
    report: Report,
    out: list[dict[str, Any]],
) -> None:
    children = route.get("routes")
    for child in children.seq("routes") if children is not None else []:
        if not child.is_map:
            continue
        own = _timers(child, timers)
        matchers = _matchers(child)
        if _selects_watchdog(matchers):
            why = receivers.get(own.receiver)
            if why is None and _commented(lines, child.line):
                why = "commented as one"
            if why is not None:
                out.append(_heartbeat(child, own, matchers, why, report, len(out)))
        _walk(child, own, receivers, lines, report, out)


def _heartbeat(
    route: Node,
    timers: _Timers,
    matchers: list[SourceMatcher],
    why: str,
    report: Report,
    index: int,
) -> dict[str, Any]:
    name = "watchdog" if index == 0 else f"watchdog-{index + 1}"
    # Alertmanager repeats an unchanged group once repeat_interval has passed, at its next
    # group_interval tick: a beat comes at least that often.
    interval = timers.repeat_interval + timers.group_interval
    grace = max(interval, _MIN_GRACE)
    report.note(
        route.line,
        f"route sending Watchdog to {timers.receiver!r} (a dead man's switch: {why}) became"
        f" heartbeat {name!r} (interval {_duration(interval)}, grace {_duration(grace)}):"
        " alert-router raises HeartbeatMissing when Watchdog stops, and no longer sends"
        f" Watchdog to {timers.receiver!r}",
    )
    return {
        "name": name,
        "matchers": [str(m) for m in matchers],
        "interval": _duration(interval),
        "grace": _duration(grace),
        # The route's own `name="value"` labels too, so HeartbeatMissing routes like them.
        "labels": {
            **{m.name: m.value for m in matchers if m.op == "=" and m.name != "alertname"},
            "severity": "critical",
        },
    }
