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
from urllib.parse import urlsplit

import aiohttp

from router.channels.base import DeliveryError
from router.channels.http import USER_AGENT, JsonPoster, safe_origin, status_error
from router.config.schema import WebhookReceiver
from router.render.message import Message
from router.render.payload import notification_payload
from router.secrets import url_secrets

__all__ = ["USER_AGENT", "WebhookChannel", "safe_origin"]


class WebhookChannel:
    """POSTs each notification as JSON to one URL."""

    integration = "webhook"

    def __init__(
        self,
        name: str,
        cfg: WebhookReceiver,
        *,
        http: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._cfg = cfg
        self._clock = clock
        self._url = cfg.url.get_secret_value()
        secrets = url_secrets(self._url)
        if cfg.bearer_token is not None and cfg.bearer_token.get_secret_value():
            secrets.append(cfg.bearer_token.get_secret_value())
        self._poster = JsonPoster(self._url, http=http, timeout=cfg.timeout, secrets=secrets)

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
                f"{self._poster.origin}: the url carries credentials and an Authorization"
                " header is also set; use one of them",
                retryable=False,
            )
        answer = await self._poster.post(body, headers)
        if answer.ok:
            return {"status": str(answer.status)}
        raise status_error(answer, self._poster.origin, self._clock(), detail=answer.excerpt())

    async def close(self) -> None:
        """Nothing to release: its connections belong to the shared HTTP pool."""
