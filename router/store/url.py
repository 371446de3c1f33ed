"""`state.url`, parsed completely: the config validator and `open_store` share this.

Accepted forms (query options are the same on every scheme):

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`
- `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS)
- `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/db]`:
  the Redis primary that these Sentinels name (port 26379 unless given), followed across
  failovers; the password is the primary's, the Sentinels are asked without one.
- `?lease=30s&lease_renew=10s&keep_records=1d`: shorthand for `state.lease`,
  `state.lease_renew` and `state.keep_records` (bare numbers are seconds). `rediss://`
  also takes `ssl_cert_reqs`, `ssl_ca_certs` and `ssl_check_hostname`, handed to the
  Redis client.

Messages never quote the URL's user part: it may hold a password.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from router.durations import parse_duration

# Options that are store settings; removed from the URL before connecting.
STORE_OPTIONS = ("lease", "lease_renew", "keep_records")
# Options of the Redis client worth allowing on a TLS URL: trusting a private CA.
_TLS_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "ssl_cert_reqs": ("none", "optional", "required"),
    "ssl_ca_certs": (),
    "ssl_check_hostname": ("true", "false"),
}
_EXAMPLES = (
    "sqlite:///<path>, redis://host:6379/0 (rediss:// for TLS)"
    " or redis+sentinel://host:26379/<master name>/0"
)
SENTINEL_SCHEME = "redis+sentinel"
_SCHEMES = ("sqlite", "redis", "rediss", SENTINEL_SCHEME)
SENTINEL_PORT = 26379
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


@dataclass(frozen=True)
class StateURL:
    """A valid state URL taken apart."""

    scheme: str
    # sqlite: the database file's path. redis: the URL the client connects to (password
    # included, store options removed).
    target: str
    # Store settings given on the URL, in seconds.
    options: Mapping[str, float] = field(default_factory=dict)
    # redis+sentinel: the Sentinels to ask, the primary's name there, and the database.
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0

    @property
    def is_redis(self) -> bool:
        return self.scheme in ("redis", "rediss", SENTINEL_SCHEME)

    @property
    def is_sentinel(self) -> bool:
        return self.scheme == SENTINEL_SCHEME


def parse_state_url(url: str) -> StateURL:
    """Take `url` apart or raise ValueError saying what is wrong and how to write it."""
    if url != url.strip():
        raise ValueError("has spaces around it")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        shown = f"{scheme}://" if _SCHEME_RE.match(scheme) else "no scheme"
        raise ValueError(f"unsupported scheme ({shown}): use {_EXAMPLES}")
    parts = urlsplit(url)
    if parts.fragment or url.endswith("#"):
        raise ValueError("must not have a #fragment")
    options, passed = _options(parts.query, tls=scheme == "rediss")
    if scheme == "sqlite":
        return StateURL(scheme, _sqlite_path(parts.netloc, parts.path), options)
    target = urlunsplit(parts._replace(query=urlencode(passed)))
    if scheme == SENTINEL_SCHEME:
        sentinels = _sentinel_hosts(parts.netloc)
        master, db = _master_and_db(parts.path)
        return StateURL(scheme, target, options, sentinels=sentinels, master=master, db=db)
    _check_redis(parts)
    return StateURL(scheme, target, options)


def _sentinel_hosts(netloc: str) -> tuple[tuple[str, int], ...]:
    hosts = netloc.rpartition("@")[2]
    found: list[tuple[str, int]] = []
    for item in hosts.split(","):
        try:
            one = urlsplit(f"//{item}")
            host, port = one.hostname, one.port
        except ValueError:  # not a number; its text is not repeated (it may be a password)
            raise ValueError("a Sentinel port must be a number from 1 to 65535") from None
        if not host:
            raise ValueError(
                "names no Sentinel host: write redis+sentinel://host:26379[,host2:26379]"
                "/<master name>/0"
            )
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("a Sentinel port must be a number from 1 to 65535")
        found.append((host, port or SENTINEL_PORT))
    return tuple(found)


def _master_and_db(path: str) -> tuple[str, int]:
    parts = path.strip("/").split("/") if path.strip("/") else []
    if not parts:
        raise ValueError(
            "names no master: write redis+sentinel://host:26379/<master name>/0, with the"
            " name the Sentinels monitor it under"
        )
    if len(parts) > 2:
        raise ValueError("the path is /<master name>/<db>: nothing more")
    db = parts[1] if len(parts) == 2 else "0"
    if not (db.isascii() and db.isdigit()):
        raise ValueError(
            "the Redis database must be a number, as in"
            f" redis+sentinel://host:26379/mymaster/0 (got {db!r})"
        )
    return parts[0], int(db)


def _sqlite_path(netloc: str, path: str) -> str:
    if netloc:
        raise ValueError(
            "sqlite URLs have no host: write sqlite:///<relative path> (three slashes)"
            " or sqlite:////<absolute path> (four)"
        )
    rest = path[1:] if path.startswith("/") else path
    if rest in ("", ":memory:") or rest.startswith("file::memory:"):
        raise ValueError(
            "sqlite needs a database file, e.g. sqlite:///./alert-router.db:"
            " an in-memory database loses accepted alerts on restart"
        )
    if rest.endswith("/"):
        raise ValueError(f"sqlite path {rest!r} names a directory, not a database file")
    return rest


def _check_redis(parts: SplitResult) -> None:
    if not parts.hostname:
        raise ValueError("names no Redis host: write redis://host:6379/0")
    try:
        port = parts.port
    except ValueError:  # not a number; its text is not repeated (it may be a password)
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("the Redis port must be a number from 1 to 65535")
    db = parts.path[1:] if parts.path.startswith("/") else parts.path
    if db and not (db.isascii() and db.isdigit()):
        raise ValueError(
            f"the Redis database must be a number, as in redis://host:6379/0 (got {db!r})"
        )


def _options(query: str, *, tls: bool) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """The store settings in seconds, and the client options to pass on."""
    known = [*STORE_OPTIONS, *(_TLS_OPTIONS if tls else ())]
    settings: dict[str, float] = {}
    passed: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in seen:
            raise ValueError(f"option {key!r} is given twice")
        seen.add(key)
        if key in STORE_OPTIONS:
            settings[key] = _seconds(key, value)
        elif key in known:
            allowed = _TLS_OPTIONS[key]
            if allowed and value.lower() not in allowed:
                raise ValueError(f"option {key}={value!r} must be one of {', '.join(allowed)}")
            if not value:
                raise ValueError(f"option {key!r} needs a value")
            passed.append((key, value))
        else:
            raise ValueError(f"unknown option {key!r} (known: {', '.join(known)})")
    return settings, passed


def _seconds(key: str, value: str) -> float:
    if not value:
        raise ValueError(f"option {key!r} needs a value, e.g. {key}=30s")
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"option {key}: {exc}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"option {key}={value!r} must be a positive duration, e.g. {key}=30s")
    return seconds
