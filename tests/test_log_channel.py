"""LogChannel: one JSON line per notification."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

import pytest

from router.channels.base import DeliveryError
from router.channels.log import LogChannel
from router.config.schema import LogReceiver
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import Message, build_message
from router.render.payload import notification_payload

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def clock() -> float:
    return T0.timestamp()


def message(notification_id: str = "n-1", **labels: str) -> Message:
    event = Event(
        source="alertmanager",
        fingerprint="f1",
        group_key="g",
        status=Status.FIRING,
        labels={"alertname": "DiskFull", "env": "prod", **labels},
        annotations={"summary": "disk full"},
        starts_at=T0,
    )
    notification = Notification(
        id=notification_id,
        route=RouteSettings(receiver="stdout", path="/", repeat_interval=60, send_resolved=True),
        group_key="g",
        events=[event],
        created_at=T0,
    )
    return build_message(notification, "first_notification")


async def test_writes_exactly_one_parseable_json_line_per_notification() -> None:
    stream = io.StringIO()
    chan = LogChannel("stdout", LogReceiver(), stream, clock=clock)

    await chan.send(message("n-1"), {})
    await chan.send(message("n-2"), {})
    await chan.close()

    lines = stream.getvalue().split("\n")
    assert lines[-1] == ""  # every record ends with a newline
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["notificationId"] for r in records] == ["n-1", "n-2"]
    assert records[0]["type"] == "notification"
    assert records[0]["time"] == "2026-11-26T10:00:00Z"


async def test_the_record_is_the_webhook_payload_plus_type_and_time() -> None:
    stream = io.StringIO()
    msg = message()
    await LogChannel("stdout", LogReceiver(), stream, clock=clock).send(msg, {})

    record = json.loads(stream.getvalue())
    assert record.pop("type") == "notification"
    assert record.pop("time") == "2026-11-26T10:00:00Z"
    assert record == notification_payload(msg)


async def test_line_separators_in_labels_cannot_split_the_record() -> None:
    stream = io.StringIO()
    nasty = 'a\nb\r\nc\u2028d\u2029e\x85f\x00g "quoted" ünï'
    await LogChannel("stdout", LogReceiver(), stream, clock=clock).send(message(pod=nasty), {})

    out = stream.getvalue()
    assert out.isascii()
    assert len(out.splitlines()) == 1
    assert json.loads(out)["alerts"][0]["labels"]["pod"] == nasty


async def test_defaults_to_stdout_looked_up_at_send_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    chan = LogChannel("stdout", LogReceiver(), clock=clock)  # created before capture matters
    await chan.send(message("n-9"), {})

    out = capsys.readouterr().out
    assert json.loads(out)["notificationId"] == "n-9"


async def test_a_closed_stream_is_a_retryable_delivery_error() -> None:
    stream = io.StringIO()
    stream.close()
    with pytest.raises(DeliveryError) as info:
        await LogChannel("stdout", LogReceiver(), stream, clock=clock).send(message(), {})
    assert info.value.reason == "write_failed"
    assert info.value.retryable


async def test_sends_in_one_turn_are_written_together_each_on_its_own_line() -> None:
    stream = io.StringIO()
    chan = LogChannel("stdout", LogReceiver(), stream, clock=clock)

    await asyncio.gather(*(chan.send(message(f"n-{i}"), {}) for i in range(5)))

    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["notificationId"] for line in lines] == [f"n-{i}" for i in range(5)]


class FullDiskOnce(io.StringIO):
    """A stream whose first write fails as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            self.failed = True
            raise OSError(28, "No space left on device")
        return super().write(text)


async def test_every_send_of_a_failed_write_fails_and_the_next_write_works() -> None:
    stream = FullDiskOnce()
    chan = LogChannel("stdout", LogReceiver(), stream, clock=clock)

    outcomes = await asyncio.gather(
        *(chan.send(message(f"n-{i}"), {}) for i in range(3)), return_exceptions=True
    )

    assert all(isinstance(o, DeliveryError) and o.retryable for o in outcomes)
    await chan.send(message("n-9"), {})
    assert json.loads(stream.getvalue())["notificationId"] == "n-9"
