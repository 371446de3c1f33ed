"""The forwarding alertmanager.yml: the same Alertmanager, sending every alert to alert-router.

Alertmanager keeps its route tree, so it groups alerts and times notifications exactly as
before and the groupKeys alert-router dedups on stay what they were; only the receivers go,
replaced by one webhook to alert-router. Three things move to routes.yaml, because with one
receiver they would now suppress or duplicate rather than route:
- `continue`: every alert is sent once, in the group of the first route it matches;
  alert-router then notifies each receiver that alert reaches (sent twice, an alert would
  notify each of its receivers once per Alertmanager group);
- `mute_time_intervals` / `active_time_intervals`: alert-router mutes per route and records
  it, and a muted first route would otherwise keep the alert from later ones;
- `inhibit_rules`: alert-router inhibits, and still sends the resolve of an alert it told a
  receiver about when that alert is inhibited later.
Values are written back as the YAML nodes they were read from, so nothing is reformatted
into a different meaning.

Integrations alert-router cannot send to stay here (receivers.py's `kept`). Then the root
route gets two children: first the original tree with `continue: true`, every node naming
its receiver as before when that receiver keeps something here, else KEPT_NOTHING (which
sends nothing), so the kept integrations get exactly the alerts, groups, timers, time
intervals and inhibitions they had; then the forwarding tree as above, below a catch-all
route, so every alert still reaches alert-router once. The kept receivers keep only their
kept integrations (the others moved to alert-router), and the time intervals, inhibit
rules, templates and `global` settings they may use stay too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import yaml

from router.importer.document import Node
from router.importer.receivers import Kept

RECEIVER = "alert-router"
# The receiver without integrations that the kept tree's other routes name.
KEPT_NOTHING = "alert-router-sends-these"
WEBHOOK_PATH = "/webhook/alertmanager"
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# Top-level keys that become routes.yaml's business (or mean nothing without receivers).
_MOVED = frozenset(
    {"receivers", "inhibit_rules", "time_intervals", "mute_time_intervals", "templates"}
)
_ROUTE_DROPPED = frozenset({"receiver", "continue", "mute_time_intervals", "active_time_intervals"})


def _scalar(text: str, tag: str = _STR) -> yaml.ScalarNode:
    return yaml.ScalarNode(tag, text)


def _route(node: yaml.Node, root: bool) -> yaml.Node:
    if not isinstance(node, yaml.MappingNode):
        return node
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    if root:
        pairs.append((_scalar("receiver"), _scalar(RECEIVER)))
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name in _ROUTE_DROPPED:
            continue
        if name == "routes" and isinstance(value, yaml.SequenceNode):
            value = yaml.SequenceNode(
                _SEQ, [_route(child, root=False) for child in value.value], flow_style=False
            )
        pairs.append((key, value))
    return yaml.MappingNode(_MAP, pairs, flow_style=False)


def _receivers(router_url: str, own_http: bool = False) -> yaml.SequenceNode:
    settings: list[tuple[yaml.Node, yaml.Node]] = [
        (_scalar("url"), _scalar(router_url.rstrip("/") + WEBHOOK_PATH)),
        (_scalar("send_resolved"), _scalar("true", _BOOL)),
    ]
    if own_http:
        # The global http_config stays for the kept integrations; alert-router is reached
        # directly, as before.
        settings.append((_scalar("http_config"), yaml.MappingNode(_MAP, [], flow_style=False)))
    webhook = yaml.MappingNode(_MAP, settings, flow_style=False)
    receiver = yaml.MappingNode(
        _MAP,
        [
            (_scalar("name"), _scalar(RECEIVER)),
            (_scalar("webhook_configs"), yaml.SequenceNode(_SEQ, [webhook], flow_style=False)),
        ],
        flow_style=False,
    )
    return yaml.SequenceNode(_SEQ, [receiver], flow_style=False)


def _flag(node: yaml.Node | None) -> bool:
    return node is not None and Node(node).flag()


def _get(node: yaml.Node, name: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            found: yaml.Node = value
            return found
    return None


def _kept_route(
    node: yaml.Node, inherited: str, kept: Mapping[str, Sequence[Kept]], root: bool
) -> tuple[yaml.Node, bool]:
    """The original route for the kept receivers; whether any of them is in it. A subtree
    without any collapses to its own node, which still matches what it matched (so that a
    later sibling is not reached by what it stopped)."""
    if not isinstance(node, yaml.MappingNode):
        return node, False
    receiver_node = _get(node, "receiver")
    receiver = Node(receiver_node).text() if receiver_node is not None else inherited
    receiver = receiver or inherited
    children: list[tuple[yaml.Node, bool, bool]] = []
    routes = _get(node, "routes")
    for child in routes.value if isinstance(routes, yaml.SequenceNode) else []:
        built, has = _kept_route(child, receiver, kept, root=False)
        children.append((built, has, _flag(_get(child, "continue"))))
    # Only what can stop a later sibling that keeps something is worth keeping.
    wanted: list[yaml.Node] = []
    later = False
    for built, has, continues in reversed(children):
        if has or (later and not continues):
            wanted.append(built)
        later = later or has
    wanted.reverse()
    here = receiver in kept
    pairs: list[tuple[yaml.Node, yaml.Node]] = [
        (_scalar("receiver"), _scalar(receiver if here else KEPT_NOTHING))
    ]
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name in ("receiver", "routes", "continue"):
            continue
        pairs.append((key, value))
    if root:
        pairs.append((_scalar("continue"), _scalar("true", _BOOL)))
    elif _flag(_get(node, "continue")):
        pairs.append((_scalar("continue"), _scalar("true", _BOOL)))
    if later:
        pairs.append((_scalar("routes"), yaml.SequenceNode(_SEQ, wanted, flow_style=False)))
    return yaml.MappingNode(_MAP, pairs, flow_style=False), here or later


def _split_route(route: yaml.Node, kept: Mapping[str, Sequence[Kept]]) -> yaml.Node:
    """The root route: the kept tree first (continue), then the forwarding tree."""
    forward = _route(route, root=True)
    assert isinstance(forward, yaml.MappingNode)
    settings = [
        (k, v)
        for k, v in forward.value
        if not (isinstance(k, yaml.ScalarNode) and k.value in ("receiver", "routes"))
    ]
    below = _get(forward, "routes")
    catch_all: list[tuple[yaml.Node, yaml.Node]] = [(_scalar("receiver"), _scalar(RECEIVER))]
    if below is not None:
        catch_all.append((_scalar("routes"), below))
    # A copy: a node written twice would come out as a YAML anchor and alias.
    kept_tree, _ = _kept_route(copy.deepcopy(route), "", kept, root=True)
    children = yaml.SequenceNode(
        _SEQ, [kept_tree, yaml.MappingNode(_MAP, catch_all, flow_style=False)], flow_style=False
    )
    return yaml.MappingNode(
        _MAP,
        [(_scalar("receiver"), _scalar(RECEIVER)), *settings, (_scalar("routes"), children)],
        flow_style=False,
    )


def _kept_receivers(
    receivers: yaml.Node | None, kept: Mapping[str, Sequence[Kept]]
) -> list[yaml.Node]:
    """The kept receivers, each with its kept integrations only."""
    out: list[yaml.Node] = []
    for node in receivers.value if isinstance(receivers, yaml.SequenceNode) else []:
        name_node = _get(node, "name")
        name = Node(name_node).text() if name_node is not None else ""
        if name not in kept or not isinstance(node, yaml.MappingNode):
            continue
        staying = {(k.key, k.index) for k in kept[name]}
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            field = key.value if isinstance(key, yaml.ScalarNode) else None
            if field is None or not field.endswith("_configs"):
                pairs.append((key, value))
                continue
            items = value.value if isinstance(value, yaml.SequenceNode) else []
            chosen = [item for i, item in enumerate(items) if (field, i) in staying]
            if chosen:
                pairs.append((key, yaml.SequenceNode(_SEQ, chosen, flow_style=False)))
        out.append(yaml.MappingNode(_MAP, pairs, flow_style=False))
    nothing = yaml.MappingNode(_MAP, [(_scalar("name"), _scalar(KEPT_NOTHING))], flow_style=False)
    return [*out, nothing]


def _global_prefixes(kept: Mapping[str, Sequence[Kept]]) -> tuple[str, ...]:
    """The `global` keys the kept integrations read (`opsgenie_api_key`, `smtp_from`...)."""
    kinds = {k.key.removesuffix("_configs") for items in kept.values() for k in items}
    return tuple(sorted("smtp_" if kind == "email" else f"{kind}_" for kind in kinds))


def forwarding_config(
    root: Node, router_url: str, header: str, kept: Mapping[str, Sequence[Kept]] | None = None
) -> str:
    """The text of the forwarding alertmanager.yml for the config at `root`; `kept`: the
    integrations that stay in Alertmanager, per receiver."""
    assert isinstance(root.raw, yaml.MappingNode)
    kept = kept or {}
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    global_http = False
    for key, value in root.raw.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name in _MOVED and not (kept and name != "receivers"):
            continue
        if name == "global":
            # Only resolve_timeout still matters to the forwarding (it decides when an
            # alert that stopped being sent is resolved); kept integrations read theirs.
            prefixes = _global_prefixes(kept)
            wanted = [
                (k, v)
                for k, v in (value.value if isinstance(value, yaml.MappingNode) else [])
                if isinstance(k, yaml.ScalarNode)
                and (
                    k.value == "resolve_timeout"
                    or (kept and k.value == "http_config")
                    or (prefixes and k.value.startswith(prefixes))
                )
            ]
            global_http = any(k.value == "http_config" for k, _ in wanted)
            if wanted:
                pairs.append((key, yaml.MappingNode(_MAP, wanted, flow_style=False)))
            continue
        if name == "route":
            value = _split_route(value, kept) if kept else _route(value, root=True)
        pairs.append((key, value))
    forwarder = _receivers(router_url, own_http=global_http)
    if kept:
        forwarder.value += _kept_receivers(_get(root.raw, "receivers"), kept)
    pairs.append((_scalar("receivers"), forwarder))
    document = yaml.MappingNode(_MAP, pairs, flow_style=False)
    text = yaml.serialize(document, Dumper=yaml.SafeDumper, allow_unicode=True, width=4096)
    return header + text
