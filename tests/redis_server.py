"""Real Redis for tests: the machine's (127.0.0.1:6379) or a `redis-server` started here.

Tests never skip for want of Redis: when nothing answers on 6379, one `redis-server` is
started on a free port for the whole session (it must be installed; CI installs it).
"""

from __future__ import annotations

import atexit
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import redis

from tests.fakes.smtp import free_port

DEFAULT_URL = "redis://127.0.0.1:6379/0"

_shared: list[RedisServer] = []


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def shared_redis_url() -> str:
    """A Redis every test may use (with its own key prefix)."""
    if _answers(DEFAULT_URL):
        return DEFAULT_URL
    if not _shared:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="redis-tests-")))
        server.start()
        atexit.register(server.stop)
        _shared.append(server)
    return _shared[0].url


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}:"


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under `prefix` (the prefix must hold no glob characters)."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


class RedisServer:
    """A `redis-server` of our own on a free port, with an append-only file fsynced on
    every write, so it can be stopped and started again without losing acknowledged data."""

    def __init__(self, directory: Path, *, password: str = "") -> None:
        self.directory = directory
        self.port = free_port()
        self.password = password
        # Without the password: tests decide how the store gets it.
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart) the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed (apt-get install redis-server)"
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir"]
        argv += [str(self.directory), "--appendonly", "yes", "--appendfsync", "always"]
        argv += ["--save", "", "--daemonize", "no", "--loglevel", "warning"]
        if self.password:
            argv += ["--requirepass", self.password]
        with (self.directory / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        probe = self.url.replace("//", f"//:{self.password}@", 1) if self.password else self.url
        while not _answers(probe):
            assert self.proc.poll() is None, f"redis-server exited: see {self.directory}"
            assert time.monotonic() < deadline, "redis-server did not start within 10 s"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL to crash it) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None
