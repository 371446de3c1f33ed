"""The normalized types every stage of the pipeline speaks, and what people did to a group
(a click is an `Action`; its effect on the group is `GroupActions`)."""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any


class Status(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


# How a route is named in records and timelines: the path from the root, joined.
PATH_SEPARATOR = " > "
ROOT_PATH = "root route"

# The labels normalization sets on every event, whatever the sender called them.
NORMALIZED_LABELS = ("source", "env", "severity")
# Until events had `replaced_labels`, the sender's values of NORMALIZED_LABELS were kept
# in `details` under this prefix; events recorded then are read back into the new field.
_LEGACY_ORIGINAL_PREFIX = "original:"


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp (nanoseconds and offsets allowed); Go's zero time is None."""
    if not value or value.startswith("0001-01-01"):
        return None
    text = value.strip().upper()
    if len(text) < 19 or text[10] not in "Tt ":
        raise ValueError(f"not an RFC 3339 date-time: {value!r}")
    # Python 3.11's parser takes "Z" and nanoseconds (kept to microseconds) as they come.
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    # Kept in UTC: comparisons and formatting need no conversion later.
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"not a time in years 1 to 9999 in UTC: {value!r}") from None


def format_time(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, the way Alertmanager's API shows it."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def format_time_often(value: datetime | None) -> str | None:
    """`format_time`, remembering UTC times: the alerts of a group often started together,
    and an alert is in many notifications and records."""
    if value is not None and value.tzinfo is UTC:
        return _format_utc(value)
    return format_time(value)


# Only datetime's own UTC is kept: equal times in other zones would share one text.
@functools.lru_cache(maxsize=4096)
def _format_utc(value: datetime) -> str | None:
    return format_time(value)


def slot_setters(cls: type) -> tuple[Any, ...]:
    """The setters of a slotted dataclass's fields, in field order, for an `__init__` that
    sets them directly (a frozen one's generated `__init__` costs twice as much); raises
    TypeError unless that `__init__` takes every field, in field order."""
    names = tuple(f.name for f in fields(cls))
    if vars(cls)["__init__"].__code__.co_varnames[1 : len(names) + 1] != names:
        raise TypeError(f"{cls.__name__}.__init__ must take every field, in field order")
    return tuple(getattr(cls, name).__set__ for name in names)


@dataclass(frozen=True, slots=True, init=False)
class Event:
    """One alert or Argo CD occurrence, with the labels routes match on.

    `group_key` is the source's own group identity (Alertmanager `groupKey`, or the Argo CD
    incident key); together with the receiver it names a notification group.
    """

    source: str
    fingerprint: str
    group_key: str
    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""
    external_url: str = ""
    # Argo CD one-shot triggers (on-deployed, ...) never resolve and never repeat.
    one_shot: bool = False
    # Source details that are not labels, shown to readers: Argo CD revision, message,
    # sync/health status.
    details: Mapping[str, str] = field(default_factory=dict)
    # The sender's own values of the NORMALIZED_LABELS it had (normalization replaced
    # them): links back to the sender, such as an Alertmanager silence, need the labels
    # the sender knows. Internal, never shown to readers.
    replaced_labels: Mapping[str, str] = field(default_factory=dict)
    # How many alerts of this group Alertmanager left out (`max_alerts`).
    truncated_alerts: int = 0
    # The group labels Alertmanager sent (`groupLabels`), as it knows them: what a silence
    # of the whole group matches on. Internal, never shown to readers.
    group_labels: Mapping[str, str] = field(default_factory=dict)
    # Set only by the router itself, never from a payload: why it made this event
    # ("resolved_while_silenced", "escalated"), and what readers are told about it.
    origin: Mapping[str, str] = field(default_factory=dict)

    # Every webhook makes one Event per alert: the generated __init__ of a frozen dataclass
    # sets each field through object.__setattr__, twice the cost of setting the slots
    # directly as this one does (`_EVENT_SLOTS`; same fields, order and defaults, checked
    # at import below).
    def __init__(
        self,
        source: str,
        fingerprint: str,
        group_key: str,
        status: Status,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        generator_url: str = "",
        external_url: str = "",
        one_shot: bool = False,
        details: Mapping[str, str] | None = None,
        replaced_labels: Mapping[str, str] | None = None,
        truncated_alerts: int = 0,
        group_labels: Mapping[str, str] | None = None,
        origin: Mapping[str, str] | None = None,
    ) -> None:
        (
            set_source,
            set_fingerprint,
            set_group_key,
            set_status,
            set_labels,
            set_annotations,
            set_starts_at,
            set_ends_at,
            set_generator_url,
            set_external_url,
            set_one_shot,
            set_details,
            set_replaced_labels,
            set_truncated_alerts,
            set_group_labels,
            set_origin,
        ) = _EVENT_SLOTS
        set_source(self, source)
        set_fingerprint(self, fingerprint)
        set_group_key(self, group_key)
        set_status(self, status)
        set_labels(self, labels)
        set_annotations(self, {} if annotations is None else annotations)
        set_starts_at(self, starts_at)
        set_ends_at(self, ends_at)
        set_generator_url(self, generator_url)
        set_external_url(self, external_url)
        set_one_shot(self, one_shot)
        set_details(self, {} if details is None else details)
        set_replaced_labels(self, {} if replaced_labels is None else replaced_labels)
        set_truncated_alerts(self, truncated_alerts)
        set_group_labels(self, {} if group_labels is None else group_labels)
        set_origin(self, {} if origin is None else origin)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    def labels_as_sent(self) -> dict[str, str]:
        """The labels as the sender sent them, before normalization."""
        sent = {k: v for k, v in self.labels.items() if k not in NORMALIZED_LABELS}
        sent.update(self.replaced_labels)
        return sent

    def to_dict(self) -> dict[str, Any]:
        data = self.shared_dict()
        for name in _EVENT_MAPPINGS:
            if name in data:
                data[name] = dict(data[name])
        return data

    def shared_dict(self) -> dict[str, Any]:
        """`to_dict` without copies of the mappings (they are this event's own), for an
        encoder that only reads them: the store's, on the webhook path."""
        data: dict[str, Any] = {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "group_key": self.group_key,
            "status": self.status.value,
            "labels": self.labels,
            "annotations": self.annotations,
            "starts_at": format_time_often(self.starts_at),
            "ends_at": format_time_often(self.ends_at),
            "generator_url": self.generator_url,
            "external_url": self.external_url,
            "one_shot": self.one_shot,
            "details": self.details,
            "replaced_labels": self.replaced_labels,
            "truncated_alerts": self.truncated_alerts,
            "group_labels": self.group_labels,
        }
        if self.origin:
            data["origin"] = self.origin
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        details = dict(data.get("details") or {})
        replaced = data.get("replaced_labels")
        if replaced is None:
            # Recorded before the field existed: the bookkeeping sat in `details`.
            replaced = {
                key.removeprefix(_LEGACY_ORIGINAL_PREFIX): details.pop(key)
                for key in [k for k in details if k.startswith(_LEGACY_ORIGINAL_PREFIX)]
            }
            replaced = {k: v for k, v in replaced.items() if v}
        truncated = data.get("truncated_alerts")
        if truncated is None:
            truncated = details.pop("truncatedAlerts", 0)
        return cls(
            source=data["source"],
            fingerprint=data["fingerprint"],
            group_key=data["group_key"],
            status=Status(data["status"]),
            labels=dict(data["labels"]),
            annotations=dict(data.get("annotations") or {}),
            starts_at=parse_time(data.get("starts_at")),
            ends_at=parse_time(data.get("ends_at")),
            generator_url=data.get("generator_url") or "",
            external_url=data.get("external_url") or "",
            one_shot=bool(data.get("one_shot", False)),
            details=details,
            replaced_labels=dict(replaced),
            truncated_alerts=int(truncated or 0),
            group_labels=dict(data.get("group_labels") or {}),
            origin={str(k): str(v) for k, v in (data.get("origin") or {}).items()},
        )


# The fields `to_dict` copies (as dicts) so that its caller owns what it gets.
_EVENT_MAPPINGS = (
    "labels",
    "annotations",
    "details",
    "replaced_labels",
    "group_labels",
    "origin",
)

_EVENT_SLOTS = slot_setters(Event)


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """What the matched route decided for one receiver, frozen at routing time."""

    receiver: str
    path: str
    repeat_interval: float
    send_resolved: bool
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    # (after seconds, receiver) per escalation step, `after` increasing.
    escalate: tuple[tuple[float, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "receiver": self.receiver,
            "path": self.path,
            "repeat_interval": self.repeat_interval,
            "send_resolved": self.send_resolved,
            "mute_time_intervals": list(self.mute_time_intervals),
            "active_time_intervals": list(self.active_time_intervals),
        }
        if self.escalate:
            data["escalate"] = [list(step) for step in self.escalate]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteSettings:
        return cls(
            receiver=data["receiver"],
            path=data["path"],
            repeat_interval=float(data["repeat_interval"]),
            send_resolved=bool(data["send_resolved"]),
            mute_time_intervals=tuple(data.get("mute_time_intervals") or ()),
            active_time_intervals=tuple(data.get("active_time_intervals") or ()),
            escalate=tuple((float(a), str(r)) for a, r in data.get("escalate") or ()),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """What one receiver is to be told about one group: the unit of delivery."""

    id: str
    route: RouteSettings
    group_key: str
    events: Sequence[Event]
    created_at: datetime
    # Not due before this time (epoch seconds; 0: at once). A problem that may clear up by
    # itself (an Argo CD health flap) waits out its hold here, durably.
    not_before: float = 0.0

    @property
    def receiver(self) -> str:
        return self.route.receiver


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class NflogEntry:
    """What one receiver was last told about one group (Alertmanager's nflog entry)."""

    receiver: str
    group_key: str
    firing: frozenset[str]
    resolved: frozenset[str]
    first_notified_at: float
    last_notified_at: float
    expires_at: float
    # What the channel needs to follow up (Slack channel+ts, email Message-ID).
    channel_state: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "group_key": self.group_key,
            "firing": sorted(self.firing),
            "resolved": sorted(self.resolved),
            "first_notified_at": self.first_notified_at,
            "last_notified_at": self.last_notified_at,
            "expires_at": self.expires_at,
            "channel_state": dict(self.channel_state),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NflogEntry:
        return cls(
            receiver=data["receiver"],
            group_key=data["group_key"],
            firing=frozenset(data["firing"]),
            resolved=frozenset(data["resolved"]),
            first_notified_at=float(data["first_notified_at"]),
            last_notified_at=float(data["last_notified_at"]),
            expires_at=float(data["expires_at"]),
            channel_state=dict(data.get("channel_state") or {}),
        )


@dataclass(frozen=True, slots=True)
class AlertState:
    """The last known state of one alert, kept for inhibition."""

    fingerprint: str
    labels: Mapping[str, str]
    firing: bool
    expires_at: float


@dataclass(frozen=True, slots=True)
class Deploy:
    """An Argo CD sync that reached an app, kept to name the deploy before an alert."""

    app: str
    namespace: str
    revision: str
    at: float
    trigger: str
    argocd_url: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "namespace": self.namespace,
            "revision": self.revision,
            "at": self.at,
            "trigger": self.trigger,
            "argocd_url": self.argocd_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deploy:
        return cls(
            app=data["app"],
            namespace=data["namespace"],
            revision=data["revision"],
            at=float(data["at"]),
            trigger=data["trigger"],
            argocd_url=data.get("argocd_url", ""),
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """Pending notifications of one (receiver, group), taken by one worker under a lease.

    Several webhooks for the same group can be waiting at once (HA pairs, storms); they
    are delivered together, so a group is never notified twice for one change.
    """

    receiver: str
    group_key: str
    notifications: Sequence[Notification]
    attempts: int
    token: str

    @property
    def ids(self) -> list[str]:
        return [n.id for n in self.notifications]

    @property
    def latest(self) -> Notification:
        return self.notifications[-1]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a claim ended, written atomically with the notification log update."""

    state: DeliveryState
    reason: str
    error: str = ""
    nflog: NflogEntry | None = None
    # Set when this outcome's message also carried other claims (a digest).
    delivered_in: str = ""


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One row of `GET /api/v1/notifications`."""

    id: str
    receiver: str
    group_key: str
    route_path: str
    alerts: Sequence[Mapping[str, Any]]
    state: str
    reason: str
    attempts: int
    last_error: str
    created_at: float
    updated_at: float
    delivered_in: str = ""
    # The first alert's normalized labels and name, as the console filters and shows them.
    env: str = ""
    severity: str = ""
    source: str = ""
    alertname: str = ""
    # Held until this time (epoch seconds; 0: not held).
    not_before: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "receiver": self.receiver,
            "group_key": self.group_key,
            "route_path": self.route_path,
            "alerts": list(self.alerts),
            "state": self.state,
            "reason": self.reason,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "delivered_in": self.delivered_in,
            "env": self.env,
            "severity": self.severity,
            "source": self.source,
            "alertname": self.alertname,
            "not_before": self.not_before,
        }


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One decision about one notification, for its timeline.

    `kind` is one of: received, routed, held, muted, inhibited, deduplicated, enriched,
    attempt, sent, suppressed, failed, dead, digested, retried, acknowledged,
    unacknowledged, silenced, unsilenced, escalation (armed), escalated, stopped. `text` is
    one line for people; `detail` the same facts for machines (interval, rule, source
    alert, channel, ts, permalink, message id, error, digest id, user...)."""

    at: float
    kind: str
    text: str
    detail: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at, "kind": self.kind, "text": self.text, "detail": dict(self.detail)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimelineEntry:
        detail = data.get("detail") or {}
        return cls(
            at=float(data["at"]),
            kind=str(data["kind"]),
            text=str(data.get("text", "")),
            detail={str(k): str(v) for k, v in detail.items()},
        )


@dataclass(frozen=True, slots=True)
class SilenceScope:
    """What a group's Silence buttons create, fixed when its message is posted.

    `alertmanager` names a configured Alertmanager and `matchers` are `(name, op, value)`
    in Alertmanager's syntax. No Alertmanager and no matchers: the router mutes the group
    itself (Argo CD). `unavailable` says why the group can have no silence at all.
    """

    alertmanager: str = ""
    matchers: tuple[tuple[str, str, str], ...] = ()
    unavailable: str = ""

    @property
    def offered(self) -> bool:
        return not self.unavailable

    @property
    def by_router(self) -> bool:
        return not self.unavailable and not self.alertmanager

    def matcher_text(self) -> str:
        """`{alertname="DiskFull", team="payments"}`, as Alertmanager writes matchers."""
        inner = ", ".join(
            f"{name}{op}{json.dumps(value, ensure_ascii=False)}"
            for name, op, value in self.matchers
        )
        return "{" + inner + "}"

    def to_json(self) -> str:
        data: dict[str, Any] = {"am": self.alertmanager, "m": [list(m) for m in self.matchers]}
        if self.unavailable:
            data["why"] = self.unavailable
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> SilenceScope:
        data = json.loads(text)
        return cls(
            alertmanager=str(data.get("am", "")),
            matchers=tuple((str(n), str(o), str(v)) for n, o, v in data.get("m", [])),
            unavailable=str(data.get("why", "")),
        )


# What people did to a group. A click becomes an `Action`, recorded durably before Slack
# gets its 200 and carried out later by whichever replica claims it; what acting did to a
# group is its `GroupActions`, changed only by compare-and-set on its `version`, so two
# replicas carrying out clicks on one group never both create a silence.

# The id prefix of an Acknowledge given on the console (for the same Slack message).
CONSOLE_ACTION_PREFIX = "console-"


class ActionKind(enum.StrEnum):
    ACK = "ack"
    UNACK = "unack"
    SILENCE = "silence"
    UNSILENCE = "unsilence"


@dataclass(frozen=True, slots=True)
class Action:
    """One click to carry out. `id` is its idempotency key: the same click delivered twice
    (Slack's retry, two replicas) is recorded once."""

    id: str
    kind: ActionKind
    receiver: str
    group_key: str
    user_id: str
    user_name: str
    # The Slack message clicked (channel ID and ts): it must be the group's current one.
    channel: str
    message_ts: str
    received_at: float
    # Silence length in seconds (silence only).
    duration: float = 0.0
    # The Slack workspace's domain, for a link back to the message.
    team_domain: str = ""

    @property
    def names_no_message(self) -> bool:
        """A console (un)acknowledgement of one receiver's group, whatever it was sent as
        (email, a webhook, a Slack message with or without buttons)."""
        return self.id.startswith(CONSOLE_ACTION_PREFIX) and not self.message_ts

    @property
    def origin(self) -> str:
        """Where the click was made, as the timeline says it: `Slack` or `the console`."""
        return "the console" if self.id.startswith(CONSOLE_ACTION_PREFIX) else "Slack"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "kind": self.kind.value}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Action:
        data = json.loads(text)
        data["kind"] = ActionKind(data["kind"])
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True, slots=True)
class ActionClaim:
    """An action taken by one worker under a lease; `attempts` before this one."""

    action: Action
    attempts: int
    token: str


@dataclass(frozen=True, slots=True)
class GroupActions:
    """What people did to one (receiver, group): who acknowledged it and when, and the
    silence they set (an Alertmanager silence id, or the router's own mute when empty)."""

    receiver: str
    group_key: str
    acked_by: str = ""
    acked_by_name: str = ""
    acked_at: float = 0.0
    silenced_by: str = ""
    silenced_by_name: str = ""
    silenced_at: float = 0.0
    silenced_until: float = 0.0
    silence_id: str = ""
    # Which configured Alertmanager holds `silence_id`, and what it matches (as shown).
    silence_alertmanager: str = ""
    silence_matchers: str = ""
    # The action creating a silence right now: no other may start one meanwhile.
    silence_pending: str = ""
    # The last failure to carry out an action, shown in the thread ("Could not ...").
    last_error: str = ""
    # Bumped by every change; a write names the version it read (compare-and-set).
    version: int = 0

    @property
    def acknowledged(self) -> bool:
        return bool(self.acked_by)

    def silenced(self, now: float) -> bool:
        """Whether a silence set from here holds at `now`."""
        return bool(self.silenced_by) and self.silenced_until > now

    def router_muted(self, now: float) -> bool:
        """Whether the router itself mutes the group (a silence without Alertmanager)."""
        return self.silenced(now) and not self.silence_id

    def cleared_ack(self) -> GroupActions:
        """The same state, no longer acknowledged."""
        return replace(self, acked_by="", acked_by_name="", acked_at=0.0)

    def cleared_silence(self) -> GroupActions:
        """The same state, no longer silenced."""
        return replace(
            self,
            silenced_by="",
            silenced_by_name="",
            silenced_at=0.0,
            silenced_until=0.0,
            silence_id="",
            silence_alertmanager="",
            silence_matchers="",
            silence_pending="",
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as the read API and the console show it."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GroupActions:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupActions:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
