"""Acknowledge or unacknowledge a group from the console: recorded as an Action, so the
same worker as a Slack click carries it out (compare-and-set, timeline, message edit)."""

from __future__ import annotations

import uuid

from router.interact.actions import Action, ActionKind
from router.store.protocols import ActionQueue

# Where a console action came from (Action.via); a Slack click's is "slack".
CONSOLE = "console"


async def request_acknowledgement(
    actions: ActionQueue,
    receiver: str,
    group_key: str,
    *,
    acknowledge: bool,
    user: str,
    now: float,
) -> Action:
    """Record an (un)acknowledgement of (receiver, group) by the console's `user`."""
    action = Action(
        id=f"console:{uuid.uuid4().hex}",
        kind=ActionKind.ACK if acknowledge else ActionKind.UNACK,
        receiver=receiver,
        group_key=group_key,
        # Never a Slack user ID: the message names the console's user as plain text.
        user_id=f"console:{user}",
        user_name=user,
        channel="",
        message_ts="",
        received_at=now,
        via=CONSOLE,
    )
    await actions.enqueue_action(action)
    return action
