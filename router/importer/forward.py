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
"""

from __future__ import annotations

import yaml

from router.importer.document import Node

RECEIVER = "alert-router"
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


def _receivers(router_url: str) -> yaml.SequenceNode:
    webhook = yaml.MappingNode(
        _MAP,
        [
            (_scalar("url"), _scalar(router_url.rstrip("/") + WEBHOOK_PATH)),
            (_scalar("send_resolved"), _scalar("true", _BOOL)),
        ],
        flow_style=False,
    )
    receiver = yaml.MappingNode(
        _MAP,
        [
            (_scalar("name"), _scalar(RECEIVER)),
            (_scalar("webhook_configs"), yaml.SequenceNode(_SEQ, [webhook], flow_style=False)),
        ],
        flow_style=False,
    )
    return yaml.SequenceNode(_SEQ, [receiver], flow_style=False)


def forwarding_config(root: Node, router_url: str, header: str) -> str:
    """The text of the forwarding alertmanager.yml for the config at `root`."""
    assert isinstance(root.raw, yaml.MappingNode)
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in root.raw.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if name in _MOVED:
            continue
        if name == "global":
            # Only resolve_timeout still matters: it decides when an alert that stopped
            # being sent is resolved.
            kept = [
                (k, v)
                for k, v in (value.value if isinstance(value, yaml.MappingNode) else [])
                if isinstance(k, yaml.ScalarNode) and k.value == "resolve_timeout"
            ]
            if kept:
                pairs.append((key, yaml.MappingNode(_MAP, kept, flow_style=False)))
            continue
        if name == "route":
            value = _route(value, root=True)
        pairs.append((key, value))
    pairs.append((_scalar("receivers"), _receivers(router_url)))
    document = yaml.MappingNode(_MAP, pairs, flow_style=False)
    text = yaml.serialize(document, Dumper=yaml.SafeDumper, allow_unicode=True, width=4096)
    return header + text
