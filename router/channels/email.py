"""Email delivery: a multipart text + HTML mail per notification, threaded per group.

Threading. The first mail of a group gets a fresh Message-ID and the rendered subject; the
state returned to the pipeline (stored per receiver and group, handed back as `prior`) is

    {"thread_id": "<root Message-ID>", "message_id": "<this mail's Message-ID>",
     "references": "<root Message-ID>", "subject": "<the thread's subject>",
     "status": "firing" | "resolved", "refused": "<recipients the server refused>"}

Later mails of the group set `In-Reply-To` and `References` to the root Message-ID only (so
the header stays short however long the thread gets) and use the subject `Re: <thread
subject>`: Gmail threads only when the subject matches apart from a `Re:` prefix, and every
client that threads by References agrees. The current status is always the first line of
the body. Once a mail says the whole group resolved, the next firing mail starts a new
thread: one thread per incident, not one per group forever.

Pacing. At most one mail per `email.pacing.interval` goes to the same recipients (the
pace key is a hash of the sorted addresses, shared by every receiver and replica mailing
them); a backlog becomes one digest mail listing every alert (`send_digest`), which starts
a thread of its own.

Errors. SMTP replies follow RFC 5321 classes: 4xx (421, 450, 451, 452) and connection
errors and timeouts are retryable; 5xx (550, 553, 554) are not; failed authentication is
a configuration error (`smtp_auth`, not retried unless the server said 4xx). When the
server refuses only some recipients the mail was still delivered to the rest: that is a
success (retrying would duplicate the mail for everyone else); the refused recipients are
logged as a warning and reported in the returned state under `refused`.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import jinja2

from router.channels.base import DeliveryError, PaceSettings, SlotGate
from router.config.schema import EmailReceiver
from router.model import Status
from router.render.message import Message
from router.render.templates import oneline, template_env
from router.schedules.directory import OnCallDirectory
from router.secrets import redact

log = logging.getLogger(__name__)

# Subjects longer than this are cut: the header is folded anyway, but nobody reads past it.
MAX_SUBJECT_CHARS = 200

# Headers the channel owns: `headers:` in the config cannot replace them, because threading,
# the MIME structure and the envelope depend on them.
_PROTECTED_HEADERS = frozenset(
    {
        "message-id",
        "in-reply-to",
        "references",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)

_FALLBACK_DOMAIN = "alert-router.invalid"
# `email.pacing` defaults: one mail per 10 s to the same recipients, digests from 5 waiting.
DEFAULT_PACE = PaceSettings(interval=10.0, digest_threshold=5)


def _split_smarthost(smarthost: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) as validated by the config."""
    host, _, port = smarthost.rpartition(":")
    return host.strip("[]"), int(port)


def _domain_of(address: str) -> str:
    _, addr = email.utils.parseaddr(address)
    _, at, domain = addr.rpartition("@")
    domain = oneline(domain).strip("<>[] ")
    return domain if at and domain else _FALLBACK_DOMAIN


def _new_message_id(domain: str) -> str:
    # make_msgid mixes time, pid and randomness: unique across replicas of the router.
    return email.utils.make_msgid(domain=domain)


class EmailChannel:
    """Sends notifications as mail through one SMTP smarthost."""

    integration = "email"

    def __init__(
        self,
        name: str,
        cfg: EmailReceiver,
        templates_dir: str = "",
        *,
        clock: Callable[[], float] = time.time,
        pace: PaceSettings = DEFAULT_PACE,
        oncall: OnCallDirectory | None = None,
    ) -> None:
        self.name = name
        self.pace = pace
        self.oncall = oncall
        self._cfg = cfg
        self._env = template_env(templates_dir)
        self._clock = clock
        self._host, self._port = _split_smarthost(cfg.smarthost)
        self._sender = email.utils.parseaddr(cfg.from_)[1] or cfg.from_
        self._domain = _domain_of(cfg.from_)

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """Render and send one mail; returns the thread state to pass back as `prior`."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        to = await self._recipients()
        try:
            mail, state = self._build(message, prior, now, to)
        except (ValueError, TypeError) as exc:
            # The email package refusing a header or address built from the config.
            raise DeliveryError(
                "invalid_message", oneline(f"{type(exc).__name__}: {exc}", 300), retryable=False
            ) from exc
        refused = await self._deliver(mail, to)
        if refused:
            state["refused"] = refused
        return state

    @property
    def pace_key(self) -> str:
        """`email|<16 hex of sha256 over the sorted recipients>`: the same recipients share
        one pace, whichever receiver mails them; addresses stay out of the store's keys."""
        recipients = sorted({email.utils.parseaddr(a)[1].lower() or a for a in self._cfg.to})
        digest = hashlib.sha256("\n".join(recipients).encode()).hexdigest()[:16]
        return f"email|{digest}"

    @property
    def destination(self) -> str:
        """`to sre@example.com` (and how many more recipients), for a digest's subject."""
        first = email.utils.parseaddr(self._cfg.to[0])[1] or self._cfg.to[0]
        more = len(self._cfg.to) - 1
        return f"to {oneline(first, 100)}" + (f" and {more} more" if more else "")

    async def send_digest(self, digest: Message, slots: SlotGate) -> Mapping[str, str]:
        """One mail listing every alert of the digest (a thread of its own)."""
        await slots.next()
        return await self.send(digest, {})

    async def close(self) -> None:
        """Nothing to release: every send opens and closes its own SMTP connection."""

    # Building the mail ------------------------------------------------------------------

    def _render(self, name: str, message: Message, now: datetime) -> str:
        try:
            return self._env.get_template(name).render(message=message, now=now)
        except jinja2.TemplateError as exc:
            # A broken template is ours or the operator's to fix; retrying renders it again.
            raise DeliveryError(
                "template_error", f"{name}: {type(exc).__name__}: {exc}", retryable=False
            ) from exc

    async def _recipients(self) -> list[str]:
        """`to`, each `oncall:<name>` replaced by whoever is on call now."""
        if self.oncall is None or not any(a.strip().startswith("oncall:") for a in self._cfg.to):
            return list(self._cfg.to)
        return await self.oncall.addresses(self._cfg.to)

    def _build(
        self, message: Message, prior: Mapping[str, str], now: datetime, to: list[str]
    ) -> tuple[EmailMessage, dict[str, str]]:
        subject = oneline(self._render("email.subject.j2", message, now), MAX_SUBJECT_CHARS)
        text = self._render("email.txt.j2", message, now)
        html = self._render("email.html.j2", message, now)

        message_id = _new_message_id(self._domain)
        thread_id = prior.get("thread_id", "")
        # A fully resolved thread is finished: a new firing starts a new incident thread.
        thread_closed = prior.get("status") == Status.RESOLVED and message.status is Status.FIRING
        if thread_id and not thread_closed:
            thread_subject = prior.get("subject") or subject
            shown_subject = oneline(f"Re: {thread_subject}", MAX_SUBJECT_CHARS + 4)
        else:
            thread_id = ""
            thread_subject = subject
            shown_subject = subject

        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = self._cfg.from_
        mail["To"] = ", ".join(to)
        mail["Subject"] = shown_subject
        mail["Date"] = email.utils.format_datetime(now)
        mail["Message-ID"] = message_id
        if thread_id:
            mail["In-Reply-To"] = thread_id
            mail["References"] = thread_id
        # RFC 3834: keeps vacation responders from answering alerts.
        mail["Auto-Submitted"] = "auto-generated"
        # For mail filters: values come from labels, so they are forced onto one line.
        mail["X-Alert-Router-Status"] = message.status.value
        if message.env:
            mail["X-Alert-Router-Env"] = oneline(message.env, 100)
        if message.severity:
            mail["X-Alert-Router-Severity"] = oneline(message.severity, 100)
        for header, value in self._cfg.headers.items():
            if header.lower() in _PROTECTED_HEADERS:
                continue
            del mail[header]
            mail[header] = oneline(value)
        # quoted-printable: 7-bit safe for servers without 8BITMIME, and no line in the
        # HTML part can exceed SMTP's 998-octet limit.
        mail.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
        mail.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")

        state = {
            "thread_id": thread_id or message_id,
            "message_id": message_id,
            "references": thread_id or message_id,
            "subject": thread_subject,
            "status": message.status.value,
        }
        return mail, state

    # Sending ----------------------------------------------------------------------------

    async def _deliver(self, mail: EmailMessage, to: list[str]) -> str:
        """Send `mail`; returns the refused recipients (`addr (code)`, ...) when some were."""
        cfg = self._cfg
        password = cfg.password.get_secret_value()
        try:
            errors, _ = await aiosmtplib.send(
                mail,
                sender=self._sender,
                recipients=to,
                hostname=self._host,
                port=self._port,
                username=cfg.username or None,
                password=password if cfg.username else None,
                use_tls=cfg.tls,
                # true requires STARTTLS, false never tries it (None would be opportunistic).
                start_tls=False if cfg.tls else cfg.starttls,
                timeout=cfg.timeout,
            )
        except Exception as exc:  # every failure becomes a DeliveryError, classified below
            raise self._classify(exc, password) from exc
        if not errors:
            return ""
        refused = ", ".join(f"{addr} ({resp.code})" for addr, resp in sorted(errors.items()))
        log.warning(
            "receiver %s: server %s refused some recipients, delivered to the others: %s",
            self.name,
            self._host,
            refused,
        )
        return refused

    def _classify(self, exc: Exception, password: str) -> DeliveryError:
        """Map an aiosmtplib (or socket) failure to a DeliveryError without secrets."""

        def clean(text: str) -> str:
            return oneline(redact(text, [password]), 300)

        where = f"{self._host}:{self._port}"
        if isinstance(exc, DeliveryError):
            return exc
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = [r.code for r in exc.recipients]
            transient = bool(codes) and all(code // 100 == 4 for code in codes)
            worst = max(codes, default=0)
            refused = ", ".join(f"{r.recipient} ({r.code})" for r in exc.recipients)
            return DeliveryError(
                f"smtp_{worst}",
                clean(f"{where} refused all recipients: {refused}"),
                retryable=transient,
            )
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return DeliveryError(
                "smtp_auth",
                clean(
                    f"{where} rejected the credentials of {self._cfg.username!r}: "
                    f"{exc.code} {exc.message}"
                ),
                retryable=exc.code // 100 == 4,
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            # Includes refused greetings (421/554), MAIL FROM, DATA and HELO replies.
            detail = clean(f"{where}: {exc.code} {exc.message}")
            if exc.code // 100 == 5:
                return DeliveryError(f"smtp_{exc.code}", detail, retryable=False)
            if exc.code // 100 == 4:
                return DeliveryError(f"smtp_{exc.code}", detail, retryable=True)
            return DeliveryError("smtp_error", detail, retryable=True)
        if isinstance(exc, TimeoutError):  # SMTPTimeoutError and its connect/read subclasses
            return DeliveryError("timeout", clean(f"{where}: {exc}"), retryable=True)
        if isinstance(exc, ConnectionError | OSError):
            # SMTPConnectError and SMTPServerDisconnected are ConnectionErrors.
            return DeliveryError("connection", clean(f"{where}: {exc}"), retryable=True)
        if isinstance(exc, aiosmtplib.SMTPException):
            # No reply code: the server lacks what the config requires (STARTTLS, AUTH,
            # SMTPUTF8). Retrying meets the same server.
            return DeliveryError("smtp_unsupported", clean(f"{where}: {exc}"), retryable=False)
        if isinstance(exc, ValueError):
            # email/aiosmtplib refusing what we built (e.g. a malformed address in the config).
            return DeliveryError("invalid_message", clean(str(exc)), retryable=False)
        return DeliveryError("smtp_error", clean(f"{where}: {type(exc).__name__}"), retryable=True)
