"""Every Prometheus collector of the service, in one place, on one registry."""

from __future__ import annotations

import platform
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from router import version

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    """The `alert_router_*` collectors. Tests give each app its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.build_info = Gauge(
            "alert_router_build_info",
            "Always 1; the labels name the running build.",
            ["version", "python_version"],
            registry=r,
        )
        self.build_info.labels(version(), platform.python_version()).set(1)
        self.events_received = Counter(
            "alert_router_events_received_total",
            "Events accepted from webhooks, by source.",
            ["source"],
            registry=r,
        )
        self.webhooks_rejected = Counter(
            "alert_router_webhooks_rejected_total",
            "Webhooks refused, by source (slack for button clicks) and reason (unauthorized, "
            "bad_request, too_large, unsupported_media_type, store_unavailable, "
            "not_configured).",
            ["source", "reason"],
            registry=r,
        )
        self.slack_actions = Counter(
            "alert_router_slack_actions_total",
            "Slack button clicks carried out, by action (ack, unack, silence, unsilence) and "
            "outcome (done, no_op, ignored, retrying, given_up, failed).",
            ["action", "outcome"],
            registry=r,
        )
        self.oncall_resolutions = Counter(
            "alert_router_oncall_resolutions_total",
            "oncall:<rotation> resolved when a message went out, by rotation and by what decided"
            " (rotation, override, rotation_store_down: the store did not answer).",
            ["rotation", "by"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "alert_router_webhook_duration_seconds",
            "Time to validate, route and durably record a webhook.",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=r,
        )
        # As Alertmanager counts: every attempt, failed ones included, so that
        # failed_total / total is the failure ratio of a receiver.
        self.notifications_attempted = Counter(
            "alert_router_notifications_total",
            "Delivery attempts, by receiver and integration (failed ones included).",
            ["receiver", "integration"],
            registry=r,
        )
        self.notifications_failed = Counter(
            "alert_router_notifications_failed_total",
            "Delivery attempts that failed, by receiver, integration and reason; the ones "
            "given up are also counted in alert_router_notifications_dead_total.",
            ["receiver", "integration", "reason"],
            registry=r,
        )
        self.notifications_suppressed = Counter(
            "alert_router_notifications_suppressed_total",
            "Notifications not sent, by receiver and reason (duplicate, muted, inhibited, ...).",
            ["receiver", "reason"],
            registry=r,
        )
        self.notifications_dead = Counter(
            "alert_router_notifications_dead_total",
            "Notifications given up after failing for state.dead_after, or failing permanently.",
            ["receiver", "integration"],
            registry=r,
        )
        self.delivery_latency = Histogram(
            "alert_router_notification_latency_seconds",
            "Time from webhook accepted to notification delivered.",
            ["receiver", "integration"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # Storm control of paced channels (Slack per channel, email per recipient set).
        self.paced_sends = Counter(
            "alert_router_paced_sends_total",
            "Notifications sent through a paced channel, by integration and how they went "
            "out (delivery: alone, or digest when folded into a digest).",
            ["integration", "delivery"],
            registry=r,
        )
        self.pacing_wait = Histogram(
            "alert_router_pacing_wait_seconds",
            "Time from a paced send's turn being asked for to it being posted: the wait for "
            "the destination's slot (behind a backlog or a Retry-After) plus the post.",
            ["integration"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.outbox_pending = Gauge(
            "alert_router_outbox_pending",
            "Notifications recorded and waiting for delivery (queue depth).",
            registry=r,
        )
        self.config_reload_success = Gauge(
            "alert_router_config_last_reload_successful",
            "Whether the last configuration (re)load succeeded.",
            registry=r,
        )
        self.config_reload_time = Gauge(
            "alert_router_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            registry=r,
        )
        self.config_team_ok = Gauge(
            "alert_router_config_team_ok",
            "Whether a team's file loaded at the last (re)load; 0: its alerts are routed by "
            "its last good version, or by its fallback receiver when it has none.",
            ["team"],
            registry=r,
        )
        # Registered only by a service on SQLite (export_sqlite_size): Redis has no file,
        # and its own exporter reports its memory.
        self.sqlite_size = Gauge(
            "alert_router_sqlite_size_bytes",
            "Size of the SQLite state file and its write-ahead log on disk: what the volume "
            "must hold (grows with state.keep_records; freed pages are reused, not returned).",
            registry=None,
        )
        self.store_up = Gauge(
            "alert_router_store_up",
            "Whether the state store answered its last check (a ping every few seconds, "
            "and every readiness probe).",
            registry=r,
        )
        self.heartbeat_last_beat = Gauge(
            "alert_router_heartbeat_last_beat_timestamp_seconds",
            "When each configured heartbeat last beat (Unix seconds; from the shared store, "
            "so every replica exports the same value). Absent until its first beat.",
            ["heartbeat"],
            registry=r,
        )
        # Enrichment (router/enrich): Loki queries and the links/logs added to messages.
        self.enrich_duration = Histogram(
            "alert_router_enrich_duration_seconds",
            "Time spent enriching, by enricher (loki: one Loki query; message: a whole "
            "message's links and log excerpts).",
            ["enricher"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.enrich_failures = Counter(
            "alert_router_enrich_failures_total",
            "Enrichments that gave no result, by enricher and reason (missing_label, template, "
            "timeout, overloaded, unreachable, rejected, server_error, malformed, internal).",
            ["enricher", "reason"],
            registry=r,
        )
        self.enrich_cache_hits = Counter(
            "alert_router_enrich_cache_hits_total",
            "Enrichments answered from the cache or by joining an identical query in flight.",
            ["enricher"],
            registry=r,
        )
        self.enrich_queries = Counter(
            "alert_router_enrich_queries_total",
            "Queries sent to the enrichment backend (Loki), by enricher.",
            ["enricher"],
            registry=r,
        )
        # Issue 23: what happens after someone acted on a group.
        self.escalations = Counter(
            "alert_router_escalations_total",
            "Escalation steps told, by the step's receiver and step number (1 is the first).",
            ["receiver", "step"],
            registry=r,
        )
        self.time_to_acknowledge = Histogram(
            "alert_router_time_to_acknowledge_seconds",
            "From a group's first firing message to its acknowledgement, by receiver.",
            ["receiver"],
            buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
            registry=r,
        )
        self.silence_polls = Counter(
            "alert_router_silence_polls_total",
            "Checks of silenced or acknowledged groups against their Alertmanager's alerts, by"
            " Alertmanager and outcome (listed, failed, restarted: just started, not trusted).",
            ["alertmanager", "outcome"],
            registry=r,
        )
        self.silence_polls_waiting = Gauge(
            "alert_router_silence_polls_waiting",
            "Groups due for a check and not checked yet: each replica checks at most"
            " alertmanager.poll_max_groups per poll interval, oldest first.",
            registry=r,
        )

    def export_sqlite_size(self, size: Callable[[], float]) -> None:
        """Export `alert_router_sqlite_size_bytes`, read from `size` at each scrape."""
        self.sqlite_size.set_function(size)
        self.registry.register(self.sqlite_size)
