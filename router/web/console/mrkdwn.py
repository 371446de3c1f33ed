"""Slack mrkdwn as Slack shows it, for the route tester's preview: bold, italics, strikes,
code and code blocks (the Loki lines), links, and `<!date^...>` tokens resolved. Every
piece of text is escaped; only http(s) URLs become links."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from markupsafe import Markup, escape

from router.render.message import is_web_url

_TOKEN = re.compile(r"<([^<>\n]+)>")
_CODE_BLOCK = re.compile(r"```\n?(.*?)```", re.S)
_STYLES = (
    (re.compile(r"`([^`\n]+)`"), "code"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "s"),
)
# Slack's date tokens, rendered in UTC (the console's time zone).
_DATE_PARTS = {
    "{date_num}": "%Y-%m-%d",
    "{date}": "%B %d, %Y",
    "{date_short}": "%b %d, %Y",
    "{date_long}": "%A, %B %d, %Y",
    "{date_pretty}": "%B %d, %Y",
    "{date_short_pretty}": "%b %d, %Y",
    "{date_long_pretty}": "%A, %B %d, %Y",
    "{time}": "%H:%M",
    "{time_secs}": "%H:%M:%S",
}


def _date(token: str) -> str:
    """`!date^TS^FORMAT[^LINK]|fallback` as Slack would write it (in UTC)."""
    spec, _, fallback = token.partition("|")
    parts = spec.split("^")
    try:
        when = datetime.fromtimestamp(int(parts[1]), UTC)
        text = parts[2]
    except (IndexError, ValueError, OverflowError, OSError):
        return str(escape(html.unescape(fallback)))
    for name, form in _DATE_PARTS.items():
        text = text.replace(name, when.strftime(form))
    return f'<time datetime="{when.isoformat()}">{escape(html.unescape(text))} UTC</time>'


def _inline(text: str) -> str:
    """Plain mrkdwn (no tokens) as HTML: Slack's entities undone, escaped, then styled."""
    out = str(escape(html.unescape(text)))
    for pattern, tag in _STYLES:
        out = pattern.sub(rf"<{tag}>\1</{tag}>", out)
    return out


def _token(token: str) -> str:
    if token.startswith("!date^"):
        return _date(token)
    if token.startswith(("!", "@", "#")):
        shown = token.partition("|")[2] or token.lstrip("!@#")
        return f'<span class="mention">@{escape(html.unescape(shown))}</span>'
    url, _, label = token.partition("|")
    url = html.unescape(url)
    shown = _inline(label) if label else str(escape(url))
    if not is_web_url(url):
        return shown
    return f'<a href="{escape(url)}" rel="noopener noreferrer">{shown}</a>'


def _line(text: str) -> str:
    parts: list[str] = []
    last = 0
    for found in _TOKEN.finditer(text):
        parts.append(_inline(text[last : found.start()]))
        parts.append(_token(found.group(1)))
        last = found.end()
    parts.append(_inline(text[last:]))
    return "".join(parts)


def render(text: str) -> Markup:
    """One mrkdwn text (a block's) as HTML."""
    out: list[str] = []
    last = 0
    for block in _CODE_BLOCK.finditer(text):
        out.append(_line(text[last : block.start()]).replace("\n", "<br>"))
        out.append(f"<pre>{escape(html.unescape(block.group(1)))}</pre>")
        last = block.end()
    out.append(_line(text[last:]).replace("\n", "<br>"))
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped  # nosec B704
