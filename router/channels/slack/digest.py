"""A digest's Slack posts: the pointer in its own message, and the posts that list every
alert it stands for (packed into as few messages as Slack's limits allow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.channels.slack.mrkdwn import (
    ELLIPSIS,
    MAX_BLOCKS,
    MAX_MESSAGE_TEXT,
    MAX_SECTION_TEXT,
    SlackPayload,
    context,
    inline_code,
    link_url,
    mrkdwn_link,
    section,
    truncate_mrkdwn,
    truncate_plain,
)
from router.model import Status
from router.render.message import MAX_DIGEST_LISTED, DigestEntry, Message
from router.render.text import escape_mrkdwn

# What one digest line may spend on each part: the whole line stays far below a section.
_DIGEST_NAME_BUDGET = 80
_DIGEST_LABELS_BUDGET = 250
_DIGEST_SUMMARY_BUDGET = 200
# The labels every alert shares get the room an alert's own labels get in its section.
_SHARED_LABELS_BUDGET = 700


def _listed(message: Message) -> tuple[list[DigestEntry], int]:
    """The entries a digest's thread lists, and how many more it stands for."""
    assert message.digest is not None
    entries = list(message.digest.entries)
    return entries[:MAX_DIGEST_LISTED], max(len(entries) - MAX_DIGEST_LISTED, 0)


def _listing_link(message: Message, title: str) -> str:
    """A link to every record of the digest, or the API path when the router has no URL."""
    assert message.digest is not None
    url = message.digest.listing_url
    if link_url(url) is None:
        return f"{escape_mrkdwn(title)}: `GET {escape_mrkdwn(url)}` on alert-router"
    return mrkdwn_link(url, title)


def digest_pointer(message: Message, threaded: bool) -> dict[str, Any]:
    """The section of a digest's own message saying where its alerts are listed."""
    listed, more = _listed(message)
    where = "in this thread" if threaded else "in the messages after this one"
    total = len(listed) + more
    if more:
        text = (
            f":point_down: The first {len(listed):,} of {total:,} alerts are listed {where}; "
            + _listing_link(message, f"all {total:,}")
        )
    else:
        text = f":point_down: {'Every' if total > 1 else 'The'} alert is listed {where}. "
        text += _listing_link(message, "Records of this digest")
    return section(text)


def digest_line(entry: DigestEntry) -> str:
    """One alert of a digest on one mrkdwn line: status, name, telling labels, summary."""
    alert = entry.alert
    firing = alert.status is Status.FIRING
    dot = ":red_circle:" if firing else ":large_green_circle:"
    name = " ".join(alert.alertname.split())
    line = f"{dot} *{escape_mrkdwn(truncate_plain(name, _DIGEST_NAME_BUDGET)) or 'alert'}*"
    if not firing:
        line += " (resolved)"
    if entry.labels:
        parts = " ".join(inline_code(f"{k}={v}") for k, v in entry.labels.items())
        line += " " + truncate_mrkdwn(parts, _DIGEST_LABELS_BUDGET, marker=" " + ELLIPSIS)
    summary = " ".join(alert.summary.split())
    if summary:
        line += " — " + escape_mrkdwn(truncate_plain(summary, _DIGEST_SUMMARY_BUDGET))
    return line


def build_digest_chunks(message: Message) -> list[SlackPayload]:
    """The posts listing every alert of a digest (up to MAX_DIGEST_LISTED, then a link to
    the rest), one line each, in as few messages as Slack's limits allow.

    Each post starts with a context line saying which alerts it holds; the first names the
    labels every alert shares.
    """
    assert message.digest is not None
    listed, more = _listed(message)
    total = len(listed) + more
    lines = [digest_line(e) for e in listed]
    if more:
        lines.append(
            f":heavy_plus_sign: {more:,} more {'alert' if more == 1 else 'alerts'} "
            "of this digest are not listed here: " + _listing_link(message, f"all {total:,}")
        )
    shared = message.digest.shared_labels
    shared_text = ""
    if shared:
        shared_text = " · every alert has " + truncate_mrkdwn(
            " ".join(inline_code(f"{k}={v}") for k, v in sorted(shared.items())),
            _SHARED_LABELS_BUDGET,
            marker=" " + ELLIPSIS,
        )
    posts = _pack(lines, first_budget=MAX_MESSAGE_TEXT - _CONTEXT_ROOM - len(shared_text))
    payloads: list[SlackPayload] = []
    first = 1
    for index, sections in enumerate(posts):
        shown = min(sum(len(lines) for lines in sections), len(listed) - first + 1)
        what = f"Alerts {first:,}–{first + shown - 1:,} of {total:,}" if shown > 0 else ""
        what = what or f"{total:,} alerts"
        head = f":inbox_tray: {escape_mrkdwn(truncate_plain(message.title, 150))} · {what}"
        if index == 0:
            head += shared_text
        blocks = [context(head), *(section("\n".join(lines)) for lines in sections)]
        text = truncate_plain(f"{message.title}: {what}", 300)
        payloads.append({"text": escape_mrkdwn(text), "blocks": blocks})
        first += max(shown, 0)
    return payloads


def _pack(lines: Sequence[str], *, first_budget: int) -> list[list[list[str]]]:
    """Lines into posts of sections: each section within Slack's section limit, each post
    within its block count and MAX_MESSAGE_TEXT (less the room for its heading)."""
    posts: list[list[list[str]]] = []
    size = section_size = limit = 0
    for line in lines:
        cost = len(line) + 1
        new_section = section_size + cost > MAX_SECTION_TEXT
        if not posts or size + cost > limit or (new_section and len(posts[-1]) >= MAX_BLOCKS - 1):
            limit = first_budget if not posts else MAX_MESSAGE_TEXT - _CONTEXT_ROOM
            posts.append([[]])
            size = section_size = 0
        elif new_section:
            posts[-1].append([])
            section_size = 0
        posts[-1][-1].append(line)
        size += cost
        section_size += cost
    return posts


# What the context line heading each digest post may take.
_CONTEXT_ROOM = 300
