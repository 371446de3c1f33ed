"""Where the Alertmanager config is in the file given: the file itself, a Kubernetes Secret or
ConfigMap holding `alertmanager.yaml`, or a Helm values file that wraps it.

What is recognised: a plain config (a mapping with `route` or `receivers`); a Secret with the
key `alertmanager.yaml` (or `.yml`) in `stringData` or (base64) in `data`, as the
prometheus-operator reads it; a ConfigMap with that key in `data`; Helm values of
kube-prometheus-stack (`alertmanager.config`, or the text of `alertmanager.stringConfig`), of
the prometheus-community alertmanager chart (`config`) and of the prometheus chart
(`alertmanagerFiles."alertmanager.yml"`). Anything else is refused with the reason.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import yaml

from router.importer.document import Node, SyntaxProblem, compose

_CONFIG_KEYS = ("alertmanager.yaml", "alertmanager.yml")


class NotAConfig(ValueError):
    """The file holds no Alertmanager config this command can read; says why."""


@dataclass(frozen=True, slots=True)
class Located:
    """The config's root mapping, the name report lines use, and what wrapped it."""

    root: Node
    where: str
    wrapper: str  # "" for a plain config, else e.g. "Kubernetes Secret alertmanager-main"
    # Other keys beside the config in a Secret or ConfigMap (templates, mostly).
    siblings: tuple[tuple[str, int], ...] = ()


def _is_config(node: Node) -> bool:
    return node.is_map and (node.get("route") is not None or node.get("receivers") is not None)


def _embedded(text_node: Node, where: str, label: str) -> tuple[Node, str]:
    """The config inside a string value; lines map onto the file for a `|` block."""
    raw = text_node.raw
    assert isinstance(raw, yaml.ScalarNode)
    literal_block = raw.style == "|"
    # A literal block's first content line is the line after its `|`.
    offset = text_node.line if literal_block else 0
    shown = where if literal_block else f"{where} ({label})"
    return _single(raw.value, shown, offset), shown


def _decoded(value: Node, where: str, label: str) -> tuple[Node, str]:
    try:
        text = base64.b64decode(value.text().encode("ascii"), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise NotAConfig(f"{where}:{value.line}: {label} is not base64 of UTF-8 text") from None
    shown = f"{where} ({label}, base64-decoded)"
    return _single(text, shown, 0), shown


def _single(text: str, where: str, offset: int) -> Node:
    try:
        documents = list(compose(text, offset))
    except SyntaxProblem as exc:
        raise NotAConfig(f"{where}:{exc}") from None
    documents = [d for d in documents if not d.is_null]
    if len(documents) != 1 or not documents[0].is_map:
        raise NotAConfig(f"{where}: the embedded config is not one YAML mapping")
    return documents[0]


def _kubernetes(doc: Node, where: str) -> Located:
    kind = doc.get("kind")
    kind_text = kind.text() if kind is not None and not kind.is_map and not kind.is_seq else ""
    metadata = doc.get("metadata")
    name_node = metadata.get("name") if metadata is not None else None
    name = name_node.text() if name_node is not None and not name_node.is_map else ""
    title = f"Kubernetes {kind_text} {name}".rstrip()
    if kind_text in ("Secret", "ConfigMap"):
        sections = ("stringData", "data") if kind_text == "Secret" else ("data",)
        for section in sections:
            holder = doc.get(section)
            if holder is None or not holder.is_map:
                continue
            for key in _CONFIG_KEYS:
                value = holder.get(key)
                if value is None or value.is_map or value.is_seq:
                    continue
                label = f"{section}.{key}"
                if section == "data" and kind_text == "Secret":
                    root, shown = _decoded(value, where, label)
                else:
                    root, shown = _embedded(value, where, label)
                siblings = tuple(
                    (other, node.line)
                    for s in sections
                    if (h := doc.get(s)) is not None and h.is_map
                    for other, node in h.items()
                    if other not in _CONFIG_KEYS
                )
                return Located(root, shown, title, siblings)
        raise NotAConfig(
            f"{where}:{doc.line}: {title} has no alertmanager.yaml key in"
            f" {' or '.join(sections)}: nothing to import"
        )
    if kind_text == "AlertmanagerConfig":
        raise NotAConfig(
            f"{where}:{doc.line}: {title} is a prometheus-operator AlertmanagerConfig resource"
            " (camelCase fields, namespace-scoped): import reads Alertmanager's own config"
            " format; import the Secret the operator generates"
            " (alertmanager-<name>-generated, key alertmanager.yaml.gz is gzipped: unpack it)"
        )
    if kind_text == "Alertmanager":
        raise NotAConfig(
            f"{where}:{doc.line}: {title} is the operator's Alertmanager resource, which holds no"
            " routing: import its config Secret (alertmanager-<name>, key alertmanager.yaml)"
        )
    raise NotAConfig(f"{where}:{doc.line}: a {title}, not an Alertmanager config")


def _helm(doc: Node, where: str) -> Located | None:
    alertmanager = doc.get("alertmanager")
    if alertmanager is not None and alertmanager.is_map:
        config = alertmanager.get("config")
        if config is not None and _is_config(config):
            return Located(config, where, "Helm values, alertmanager.config")
        text = alertmanager.get("stringConfig")
        if text is not None and isinstance(text.raw, yaml.ScalarNode) and text.text():
            root, shown = _embedded(text, where, "alertmanager.stringConfig")
            return Located(root, shown, "Helm values, alertmanager.stringConfig")
    config = doc.get("config")
    if config is not None and _is_config(config):
        return Located(config, where, "Helm values, config")
    files = doc.get("alertmanagerFiles")
    if files is not None and files.is_map:
        for key in _CONFIG_KEYS:
            config = files.get(key)
            if config is not None and _is_config(config):
                return Located(config, where, f'Helm values, alertmanagerFiles."{key}"')
    return None


def locate(text: str, where: str) -> Located:
    """Find the Alertmanager config in a file's text; NotAConfig says why there is none."""
    try:
        documents = [d for d in compose(text) if not d.is_null]
    except SyntaxProblem as exc:
        raise NotAConfig(f"{where}:{exc}") from None
    if not documents:
        raise NotAConfig(f"{where}:1: the file is empty")
    found: list[Located] = []
    refusals: list[str] = []
    for doc in documents:
        if not doc.is_map:
            refusals.append(f"{where}:{doc.line}: the top level is not a mapping")
            continue
        if _is_config(doc):
            found.append(Located(doc, where, ""))
            continue
        if doc.get("kind") is not None and doc.get("apiVersion") is not None:
            try:
                found.append(_kubernetes(doc, where))
            except NotAConfig as exc:
                refusals.append(str(exc))
            continue
        helm = _helm(doc, where)
        if helm is not None:
            found.append(helm)
            continue
        refusals.append(
            f"{where}:{doc.line}: no Alertmanager config here: expected `route:` and"
            " `receivers:` at the top, a Kubernetes Secret with alertmanager.yaml, or Helm"
            " values with alertmanager.config (kube-prometheus-stack), config (alertmanager"
            ' chart) or alertmanagerFiles."alertmanager.yml" (prometheus chart)'
        )
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        lines = ", ".join(str(item.root.line) for item in found)
        raise NotAConfig(
            f"{where}: {len(found)} documents hold an Alertmanager config (lines {lines}):"
            " give the file one config"
        )
    raise NotAConfig("\n".join(refusals))
