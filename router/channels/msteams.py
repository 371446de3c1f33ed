"""Microsoft Teams delivery through a Workflows webhook: an Adaptive Card per notification.

The card reads like our Slack message: the title in the status colour (Attention for
critical, Warning, Good once resolved), the facts (status, env, severity, alert, app,
namespace), each alert with its summary, description, labels and Loki lines (monospace),
the notes, and the links as `Action.OpenUrl` buttons. A Workflows URL cannot edit what it
posted, so every notification is a new card: the resolve too.

Workflows takes about 28 KB per message: alerts beyond what fits are counted, not shown,
and the card links to the console for the rest. Posts are paced per webhook URL like
Slack's per channel (router/notify/pacing.py): a backlog becomes one digest card listing
its alerts. Answers: 2xx delivered; 429 (throttled) and 5xx retried; other 4xx, such as a
card Teams refuses, permanent. The URL carries its signature: it is a secret, scrubbed
from every error text.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from router.channels.base import PaceSettings, SlotGate
from router.channels.http import USER_AGENT, JsonPoster, status_error
from router.config.schema import MSTeamsReceiver
from router.model import Status
from router.render.message import (
    AlertView,
    Link,
    Message,
    alert_links,
    message_facts,
    top_severity,
)
from router.render.text import plural, severity_rank
from router.secrets import url_secrets

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.2"
# Workflows refuses messages over about 28 KB; a margin for its own envelope.
MAX_MESSAGE_BYTES = 27_000
MAX_ALERTS_SHOWN = 20
MAX_ACTIONS = 6
MAX_TEXT = 2000
# Teams has no published per-URL rate; Slack's one post a second per channel is a safe pace.
DEFAULT_PACE = PaceSettings(interval=1.0, digest_threshold=5)
# A throttled flow is asked again after this long when it gives no Retry-After.
RATE_LIMIT_WAIT = 10.0

# What Teams' Markdown subset reads as formatting (emphasis, links, code; lists at a line's
# start); alert text shows it literally.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>~#])")
_BULLET = re.compile(r"^(\s*)([-+])(\s)", re.M)
_NUMBERED = re.compile(r"^(\s*)(\d+)\.(\s)", re.M)


def escape_markdown(text: str) -> str:
    """`text` shown as written in a TextBlock (no emphasis, links or lists of its own)."""
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _BULLET.sub(r"\1\\\2\3", text)
    return _NUMBERED.sub(r"\1\2\\.\3", text)


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def title_color(message: Message) -> str:
    """Good once resolved; Attention for critical, Warning for the rest while firing."""
    if message.status is Status.RESOLVED:
        return "Good"
    return "Attention" if severity_rank(top_severity(message)) == 0 else "Warning"


def _facts(message: Message) -> dict[str, Any]:
    pairs = [*message_facts(message), ("Receiver", message.receiver)]
    facts = [{"title": t, "value": escape_markdown(_cut(v, 300))} for t, v in pairs if v]
    return {"type": "FactSet", "facts": facts}


def _alert_blocks(alert: AlertView) -> list[dict[str, Any]]:
    status = "" if alert.status is Status.FIRING else " (resolved)"
    head = f"**{escape_markdown(_cut(alert.alertname or 'alert', 200))}**{status}"
    if alert.summary:
        head += " — " + escape_markdown(_cut(" ".join(alert.summary.split()), 500))
    blocks = [_text(head, separator=True)]
    if alert.description:
        blocks.append(_text(escape_markdown(_cut(alert.description.strip()))))
    labels = alert.extra_labels
    if labels:
        line = ", ".join(f"{k}={v}" for k, v in labels.items())
        blocks.append(_text(escape_markdown(_cut(line, 1000)), isSubtle=True, size="Small"))
    logs = alert.logs
    if logs is not None and logs.lines:
        # A code block: monospace lines on a shaded container, as Slack's ``` block.
        code = "\n\n".join(escape_markdown(_cut(line, 300)) for line in logs.lines)
        blocks.append(
            {
                "type": "Container",
                "style": "emphasis",
                "items": [_text(code, fontType="Monospace", size="Small")],
            }
        )
    elif logs is not None and logs.note:
        blocks.append(_text(escape_markdown(_cut(logs.note, 300)), isSubtle=True, size="Small"))
    return blocks


def _actions(links: Sequence[Link]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for link in links:
        if link.url in seen:
            continue
        seen.add(link.url)
        out.append({"type": "Action.OpenUrl", "title": _cut(link.title, 60), "url": link.url})
    return out[:MAX_ACTIONS]


def envelope(card: Mapping[str, Any]) -> dict[str, Any]:
    """The Workflows message that carries one card."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "full"},
    }
    if actions:
        card["actions"] = actions
    return card


def size_of(message: Mapping[str, Any]) -> int:
    """Bytes of the message as posted."""
    return len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def message_card(message: Message, *, max_alerts: int = MAX_ALERTS_SHOWN) -> dict[str, Any]:
    """The Workflows message for a notification, within MAX_MESSAGE_BYTES."""
    links: list[Link] = [*message.links]
    for alert in message.alerts:
        links += alert_links(alert)
    actions = _actions(links)
    shown = min(len(message.alerts), max_alerts)
    while True:
        body = [
            _text(
                escape_markdown(_cut(" ".join(message.title.split()), 300)),
                weight="Bolder",
                size="Large",
                color=title_color(message),
            ),
            _facts(message),
        ]
        for alert in message.alerts[:shown]:
            body += _alert_blocks(alert)
        hidden = len(message.alerts) - shown
        if hidden:
            where = " (all of them on the alert-router page)" if message.links else ""
            body.append(_text(f"…and {plural(hidden, 'more alert')}{where}.", isSubtle=True))
        for note in message.notes:
            body.append(_text(escape_markdown(_cut(note, 500)), isSubtle=True, size="Small"))
        out = envelope(_card(body, actions))
        if size_of(out) <= MAX_MESSAGE_BYTES or shown == 0:
            return out
        shown //= 2


def digest_card(digest: Message) -> dict[str, Any]:
    """A digest: its title and counts, then one line per alert for as many as fit; the rest
    are on its listing page."""
    assert digest.digest is not None
    listing = digest.digest
    head = [
        _text(
            escape_markdown(digest.title), weight="Bolder", size="Large", color=title_color(digest)
        ),
        *(_text(escape_markdown(_cut(note, 500)), size="Small") for note in digest.notes),
    ]
    if listing.shared_labels:
        shared = ", ".join(f"{k}={v}" for k, v in sorted(listing.shared_labels.items()))
        head.append(_text("Shared: " + escape_markdown(_cut(shared, 1000)), isSubtle=True))
    actions = [{"type": "Action.OpenUrl", "title": "Every alert", "url": listing.listing_url}]
    if not listing.listing_url.startswith(("http://", "https://")):
        actions = []
    lines: list[str] = []
    budget = MAX_MESSAGE_BYTES - size_of(envelope(_card(head, actions))) - 600
    for entry in listing.entries:
        alert = entry.alert
        mark = "🔴" if alert.status is Status.FIRING else "✅"
        labels = ", ".join(f"{k}={v}" for k, v in entry.labels.items())
        line = f"{mark} **{escape_markdown(_cut(alert.alertname or 'alert', 100))}**"
        if labels:
            line += " " + escape_markdown(_cut(labels, 300))
        cost = len(json.dumps(line, ensure_ascii=False).encode("utf-8"))
        if cost > budget:
            break
        budget -= cost
        lines.append(line)
    body = [*head, _text("\n\n".join(lines), separator=True)] if lines else head
    left = len(listing.entries) - len(lines)
    if left:
        body.append(_text(f"…and {plural(left, 'more alert')}: see Every alert.", isSubtle=True))
    return envelope(_card(body, actions))


class MSTeamsChannel:
    """Posts each notification as a new card to one Teams Workflows webhook."""

    integration = "msteams"

    def __init__(
        self,
        name: str,
        cfg: MSTeamsReceiver,
        *,
        http: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
        pace: PaceSettings = DEFAULT_PACE,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.pace = pace
        self._clock = clock
        url = cfg.webhook_url.get_secret_value()
        self._url_hash = hashlib.sha256(url.encode()).hexdigest()[:16]
        self._poster = JsonPoster(url, http=http, timeout=cfg.timeout, secrets=url_secrets(url))

    @property
    def pace_key(self) -> str:
        """`msteams|<sha256 of the URL, 16 hex>`: one flow posts into one channel."""
        return f"msteams|{self._url_hash}"

    @property
    def destination(self) -> str:
        return f"for {self.name}"

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        """Post the card; returns `{"status": "<http status>"}`. Raises DeliveryError."""
        return await self._post(message_card(message))

    async def send_digest(self, digest: Message, slots: SlotGate) -> Mapping[str, str]:
        """Post a digest card on the next slot."""
        await slots.next()
        return await self._post(digest_card(digest))

    async def _post(self, card: Mapping[str, Any]) -> Mapping[str, str]:
        body = json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        answer = await self._poster.post(body, headers)
        if answer.ok:
            return {"status": str(answer.status)}
        where = f"Teams workflow {self._poster.origin} (receiver {self.name})"
        raise status_error(
            answer, where, self._clock(), detail=answer.excerpt(), rate_limit_wait=RATE_LIMIT_WAIT
        )

    async def close(self) -> None:
        """Nothing to release: its connections belong to the shared HTTP pool."""
