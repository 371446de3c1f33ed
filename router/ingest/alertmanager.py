"""Alertmanager webhook (version 4) -> events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from router.config.schema import Config
from router.ingest.normalize import clean_labels, label_fingerprint, normalize, replaced_labels
from router.model import Event, Status, parse_time

SOURCE = "alertmanager"


class _Lenient(BaseModel):
    # Newer Alertmanagers add keys (notification_reason, routeLabels): ignore what we
    # do not know instead of rejecting the webhook.
    model_config = ConfigDict(extra="ignore")


def _rfc3339(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 time string")
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 time: {value!r}") from exc


class AlertmanagerAlert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str | None]
    annotations: dict[str, str | None] = Field(default_factory=dict)
    # Parsed once here; to_events uses the datetimes.
    startsAt: Annotated[datetime | None, BeforeValidator(_rfc3339)]
    endsAt: Annotated[datetime | None, BeforeValidator(_rfc3339)] = None
    generatorURL: str | None = ""
    fingerprint: str | None = ""

    @field_validator("labels")
    @classmethod
    def _has_labels(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        if not value:
            raise ValueError("an alert needs at least one label")
        return value


class AlertmanagerWebhook(_Lenient):
    version: str
    groupKey: str = Field(min_length=1)
    receiver: str
    status: Literal["firing", "resolved"]
    alerts: list[AlertmanagerAlert] = Field(min_length=1)
    groupLabels: dict[str, str | None] = Field(default_factory=dict)
    commonLabels: dict[str, str | None] = Field(default_factory=dict)
    commonAnnotations: dict[str, str | None] = Field(default_factory=dict)
    externalURL: str | None = ""
    truncatedAlerts: int = 0

    @field_validator("version")
    @classmethod
    def _version_4(cls, value: str) -> str:
        if value != "4":
            raise ValueError(f'unsupported webhook version {value!r}: expected "4"')
        return value


def to_events(payload: AlertmanagerWebhook, config: Config) -> list[Event]:
    """One event per alert; the group is (Alertmanager receiver, groupKey)."""
    # Both peers of an HA pair send the same receiver and groupKey: one group for us.
    group_key = f"am/{payload.receiver}/{payload.groupKey}"
    events = []
    for alert in payload.alerts:
        own = clean_labels(alert.labels)
        labels = normalize(own, config, source=SOURCE)
        events.append(
            Event(
                source=SOURCE,
                fingerprint=alert.fingerprint or label_fingerprint(own),
                group_key=group_key,
                status=Status(alert.status),
                labels=labels,
                annotations=clean_labels(alert.annotations),
                starts_at=alert.startsAt,
                ends_at=alert.endsAt,
                generator_url=alert.generatorURL or "",
                external_url=payload.externalURL or "",
                replaced_labels=replaced_labels(own),
                # Alertmanager's max_alerts cut the group: the message must say so.
                truncated_alerts=payload.truncatedAlerts,
            )
        )
    return events
