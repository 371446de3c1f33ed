"""The route tree, with Alertmanager's `dispatch/route.go` matching semantics.

An alert enters at the root. Children are tried depth-first in order; the first child that
matches wins unless it has `continue: true`, in which case later siblings are tried too. A
node none of whose children matched delivers to its own receiver. Settings left unset on a
node are inherited from its parent.

Each matched node is described by a path people read in messages and in
`routes test --tree`, such as ``routes[1] env="prod", severity="critical" > routes[0]
team="shop"``: per node below the root, its 0-based index among its siblings (as in the
config, `route.routes[1].routes[0]`) and its matchers; the root alone is ``root route``. A
team's mount says so: ``routes[0] {team: payments} team="payments" > routes[1] ...``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from router.config.schema import Config, RouteConfig
from router.matchers import Matcher, matches_all
from router.model import PATH_SEPARATOR, ROOT_PATH, RouteSettings


@dataclass(frozen=True, slots=True)
class Route:
    """One node of the tree, with its inherited settings already resolved."""

    matchers: tuple[Matcher, ...]
    continue_: bool
    settings: RouteSettings
    routes: tuple[Route, ...]
    # The node as configured (what it sets itself, before inheritance).
    config: RouteConfig
    # The team whose file this node came from (the mount included); None for the root file.
    team: str | None = None

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The nodes that deliver `labels`, in order; empty if this node does not match."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [self]

    def walk(self) -> Iterator[Route]:
        """This node and all its descendants, depth-first."""
        yield self
        for child in self.routes:
            yield from child.walk()


def _node_name(index: int, matchers: tuple[Matcher, ...], team: str | None) -> str:
    name = f"routes[{index}]"
    if team is not None:
        name += f" {{team: {team}}}"
    return f"{name} {', '.join(str(m) for m in matchers)}" if matchers else name


def _build(
    config: RouteConfig, parent: RouteSettings, index: int | None, team: str | None = None
) -> Route:
    """Resolve one node against its parent's settings; `index` is None for the root."""
    matchers = config.matchers
    if index is None:
        path = ROOT_PATH
    elif parent.path == ROOT_PATH:
        path = _node_name(index, matchers, config.team)
    else:
        path = parent.path + PATH_SEPARATOR + _node_name(index, matchers, config.team)
    team = config.team or team
    receiver = config.receiver if config.receiver is not None else parent.receiver

    def inherited(own: list[str] | None, theirs: tuple[str, ...]) -> tuple[str, ...]:
        # None inherits; an explicit [] clears the parent's list for this subtree.
        return theirs if own is None else tuple(own)

    settings = RouteSettings(
        receiver=receiver,
        path=path,
        repeat_interval=(
            config.repeat_interval if config.repeat_interval is not None else parent.repeat_interval
        ),
        send_resolved=(
            config.send_resolved if config.send_resolved is not None else parent.send_resolved
        ),
        mute_time_intervals=inherited(config.mute_time_intervals, parent.mute_time_intervals),
        active_time_intervals=inherited(config.active_time_intervals, parent.active_time_intervals),
        escalate=(
            parent.escalate
            if config.escalate is None
            else tuple((step.after, step.to) for step in config.escalate)
        ),
    )
    return Route(
        matchers=matchers,
        continue_=config.continue_ if index is not None else False,
        settings=settings,
        routes=tuple(_build(child, settings, i, team) for i, child in enumerate(config.routes)),
        config=config,
        team=team,
    )


# How many label sets' routes a tree remembers; past that it starts over.
_MATCHES_KEPT = 4096


class RouteTree:
    """The whole route tree of a config; `match` gives the receivers for a label set."""

    def __init__(self, root: Route) -> None:
        self.root = root
        # Matchers read only these labels (a missing one as ""): label sets that agree on
        # them are routed alike. The alerts of a group, and each resend of the group,
        # mostly do, so a webhook's routing is mostly lookups.
        self._read = tuple(sorted({m.name for node in root.walk() for m in node.matchers}))
        self._matches: dict[tuple[str | None, ...], tuple[RouteSettings, ...]] = {}

    @classmethod
    def from_config(cls, config: Config) -> RouteTree:
        """Build the tree of a config that passed validation (router/config/validate.py)."""
        route = config.route
        defaults = RouteSettings(
            receiver=route.receiver,
            path=ROOT_PATH,
            repeat_interval=config.dedup.repeat_interval,
            send_resolved=config.dedup.send_resolved,
        )
        return cls(_build(route, defaults, None))

    def match(self, labels: Mapping[str, str]) -> list[RouteSettings]:
        """Route settings per receiver, in delivery order; a receiver appears once (first wins)."""
        key = tuple(map(labels.get, self._read))
        found = self._matches.get(key)
        if found is None:
            if len(self._matches) >= _MATCHES_KEPT:
                self._matches.clear()
            found = self._matches[key] = self._match(labels)
        return list(found)

    def _match(self, labels: Mapping[str, str]) -> tuple[RouteSettings, ...]:
        seen: set[str] = set()
        result: list[RouteSettings] = []
        for node in self.root.match(labels):
            if node.settings.receiver not in seen:
                seen.add(node.settings.receiver)
                result.append(node.settings)
        return tuple(result)

    def walk(self) -> Iterator[Route]:
        """Every node, depth-first from the root."""
        return self.root.walk()

    def __len__(self) -> int:
        return sum(1 for _ in self.walk())
