"""The route tester: which receivers an alert with given labels reaches, at a given time,
whether what fires now inhibits it, and what Slack and email would be sent."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2

from router.channels.email import MAX_SUBJECT_CHARS
from router.channels.slack.blocks import build_message_payload
from router.durations import format_duration
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import build_message
from router.render.templates import oneline, template_env
from router.routetest.runner import Routing
from router.runtime import Runtime

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BadLabels(ValueError):
    """The tester's input cannot be read; the message says what to write instead."""


def parse_labels(text: str) -> dict[str, str]:
    """`env=prod severity=critical` (a value with spaces in quotes) as a label set."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise BadLabels(f"labels: {exc}") from None
    labels: dict[str, str] = {}
    for word in words:
        name, eq, value = word.partition("=")
        if not eq or not _NAME.fullmatch(name):
            raise BadLabels(f"labels: {word!r} is not name=value (e.g. env=prod severity=critical)")
        labels[name] = value
    if not labels:
        raise BadLabels("labels: give at least one name=value, e.g. alertname=CPUHigh env=prod")
    return labels


def parse_at(text: str) -> datetime | None:
    """An RFC 3339 time (`2026-12-01T03:00:00Z`), or None for an empty field."""
    text = text.strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadLabels(f"at: {text!r} is not an RFC 3339 time like 2026-12-01T03:00:00Z") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Preview:
    """What one receiver would be sent: the Slack text, or the email subject, or neither."""

    receiver: str
    integration: str
    # The notification's title, as every integration states it.
    title: str = ""
    slack_lines: Sequence[str] = ()
    email_subject: str = ""
    # The mail's text part, as a mail client without HTML shows it.
    email_text: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    labels: Mapping[str, str]
    at: datetime
    # (route path, receiver, why muted or "") in delivery order.
    matched: Sequence[tuple[str, str, str]]
    receivers: Sequence[str]
    muted: Sequence[str]
    # The rule and the firing alert that inhibit it, if any.
    inhibited_by: tuple[str, Mapping[str, str]] | None
    previews: Sequence[Preview] = field(default_factory=list)
    # (receiver, its escalation steps in words) of each matched route that escalates.
    escalations: Sequence[tuple[str, str]] = ()

    @property
    def at_text(self) -> str:
        return self.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _slack_lines(payload: Mapping[str, Any]) -> list[str]:
    """The texts of a Slack payload's blocks, one per line, as a reader sees them."""
    lines: list[str] = []

    def visit(block: Mapping[str, Any]) -> None:
        text = block.get("text")
        if isinstance(text, Mapping) and isinstance(text.get("text"), str):
            lines.append(text["text"])
        for part in block.get("fields") or ():
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                lines.append(part["text"])
        for part in block.get("elements") or ():
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                lines.append(part["text"])

    for block in payload.get("blocks") or ():
        visit(block)
    for attachment in payload.get("attachments") or ():
        for block in attachment.get("blocks") or ():
            visit(block)
    return lines


def _preview(runtime: Runtime, route: RouteSettings, event: Event, at: datetime) -> Preview:
    receiver = runtime.config.receiver(route.receiver)
    notification = Notification(
        id="route-test", route=route, group_key=event.group_key, events=[event], created_at=at
    )
    message = build_message(notification, "first", now=at)
    integration = receiver.integration
    title = message.title
    if receiver.slack is not None:
        lines = _slack_lines(build_message_payload(message))
        return Preview(route.receiver, integration, title, slack_lines=lines)
    if receiver.email is not None:
        env = template_env(runtime.config.templates_dir)
        try:
            template = env.get_template("email.subject.j2")
            subject = oneline(template.render(message=message, now=at), MAX_SUBJECT_CHARS)
            text = env.get_template("email.txt.j2").render(message=message, now=at)
        except jinja2.TemplateError as exc:
            return Preview(route.receiver, integration, title, error=f"email template: {exc}")
        return Preview(route.receiver, integration, title, email_subject=subject, email_text=text)
    return Preview(route.receiver, integration, title)


def try_route(
    runtime: Runtime,
    given: Mapping[str, str],
    at: datetime,
    firing: Sequence[Mapping[str, str]],
) -> Answer:
    """What the running config does with an alert labelled `given` at `at`, while the alerts
    `firing` fire (normalized labels, as the store keeps them)."""
    routing = Routing(runtime.config)
    labels = routing.labels(given)
    matched: list[tuple[str, str, str]] = []
    receivers: list[str] = []
    muted: list[str] = []
    routes = runtime.tree.match(labels)
    for route in routes:
        why = runtime.intervals.mute_reason(route, at) or ""
        matched.append((route.path, route.receiver, why))
        (muted if why else receivers).append(route.receiver)
    found = runtime.inhibitor.inhibition(labels, [f for f in firing if f != labels])
    inhibited_by = (found[0].name, found[1]) if found is not None else None
    event = Event(
        source=labels.get("source", "alertmanager"),
        fingerprint="route-test",
        group_key="route-test",
        status=Status.FIRING,
        labels=labels,
        starts_at=at,
    )
    previews = [_preview(runtime, r, event, at) for r in routes]
    escalations = [
        (r.receiver, ", then ".join(f"after {format_duration(a)} {to}" for a, to in r.escalate))
        for r in routes
        if r.escalate
    ]
    return Answer(labels, at, matched, receivers, muted, inhibited_by, previews, escalations)
