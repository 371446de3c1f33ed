"""The notify stage that suppresses beats: recorded with a "beat" timeline entry, never sent."""

from __future__ import annotations

from router.config.heartbeats import beat_of
from router.notify.stages import Job, Screening, Suppressed

REASON = "beat"


class BeatStage:
    """Suppresses a claim whose alerts are all beats (the intake gives beats groups of
    their own)."""

    async def __call__(self, job: Job, given: Screening, /) -> Screening | Suppressed:
        names = {beat_of(e) for e in job.notification.events}
        if not names or None in names:
            return given
        shown = ", ".join(sorted(n for n in names if n))
        job.note("beat", f"beat of heartbeat {shown}: recorded, never notified", heartbeat=shown)
        return Suppressed(REASON)
