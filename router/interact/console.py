"""Acknowledge or unacknowledge one receiver's group from the console: recorded as an
Action naming no message, so the same worker as a Slack click carries it out
(compare-and-set, timeline, the Slack message's edit if it has one, PagerDuty)."""

from __future__ import annotations

import uuid

from router.model import CONSOLE_ACTION_PREFIX, Action, ActionKind
from router.store.protocols import ActionQueue


async def request_acknowledgement(
    actions: ActionQueue,
    receiver: str,
    group_key: str,
    *,
    acknowledge: bool,
    user: str,
    now: float,
    message: tuple[str, str] | None = None,
) -> bool:
    """Record an (un)acknowledgement of (receiver, group) by the console's `user`, as the
    click on its Slack `message` (channel, ts) or, without one, naming no message (the
    group is acted on whatever it was sent as); whether it was recorded."""
    channel, ts = message or ("", "")
    action = Action(
        id=f"{CONSOLE_ACTION_PREFIX}{uuid.uuid4().hex}",
        kind=ActionKind.ACK if acknowledge else ActionKind.UNACK,
        receiver=receiver,
        group_key=group_key,
        # Never a Slack user ID: the message names the console's user as plain text.
        user_id=f"console:{user}",
        user_name=user,
        channel=channel,
        message_ts=ts,
        received_at=now,
    )
    return await actions.enqueue_action(action)
