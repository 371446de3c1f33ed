"""What the stores keep about heartbeats: the last beat of each, and the judge's verdict."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HeartbeatState:
    """One heartbeat as stored. `since`: when it was first tracked (its clock starts there
    when it never beat); `missing_since`: when its HeartbeatMissing opened (None: not
    missing), with the labels that event carries, so it can be resolved from the store alone."""

    name: str
    since: float
    last_beat: float | None = None
    missing_since: float | None = None
    missing_labels: Mapping[str, str] = field(default_factory=dict)

    def labels_json(self) -> str:
        return json.dumps(dict(self.missing_labels), separators=(",", ":"), sort_keys=True)


def labels_from_json(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return {str(k): str(v) for k, v in json.loads(text).items()}


class HeartbeatLog(Protocol):
    """Last-beat times, durable and shared by every process on the store."""

    async def beat(self, name: str, at: float) -> None:
        """Record a beat of `name` at `at` (a later beat already stored is kept); tracks
        `name` from `at` if it was not tracked."""
        ...

    async def heartbeat_states(self) -> list[HeartbeatState]:
        """Every tracked heartbeat, by name."""
        ...

    async def track_heartbeats(self, names: Collection[str], now: float) -> None:
        """Track exactly `names`: those new start their clock at `now`, the others are
        forgotten (with their verdict)."""
        ...

    async def set_missing(
        self, name: str, since: float | None, labels: Mapping[str, str] | None = None
    ) -> None:
        """Record the judge's verdict: missing since `since` with the event's `labels`, or
        not missing (None). Nothing for a heartbeat not tracked."""
        ...
