"""Replay: every recorded event of a window through two configs, with the routing code the
service runs live (route tree, time intervals at the event's own time, inhibit rules with
the alerts that were firing then), and the groups whose outcome would change."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from router.config.schema import Config
from router.matchers import matches_all
from router.model import Event, RouteSettings, Status, format_time, parse_time
from router.routing.inhibit import Inhibitor
from router.routing.timeintervals import TimeIntervals
from router.routing.tree import RouteTree
from router.store.protocols import RecordQueries, RecordQuery

# Records read per store call while collecting a window.
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Recorded:
    """One event as the service accepted it at `at` (Unix seconds), in its stored form
    (`Event.to_dict`): replay reads a handful of its fields, so it is not rebuilt whole."""

    at: float
    data: Mapping[str, Any]

    @classmethod
    def of(cls, at: float, event: Event) -> Recorded:
        return cls(at, event.to_dict())

    @property
    def event(self) -> Event:
        return Event.from_dict(self.data)

    @property
    def labels(self) -> Mapping[str, str]:
        labels: Mapping[str, str] = self.data["labels"]
        return labels

    @property
    def group_key(self) -> str:
        return str(self.data["group_key"])

    @property
    def fingerprint(self) -> str:
        return str(self.data.get("fingerprint") or "")

    @property
    def firing(self) -> bool:
        return bool(self.data["status"] == Status.FIRING.value)

    @property
    def alertname(self) -> str:
        return str(self.labels.get("alertname", ""))

    def ends_at(self) -> float | None:
        end = parse_time(self.data.get("ends_at"))
        return end.timestamp() if end is not None else None

    def to_json(self) -> str:
        """One line of `alert-router export`."""
        data = {"received_at": format_time(datetime.fromtimestamp(self.at, UTC))}
        data.update(self.data)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Recorded:
        """A line `to_json` wrote; ValueError (or KeyError, TypeError) when it is not one."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        at = parse_time(data.pop("received_at", None))
        if at is None:
            raise ValueError("received_at is missing")
        labels = data.get("labels")
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError("labels must be an object of strings")
        if data.get("status") not in (Status.FIRING.value, Status.RESOLVED.value):
            raise ValueError("status must be firing or resolved")
        if not isinstance(data.get("group_key"), str):
            raise ValueError("group_key must be a string")
        return cls(at.timestamp(), data)


def _key(recorded: Recorded) -> tuple[float, str, str, bool]:
    return (recorded.at, recorded.group_key, recorded.fingerprint, recorded.firing)


def unique(recorded: Iterable[Recorded]) -> list[Recorded]:
    """Each event once, oldest first: one routed to several receivers is in several records."""
    seen: dict[tuple[float, str, str, bool], Recorded] = {}
    for r in recorded:
        seen.setdefault(_key(r), r)
    return sorted(seen.values(), key=lambda r: r.at)


async def read_window(records: RecordQueries, since: float, until: float) -> list[Recorded]:
    """The events recorded in [since, until], each once, oldest first."""
    found: list[Recorded] = []
    cursor: str | None = None
    while True:
        page = await records.query_notifications(RecordQuery(), _PAGE, cursor)
        older = True
        for record in page.records:
            if record.created_at < since:
                continue
            older = False
            if record.created_at > until:
                continue
            found.extend(Recorded(record.created_at, a) for a in record.alerts)
        # Records are numbered as they are accepted: a page wholly before the window ends it.
        if page.next_cursor is None or (older and page.records):
            break
        cursor = page.next_cursor
    return unique(found)


def read_lines(lines: Iterable[str], since: float, until: float, name: str) -> list[Recorded]:
    """The events of an export in [since, until]; ValueError naming `name:line` otherwise."""
    found: list[Recorded] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            recorded = Recorded.from_json(line)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{name}:{number}: not an exported event ({exc})") from None
        if since <= recorded.at <= until:
            found.append(recorded)
    return unique(found)


@dataclass(frozen=True, slots=True)
class Decision:
    """What one config does with one event."""

    notified: tuple[str, ...]
    # (receiver, why) per receiver the event routed to whose route was muted then.
    muted: tuple[tuple[str, str], ...] = ()
    # The inhibit rule that held the event back, if any.
    inhibited_by: str | None = None

    @property
    def outcome(self) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        """What a reader of the diff compares: who is told, who is muted, whether held back
        (a renamed interval or rule doing the same is no change)."""
        return self.notified, tuple(name for name, _ in self.muted), self.inhibited_by is not None


class Router:
    """One config's routing, compiled as the service compiles it, asked about past events."""

    def __init__(self, config: Config) -> None:
        self.tree = RouteTree.from_config(config)
        self.intervals = TimeIntervals.from_config(config.time_intervals)
        self.inhibitor = Inhibitor.from_config(config.inhibit_rules)
        # Matching reads only the labels some matcher names: answers are kept per their values.
        self._route_names = sorted({m.name for node in self.tree.walk() for m in node.matchers})
        self._target_names = sorted({m.name for r in self.inhibitor.rules for m in r.target})
        self._routes: dict[tuple[str, ...], list[RouteSettings]] = {}
        self._mutes: dict[tuple[tuple[str, ...], tuple[str, ...], int], str | None] = {}
        # The firing alerts each rule could take as a source, by their `equal` labels'
        # values: the inhibitor is then asked only about the sources that can apply.
        rules = self.inhibitor.rules
        self._sources: list[dict[tuple[str, ...], dict[str, Mapping[str, str]]]] = [
            {} for _ in rules
        ]
        self._indexed: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        self._targets: dict[tuple[str, ...], list[int]] = {}

    def fire(self, key: str, labels: Mapping[str, str]) -> None:
        """The alert `key` fires (again) with `labels`."""
        self.resolve(key)
        places = []
        for i, rule in enumerate(self.inhibitor.rules):
            if matches_all(rule.source, labels):
                values = tuple(labels.get(name, "") for name in rule.equal)
                self._sources[i].setdefault(values, {})[key] = labels
                places.append((i, values))
        if places:
            self._indexed[key] = places

    def resolve(self, key: str) -> None:
        """The alert `key` no longer fires."""
        for i, values in self._indexed.pop(key, ()):
            bucket = self._sources[i][values]
            bucket.pop(key, None)
            if not bucket:
                del self._sources[i][values]

    def _candidates(
        self, labels: Mapping[str, str], live: Callable[[str], bool]
    ) -> list[Mapping[str, str]]:
        key = tuple(labels.get(name, "") for name in self._target_names)
        applicable = self._targets.get(key)
        if applicable is None:
            applicable = self._targets[key] = [
                i for i, rule in enumerate(self.inhibitor.rules) if matches_all(rule.target, labels)
            ]
        found: dict[str, Mapping[str, str]] = {}
        for i in applicable:
            rule = self.inhibitor.rules[i]
            values = tuple(labels.get(name, "") for name in rule.equal)
            for source_key, source in self._sources[i].get(values, {}).items():
                if live(source_key):
                    found[source_key] = source
        return list(found.values())

    def _match(self, labels: Mapping[str, str]) -> list[RouteSettings]:
        key = tuple(labels.get(name, "") for name in self._route_names)
        routes = self._routes.get(key)
        if routes is None:
            routes = self._routes[key] = self.tree.match(labels)
        return routes

    def _mute(self, route: RouteSettings, at: float) -> str | None:
        if not route.mute_time_intervals and not route.active_time_intervals:
            return None
        # Time intervals are whole minutes: one answer per route's intervals and minute.
        key = (route.mute_time_intervals, route.active_time_intervals, int(at // 60))
        if key not in self._mutes:
            try:
                why = self.intervals.mute_reason(route, datetime.fromtimestamp(at, UTC))
            except KeyError:
                why = None
            self._mutes[key] = why
        return self._mutes[key]

    def decide(self, recorded: Recorded, live: Callable[[str], bool]) -> Decision:
        """The receivers notified, those muted, and the inhibition, as the service decides
        them for this event at its time, with the alerts fired so far for which `live`."""
        labels = recorded.labels
        inhibited: str | None = None
        if recorded.firing and self._indexed:
            sources = self._candidates(labels, live)
            found = self.inhibitor.inhibition(labels, sources) if sources else None
            if found is not None:
                inhibited = found[0].name
        notified: list[str] = []
        muted: list[tuple[str, str]] = []
        for route in self._match(labels):
            why = self._mute(route, recorded.at)
            if why is not None:
                muted.append((route.receiver, why))
            elif inhibited is None:
                notified.append(route.receiver)
        return Decision(tuple(notified), tuple(muted), inhibited)


@dataclass(slots=True)
class Side:
    """What one config did with a group over the window."""

    receivers: dict[str, int] = field(default_factory=dict)
    muted: dict[str, int] = field(default_factory=dict)
    inhibited: int = 0

    def add(self, decision: Decision) -> None:
        for name in decision.notified:
            self.receivers[name] = self.receivers.get(name, 0) + 1
        for name, _ in decision.muted:
            self.muted[name] = self.muted.get(name, 0) + 1
        if decision.inhibited_by is not None:
            self.inhibited += 1

    def to_dict(self) -> dict[str, Any]:
        return {"receivers": self.receivers, "muted": self.muted, "inhibited": self.inhibited}

    def text(self) -> str:
        shown = ", ".join(self.receivers) or "(nobody)"
        extra = [f"muted {name} x{n}" for name, n in self.muted.items()]
        if self.inhibited:
            extra.append(f"inhibited x{self.inhibited}")
        return shown + (f" [{'; '.join(extra)}]" if extra else "")


@dataclass(slots=True)
class GroupChange:
    """A group some of whose events the two configs treat differently."""

    group_key: str
    alertname: str
    events: int
    changed_events: int
    before: Side
    after: Side
    # The first event treated differently (for a preview of what each side would send).
    example: Recorded

    def text(self) -> str:
        return f"{self.group_key}: {self.before.text()} -> {self.after.text()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_key": self.group_key,
            "alertname": self.alertname,
            "events": self.events,
            "changed_events": self.changed_events,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "example": {
                "received_at": format_time(datetime.fromtimestamp(self.example.at, UTC)),
                "labels": dict(self.example.labels),
                "status": self.example.data["status"],
            },
        }


@dataclass(slots=True)
class ReplayResult:
    since: float
    until: float
    events: int
    groups: int
    changed: list[GroupChange]

    def lines(self) -> Iterator[str]:
        """The text report: one line per changed group, then the count."""
        for change in self.changed:
            yield change.text()
        yield f"{len(self.changed)} groups changed of {self.groups}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": format_time(datetime.fromtimestamp(self.since, UTC)),
            "until": format_time(datetime.fromtimestamp(self.until, UTC)),
            "events": self.events,
            "groups": self.groups,
            "changed_count": len(self.changed),
            "changed": [c.to_dict() for c in self.changed],
        }


def _track(recorded: Recorded, routers: Sequence[Router], ends: dict[str, float]) -> None:
    key = recorded.fingerprint or recorded.group_key
    if recorded.firing:
        for router in routers:
            router.fire(key, recorded.labels)
        end = recorded.ends_at()
        if end is not None and end > recorded.at:
            ends[key] = end
        else:
            ends.pop(key, None)
    else:
        for router in routers:
            router.resolve(key)
        ends.pop(key, None)


def replay(
    events: Sequence[Recorded],
    live: Config,
    proposed: Config,
    *,
    since: float,
    until: float,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Route `events` (oldest first) through both configs; the groups that would change."""
    routers = (Router(live), Router(proposed))
    uses_firing = any(r.inhibitor.rules for r in routers)
    ends: dict[str, float] = {}
    sides: dict[str, tuple[Side, Side, list[int], list[Recorded]]] = {}
    total = len(events)
    i = 0
    while i < total:
        # The events one webhook brought are recorded together, with the alerts they fire,
        # before any of them is delivered: inhibition sees them all.
        at = events[i].at
        j = i
        while j < total and events[j].at == at:
            if uses_firing:
                _track(events[j], routers, ends)
            j += 1

        def firing_then(key: str, at: float = at) -> bool:
            # Alertmanager sends a firing alert's endsAt in the future: past it, the alert
            # is no longer firing even if no resolve came.
            return ends.get(key, at) >= at

        for recorded in events[i:j]:
            old = routers[0].decide(recorded, firing_then)
            new = routers[1].decide(recorded, firing_then)
            group = recorded.group_key
            entry = sides.get(group)
            if entry is None:
                entry = sides[group] = (Side(), Side(), [0, 0], [])
            entry[0].add(old)
            entry[1].add(new)
            entry[2][0] += 1
            if old.outcome != new.outcome:
                entry[2][1] += 1
                if not entry[3]:
                    entry[3].append(recorded)
        i = j
        if progress is not None:
            progress(i, total)
    changed = [
        GroupChange(
            group_key=group,
            alertname=example[0].alertname,
            events=counts[0],
            changed_events=counts[1],
            before=old_side,
            after=new_side,
            example=example[0],
        )
        for group, (old_side, new_side, counts, example) in sides.items()
        if example
    ]
    changed.sort(key=lambda c: (-c.changed_events, c.group_key))
    return ReplayResult(since, until, total, len(sides), changed)
