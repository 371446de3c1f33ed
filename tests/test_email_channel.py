"""EmailChannel against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from router.channels.base import DeliveryError
from router.channels.email import EmailChannel
from router.config.schema import EmailReceiver
from router.model import Event, Notification, RouteSettings, Status
from router.notify.digest import build_digest
from router.render.message import Link, LogExcerpt, Message, build_message
from tests.fakes.smtp import FakeSMTPServer, free_port

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PASSWORD = "Tr0ub4dor&3-not-in-errors"


def clock() -> float:
    return (T0 + timedelta(minutes=12)).timestamp()


def event(
    fingerprint: str = "a1",
    status: Status = Status.FIRING,
    *,
    source: str = "alertmanager",
    annotations: dict[str, str] | None = None,
    details: dict[str, str] | None = None,
    **labels: str,
) -> Event:
    base = {
        "alertname": "HighErrorRate",
        "env": "prod",
        "severity": "critical",
        "app": "backend",
        "namespace": "shop",
        "instance": f"pod-{fingerprint}",
    }
    base.update(labels)
    return Event(
        source=source,
        fingerprint=fingerprint,
        group_key='{}:{alertname="HighErrorRate"}',
        status=status,
        labels=base,
        annotations=annotations
        if annotations is not None
        else {"summary": "5xx ratio above 5%", "description": "backend answers 7% 5xx"},
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1) if status is Status.RESOLVED else None,
        generator_url="http://prometheus.example.com/graph?g0.expr=rate",
        external_url="http://alertmanager.example.com",
        details=details or {},
    )


def message(*events: Event, reason: str = "first") -> Message:
    notification = Notification(
        id="n-1",
        route=RouteSettings(
            receiver="email-sre",
            path='routes[0] env="prod"',
            repeat_interval=3600.0,
            send_resolved=True,
        ),
        group_key='{}:{alertname="HighErrorRate"}',
        events=list(events) or [event()],
        created_at=T0,
    )
    return build_message(notification, reason)


def receiver(smarthost: str, **overrides: Any) -> EmailReceiver:
    data: dict[str, Any] = {
        "to": ["sre@example.com", "oncall@example.com"],
        "from": "Alert Router <alert-router@example.com>",
        "smarthost": smarthost,
        # aiosmtpd here has no TLS; starttls: true is tested against that below.
        "starttls": False,
        "timeout": 5,
    }
    data.update(overrides)
    return EmailReceiver.model_validate(data)


@pytest.fixture
def auth_smtp() -> Iterator[FakeSMTPServer]:
    with FakeSMTPServer(username="alice", password=PASSWORD, require_auth=True) as server:
        yield server


@pytest.fixture
async def channel(smtp: FakeSMTPServer) -> AsyncIterator[EmailChannel]:
    chan = EmailChannel("email-sre", receiver(smtp.smarthost), clock=clock)
    yield chan
    await chan.close()


async def expect_failure(chan: EmailChannel, msg: Message | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        await chan.send(msg or message(), {})
    return info.value


async def test_mail_is_multipart_text_and_html_with_subject_from_and_to(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    await channel.send(message(event("a1"), event("a2")), {})

    [mail] = smtp.messages
    assert mail.message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in mail.message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert mail.message["Subject"] == "[FIRING:2] HighErrorRate (backend prod critical)"
    assert mail.message["From"] == "Alert Router <alert-router@example.com>"
    assert mail.message["To"] == "sre@example.com, oncall@example.com"
    assert mail.mail_from == "alert-router@example.com"
    assert mail.rcpt_tos == ("sre@example.com", "oncall@example.com")
    assert mail.message["Message-ID"].endswith("@example.com>")
    assert mail.message["Date"] == "Thu, 26 Nov 2026 10:12:00 +0000"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "FIRING:2" in mail.text and "backend" in mail.text
    assert "5xx ratio above 5%" in mail.html


async def test_body_shows_status_context_links_logs_and_notes(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    msg = message(event("a1"), event("a2", Status.RESOLVED))
    explore = "https://grafana.example.com/explore?schemaVersion=1&panes=%7B%7D"
    first = dataclasses.replace(
        msg.firing[0],
        links=[Link("Grafana Explore", explore)],
        logs=LogExcerpt(query='{app="backend"}', lines=["ERROR upstream timed out"]),
    )
    resolved = dataclasses.replace(msg.resolved[0], logs=LogExcerpt(note="Loki timed out"))
    msg = dataclasses.replace(
        msg,
        firing=[first],
        resolved=[resolved],
        links=[Link("Silence", "http://alertmanager.example.com/#/silences/new?filter=x")],
        notes=["backend was deployed 12m before this alert (9f2c1e7)"],
    )

    await channel.send(msg, {})

    [mail] = smtp.messages
    for body in (mail.text, mail.html):
        assert "FIRING:1" in body
        assert "prod" in body and "critical" in body and "HighErrorRate" in body
        assert "backend" in body and "shop" in body
        assert "5xx ratio above 5%" in body and "backend answers 7% 5xx" in body
        assert "ERROR upstream timed out" in body
        assert "Loki timed out" in body
        assert "backend was deployed 12m before this alert" in body
        assert "http://prometheus.example.com/graph?g0.expr=rate" in body
        assert "2026-11-26 11:00:00 UTC" in body  # the resolved alert's end
    assert explore in mail.text
    assert f'href="{explore.replace("&", "&amp;")}"' in mail.html
    assert "<pre" in mail.html


async def test_script_tag_in_a_label_arrives_escaped_in_html(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    await channel.send(message(event(pod="<script>alert(1)</script>")), {})

    [mail] = smtp.messages
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    # The text part is text: shown as written.
    assert "<script>alert(1)</script>" in mail.text


async def test_crlf_in_a_label_cannot_inject_a_header(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    evil = "backend\r\nBcc: victim@example.org\r\nX-Injected: yes"
    await channel.send(message(event(app=evil, env="prod\nX-Env-Injected: 1")), {})

    [mail] = smtp.messages
    headers = {name.lower() for name in mail.message.keys()}
    assert "bcc" not in headers and "x-injected" not in headers
    assert "x-env-injected" not in headers
    assert "\n" not in mail.message["Subject"] and "\r" not in mail.message["Subject"]
    assert "Bcc: victim@example.org" in mail.message["Subject"]  # shown, harmless
    assert mail.rcpt_tos == ("sre@example.com", "oncall@example.com")


async def test_resolved_mail_replies_in_the_thread_of_the_first_mail(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    first_state = await channel.send(message(event("a1")), {})
    second_state = await channel.send(message(event("a1", Status.RESOLVED)), first_state)

    first, second = smtp.messages
    root = first.message["Message-ID"]
    assert first.message["In-Reply-To"] is None
    assert first_state["thread_id"] == root == first_state["message_id"]
    assert second.message["In-Reply-To"] == root
    assert second.message["References"] == root
    assert second.message["Message-ID"] != root
    assert second.message["Subject"] == "Re: " + first.message["Subject"]
    assert second.text.splitlines()[0] == "[RESOLVED] HighErrorRate (backend prod critical)"
    assert second_state["thread_id"] == root
    assert second_state["message_id"] == second.message["Message-ID"]
    assert second_state["status"] == "resolved"


async def test_references_stay_bounded_however_long_the_thread(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    state = await channel.send(message(event("a1")), {})
    root = state["thread_id"]
    for n in range(2, 6):
        state = await channel.send(message(*(event(f"a{i}") for i in range(n))), state)

    last = smtp.messages[-1]
    assert last.message["References"] == root
    assert last.message["In-Reply-To"] == root
    assert last.message["Subject"] == "Re: [FIRING:1] HighErrorRate (backend prod critical)"


async def test_firing_after_the_group_resolved_starts_a_new_thread(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    state = await channel.send(message(event("a1")), {})
    state = await channel.send(message(event("a1", Status.RESOLVED)), state)
    new_state = await channel.send(message(event("a1")), state)

    third = smtp.messages[2]
    assert third.message["In-Reply-To"] is None
    assert third.message["Subject"] == "[FIRING:1] HighErrorRate (backend prod critical)"
    assert new_state["thread_id"] == third.message["Message-ID"] != state["thread_id"]


async def test_configured_headers_are_added_but_cannot_break_threading(
    smtp: FakeSMTPServer,
) -> None:
    cfg = receiver(
        smtp.smarthost,
        headers={"Reply-To": "sre-team@example.com", "Message-ID": "<mine@x>"},
    )
    chan = EmailChannel("email-sre", cfg, clock=clock)
    state = await chan.send(message(), {})

    [mail] = smtp.messages
    assert mail.message["Reply-To"] == "sre-team@example.com"
    assert mail.message["Message-ID"] == state["message_id"] != "<mine@x>"
    assert len(mail.message.get_all("Message-ID") or []) == 1


async def test_argocd_mail_names_the_trigger_app_and_details(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    argo = event(
        "argo1",
        source="argocd",
        alertname="on-sync-failed",
        project="default",
        annotations={},
        details={"message": "one or more objects failed to apply", "revision": "9f2c1e7"},
    )
    await channel.send(message(argo), {})

    [mail] = smtp.messages
    assert mail.message["Subject"] == "[FIRING:1] on-sync-failed (backend prod critical)"
    for body in (mail.text, mail.html):
        assert "Trigger" in body and "on-sync-failed" in body
        assert "9f2c1e7" in body
        assert "one or more objects failed to apply" in body


async def test_login_with_username_and_password(auth_smtp: FakeSMTPServer) -> None:
    chan = EmailChannel(
        "email-sre",
        receiver(auth_smtp.smarthost, username="alice", password=PASSWORD),
        clock=clock,
    )
    await chan.send(message(), {})

    [mail] = auth_smtp.messages
    assert mail.auth_user == "alice"


async def test_server_requiring_auth_refuses_a_client_without_credentials(
    auth_smtp: FakeSMTPServer,
) -> None:
    chan = EmailChannel("email-sre", receiver(auth_smtp.smarthost), clock=clock)
    error = await expect_failure(chan)
    assert error.reason == "smtp_530"
    assert not error.retryable


async def test_wrong_password_is_not_retryable_and_the_password_is_never_shown(
    auth_smtp: FakeSMTPServer,
) -> None:
    wrong = PASSWORD + "-wrong"
    chan = EmailChannel(
        "email-sre",
        receiver(auth_smtp.smarthost, username="alice", password=wrong),
        clock=clock,
    )
    error = await expect_failure(chan)

    assert error.reason == "smtp_auth"
    assert not error.retryable
    assert auth_smtp.auth_attempts >= 1
    for text in (str(error), repr(error), error.detail, str(error.__cause__)):
        assert wrong not in text and PASSWORD not in text
    assert auth_smtp.messages == []


@pytest.mark.parametrize(
    ("reply", "reason", "retryable"),
    [
        ("451 4.3.0 Temporary local problem", "smtp_451", True),
        ("452 4.3.1 Insufficient system storage", "smtp_452", True),
        ("554 5.6.0 Message rejected as spam", "smtp_554", False),
        ("550 5.7.1 Content refused", "smtp_550", False),
    ],
)
async def test_data_reply_decides_whether_to_retry(
    smtp: FakeSMTPServer, channel: EmailChannel, reply: str, reason: str, retryable: bool
) -> None:
    smtp.script_data(reply)
    error = await expect_failure(channel)
    assert (error.reason, error.retryable) == (reason, retryable)
    assert smtp.messages == []


async def test_450_on_every_recipient_is_retryable(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    smtp.script_rcpt("450 4.2.1 Mailbox busy", "450 4.2.1 Mailbox busy")
    error = await expect_failure(channel)
    assert error.reason == "smtp_450"
    assert error.retryable


async def test_550_on_every_recipient_is_not_retryable(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    smtp.refuse_recipient("sre@example.com", "550 5.1.1 User unknown")
    smtp.refuse_recipient("oncall@example.com", "553 5.1.3 Bad address")
    error = await expect_failure(channel)
    assert error.reason == "smtp_553"
    assert not error.retryable
    assert "sre@example.com" in error.detail


async def test_some_recipients_refused_is_a_success_that_reports_them(
    smtp: FakeSMTPServer, channel: EmailChannel, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.refuse_recipient("oncall@example.com", "550 5.1.1 User unknown")

    state = await channel.send(message(), {})

    [mail] = smtp.messages
    assert mail.rcpt_tos == ("sre@example.com",)
    assert state["refused"] == "oncall@example.com (550)"
    assert "oncall@example.com (550)" in caplog.text


async def test_421_at_mail_from_is_retryable(smtp: FakeSMTPServer, channel: EmailChannel) -> None:
    smtp.script_mail("421 4.3.2 Service shutting down")
    error = await expect_failure(channel)
    assert (error.reason, error.retryable) == ("smtp_421", True)


async def test_closed_port_is_a_retryable_connection_error() -> None:
    chan = EmailChannel("email-sre", receiver(f"127.0.0.1:{free_port()}"), clock=clock)
    error = await expect_failure(chan)
    assert error.reason == "connection"
    assert error.retryable


async def test_server_that_never_greets_times_out_retryably() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # hold the connection open, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        chan = EmailChannel("email-sre", receiver(f"127.0.0.1:{port}", timeout=0.3), clock=clock)
        error = await expect_failure(chan)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert error.reason == "timeout"
    assert error.retryable


async def test_starttls_required_but_not_offered_is_not_retryable(smtp: FakeSMTPServer) -> None:
    chan = EmailChannel("email-sre", receiver(smtp.smarthost, starttls=True), clock=clock)
    error = await expect_failure(chan)
    assert error.reason == "smtp_unsupported"
    assert not error.retryable
    assert "STARTTLS" in error.detail
    assert smtp.messages == []


async def test_broken_template_is_reported_not_retried(
    smtp: FakeSMTPServer, tmp_path: Path
) -> None:
    for name in ("email.subject.j2", "email.txt.j2"):
        (tmp_path / name).write_text("{{ message.title }}\n")
    (tmp_path / "email.html.j2").write_text("{{ message.no_such_field }}")
    chan = EmailChannel("email-sre", receiver(smtp.smarthost), str(tmp_path), clock=clock)

    error = await expect_failure(chan)

    assert error.reason == "template_error"
    assert not error.retryable
    assert "no_such_field" in error.detail
    assert smtp.messages == []


# -- digests and pacing ---------------------------------------------------------------------


class OneSlot:
    def __init__(self) -> None:
        self.taken = 0

    async def next(self) -> None:
        self.taken += 1

    async def hold(self, seconds: float) -> None:
        raise AssertionError("a mail digest is one mail: nothing to hold between posts")


async def test_digest_mail_lists_every_alert_and_starts_its_own_thread(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    messages = [message(event(f"a{i}", pod=f"web-{i}")) for i in range(40)]
    messages.append(message(event("r1", Status.RESOLVED, alertname="DiskFull", pod="db-1")))
    digest = build_digest(messages, destination=channel.destination)
    slots = OneSlot()
    state = await channel.send_digest(digest, slots)

    [mail] = smtp.messages
    assert slots.taken == 1
    assert mail.message["Subject"] == (
        "Digest: 40 alerts firing, 1 resolved to sre@example.com and 1 more"
    )
    assert "In-Reply-To" not in mail.message
    assert state["thread_id"] == mail.message["Message-ID"]
    for part in (mail.text, mail.html):
        assert sorted(re.findall(r"pod=(web-\d+)", part)) == sorted(f"web-{i}" for i in range(40))
        assert "db-1" in part
    assert "--- Resolved (1) ---" in mail.text
    assert "Every alert has: app=backend, env=prod, namespace=shop" in mail.text


async def test_digest_mail_escapes_what_alerts_say(
    smtp: FakeSMTPServer, channel: EmailChannel
) -> None:
    messages = [message(event(f"a{i}", pod=f"<script>{i}</script>")) for i in range(5)]
    await channel.send_digest(build_digest(messages), OneSlot())
    [mail] = smtp.messages
    assert "<script>" not in mail.html and "&lt;script&gt;0&lt;/script&gt;" in mail.html


def test_the_same_recipients_share_one_pace_whichever_receiver_mails_them() -> None:
    one = EmailChannel("a", receiver("mx:25", to=["SRE@example.com", "oncall@example.com"]))
    two = EmailChannel("b", receiver("mx:25", to=["oncall@example.com", "Ops <sre@example.com>"]))
    other = EmailChannel("c", receiver("mx:25", to=["dev@example.com"]))
    assert one.pace_key == two.pace_key != other.pace_key
    assert one.pace_key.startswith("email|") and "example.com" not in one.pace_key
    assert (one.pace.interval, one.pace.digest_threshold) == (10.0, 5)
