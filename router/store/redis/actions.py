"""The `ActionQueue` protocol on the Redis store; each decision is one Lua script.

Keys (prefix `P`): `P act:<id>` hash (body, attempts, token, done), kept ACTION_KEEP after
it finished so a replayed click is known; `P act:due` zset of unfinished action ids by
when each is due (a claimed one: its lease's end, so a dead holder's is retaken then);
`P ga:<gid>` hash (v, body), what was done to a group, with a TTL of GROUP_ACTIONS_TTL.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from router.model import Action, ActionClaim, GroupActions
from router.store.codec import float_text as _num
from router.store.protocols import ACTION_KEEP, ACTION_LEASE, GROUP_ACTIONS_TTL

ACTION_SCRIPTS: Mapping[str, tuple[str, ...]] = {
    "action_enqueue": (),
    "action_claim": (),
    "action_finish": (),
    "group_actions": (),
}
# An unfinished action lives at most this long (its retries are bounded far below it).
_PENDING_TTL = 7 * 86400


def _gid(receiver: str, group_key: str) -> str:
    return json.dumps([receiver, group_key], separators=(",", ":"))


class RedisActions:
    """Mixed into RedisStore, whose `_run` runs one of its registered scripts."""

    prefix: str
    min_replicas: int

    async def _run(self, name: str, args: Sequence[str | int | float]) -> Any:
        raise NotImplementedError

    async def _run_replicated(self, name: str, args: Sequence[str | int | float]) -> Any:
        raise NotImplementedError

    async def _hget(self, key: str, field: str) -> str | None:
        raise NotImplementedError

    async def _zcard(self, key: str) -> int:
        raise NotImplementedError

    async def enqueue_action(self, action: Action) -> bool:
        args: list[str | int | float] = [
            action.id,
            action.to_json(),
            _num(action.received_at),
            _PENDING_TTL,
        ]
        # A click answered 200 survives the primary's death as a webhook does.
        run = self._run_replicated if self.min_replicas else self._run
        done = await run("action_enqueue", args)
        return bool(int(done))

    async def claim_actions(self, now: float, limit: int) -> list[ActionClaim]:
        flat = await self._run(
            "action_claim", [_num(now), limit, _num(now + ACTION_LEASE), uuid.uuid4().hex]
        )
        return [
            ActionClaim(Action.from_json(flat[i + 1]), int(flat[i + 2]), str(flat[i + 3]))
            for i in range(0, len(flat), 4)
        ]

    async def retry_action(self, claim: ActionClaim, next_attempt_at: float) -> None:
        await self._run(
            "action_finish",
            [claim.action.id, claim.token, "retry", _num(next_attempt_at), 0],
        )

    async def finish_action(self, claim: ActionClaim, now: float) -> None:
        await self._run(
            "action_finish",
            [claim.action.id, claim.token, "done", _num(now), math.ceil(ACTION_KEEP)],
        )

    async def pending_actions(self) -> int:
        return await self._zcard(f"{self.prefix}act:due")

    async def group_actions(self, receiver: str, group_key: str) -> GroupActions | None:
        body = await self._hget(f"{self.prefix}ga:{_gid(receiver, group_key)}", "body")
        return None if body is None else GroupActions.from_json(body)

    async def set_group_actions(self, state: GroupActions) -> GroupActions | None:
        new = GroupActions.from_dict({**state.to_dict(), "version": state.version + 1})
        gid = _gid(state.receiver, state.group_key)
        written = await self._run(
            "group_actions",
            [gid, state.version, new.to_json(), math.ceil(GROUP_ACTIONS_TTL)],
        )
        return new if int(written) else None
