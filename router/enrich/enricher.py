"""Adds links and Loki log excerpts to a `Message` before it is rendered.

One `Enricher` serves every receiver. Each receiver's delivery calls `enrich` for its own
message; the Loki client's cache and single-flight make the receivers of one event share a
single Loki query. Enrichment never fails a delivery and never delays it by more than
`enrich.loki.timeout` plus a small margin: what could not be fetched is named in the
alert's `logs.note` and summarised in the message's `notes`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import aiohttp

from router.cancel import cancel_and_wait
from router.config.schema import Config
from router.durations import format_duration
from router.enrich.links import links_for
from router.enrich.loki import BreakerState, LokiEnricher, LokiResult
from router.metrics import Metrics
from router.model import Event, Status
from router.render.message import AlertView, LogExcerpt, Message, with_alerts

log = logging.getLogger(__name__)

ENRICHER = "message"
# Past Loki's own timeout, the wait for excerpts gives up after this much more: each
# excerpt is bounded already, this only guards against the unforeseen.
DEADLINE_MARGIN = 0.25
# Links without Loki configured still need a time window (dashboards).
DEFAULT_LINK_LOOKBACK = 900.0


class Enricher:
    """Links for every alert of a message, Loki excerpts for the firing ones."""

    def __init__(
        self,
        config: Config,
        metrics: Metrics | None = None,
        *,
        http: aiohttp.ClientSession,
        loki: LokiEnricher | None = None,
    ) -> None:
        """`loki`: the Loki client to use (its owner closes it); else one is made on `http`
        when the config has Loki."""
        self._config = config
        self._metrics = metrics
        self._http = http
        loki_cfg = config.enrich.loki
        self._owns_loki = loki is None
        if loki is None and loki_cfg is not None:
            loki = LokiEnricher(loki_cfg, metrics, http=http)
        self._loki = loki if loki_cfg is not None else None

    def renewed(self, config: Config, metrics: Metrics | None = None) -> Enricher:
        """The enricher for a reloaded `config`. It keeps this one's Loki client (its cache,
        the queries in flight, the breaker) and the duty to close it while the Loki settings
        are the same; a replaced client is dropped, not closed, since jobs still running on
        the old config may be waiting for its answers (each bounded by its timeout)."""
        loki = self._loki
        if loki is None or loki.cfg != config.enrich.loki:
            return Enricher(config, metrics, http=self._http)
        renewed = Enricher(config, metrics, http=self._http, loki=loki)
        renewed._owns_loki, self._owns_loki = self._owns_loki, False
        return renewed

    @property
    def loki_breaker(self) -> BreakerState | None:
        """The Loki breaker's state, None without Loki."""
        return self._loki.breaker() if self._loki is not None else None

    @property
    def deadline(self) -> float:
        """The most `enrich` waits for log excerpts, in seconds."""
        return (self._loki.timeout if self._loki is not None else 0.0) + DEADLINE_MARGIN

    async def enrich(self, message: Message, events: Sequence[Event], now: datetime) -> Message:
        """A copy of `message` with links on every alert and logs on the firing ones.

        `events` are the notification's events; alerts are matched to them by fingerprint
        and status. Never raises: on an unexpected error the message goes out unenriched,
        with a note.
        """
        started = time.perf_counter()
        try:
            return await self._enrich(message, events, now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("enrichment failed", extra={"notification": message.notification_id})
            if self._metrics is not None:
                self._metrics.enrich_failures.labels(enricher=ENRICHER, reason="internal").inc()
            note = "Links and logs unavailable: enrichment failed (see the router's logs)"
            return dataclasses.replace(message, notes=(*message.notes, note))
        finally:
            if self._metrics is not None:
                self._metrics.enrich_duration.labels(enricher=ENRICHER).observe(
                    time.perf_counter() - started
                )

    async def close(self) -> None:
        """End the Loki queries in flight (if this enricher owns the client), at shutdown."""
        if self._loki is not None and self._owns_loki:
            await self._loki.close()

    # ---- internals ---------------------------------------------------------------------

    def _lookback(self) -> float:
        loki_cfg = self._config.enrich.loki
        return loki_cfg.lookback if loki_cfg is not None else DEFAULT_LINK_LOOKBACK

    async def _enrich(self, message: Message, events: Sequence[Event], now: datetime) -> Message:
        by_key = {(e.fingerprint, e.status): e for e in events}
        lookback = timedelta(seconds=self._lookback())
        results = await self._excerpts(message.firing, by_key, now)

        loki = self._loki
        config = self._config

        def view(alert: AlertView) -> AlertView:
            event = by_key.get((alert.fingerprint, alert.status))
            if event is None:
                return alert
            firing = alert.status is Status.FIRING
            result = results.get(alert.fingerprint) if firing and results else None
            if result is not None:
                expr: str | None = result.excerpt.query or None
            else:
                expr = loki.query_or_none(event.labels) if loki is not None else None
            if firing:
                start = (event.starts_at or now) - lookback
                end = now
            else:
                end = event.ends_at or now
                start = (event.starts_at or end) - lookback
            links = links_for(event, config, expr=expr, start=start, end=end)
            # Built field by field: dataclasses.replace costs several times more, per alert.
            return AlertView(
                alert.status,
                alert.alertname,
                alert.fingerprint,
                alert.summary,
                alert.description,
                alert.labels,
                alert.annotations,
                alert.starts_at,
                alert.ends_at,
                alert.generator_url,
                alert.runbook_url,
                (*alert.links, *links),
                result.excerpt if result is not None else alert.logs,
            )

        firing = [view(a) for a in message.firing]
        resolved = [view(a) for a in message.resolved]
        notes = _failure_notes(list(results.values()), len(message.firing))
        return with_alerts(message, firing, resolved, (*message.notes, *notes))

    async def _excerpts(
        self,
        alerts: Sequence[AlertView],
        by_key: dict[tuple[str, Status], Event],
        now: datetime,
    ) -> dict[str, LokiResult]:
        """Loki results per firing alert fingerprint, all fetched concurrently."""
        loki = self._loki
        if loki is None:
            return {}
        tasks: dict[str, asyncio.Task[LokiResult]] = {}
        for alert in alerts:
            event = by_key.get((alert.fingerprint, Status.FIRING))
            # One-shot events (Argo CD deployed/succeeded notices) are news, not incidents:
            # an error-log excerpt would be noise and a storm of deploys would cost queries.
            if event is None or event.one_shot or alert.fingerprint in tasks:
                continue
            tasks[alert.fingerprint] = asyncio.ensure_future(
                loki.lookup(event.labels, event.starts_at, now)
            )
        if not tasks:
            return {}
        try:
            done, pending = await asyncio.wait(tasks.values(), timeout=self.deadline)
        finally:
            for task in tasks.values():
                if not task.done():
                    task.cancel()
        if pending:
            await cancel_and_wait(pending)
        results: dict[str, LokiResult] = {}
        for fingerprint, task in tasks.items():
            if task in done and not task.cancelled() and task.exception() is None:
                results[fingerprint] = task.result()
                continue
            # Only reachable if a lookup overran its own bound: say so like a timeout.
            event = by_key[(fingerprint, Status.FIRING)]
            query = loki.query_or_none(event.labels) or ""
            note = f"Loki timed out after {format_duration(loki.timeout)}"
            results[fingerprint] = LokiResult(LogExcerpt(query=query, note=note), "timeout")
        return results


def _failure_notes(results: Sequence[LokiResult], firing: int) -> list[str]:
    """One short line per distinct reason logs are missing, e.g. `Logs unavailable: ...`."""
    counts: dict[str, int] = {}
    for result in results:
        if result.failure is not None:
            note = result.excerpt.note
            counts[note] = counts.get(note, 0) + 1
    lines = []
    for note, count in counts.items():
        scope = "" if firing <= 1 else f" for {count} of {firing} firing alerts"
        lines.append(f"Logs unavailable{scope}: {note}")
    return lines
