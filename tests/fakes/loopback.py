"""The lifecycle every fake peer shares: a real aiohttp server on 127.0.0.1, free port."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    """Subclasses add their routes in `build_app`; `start`/`stop` or `async with`."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        # Set while stopping, so handlers sleeping in a scripted delay answer at once.
        self._closing = asyncio.Event()

    def build_app(self) -> web.Application:
        """The application to serve; subclasses mount their handlers."""
        raise NotImplementedError

    def runner_options(self) -> dict[str, object]:
        # A stop with a request still sleeping in a delay must not wait for it.
        return {"access_log": None, "shutdown_timeout": 0.5, "handle_signals": False}

    async def start(self) -> Self:
        """Listen on 127.0.0.1 at a port the OS picks; returns self."""
        self._runner = web.AppRunner(self.build_app(), **self.runner_options())  # type: ignore[arg-type]
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._closing.clear()
        return self

    async def stop(self) -> None:
        """Stop listening; requests still waiting in a delay are answered at once."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, no trailing slash."""
        if not self._port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"
