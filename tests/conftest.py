"""Shared fixtures: the service running in-process on a real loopback port."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from router.config.schema import Config
from router.metrics import Metrics
from router.runtime import http_pool
from router.store.protocols import Store
from router.web.app import create_app
from router.web.deadline import start_site
from router.web.state import DEFAULT_TUNING, STATE, AppState, Tuning
from tests.fakes.loki import FakeLoki
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTPServer
from tests.redis_server import delete_prefix, shared_redis_url, unique_prefix

# pytest-timeout fails a test that overruns, but nothing bounds what runs after that: the
# fixtures' teardown and the event loop's shutdown. A hang there once held CI until its own
# limit, with no word of where. Past the test's timeout and this much more, the run ends
# with every thread's stack on the terminal.
WATCHDOG_SLACK = 120.0
_WATCHDOG = pytest.StashKey[float]()
_terminal: list[int] = []


def pytest_configure(config: pytest.Config) -> None:
    # Output capture is paused while plugins are configured: fd 2 is the terminal now.
    _terminal.append(os.dup(sys.__stderr__.fileno() if sys.__stderr__ is not None else 2))


def _arm_watchdog(item: pytest.Item) -> None:
    if _WATCHDOG in item.stash:
        faulthandler.dump_traceback_later(item.stash[_WATCHDOG], exit=True, file=_terminal[0])


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    # The limit as pytest-timeout resolved it (marker, --timeout, ini). Returning None
    # leaves its own timer to be set too.
    item.stash[_WATCHDOG] = float(settings.timeout) + WATCHDOG_SLACK
    _arm_watchdog(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    # Armed again: pytest's own faulthandler plugin disarms it when a test fails.
    _arm_watchdog(item)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    faulthandler.cancel_dump_traceback_later()


@dataclass
class Running:
    url: str
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def state(self) -> AppState:
        return self.app[STATE]

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST JSON (or raw bytes) and return (status, parsed JSON answer)."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes | str) else {"json": body}
        async with self.http.post(self.url + path, headers=hdrs, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as resp:
            return resp.status, await resp.json(content_type=None)

    async def records(self, **query: str) -> list[dict[str, Any]]:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        status, body = await self.get_json(f"/api/v1/notifications?limit=1000&{params}")
        assert status == 200
        records: list[dict[str, Any]] = body["notifications"]
        return records

    async def wait_for_records(
        self, holds: Callable[[list[dict[str, Any]]], bool], within: float = 15.0
    ) -> list[dict[str, Any]]:
        """Poll the records API until `holds(records)` (the worker runs in another task)."""
        async with asyncio.timeout(within):
            while True:  # the records live in the store: there is no event to wait on
                records = await self.records()
                if holds(records):
                    return records
                await asyncio.sleep(0.05)


@asynccontextmanager
async def running(
    config: Config,
    *,
    config_path: Path | None = None,
    clock: Callable[[], float] | None = None,
    tuning: Tuning = DEFAULT_TUNING,
    store: Store | None = None,
) -> AsyncIterator[Running]:
    """Start the app on 127.0.0.1 at a free port; stop it (draining) on exit."""
    kwargs: dict[str, Any] = {"config_path": config_path, "tuning": tuning, "store": store}
    if clock is not None:
        kwargs["clock"] = clock
    app = create_app(config, **kwargs)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    # Listening as `serve` does: every connection under the read deadline.
    listening = await start_site(
        runner, "127.0.0.1", 0, lambda: app[STATE].runtime.config.server.read_timeout
    )
    port = listening.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as http:
        try:
            yield Running(f"http://127.0.0.1:{port}", app, http)
        finally:
            listening.close()
            await runner.cleanup()


@pytest.fixture
async def pool() -> AsyncIterator[aiohttp.ClientSession]:
    """The shared HTTP pool, opened as the service opens it."""
    async with http_pool() as session:
        yield session


@pytest.fixture
async def loki() -> AsyncIterator[FakeLoki]:
    """A fake Loki on a free loopback port."""
    async with FakeLoki() as fake:
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """A fake Slack (Web API and incoming webhooks) on a free loopback port."""
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[FakeSMTPServer]:
    """An aiosmtpd SMTP server on a free loopback port, recording what it receives."""
    with FakeSMTPServer() as server:
        yield server


@pytest.fixture
def metrics() -> Metrics:
    """Collectors on a registry of this test's own."""
    return Metrics(CollectorRegistry())


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis every test may use (the machine's 6379, or one started for the session)."""
    return shared_redis_url()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    key_prefix = unique_prefix()
    yield key_prefix
    delete_prefix(redis_url, key_prefix)


@pytest.fixture
def state_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state.db"
