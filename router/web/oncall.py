"""Who is on call, as the API and the console show it, and the overrides admins set there."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from router.model import format_time, parse_time
from router.schedules.rotations import Member, OnCall, Override, Rotation, on_call
from router.store.protocols import OncallOverrides
from router.web.state import AppState

EARLIEST_YEAR, LATEST_YEAR = 1970, 9000
# An override longer than this is a change of rotation, not cover: edit routes.yaml.
MAX_OVERRIDE = 90 * 86400.0


class BadOverride(ValueError):
    """An override (or a time) that cannot be used; the message says what to change."""


def _member(member: Member) -> dict[str, str]:
    return {"name": member.name, "slack": member.slack, "email": member.email}


def _time(at: float) -> str:
    return format_time(datetime.fromtimestamp(at, UTC)) or ""


def override_view(override: Override) -> dict[str, Any]:
    return {
        "id": override.id,
        "rotation": override.rotation,
        "who": override.who,
        "from": _time(override.start),
        "until": _time(override.end),
        "created_by": override.created_by,
        "created_at": _time(override.created_at),
    }


def rotation_view(rotation: Rotation, now: OnCall) -> dict[str, Any]:
    return {
        "name": rotation.name,
        "timezone": rotation.zone.key,
        "rotation": rotation.kind,
        "members": [m.name for m in rotation.members],
        "on_call": _member(now.member),
        "since": _time(now.since),
        "override": now.override.id if now.override is not None else None,
        "next_handoff": {"at": _time(now.until), "to": _member(now.next_member)},
    }


async def overrides_of(state: AppState, at: float) -> list[Override]:
    """Overrides not over at `at` (StoreUnavailable when the store does not answer)."""
    store: OncallOverrides = state.store
    return await store.list_overrides(at)


def oncall_now(
    rotations: Sequence[Rotation], overrides: Sequence[Override], at: float
) -> list[tuple[Rotation, OnCall]]:
    """Each rotation with who is on call at `at`."""
    return [(r, on_call(r, at, overrides)) for r in rotations]


def parse_instant(text: object, field: str) -> float:
    """An RFC 3339 time as Unix seconds; BadOverride naming the field otherwise."""
    if not isinstance(text, str):
        raise BadOverride(f'{field} must be an RFC 3339 time such as "2026-12-24T18:00:00Z"')
    try:
        parsed = parse_time(text.strip())
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise BadOverride(
            f'{field} must be an RFC 3339 time such as "2026-12-24T18:00:00Z", not {text!r}'
        )
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        # Rotations are computed in calendar dates: far ends of the calendar overflow.
        raise BadOverride(f"{field} must be in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return parsed.timestamp()


def new_override(
    state: AppState, rotation: object, who: object, start: float, end: float, user: str
) -> Override:
    """A checked override of the running config's `rotation` (BadOverride saying why not)."""
    rotations = state.runtime.oncall.rotations
    if not isinstance(rotation, str) or rotation not in rotations:
        names = ", ".join(sorted(rotations)) or "none is configured"
        raise BadOverride(f"rotation must be one of the configured rotations ({names})")
    members = [m.name for m in rotations[rotation].members]
    if not isinstance(who, str) or who not in members:
        raise BadOverride(f"who must be a member of {rotation}: {', '.join(members)}")
    now = state.clock()
    if end <= now:
        raise BadOverride("until is in the past: the override would never hold")
    if end <= start:
        raise BadOverride("until must be after from")
    if end - start > MAX_OVERRIDE:
        raise BadOverride("an override lasts at most 90 days: change the rotation instead")
    return Override(uuid.uuid4().hex[:16], rotation, who, start, end, user or "admin", now)
