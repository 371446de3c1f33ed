"""A service whose store cannot be opened at start stays up, refuses what it cannot record,
and opens the store (and starts delivering) by itself once it answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.config.schema import Config
from tests.conftest import Running, running
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from, payload, until
from tests.redis_server import RedisServer


def hook_config(sink: WebhookSink, state: str) -> Config:
    return config_from(
        f"""
state: {{{state}}}
receivers: [{{name: hook, webhook: {{url: '{sink.url("/hook")}'}}}}]
route: {{receiver: hook}}
"""
    )


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as s:
        yield s


async def refuses_until_ready(app: Running) -> str:
    """Check the service is live but not ready and records nothing; the readiness error."""
    assert (await app.get_json("/healthz"))[0] == 200
    status, answer = await app.get_json("/readyz")
    assert status == 503
    assert (await app.post("/webhook/alertmanager", payload("alertmanager_firing.json")))[0] == 503
    assert (await app.get_json("/api/v1/notifications"))[0] == 503
    error: str = answer["error"]
    return error


async def becomes_ready(app: Running) -> None:
    async def ready() -> bool:
        return (await app.get_json("/readyz"))[0] == 200

    await until(ready)


async def test_a_redis_down_at_start_is_waited_for(tmp_path: Path, sink: WebhookSink) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    config = hook_config(sink, f"url: '{redis_server.url}', key_prefix: 'wait:'")
    try:
        async with running(config) as app:
            error = await refuses_until_ready(app)
            assert f"127.0.0.1:{redis_server.port}" in error
            assert not app.state.deliverer.started
            redis_server.start()
            await becomes_ready(app)
            assert app.state.deliverer.started
            body = payload("alertmanager_firing.json")
            assert (await app.post("/webhook/alertmanager", body))[0] == 200
            async with asyncio.timeout(10):
                [request] = await sink.wait_for(1)
    finally:
        redis_server.stop()
    assert len(request.json["alerts"]) == 2


async def test_a_sqlite_file_that_cannot_be_opened_at_start_is_waited_for(
    tmp_path: Path, sink: WebhookSink
) -> None:
    # The database's folder is a file (a volume not mounted yet, say): opening fails.
    folder = tmp_path / "data"
    folder.write_text("not a folder")
    config = hook_config(sink, f"url: 'sqlite:///{folder}/state.db'")
    async with running(config) as app:
        error = await refuses_until_ready(app)
        assert "cannot open" in error and str(folder) in error
        folder.unlink()
        folder.mkdir()
        await becomes_ready(app)
        assert (await app.post("/webhook/alertmanager", payload("alertmanager_firing.json")))[
            0
        ] == 200
        async with asyncio.timeout(10):
            await sink.wait_for(1)

        async def sent() -> bool:
            return [r["state"] for r in await app.records()] == ["sent"]

        await until(sent)
    assert (folder / "state.db").exists()


async def test_a_store_that_answers_at_start_is_ready_at_once(
    tmp_path: Path, sink: WebhookSink
) -> None:
    config = hook_config(sink, f"url: 'sqlite:///{tmp_path}/state.db'")
    async with running(config) as app:
        # Opened before the port was: the first request already finds it ready.
        assert (await app.get_json("/readyz"))[0] == 200
        assert app.state.deliverer.started
