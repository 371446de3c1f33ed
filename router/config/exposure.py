"""Which of the service's surfaces answer anyone who reaches its port, as a config sets it.

`check` warns of each, the console's health section lists them, and `serve` without
`--host` listens on loopback only while nothing at all asks for credentials.
"""

from __future__ import annotations

from router.config.schema import Config

# The webhook sources and the key of the credentials each must present.
_SOURCES = ("alertmanager", "argocd")


def open_surfaces(config: Config) -> list[str]:
    """One line per surface open to anyone, as `check` prints it (without `warning: `)."""
    server = config.server
    lines = [
        f"webhooks accept anyone (server.auth.{source} unset)"
        for source in _SOURCES
        if source not in server.auth
    ]
    if config.heartbeats and "heartbeat" not in server.auth and "alertmanager" not in server.auth:
        lines.append(
            "heartbeats accept beats from anyone: POST /heartbeat/{name} (server.auth.heartbeat"
            " and server.auth.alertmanager unset)"
        )
    read_open = "api" not in server.auth and server.trusted_proxy is None
    if read_open:
        lines.append(
            "the read API and the console answer anyone (server.auth.api and"
            " server.trusted_proxy unset)"
        )
    if "admin" not in server.auth and read_open:
        # Without admin credentials, reloading falls to whoever may read: here, anyone.
        lines.append("actions accept anyone: POST /-/reload (server.auth.admin unset)")
    return lines


def asks_for_credentials(config: Config) -> bool:
    """Whether any surface asks for credentials (or a proxy's word for who is asking)."""
    return bool(config.server.auth) or config.server.trusted_proxy is not None
