"""The intake service: a webhook body in, its notifications durably recorded.

parse -> events -> route into notifications (one per receiver and group) -> the alert states
inhibition needs -> the deploys correlation needs -> record, all in one store write -> wake
the worker. The HTTP layer only authenticates, limits and answers; once `accept` returns,
the webhook may be acknowledged, because everything it said is in the store.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel, TypeAdapter, ValidationError

from router.config.schema import Config
from router.enrich.deploys import deploys_of
from router.ingest import alertmanager, argocd
from router.model import AlertState, Event, Notification, RouteSettings
from router.notify.firing import FiringAlerts, alert_states
from router.routing.tree import RouteTree
from router.runtime import Runtime
from router.store.protocols import Store

# Ids are a random per-process prefix and a counter: unique across processes and restarts,
# and far cheaper than a uuid4 per notification on the webhook path.
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count()
# How many schema errors a 400 answer lists.
_ERRORS_SHOWN = 5


class InvalidPayload(ValueError):
    """The body is not JSON, or not what the source sends; nothing was recorded."""


class PayloadTooLarge(InvalidPayload):
    """The body carries more alerts or groups than one webhook may; nothing was recorded."""


# A body this large takes milliseconds to parse and route: that is done off the event loop,
# so health probes and other webhooks are answered meanwhile. Smaller ones (an ordinary
# Alertmanager group of a few dozen alerts) stay on it, where a thread costs more than
# the work.
OFF_LOOP_BYTES = 64 * 1024


def new_id() -> str:
    """A fresh notification id (32 hex characters)."""
    return f"{_PREFIX}{next(_COUNTER):020x}"


def plan_notifications(
    events: Sequence[Event],
    tree: RouteTree,
    now: datetime,
    hold: Callable[[Event], float] | None = None,
) -> list[Notification]:
    """Each event goes to every receiver its labels route to, grouped by the source group.

    `hold` (seconds per event) delays a notification whose every event is held by the
    shortest of their holds: it is due then, or as soon as anything else for its group is.
    """
    groups: dict[tuple[str, str], tuple[RouteSettings, list[Event]]] = {}
    for event in events:
        for route in tree.match(event.labels):
            key = (route.receiver, event.group_key)
            if key not in groups:
                groups[key] = (route, [])
            groups[key][1].append(event)
    accepted = now.timestamp()
    return [
        Notification(
            id=new_id(),
            route=route,
            group_key=group_key,
            events=grouped,
            created_at=now,
            not_before=_held_until(grouped, hold, accepted),
        )
        for (_, group_key), (route, grouped) in groups.items()
    ]


def _held_until(events: Sequence[Event], hold: Callable[[Event], float] | None, at: float) -> float:
    if hold is None:
        return 0.0
    seconds = min(hold(e) for e in events)
    return at + seconds if seconds > 0 else 0.0


def _schema_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for err in errors[:_ERRORS_SHOWN]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    more = len(errors) - _ERRORS_SHOWN
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _parse(body: bytes, model: type[BaseModel]) -> Any:
    # pydantic parses and validates the JSON in one pass (in Rust): the hot path.
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise InvalidPayload(f"invalid JSON: {errors[0]['msg']}") from exc
        if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
            raise InvalidPayload("expected a JSON object") from exc
        raise InvalidPayload(_schema_error(exc)) from exc


# A large body's alerts are validated this many at a time: each chunk holds the GIL for a
# few milliseconds (pydantic's core does not release it), so the event loop's thread gets
# it back between chunks instead of waiting out a whole megabyte.
_ALERT_CHUNK = 250
_ALERT_LIST = TypeAdapter(list[alertmanager.AlertmanagerAlert])


def _parse_alertmanager(body: bytes, limit: int) -> alertmanager.AlertmanagerWebhook:
    """The webhook model of `body`; a large one in chunks, refused early past `limit`."""
    model = alertmanager.AlertmanagerWebhook
    if len(body) < OFF_LOOP_BYTES:
        plain = alertmanager.read_plain(body)
        if plain is not None:
            return plain
        return cast(alertmanager.AlertmanagerWebhook, _parse(body, model))
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(alerts, list) or not alerts:
        return cast(alertmanager.AlertmanagerWebhook, _parse(body, model))
    _check_alert_count(len(alerts), limit)
    try:
        head = model.model_validate({**data, "alerts": alerts[:1]})
        parsed: list[alertmanager.AlertmanagerAlert] = []
        for start in range(0, len(alerts), _ALERT_CHUNK):
            parsed.extend(_ALERT_LIST.validate_python(alerts[start : start + _ALERT_CHUNK]))
    except ValidationError:
        # The whole body again, for errors that name the failing alert's index.
        return cast(alertmanager.AlertmanagerWebhook, _parse(body, model))
    return head.model_copy(update={"alerts": parsed})


def _check_alert_count(count: int, limit: int) -> None:
    if count > limit:
        raise PayloadTooLarge(
            f"{count} alerts in one webhook; server.max_alerts_per_webhook is {limit}"
        )


def _alertmanager(body: bytes, config: Config, now: datetime) -> list[Event]:
    payload = _parse_alertmanager(body, config.server.max_alerts_per_webhook)
    return alertmanager.to_events(payload, config, now)


def _argocd(body: bytes, config: Config, now: datetime) -> list[Event]:
    return argocd.to_events(_parse(body, argocd.ArgoCDNotification), config, now)


# Each source's body to normalized events.
SOURCES: Mapping[str, Callable[[bytes, Config, datetime], list[Event]]] = {
    "alertmanager": _alertmanager,
    "argocd": _argocd,
}


def _plan(
    source: str, body: bytes, runtime: Runtime, now: datetime
) -> tuple[list[Event], list[Notification], list[AlertState], list[str]]:
    """A body's events, the notifications they make, the alert states inhibition needs and
    the heartbeats it beats. Pure (no I/O, nothing shared written), so it may run on
    another thread."""
    config = runtime.config
    # Beats are recorded like alerts (visible in records) but never notified.
    events, beats = runtime.heartbeats.mark(SOURCES[source](body, config, now))
    _check_alert_count(len(events), config.server.max_alerts_per_webhook)
    groups = len({event.group_key for event in events})
    limit = config.server.max_groups_per_webhook
    if groups > limit:
        raise PayloadTooLarge(
            f"{groups} groups in one webhook (Alertmanager sends one);"
            f" server.max_groups_per_webhook is {limit}"
        )
    # Only Argo CD problems are held (flap damping): Alertmanager has its own group_wait.
    hold = argocd.hold_of(config) if source == "argocd" else None
    notifications = plan_notifications(events, runtime.tree, now, hold)
    # Alert states only matter to inhibition: without rules, nothing is spent on them.
    alerts = (
        alert_states(events, now.timestamp(), config.dedup.repeat_interval)
        if config.inhibit_rules
        else []
    )
    return events, notifications, alerts, beats


class Intake:
    """Records webhooks: `accept` returns only once the store holds what a body said."""

    def __init__(
        self,
        store: Store,
        runtime: Callable[[], Runtime],
        firing: FiringAlerts,
        wake: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._firing = firing
        self._wake = wake
        self._clock = clock

    async def accept(self, source: str, body: bytes) -> int:
        """Parse, route and record one webhook body of `source`; returns its event count.

        Raises InvalidPayload for a body that does not parse or fit the source's schema
        (PayloadTooLarge for one over the per-webhook limits) and
        StoreUnavailable when the store cannot record; in both cases nothing was recorded.
        """
        # One runtime for the whole webhook, even if a reload swaps it meanwhile.
        runtime = self._runtime()
        now = datetime.fromtimestamp(self._clock(), UTC)
        if len(body) >= OFF_LOOP_BYTES:
            planned = await asyncio.to_thread(_plan, source, body, runtime, now)
        else:
            planned = _plan(source, body, runtime, now)
        events, notifications, alerts, beats = planned
        for name in beats:
            await self._store.beat(name, now.timestamp())
        await self._store.record(notifications, alerts=alerts, deploys=deploys_of(events))
        if alerts:
            self._firing.invalidate()
        self._wake()
        return len(events)
