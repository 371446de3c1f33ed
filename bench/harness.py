"""What every benchmark needs: a free port, a server process, its peak memory, a Redis."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import redis

# The servers a benchmark starts (`python -m router`, in a temporary folder) run this
# checkout's code, not whichever copy of the package is installed.
ROOT = Path(__file__).resolve().parent.parent
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(cfg: Path, port: int) -> subprocess.Popen[bytes]:
    """`alert-router serve --config cfg` on 127.0.0.1:port; stdout discarded (the log
    receiver's lines), stderr to server.log beside the config."""
    argv = [sys.executable, "-m", "router", "serve", "--config", str(cfg)]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    with open(cfg.parent / "server.log", "wb") as log:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, cwd=cfg.parent)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def redis_server(fsync: str) -> Iterator[str]:
    """A throwaway `redis-server` on a free port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", fsync, "--loglevel", "warning"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)
            yield url
        finally:
            client.close()
            proc.terminate()
            proc.wait(timeout=10)


async def wait_ready(
    http: aiohttp.ClientSession, url: str, proc: Any = None, within: float = 30.0
) -> None:
    """Until `url` answers 200 (`within` seconds at most); exits if `proc` dies meanwhile."""
    async with asyncio.timeout(within):
        while True:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"{url}: the process exited with {proc.returncode}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
