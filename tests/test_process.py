"""`alert-router serve` as a real process: kill -9 loses nothing, SIGTERM drains."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.smtp import free_port
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import payload
from tests.redis_server import RedisServer


class Server:
    """One `python -m router serve` process on a free port."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "router", "serve", "--config", str(self.config)]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        with (self.config.parent / "server.log").open("ab") as log:
            return subprocess.Popen(
                argv, cwd=self.config.parent, stdout=subprocess.DEVNULL, stderr=log
            )

    async def start(self, *, until: str = "/readyz") -> None:
        """Spawn the process and wait until `until` answers 200."""
        self.proc = self._spawn()
        async with asyncio.timeout(20), aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(self.url + until) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert self.proc.poll() is None, "server exited during startup"
                await asyncio.sleep(0.05)

    def kill(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, within: float) -> int:
        assert self.proc is not None
        proc = self.proc
        return await asyncio.wait_for(asyncio.to_thread(proc.wait), within)

    async def post(self, body: dict[str, Any]) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "/webhook/alertmanager", json=body) as resp,
        ):
            return resp.status

    async def records(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + "/api/v1/notifications") as resp,
        ):
            data: dict[str, Any] = await resp.json()
            return list(data["notifications"])


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "routes.yaml"


@asynccontextmanager
async def server(config: Path) -> AsyncIterator[Server]:
    srv = Server(config, free_port())
    await srv.start()
    try:
        yield srv
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


def write_config(path: Path, target: WebhookSink | str) -> None:
    url = target.url("/hook") if isinstance(target, WebhookSink) else target
    path.write_text(
        f"state: {{url: 'sqlite:///{path.parent}/state.db'}}\n"
        "server: {shutdown_grace: 10s}\n"
        f"receivers: [{{name: hook, webhook: {{url: '{url}', timeout: 30s}}}}]\n"
        "route: {receiver: hook}\n"
    )


async def test_kill_9_mid_delivery_loses_nothing(config: Path) -> None:
    async with WebhookSink() as sink:
        write_config(config, sink)
        sink.script(200, delay=30)  # the first delivery hangs until the process dies
        async with server(config) as first:
            assert await first.post(payload("alertmanager_firing.json")) == 200
            async with asyncio.timeout(10):
                await sink.wait_for(1)
            first.kill(signal.SIGKILL)
            await first.wait(10)
        async with server(config) as second:
            async with asyncio.timeout(15):
                requests = await sink.wait_for(2)
            records = await second.records()
    assert requests[0].json["notificationId"] == requests[1].json["notificationId"]
    assert [r["state"] for r in records] == ["sent"]


async def test_kill_9_right_after_accepting_delivers_on_restart(config: Path) -> None:
    async with WebhookSink() as sink:
        dead_port = free_port()
        # Nothing listens on the receiver's port yet: the first process cannot deliver.
        write_config(config, f"http://127.0.0.1:{dead_port}/h")
        async with server(config) as first:
            assert await first.post(payload("alertmanager_firing.json")) == 200
            first.kill(signal.SIGKILL)
            await first.wait(10)
        write_config(config, sink)
        async with server(config):
            async with asyncio.timeout(20):
                [request] = await sink.wait_for(1)
    assert len(request.json["alerts"]) == 2


async def test_sigterm_finishes_in_flight_delivery_then_exits_0(config: Path) -> None:
    async with WebhookSink() as sink:
        write_config(config, sink)
        sink.script(200, delay=1.0)
        async with server(config) as first:
            assert await first.post(payload("alertmanager_firing.json")) == 200
            async with asyncio.timeout(10):
                await sink.wait_for(1)
            first.kill(signal.SIGTERM)
            assert await first.wait(15) == 0
        async with server(config) as second:
            # Only pending notifications are ever claimed: one recorded as sent by the
            # first process is never sent again.
            records = await second.records()
    assert [r["state"] for r in records] == ["sent"]
    assert len(sink.requests) == 1  # drained, so nothing was sent twice


async def test_sighup_reloads_the_config(config: Path) -> None:
    async with WebhookSink() as sink:
        write_config(config, sink)
        async with server(config) as srv:
            write_config(config, sink.url("/reloaded"))
            srv.kill(signal.SIGHUP)
            async with asyncio.timeout(10):
                while True:
                    body = payload("alertmanager_firing.json")
                    body["groupKey"] = f"probe-{len(sink.requests)}"
                    assert await srv.post(body) == 200
                    got = await sink.wait_for(len(sink.requests) + 1)
                    if got[-1].path == "/reloaded":
                        break


# --- a serve that cannot start says why, in one line -------------------------------------


async def run_router(*argv: str, cwd: Path) -> tuple[int, list[str]]:
    """`python -m router ARGV` to its end: (exit status, stderr lines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router",
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode().splitlines()


def serve_argv(config: Path, port: int) -> list[str]:
    return ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]


LOG = "receivers: [{name: stdout, log: {}}]\n"

REFUSED_CONFIGS = {
    "undefined receiver": LOG + "route: {receiver: nobody}\n",
    "bad matcher": LOG + "route: {receiver: stdout, routes: [{matchers: ['env=~\"(\"']}]}\n",
    "unknown field": LOG + "route: {receiver: stdout, group_wait: 30s}\n",
    "unset variable": LOG + "route: {receiver: stdout}\nstate: {url: '${NOT_SET_ANYWHERE}'}\n",
    "unknown store": LOG + "route: {receiver: stdout}\nstate: {url: 'postgres://db/x'}\n",
    "empty child receiver": LOG + "route: {receiver: stdout, routes: [{receiver: ''}]}\n",
}


async def test_check_and_serve_refuse_the_same_configs_with_the_same_lines(
    tmp_path: Path,
) -> None:
    runs = []
    for i, text in enumerate(REFUSED_CONFIGS.values()):
        path = tmp_path / f"routes-{i}.yaml"
        path.write_text(text)
        runs.append(run_router("check", str(path), cwd=tmp_path))
        runs.append(run_router(*serve_argv(path, free_port()), cwd=tmp_path))
    results = await asyncio.gather(*runs)
    for name, check, serve in zip(REFUSED_CONFIGS, results[::2], results[1::2], strict=True):
        assert check[0] == 1, name
        assert check[1], name
        assert serve == check, name
        assert not any("Traceback" in line for line in serve[1]), name


def one_json_line(lines: list[str]) -> dict[str, Any]:
    [line] = lines
    entry: dict[str, Any] = json.loads(line)
    return entry


async def get(server: Server, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(server.url + path) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_serve_waits_for_a_store_that_is_down_at_start(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")  # its port is chosen; nothing listens yet
    async with WebhookSink() as sink:
        config = tmp_path / "routes.yaml"
        config.write_text(
            f"state: {{url: '{redis_server.url}', key_prefix: 'waiting:'}}\n"
            f"receivers: [{{name: hook, webhook: {{url: '{sink.url('/hook')}'}}}}]\n"
            "route: {receiver: hook}\n"
        )
        srv = Server(config, free_port())
        try:
            await srv.start(until="/healthz")
            status, answer = await get(srv, "/readyz")
            assert status == 503
            assert f"127.0.0.1:{redis_server.port}" in answer["error"]
            assert await srv.post(payload("alertmanager_firing.json")) == 503
            redis_server.start()

            async def ready() -> bool:
                return (await get(srv, "/readyz"))[0] == 200

            # Retried with a backoff capped at 2 s: ready within seconds of Redis answering.
            async with asyncio.timeout(10):
                while True:
                    if await ready():
                        break
                    await asyncio.sleep(0.1)
            assert await srv.post(payload("alertmanager_firing.json")) == 200
            async with asyncio.timeout(10):
                [request] = await sink.wait_for(1)
            assert srv.proc is not None and srv.proc.poll() is None
        finally:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait()
            redis_server.stop()
    assert len(request.json["alerts"]) == 2
    # Said once while waiting, not once per retry; never a traceback.
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    waiting = [line for line in lines if line["msg"] == "state store unavailable"]
    assert len(waiting) == 1
    assert "cannot open the state store yet" in waiting[0]["error"]
    assert "state store open: delivery starts" in [line["msg"] for line in lines]


async def test_serve_exits_1_with_one_line_when_the_state_url_is_unusable(
    tmp_path: Path,
) -> None:
    config = tmp_path / "routes.yaml"
    url = "redis://alert-router:s3cret-pw@127.0.0.1:notaport/0"
    config.write_text(LOG + f"route: {{receiver: stdout}}\nstate: {{url: '{url}'}}\n")
    code, lines = await run_router(*serve_argv(config, free_port()), cwd=tmp_path)
    assert code == 1
    [line] = lines
    assert "Traceback" not in line
    assert "s3cret-pw" not in line
    # Refused as a config problem or at start: either way, one line naming the cause.
    assert "notaport" in line or "state.url" in line


async def test_serve_exits_1_with_one_line_when_the_port_is_taken(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(
        LOG + f"route: {{receiver: stdout}}\nstate: {{url: 'sqlite:///{tmp_path}/s.db'}}\n"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = await run_router(*serve_argv(config, port), cwd=tmp_path)
    entry = one_json_line(lines)
    assert code == 1
    assert (entry["msg"], entry["port"]) == ("cannot start: cannot listen", port)
    assert "in use" in entry["error"]
