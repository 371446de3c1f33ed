"""The jinja2 environment every template-rendering channel shares.

Templates live in the project's top-level `templates/` folder unless the config names another
directory (`templates_dir`). The default is found relative to the installed package:
`Path(router.__file__).parent.parent / "templates"`, i.e. the folder beside `router/` in a
source checkout or an editable install. A deployment that installs the package as a wheel
must either ship `templates/` beside the package (the container image copies the repository)
or point `templates_dir` at a copy.

The environment is strict on purpose: `StrictUndefined` turns a misspelt variable into an
error at render time (so tests catch it) instead of an empty string in a page.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

import router
from router.durations import format_duration
from router.model import format_time
from router.render.message import alert_links
from router.render.text import escape_mrkdwn, reason_text

DEFAULT_TEMPLATES_DIR = Path(router.__file__).resolve().parent.parent / "templates"

# Header-unsafe characters: CR/LF and the other C0/C1 controls, plus the Unicode line and
# paragraph separators that some clients render as line breaks.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES_RE = re.compile(r"\s+")
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_UNPRINTABLE_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})


def oneline(value: object, max_chars: int = 0) -> str:
    """Collapse `value` onto one line: control characters (CR/LF included) become spaces.

    Used for mail headers, where a newline in a label would otherwise start a new header;
    `max_chars` > 0 cuts the result with an ellipsis.
    """
    text = _SPACES_RE.sub(" ", _CONTROL_RE.sub(" ", str(value))).strip()
    if max_chars > 0 and len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)].rstrip() + "…"
    return text


def printable(value: object) -> str:
    """Text with ANSI colour codes and control characters removed; newlines and tabs kept.

    Log lines often carry terminal colours and CR characters; a multi-line entry (a stack
    trace) stays multi-line.
    """
    text = _ANSI_RE.sub("", str(value)).replace("\r\n", "\n")
    return _UNPRINTABLE_RE.sub("", text).rstrip()


def rfc3339(value: datetime | None) -> str:
    """RFC 3339 in UTC (`2026-11-26T10:02:11Z`); empty for an unknown time."""
    return format_time(value) or ""


def humantime(value: datetime | None) -> str:
    """A time as people read it in a mail: `2026-11-26 10:02:11 UTC`; empty when unknown."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(value: float | timedelta | None) -> str:
    """A span in seconds (or a timedelta) as every message writes it (`2m 30s`, `3h 5m`)."""
    if value is None:
        return ""
    return format_duration(value.total_seconds() if isinstance(value, timedelta) else value)


def since(start: datetime | None, end: datetime | None) -> str:
    """How long from `start` to `end` (`1h 5m`); empty when either is unknown.

    Templates get `now` from the channel that renders them, so a render is reproducible and
    no filter reads the clock itself.
    """
    if start is None or end is None:
        return ""
    return duration(end - start)


def safe_url(value: str) -> str:
    """`value` when it is an http(s) or mailto URL, else empty.

    Alert annotations are written by whoever writes alert rules; a `javascript:` runbook URL
    must not become a clickable link.
    """
    text = value.strip()
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return ""
    return text if scheme in _LINK_SCHEMES else ""


def mrkdwn(value: object) -> str:
    """Escape text for Slack mrkdwn (`&`, `<`, `>`), so a label cannot ping `<!channel>`."""
    return escape_mrkdwn(str(value))


# HTML-like templates escape everything; text, subject and Slack templates do their own
# escaping (the `mrkdwn` filter) or need none.
_AUTOESCAPE = jinja2.select_autoescape(
    enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
    disabled_extensions=(),
    default_for_string=False,
    default=False,
)


def _build_env(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=_AUTOESCAPE,
        undefined=jinja2.StrictUndefined,
        # Text templates are laid out for reading; these keep `{% ... %}` lines out of mails.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        oneline=oneline,
        printable=printable,
        rfc3339=rfc3339,
        humantime=humantime,
        duration=duration,
        since=since,
        safe_url=safe_url,
        mrkdwn=mrkdwn,
        alert_links=alert_links,
        reason_text=reason_text,
    )
    return env


@functools.cache
def _cached_env(directory: str) -> jinja2.Environment:
    return _build_env(directory)


def template_env(templates_dir: str = "") -> jinja2.Environment:
    """The environment loading templates from `templates_dir` (default: the project's
    `templates/`), cached per directory.

    `.html.j2` (and `.htm`/`.xml`) templates are autoescaped; others are not. Filters:
    `oneline`, `printable`, `rfc3339`, `humantime`, `duration`, `since(start, end)`,
    `safe_url`, `mrkdwn`, `alert_links` (an alert's links in the order every channel
    shows them), `reason_text` (why it was sent, in words).
    """
    directory = Path(templates_dir) if templates_dir else DEFAULT_TEMPLATES_DIR
    return _cached_env(str(directory.resolve()))
