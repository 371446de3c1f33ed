"""`reports:`: a weekly (or daily) summary of the insights posted to a receiver, once
across replicas (the store records each report's latest slot), a slot missed while the
service was down sent once at start."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta

from router.config.schema import Config, ReportConfig
from router.durations import format_duration
from router.model import Event, Notification, RouteSettings, Status, format_time
from router.replay.insights import window
from router.store.beats import HeartbeatState
from router.store.protocols import Store, StoreUnavailable
from router.store.rollup import BOUNDS, INDEX, RollupRead, percentile

log = logging.getLogger(__name__)

# How often due reports are looked for; a report goes out within this of its slot.
CHECK_EVERY = 30.0
TOP = 5
_MTTA = slice(INDEX["mtta0"], INDEX["mtta0"] + len(BOUNDS))
_MTTR = slice(INDEX["mttr0"], INDEX["mttr0"] + len(BOUNDS))


def latest_slot(report: ReportConfig, now: float) -> float:
    """The latest time at or before `now` the report is due (its wall time in its zone,
    whatever the offset that day: DST weeks included)."""
    weekday, hour, minute = report.schedule
    zone = report.zone
    local = datetime.fromtimestamp(now, zone)
    day = local.date()
    if weekday is not None:
        day -= timedelta(days=(local.weekday() - weekday) % 7)
    step = timedelta(days=7 if weekday is not None else 1)
    while True:
        slot = datetime.combine(day, time(hour, minute), tzinfo=zone).timestamp()
        if slot <= now:
            return slot
        day -= step


def report_name(index: int, report: ReportConfig) -> str:
    """What the store records the report's slots under."""
    return f"{index}:{report.receiver}:{report.every}:{report.timezone}"


def report_window(report: ReportConfig) -> float:
    if report.since is not None:
        return report.since
    return 86400.0 * (7 if report.schedule[0] is not None else 1)


def _overall(read: RollupRead) -> list[int]:
    """Every receiver's row summed: each acknowledgement and episode as told."""
    rows = [row for (kind, _), row in read.totals.items() if kind == "receiver"]
    return [sum(column) for column in zip(*rows, strict=True)] if rows else [0] * len(INDEX)


def _at_most(value: float | None) -> str:
    return "no data" if value is None else "at most " + format_duration(value)


def _heartbeats(current: RollupRead, states: Sequence[HeartbeatState]) -> str:
    """Heartbeats that went missing in the period (times counted), and those still missing."""
    went = {
        name: row[INDEX["episodes"]]
        for (kind, name), row in current.totals.items()
        if kind == "heartbeat" and row[INDEX["episodes"]]
    }
    still = {s.name: s.missing_since for s in states if s.missing_since is not None}
    parts = []
    for name in sorted(went.keys() | still.keys()):
        notes = []
        if name in went:
            notes.append(f"{went[name]} time{'s' if went[name] != 1 else ''}")
        if name in still:
            at = format_time(datetime.fromtimestamp(still[name], UTC))
            notes.append(f"still missing, silent since {at}")
        parts.append(f"{name} ({'; '.join(notes)})")
    return "Heartbeats that went missing: " + (", ".join(parts) if parts else "none")


def summary(
    current: RollupRead,
    previous: RollupRead,
    seconds: float,
    link: str,
    heartbeats: Sequence[HeartbeatState] = (),
) -> tuple[str, str]:
    """The report's title and text; `heartbeats` as stored now (those still missing)."""
    alerts = [(name, row) for (kind, name), row in current.totals.items() if kind == "alert"]

    def noise(item: tuple[str, Sequence[int]]) -> tuple[int, int, str]:
        row = item[1]
        return (-row[INDEX["noise"]], -row[INDEX["notifications"]], item[0])

    alerts.sort(key=noise)
    total = sum(row[INDEX["notifications"]] for _, row in alerts)
    lines = [f"Noisiest alerts of the last {format_duration(seconds)}:"]
    for name, row in alerts[:TOP]:
        episodes, noisy = row[INDEX["episodes"]], row[INDEX["noise"]]
        share = f"{round(100 * noisy / episodes)}% noise" if episodes else "no episode ended"
        lines.append(
            f"- {name}: {row[INDEX['notifications']]} notifications, {share}"
            f" ({noisy} of {episodes} episodes resolved within 5m)"
        )
    if not alerts:
        lines.append("- nothing was recorded")
    now_row, before_row = _overall(current), _overall(previous)
    for label, part in (("Time to acknowledge", _MTTA), ("Time to resolve", _MTTR)):
        lines.append(
            f"{label} (median): {_at_most(percentile(now_row[part], 0.5))}"
            f" (the period before: {_at_most(percentile(before_row[part], 0.5))})"
        )
    lines.append(f"Escalations: {now_row[INDEX['escalations']]}")
    lines.append(_heartbeats(current, heartbeats))
    lines.append(f"Insights: {link}")
    title = f"Alert insights: {total} notifications, top noise {alerts[0][0] if alerts else '-'}"
    return title, "\n".join(lines)


class Reports:
    """Posts each configured report at its slots; run one per process, any number of
    processes on one store."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        wake: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._config = config
        self._wake = wake
        self._clock = clock

    async def run_once(self) -> int:
        """Post every report whose latest slot no process posted yet; how many this did."""
        config = self._config()
        now = self._clock()
        sent = 0
        for index, report in enumerate(config.reports):
            slot = latest_slot(report, now)
            if await self._store.claim_report(report_name(index, report), slot):
                await self._post(config, index, report, slot, now)
                sent += 1
        return sent

    async def run(self) -> None:
        """Look for due reports every CHECK_EVERY seconds until cancelled."""
        while True:
            try:
                await self.run_once()
            except StoreUnavailable as exc:
                log.warning("reports wait for the store", extra={"error": str(exc)})
            except Exception:  # noqa: BLE001 - a report must never stop the service
                log.exception("report failed")
            await asyncio.sleep(CHECK_EVERY)

    async def compose(self, seconds: float, now: float, link: str) -> tuple[str, str]:
        """The title and text of a report of the `seconds` before `now`."""
        since, until, hourly = window(now, seconds)
        current = await self._store.read_rollups(since, until, hourly=hourly)
        previous = await self._store.read_rollups(2 * since - until, since, hourly=hourly)
        states = await self._store.heartbeat_states()
        return summary(current, previous, seconds, link, states)

    async def _post(
        self, config: Config, index: int, report: ReportConfig, slot: float, now: float
    ) -> None:
        seconds = report_window(report)
        base = (config.server.external_url or "").rstrip("/")
        link = f"{base}/ui/insights?since={format_duration(seconds).replace(' ', '')}"
        title, text = await self.compose(seconds, now, link)
        at = datetime.fromtimestamp(now, UTC)
        event = Event(
            source="alert-router",
            fingerprint=f"report-{index}-{int(slot)}",
            group_key=f"report:{report_name(index, report)}:{int(slot)}",
            status=Status.FIRING,
            labels={
                "alertname": "AlertRouterReport",
                "severity": "info",
                "env": "",
                "source": "alert-router",
            },
            annotations={"summary": title, "description": text},
            starts_at=at,
            generator_url=link if base else "",
            one_shot=True,
        )
        route = RouteSettings(
            receiver=report.receiver,
            path=f"reports[{index}]",
            repeat_interval=config.dedup.repeat_interval,
            send_resolved=False,
        )
        notification = Notification(
            id=uuid.uuid4().hex,
            route=route,
            group_key=event.group_key,
            events=[event],
            created_at=at,
        )
        await self._store.record([notification])
        self._wake()
        log.info("report queued", extra={"receiver": report.receiver, "slot": slot})
