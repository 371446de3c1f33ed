"""`oncall:<name>` resolved when a message goes out: the rotation's person at that instant,
overrides from the shared store included."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from router.schedules.rotations import ONCALL_REFERENCE, OnCall, Override, Rotation, on_call

log = logging.getLogger(__name__)


class OverrideSource(Protocol):
    """Where overrides are kept (the state store's OncallOverrides)."""

    async def list_overrides(self, since: float) -> list[Override]: ...


class OnCallDirectory:
    """The configured rotations and the store's overrides, asked at send time."""

    def __init__(
        self,
        rotations: Mapping[str, Rotation],
        overrides: OverrideSource | None = None,
        clock: Callable[[], float] = time.time,
        counted: Callable[[str, str], None] | None = None,
    ) -> None:
        self.rotations = dict(rotations)
        self.overrides = overrides
        self.clock = clock
        # Told (rotation, by) per resolution: by `rotation`, `override`, or
        # `rotation_store_down` (the store did not answer: the rotation alone decided).
        self.counted = counted

    async def current_overrides(self, at: float) -> list[Override] | None:
        """Overrides not over at `at`; None (logged) when the store does not answer: the
        rotation alone still names someone, which beats paging nobody."""
        if self.overrides is None:
            return []
        try:
            return await self.overrides.list_overrides(at)
        except Exception as exc:  # noqa: BLE001 - a store outage must not stop a page
            log.warning(
                "on-call overrides unavailable, using the rotation", extra={"error": str(exc)}
            )
            return None

    async def who(self, name: str, at: float | None = None) -> OnCall | None:
        """Who is on call for rotation `name` at `at` (default now); None if unknown."""
        rotation = self.rotations.get(name)
        if rotation is None:
            return None
        when = self.clock() if at is None else at
        overrides = await self.current_overrides(when)
        now = on_call(rotation, when, overrides or [])
        if self.counted is not None:
            by = "rotation_store_down" if overrides is None else "rotation"
            self.counted(name, "override" if now.override is not None else by)
        return now

    async def mention(self, text: str) -> str:
        """`text` with each `oncall:<name>` replaced by the on-call person's `<@USERID>`."""
        names = set(ONCALL_REFERENCE.findall(text))
        if not names:
            return text
        found = {name: await self.who(name) for name in names}

        def replace(match: re.Match[str]) -> str:
            now = found.get(match.group(1))
            if now is None or not now.member.slack:
                return match.group(0)
            return f"<@{now.member.slack}>"

        return ONCALL_REFERENCE.sub(replace, text)

    async def addresses(self, to: Sequence[str]) -> list[str]:
        """`to` with each `oncall:<name>` entry replaced by the on-call person's address
        (an address named twice is kept once)."""
        out: list[str] = []
        for entry in to:
            text = entry.strip()
            if text.startswith("oncall:"):
                now = await self.who(text[7:])
                text = now.member.email if now is not None and now.member.email else ""
            if text and text not in out:
                out.append(text)
        return out
