"""The notification-log entries the SQLite store keeps in memory, least recently used first.

Bounded by the alerts the entries name, not by how many there are: an entry holds its
group's fingerprints, so a cap on entries alone lets a stream of new groups of hundreds of
alerts fill hundreds of megabytes before it binds.
"""

from __future__ import annotations

from collections import OrderedDict

from router.model import NflogEntry

LogKey = tuple[str, str]


def _weight(entry: NflogEntry | None) -> int:
    # A cached miss (None) or an entry of no alerts still costs its key.
    if entry is None:
        return 1
    return 1 + len(entry.firing) + len(entry.resolved)


class LogCache:
    """(receiver, group key) -> the entry, or None for a known miss; at most `max_alerts`
    fingerprints in all."""

    def __init__(self, max_alerts: int) -> None:
        self._entries: OrderedDict[LogKey, NflogEntry | None] = OrderedDict()
        self._weight = 0
        self._max = max(max_alerts, 1)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def weight(self) -> int:
        """The fingerprints (plus one per entry) held now."""
        return self._weight

    def lookup(self, key: LogKey, now: float) -> tuple[bool, NflogEntry | None]:
        """(known, the live entry): known is False when only the database can tell."""
        if key not in self._entries:
            return False, None
        entry = self._entries[key]
        if entry is not None and entry.expires_at <= now:
            # An expired entry says no more than a miss: keep the miss, not its alerts.
            self.put(key, None)
            return True, None
        self._entries.move_to_end(key)
        return True, entry

    def put(self, key: LogKey, entry: NflogEntry | None) -> None:
        """Remember what the database holds for `key`, evicting the least recently used."""
        if key in self._entries:
            self._weight -= _weight(self._entries.pop(key))
        self._entries[key] = entry
        self._weight += _weight(entry)
        while self._weight > self._max and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._weight -= _weight(dropped)
