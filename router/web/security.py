"""What every request passes before a handler: one user header, same-site state changes,
JSON for the API's POSTs; and the headers every answer carries.

Webhooks (`/webhook/*`, `/slack/interactions`) come from servers, not browsers: they are
authenticated by their own credentials and signatures, not by where a page was loaded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from router.web.deadline import Handler
from router.web.state import STATE

# Headers that name a user in some proxy's convention. Only the configured one is
# believed; another one on a request means a client is trying its luck, or a proxy is
# set up otherwise than the config says: either way, refuse rather than guess.
USER_HEADERS = (
    "X-Forwarded-User",
    "X-Auth-Request-User",
    "X-Forwarded-Email",
    "X-Auth-Request-Email",
    "Remote-User",
    "X-Webauth-User",
    "X-Forwarded-Preferred-Username",
)

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Where a browser page could change state with credentials the browser holds.
_STATE_CHANGING_PREFIXES = ("/-/", "/api/", "/ui/")

CONTENT_SECURITY_POLICY = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def user_header_problem(headers: Any, configured: str) -> str | None:
    """Why a request's user headers cannot be believed, or None: the configured header
    at most once, and no other user header at all."""
    if len(headers.getall(configured, [])) > 1:
        return f"{configured} appears more than once"
    for name in USER_HEADERS:
        if name.lower() != configured.lower() and name in headers:
            return f"{name} is not the user header this service is set up for"
    return None


@web.middleware
async def proxy_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 for a request whose user headers are ambiguous (see `user_header_problem`)."""
    proxy = request.app[STATE].runtime.config.server.trusted_proxy
    if proxy is not None:
        problem = user_header_problem(request.headers, proxy.user_header)
        if problem is not None:
            return _refuse(400, problem)
    return await handler(request)


def cross_site(request: web.Request, external_url: str) -> bool:
    """Whether the browser says the request comes from a page of another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if fetch_site in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    host = urlsplit(origin).netloc.lower()
    allowed = {request.host.lower()}
    if external_url:
        allowed.add(urlsplit(external_url).netloc.lower())
    return host not in allowed


def _json_content_type(request: web.Request) -> bool:
    if request.content_type == "application/json":
        return True
    # A POST without a body (retry) need not say what it does not send.
    return request.content_length in (None, 0) and not request.can_read_body


@web.middleware
async def same_site_changes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """403 for a state change from another site's page; 415 for an API POST not in JSON."""
    if request.method in _UNSAFE_METHODS and request.path.startswith(_STATE_CHANGING_PREFIXES):
        external = request.app[STATE].runtime.config.server.external_url
        if cross_site(request, external):
            return _refuse(
                403, "cross-site request refused: it was not sent from a page of this console"
            )
        if request.path.startswith("/api/") and not _json_content_type(request):
            return _refuse(415, "Content-Type must be application/json")
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer: no sniffing, no referrer to other sites, never framed, and scripts,
    styles and forms only from this service."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
