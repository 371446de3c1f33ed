"""Log delivery: one JSON object per line per notification, on stdout by default.

Each line is the webhook payload (router/render/payload.py) plus `"type": "notification"`
and `"time"` (RFC 3339, when the line was written), so a log pipeline (Loki, kubectl logs,
jq) can pick notifications out of the service's other output. The line is pure ASCII
(`ensure_ascii`): a label holding a newline, U+2028 or any other line separator is escaped
and can never split the record.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from router.channels.base import DeliveryError
from router.config.schema import LogReceiver
from router.model import format_time
from router.render.message import Message
from router.render.payload import notification_payload


def notification_line(message: Message, now: datetime) -> str:
    """The log record for `message` as one JSON line, newline included."""
    record: dict[str, Any] = {"type": "notification", "time": format_time(now)}
    record.update(notification_payload(message))
    # default=str: whatever a future field holds, the record is still written.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str) + "\n"


class LogChannel:
    """Writes each notification as a JSON line to a stream (stdout unless given one)."""

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

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """Write and flush one line; only a failing stream raises (retryable DeliveryError)."""
        line = notification_line(message, datetime.fromtimestamp(self._clock(), UTC))
        # sys.stdout is looked up now, not at construction, so a replaced stdout (tests,
        # a logging shim) receives the line.
        stream = self._stream if self._stream is not None else sys.stdout
        try:
            # One write call per line: nothing else in this event loop can interleave.
            stream.write(line)
            stream.flush()
        except (OSError, ValueError) as exc:
            # A closed or broken stream (ValueError: I/O on closed file; EPIPE).
            raise DeliveryError(
                "write_failed", f"{type(exc).__name__}: {exc}", retryable=True
            ) from exc
        return {}

    async def close(self) -> None:
        """Nothing to release: the stream belongs to whoever passed it (or to the process)."""
