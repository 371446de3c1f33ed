"""Read deadlines: a request's headers and body must arrive within `server.read_timeout`.

aiohttp waits for headers as long as a client keeps trickling them. `ReadDeadline` wraps
each connection's protocol and closes a connection whose request has not reached a
handler within the deadline (counted from the request's first byte); a handler reading a
body does so with `read_body`, which stops at the same deadline. An idle keep-alive
connection is aiohttp's business (its keepalive_timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

# The loop time by which the request's body must have arrived (set by the middleware).
READ_BY = web.RequestKey("read_by", float)


class ReadTimeout(Exception):
    """The body did not arrive within the read deadline."""


class ReadDeadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed when a request's headers do not
    arrive in time."""

    def __init__(self, inner: asyncio.Protocol, timeout: float) -> None:
        self.inner = inner
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started: float | None = None
        self._in_handler = False

    # ---- what the handler side tells it ------------------------------------------------

    def reached_handler(self) -> float:
        """A request's headers arrived: the header deadline is met. Returns the loop time
        by which its body must have arrived."""
        self._in_handler = True
        self._disarm()
        loop = asyncio.get_running_loop()
        started = self._started if self._started is not None else loop.time()
        self._started = None
        return started + self.timeout

    def left_handler(self) -> None:
        self._in_handler = False

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _BY_TRANSPORT[transport] = self
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._started is None and not self._in_handler:
            # The first byte of a request: its headers are due within the deadline.
            loop = asyncio.get_running_loop()
            self._started = loop.time()
            self._timer = loop.call_later(self.timeout, self._expired)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is not None:
            _BY_TRANSPORT.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if not self._in_handler and self.transport is not None:
            # Nothing has been answered on it: closing tells the client what it needs.
            self.transport.close()


_BY_TRANSPORT: dict[asyncio.BaseTransport, ReadDeadline] = {}


def deadline_middleware(default_timeout: Callable[[], float]) -> Any:
    """Marks each request's body deadline (`READ_BY`), and tells its connection's guard
    that the headers arrived."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        guard = _BY_TRANSPORT.get(request.transport) if request.transport else None
        if guard is None:
            # Served without the guard (a test client): the deadline starts now.
            request[READ_BY] = asyncio.get_running_loop().time() + default_timeout()
            return await handler(request)
        request[READ_BY] = guard.reached_handler()
        try:
            return await handler(request)
        finally:
            guard.left_handler()

    return middleware


async def read_body(request: web.Request, read: Awaitable[T]) -> T:
    """`read` (of the request's body), stopped at the request's read deadline."""
    deadline = request.get(READ_BY)
    if deadline is None:
        return await read
    try:
        async with asyncio.timeout_at(deadline):
            return await read
    except TimeoutError:
        raise ReadTimeout("the body did not arrive within server.read_timeout") from None


async def start_site(
    runner: web.AppRunner, host: str, port: int, read_timeout: Callable[[], float]
) -> asyncio.Server:
    """Listen on host:port with every connection under a read deadline."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    loop = asyncio.get_running_loop()

    def protocol() -> asyncio.Protocol:
        return ReadDeadline(server(), read_timeout())

    return await loop.create_server(protocol, host, port, reuse_address=True)
