"""`alert-router oncall [NAME] [--at]`: who is on call per rotation, and the next handoff."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from router.config.schema import Config
from router.schedules.rotations import Override, Rotation, on_call
from router.store import open_store
from router.store.protocols import StoreUnavailable
from router.store.url import parse_state_url

# A store that does not answer within this is reported and the rotation shown without it.
STORE_WAIT = 5.0


def read_overrides(config: Config, at: float) -> tuple[list[Override], str]:
    """The configured store's overrides not over at `at`, and a note when it could not be
    read ("" when it was, or when a SQLite file does not exist yet: no override then)."""
    url = parse_state_url(config.state.url)
    if not url.is_redis and not Path(url.target).exists():
        return [], ""
    return asyncio.run(_read(config, at))


async def _read(config: Config, at: float) -> tuple[list[Override], str]:
    store = open_store(config.state)
    try:
        async with asyncio.timeout(STORE_WAIT):
            await store.open()
            return await store.list_overrides(at), ""
    except (StoreUnavailable, TimeoutError) as exc:
        return [], f"overrides not read, the rotation alone is shown: {exc or 'no answer'}"
    finally:
        try:
            await store.close()
        except StoreUnavailable:
            pass


def _when(at: float, rotation: Rotation) -> str:
    local = datetime.fromtimestamp(at, rotation.zone)
    utc = datetime.fromtimestamp(at, UTC)
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({utc:%Y-%m-%dT%H:%M}Z)"


def describe(rotations: Sequence[Rotation], overrides: Sequence[Override], at: float) -> list[str]:
    """Per rotation: who is on call at `at` (and why, for an override), the next handoff."""
    lines: list[str] = []
    for rotation in rotations:
        now = on_call(rotation, at, overrides)
        member = now.member
        reach = ", ".join(x for x in (member.slack and f"slack {member.slack}", member.email) if x)
        lines.append(f"{rotation.name} ({rotation.zone.key}, {rotation.kind})")
        lines.append(f"  on call: {member.name}" + (f" ({reach})" if reach else ""))
        if now.override is not None:
            by = f" set by {now.override.created_by}" if now.override.created_by else ""
            lines.append(f"    by override {now.override.id}{by}")
        lines.append(f"  since: {_when(now.since, rotation)}")
        lines.append(f"  next handoff: {_when(now.until, rotation)} to {now.next_member.name}")
    return lines
