"""Keeping secrets out of what people read: config problems, logs, delivery errors.

Every redaction writes the same marker, so a reader learns one word for "hidden here".
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "<redacted>"

# Shorter parts of a URL (`/`, `/api`) are not secret, and replacing them would shred the
# text around them.
_MIN_SECRET_CHARS = 4


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each secret replaced by the marker, longest first.

    Longest first, so a secret that contains another (a URL and its token) goes whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def url_secrets(url: str) -> list[str]:
    """The parts of `url` that may be secret: the whole URL, user, password, path, query.

    A webhook URL often carries its token in the path or query; percent-decoded forms are
    included, since error texts may show either.
    """
    try:
        parts = urlsplit(url)
        candidates = [url, parts.username or "", parts.password or "", parts.path, parts.query]
    except ValueError:
        candidates = [url]
    candidates += [unquote(c) for c in candidates]
    return [c for c in candidates if len(c) >= _MIN_SECRET_CHARS]


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by the marker, for logs and errors."""
    try:
        parts = urlsplit(url)
        password = parts.password
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if password is None:
        return url
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{REDACTED}@{host}"))
