"""Slack payloads for a `Message`: Block Kit inside Slack's limits, alert text escaped.

The layout lives here; its parts beside it: mrkdwn.py (cutting text, links, dates, the
message-wide limits), digest.py (what a digest lists), buttons.py (a firing group's
status line and buttons, and what they carry back).

Layout of a notification (one Slack message):

- top-level `blocks`: a `header` (status, alertname, app/env/severity; plain text, at most
  150 characters) and, only when the caller asks for it, a section holding the receiver's
  mention. The header sits outside the attachment so the status is the first thing seen.
- one legacy attachment whose `color` draws the side bar and whose `blocks` hold the rest:
  a fields section (status, env, severity, alert, app, namespace, Argo CD details), a
  context line (source, receiver, route, since when), the message links, the enrichment
  notes, one section per alert (plus a code-block section for its log excerpt) and, when
  the alerts do not fit, a last section saying "... and N more alerts".

Colours: red `#D40E0D` for firing critical, orange `#E8912D` for firing warning (and any
severity we do not know, since an unknown severity is not safe to show as calm), blue
`#439FE0` for firing info, green `#2EB67D` once everything is resolved.

Every string that comes from an alert (labels, annotations, log lines, Argo CD fields) goes
through `escape_mrkdwn` before it lands in a mrkdwn text, so `<!channel>` or `<@U123>` in a
label shows as text and can never ping. The only raw mrkdwn we add is our own formatting,
links built by `mrkdwn_link`, Slack date tokens, and the receiver's configured mention.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from router.channels.slack.buttons import Buttons, interactive_blocks
from router.channels.slack.digest import digest_pointer
from router.channels.slack.mrkdwn import (
    ELLIPSIS,
    MAX_BLOCKS,
    MAX_MESSAGE_TEXT,
    MAX_SECTION_TEXT,
    SlackPayload,
    inline_code,
    mrkdwn_link,
    section,
    slack_date,
    truncate_mrkdwn,
    truncate_plain,
)
from router.durations import format_duration
from router.model import Status
from router.render.message import (
    AlertView,
    Link,
    LogExcerpt,
    Message,
    alert_links,
    message_facts,
    top_severity,
)
from router.render.text import escape_mrkdwn, plural, severity_rank

# Slack's Block Kit limits on the parts of a message (the message's own: mrkdwn.py).
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000

# The fallback `text` is what push notifications and screen readers show: keep it short.
FALLBACK_TEXT_LIMIT = 1000
# Thread replies list what changed; a long list is cut well before Slack's own limits.
REPLY_TEXT_LIMIT = 3000

COLOR_CRITICAL = "#D40E0D"
COLOR_WARNING = "#E8912D"
COLOR_INFO = "#439FE0"
COLOR_RESOLVED = "#2EB67D"

# Reasons for which a fresh message may carry the receiver's mention: news, not reminders.
MENTION_REASONS = frozenset({"first", "new_alerts", "digest", "escalated"})

# Raw-character budgets per part of an alert section, so one huge description cannot push
# the labels and links out of the 3000-character section.
_SUMMARY_BUDGET = 500
_DESCRIPTION_BUDGET = 1200
_LABELS_BUDGET = 700
_LOG_QUERY_BUDGET = 300
_NOTE_BUDGET = 300
_MIN_LOG_LINE = 40

_ZWSP = "\u200b"


def message_color(message: Message) -> str:
    """The attachment side-bar colour: green when resolved, else by the top severity."""
    if message.status is Status.RESOLVED:
        return COLOR_RESOLVED
    rank = severity_rank(top_severity(message))
    return (COLOR_CRITICAL, COLOR_WARNING, COLOR_INFO)[rank]


def is_critical(alert: AlertView) -> bool:
    """Whether an alert is firing with severity critical (the only kind that may ping)."""
    return alert.status is Status.FIRING and alert.labels.get("severity", "") == "critical"


def mention_allowed(message: Message) -> bool:
    """Whether a freshly posted message for this notification may carry the mention.

    Only news pings: a first notification, new alerts or a digest, firing, with at least
    one critical alert. Resolves, repeat reminders and updates never do.
    """
    return (
        message.status is Status.FIRING
        and message.reason in MENTION_REASONS
        and any(is_critical(a) for a in message.firing)
    )


def _status_emoji(message: Message) -> str:
    if message.status is Status.RESOLVED:
        return ":white_check_mark:"
    return (":rotating_light:", ":warning:", ":information_source:")[
        severity_rank(top_severity(message))
    ]


def header_text(message: Message) -> str:
    """The header's plain text: emoji and title, cut to Slack's 150 characters."""
    title = " ".join(message.title.split()) or message.status_text
    return truncate_plain(f"{_status_emoji(message)} {title}", MAX_HEADER_TEXT)


def fallback_text(message: Message, mention: str = "") -> str:
    """The top-level `text`: title and first alert summary, escaped; never empty. A digest
    says only its title: no one alert speaks for it."""
    title = escape_mrkdwn(" ".join(message.title.split())) or message.status_text
    first = next((a for a in message.alerts if a.summary), None)
    summary = escape_mrkdwn(" ".join(first.summary.split())) if first else ""
    text = f"{title}: {summary}" if summary and message.digest is None else title
    if mention:
        text = f"{mention} {text}"
    return truncate_mrkdwn(text, FALLBACK_TEXT_LIMIT, marker=ELLIPSIS)


def _field(title: str, value: str) -> dict[str, Any]:
    text = f"*{escape_mrkdwn(title)}*\n{escape_mrkdwn(value)}"
    return {"type": "mrkdwn", "text": truncate_mrkdwn(text, MAX_FIELD_TEXT)}


def _fields_block(message: Message) -> dict[str, Any]:
    fields = [_field(t, v) for t, v in message_facts(message)][:MAX_FIELDS]
    return {"type": "section", "fields": fields}


def _context_block(message: Message, updated_at: datetime | None) -> dict[str, Any]:
    parts: list[str] = []
    if message.source:
        parts.append(f"Source: {escape_mrkdwn(message.source)}")
    if message.receiver:
        parts.append(f"Receiver: {escape_mrkdwn(message.receiver)}")
    if message.route_path:
        parts.append(f"Route: {escape_mrkdwn(truncate_plain(message.route_path, 500))}")
    starts = [a.starts_at for a in message.alerts if a.starts_at is not None]
    if starts:
        parts.append(f"Since {slack_date(min(starts))}")
    if updated_at is not None:
        parts.append(f"Updated {slack_date(updated_at)}")
    if message.digest_of:
        parts.append(f"Digest of {plural(message.digest_of, 'notification')}")
    elements = [
        {"type": "mrkdwn", "text": truncate_mrkdwn(p, MAX_CONTEXT_TEXT)}
        for p in parts[:MAX_CONTEXT_ELEMENTS]
    ]
    if not elements:
        elements = [{"type": "mrkdwn", "text": escape_mrkdwn(message.status_text)}]
    return {"type": "context", "elements": elements}


def _links_line(links: Iterable[Link]) -> str:
    return " · ".join(mrkdwn_link(link.url, link.title) for link in links)


def _notes_block(notes: Sequence[str]) -> dict[str, Any] | None:
    lines = [escape_mrkdwn(truncate_plain(" ".join(n.split()), _NOTE_BUDGET)) for n in notes]
    lines = [line for line in lines if line]
    if not lines:
        return None
    text = truncate_mrkdwn("\n".join(f":information_source: {line}" for line in lines), 3000)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _labels_line(labels: Mapping[str, str]) -> str:
    parts = [inline_code(f"{k}={v}") for k, v in labels.items()]
    line = " ".join(parts)
    return truncate_mrkdwn(line, _LABELS_BUDGET, marker=" " + ELLIPSIS)


def _alert_section(alert: AlertView, *, logs_left_out: bool = False) -> dict[str, Any]:
    firing = alert.status is Status.FIRING
    dot = ":red_circle:" if firing else ":large_green_circle:"
    name = escape_mrkdwn(truncate_plain(" ".join(alert.alertname.split()), 200)) or "alert"
    line = f"{dot} *{name}*"
    if not firing:
        line += " (resolved)"
    summary = " ".join(alert.summary.split())
    if summary:
        line += " — " + escape_mrkdwn(truncate_plain(summary, _SUMMARY_BUDGET))
    lines = [line]
    if alert.description:
        lines.append(escape_mrkdwn(truncate_plain(alert.description.strip(), _DESCRIPTION_BUDGET)))
    if alert.extra_labels:
        lines.append(_labels_line(alert.extra_labels))
    when: list[str] = []
    if alert.starts_at is not None:
        when.append(f"Started {slack_date(alert.starts_at)}")
    if not firing and alert.ends_at is not None:
        when.append(f"resolved {slack_date(alert.ends_at)}")
    links = _links_line(alert_links(alert))
    tail = " · ".join([*when, links] if links else when)
    if tail:
        lines.append(tail)
    logs = alert.logs
    if logs_left_out:
        lines.append("_Logs: left out, this message is full (the Explore link has them)_")
    elif logs is not None and not logs.lines and logs.note:
        note = escape_mrkdwn(truncate_plain(" ".join(logs.note.split()), _NOTE_BUDGET))
        lines.append(f"_Logs: {note}_")
    return section("\n".join(lines))


def _code_line(line: str, width: int) -> str:
    # Inside a ``` block Slack still parses `<...>` and ends the block at the next ```.
    # Escaping handles the first; a zero-width space after every backtick means no run of
    # three backticks survives, so a log line can never close our fence.
    flat = line.replace("\r", " ").replace("\n", " ").replace("\t", "    ")
    safe = escape_mrkdwn(flat).replace("`", "`" + _ZWSP)
    return truncate_mrkdwn(safe, width, marker=ELLIPSIS)


def _logs_section(logs: LogExcerpt) -> dict[str, Any]:
    head = "*Logs*"
    if logs.query:
        head += " " + inline_code(truncate_plain(logs.query, _LOG_QUERY_BUDGET))
    if logs.note:
        head += "\n_" + escape_mrkdwn(truncate_plain(" ".join(logs.note.split()), _NOTE_BUDGET))
        head += "_"
    lines = list(logs.lines)
    # Room for: head, the fences with their newlines, and a "… N more lines" tail.
    budget = MAX_SECTION_TEXT - len(head) - len("\n```\n") - len("\n```") - 40
    # Give every line the same width so all of them show, but never fewer than
    # _MIN_LOG_LINE characters; when even that does not fit, later lines are dropped.
    width = max(budget // max(len(lines), 1) - 1, _MIN_LOG_LINE)
    shown: list[str] = []
    used = 0
    for raw in lines:
        line = _code_line(raw, width) or " "
        if used + len(line) + 1 > budget:
            break
        shown.append(line)
        used += len(line) + 1
    text = head + "\n```\n" + "\n".join(shown) + "\n```"
    if len(shown) < len(lines):
        text += f"\n{ELLIPSIS} {plural(len(lines) - len(shown), 'more line')}"
    return section(text)


def _alert_blocks(alert: AlertView) -> list[dict[str, Any]]:
    blocks = [_alert_section(alert)]
    if alert.logs is not None and alert.logs.lines:
        blocks.append(_logs_section(alert.logs))
    return blocks


def _overflow_block(hidden: int, message: Message) -> dict[str, Any]:
    text = f"... and {plural(hidden, 'more alert')}"
    if message.external_url:
        text += " · " + mrkdwn_link(message.external_url, "Open Alertmanager")
    return section(text)


def build_blocks(
    message: Message,
    *,
    mention: str = "",
    updated_at: datetime | None = None,
    threaded: bool = True,
    buttons: Buttons | None = None,
) -> tuple[list[Any], list[Any]]:
    """The top-level blocks and the attachment blocks; together at most 50 blocks and
    MAX_MESSAGE_TEXT characters.

    `mention` is inserted as is (it is trusted configuration such as `<!subteam^S01>`); pass
    it only when `mention_allowed` says so and the message is a fresh post. `updated_at`
    (for an edited message) adds "Updated <time>" to the context line. A digest lists no
    alert itself but says where they are: in its thread, or (`threaded` false, an incoming
    webhook) in the messages after it.
    """
    top: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": header_text(message), "emoji": True},
        }
    ]
    if mention:
        what = "critical alert firing" if len(message.firing) == 1 else "critical alerts firing"
        top.append(section(f"{mention} {what}"))
    # Room for the status line and the buttons however the group's state changes later.
    spare = 0
    if buttons is not None:
        interactive = interactive_blocks(buttons)
        top.extend(interactive)
        spare = max(2 - len(interactive), 0)

    head: list[dict[str, Any]] = [_fields_block(message), _context_block(message, updated_at)]
    links = _links_line(message.links)
    if links:
        head.append(section(f"*Links:* {links}"))
    notes = _notes_block(message.notes)
    if notes is not None:
        head.append(notes)

    if message.digest is not None:
        # A digest's alerts are listed after it (build_digest_chunks): here only where.
        return list(top), [*head, digest_pointer(message, threaded)]

    alerts = message.alerts
    room = MAX_BLOCKS - len(top) - len(head) - spare
    # Room for the "... and N more" marker is kept in both budgets (and for a status line).
    text_room = MAX_MESSAGE_TEXT - _text_size([*top, *head]) - _MARKER_TEXT - 200 * spare
    body: list[dict[str, Any]] = []
    used = 0
    shown = 0
    for index, alert in enumerate(alerts):
        blocks = _alert_blocks(alert)
        remaining_after = len(alerts) - index - 1
        # Keep one block free for the "... and N more" marker unless this is the last alert.
        reserve = 1 if remaining_after else 0
        if len(body) + len(blocks) + reserve > room or used + _text_size(blocks) > text_room:
            fits_alone = used + _text_size(blocks[:1]) <= text_room
            if len(blocks) > 1 and len(body) + 1 + reserve <= room and fits_alone:
                # Out of room for the log excerpt: show the alert without it, saying so.
                blocks = [_alert_section(alert, logs_left_out=True)]
            else:
                break
        body.extend(blocks)
        used += _text_size(blocks)
        shown += 1
    if shown < len(alerts):
        body.append(_overflow_block(len(alerts) - shown, message))
    return list(top), [*head, *body]


# The text an "... and N more alerts · Open Alertmanager" marker may take.
_MARKER_TEXT = 400


def _text_size(blocks: Iterable[Mapping[str, Any]]) -> int:
    """Characters of text in `blocks`, as Slack counts them against a message's total."""
    total = 0
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            total += len(str(text.get("text", "")))
        for key in ("fields", "elements"):
            for item in block.get(key) or ():
                if isinstance(item, dict) and isinstance(item.get("text"), str):
                    total += len(item["text"])
    return total


def build_message_payload(
    message: Message,
    *,
    mention: str = "",
    updated_at: datetime | None = None,
    threaded: bool = True,
    buttons: Buttons | None = None,
) -> SlackPayload:
    """The whole chat.postMessage / chat.update / webhook body for a notification, with
    `buttons` (bot-token messages of firing groups, when interactivity is on).

    Never fails and always stays inside Slack's limits, whatever the message holds.
    """
    top, attached = build_blocks(
        message, mention=mention, updated_at=updated_at, threaded=threaded, buttons=buttons
    )
    text = fallback_text(message, mention)
    return {
        "text": text,
        "blocks": top,
        "attachments": [
            {
                "color": message_color(message),
                "fallback": text,
                "blocks": attached,
            }
        ],
    }


def _names(alerts: Sequence[AlertView], limit: int = 10) -> str:
    """`Name (summary)` per distinct alert kind, `×n` for repeats, at most `limit` kinds."""
    counts: dict[tuple[str, str], int] = {}
    for alert in alerts:
        key = (alert.alertname or "alert", " ".join(alert.summary.split()))
        counts[key] = counts.get(key, 0) + 1
    shown: list[str] = []
    for (name, summary), count in list(counts.items())[:limit]:
        text = escape_mrkdwn(truncate_plain(name, 100))
        if count > 1:
            text += f" ×{count}"
        if summary:
            text += f" ({escape_mrkdwn(truncate_plain(summary, 150))})"
        shown.append(text)
    text = ", ".join(shown)
    if len(counts) > limit:
        text += f" … and {len(counts) - limit} more"
    return text


def build_thread_reply(
    message: Message,
    *,
    previously_firing: Collection[str] | None,
    mention: str = "",
) -> SlackPayload:
    """A short thread reply saying what changed since the parent message was last updated.

    `previously_firing` holds the fingerprints the thread already announced as firing
    (None when unknown). `mention` is prepended as is: pass it only for new critical alerts.
    """
    known = set(previously_firing) if previously_firing is not None else None
    firing = list(message.firing)
    new = [a for a in firing if known is None or a.fingerprint not in known]
    newly_resolved = [a for a in message.resolved if known is None or a.fingerprint in known]
    # Alertmanager told nothing: the router saw it gone while silenced (issue 23).
    polled = " while silenced" if message.reason == "resolved_while_silenced" else ""
    if message.status is Status.RESOLVED:
        text = f":white_check_mark: All resolved{polled}"
        if message.resolved_after is not None:
            text += f" after {format_duration(message.resolved_after)}"
        if message.resolved:
            text += f": {_names(message.resolved)}"
    elif message.reason == "repeat":
        text = f":repeat: Still firing (reminder): {plural(len(firing), 'alert')}"
        text += f" — {_names(firing)}"
    elif message.reason == "new_alerts" and new:
        label = "new alert" if known is not None else "alert"
        text = f":red_circle: {plural(len(new), label)} firing: {_names(new)}"
        if newly_resolved:
            text += f"\n:large_green_circle: {len(newly_resolved)} resolved: "
            text += _names(newly_resolved)
    elif message.resolved:
        text = f":large_green_circle: {len(newly_resolved or message.resolved)} resolved{polled}: "
        text += _names(newly_resolved or message.resolved)
        text += f"\nStill firing: {plural(len(firing), 'alert')}"
    else:
        text = f"Updated: {escape_mrkdwn(message.status_text)} — {_names(firing)}"
    if mention:
        text = f"{mention} {text}"
    return {"text": truncate_mrkdwn(text, REPLY_TEXT_LIMIT, marker=ELLIPSIS)}
