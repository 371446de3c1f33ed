"""Shared label normalization: env and severity from configured labels, aliases, defaults."""

from __future__ import annotations

from collections.abc import Mapping

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


def _pick(labels: Mapping[str, str], source: LabelSource) -> str:
    for name in source.from_labels:
        value = labels.get(name)
        if value:
            alias = source.aliases.get(value)
            return alias if alias is not None else source.aliases.get(value.lower(), value)
    return source.default


def replaced_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The sender's values of the labels `normalize` sets, for `Event.replaced_labels`."""
    return {k: labels[k] for k in NORMALIZED_LABELS if k in labels}


def normalize(
    labels: Mapping[str, str], config: Config, *, source: str, severity: str | None = None
) -> dict[str, str]:
    """Labels plus `source`, `env` and `severity` as routes expect them."""
    out = dict(labels)
    out["source"] = source
    out["env"] = _pick(labels, config.environment)
    if severity is not None:
        out["severity"] = config.severity.aliases.get(severity, severity)
    else:
        out["severity"] = _pick(labels, config.severity)
    return out
