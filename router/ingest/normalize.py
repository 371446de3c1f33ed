"""Shared label normalization: env and severity from configured labels, aliases, defaults."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from router.config.schema import Config, LabelSource
from router.model import NORMALIZED_LABELS

# What Argo CD's Go templates render for a missing field.
ABSENT_VALUES = frozenset({"", "<no value>", "null", "<nil>"})


def present(value: object) -> str | None:
    """The value as a string, or None where the sender meant "absent"."""
    if value is None:
        return None
    text = str(value)
    return None if text.strip() in ABSENT_VALUES else text


def clean_labels(labels: Mapping[str, object] | None) -> dict[str, str]:
    """Drop absent values; label values are always strings."""
    out: dict[str, str] = {}
    for key, value in (labels or {}).items():
        # Nearly every value is an ordinary string: skip the general path for those.
        if type(value) is str and value and value not in ABSENT_VALUES and value.strip() == value:
            out[key] = value
            continue
        text = present(value)
        if text is not None and key:
            out[str(key)] = text
    return out


def _picker(source: LabelSource) -> Callable[[Mapping[str, str]], str]:
    """The value `source` gives a label set: its first label with a value, aliased."""
    names = tuple(source.from_labels)
    aliases = source.aliases
    default = source.default

    def pick(labels: Mapping[str, str]) -> str:
        for name in names:
            value = labels.get(name)
            if value:
                alias = aliases.get(value)
                return alias if alias is not None else aliases.get(value.lower(), value)
        return default

    return pick


def replaced_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The sender's values of the labels `normalize` sets, for `Event.replaced_labels`."""
    replaced = {}
    for name in NORMALIZED_LABELS:
        value = labels.get(name)
        if value is not None:
            replaced[name] = value
    return replaced


def normalizer(
    config: Config, *, source: str, severity: str | None = None
) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """`normalize` for label sets of one config, source and severity: what it reads of the
    config is read once, not once per alert of a webhook."""
    env = _picker(config.environment)
    pick_severity: Callable[[Mapping[str, str]], str]
    if severity is None:
        pick_severity = _picker(config.severity)
    else:
        aliased = config.severity.aliases.get(severity, severity)

        def pick_severity(_: Mapping[str, str]) -> str:
            return aliased

    def normalized(labels: Mapping[str, str]) -> dict[str, str]:
        out = dict(labels)
        out["source"] = source
        out["env"] = env(labels)
        out["severity"] = pick_severity(labels)
        return out

    return normalized


def normalize(
    labels: Mapping[str, str], config: Config, *, source: str, severity: str | None = None
) -> dict[str, str]:
    """Labels plus `source`, `env` and `severity` as routes expect them."""
    return normalizer(config, source=source, severity=severity)(labels)
