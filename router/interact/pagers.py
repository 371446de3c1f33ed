"""An acknowledgement reaches the pagers: every PagerDuty receiver that was last told the
group fires gets `acknowledge` for its alert, so nobody is paged again for what someone
has taken on.

The group is the same across receivers (the source's group key); which PagerDuty alert is
the group's comes from each receiver's own notification log entry (`dedup_key`).
"""

from __future__ import annotations

import logging

from router.channels.base import DeliveryError
from router.channels.pagerduty import PagerDutyChannel
from router.runtime import Runtime
from router.store.protocols import NotificationLog

log = logging.getLogger(__name__)


async def acknowledge_pagers(
    store: NotificationLog, runtime: Runtime, group_key: str, now: float
) -> list[str]:
    """Acknowledge the group's open PagerDuty alerts; the receivers told. A retryable
    failure raises DeliveryError (acknowledging again is harmless); a permanent one is
    logged and skipped."""
    told: list[str] = []
    for name, channel in runtime.channels.items():
        if not isinstance(channel, PagerDutyChannel):
            continue
        entry = await store.nflog_get(name, group_key, now)
        if entry is None:
            continue
        try:
            if await channel.acknowledge(entry.channel_state):
                told.append(name)
        except DeliveryError as exc:
            if exc.retryable:
                raise
            log.warning(
                "PagerDuty refused the acknowledgement",
                extra={"receiver": name, "group_key": group_key, "error": str(exc)},
            )
    if told:
        log.info("acknowledged on PagerDuty", extra={"group_key": group_key, "receivers": told})
    return told
