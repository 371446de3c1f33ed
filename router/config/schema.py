"""routes.yaml as typed models. Loading (env substitution, file:line errors) is loader.py."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import jinja2.sandbox
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetPydanticSchema,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from router.durations import format_duration, parse_duration
from router.matchers import Matcher, is_label_name, parse_matchers
from router.schedules.rotations import Handoff, Member, Rotation, parse_handoff, parse_zone
from router.schedules.timeintervals import (
    InclusiveRange,
    TimeInterval,
    check_time_range,
    parse_clock,
    parse_days_of_month,
    parse_location,
    parse_months,
    parse_weekdays,
    parse_years,
)
from router.store.protocols import DEFAULT_KEEP_RECORDS, DEFAULT_LEASE, DEFAULT_LEASE_RENEW
from router.store.url import parse_state_url

Duration = Annotated[float, BeforeValidator(parse_duration)]


def _int_as_str(value: Any) -> Any:
    # YAML reads `days_of_month: [1, -1]`, `months: [12]` and `years: [2026]` as numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _parsed_text(parse: Callable[[str], Any], *, numbers: bool = False) -> GetPydanticSchema:
    """A YAML string parsed into the field's type: anything else is `expected a string`, a
    ValueError from `parse` a problem at the value. `numbers`: an integer is its text."""
    # A schema of its own rather than AfterValidator on `str`: the field's type is what
    # `parse` returns, and mypy should see that type.
    schema: core_schema.CoreSchema = core_schema.no_info_after_validator_function(
        parse, core_schema.str_schema()
    )
    if numbers:
        schema = core_schema.no_info_before_validator_function(_int_as_str, schema)
    return GetPydanticSchema(lambda _source, _handler: schema)


def _joined(entries: list[list[Matcher]]) -> tuple[Matcher, ...]:
    return tuple(matcher for entry in entries for matcher in entry)


def _matcher_entries(min_length: int | None = None) -> GetPydanticSchema:
    """A `matchers:` list; each entry holds one or more matchers (`{a="1", b=~"x"}`), and
    a bad entry is a problem at its own index."""
    entry = core_schema.no_info_after_validator_function(parse_matchers, core_schema.str_schema())
    entries = core_schema.list_schema(entry, min_length=min_length)
    schema = core_schema.no_info_after_validator_function(_joined, entries)
    return GetPydanticSchema(lambda _source, _handler: schema)


# Every matcher of a `matchers:` list, parsed; all of them must hold (AND).
Matchers = Annotated[tuple[Matcher, ...], _matcher_entries()]
NonEmptyMatchers = Annotated[tuple[Matcher, ...], _matcher_entries(min_length=1)]


def _label_name(name: str) -> str:
    if not is_label_name(name):
        raise ValueError(f"{name!r} is not a valid label name")
    return name


LabelName = Annotated[str, AfterValidator(_label_name)]

# A path into the config, as pydantic reports it: ("route", "routes", 2, "receiver").
Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """`("route", "routes", 2, "receiver")` -> `route.routes[2].receiver`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


class _Model(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BasicAuth(_Model):
    username: str
    password: SecretStr


class SourceAuth(_Model):
    """Credentials a caller must present (a webhook source, or a user of the API); either
    or both may be set, and either then lets the caller in."""

    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None

    @model_validator(mode="after")
    def _one_method(self) -> SourceAuth:
        if self.bearer_token is None and self.basic_auth is None:
            raise ValueError("set bearer_token or basic_auth (or remove the entry)")
        return self


# Who may call what: `alertmanager` and `argocd` their webhooks, `api` the read API
# (/api/*) and, while `admin` is unset, the actions (/-/reload); `admin` the actions;
# `heartbeat` POST /heartbeat/{name} (unset: the `alertmanager` credentials guard it).
# An endpoint whose entry is missing answers anyone.
AuthScope = Literal["alertmanager", "argocd", "api", "admin", "heartbeat"]


class TrustedProxy(_Model):
    """An authenticating proxy (oauth2-proxy) in front of the console: the user it names in
    a header is believed, but only on connections from `addresses`."""

    # CIDRs of the proxy itself; a header from any other peer is ignored.
    addresses: list[str] = Field(min_length=1)
    # The one header that names the user. The proxy must overwrite it on every request
    # (oauth2-proxy does for the header it sets); a request carrying it twice, or carrying
    # another common user header, is refused (see router/web/security.py).
    user_header: str = "X-Forwarded-User"
    # Users the proxy names who may act (retry, reload); the others may only read.
    admins: list[str] = Field(default_factory=list)

    @field_validator("addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not an IP address or CIDR like 10.0.0.0/8 or ::1/128"
                ) from None
            if network.prefixlen == 0:
                # Anyone could then name any user: name the proxy's own addresses.
                raise ValueError(f"{text!r} trusts every address; give the proxy's addresses")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_header(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "user_headers" in data:
            # Several candidate headers let a client add the one the proxy did not set.
            raise ValueError(
                "user_headers is gone: set user_header to the one header your proxy sets"
            )
        return data

    @field_validator("user_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9-]+", value):
            raise ValueError(f"{value!r} is not an HTTP header name")
        return value

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(text, strict=False) for text in self.addresses]


def _base_url(value: str, field: str, example: str) -> str:
    """An absolute http(s) URL that paths are appended to (no trailing slash), or ""."""
    text = value.strip().rstrip("/")
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{field} must be an absolute http(s) URL like {example}, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{field} must not have a query or #fragment")
    return text


class ServerConfig(_Model):
    auth: dict[AuthScope, SourceAuth] = Field(default_factory=dict)
    # Believe the user an authenticating proxy names (see TrustedProxy); none by default.
    trusted_proxy: TrustedProxy | None = None
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # One body may carry at most this many alerts, and open at most this many groups
    # (Alertmanager sends one group per body): more is refused with 413, nothing stored.
    max_alerts_per_webhook: int = Field(default=10_000, gt=0)
    max_groups_per_webhook: int = Field(default=100, gt=0)
    # A request's headers and body must arrive within this (a trickling client is cut off).
    read_timeout: Duration = Field(default=30.0, gt=0)
    # SIGTERM waits this long for in-flight deliveries before leaving them to the next start.
    shutdown_grace: Duration = 10.0
    # Where people reach this service (its console and API), for links in messages;
    # empty: messages carry no links back to the router.
    external_url: str = ""

    @field_validator("external_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        return _base_url(value, "external_url", "https://alerts.example.com")


class StateConfig(_Model):
    url: str = "sqlite:///./alert-router.db"
    # A notification still failing this long after it was accepted is given up as dead.
    dead_after: Duration = 86400.0
    # How many deliveries run at once.
    workers: int = Field(default=16, ge=1, le=1024)
    key_prefix: str = "alert-router:"
    # How long a claim holds its group unless its holder renews it: about how long a dead
    # replica's work waits before another one takes it over.
    lease: Duration = Field(default=DEFAULT_LEASE, gt=0)
    # How often a live holder renews the leases of everything it works on (slow channels
    # and waits behind a Retry-After included), so only a dead holder's work is taken over;
    # unset, a third of a lease shorter than 15s.
    lease_renew: Duration = Field(default=DEFAULT_LEASE_RENEW, gt=0)
    # How long finished notification records stay listed by the read API.
    keep_records: Duration = Field(default=DEFAULT_KEEP_RECORDS, gt=0)
    # Redis only: a webhook is acknowledged once this many Redis replicas have its write,
    # so it survives the primary's death (WAIT).
    min_replicas: int = Field(default=0, ge=0, le=16)

    @model_validator(mode="before")
    @classmethod
    def _url_options(cls, data: Any) -> Any:
        """`?lease=30s&keep_records=1d` on the URL is shorthand for the keys; a lease
        shorter than three default renewal periods is renewed every third of it."""
        if not isinstance(data, dict):
            return data
        given: Mapping[str, float] = {}
        if isinstance(data.get("url"), str):
            try:
                given = parse_state_url(data["url"]).options
            except ValueError:
                pass  # reported at state.url
        twice = [name for name in given if name in data]
        if twice:
            name = twice[0]
            raise ValueError(
                f"{name} is set both as state.{name} and as ?{name}= in state.url: keep one"
            )
        data = {**data, **given}
        if "lease_renew" not in data and "lease" in data:
            try:
                lease = parse_duration(data["lease"])
            except ValueError:
                return data  # reported at state.lease
            if lease > 0:
                data["lease_renew"] = min(DEFAULT_LEASE_RENEW, lease / 3)
        return data

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        parse_state_url(url)
        return url

    @model_validator(mode="after")
    def _renewal_fits_the_lease(self) -> StateConfig:
        # Two renewals may fail (a store blip) before a live holder's lease runs out.
        if self.lease_renew * 3 > self.lease:
            raise ValueError(
                f"lease_renew ({format_duration(self.lease_renew)}) must be at most a third of"
                f" lease ({format_duration(self.lease)}), so a live replica renews its claims"
                " before another one takes them over: lower lease_renew or raise lease"
            )
        if self.min_replicas and not parse_state_url(self.url).is_redis:
            raise ValueError("min_replicas counts Redis replicas: it needs a Redis state.url")
        return self


class LabelSource(_Model):
    from_labels: list[str]
    aliases: dict[str, str] = Field(default_factory=dict)
    default: str


class EnvironmentConfig(LabelSource):
    # Not `namespace` by default: `kube-system` or `shop` is no environment, and taking it
    # for one sends the alert past every `env="prod"` route. Opt in by listing it.
    from_labels: list[str] = Field(default_factory=lambda: ["env", "environment"])
    default: str = "unknown"


class SeverityConfig(LabelSource):
    from_labels: list[str] = Field(default_factory=lambda: ["severity"])
    default: str = "warning"


DEFAULT_ARGOCD_SEVERITY = {
    "on-sync-failed": "critical",
    "on-health-degraded": "critical",
    "on-sync-status-unknown": "warning",
    "on-deployed": "info",
    "on-sync-succeeded": "info",
    "on-sync-running": "info",
    "on-created": "info",
    "on-deleted": "info",
}


# The Argo CD triggers that open an incident (a later event says it is over).
ARGOCD_PROBLEM_TRIGGERS = ("on-sync-failed", "on-health-degraded", "on-sync-status-unknown")
# How long a problem waits before anyone is told, in case it clears up by itself: a health
# check that flaps (an HPA scaling, a rollout) recovers within a minute.
DEFAULT_ARGOCD_HOLD: dict[str, float] = {"on-health-degraded": 60.0}


class ArgoCDConfig(_Model):
    url: str = ""
    severity: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ARGOCD_SEVERITY))
    # Per problem trigger; merged over DEFAULT_ARGOCD_HOLD (set a trigger to 0 to tell at
    # once). A problem that recovers within its hold is recorded as `flapped`, told nobody.
    hold: dict[str, Duration] = Field(default_factory=lambda: dict(DEFAULT_ARGOCD_HOLD))

    @field_validator("hold")
    @classmethod
    def _problem_triggers(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(ARGOCD_PROBLEM_TRIGGERS))
        if unknown:
            raise ValueError(
                f"only problem triggers can be held ({', '.join(ARGOCD_PROBLEM_TRIGGERS)}),"
                f" not {', '.join(unknown)}: other triggers never resolve, so nothing would"
                " end the hold early"
            )
        return {**DEFAULT_ARGOCD_HOLD, **value}


class DedupConfig(_Model):
    repeat_interval: Duration = 4 * 3600.0
    send_resolved: bool = True


class LokiConfig(_Model):
    url: str
    tenant: str = ""
    query: str
    lookback: Duration = 900.0
    max_lines: int = Field(default=15, ge=1, le=200)
    timeout: Duration = 2.0
    # Line width in messages: longer lines are cut with an ellipsis.
    max_line_chars: int = Field(default=300, ge=20)

    @field_validator("query")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            jinja2.sandbox.SandboxedEnvironment().parse(value)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(
                f"invalid jinja2 template: {exc.message} (template line {exc.lineno})"
            ) from None
        return value


class DashboardRule(_Model):
    matchers: Matchers = ()
    uid: str


class GrafanaConfig(_Model):
    url: str
    org_id: int = 1
    loki_datasource_uid: str = "loki"
    dashboards: list[DashboardRule] = Field(default_factory=list)


class DeploysConfig(_Model):
    window: Duration = 1800.0


class EnrichConfig(_Model):
    loki: LokiConfig | None = None
    grafana: GrafanaConfig | None = None
    deploys: DeploysConfig | None = None


class SlackReceiver(_Model):
    token: SecretStr | None = None
    webhook_url: SecretStr | None = None
    channel: str | None = None
    api_url: str = "https://slack.com/api/"
    # Prefixed to firing critical messages; never to resolves or updates.
    mention: str = ""
    username: str = ""
    icon_emoji: str = ""
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _token_or_webhook(self) -> SlackReceiver:
        if (self.token is None) == (self.webhook_url is None):
            raise ValueError("slack needs exactly one of token or webhook_url")
        if self.token is not None and not self.channel:
            raise ValueError("slack with a token needs a channel")
        return self


class EmailReceiver(_Model):
    to: list[str] = Field(min_length=1)
    from_: str = Field(alias="from")
    smarthost: str
    username: str = ""
    password: SecretStr = SecretStr("")
    # STARTTLS: true requires it, false never uses it; implicit TLS is `tls: true`.
    starttls: bool = True
    tls: bool = False
    timeout: Duration = 30.0
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("smarthost")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"smarthost must be host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _tls_modes(self) -> EmailReceiver:
        if self.tls and self.starttls:
            raise ValueError("set either tls (implicit TLS) or starttls, not both")
        return self


class WebhookReceiver(_Model):
    url: SecretStr
    bearer_token: SecretStr | None = None
    timeout: Duration = 10.0
    headers: dict[str, str] = Field(default_factory=dict)


class LogReceiver(_Model):
    pass


PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PagerDutySeverity = Literal["critical", "error", "warning", "info"]


class PagerDutyReceiver(_Model):
    """An Events API v2 integration of a PagerDuty service."""

    # The service's 32-character integration key: it alone says where the page goes.
    routing_key: SecretStr
    # Every event at this severity; unset, mapped from the alerts' own (see the channel).
    severity: PagerDutySeverity | None = None
    url: str = PAGERDUTY_EVENTS_URL
    timeout: Duration = 10.0

    @field_validator("routing_key")
    @classmethod
    def _key_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("routing_key is empty (is its ${VARIABLE} set?)")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must be an absolute http(s) URL like {PAGERDUTY_EVENTS_URL}")
        return value


class MSTeamsReceiver(_Model):
    """A Microsoft Teams channel, through a Workflows ("When a Teams webhook request is
    received") trigger."""

    # The trigger's URL carries its own signature: a secret.
    webhook_url: SecretStr
    timeout: Duration = 10.0


# Every integration a receiver may have; it has exactly one.
INTEGRATIONS = ("slack", "email", "webhook", "log", "pagerduty", "msteams")


class ReceiverConfig(_Model):
    name: str = Field(min_length=1)
    slack: SlackReceiver | None = None
    email: EmailReceiver | None = None
    webhook: WebhookReceiver | None = None
    log: LogReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    msteams: MSTeamsReceiver | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReceiverConfig:
        kinds = [k for k in INTEGRATIONS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a receiver needs exactly one of {', '.join(INTEGRATIONS)}"
                + (f" (has {', '.join(kinds)})" if kinds else "")
            )
        return self

    @property
    def integration(self) -> str:
        for kind in INTEGRATIONS:
            if getattr(self, kind) is not None:
                return kind
        raise AssertionError("validated receiver has no integration")


class EscalationStep(_Model):
    """Tell `to` once the group has fired unacknowledged for `after`."""

    after: Duration = Field(gt=0)
    to: str = Field(min_length=1)


class RouteConfig(_Model):
    # In the root file, `{team: NAME}` places that team's subtree here (router/config/teams.py).
    team: str | None = None
    receiver: str | None = None
    matchers: Matchers = ()
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteConfig] = Field(default_factory=list)
    repeat_interval: Duration | None = None
    send_resolved: bool | None = None
    # None inherits the parent's list; [] clears it for this subtree.
    mute_time_intervals: list[str] | None = None
    active_time_intervals: list[str] | None = None
    # Accepted for Alertmanager familiarity; groups come from the source's own grouping.
    group_by: list[str] | None = None
    # While the group fires and nobody acknowledged it; None inherits, [] clears.
    escalate: list[EscalationStep] | None = None


# `HH:MM`, as minutes of the day (00:00 to 24:00).
Clock = Annotated[int, _parsed_text(parse_clock)]
Weekdays = Annotated[InclusiveRange, _parsed_text(parse_weekdays, numbers=True)]
DaysOfMonth = Annotated[InclusiveRange, _parsed_text(parse_days_of_month, numbers=True)]
Months = Annotated[InclusiveRange, _parsed_text(parse_months, numbers=True)]
Years = Annotated[InclusiveRange, _parsed_text(parse_years, numbers=True)]
Location = Annotated[tzinfo, _parsed_text(parse_location)]


class RootRoute(RouteConfig):
    """The top of the tree: like Alertmanager's, it has somewhere to send what no child
    takes (its other rules are validate.py's: they concern the file's shape)."""

    receiver: str = Field(default="", validate_default=True)

    @field_validator("receiver", mode="before")
    @classmethod
    def _required(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and value != "":
            return value
        if info.data.get("team") is not None:
            # A root that mounts a team is refused as such (validate.py), and only so.
            return ""
        raise ValueError("the root route must have a receiver")


class TimeRange(_Model):
    start_time: Clock
    end_time: Clock

    @model_validator(mode="after")
    def _forward(self) -> TimeRange:
        check_time_range(self.start_time, self.end_time)
        return self


def _ranges(items: list[InclusiveRange] | None) -> tuple[InclusiveRange, ...] | None:
    return None if items is None else tuple(items)


class TimeIntervalSpec(_Model):
    """One Alertmanager time_interval entry; every field present must match."""

    times: list[TimeRange] | None = None
    weekdays: list[Weekdays] | None = None
    days_of_month: list[DaysOfMonth] | None = None
    months: list[Months] | None = None
    years: list[Years] | None = None
    location: Location | None = None

    @property
    def interval(self) -> TimeInterval:
        """The entry as router/schedules/timeintervals.py evaluates it."""
        return TimeInterval(
            times=None
            if self.times is None
            else tuple((t.start_time, t.end_time) for t in self.times),
            weekdays=_ranges(self.weekdays),
            days_of_month=_ranges(self.days_of_month),
            months=_ranges(self.months),
            years=_ranges(self.years),
            location=self.location,
        )


class TimeIntervalConfig(_Model):
    name: str = Field(min_length=1)
    time_intervals: list[TimeIntervalSpec] = Field(default_factory=list)


class InhibitRule(_Model):
    # Optional; shown where a rule is named (route test files, `routes test`). Without one
    # a rule is called by its place, `inhibit_rules[0]`.
    name: str | None = Field(default=None, min_length=1)
    source_matchers: NonEmptyMatchers
    target_matchers: NonEmptyMatchers
    equal: list[LabelName] = Field(default_factory=list)


# A heartbeat's name is part of a URL path (POST /heartbeat/{name}) and a metric label.
HEARTBEAT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Shorter intervals than this would judge scheduling noise, not a dead sender.
MIN_HEARTBEAT_INTERVAL = 5.0


class HeartbeatConfig(_Model):
    """Something that must be heard from at least every `interval` (see router/heartbeats/):
    alerts matching `matchers`, or POST /heartbeat/{name}."""

    name: str = Field(pattern=HEARTBEAT_NAME_PATTERN)
    # Alerts matching all of these are beats; none: only POST /heartbeat/{name} beats.
    matchers: Matchers = ()
    interval: Duration
    grace: Duration = 0.0
    # Labels of the HeartbeatMissing event, on top of alertname, heartbeat and source.
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("interval")
    @classmethod
    def _judgeable(cls, value: float) -> float:
        if value < MIN_HEARTBEAT_INTERVAL:
            raise ValueError(f"interval must be at least {format_duration(MIN_HEARTBEAT_INTERVAL)}")
        return value


# Slack allows 25 elements in an actions block; Acknowledge takes one.
MAX_SILENCE_DURATIONS = 24


class SlackInteractivity(_Model):
    """Buttons on bot-token messages (Acknowledge, Silence), answered at /slack/interactions."""

    # Slack's signing secret (Basic Information of the app): every click is checked with it.
    signing_secret: SecretStr
    silence_durations: list[Duration] = Field(
        default_factory=lambda: [3600.0, 4 * 3600.0, 86400.0],
        min_length=1,
        max_length=MAX_SILENCE_DURATIONS,
    )
    # A button's Alertmanager silence is expired when its group is seen resolved.
    expire_silence_on_resolve: bool = True

    @field_validator("signing_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("signing_secret is empty (is its ${VARIABLE} set?)")
        return value

    @field_validator("silence_durations")
    @classmethod
    def _positive_distinct(cls, value: list[float]) -> list[float]:
        if any(d < 60 for d in value):
            raise ValueError("every silence duration must be at least 1m")
        if any(d != int(d) for d in value):
            raise ValueError("silence durations must be whole seconds")
        if len(set(value)) != len(value):
            raise ValueError("silence durations must differ from each other")
        return value


class SlackPacingConfig(_Model):
    """Storm control per Slack channel, shared by every replica on one store; and the
    buttons, when `interactivity` is set."""

    # Slack allows about one post per second per channel; thread replies count too.
    per_channel_interval: Duration = 1.0
    # When this many notifications wait for one channel, they go out as one digest.
    digest_threshold: int = Field(default=5, ge=2)
    interactivity: SlackInteractivity | None = None


class AlertmanagerAPI(_Model):
    """One Alertmanager alert-router may call (silences), where and with which credentials.

    Only `url` is ever called; `external_url` (what it writes as `externalURL` in its
    webhooks) only tells which Alertmanager a group came from.
    """

    # Default: the host of `url`; shown in the Silence button's confirmation.
    name: str = ""
    # `api_url` is the name this key had before several Alertmanagers could be named.
    url: str = Field(default="", validation_alias=AliasChoices("url", "api_url"))
    external_url: str = ""
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None
    timeout: Duration = Field(default=5.0, gt=0)
    # How often groups silenced or acknowledged from a button are checked against its API.
    poll_interval: Duration = Field(default=60.0, ge=5)
    # Groups one replica checks per poll interval at most (oldest due first).
    poll_max_groups: int = Field(default=500, ge=1)

    @field_validator("url", "external_url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        return _base_url(value, info.field_name or "url", "http://alertmanager:9093")

    @model_validator(mode="after")
    def _one_credential(self) -> AlertmanagerAPI:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("set bearer_token or basic_auth, not both")
        if not self.url and (self.external_url or self.name):
            raise ValueError("set url: where alert-router calls this Alertmanager's API")
        if not self.url and (self.bearer_token is not None or self.basic_auth is not None):
            # The old default sent these to the webhook's externalURL, which any sender
            # of a webhook chooses.
            raise ValueError(
                "set url: credentials are only ever sent to a configured url, never to"
                " the externalURL a webhook names"
            )
        return self

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @property
    def display_name(self) -> str:
        """`name`, else the host of `url`."""
        return self.name or urlsplit(self.url).netloc

    @property
    def webhook_url(self) -> str:
        """The `externalURL` its webhooks carry: `external_url`, else `url`."""
        return self.external_url or self.url


# A team name is the prefix of its receivers' names outside its file (`payments/slack`)
# and a metric label value.
TEAM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class TeamConfig(_Model):
    """A team declared in the root file: its file, its scope and where its alerts go when
    the file cannot be loaded."""

    name: str = Field(pattern=TEAM_NAME_PATTERN)
    # Relative to the root file.
    file: str = Field(min_length=1)
    # The team's scope: only alerts matching all of these reach its routes and its inhibit
    # rules' targets.
    matchers: NonEmptyMatchers
    # A receiver of the root file; default: the root route's receiver.
    fallback: str | None = None


class TeamFile(_Model):
    """One team's file: its own receivers, route subtree, time intervals and inhibit rules."""

    receivers: list[ReceiverConfig] = Field(min_length=1)
    route: RouteConfig
    time_intervals: list[TimeIntervalConfig] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    heartbeats: list[HeartbeatConfig] = Field(default_factory=list)


class TeamStatus(enum.StrEnum):
    LOADED = "loaded"
    # The file failed on a reload: the version loaded before stays in force.
    LAST_GOOD = "last_good"
    # The file failed and there is no earlier version: the scope goes to the fallback.
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class TeamLoad:
    """How one team's file was loaded, and the version of it in force."""

    name: str
    file: str
    status: TeamStatus
    # The team file in force; None when the scope goes to the fallback receiver.
    content: TeamFile | None
    fallback: str
    # `file:line:col: ...` of the file as it is on disk now; empty when it loaded.
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def serving(self) -> str:
        """What routes the team's alerts now, in words."""
        if self.status is TeamStatus.LOADED:
            return "its file"
        if self.status is TeamStatus.LAST_GOOD:
            return "its last good version"
        return f"the fallback receiver {self.fallback!r}"

    def to_dict(self) -> dict[str, object]:
        return {
            "team": self.name,
            "file": self.file,
            "status": self.status.value,
            "serving": self.serving,
            "errors": list(self.problems),
        }


class EmailPacingConfig(_Model):
    """Storm control per set of recipients."""

    # At most one mail per interval to the same recipients.
    interval: Duration = 10.0
    # When this many notifications wait for the same recipients, they go out as one
    # digest mail listing every alert.
    digest_threshold: int = Field(default=5, ge=2)


class EmailSettings(_Model):
    pacing: EmailPacingConfig = Field(default_factory=EmailPacingConfig)


class OncallMember(_Model):
    name: str = Field(min_length=1)
    # A Slack user ID (U01ALICE): the mention is <@U01ALICE>.
    slack: str = ""
    email: str = ""

    @field_validator("slack")
    @classmethod
    def _user_id(cls, value: str) -> str:
        if value and not re.fullmatch(r"[UW][A-Z0-9]{2,}", value):
            raise ValueError(f"{value!r} is not a Slack user ID like U01ALICE")
        return value


def _handoff(text: str, info: ValidationInfo) -> Handoff:
    return parse_handoff(str(info.data.get("rotation", "weekly")), text)


# Read as the rotation before it says (weekly, unless that failed too).
HandoffText = Annotated[
    Handoff,
    GetPydanticSchema(
        lambda _source, _handler: core_schema.with_info_after_validator_function(
            _handoff, core_schema.str_schema()
        )
    ),
]


class OncallRotation(_Model):
    """One rotation: members take turns, handing off at a local wall-clock time."""

    name: str = Field(pattern=TEAM_NAME_PATTERN)
    timezone: Annotated[ZoneInfo, _parsed_text(parse_zone)]
    rotation: Literal["weekly", "daily"]
    # weekly: "mon 09:00"; daily: "09:00" (local time in `timezone`).
    handoff: HandoffText
    # The first member's first shift starts at the handoff on or after this date.
    start: date
    members: list[OncallMember] = Field(min_length=1)

    @field_validator("members")
    @classmethod
    def _distinct(cls, value: list[OncallMember]) -> list[OncallMember]:
        names = [m.name for m in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"member {twice[0]!r} is listed twice: each member takes one turn")
        return value

    def compiled(self) -> Rotation:
        """The pure form router/schedules/rotations.py computes with."""
        return Rotation(
            self.name,
            self.timezone,
            self.rotation,
            self.handoff,
            self.start,
            tuple(Member(m.name, m.slack, m.email) for m in self.members),
        )


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EVERY_RE = re.compile(r"^(?:(mon|tue|wed|thu|fri|sat|sun|daily)\s+)?([01]\d|2[0-3]):([0-5]\d)$")


def parse_every(text: str) -> tuple[int | None, int, int]:
    """`mon 09:00` (weekly) or `09:00` / `daily 09:00`: (weekday 0-6 or None, hour,
    minute); ValueError saying what to write."""
    found = _EVERY_RE.match(text.strip().lower())
    if found is None:
        raise ValueError(f"every: expected e.g. 'mon 09:00' or 'daily 09:00', got {text!r}")
    day, hour, minute = found.groups()
    weekday = None if day in (None, "daily") else _WEEKDAYS.index(day)
    return weekday, int(hour), int(minute)


class ReportConfig(_Model):
    """A summary of the insights posted to `receiver` at `every` (in `timezone`)."""

    receiver: str = Field(min_length=1)
    every: str = "mon 09:00"
    timezone: str = "UTC"
    # The window summed up; default a week for a weekly report, a day for a daily one.
    since: Duration | None = None

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        parse_every(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value != "UTC":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(f"unknown time zone {value!r}: e.g. Europe/Berlin") from None
        return value

    # `every` and `timezone` stay as written (they name the report's slots in the store);
    # their parsed forms are kept here so the scheduler parses nothing again.
    _parsed_schedule: tuple[int | None, int, int] = PrivateAttr(default=(0, 9, 0))
    _parsed_zone: tzinfo = PrivateAttr(default=UTC)

    def model_post_init(self, context: Any, /) -> None:
        self._parsed_schedule = parse_every(self.every)
        self._parsed_zone = parse_location(self.timezone)

    @property
    def schedule(self) -> tuple[int | None, int, int]:
        """(weekday 0-6 or None for daily, hour, minute)."""
        return self._parsed_schedule

    @property
    def zone(self) -> tzinfo:
        return self._parsed_zone


class Config(_Model):
    server: ServerConfig = Field(default_factory=ServerConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    severity: SeverityConfig = Field(default_factory=SeverityConfig)
    argocd: ArgoCDConfig = Field(default_factory=ArgoCDConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    enrich: EnrichConfig = Field(default_factory=EnrichConfig)
    slack: SlackPacingConfig = Field(default_factory=SlackPacingConfig)
    email: EmailSettings = Field(default_factory=EmailSettings)
    alertmanager: AlertmanagerAPI = Field(default_factory=AlertmanagerAPI)
    alertmanagers: list[AlertmanagerAPI] = Field(default_factory=list)
    receivers: list[ReceiverConfig] = Field(min_length=1)
    route: RootRoute
    time_intervals: list[TimeIntervalConfig] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    teams: list[TeamConfig] = Field(default_factory=list)
    oncall: list[OncallRotation] = Field(default_factory=list)
    heartbeats: list[HeartbeatConfig] = Field(default_factory=list)
    reports: list[ReportConfig] = Field(default_factory=list)
    # Where the jinja2 templates live; empty means the project's templates/ folder.
    templates_dir: str = ""
    # How each team's file was loaded; set by the loader, which also merges every loaded
    # team into receivers, route, time_intervals and inhibit_rules (router/config/teams.py).
    _team_loads: tuple[TeamLoad, ...] = PrivateAttr(default=())

    def with_team_loads(self, loads: tuple[TeamLoad, ...]) -> Config:
        """This config, saying how each of its teams' files was loaded."""
        copy = self.model_copy()
        copy._team_loads = loads
        return copy

    @property
    def team_loads(self) -> tuple[TeamLoad, ...]:
        """Per declared team, the version in use and the problems of its file, if any."""
        return self._team_loads

    @property
    def team_problems(self) -> list[str]:
        """Every problem of every team file (`file:line:col: ...`); empty when all loaded."""
        return [problem for load in self._team_loads for problem in load.problems]

    @property
    def alertmanager_entries(self) -> list[AlertmanagerAPI]:
        """The Alertmanagers alert-router may call (`alertmanagers`, or `alertmanager`
        when it names a url)."""
        if self.alertmanagers:
            return list(self.alertmanagers)
        return [self.alertmanager] if self.alertmanager.configured else []

    def alertmanager_for(self, external_url: str) -> AlertmanagerAPI | None:
        """The configured Alertmanager whose webhooks carry `external_url` (trailing `/`
        ignored, otherwise exact), if any."""
        wanted = external_url.strip().rstrip("/")
        if not wanted:
            return None
        for entry in self.alertmanager_entries:
            if entry.webhook_url == wanted:
                return entry
        return None

    def alertmanager_named(self, name: str) -> AlertmanagerAPI | None:
        return next((e for e in self.alertmanager_entries if e.display_name == name), None)

    @property
    def rotations(self) -> dict[str, Rotation]:
        """The `oncall` rotations by name."""
        return {r.name: r.compiled() for r in self.oncall}

    def receiver(self, name: str) -> ReceiverConfig:
        for receiver in self.receivers:
            if receiver.name == name:
                return receiver
        raise KeyError(name)
