"""POSTing JSON to one URL over the shared HTTP pool, and transport failures as DeliveryErrors.

Shared by the channels that are a single HTTP POST per message (webhook, PagerDuty, Teams).
What a status means is each channel's business; what a dropped connection or a timeout
means is the same for all of them: try again. Redirects are never followed (aiohttp would
turn the POST into a body-less GET, and another host would receive the payload). The URL
may carry secrets: errors name only `scheme://host[:port]`, and response texts are scrubbed
of the secrets the channel names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from urllib.parse import urlsplit

import aiohttp

from router.channels.base import DeliveryError, parse_retry_after
from router.durations import format_duration
from router.render.templates import oneline
from router.secrets import redact

# How much of a response's body is read: enough for an error's JSON (PagerDuty's `errors`).
_BODY_BYTES = 4096


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


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: its status, its Retry-After header, and its body (scrubbed)."""

    status: int
    retry_after: str | None
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def excerpt(self, limit: int = 200) -> str:
        """The body on one line, cut to `limit` characters."""
        return oneline(self.body, limit)


def status_error(
    answer: Answer, where: str, now: float, *, detail: str = "", rate_limit_wait: float = 0.0
) -> DeliveryError:
    """The usual meaning of a failed status: 429, 408 and 5xx are worth a retry (honouring
    Retry-After, else `rate_limit_wait` for a 429), other statuses are permanent."""
    status = answer.status
    text = f"{where} answered {status}" + (f": {detail}" if detail else "")
    wait = parse_retry_after(answer.retry_after, now)
    if status == 429 and wait is None and rate_limit_wait > 0:
        wait = rate_limit_wait
    if status in (408, 429) or status >= 500:
        return DeliveryError(f"http_{status}", text, retryable=True, retry_after=wait)
    if 300 <= status < 400:
        text += " (redirects are not followed: point the receiver at the final url)"
    return DeliveryError(f"http_{status}", text, retryable=False)


class JsonPoster:
    """POSTs to one URL over the shared pool `http`, each request with its own timeout; `post`
    returns the answer, whatever its status, or raises DeliveryError when no answer came."""

    def __init__(
        self,
        url: str,
        *,
        http: aiohttp.ClientSession,
        timeout: float,
        secrets: Iterable[str] = (),
    ) -> None:
        self.url = url
        self.origin = safe_origin(url)
        self.timeout = timeout
        self.secrets = list(secrets)
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST `body`; DeliveryError (`timeout`, `connection`, `invalid_url`) when the
        server could not be asked or did not answer."""
        try:
            async with self._http.post(
                self.url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                try:
                    raw = await resp.content.read(_BODY_BYTES)
                except (aiohttp.ClientError, OSError, TimeoutError):
                    raw = b""
                text = self.redact(raw.decode("utf-8", errors="replace"))
                return Answer(resp.status, resp.headers.get("Retry-After"), text)
        except TimeoutError as exc:
            # Covers aiohttp's ServerTimeoutError and the total ClientTimeout.
            raise DeliveryError(
                "timeout",
                f"{self.origin}: no answer within {format_duration(self.timeout)}",
                retryable=True,
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise DeliveryError(
                "invalid_url", f"{self.origin}: the configured url is not valid", retryable=False
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise DeliveryError(
                "connection", self.redact(f"{self.origin}: {reason}"), retryable=True
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Disconnects, payload errors, TLS failures: transport trouble, worth a retry.
            raise DeliveryError(
                "connection", f"{self.origin}: {type(exc).__name__}", retryable=True
            ) from exc
