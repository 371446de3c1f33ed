"""The notify stage that ends beats: recorded with a "beat" timeline entry, never sent."""

from __future__ import annotations

from prometheus_client import Counter

from router.config.heartbeats import beat_of
from router.model import DeliveryState, Outcome
from router.notify.stages import Job
from router.store.protocols import Outbox

REASON = "beat"


class BeatStage:
    """Ends a job whose alerts are all beats (the intake gives beats groups of their own)."""

    def __init__(self, outbox: Outbox, suppressed: Counter) -> None:
        self.outbox = outbox
        # alert_router_notifications_suppressed_total{receiver, reason}
        self.suppressed = suppressed

    async def __call__(self, job: Job) -> Job | None:
        names = {beat_of(e) for e in job.notification.events}
        if not names or None in names:
            return job
        shown = ", ".join(sorted(n for n in names if n))
        job.note("beat", f"beat of heartbeat {shown}: recorded, never notified", heartbeat=shown)
        self.suppressed.labels(job.claim.receiver, REASON).inc()
        await self.outbox.complete(
            job.claim, Outcome(DeliveryState.SUPPRESSED, REASON), job.now, timeline=job.entries()
        )
        return None
