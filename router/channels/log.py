"""Log delivery: one JSON object per line per notification, on stdout by default.

Each line is the webhook payload (router/render/payload.py) plus `"type": "notification"`
and `"time"` (RFC 3339, when the line was written), so a log pipeline (Loki, kubectl logs,
jq) can pick notifications out of the service's other output. The line is pure ASCII
(`ensure_ascii`): a label holding a newline, U+2028 or any other line separator is escaped
and can never split the record.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TextIO

from pydantic_core import to_json

from router.channels.base import DeliveryError
from router.config.schema import LogReceiver
from router.model import format_time
from router.render.message import Message
from router.render.payload import notification_payload


def _payload_json(message: Message) -> str:
    """The payload as one line of pure-ASCII JSON."""
    payload = notification_payload(message)
    # pydantic's encoder (Rust) is several times faster than json's; a payload with any
    # non-ASCII character is encoded by json, which escapes it (ensure_ascii).
    encoded = to_json(payload, fallback=str)
    if encoded.isascii():
        return encoded.decode("ascii")
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=str)


def _line(time_text: str, payload: str) -> str:
    # `type` and `time` first, then the payload's fields (an object, never empty).
    return f'{{"type":"notification","time":"{time_text}",{payload[1:]}\n'


class LogChannel:
    """Writes each notification as a JSON line to a stream (stdout unless given one).

    The lines of every send in one turn of the event loop are written and flushed together
    (one system call, not one per line); each send returns once its line is flushed."""

    integration = "log"

    def __init__(
        self,
        name: str,
        cfg: LogReceiver,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._cfg = cfg
        self._stream = stream
        self._clock = clock
        # Encoded payloads waiting for the flush, and the future their sends wait on.
        self._queued: list[str] = []
        self._flushed: asyncio.Future[None] | None = None

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """Write and flush one line; only a failing stream raises (retryable DeliveryError)."""
        line = _payload_json(message)
        loop = asyncio.get_running_loop()
        flushed = self._flushed
        if flushed is None or flushed.get_loop() is not loop:
            # None queued yet; or queued on a loop that stopped before its flush ran, whose
            # lines go out with these.
            flushed = self._flushed = loop.create_future()
            loop.call_soon(self._flush)
        self._queued.append(line)
        try:
            await asyncio.shield(flushed)
        except DeliveryError as exc:
            # Each send raises an error of its own (one shared would gather tracebacks).
            raise DeliveryError(exc.reason, exc.detail, retryable=True) from None
        return {}

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        flushed, self._flushed = self._flushed, None
        assert flushed is not None
        # One timestamp for the lines written together: when they were written.
        stamp = format_time(datetime.fromtimestamp(self._clock(), UTC)) or ""
        # sys.stdout is looked up now, not at construction, so a replaced stdout (tests,
        # a logging shim) receives the lines.
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            # One write call: nothing else in this event loop can interleave.
            stream.write("".join([_line(stamp, payload) for payload in queued]))
            stream.flush()
        except (OSError, ValueError) as exc:
            # A closed or broken stream (ValueError: I/O on closed file; EPIPE).
            flushed.set_exception(
                DeliveryError("write_failed", f"{type(exc).__name__}: {exc}", retryable=True)
            )
            # Retrieved by each waiting send; marked so that none waiting is no warning.
            flushed.exception()
        else:
            flushed.set_result(None)

    async def close(self) -> None:
        """Nothing to release: the stream belongs to whoever passed it (or to the process)."""
