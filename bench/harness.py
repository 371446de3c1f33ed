"""What every benchmark needs: a free port, a server process, its peak memory."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

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


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(http: aiohttp.ClientSession, url: str, proc: Any) -> None:
    """Until `url` answers 200 (30 s at most); exits if `proc` dies meanwhile."""
    async with asyncio.timeout(30):
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{url}: the process exited with {proc.returncode}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
