"""Insights rollups: counters per hour and per day, per alertname, receiver, team and
severity, added as records finish, so a month of insights reads a few thousand rows.

Percentiles come from duration buckets: a p50 of 300 means "at most 5 minutes".
A heartbeat's row (kind "heartbeat") counts in `episodes` the times it went missing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from router.model import (
    Claim,
    DeliveryState,
    Event,
    GroupActions,
    NotificationRecord,
    Outcome,
    Status,
    parse_time,
)

HOUR = 3600
DAY = 86400
# Upper bounds (seconds) of the time-to-acknowledge and time-to-resolve buckets; the last
# one holds everything longer.
BOUNDS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800)
SCALARS = ("notifications", "episodes", "flaps", "acknowledged", "noise", "escalations")
COLUMNS = (
    *SCALARS,
    *(f"mtta{i}" for i in range(len(BOUNDS))),
    *(f"mttr{i}" for i in range(len(BOUNDS))),
)
INDEX = {name: i for i, name in enumerate(COLUMNS)}
# An episode that resolves this soon with nobody acting is a noise candidate; one that
# fires again this soon after resolving is a flap.
NOISE_WITHIN = 300.0
FLAP_WITHIN = 3600.0
# How far Alertmanager's clock (an episode's start) may be off ours (actions' times).
CLOCK_SKEW = 60.0
# Rollups outlive the records they count (state.keep_records): a year and a bit.
ROLLUP_KEEP = 400 * DAY
# Hours are read only for windows up to two days (and the two before them).
HOURLY_KEEP = 35 * DAY


def bucket_of(seconds: float) -> int:
    """The duration bucket `seconds` falls in."""
    for i, bound in enumerate(BOUNDS):
        if seconds <= bound:
            return i
    return len(BOUNDS) - 1


def percentile(buckets: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile; None without samples."""
    total = sum(buckets)
    if total == 0:
        return None
    need = q * total
    seen = 0
    for count, bound in zip(buckets, BOUNDS, strict=True):
        seen += count
        if seen >= need:
            return float(bound)
    return float(BOUNDS[-1])


Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class EpisodeEnd:
    """An alert's firing episode that a finished record told was resolved."""

    fingerprint: str
    starts_at: float
    ends_at: float
    alertname: str
    team: str
    # Resolved within NOISE_WITHIN with nobody acknowledging or silencing it.
    noise: bool = False


def acted_on(actions: GroupActions | None, since: float) -> bool:
    """Whether someone acknowledged the group after the episode started at `since`, or a
    silence set on it held during the episode (an acknowledgement left from an earlier
    episode does not count)."""
    if actions is None:
        return False
    # `since` is Alertmanager's clock, the actions' times are ours.
    since -= CLOCK_SKEW
    acked = actions.acknowledged and actions.acked_at >= since
    return acked or (bool(actions.silenced_by) and actions.silenced_until >= since)


def _resolved(claim: Claim) -> Iterator[tuple[Event, float, float]]:
    """Each resolved episode of the claim once: (event, start, end)."""
    seen: set[tuple[str, float]] = set()
    for n in claim.notifications:
        for e in n.events:
            if e.status is not Status.RESOLVED or e.starts_at is None or e.ends_at is None:
                continue
            key = (e.fingerprint, e.starts_at.timestamp())
            if key in seen:
                continue
            seen.add(key)
            yield e, key[1], e.ends_at.timestamp()


def needs_actions(claim: Claim) -> bool:
    """Whether `finished` needs the group's actions: only an episode that ended within
    NOISE_WITHIN may be noise, so most records skip the look-up."""
    return any(end - start <= NOISE_WITHIN for _, start, end in _resolved(claim))


def _add(out: dict[Key, list[int]], key: Key, column: str, amount: int = 1) -> None:
    row = out.get(key)
    if row is None:
        row = out[key] = [0] * len(COLUMNS)
    row[INDEX[column]] += amount


def finished(
    claim: Claim, outcome: Outcome, actions: GroupActions | None = None
) -> tuple[dict[Key, list[int]], list[EpisodeEnd]]:
    """A finished claim's counts (notifications; the receiver's resolved episodes) and the
    episodes it resolved, which the store counts once per alert across receivers.
    `actions` are the group's (needed only when `needs_actions`)."""
    counts: dict[Key, list[int]] = {}
    episodes: list[EpisodeEnd] = []
    events = [e for n in claim.notifications for e in n.events]
    if not events:
        return counts, episodes
    first = events[0].labels
    if outcome.state is DeliveryState.SENT and not outcome.delivered_in:
        _add(counts, ("receiver", claim.receiver), "notifications")
        _add(counts, ("alert", first.get("alertname", "")), "notifications")
        _add(counts, ("severity", first.get("severity", "")), "notifications")
        if first.get("team"):
            _add(counts, ("team", first["team"]), "notifications")
    for e, start, end in _resolved(claim):
        took = max(0.0, end - start)
        noise = took <= NOISE_WITHIN and not acted_on(actions, start)
        _add(counts, ("receiver", claim.receiver), "episodes")
        _add(counts, ("receiver", claim.receiver), f"mttr{bucket_of(took)}")
        if noise:
            _add(counts, ("receiver", claim.receiver), "noise")
        episodes.append(
            EpisodeEnd(e.fingerprint, start, end, e.alertname, e.labels.get("team", ""), noise)
        )
    return counts, episodes


def episode_counts(
    episode: EpisodeEnd, previous_end: float | None, out: dict[Key, list[int]]
) -> None:
    """Add a newly ended episode (counted once) to its alert's and team's rows;
    `previous_end` is when the alert's episode before it ended, if one was seen."""
    took = max(0.0, episode.ends_at - episode.starts_at)
    keys = [("alert", episode.alertname)] + ([("team", episode.team)] if episode.team else [])
    for key in keys:
        _add(out, key, "episodes")
        _add(out, key, f"mttr{bucket_of(took)}")
        if episode.noise:
            _add(out, key, "noise")
        if previous_end is not None and 0 <= episode.starts_at - previous_end <= FLAP_WITHIN:
            _add(out, key, "flaps")


def acknowledgement(record: NotificationRecord, at: float) -> dict[Key, list[int]]:
    """The counts of the group of `record` acknowledged at `at`: time to acknowledge runs
    from the earliest start of its firing alerts."""
    starts = [
        parsed.timestamp()
        for a in record.alerts
        if a.get("status") == Status.FIRING.value
        and (parsed := parse_time(a.get("starts_at"))) is not None
    ]
    waited = max(0.0, at - min(starts)) if starts else max(0.0, at - record.created_at)
    labels = record.alerts[0].get("labels", {}) if record.alerts else {}
    team = str(labels.get("team", ""))
    out: dict[Key, list[int]] = {}
    keys = [("alert", record.alertname), ("receiver", record.receiver)]
    for key in keys + ([("team", team)] if team else []):
        _add(out, key, "acknowledged")
        _add(out, key, f"mtta{bucket_of(waited)}")
    return out


def escalation(receiver: str, labels: Mapping[str, str]) -> dict[Key, list[int]]:
    """The counts of one escalation step told for a group of `receiver` whose first alert
    has `labels`: the receiver is the one the group was routed to, not the one told."""
    out: dict[Key, list[int]] = {}
    keys = [
        ("alert", labels.get("alertname", "")),
        ("receiver", receiver),
        ("severity", labels.get("severity", "")),
    ]
    for key in keys + ([("team", labels["team"])] if labels.get("team") else []):
        _add(out, key, "escalations")
    return out


def heartbeat_missing(name: str) -> dict[Key, list[int]]:
    """The counts of heartbeat `name` going missing once (its HeartbeatMissing opened)."""
    out: dict[Key, list[int]] = {}
    _add(out, ("heartbeat", name), "episodes")
    return out


def merge(into: dict[Key, list[int]], more: Mapping[Key, Sequence[int]]) -> None:
    """Add `more` to `into`, row by row."""
    for key, row in more.items():
        mine = into.get(key)
        if mine is None:
            into[key] = list(row)
        else:
            for i, value in enumerate(row):
                mine[i] += value


def nonzero(row: Sequence[int]) -> Iterator[tuple[str, int]]:
    """(column, value) of a row's columns that are not 0."""
    for name, value in zip(COLUMNS, row, strict=True):
        if value:
            yield name, value


@dataclass(frozen=True, slots=True)
class RollupRead:
    """What the insights page reads: totals per (kind, name) over the window, and
    notifications per day (or hour) per (kind, name) for the charts and sparklines."""

    totals: Mapping[Key, Sequence[int]]
    series: Mapping[tuple[int, str, str], int]
    # Per bucket, the sum of the receivers' rows (every episode and acknowledgement once
    # per receiver told): the weekly time-to-acknowledge and time-to-resolve chart.
    by_bucket: Mapping[int, Sequence[int]]
