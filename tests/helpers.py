"""Small builders shared by tests (configs from YAML text, payload files)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router.config.loader import parse_config
from router.config.schema import Config

DATA = Path(__file__).parent / "data"


async def until(check: Callable[[], Any], within: float = 15.0) -> Any:
    """Poll `check` (sync or async) until it gives something truthy, and return that; fail
    after `within` seconds. For state that lives in a store or a fake, with no event to
    wait on."""
    async with asyncio.timeout(within):
        while True:
            got = check()
            value = await got if inspect.isawaitable(got) else got
            if value:
                return value
            await asyncio.sleep(0.02)


def config_from(text: str) -> Config:
    """A Config from inline YAML, validated exactly like a routes.yaml (an empty environment:
    a `${VAR}` without default is an error)."""
    return parse_config(text, "test.yaml", env={})


def payload(name: str) -> dict[str, Any]:
    """A sample webhook body from tests/data."""
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


MINIMAL = """
receivers:
  - name: stdout
    log: {}
route:
  receiver: stdout
"""
