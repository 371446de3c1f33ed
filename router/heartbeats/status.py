"""What people see of each heartbeat (the read API and the console's overview)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.config.heartbeats import Heartbeats
from router.store.beats import HeartbeatState

# ok: beating on time; late: past its interval, within grace (or not judged yet);
# missing: HeartbeatMissing is open; waiting: never beat, not yet expected.
STATES = ("ok", "late", "missing", "waiting")


@dataclass(frozen=True, slots=True)
class HeartbeatStatus:
    name: str
    interval: float
    grace: float
    matchers: tuple[str, ...]
    last_beat: float | None
    # A beat is due by then; missing from `expected_by + grace` on.
    expected_by: float
    state: str
    # Since when it has been silent, while HeartbeatMissing is open.
    missing_since: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval": self.interval,
            "grace": self.grace,
            "matchers": list(self.matchers),
            "last_beat": self.last_beat,
            "expected_by": self.expected_by,
            "missing_at": self.expected_by + self.grace,
            "state": self.state,
            "missing_since": self.missing_since,
        }


def statuses(
    specs: Heartbeats, stored: Sequence[HeartbeatState], now: float
) -> list[HeartbeatStatus]:
    """One status per configured heartbeat, in config order. One the judge has not tracked
    yet (added by a reload a moment ago) counts from `now`."""
    states = {s.name: s for s in stored}
    out = []
    for heartbeat in specs:
        state = states.get(heartbeat.name) or HeartbeatState(heartbeat.name, now)
        last = state.last_beat
        expected_by = (last if last is not None else state.since) + heartbeat.interval
        if state.missing_since is not None:
            shown = "missing"
        elif now <= expected_by:
            shown = "ok" if last is not None else "waiting"
        else:
            shown = "late"
        out.append(
            HeartbeatStatus(
                name=heartbeat.name,
                interval=heartbeat.interval,
                grace=heartbeat.grace,
                matchers=tuple(str(m) for m in heartbeat.matchers),
                last_beat=last,
                expected_by=expected_by,
                state=shown,
                missing_since=state.missing_since,
            )
        )
    return out
