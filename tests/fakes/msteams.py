"""A fake Teams Workflows trigger ("When a Teams webhook request is received") on loopback.

    async with FakeTeams() as teams:
        url = teams.url                       # .../paths/invoke?api-version=1&sig=...
        teams.script(429, headers={"Retry-After": "1"})
        ... send ...
        [card] = teams.cards                  # the Adaptive Card contents, in order

What it checks, as the flow does (facts: receivers.md): a JSON object with `type:
"message"` and a non-empty `attachments` list, each with `contentType:
"application/vnd.microsoft.card.adaptive"` and a `content` card with `type:
"AdaptiveCard"`, a `version`, a `body` list whose elements have a known `type`
(TextBlock with `text`, FactSet with `facts` of string `title`/`value`, Container with
`items`) and `actions` of `Action.OpenUrl` with a title and an http(s) `url`; at most
MAX_BYTES in all. The right `sig` query is required (401 otherwise). Answers 202; a bad
message 400, an oversized one 413; scripted answers first.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

CARD = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 28 * 1024
SIGNATURE = "fAkE-SiGnAtUrE-0123456789"
PATH = "/workflows/0a1b2c3d/triggers/manual/paths/invoke"
ELEMENTS = ("TextBlock", "FactSet", "Container", "ColumnSet", "Image")


@dataclass(frozen=True)
class Scripted:
    status: int
    body: str
    headers: dict[str, str]


def _element_errors(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or element.get("type") not in ELEMENTS:
        return [f"{where}: unknown element type"]
    kind = element["type"]
    if kind == "TextBlock" and not isinstance(element.get("text"), str):
        return [f"{where}: TextBlock needs text"]
    if kind == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not all(
            isinstance(f, dict)
            and isinstance(f.get("title"), str)
            and isinstance(f.get("value"), str)
            for f in facts
        ):
            return [f"{where}: FactSet facts need string title and value"]
    if kind == "Container":
        items = element.get("items")
        if not isinstance(items, list):
            return [f"{where}: Container needs items"]
        return [
            e for i, item in enumerate(items) for e in _element_errors(item, f"{where}.items[{i}]")
        ]
    return []


def validate(message: Any) -> list[str]:
    """Why the flow would refuse `message`; empty when it is accepted."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ["type must be 'message'"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["attachments must be a non-empty list"]
    errors: list[str] = []
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD:
            errors.append(f"{where}.contentType must be {CARD}")
            continue
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            errors.append(f"{where}.content must be an AdaptiveCard")
            continue
        if not isinstance(card.get("version"), str) or not card.get("$schema"):
            errors.append(f"{where}.content needs $schema and a version")
        body = card.get("body")
        if not isinstance(body, list) or not body:
            errors.append(f"{where}.content.body must be a non-empty list")
            continue
        for i, element in enumerate(body):
            errors += _element_errors(element, f"{where}.content.body[{i}]")
        for i, action in enumerate(card.get("actions", [])):
            ok = (
                isinstance(action, dict)
                and action.get("type") == "Action.OpenUrl"
                and isinstance(action.get("title"), str)
                and str(action.get("url", "")).startswith(("http://", "https://"))
            )
            if not ok:
                errors.append(f"{where}.content.actions[{i}] must be Action.OpenUrl with a url")
    return errors


class FakeTeams(LoopbackServer):
    """Records every request; accepts valid cards unless a reply is scripted."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[bytes] = []
        self.cards: list[dict[str, Any]] = []
        self._script: deque[Scripted] = deque()
        self._arrived = asyncio.Condition()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self._invoke)
        return app

    @property
    def url(self) -> str:
        return f"{self.base_url}{PATH}?api-version=1&sig={SIGNATURE}"

    def script(self, status: int, *, body: str = "", headers: dict[str, str] | None = None) -> None:
        self._script.append(Scripted(status, body or f"scripted {status}", dict(headers or {})))

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until at least `count` cards were accepted; bound it with asyncio.timeout."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.cards) >= count)
        return list(self.cards)

    @staticmethod
    def texts(card: dict[str, Any]) -> list[str]:
        """Every TextBlock's text of a card, in reading order (containers included)."""
        out: list[str] = []

        def walk(elements: list[dict[str, Any]]) -> None:
            for element in elements:
                if element.get("type") == "TextBlock":
                    out.append(element["text"])
                walk(element.get("items", []))

        walk(card["body"])
        return out

    async def _invoke(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append(raw)
        if request.query.get("sig") != SIGNATURE:
            return web.json_response(
                {"error": {"code": "DirectApiAuthorizationRequired"}}, status=401
            )
        if self._script:
            answer = self._script.popleft()
            return web.Response(status=answer.status, text=answer.body, headers=answer.headers)
        if len(raw) > MAX_BYTES:
            return web.Response(status=413, text="RequestEntityTooLarge")
        try:
            message = json.loads(raw)
        except ValueError:
            return web.json_response({"error": {"code": "InvalidRequestContent"}}, status=400)
        errors = validate(message)
        if errors:
            return web.json_response(
                {"error": {"code": "InvalidRequestContent", "message": "; ".join(errors)}},
                status=400,
            )
        async with self._arrived:
            self.cards.extend(a["content"] for a in message["attachments"])
            self._arrived.notify_all()
        return web.Response(status=202)
