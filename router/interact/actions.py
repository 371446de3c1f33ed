"""The types of a click and of what was done to a group; pure data, shared with the stores.

A click becomes an `Action`, recorded durably before Slack gets its 200 and carried out
later by whichever replica claims it. What acting did to a group (acknowledged, silenced)
is its `GroupActions`, changed only by compare-and-set on its `version`, so two replicas
carrying out clicks on one group never both create a silence.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

# Where a channel finds the group's `GroupActions` (JSON) in the state it is handed.
PRIOR_ACTIONS_KEY = "actions"
# The id prefix of an Acknowledge given on the console (for the same Slack message).
CONSOLE_ACTION_PREFIX = "console-"


class ActionKind(enum.StrEnum):
    ACK = "ack"
    UNACK = "unack"
    SILENCE = "silence"
    UNSILENCE = "unsilence"


@dataclass(frozen=True, slots=True)
class Action:
    """One click to carry out. `id` is its idempotency key: the same click delivered twice
    (Slack's retry, two replicas) is recorded once."""

    id: str
    kind: ActionKind
    receiver: str
    group_key: str
    user_id: str
    user_name: str
    # The Slack message clicked (channel ID and ts): it must be the group's current one.
    channel: str
    message_ts: str
    received_at: float
    # Silence length in seconds (silence only).
    duration: float = 0.0
    # The Slack workspace's domain, for a link back to the message.
    team_domain: str = ""

    @property
    def names_no_message(self) -> bool:
        """A console (un)acknowledgement of one receiver's group, whatever it was sent as
        (email, a webhook, a Slack message with or without buttons)."""
        return self.id.startswith(CONSOLE_ACTION_PREFIX) and not self.message_ts

    @property
    def origin(self) -> str:
        """Where the click was made, as the timeline says it: `Slack` or `the console`."""
        return "the console" if self.id.startswith(CONSOLE_ACTION_PREFIX) else "Slack"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "kind": self.kind.value}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Action:
        data = json.loads(text)
        data["kind"] = ActionKind(data["kind"])
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True, slots=True)
class ActionClaim:
    """An action taken by one worker under a lease; `attempts` before this one."""

    action: Action
    attempts: int
    token: str


@dataclass(frozen=True, slots=True)
class GroupActions:
    """What people did to one (receiver, group): who acknowledged it and when, and the
    silence they set (an Alertmanager silence id, or the router's own mute when empty)."""

    receiver: str
    group_key: str
    acked_by: str = ""
    acked_by_name: str = ""
    acked_at: float = 0.0
    silenced_by: str = ""
    silenced_by_name: str = ""
    silenced_at: float = 0.0
    silenced_until: float = 0.0
    silence_id: str = ""
    # Which configured Alertmanager holds `silence_id`, and what it matches (as shown).
    silence_alertmanager: str = ""
    silence_matchers: str = ""
    # The action creating a silence right now: no other may start one meanwhile.
    silence_pending: str = ""
    # The last failure to carry out an action, shown in the thread ("Could not ...").
    last_error: str = ""
    # Bumped by every change; a write names the version it read (compare-and-set).
    version: int = 0

    @property
    def acknowledged(self) -> bool:
        return bool(self.acked_by)

    def silenced(self, now: float) -> bool:
        """Whether a silence set from here holds at `now`."""
        return bool(self.silenced_by) and self.silenced_until > now

    def router_muted(self, now: float) -> bool:
        """Whether the router itself mutes the group (a silence without Alertmanager)."""
        return self.silenced(now) and not self.silence_id

    def cleared_ack(self) -> GroupActions:
        """The same state, no longer acknowledged."""
        return replace(self, acked_by="", acked_by_name="", acked_at=0.0)

    def cleared_silence(self) -> GroupActions:
        """The same state, no longer silenced."""
        return replace(
            self,
            silenced_by="",
            silenced_by_name="",
            silenced_at=0.0,
            silenced_until=0.0,
            silence_id="",
            silence_alertmanager="",
            silence_matchers="",
            silence_pending="",
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as the read API and the console show it."""
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GroupActions:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupActions:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
