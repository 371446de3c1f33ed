"""The heartbeats of one config, compiled: which alerts beat which heartbeat."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from router.config.schema import Config
from router.matchers import Matcher, matches_all
from router.model import Event, Status

# The `details` key that marks an event as a beat (never notified) and names its heartbeat.
BEAT_DETAIL = "heartbeat"
# Beats get a group of their own, so a beat never shares a notification with real alerts.
BEAT_GROUP_PREFIX = "heartbeat-beat/"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    name: str
    matchers: tuple[Matcher, ...]
    interval: float
    grace: float
    labels: Mapping[str, str]

    @property
    def window(self) -> float:
        """How long it may go without a beat before it is missing."""
        return self.interval + self.grace

    def beaten_by(self, labels: Mapping[str, str]) -> bool:
        # Without matchers only POST /heartbeat/{name} beats it.
        return bool(self.matchers) and matches_all(self.matchers, labels)


class Heartbeats:
    """Every configured heartbeat, by name, in config order."""

    def __init__(self, items: Sequence[Heartbeat] = ()) -> None:
        self._by_name = {h.name: h for h in items}

    @classmethod
    def from_config(cls, config: Config) -> Heartbeats:
        return cls(
            [
                Heartbeat(
                    name=h.name,
                    matchers=h.matchers,
                    interval=h.interval,
                    grace=h.grace,
                    labels=dict(h.labels),
                )
                for h in config.heartbeats
            ]
        )

    def __iter__(self) -> Iterator[Heartbeat]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Heartbeat | None:
        return self._by_name.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def mark(self, events: Sequence[Event]) -> tuple[list[Event], list[str]]:
        """`events` with each one matching a heartbeat marked as a beat (in a group of its
        own, never notified), and the heartbeats that firing ones beat."""
        if not self._by_name:
            return list(events), []
        beaten: dict[str, None] = {}
        out = []
        for event in events:
            found = next((h for h in self if h.beaten_by(event.labels)), None)
            if found is None:
                out.append(event)
                continue
            if event.status is Status.FIRING:
                beaten[found.name] = None
            out.append(
                replace(
                    event,
                    group_key=f"{BEAT_GROUP_PREFIX}{found.name}/{event.group_key}",
                    details={**event.details, BEAT_DETAIL: found.name},
                )
            )
        return out, list(beaten)


def beat_of(event: Event) -> str | None:
    """The heartbeat an event is a beat of, if it is one."""
    if not event.group_key.startswith(BEAT_GROUP_PREFIX):
        return None
    return event.details.get(BEAT_DETAIL)
