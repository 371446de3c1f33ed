"""The buttons of a group's Slack message (slack.interactivity): the status line saying
who acknowledged or silenced it, Acknowledge / Silence and their undoing, and what each
button carries back to POST /slack/interactions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.channels.slack.mrkdwn import SlackPayload, slack_date
from router.durations import format_duration
from router.model import GroupActions, SilenceScope
from router.render.text import escape_mrkdwn

# Block ids of what the buttons add; an edit replaces exactly these blocks.
INTERACTIVE_BLOCK_PREFIX = "ar-"
ACTION_ACK = "ack"
ACTION_UNACK = "unack"
ACTION_SILENCE = "silence"
ACTION_UNSILENCE = "unsilence"
# Slack's limit on a button's value.
MAX_BUTTON_VALUE = 2000
_SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,30}$")


@dataclass(frozen=True, slots=True)
class Buttons:
    """What the buttons of one group's message show: the group, the silence lengths on
    offer and what was done to it so far. `fresh` for a new post: a person is then named,
    never mentioned, so the post pings nobody."""

    receiver: str
    group_key: str
    durations: Sequence[float]
    state: GroupActions | None = None
    now: float = 0.0
    fresh: bool = False
    # What a Silence creates, fixed when the message was posted; no Silence buttons
    # without one (or when it says none can be offered).
    silence: SilenceScope | None = None


def button_value(receiver: str, group_key: str, duration: float = 0.0) -> str:
    """What a button carries back: which group it is about (checked against the store)."""
    data: dict[str, Any] = {"r": receiver, "g": group_key}
    if duration:
        data["d"] = int(duration)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _who(user_id: str, name: str, fresh: bool) -> str:
    if not fresh and _SLACK_USER_RE.match(user_id):
        # An edit never notifies: a mention shows the person's current display name.
        return f"<@{user_id}>"
    return escape_mrkdwn(name or user_id or "someone")


def _button(text: str, action_id: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
        **extra,
    }


def interactive_blocks(buttons: Buttons) -> list[dict[str, Any]]:
    """The status line (acknowledged, silenced) and the buttons of a firing group's
    message; block ids change with every state, as Slack asks of an edited message."""
    state = buttons.state
    version = state.version if state is not None else 0
    tag = hashlib.sha256(f"{buttons.receiver}\n{buttons.group_key}".encode()).hexdigest()[:12]
    lines: list[str] = []
    acked = state is not None and state.acknowledged
    silenced = state is not None and state.silenced(buttons.now)
    if state is not None and acked:
        who = _who(state.acked_by, state.acked_by_name, buttons.fresh)
        when = slack_date(datetime.fromtimestamp(state.acked_at, UTC))
        lines.append(f":eyes: Acknowledged by {who} at {when}")
    if state is not None and silenced:
        who = _who(state.silenced_by, state.silenced_by_name, buttons.fresh)
        until = slack_date(datetime.fromtimestamp(state.silenced_until, UTC))
        what = (
            f"(Alertmanager silence `{escape_mrkdwn(state.silence_id)}`)"
            if state.silence_id
            else "(muted by alert-router)"
        )
        lines.append(f":no_bell: Silenced by {who} until {until} {what}")
    elif state is not None and state.silence_pending:
        lines.append(":hourglass_flowing_sand: Creating the silence…")
    blocks: list[dict[str, Any]] = []
    if lines:
        blocks.append(
            {
                "type": "context",
                "block_id": f"{INTERACTIVE_BLOCK_PREFIX}state:{tag}:{version}",
                "elements": [{"type": "mrkdwn", "text": line} for line in lines],
            }
        )
    value = button_value(buttons.receiver, buttons.group_key)
    if len(button_value(buttons.receiver, buttons.group_key, 10**9)) > MAX_BUTTON_VALUE:
        # Too long a group key for Slack to carry back: the message has no buttons.
        return blocks
    elements = [
        _button("Unacknowledge", ACTION_UNACK, value)
        if acked
        else _button("Acknowledge", ACTION_ACK, value, style="primary")
    ]
    if silenced:
        elements.append(_button("Unsilence", ACTION_UNSILENCE, value))
    elif (state is None or not state.silence_pending) and buttons.silence is not None:
        if buttons.silence.offered:
            for duration in buttons.durations:
                elements.append(_silence_button(buttons, buttons.silence, duration))
    blocks.append(
        {
            "type": "actions",
            "block_id": f"{INTERACTIVE_BLOCK_PREFIX}actions:{tag}:{version}",
            "elements": elements,
        }
    )
    return blocks


# Slack cuts a confirmation dialog's text at 300 characters.
_CONFIRM_TEXT = 300


def silence_confirmation(scope: SilenceScope, label: str) -> str:
    """The dialog's words: what the silence matches and where it is made (plain mrkdwn,
    within Slack's limit; what does not fit is counted, never silently left out)."""
    if scope.by_router:
        return f"alert-router stops telling anyone about this group for {label}."
    head = f"Creates a silence for {label} on Alertmanager {escape_mrkdwn(scope.alertmanager)}"
    shown: list[str] = []
    for i, (name, op, value) in enumerate(scope.matchers):
        text = escape_mrkdwn(f"{name}{op}{json.dumps(value, ensure_ascii=False)}")
        rest = len(scope.matchers) - i - 1
        tail = f" and {rest} more matchers (see the console)" if rest else ""
        candidate = f"{head} matching `{', '.join([*shown, text])}`{tail}"
        if len(candidate) > _CONFIRM_TEXT:
            break
        shown.append(text)
    left = len(scope.matchers) - len(shown)
    more = f" and {left} more matchers (see the console)" if left else ""
    return f"{head} matching `{', '.join(shown)}`{more}"[:_CONFIRM_TEXT]


def _silence_button(buttons: Buttons, scope: SilenceScope, duration: float) -> dict[str, Any]:
    label = format_duration(duration)
    return _button(
        f"Silence {label}",
        f"{ACTION_SILENCE}_{int(duration)}",
        button_value(buttons.receiver, buttons.group_key, duration),
        confirm={
            "title": {"type": "plain_text", "text": f"Silence for {label}?"},
            "text": {"type": "mrkdwn", "text": silence_confirmation(scope, label)},
            "confirm": {"type": "plain_text", "text": "Silence"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    )


def with_buttons(payload: SlackPayload, buttons: Buttons | None) -> SlackPayload:
    """`payload` with its buttons and status line (if any) replaced by those of `buttons`
    (none when None): the same message, showing what was done to the group now."""
    top = [
        b
        for b in payload.get("blocks") or []
        if not str(b.get("block_id", "")).startswith(INTERACTIVE_BLOCK_PREFIX)
    ]
    if buttons is not None:
        top = [*top, *interactive_blocks(buttons)]
    return {**payload, "blocks": top}
