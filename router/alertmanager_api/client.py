"""A small Alertmanager API v2 client for silences (create, find by marker, expire), one
per configured Alertmanager.

Behaviour of 0.25 it allows for: a missing field is 422 (not 400); DELETE of an unknown
id is 500 "silence not found" (404 from 0.26), which means there is nothing left to expire;
bodies of errors are JSON strings. Credentials (bearer or basic) come from the entry in
routes.yaml, go only to its `url` and never appear in an error text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from router.config.schema import AlertmanagerAPI
from router.matchers import Matcher, matches_all
from router.model import format_time, parse_time
from router.secrets import redact, redact_url

# An error text quoted from Alertmanager is cut to this, so a proxy's HTML page does not
# fill a Slack thread.
_ERROR_TEXT = 200


class SilenceError(Exception):
    """Alertmanager refused or could not be reached; `retryable` when a later try may work."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Silences(Protocol):
    """What acting on a group needs of one configured Alertmanager."""

    async def create(
        self,
        matchers: Sequence[Matcher],
        *,
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Create a silence; its id. Raises SilenceError."""
        ...

    async def find(self, marker: str, matchers: Sequence[Matcher] = ()) -> str | None:
        """The id of an active or pending silence with these matchers whose comment holds
        `marker`, if any."""
        ...

    async def expire(self, silence_id: str) -> None:
        """Expire a silence; one already expired or unknown is fine. Raises SilenceError."""
        ...


def _to_api(matcher: Matcher) -> dict[str, Any]:
    return {
        "name": matcher.name,
        "value": matcher.value,
        "isRegex": matcher.op in ("=~", "!~"),
        "isEqual": matcher.op in ("=", "=~"),
    }


class AlertmanagerClient:
    """`Silences` over HTTP at one configured Alertmanager's `url`, and nowhere else.

    It sends over the shared HTTP pool `http`. Its credentials and timeout go on each
    request (never on the session, which would carry them to every destination) and a
    redirect is never followed: an answer of 3xx is an error, since the place it names was
    not configured. Nothing to close: a client replaced by a reload is simply dropped.
    """

    def __init__(self, cfg: AlertmanagerAPI, http: aiohttp.ClientSession) -> None:
        self.cfg = cfg
        self.base_url = cfg.url.rstrip("/")
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=cfg.timeout)
        self._secrets: list[str] = []
        headers: dict[str, str] = {}
        if cfg.bearer_token is not None:
            token = cfg.bearer_token.get_secret_value()
            headers["Authorization"] = f"Bearer {token}"
            self._secrets.append(token)
        if cfg.basic_auth is not None:
            password = cfg.basic_auth.password.get_secret_value()
            pair = f"{cfg.basic_auth.username}:{password}".encode()
            encoded = base64.b64encode(pair).decode("ascii")
            headers["Authorization"] = f"Basic {encoded}"
            self._secrets.extend((password, encoded))
        self._headers = headers

    async def _request(
        self, method: str, path: str, *, body: Any = None, params: Any = None
    ) -> tuple[int, Any]:
        url = self.base_url + path
        try:
            async with self._http.request(
                method,
                url,
                json=body,
                params=params,
                headers=self._headers,
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise SilenceError(
                f"Alertmanager at {redact_url(url)} did not answer in time", retryable=True
            ) from None
        except aiohttp.ClientError as exc:
            raise SilenceError(
                self._scrub(
                    f"Alertmanager at {redact_url(url)} is unreachable ({type(exc).__name__})"
                ),
                retryable=True,
            ) from None
        if 300 <= status < 400:
            raise SilenceError(
                f"Alertmanager at {redact_url(self.base_url)} answered {status}, a redirect:"
                " not followed (credentials go only to the configured url); set"
                f" alertmanager url {self.cfg.display_name!r} to where its API answers",
                retryable=False,
            )
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return status, data

    def _failure(self, what: str, status: int, data: Any) -> SilenceError:
        detail: Any = ""
        if isinstance(data, str):
            detail = data
        elif isinstance(data, dict):
            detail = data.get("message", "")
        detail = " ".join(str(detail).split())[:_ERROR_TEXT]
        text = f"Alertmanager answered {status} to {what}" + (f": {detail}" if detail else "")
        # 5xx and 429 may pass; a 4xx says the request itself is wrong.
        return SilenceError(self._scrub(text), retryable=status >= 500 or status == 429)

    def _scrub(self, text: str) -> str:
        return redact(text, self._secrets)

    async def create(
        self,
        matchers: Sequence[Matcher],
        *,
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        body = {
            "matchers": [_to_api(m) for m in matchers],
            "startsAt": format_time(starts_at),
            "endsAt": format_time(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        status, data = await self._request("POST", "/api/v2/silences", body=body)
        if status == 200 and isinstance(data, dict):
            # Grafana's Alertmanager calls it `id`.
            silence_id = data.get("silenceID") or data.get("id")
            if isinstance(silence_id, str) and silence_id:
                return silence_id
        raise self._failure("creating the silence", status, data)

    async def find(self, marker: str, matchers: Sequence[Matcher] = ()) -> str | None:
        url = "/api/v2/silences"
        # Alertmanager keeps expired silences for days: asking only for those with the
        # group's matchers keeps the answer small however many silences it holds.
        filters = [("filter", str(m)) for m in matchers if m.op == "="]
        status, data = await self._request("GET", url, params=filters or None)
        if status == 400 and filters:
            # A label value its matcher parser will not take back: list them all.
            status, data = await self._request("GET", url)
        if status != 200 or not isinstance(data, list):
            raise self._failure("listing silences", status, data)
        for silence in data:
            if not isinstance(silence, dict):
                continue
            state = (silence.get("status") or {}).get("state")
            if state in ("active", "pending") and marker in str(silence.get("comment", "")):
                return str(silence.get("id"))
        return None

    async def alerts(self, matchers: Sequence[Matcher]) -> list[dict[str, Any]]:
        """The alerts it holds now (silenced and inhibited ones too; never resolved ones)
        matching every one of `matchers`. Raises SilenceError."""
        url = "/api/v2/alerts"
        filters = [("filter", str(m)) for m in matchers]
        status, data = await self._request("GET", url, params=filters or None)
        if status == 400 and filters:
            # A matcher its parser will not take back: list them all, match here.
            status, data = await self._request("GET", url)
        if status != 200 or not isinstance(data, list):
            raise self._failure("listing alerts", status, data)
        found = []
        for alert in data:
            labels = alert.get("labels") if isinstance(alert, dict) else None
            if isinstance(labels, dict) and matches_all(
                matchers, {str(k): str(v) for k, v in labels.items()}
            ):
                found.append(alert)
        return found

    async def started_at(self) -> datetime | None:
        """When it started (its status's `uptime`); None when it does not say."""
        status, data = await self._request("GET", "/api/v2/status")
        if status != 200 or not isinstance(data, dict):
            raise self._failure("reading its status", status, data)
        try:
            return parse_time(str(data.get("uptime") or ""))
        except ValueError:
            return None

    async def expire(self, silence_id: str) -> None:
        url = f"/api/v2/silence/{quote(silence_id, safe='')}"
        status, data = await self._request("DELETE", url)
        if status == 200 or status == 404:
            return
        if status == 500 and "not found" in str(data).lower():
            # 0.25 answers 500 for an unknown id: there is nothing to expire.
            return
        raise self._failure("expiring the silence", status, data)
