"""Alertmanager webhook -> events.

Reads what Alertmanager sends (webhook version "4", and "3" before it) and what the many
tools that imitate it send: a number where text belongs is read as its text (a version 3
`groupKey` is a number), an alert without `status` is firing or resolved by its `endsAt`,
one without `fingerprint` gets the one Alertmanager would have given it (and alerts sent
in one body with one fingerprint but different labels stay apart: see `alert_identity`),
and a body without `groupKey` is grouped by its `groupLabels` or, lacking those, by alert
name.
Refused (the schema error names the field): no alerts, an alert with no label that has a
value, and values that cannot be read (an object where a label value belongs, a `status`
that is neither firing nor resolved, a time that is neither RFC 3339 nor Unix seconds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError
from pydantic_core import PydanticCustomError

from router.config.schema import Config
from router.identity import alert_identity
from router.ingest.normalize import normalizer, replaced_labels
from router.model import Event, Status

SOURCE = "alertmanager"

# Go's zero time: Alertmanager sends it as the end of an alert that has not ended.
GO_ZERO = datetime(1, 1, 1, tzinfo=UTC)
# Times outside these bounds are no alert's (Go's zero time is the usual one): they still
# say whether an alert has ended, but are not shown, nor used to compute time windows.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class _Lenient(BaseModel):
    # Newer Alertmanagers add keys (notification_reason, routeLabels): ignore what we do
    # not know instead of rejecting the webhook. Version 3 sent `groupKey` as a number, and
    # hand-written senders put numbers where Alertmanager puts strings: read their text.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


def _absent(value: object) -> bool:
    # JSON null and "": Prometheus treats an empty label as no label. Texts like "null" or
    # "<no value>" are real values here (routes may match them, as Alertmanager's do);
    # only Argo CD's templates print them for a missing field.
    return value is None or value == ""


def _values(value: object) -> object:
    """Drops the names without a value from a label or annotation map; the schema reads the
    rest (a number as its text, an object or a list refused)."""
    if not isinstance(value, dict):
        return {} if value is None else value
    values = value.values()
    try:
        # Nearly every map has a value for every name: check that in C and pass it on.
        if None not in values and "" not in values and "" not in value:
            return value
    except TypeError:
        # An object or a list among the values: the schema names it.
        return value
    return {k: v for k, v in value.items() if k and not _absent(v)}


def _labels(value: object) -> object:
    labels = _values(value)
    if isinstance(labels, dict) and not labels:
        raise PydanticCustomError("no_labels", "an alert needs at least one label with a value")
    return labels


Labels = Annotated[dict[str, str], BeforeValidator(_values)]


# Parsed in pydantic's core (RFC 3339, nanoseconds and offsets); `""` is no time.
Time = Annotated[datetime | None, BeforeValidator(_blank_is_none)]


class AlertmanagerAlert(_Lenient):
    status: Literal["firing", "resolved"] | None = None
    labels: Annotated[dict[str, str], BeforeValidator(_labels)]
    annotations: Labels = Field(default_factory=dict)
    startsAt: Time = None
    endsAt: Time = None
    generatorURL: str | None = ""
    fingerprint: str | None = ""


class AlertmanagerWebhook(_Lenient):
    """Alertmanager's webhook receiver body, version 4; read as far as it can be"""

    # Any version is read the same way: the fields below have not changed meaning.
    version: str | None = None
    groupKey: str | None = None
    receiver: str | None = ""
    status: Literal["firing", "resolved"] | None = None
    alerts: list[AlertmanagerAlert] = Field(min_length=1)
    groupLabels: Labels = Field(default_factory=dict)
    externalURL: str | None = ""
    truncatedAlerts: int | None = 0


# What nearly every sender sends (text for every label, nothing to drop but empty texts,
# times or none) read by pydantic's core alone, without the models' Python validators that
# cost as much as the rest of the parse. A number where text belongs is not taken here:
# read from JSON directly its text differs (1.0 is "1") from that of the value the models'
# validators see ("1.0").
_Text = Annotated[str, Strict()]


class _PlainAlert(AlertmanagerAlert):
    labels: dict[str, _Text]
    annotations: dict[str, _Text] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None


class _PlainWebhook(AlertmanagerWebhook):
    alerts: list[_PlainAlert] = Field(min_length=1)  # type: ignore[assignment]
    groupLabels: dict[str, _Text] = Field(default_factory=dict)


def read_plain(body: bytes) -> AlertmanagerWebhook | None:
    """The webhook in `body` as AlertmanagerWebhook reads it, if it is an ordinary one;
    None when only AlertmanagerWebhook can tell (and name what is wrong, if anything is)."""
    try:
        payload = _PlainWebhook.model_validate_json(body)
    except ValidationError:
        return None
    _drop_blanks(payload.groupLabels)
    for alert in payload.alerts:
        _drop_blanks(alert.annotations)
        if not _drop_blanks(alert.labels):
            return None
    return payload


def _drop_blanks(values: dict[str, str]) -> bool:
    """Drops the names without a value (`_values`), in place; whether any are left."""
    kept = _values(values)
    if kept is not values:
        values.clear()
        values.update(cast(dict[str, str], kept))
    return bool(values)


def label_set_text(labels: Mapping[str, str]) -> str:
    """A label set the way Alertmanager prints one: `{a="b", c="d"}`, sorted by name."""
    pairs = (f"{name}={json.dumps(labels[name], ensure_ascii=False)}" for name in sorted(labels))
    return "{" + ", ".join(pairs) + "}"


def _body_group(payload: AlertmanagerWebhook) -> str | None:
    # Both peers of an HA pair send the same receiver and groupKey: one group for us.
    if payload.groupKey:
        return payload.groupKey
    # Alertmanager's own key is the route's plus the group labels: without it, the group
    # labels alone still name the group.
    if payload.groupLabels:
        return "{}:" + label_set_text(payload.groupLabels)
    return None


def _alert_group(labels: Mapping[str, str]) -> str:
    # Nothing names the body's group: an alert goes with the others of its name, or alone.
    name = labels.get("alertname")
    return "{}:" + label_set_text({"alertname": name} if name else labels)


def _aware(value: datetime) -> datetime:
    # A time without an offset is UTC, as Alertmanager writes them.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _shown(value: datetime | None) -> datetime | None:
    """The time in UTC, or None when it is not a time any alert could have."""
    if value is None:
        return None
    # Go's zero time and the like are out of range whatever their offset (under a day).
    if not _EARLIEST.year - 1 <= value.year <= _LATEST.year:
        return None
    # In datetime's own UTC (pydantic's is another object, whose offset costs a call from
    # Python each time it is asked): later comparisons and formatting take it as it is.
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc if _EARLIEST <= utc < _LATEST else None


# Status by its text: the enum's own lookup costs more, once per alert.
_STATUSES = {status.value: status for status in Status}


def _status(alert: AlertmanagerAlert, fallback: Status, now: datetime) -> Status:
    if alert.status is not None:
        return _STATUSES[alert.status]
    if alert.endsAt is None:
        return fallback
    ends = _aware(alert.endsAt)
    # As Alertmanager's `Resolved()`: not while the end is Go's zero time, and over once the
    # end time is reached.
    return Status.FIRING if ends == GO_ZERO or ends > now else Status.RESOLVED


def _shared_fingerprints(sent: list[str], alerts: list[AlertmanagerAlert]) -> set[str]:
    """Fingerprints this body sends for more than one label set (a broken sender's)."""
    if len(set(sent)) == len(sent):
        return set()
    seen: dict[str, dict[str, str]] = {}
    shared = set()
    for fingerprint, alert in zip(sent, alerts, strict=True):
        first = seen.setdefault(fingerprint, alert.labels)
        if first != alert.labels:
            shared.add(fingerprint)
    return shared


def to_events(payload: AlertmanagerWebhook, config: Config, now: datetime) -> list[Event]:
    """One event per alert; the group is (Alertmanager receiver, groupKey)."""
    fallback = _STATUSES[payload.status] if payload.status else Status.FIRING
    prefix = f"am/{payload.receiver or ''}/"
    body_group = _body_group(payload)
    group_key = prefix + body_group if body_group is not None else None
    # Alertmanager's max_alerts cut the group: the message must say so.
    truncated = max(payload.truncatedAlerts or 0, 0)
    external_url = payload.externalURL or ""
    group_labels = payload.groupLabels
    normalized = normalizer(config, source=SOURCE)
    sent = [(alert.fingerprint or "").strip() for alert in payload.alerts]
    shared = _shared_fingerprints(sent, payload.alerts)
    events = []
    for fingerprint, alert in zip(sent, payload.alerts, strict=True):
        own = alert.labels
        status = alert.status
        # Positional (in field order): a class called with keywords makes a dict each time.
        events.append(
            Event(
                SOURCE,
                alert_identity(fingerprint, own, shared=fingerprint in shared),
                group_key or prefix + _alert_group(own),
                _STATUSES[status] if status else _status(alert, fallback, now),
                normalized(own),
                alert.annotations,
                _shown(alert.startsAt),
                _shown(alert.endsAt),
                alert.generatorURL or "",
                external_url,
                False,  # one_shot
                None,  # details
                replaced_labels(own),
                truncated,
                group_labels,
            )
        )
    return events
