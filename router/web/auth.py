"""Who may call what: credentials of webhook sources, the read API and the actions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from router.config.schema import AuthScope, ServerConfig, SourceAuth
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
    """Whether the request carries one of `auth`'s credentials (compared in constant time)."""
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
    """The WWW-Authenticate value asking for `auth`'s credentials."""
    schemes = []
    if auth.bearer_token is not None:
        schemes.append('Bearer realm="alert-router"')
    if auth.basic_auth is not None:
        schemes.append('Basic realm="alert-router"')
    return ", ".join(schemes)


def log_refused(request: web.Request, exc: Rejected, **fields: str) -> None:
    """One log line for a refused request, without anything it carried."""
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


@dataclass(frozen=True, slots=True)
class Access:
    """Who is asking and what they may do, as the console shows it."""

    # The user name shown on pages: a basic-auth user, the proxy's user, or "" (a bearer
    # token or nobody).
    user: str
    read: bool
    admin: bool
    # No read credential is configured: anyone who reaches the port reads.
    read_open: bool
    # An admin credential is configured: without one, actions are off for everyone.
    actions_on: bool
    # What a CSRF token is bound to: the credential the request came with.
    identity: str


def _basic_user(request: web.Request) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(credentials.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return ""


def proxy_user(request: web.Request, server: ServerConfig) -> str:
    """The user the trusted proxy names, or "" (no proxy configured, a peer that is not
    the proxy, or no header)."""
    proxy = server.trusted_proxy
    if proxy is None or not request.remote:
        return ""
    try:
        peer = ipaddress.ip_address(request.remote)
    except ValueError:
        return ""
    if not any(peer in network for network in proxy.networks()):
        return ""
    # A request naming the user twice never gets here (router/web/security.py: 400).
    return request.headers.get(proxy.user_header, "").strip()


def access_of(request: web.Request, server: ServerConfig) -> Access:
    """What the request may do: read with `auth.api` or `auth.admin` credentials or as a
    user named by the trusted proxy (anyone when none is configured), act with
    `auth.admin` or as one of the proxy's `admins`."""
    api = server.auth.get("api")
    admin = server.auth.get("admin")
    proxy = server.trusted_proxy
    via_proxy = proxy_user(request, server)
    admin_by_credential = admin is not None and authorized(request, admin)
    admin_by_proxy = bool(via_proxy) and proxy is not None and via_proxy in proxy.admins
    api_ok = api is not None and authorized(request, api)
    read_open = api is None and proxy is None
    if via_proxy:
        user, identity = via_proxy, f"proxy:{via_proxy}"
    elif admin_by_credential or api_ok:
        user = _basic_user(request)
        identity = f"basic:{user}" if user else "bearer"
    else:
        user, identity = "", "anonymous"
    return Access(
        user=user,
        read=read_open or api_ok or admin_by_credential or bool(via_proxy),
        admin=admin_by_credential or admin_by_proxy,
        read_open=read_open,
        actions_on=admin is not None or (proxy is not None and bool(proxy.admins)),
        identity=identity,
    )


def may_reload(access: Access) -> bool:
    """`/-/reload` needs an admin once one is configured, until then a reader."""
    return access.admin if access.actions_on else access.read


def _refusal(request: web.Request, server: ServerConfig, *, browser: bool) -> web.Response:
    """401 asking for the read credentials (basic first, so a browser prompts), or 403
    when only the proxy can let the caller in."""
    api = server.auth.get("api")
    if api is None:
        exc = Rejected(403, "forbidden", "sign in through the authenticating proxy")
        log_refused(request, exc)
        return web.json_response({"error": exc.message}, status=403)
    exc = Rejected(401, "unauthorized", "missing or wrong credentials", challenge(api))
    log_refused(request, exc)
    headers: CIMultiDict[str] = CIMultiDict()
    if browser:
        # One challenge per header: a browser shows its sign-in prompt for Basic.
        for scheme in sorted(exc.challenge.split(", "), key=lambda c: not c.startswith("Basic")):
            headers.add("WWW-Authenticate", scheme)
    else:
        headers["WWW-Authenticate"] = exc.challenge
    return web.json_response({"error": exc.message}, status=401, headers=headers)


def guarded(scopes: tuple[AuthScope, ...], handler: Handler) -> Handler:
    """`handler` for readers (`READ_API`) or for those who may reload (`ADMIN`): see
    `access_of`; open when nothing is configured."""

    async def guard(request: web.Request) -> web.StreamResponse:
        server = request.app[STATE].runtime.config.server
        access = access_of(request, server)
        allowed = may_reload(access) if scopes == ADMIN else access.read
        if not allowed:
            if scopes == ADMIN and access.actions_on:
                admin = server.auth.get("admin")
                if admin is not None:
                    exc = Rejected(
                        401, "unauthorized", "missing or wrong credentials", challenge(admin)
                    )
                else:
                    exc = Rejected(403, "forbidden", "only an admin may do this")
                log_refused(request, exc)
                headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else {}
                return web.json_response({"error": exc.message}, status=exc.status, headers=headers)
            return _refusal(request, server, browser=False)
        return await handler(request)

    return guard


def console_guarded(handler: Handler) -> Handler:
    """A console page for readers; the refusal asks a browser to sign in."""

    async def guard(request: web.Request) -> web.StreamResponse:
        server = request.app[STATE].runtime.config.server
        if not access_of(request, server).read:
            return _refusal(request, server, browser=True)
        return await handler(request)

    return guard


# `server.auth` entries guarding the read API and the actions.
READ_API: tuple[AuthScope, ...] = ("api",)
ADMIN: tuple[AuthScope, ...] = ("admin", "api")

# A form's CSRF token is good this long: a console page left open over a shift still acts.
CSRF_TTL = 12 * 3600.0


class Csrf:
    """Tokens a form carries and a POST must return: an HMAC of the credential the page was
    shown to and the time, keyed by the configured secrets so every replica accepts them."""

    def __init__(self, server: ServerConfig) -> None:
        self.server = server
        material = [b"alert-router console csrf"]
        for scope in ("api", "admin"):
            auth = server.auth.get(scope)
            if auth is None:
                continue
            if auth.bearer_token is not None:
                material.append(auth.bearer_token.get_secret_value().encode())
            if auth.basic_auth is not None:
                material.append(auth.basic_auth.password.get_secret_value().encode())
        # Only a proxy vouches for users: no shared secret, so a key of this process's own
        # (a form is then accepted by the replica that served it).
        if len(material) == 1:
            material.append(secrets.token_bytes(32))
        self._key = hashlib.sha256(b"\0".join(material)).digest()

    def _mac(self, identity: str, issued: int) -> str:
        text = f"{identity}\0{issued}".encode()
        return hmac.new(self._key, text, hashlib.sha256).hexdigest()[:40]

    def token(self, identity: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._mac(identity, issued)}"

    def valid(self, token: str, identity: str, now: float | None = None) -> bool:
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit():
            return False
        issued = int(issued_text)
        age = (time.time() if now is None else now) - issued
        if not 0 <= age <= CSRF_TTL:
            return False
        return hmac.compare_digest(mac, self._mac(identity, issued))
