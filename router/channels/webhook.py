"""Webhook delivery: POST the notification as JSON (schema in router/render/payload.py).

Request: `POST <url>` with `Content-Type: application/json; charset=utf-8`, `User-Agent:
alert-router/<version>`, `Idempotency-Key: <notificationId>` (the same on every retry of a
notification, so a receiver can drop repeats), the configured `headers`, and
`Authorization: Bearer <bearer_token>` when one is set (it replaces an `Authorization` from
`headers`). Credentials in the URL (`https://user:pass@host/...`) are sent as basic auth.

Outcome, as a well-behaved receiver means it (the sender side of Alertmanager's rules):
- 2xx: delivered.
- 5xx, 408, connection errors, timeouts: retryable (`http_503`, `connection`, `timeout`);
  a `Retry-After` header is passed on as `retry_after`.
- 429: retryable, honouring `Retry-After` (seconds or an HTTP date).
- 3xx: not followed (aiohttp would turn the POST into a body-less GET, and a redirect to
  another host would receive the payload): not retryable, fix the URL.
- other 4xx: not retryable (`http_404`, ...): the receiver has said it will never accept it.

The URL may carry secrets (user info, a token in the path or query): errors name only
`scheme://host[:port]`, and response excerpts are scrubbed of the URL's parts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from urllib.parse import urlsplit

import aiohttp

from router.channels.base import DeliveryError, parse_retry_after
from router.config.schema import WebhookReceiver
from router.render.message import Message
from router.render.payload import notification_payload
from router.render.templates import oneline
from router.render.text import format_duration
from router.secrets import redact, url_secrets

# How much of an error response's body is kept for the error detail.
_BODY_EXCERPT_BYTES = 512


def _version() -> str:
    try:
        return metadata.version("alert-router")
    except metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"alert-router/{_version()}"


def safe_origin(url: str) -> str:
    """`scheme://host[:port]` of `url`, without user info, path or query (all may be secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or 'http'}://{host}" + (f":{port}" if port else "")


class WebhookChannel:
    """POSTs each notification as JSON to one URL."""

    integration = "webhook"

    def __init__(
        self,
        name: str,
        cfg: WebhookReceiver,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._cfg = cfg
        self._clock = clock
        self._url = cfg.url.get_secret_value()
        self._origin = safe_origin(self._url)
        secrets = url_secrets(self._url)
        if cfg.bearer_token is not None and cfg.bearer_token.get_secret_value():
            secrets.append(cfg.bearer_token.get_secret_value())
        self._secrets = secrets
        self._session: aiohttp.ClientSession | None = None

    def _headers(self, message: Message) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": message.notification_id,
        }
        headers.update(self._cfg.headers)
        if self._cfg.bearer_token is not None:
            # The dedicated setting wins over a hand-written header of the same name.
            for key in [k for k in headers if k.lower() == "authorization"]:
                del headers[key]
            headers["Authorization"] = f"Bearer {self._cfg.bearer_token.get_secret_value()}"
        return headers

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop (aiohttp binds a session to it).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._cfg.timeout)
            )
        return self._session

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """POST `message`; returns `{"status": "<http status>"}`. Raises DeliveryError."""
        body = json.dumps(
            notification_payload(message), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        headers = self._headers(message)
        has_auth_header = any(k.lower() == "authorization" for k in headers)
        if has_auth_header and ("@" in (urlsplit(self._url).netloc or "")):
            raise DeliveryError(
                "invalid_config",
                f"{self._origin}: the url carries credentials and an Authorization header is "
                "also set; use one of them",
                retryable=False,
            )
        session = self._get_session()
        try:
            async with session.post(
                self._url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                status = resp.status
                if 200 <= status < 300:
                    return {"status": str(status)}
                excerpt = await self._excerpt(resp)
                raise self._status_error(status, resp.headers.get("Retry-After"), excerpt)
        except DeliveryError:
            raise
        except TimeoutError as exc:
            # Covers aiohttp's ServerTimeoutError and the total ClientTimeout.
            raise DeliveryError(
                "timeout",
                f"{self._origin}: no answer within {format_duration(self._cfg.timeout)}",
                retryable=True,
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise DeliveryError(
                "invalid_url", f"{self._origin}: the configured url is not valid", retryable=False
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise DeliveryError(
                "connection", self._redact(f"{self._origin}: {reason}"), retryable=True
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Disconnects, payload errors, TLS failures: transport trouble, worth a retry.
            raise DeliveryError(
                "connection", f"{self._origin}: {type(exc).__name__}", retryable=True
            ) from exc

    async def _excerpt(self, resp: aiohttp.ClientResponse) -> str:
        try:
            raw = await resp.content.read(_BODY_EXCERPT_BYTES)
        except (aiohttp.ClientError, OSError, TimeoutError):
            return ""
        return self._redact(oneline(raw.decode("utf-8", errors="replace"), 200))

    def _status_error(self, status: int, retry_after: str | None, excerpt: str) -> DeliveryError:
        detail = f"{self._origin} answered {status}" + (f": {excerpt}" if excerpt else "")
        wait = parse_retry_after(retry_after, self._clock())
        if status == 429 or status == 408 or status >= 500:
            return DeliveryError(f"http_{status}", detail, retryable=True, retry_after=wait)
        if 300 <= status < 400:
            detail += " (redirects are not followed: point the receiver at the final url)"
        return DeliveryError(f"http_{status}", detail, retryable=False)

    async def close(self) -> None:
        """Close the HTTP session (and its connections) if one was opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # `async with WebhookChannel(...) as channel:` closes the session however the block ends.
    async def __aenter__(self) -> WebhookChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
