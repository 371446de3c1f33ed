"""The bodies the HTTP API takes and answers, as pydantic models: the OpenAPI document's
component schemas are generated from them (router/web/openapi.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.heartbeats.status import STATES as HEARTBEAT_STATES
from router.model import DeliveryState, GroupActions

_EPOCH = "epoch seconds"
# Times are answered as RFC 3339 text (and read as text, to say what is wrong with one).
DateTimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Error(BaseModel):
    error: str = Field(description="what to change")


class Accepted(BaseModel):
    accepted: int = Field(ge=0)


class Status(BaseModel):
    status: str
    error: str = ""
    errors: list[str] = []
    failed_teams: list[dict[str, Any]] = []


class Notification(BaseModel):
    """the delivery record of one notification to one receiver"""

    id: str
    receiver: str
    group_key: str
    route_path: str = Field(description="the route that chose the receiver")
    alerts: list[dict[str, Any]]
    state: DeliveryState
    reason: str = Field(
        description="first, new_alerts, resolved, repeat, duplicate, muted,"
        " inhibited, flapped, ... or the error reason of a failed/dead one"
    )
    attempts: int = Field(ge=0)
    last_error: str
    created_at: float = Field(description=_EPOCH)
    updated_at: float = Field(description=_EPOCH)
    delivered_in: str = Field(
        description="the record or digest that carried this one, if another did"
    )
    env: str = ""
    severity: str = ""
    source: str = ""
    alertname: str = ""
    not_before: float = Field(0, description="held until (epoch seconds; 0: not)")


class TimelineEntry(BaseModel):
    at: float = Field(description=_EPOCH)
    kind: str = Field(
        description="received, routed, held, muted, inhibited, deduplicated,"
        " enriched, attempt, sent, suppressed, failed, dead, digested, retried, ..."
    )
    text: str
    detail: dict[str, str] = Field(description="the same facts for machines")


class NotificationWithTimeline(Notification):
    timeline: list[TimelineEntry]
    actions: GroupActions | None


class NotificationPage(BaseModel):
    notifications: list[Notification]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last"
    )


class GroupReceiver(BaseModel):
    receiver: str
    state: str
    reason: str
    latest: str = Field(description="id of its latest record")
    actions: GroupActions | None


class Group(BaseModel):
    group_key: str
    receivers: list[GroupReceiver]
    notifications: list[Notification]
    next_cursor: str | None


class Retried(BaseModel):
    retried: bool
    notification: Notification | None


class RouteTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = Field(description="the alert's labels", min_length=1)
    at: DateTimeText = Field("", description="when (RFC 3339); default now")


class EscalationStep(BaseModel):
    after: float
    to: str


class RouteMatch(BaseModel):
    receiver: str
    path: str
    muted_by: str
    escalate: list[EscalationStep] = Field(
        description="While the group fires unacknowledged: who is told after how many seconds."
    )


class InhibitedBy(BaseModel):
    rule: str = ""
    source: dict[str, str] = Field(description="the firing alert's labels")


class RouteTestResult(BaseModel):
    labels: dict[str, str] = Field(description="the labels once normalized (env, severity, source)")
    at: str
    receivers: list[str] = Field(description="receivers told (unless inhibited)")
    muted: list[str] = Field(description="receivers matched but muted at `at`")
    inhibited: bool = Field(description="an alert firing now inhibits it: nobody would be told")
    inhibited_by: InhibitedBy | None = None
    path: list[str]
    routes: list[RouteMatch]


class OncallMember(BaseModel):
    name: str
    slack: str
    email: str


class Override(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    rotation: str
    who: str
    start: DateTimeText = Field(alias="from")
    until: DateTimeText
    created_by: str
    created_at: DateTimeText


class OverrideRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    rotation: str = Field(description="a rotation of routes.yaml's oncall")
    who: str = Field(description="a member of that rotation, by name")
    start: DateTimeText = Field("", alias="from", description="default: now")
    until: DateTimeText


class OverrideAdded(BaseModel):
    override: Override


class OverrideRemoved(BaseModel):
    removed: str


class Handoff(BaseModel):
    at: DateTimeText
    to: OncallMember


class RotationNow(BaseModel):
    name: str
    timezone: str
    rotation: Literal["weekly", "daily"]
    members: list[str]
    on_call: OncallMember
    since: DateTimeText
    override: str | None = Field(description="the override's id")
    next_handoff: Handoff


class OnCall(BaseModel):
    at: DateTimeText
    rotations: list[RotationNow]
    overrides: list[Override]


class Replay(BaseModel):
    """JSON-wrapped (POST /api/* takes JSON only): the YAML is a string."""

    model_config = ConfigDict(extra="forbid")

    config: str = Field(min_length=1, description="proposed routes.yaml")
    since: str = Field("", description="window, a duration up to 31d; 7d")


class ReplaySide(BaseModel):
    receivers: dict[str, int] = Field(description="receiver: events it is told of")
    muted: dict[str, int]
    inhibited: int = Field(description="events held back by a rule")


class ReplayChange(BaseModel):
    group_key: str
    alertname: str = ""
    events: int
    changed_events: int
    before: ReplaySide
    after: ReplaySide
    example: dict[str, Any] = Field({}, description="first event changed")


class ReplayResult(BaseModel):
    since: DateTimeText
    until: DateTimeText
    events: int = Field(description="events replayed")
    groups: int = Field(description="groups they belong to")
    changed_count: int
    changed: list[ReplayChange]


class ConfigProblems(BaseModel):
    error: str
    problems: list[str]


class Percentiles(BaseModel):
    p50: float | None
    p90: float | None


class InsightRow(BaseModel):
    """alertname, receiver or team names the row; a statistic with no data is null;
    percentiles are duration bucket bounds (at most that long)"""

    alertname: str = ""
    receiver: str = ""
    team: str = ""
    episodes: int = Field(description="firing episodes that resolved")
    notifications: int
    flaps: int = Field(description="fired again within 1h of resolving")
    escalations: int = 0
    acknowledged_share: float | None
    noise_share: float | None = Field(
        description="share of episodes resolved within 5 min with nobody"
        " acknowledging or silencing them"
    )
    mtta_seconds: Percentiles
    mttr_seconds: Percentiles
    previous: dict[str, Any] | None = Field(
        None, description="the window before: episodes, notifications, noise_share"
    )


class Insights(BaseModel):
    since: DateTimeText
    until: DateTimeText
    alerts: list[InsightRow]
    receivers: list[InsightRow]
    teams: list[InsightRow]


class HeartbeatStatus(BaseModel):
    name: str
    interval: float = Field(description="seconds")
    grace: float = Field(description="seconds")
    matchers: list[str] = []
    last_beat: float | None = Field(description="Unix seconds; null: never")
    expected_by: float = Field(description="a beat is due by then")
    missing_at: float = Field(0, description="missing from then on")
    state: str = Field(json_schema_extra={"enum": list(HEARTBEAT_STATES)})
    missing_since: float | None = Field(None, description="silent since, while missing")


class Heartbeats(BaseModel):
    heartbeats: list[HeartbeatStatus]


class Beat(BaseModel):
    heartbeat: str
    at: float
