"""Slack mrkdwn: text cut without breaking an escape or a link, safe links, date tokens,
inline code, and the text blocks (section, context) kept inside Slack's limits.

Nothing here escapes alert text on its own: callers pass text through `escape_mrkdwn`
first; these helpers only keep our own markup intact when cutting it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from router.render.text import escape_mrkdwn

# Slack's Block Kit and message limits (chat.postMessage and Block Kit reference).
MAX_BLOCKS = 50
# Slack also refuses a message whose blocks hold more than about 12,000 characters of text
# in all (`msg_blocks_too_long`, undocumented); we stay under this with room for markup.
MAX_MESSAGE_TEXT = 11_000
MAX_SECTION_TEXT = 3000

ELLIPSIS = "…"
TRUNCATED = " …(truncated)"

_TITLE_BUDGET = 80

_LINK_SCHEMES = ("http://", "https://", "mailto:")


SlackPayload = dict[str, Any]
"""A JSON-ready body for chat.postMessage / chat.update / an incoming webhook."""


def truncate_plain(text: str, limit: int) -> str:
    """Cut plain text to at most `limit` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def truncate_mrkdwn(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """Cut mrkdwn to at most `limit` characters without splitting an escape or a `<...>`.

    A cut inside `&amp;` would show a stray `&am`; a cut inside `<url|title>` would leave an
    unbalanced bracket that Slack renders as garbage. Both are backed off to before the
    sequence, then the marker is appended.
    """
    if len(text) <= limit:
        return text
    keep = max(limit - len(marker), 0)
    cut = _back_off(text[:keep])
    # An odd number of ``` fences means the cut fell inside a code block: close it, so the
    # marker and whatever follows are not swallowed by the block.
    closing = "\n```"
    if cut.count("```") % 2 == 1:
        cut = _back_off(cut[: max(keep - len(closing), 0)])
        if cut.count("```") % 2 == 1:
            cut += closing
    return cut + marker


def _back_off(cut: str) -> str:
    """Drop a trailing partial `&...;` escape or unclosed `<...` left by a cut."""
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    return cut


def link_url(url: str) -> str | None:
    """The URL made safe inside `<url|title>`, or None when it must not be linked.

    Slack splits a link at the first `|` and ends it at the first `>`, so those (and `<`,
    whitespace) are percent-encoded; `&` is entity-escaped as Slack expects in mrkdwn.
    Only http(s) and mailto are linked: anything else is shown as text.
    """
    url = url.strip()
    if not url.lower().startswith(_LINK_SCHEMES):
        return None
    encoded = quote(url, safe="!#$%&'()*+,-./:;=?@[]~_")
    return encoded.replace("&", "&amp;")


def _link_title(title: str) -> str:
    # `|` would end the URL part in some clients and `>` would end the link: the title
    # is escaped, and a pipe becomes a look-alike that cannot be parsed as a separator.
    return escape_mrkdwn(title.replace("|", "¦").replace("\n", " "))


def mrkdwn_link(url: str, title: str) -> str:
    """`<url|title>` with both parts made safe; just the escaped title if `url` is unusable."""
    safe_title = _link_title(truncate_plain(title.strip() or url, _TITLE_BUDGET))
    safe_url = link_url(url)
    if safe_url is None:
        return safe_title
    return f"<{safe_url}|{safe_title}>"


def slack_date(when: datetime) -> str:
    """A Slack date token: shown in each reader's own time zone, with a UTC fallback."""
    utc = when.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block, its text cut to Slack's section limit."""
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate_mrkdwn(text, MAX_SECTION_TEXT)},
    }


def inline_code(text: str) -> str:
    """`text` as escaped inline code on one line."""
    # A backtick would end the inline code early; a look-alike keeps the value readable.
    return "`" + escape_mrkdwn(text.replace("`", "ˋ").replace("\n", " ")) + "`"


def context(text: str) -> dict[str, Any]:
    """A context block of one mrkdwn text (the caller keeps it within limits)."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
