"""Who may call what: credentials of webhook sources, the read API and the actions."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from router.config.schema import AuthScope, SourceAuth
from router.web.state import STATE

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rejected(Exception):
    """A request refused with a status, a reason label for metrics and a message for the
    sender (and, for a 401, the WWW-Authenticate challenge)."""

    def __init__(self, status: int, reason: str, message: str, challenge: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.challenge = challenge


def authorized(request: web.Request, auth: SourceAuth) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    ok = False
    # Compare every configured method in constant time; never short-circuit on a secret.
    if auth.bearer_token is not None and scheme.lower() == "bearer":
        expected = auth.bearer_token.get_secret_value().encode()
        ok |= hmac.compare_digest(credentials.encode(), expected)
    if auth.basic_auth is not None and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user_ok = hmac.compare_digest(user.encode(), auth.basic_auth.username.encode())
        pass_ok = hmac.compare_digest(
            password.encode(), auth.basic_auth.password.get_secret_value().encode()
        )
        ok |= user_ok and pass_ok
    return ok


def challenge(auth: SourceAuth) -> str:
    schemes = []
    if auth.bearer_token is not None:
        schemes.append('Bearer realm="alert-router"')
    if auth.basic_auth is not None:
        schemes.append('Basic realm="alert-router"')
    return ", ".join(schemes)


def log_refused(request: web.Request, exc: Rejected, **fields: str) -> None:
    # One line per refusal, so "why did Alertmanager's webhook not arrive" has an answer;
    # never with the request's headers or body, which may hold credentials.
    level = logging.WARNING if exc.status >= 500 else logging.INFO
    log.log(
        level,
        "request refused",
        extra={
            **fields,
            "path": request.path,
            "status": exc.status,
            "reason": exc.reason,
            "error": exc.message,
            "remote": request.remote or "",
        },
    )


def guarded(scopes: tuple[AuthScope, ...], handler: Handler) -> Handler:
    """`handler` behind the credentials of the first of `scopes` the config sets (open if
    none is set)."""

    async def guard(request: web.Request) -> web.StreamResponse:
        auth_config = request.app[STATE].runtime.config.server.auth
        auth = next((auth_config[s] for s in scopes if s in auth_config), None)
        if auth is not None and not authorized(request, auth):
            exc = Rejected(401, "unauthorized", "missing or wrong credentials", challenge(auth))
            log_refused(request, exc)
            return web.json_response(
                {"error": exc.message}, status=401, headers={"WWW-Authenticate": exc.challenge}
            )
        return await handler(request)

    return guard


# `server.auth` entries guarding the read API and the actions.
READ_API: tuple[AuthScope, ...] = ("api",)
ADMIN: tuple[AuthScope, ...] = ("admin", "api")
