"""The console's pages: each gathers what one question needs and renders one template."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from router.channels.slack.channel import posted_scope
from router.config.exposure import open_surfaces
from router.heartbeats.status import statuses
from router.model import GroupActions, NflogEntry, NotificationRecord, SilenceScope, TimelineEntry
from router.routing.outline import outline
from router.store.protocols import (
    RecordPage,
    RecordQuery,
    StoreUnavailable,
    text_query_problem,
)
from router.web.auth import console_guarded
from router.web.console.context import COUNTS, access, queries, render
from router.web.console.tester import BadLabels, parse_at, parse_labels, try_route
from router.web.oncall import oncall_now, overrides_of
from router.web.state import STATE, AppState

log = logging.getLogger(__name__)

# A group or digest page lists at most this many records (newest first), then pages.
MANY = 500
# The overview lists this many of the firing alerts one by one (all are counted).
FIRING_LISTED = 200
# The overview's newest notifications.
LATEST = 10
# Without alert states the overview reads what fires from the most recently notified log
# entries (Tuning.console_firing_groups), one record each, this many records at a time.
FIRING_READS = 8
FILTERS = ("receiver", "env", "severity", "source", "state", "reason", "q")
STATES = ("pending", "sent", "suppressed", "failed", "dead")
REASONS = (
    "first",
    "new_alerts",
    "resolved",
    "repeat",
    "duplicate",
    "muted",
    "inhibited",
    "flapped",
    "digest",
    "silenced",
    "beat",
)

Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(template: str) -> Callable[[Callable[[web.Request], Awaitable[Mapping[str, Any]]]], Page]:
    """A reader's page rendering `template`; a store that cannot answer is a 503 page."""

    def wrap(gather: Callable[[web.Request], Awaitable[Mapping[str, Any]]]) -> Page:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                context = await gather(request)
            except StoreUnavailable as exc:
                return await _error(request, 503, f"The state store does not answer: {exc}")
            except _NotFound as exc:
                return await _error(request, 404, str(exc))
            except _BadRequest as exc:
                return await _error(request, 400, str(exc))
            except web.HTTPException:
                raise
            except Exception:  # noqa: BLE001 - a page never shows a traceback
                log.exception("console page failed", extra={"path": request.path})
                return await _error(request, 500, "This page failed; the service log says why.")
            status = int(context.get("status", 200))
            return render(template, request, dict(context), status=status)

        return console_guarded(handle)

    return wrap


class _NotFound(Exception):
    """The page's subject is not (or no longer) kept; the message says which."""


class _BadRequest(Exception):
    """A query parameter cannot be used; the message says which."""


async def _query_page(
    state: AppState, query: RecordQuery, limit: int, cursor: str | None
) -> RecordPage:
    try:
        return await queries(state).query_notifications(query, limit, cursor)
    except ValueError as exc:
        # The store's word for a cursor it never gave out.
        raise _BadRequest(f"{exc}: start again from the newest page") from None


async def _error(request: web.Request, status: int, message: str) -> web.StreamResponse:
    return render("error.html", request, {"status": status, "message": message}, status=status)


async def root(request: web.Request) -> web.StreamResponse:
    """`/` and `/ui` lead to the overview."""
    raise web.HTTPFound("/ui/")


# --- overview -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FiringRow:
    labels: Mapping[str, str]
    receivers: Sequence[str]


def _routed(state: AppState, firing: Sequence[Mapping[str, str]]) -> list[FiringRow]:
    """The firing alert states, each with the receivers its labels route to now."""
    tree = state.runtime.tree
    return [
        FiringRow(labels, [route.receiver for route in tree.match(labels)]) for labels in firing
    ]


async def _told_firing(state: AppState, now: float) -> tuple[list[FiringRow], bool]:
    """The alerts receivers were last told are firing, from the notification log and each
    group's newest record; whether the groups read were cut at console_firing_groups."""
    limit = state.tuning.console_firing_groups
    entries = await state.store.firing_groups(now, limit + 1)
    cut = len(entries) > limit
    entries = entries[:limit]
    reads = asyncio.Semaphore(FIRING_READS)

    async def newest(entry: NflogEntry) -> Sequence[NotificationRecord]:
        # A few at a time: the store's connections are shared with the webhook path.
        async with reads:
            query = RecordQuery(receiver=entry.receiver, group_key=entry.group_key)
            return (await queries(state).query_notifications(query, 1)).records

    found = await asyncio.gather(*(newest(e) for e in entries))
    by_alert: dict[str, tuple[Mapping[str, str], list[str]]] = {}
    for entry, records in zip(entries, found, strict=True):
        for record in records:
            for alert in record.alerts:
                identity = str(alert.get("fingerprint", ""))
                if identity not in entry.firing:
                    continue
                labels, receivers = by_alert.setdefault(identity, (alert.get("labels") or {}, []))
                if entry.receiver not in receivers:
                    receivers.append(entry.receiver)
    rows = [FiringRow(labels, sorted(receivers)) for labels, receivers in by_alert.values()]
    return rows, cut


def _firing(rows: Sequence[FiringRow]) -> dict[str, Any]:
    by_env: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    by_receiver: Counter[str] = Counter()
    for row in rows:
        labels, receivers = row.labels, row.receivers
        by_env[labels.get("env", "")] += 1
        by_severity[labels.get("severity", "")] += 1
        by_receiver.update(receivers)
    rows = sorted(rows, key=lambda r: (r.labels.get("env", ""), r.labels.get("alertname", "")))
    return {
        "firing_total": len(rows),
        "firing_rows": rows[:FIRING_LISTED],
        "by_env": by_env.most_common(),
        "by_severity": by_severity.most_common(),
        "by_receiver": by_receiver.most_common(),
    }


def _counts(counted: Mapping[tuple[str, str], int]) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    suppressed: Counter[str] = Counter()
    for (state, reason), n in counted.items():
        totals[state] += n
        if state == "suppressed":
            suppressed[reason or "unknown"] += n
    return {
        "totals": {s: totals.get(s, 0) for s in STATES},
        "suppressed_by": suppressed.most_common(),
    }


async def _store_health(state: AppState) -> str:
    try:
        await state.store.ping()
    except StoreUnavailable as exc:
        return str(exc)
    return ""


@_page("overview.html")
async def overview(request: web.Request) -> Mapping[str, Any]:
    """What fires now, the last 24 h in counts, the newest records, the health of each part."""
    state = request.app[STATE]
    now = state.clock()
    store_problem = await _store_health(state)
    context: dict[str, Any] = {
        "store_problem": store_problem,
        "store_kind": state.runtime.config.state.url.partition(":")[0],
        "receivers": [
            (r.name, r.integration, state.deliverer.health.of(r.name))
            for r in state.runtime.config.receivers
        ],
        "loki": state.runtime.enricher.loki_breaker,
        "loaded_at": state.loaded_at,
        "last_reload": state.last_reload,
        "last_reload_at": state.last_reload_at,
        "failed_teams": state.runtime.failed_teams,
        "reloadable": state.config_path is not None,
        # The store keeps the firing set only for inhibition (router/ingest/intake.py);
        # without it, what fires is what receivers were last told (the notification log).
        "firing_tracked": bool(state.runtime.config.inhibit_rules),
        "firing_cut": False,
        "firing_groups_read": state.tuning.console_firing_groups,
        "open_surfaces": open_surfaces(state.runtime.config),
    }
    if store_problem:
        return {
            **context,
            **_firing([]),
            **_counts({}),
            "latest": [],
            "counted_at": None,
            "heartbeats": [],
            "store_down": True,
        }
    if context["firing_tracked"]:
        firing = _routed(state, await state.store.firing_alerts(now))
    else:
        firing, context["firing_cut"] = await _told_firing(state, now)
    counted, counted_at = await request.app[COUNTS].get(state)
    latest = await queries(state).query_notifications(RecordQuery(), LATEST)
    specs = state.runtime.heartbeats
    stored = await state.store.heartbeat_states() if len(specs) else []
    return {
        **context,
        "heartbeats": statuses(specs, stored, now),
        **_firing(firing),
        **_counts(counted),
        "latest": [summary(r) for r in latest.records],
        "counted_at": counted_at,
        "store_down": False,
    }


# --- the list ---------------------------------------------------------------------------------


def _query(params: Mapping[str, str]) -> RecordQuery:
    def get(name: str) -> str | None:
        return params.get(name, "").strip() or None

    return RecordQuery(
        receiver=get("receiver"),
        env=get("env"),
        severity=get("severity"),
        source=get("source"),
        state=get("state"),
        reason=get("reason"),
        text=get("q"),
    )


def summary(record: NotificationRecord) -> dict[str, Any]:
    """What a list row shows of a record: its alert names, env and severity."""
    names: list[str] = []
    envs: set[str] = set()
    severities: set[str] = set()
    for alert in record.alerts:
        labels = alert.get("labels") or {}
        name = labels.get("alertname", "")
        if name and name not in names:
            names.append(name)
        envs.add(labels.get("env", ""))
        severities.add(labels.get("severity", ""))
    shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
    return {
        "record": record,
        "names": shown or "(no alertname)",
        "env": ", ".join(sorted(envs - {""})),
        "severity": ", ".join(sorted(severities - {""})),
        "count": len(record.alerts),
    }


@_page("notifications.html")
async def notifications(request: web.Request) -> Mapping[str, Any]:
    """The records, newest first, filtered and paged."""
    state = request.app[STATE]
    params = {k: request.query.get(k, "") for k in FILTERS}
    cursor = request.query.get("cursor") or None
    query = _query(params)
    problem = text_query_problem(query.text)
    if problem is not None:
        # The form stays, so the search can be mended; nothing is scanned.
        page = RecordPage([], None)
    else:
        page = await _query_page(state, query, state.tuning.console_page_size, cursor)
    keep = {k: v for k, v in params.items() if v}
    return {
        "rows": [summary(r) for r in page.records],
        "params": params,
        "kept": keep,
        "next_cursor": page.next_cursor,
        "first_page": cursor is None,
        "receiver_names": [r.name for r in state.runtime.config.receivers],
        "states": STATES,
        "reasons": REASONS,
        "problem": problem,
        "status": 400 if problem else 200,
    }


# --- one notification -----------------------------------------------------------------------


# Timeline detail keys that name a digest or a Slack message, made links.
_DIGEST_KEYS = ("digest", "digest_id")
_ALERT_KEYS = ("source_alert", "source")


def timeline_rows(entries: Sequence[TimelineEntry]) -> list[dict[str, Any]]:
    """Each entry with its details split into links, labels and plain values."""
    rows = []
    for entry in entries:
        links: list[tuple[str, str]] = []
        plain: list[tuple[str, str]] = []
        label_sets: list[tuple[str, Mapping[str, str]]] = []
        digests: list[str] = []
        for key, value in entry.detail.items():
            labels = _label_set(value)
            if key in _DIGEST_KEYS and value:
                digests.append(value)
            elif value.startswith(("http://", "https://")):
                links.append((key, value))
            elif labels is not None:
                label_sets.append((key, labels))
            elif value and value not in entry.text:
                # What the sentence already says is not said again.
                plain.append((key, value))
        rows.append(
            {
                "entry": entry,
                "links": links,
                "plain": plain,
                "label_sets": label_sets,
                "digests": digests,
            }
        )
    return rows


def _label_set(value: str) -> Mapping[str, str] | None:
    """A detail holding a label set as JSON (an inhibiting source alert), else None."""
    if not value.startswith("{"):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
        return {str(k): v for k, v in parsed.items()}
    return None


async def _record(state: AppState, notification_id: str) -> NotificationRecord:
    record = await queries(state).get_notification(notification_id)
    if record is None:
        raise _NotFound(
            f"No notification {notification_id!r} is kept (records are kept"
            f" {state.runtime.config.state.keep_records / 86400:g} days after they end)."
        )
    return record


@_page("notification.html")
async def notification(request: web.Request) -> Mapping[str, Any]:
    """One record: its alerts, route path, timeline, and where it went."""
    state = request.app[STATE]
    notification_id = request.match_info["id"]
    record = await _record(state, notification_id)
    entries = await queries(state).timeline(notification_id)
    carried_by: NotificationRecord | None = None
    digest_id = ""
    if record.delivered_in:
        carried_by = await queries(state).get_notification(record.delivered_in)
        if carried_by is None:
            # Not a record: the digest message that carried it.
            digest_id = record.delivered_in
    digest_ids = {d for row in timeline_rows(entries) for d in row["digests"]}
    if digest_id:
        digest_ids.add(digest_id)
    who = access(request)
    actions = await state.store.group_actions(record.receiver, record.group_key)
    return {
        "actions": actions,
        "has_actions": _shows(actions, state.clock()),
        "record": record,
        "row": summary(record),
        "timeline": timeline_rows(entries),
        "carried_by": carried_by,
        "digest_ids": sorted(digest_ids),
        "can_retry": record.state in ("failed", "dead"),
        "may_act": who.admin,
        "retried": request.query.get("retried", ""),
        "acked": actions is not None and actions.acknowledged,
        "ack": request.query.get("ack", ""),
    }


def _shows(actions: GroupActions | None, now: float) -> bool:
    """Whether what people did to a group (from Slack) is still worth a line."""
    if actions is None:
        return False
    return bool(actions.acked_at or actions.silenced_until > now or actions.last_error)


# --- one group ----------------------------------------------------------------------------------


@_page("group.html")
async def group(request: web.Request) -> Mapping[str, Any]:
    """Every receiver's records of one group: who was told, who was not, and why."""
    state = request.app[STATE]
    key = request.match_info["key"]
    cursor = request.query.get("cursor") or None
    page = await _query_page(state, RecordQuery(group_key=key), MANY, cursor)
    by_receiver: dict[str, list[dict[str, Any]]] = {}
    for record in page.records:
        by_receiver.setdefault(record.receiver, []).append(summary(record))
    configured = [r.name for r in state.runtime.config.receivers]
    # The route tree's answer today, for the receivers that have no record at all.
    routed_now: list[str] = []
    first = next((r for r in page.records if r.alerts), None)
    if first is not None:
        labels = first.alerts[0].get("labels") or {}
        routed_now = [route.receiver for route in state.runtime.tree.match(labels)]
    actions = {}
    acked: dict[str, bool] = {}
    silences: dict[str, str] = {}
    for receiver in by_receiver:
        found = await state.store.group_actions(receiver, key)
        acked[receiver] = found is not None and found.acknowledged
        if _shows(found, state.clock()):
            actions[receiver] = found
        entry = await state.store.nflog_get(receiver, key, state.clock())
        if entry is not None and entry.channel_state.get("group_key"):
            silences[receiver] = _silence_offer(posted_scope(entry.channel_state))
    return {
        "key": key,
        "actions": actions,
        "acked": acked,
        "ack": request.query.get("ack", ""),
        "silences": silences,
        "by_receiver": sorted(by_receiver.items()),
        "next_cursor": page.next_cursor,
        "count": len(page.records),
        "routed_now": routed_now,
        "unheard": [r for r in routed_now if r not in by_receiver],
        "configured": configured,
        "acknowledged": request.query.get("acknowledged", ""),
    }


def _silence_offer(scope: SilenceScope | None) -> str:
    """What the Silence buttons of a group's Slack message create, or why it has none."""
    if scope is None:
        return "No Silence button: the message was posted before silences were fixed with it."
    if not scope.offered:
        return f"No Silence button: {scope.unavailable}."
    if scope.by_router:
        return "Silence buttons mute the group in alert-router (Argo CD has no silences)."
    return (
        f"Silence buttons create a silence on Alertmanager {scope.alertmanager} matching"
        f" {scope.matcher_text()}."
    )


# --- routes and the tester ----------------------------------------------------------------------


@_page("routes.html")
async def routes(request: web.Request) -> Mapping[str, Any]:
    """The route tree, and the tester's answer for `?labels=...[&at=...]`."""
    return await routes_context(request)


async def routes_context(request: web.Request) -> dict[str, Any]:
    """What the routes page shows; the replay form's answer adds to it."""
    state = request.app[STATE]
    config = state.runtime.config
    files = {load.name: load.file for load in config.team_loads}
    context: dict[str, Any] = {
        "outline": outline(state.runtime.tree, files)[2:],
        "labels_text": request.query.get("labels", ""),
        "at_text": request.query.get("at", ""),
        "answer": None,
        "error": "",
        "replay": None,
        "replay_problems": [],
        "proposed_text": "",
        "since_text": "7d",
    }
    if "labels" not in request.query:
        return context
    try:
        labels = parse_labels(request.query["labels"])
        at = parse_at(request.query.get("at", "")) or datetime.fromtimestamp(state.clock(), UTC)
    except BadLabels as exc:
        context.update(error=str(exc), status=400)
        return context
    firing = await state.store.firing_alerts(state.clock())
    context["answer"] = try_route(state.runtime, labels, at, firing)
    return context


# --- one digest -------------------------------------------------------------------------------


@_page("digest.html")
async def digest(request: web.Request) -> Mapping[str, Any]:
    """Every alert of the records one digest carried."""
    state = request.app[STATE]
    digest_id = request.match_info["id"]
    cursor = request.query.get("cursor") or None
    page = await _query_page(state, RecordQuery(delivered_in=digest_id), MANY, cursor)
    if not page.records and cursor is None:
        raise _NotFound(f"No record says it went out in digest {digest_id!r}.")
    alerts: list[tuple[Mapping[str, Any], NotificationRecord]] = []
    for record in page.records:
        alerts.extend((alert, record) for alert in record.alerts)
    return {
        "digest_id": digest_id,
        "alerts": alerts,
        "records": page.records,
        "next_cursor": page.next_cursor,
    }


# --- signing in as an admin -------------------------------------------------------------------


async def login(request: web.Request) -> web.StreamResponse:
    """Asks the browser for the admin's credentials (it keeps using them afterwards)."""
    who = access(request)
    if who.admin:
        raise web.HTTPSeeOther(_local(request.query.get("next", "/ui/")))
    admin = request.app[STATE].runtime.config.server.auth.get("admin")
    if admin is None or admin.basic_auth is None:
        return await _error(
            request,
            403,
            "Actions need an admin: set server.auth.admin with basic_auth to sign in here,"
            " or be one of server.trusted_proxy.admins.",
        )
    return web.json_response(
        {"error": "sign in with the admin credentials (server.auth.admin)"},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="alert-router"'},
    )


def _local(target: str) -> str:
    """`target` if it is a path of this console, else the overview (no open redirect)."""
    if target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/"


# --- who is on call ---------------------------------------------------------------------------


@_page("oncall.html")
async def oncall(request: web.Request) -> Mapping[str, Any]:
    """Per rotation: who is on call now, since when, the next handoff; the overrides."""
    state = request.app[STATE]
    now = state.clock()
    overrides = await overrides_of(state, now)
    rotations = list(state.runtime.oncall.rotations.values())
    members = sorted({m.name for r in rotations for m in r.members})
    start = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0)
    return {
        "rotations": oncall_now(rotations, overrides, now),
        "overrides": overrides,
        "members": members,
        "default_from": start.strftime("%Y-%m-%dT%H:%M"),
        "default_until": (start + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
        "done": _ONCALL_DONE.get(request.query.get("done", ""), ""),
    }


_ONCALL_DONE = {
    "added": "Override added.",
    "removed": "Override removed.",
    "gone": "No such override (removed already?).",
}
