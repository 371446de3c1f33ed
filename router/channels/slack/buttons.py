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
from router.model import ActionKind, GroupActions, SilenceScope
from router.render.text import escape_mrkdwn

# Block ids of what the buttons add; an edit replaces exactly these blocks.
INTERACTIVE_BLOCK_PREFIX = "ar-"
# Slack's limit on a button's value.
MAX_BUTTON_VALUE = 2000
_SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,30}$")

# What a button carries back: Slack echoes a clicked button's `action_id` and `value`.
#   action_id  "ack" | "unack" | "unsilence" | "silence_<whole seconds>"
#   value      {"r": <receiver>, "g": <group key>} as compact JSON
# Silence buttons posted by earlier versions also hold "d": <seconds> in their value; the
# action_id says the same, so it is ignored and those messages stay clickable.
_SILENCE_PREFIX = f"{ActionKind.SILENCE.value}_"
_PLAIN_KINDS = {k.value: k for k in (ActionKind.ACK, ActionKind.UNACK, ActionKind.UNSILENCE)}


@dataclass(frozen=True, slots=True)
class ButtonAction:
    """What one of alert-router's buttons asks for: an action on a receiver's group, and
    for a Silence its length in whole seconds (checked against the store and the config
    when clicked, never trusted)."""

    kind: ActionKind
    receiver: str
    group_key: str
    duration: float = 0.0


def encode_button(button: ButtonAction) -> tuple[str, str]:
    """The `action_id` and `value` of a button asking for `button`."""
    if button.kind is ActionKind.SILENCE:
        action_id = f"{_SILENCE_PREFIX}{int(button.duration)}"
    else:
        action_id = button.kind.value
    data = {"r": button.receiver, "g": button.group_key}
    return action_id, json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def decode_button(action_id: str, value: str) -> ButtonAction | None:
    """What a clicked button asks for, or None when it is not one of ours."""
    kind = _PLAIN_KINDS.get(action_id)
    duration = 0.0
    seconds = action_id.removeprefix(_SILENCE_PREFIX)
    if kind is None and seconds != action_id and seconds.isascii() and seconds.isdigit():
        kind, duration = ActionKind.SILENCE, float(seconds)
    if kind is None:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    receiver, group_key = data.get("r"), data.get("g")
    if not isinstance(receiver, str) or not isinstance(group_key, str):
        return None
    return ButtonAction(kind, receiver, group_key, duration)


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

    def asking(self, kind: ActionKind, duration: float = 0.0) -> ButtonAction:
        """What a button of this message asking for `kind` carries."""
        return ButtonAction(kind, self.receiver, self.group_key, duration)


def _who(user_id: str, name: str, fresh: bool) -> str:
    if not fresh and _SLACK_USER_RE.match(user_id):
        # An edit never notifies: a mention shows the person's current display name.
        return f"<@{user_id}>"
    return escape_mrkdwn(name or user_id or "someone")


def _button(text: str, action: ButtonAction, **extra: Any) -> dict[str, Any]:
    action_id, value = encode_button(action)
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
    if len(encode_button(buttons.asking(ActionKind.ACK))[1]) > MAX_BUTTON_VALUE:
        # Too long a group key for Slack to carry back: the message has no buttons.
        return blocks
    elements = [
        _button("Unacknowledge", buttons.asking(ActionKind.UNACK))
        if acked
        else _button("Acknowledge", buttons.asking(ActionKind.ACK), style="primary")
    ]
    if silenced:
        elements.append(_button("Unsilence", buttons.asking(ActionKind.UNSILENCE)))
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
        buttons.asking(ActionKind.SILENCE, duration),
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
