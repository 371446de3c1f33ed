"""A real SMTP server for tests: aiosmtpd on a free loopback port, in its own thread.

    with FakeSMTPServer(username="alice", password="s3cret") as smtp:
        cfg = EmailReceiver.model_validate({"to": ["sre@example.com"],
            "from": "router@example.com", "smarthost": smtp.smarthost,
            "starttls": False, "username": "alice", "password": "s3cret"})
        ... send ...
        mail = smtp.messages[0]          # ReceivedMail
        mail.message["Subject"], mail.text, mail.html, mail.rcpt_tos, mail.auth_user

Scripted failures (each scripted reply is used once, in order, then normal service resumes):
    smtp.script_rcpt("450 4.2.1 Mailbox busy", "450 4.2.1 Mailbox busy")
    smtp.script_data("451 4.3.0 Try again later")
    smtp.script_mail("421 4.3.2 Shutting down")
    smtp.refuse_recipient("gone@example.com", "550 5.1.1 User unknown")   # every time

With `username`/`password` the server offers AUTH PLAIN/LOGIN without TLS (tests only);
`require_auth=True` refuses MAIL FROM from a client that did not authenticate (530).
From async tests, `async with asyncio.timeout(5): await smtp.wait_for_messages(n)` waits
for deliveries made elsewhere (e.g. by the pipeline).
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: the SMTP envelope and the parsed mail."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    auth_user: str | None

    def _part(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None or part.get_content_subtype() != subtype:
            return ""
        content = part.get_content()
        assert isinstance(content, str)
        return content

    @property
    def text(self) -> str:
        """The text/plain part, decoded."""
        return self._part("plain")

    @property
    def html(self) -> str:
        """The text/html part, decoded."""
        return self._part("html")


class _Handler:
    """aiosmtpd handler hooks; run in the server thread."""

    def __init__(self, server: FakeSMTPServer) -> None:
        self._server = server

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        scripted = self._server._next("mail")
        if scripted:
            return scripted
        if self._server.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._server._refusal(address) or self._server._next("rcpt")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        scripted = self._server._next("data")
        if scripted:
            return scripted
        raw = bytes(envelope.original_content or envelope.content or b"")
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        auth_data = session.auth_data
        user = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        self._server._record(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                auth_user=user,
            )
        )
        return "250 Message accepted for delivery"


class FakeSMTPServer:
    """aiosmtpd Controller on 127.0.0.1:<free port>, recording what it accepts."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        require_auth: bool = False,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.username = username
        self.password = password
        self.require_auth = require_auth
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._scripts: dict[str, deque[str]] = {"mail": deque(), "rcpt": deque(), "data": deque()}
        self._refusals: dict[str, str] = {}
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.auth_attempts = 0
        kwargs: dict[str, Any] = {}
        if username is not None:
            # Plain-text AUTH is fine on loopback in tests; auth_required stays False because
            # aiosmtpd warns about AUTH-without-TLS then (the 530 above does that job).
            kwargs.update(auth_require_tls=False, authenticator=self._authenticate)
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="fake-smtp.test",
            ready_timeout=10.0,
            **kwargs,
        )

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeSMTPServer:
        """Start serving (blocks until the server answers)."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        self._controller.stop()

    def __enter__(self) -> FakeSMTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def smarthost(self) -> str:
        """`host:port`, as EmailReceiver.smarthost wants it."""
        return f"{self.host}:{self.port}"

    # Scripting --------------------------------------------------------------------------

    def script_mail(self, *replies: str) -> None:
        """Answer the next MAIL FROM commands with these replies, one each."""
        self._script("mail", replies)

    def script_rcpt(self, *replies: str) -> None:
        """Answer the next RCPT TO commands with these replies, one each."""
        self._script("rcpt", replies)

    def script_data(self, *replies: str) -> None:
        """Answer the next DATA (end of message) with these replies, one each."""
        self._script("data", replies)

    def refuse_recipient(self, address: str, reply: str = "550 5.1.1 User unknown") -> None:
        """Always answer RCPT TO `address` with `reply`."""
        with self._lock:
            self._refusals[address.lower()] = reply

    def _script(self, command: str, replies: tuple[str, ...]) -> None:
        with self._lock:
            self._scripts[command].extend(replies)

    def _next(self, command: str) -> str | None:
        with self._lock:
            queue = self._scripts[command]
            return queue.popleft() if queue else None

    def _refusal(self, address: str) -> str | None:
        with self._lock:
            return self._refusals.get(address.lower())

    # Recording --------------------------------------------------------------------------

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        with self._lock:
            self.auth_attempts += 1
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.username is not None
            and auth_data.login == self.username.encode()
            and auth_data.password == (self.password or "").encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _record(self, mail: ReceivedMail) -> None:
        # Runs in the server thread; waiters live in the tests' event loop.
        with self._lock:
            self._messages.append(mail)
            waiters, self._waiters = self._waiters, []
        for loop, arrived in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(arrived.set)

    @property
    def messages(self) -> list[ReceivedMail]:
        """What the server accepted so far, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._lock:
            self._messages.clear()

    async def wait_for_messages(self, count: int) -> list[ReceivedMail]:
        """Wait until at least `count` messages arrived; bound it with `asyncio.timeout`."""
        loop = asyncio.get_running_loop()
        while True:
            arrived = asyncio.Event()
            with self._lock:
                if len(self._messages) >= count:
                    return list(self._messages)
                # Registered under the lock that _record takes: no arrival slips between
                # the check and the wait.
                self._waiters.append((loop, arrived))
            await arrived.wait()
