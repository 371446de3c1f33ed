"""The Slack payload builder: what people see, and that it always fits Slack's limits."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from router.channels.slack.blocks import (
    COLOR_CRITICAL,
    COLOR_INFO,
    COLOR_RESOLVED,
    COLOR_WARNING,
    build_message_payload,
    build_thread_reply,
    mention_allowed,
)
from router.channels.slack.digest import build_digest_chunks
from router.channels.slack.mrkdwn import TRUNCATED, mrkdwn_link, truncate_mrkdwn
from router.model import Event, Notification, RouteSettings, Status
from router.notify.digest import build_digest
from router.render.message import Link, LogExcerpt, Message, build_message
from router.render.text import escape_mrkdwn
from tests.fakes.slack import MAX_BLOCKS_TEXT, block_errors, blocks_text_size

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ROUTE_PATH = 'routes[1] env="prod", severity="critical"'
ROUTE = RouteSettings(
    receiver="slack-prod", path=ROUTE_PATH, repeat_interval=14400.0, send_resolved=True
)
MENTION = "<!subteam^S0123ONCALL>"


def make_event(
    fingerprint: str = "fp1",
    *,
    status: Status = Status.FIRING,
    alertname: str = "HighErrorRate",
    severity: str = "critical",
    env: str = "prod",
    labels: Mapping[str, str] | None = None,
    summary: str = "5xx ratio above 5%",
    description: str = "",
    source: str = "alertmanager",
    starts_at: datetime = T0,
    ends_at: datetime | None = None,
    generator_url: str = "",
    details: Mapping[str, str] | None = None,
) -> Event:
    """An Alertmanager-like event with the normalized labels routes see."""
    all_labels = {
        "alertname": alertname,
        "env": env,
        "severity": severity,
        "source": source,
        "instance": f"10.0.0.1:{fingerprint}",
        **(labels or {}),
    }
    annotations = {"summary": summary} if summary else {}
    if description:
        annotations["description"] = description
    if status is Status.RESOLVED and ends_at is None:
        ends_at = starts_at + timedelta(minutes=14)
    return Event(
        source=source,
        fingerprint=fingerprint,
        group_key='{}:{alertname="HighErrorRate"}',
        status=status,
        labels=all_labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
        external_url="http://alertmanager.example.com",
        details=details or {},
    )


def make_message(events: Sequence[Event], reason: str = "first", **changes: Any) -> Message:
    """`build_message` over a notification of these events, then any field replaced."""
    notification = Notification(
        id="n-1", route=ROUTE, group_key=events[0].group_key, events=events, created_at=T0
    )
    message = build_message(notification, reason)
    return dataclasses.replace(message, **changes) if changes else message


def with_logs(message: Message, logs: LogExcerpt) -> Message:
    """The message with the same log excerpt on every alert."""
    return dataclasses.replace(
        message,
        firing=[dataclasses.replace(a, logs=logs) for a in message.firing],
        resolved=[dataclasses.replace(a, logs=logs) for a in message.resolved],
    )


def all_blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = list(payload["blocks"])
    for attachment in payload["attachments"]:
        blocks += attachment["blocks"]
    return blocks


def mrkdwn_texts(payload: Mapping[str, Any]) -> list[str]:
    """Every mrkdwn string Slack would parse for mentions and links, and the fallback."""
    texts = [str(payload["text"])]
    for block in all_blocks(payload):
        text = block.get("text")
        if isinstance(text, dict) and text["type"] == "mrkdwn":
            texts.append(text["text"])
        for item in [*block.get("fields", []), *block.get("elements", [])]:
            if item.get("type") == "mrkdwn":
                texts.append(item["text"])
    return texts


def assert_within_limits(payload: Mapping[str, Any]) -> None:
    """Slack would accept it: fake Slack's validator and the combined 50-block budget."""
    assert block_errors(payload["blocks"]) == []
    for index, attachment in enumerate(payload["attachments"]):
        assert block_errors(attachment["blocks"], f"/attachments/{index}/blocks") == []
    assert len(all_blocks(payload)) <= 50
    assert blocks_text_size(all_blocks(payload)) <= MAX_BLOCKS_TEXT
    assert 0 < len(payload["text"]) <= 40000


def sections(payload: Mapping[str, Any]) -> list[str]:
    return [
        b["text"]["text"] for b in all_blocks(payload) if b["type"] == "section" and "text" in b
    ]


def test_first_post_has_header_fields_context_and_a_section_per_alert() -> None:
    message = make_message([make_event("a"), make_event("b", summary="p99 latency 2s")])
    payload = build_message_payload(message)

    assert_within_limits(payload)
    [header] = payload["blocks"]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert "[FIRING:2] HighErrorRate" in header["text"]["text"]
    [attachment] = payload["attachments"]
    assert attachment["color"] == COLOR_CRITICAL
    kinds = [b["type"] for b in attachment["blocks"]]
    assert kinds == ["section", "context", "section", "section"]
    fields = "\n".join(f["text"] for f in attachment["blocks"][0]["fields"])
    assert "*Env*\nprod" in fields and "*Severity*\ncritical" in fields
    context = [e["text"] for e in attachment["blocks"][1]["elements"]]
    assert context[:3] == [
        "Source: alertmanager",
        "Receiver: slack-prod",
        'Route: routes[1] env="prod", severity="critical"',
    ]
    assert "<!date^" in context[3]
    # The group key is bookkeeping: it helps nobody reading the message.
    assert not any("alertname=" in text or "Group" in text for text in context)
    alert_a, alert_b = attachment["blocks"][2:]
    assert "*HighErrorRate* — 5xx ratio above 5%" in alert_a["text"]["text"]
    # The alert's own labels are listed; the context labels every header shows are not.
    assert "`instance=10.0.0.1:a`" in alert_a["text"]["text"]
    assert "`severity=" not in alert_a["text"]["text"]
    assert "p99 latency 2s" in alert_b["text"]["text"]
    assert payload["text"] == "[FIRING:2] HighErrorRate (prod critical): 5xx ratio above 5%"


def test_fallback_text_is_never_empty() -> None:
    message = make_message([make_event(summary="", alertname="")])
    payload = build_message_payload(message)
    assert payload["text"].strip()
    assert_within_limits(payload)


def test_label_values_cannot_ping_or_inject_links() -> None:
    event = make_event(
        labels={"team": "<!channel>", "owner": "<@U123> & co", "url": "<http://evil|click>"},
        summary="ping <!here> now",
        description="<!everyone> look",
    )
    payload = build_message_payload(make_message([event]))

    joined = "\n".join(mrkdwn_texts(payload))
    for raw in ("<!channel>", "<@U123>", "<http://evil", "<!here>", "<!everyone>"):
        assert raw not in joined
    assert "&lt;!channel&gt;" in joined
    assert "&lt;@U123&gt; &amp; co" in joined
    assert "ping &lt;!here&gt; now" in payload["text"]


def test_two_hundred_alerts_stay_within_limits_and_say_how_many_more() -> None:
    events = [make_event(f"fp{i:03d}", description="x" * 400) for i in range(200)]
    payload = build_message_payload(make_message(events))

    assert_within_limits(payload)
    blocks = all_blocks(payload)
    # As many as fit Slack's text total for one message, with the marker last.
    assert 10 < len(blocks) <= 50
    shown = sum(1 for text in sections(payload) if "*HighErrorRate*" in text)
    last = blocks[-1]["text"]["text"]
    assert last.startswith(f"... and {200 - shown} more alerts")
    assert "Open Alertmanager" in last


def test_log_excerpts_of_long_lines_fit_each_section() -> None:
    lines = [f"{i:02d} " + "level=error msg=boom " * 25 for i in range(15)]
    assert all(len(line) >= 500 for line in lines)
    logs = LogExcerpt(query='{app="backend"} |= "error"', lines=lines)
    message = with_logs(make_message([make_event("a"), make_event("b")]), logs)
    payload = build_message_payload(message)

    assert_within_limits(payload)
    log_sections = [t for t in sections(payload) if t.startswith("*Logs*")]
    assert len(log_sections) == 2
    for text in log_sections:
        assert len(text) <= 3000
        body = text.split("```")[1]
        # Every one of the 15 lines is there, each cut to fit, none dropped.
        assert [line[:2] for line in body.strip("\n").split("\n")] == [
            f"{i:02d}" for i in range(15)
        ]
        assert "…" in body


def test_log_line_with_a_fence_cannot_break_out_of_the_code_block() -> None:
    logs = LogExcerpt(lines=["before", "``` <!channel> *bold* ```", "after"])
    payload = build_message_payload(with_logs(make_message([make_event()]), logs))

    [text] = [t for t in sections(payload) if t.startswith("*Logs*")]
    assert text.count("```") == 2
    assert "<!channel>" not in text


def test_thousands_of_log_lines_are_cut_with_a_count() -> None:
    logs = LogExcerpt(lines=[f"line {i}" for i in range(1000)])
    payload = build_message_payload(with_logs(make_message([make_event()]), logs))

    assert_within_limits(payload)
    [text] = [t for t in sections(payload) if t.startswith("*Logs*")]
    assert text.count("```") == 2
    assert "more lines" in text.splitlines()[-1]


def test_why_there_are_no_logs_is_shown_on_the_alert() -> None:
    logs = LogExcerpt(query='{app="x"}', note="Loki: timed out after 2s")
    payload = build_message_payload(with_logs(make_message([make_event()]), logs))

    assert any("_Logs: Loki: timed out after 2s_" in t for t in sections(payload))
    assert not any(t.startswith("*Logs*") for t in sections(payload))


def test_long_header_is_cut_to_150_characters() -> None:
    payload = build_message_payload(make_message([make_event(alertname="A" * 400)]))

    header = payload["blocks"][0]["text"]["text"]
    assert len(header) == 150
    assert header.endswith("…")
    assert_within_limits(payload)


def test_huge_escaped_text_is_cut_inside_the_section_limit_with_a_marker() -> None:
    # 1200 kept characters of "&" become 6000 once escaped.
    event = make_event(description="&" * 5000, summary="<" * 600, labels={"k": ">" * 3000})
    payload = build_message_payload(make_message([event]))

    assert_within_limits(payload)
    alert_text = next(t for t in sections(payload) if "*HighErrorRate*" in t)
    assert alert_text.endswith(TRUNCATED)
    assert not alert_text[: -len(TRUNCATED)].endswith(("&", "&a", "&am", "&amp"))


def test_links_escape_urls_and_titles() -> None:
    link = mrkdwn_link("https://grafana/explore?a=1&b=<2>|3 x", "Logs | <errors>")
    assert link == "<https://grafana/explore?a=1&amp;b=%3C2%3E%7C3%20x|Logs ¦ &lt;errors&gt;>"
    # Anything but http(s)/mailto is shown as text, never as a link.
    assert mrkdwn_link("javascript:alert(1)", "click") == "click"


def test_message_links_alert_links_and_notes_are_rendered() -> None:
    message = make_message(
        [make_event(generator_url="http://prom:9090/graph?g0.expr=up&g0.tab=1")],
        links=[
            Link("Grafana Explore", "https://grafana.example.com/explore?left=%7B%7D"),
            Link("Silence", "http://alertmanager.example.com/#/silences/new?filter=%7B%7D"),
        ],
        notes=["Loki: timed out after 2s", "no dashboard matched"],
    )
    alert = dataclasses.replace(
        message.firing[0],
        runbook_url="https://runbooks.example.com/high-error-rate",
        links=[Link("Argo CD", "https://argocd.example.com/applications/backend")],
    )
    payload = build_message_payload(dataclasses.replace(message, firing=[alert]))

    assert_within_limits(payload)
    texts = "\n".join(mrkdwn_texts(payload))
    assert "*Links:* <https://grafana.example.com/explore?left=%7B%7D|Grafana Explore>" in texts
    assert "|Silence>" in texts
    assert "<http://prom:9090/graph?g0.expr=up&amp;g0.tab=1|Source>" in texts
    assert "<https://runbooks.example.com/high-error-rate|Runbook>" in texts
    assert "<https://argocd.example.com/applications/backend|Argo CD>" in texts
    assert "Loki: timed out after 2s" in texts and "no dashboard matched" in texts


def test_argocd_details_show_as_fields() -> None:
    event = make_event(
        alertname="on-sync-failed",
        source="argocd",
        labels={"app": "backend", "namespace": "prod"},
        summary="one or more objects failed to apply",
        details={
            "revision": "9f2c1e7",
            "syncStatus": "OutOfSync",
            "healthStatus": "Degraded",
            "operationPhase": "Failed",
            "message": "one or more objects failed to apply",
            "repoURL": "https://git.example.com/shop/deploy.git",
            "finishedAt": "2026-11-26T10:02:11Z",
        },
    )
    payload = build_message_payload(make_message([event]))

    assert_within_limits(payload)
    fields = [f["text"] for f in payload["attachments"][0]["blocks"][0]["fields"]]
    assert len(fields) == 10
    assert "*Trigger*\non-sync-failed" in fields
    assert "*App*\nbackend" in fields and "*Namespace*\nprod" in fields
    assert "*revision*\n9f2c1e7" in fields
    assert not any(f.startswith("*message*") for f in fields)


@pytest.mark.parametrize(
    ("severities", "status", "color"),
    [
        (["critical", "warning"], Status.FIRING, COLOR_CRITICAL),
        (["warning"], Status.FIRING, COLOR_WARNING),
        (["info"], Status.FIRING, COLOR_INFO),
        (["page-me"], Status.FIRING, COLOR_WARNING),
        (["critical"], Status.RESOLVED, COLOR_RESOLVED),
    ],
)
def test_colour_follows_severity_and_status(
    severities: list[str], status: Status, color: str
) -> None:
    events = [make_event(f"fp{i}", severity=s, status=status) for i, s in enumerate(severities)]
    payload = build_message_payload(make_message(events))
    assert payload["attachments"][0]["color"] == color


@pytest.mark.parametrize(
    ("reason", "severity", "status", "allowed"),
    [
        ("first", "critical", Status.FIRING, True),
        ("new_alerts", "critical", Status.FIRING, True),
        ("digest", "critical", Status.FIRING, True),
        ("first", "warning", Status.FIRING, False),
        ("repeat", "critical", Status.FIRING, False),
        ("resolved", "critical", Status.RESOLVED, False),
    ],
)
def test_mention_only_for_news_of_critical_firing_alerts(
    reason: str, severity: str, status: Status, allowed: bool
) -> None:
    message = make_message([make_event(severity=severity, status=status)], reason)
    assert mention_allowed(message) is allowed


def test_mention_is_in_a_section_and_the_fallback_text_when_given() -> None:
    payload = build_message_payload(make_message([make_event()]), mention=MENTION)

    assert payload["text"].startswith(MENTION + " ")
    assert payload["blocks"][1] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"{MENTION} critical alert firing"},
    }
    without = build_message_payload(make_message([make_event()]))
    assert MENTION not in "\n".join(mrkdwn_texts(without))


def test_thread_reply_names_new_alerts() -> None:
    message = make_message(
        [make_event("a"), make_event("b", alertname="DiskFull", summary="/ at 97%")],
        "new_alerts",
    )
    reply = build_thread_reply(message, previously_firing={"a"})
    assert reply == {"text": ":red_circle: 1 new alert firing: DiskFull (/ at 97%)"}


def test_thread_reply_says_how_long_until_all_resolved() -> None:
    message = make_message([make_event(status=Status.RESOLVED)], "resolved")
    reply = build_thread_reply(message, previously_firing={"fp1"})
    assert reply["text"].startswith(":white_check_mark: All resolved after 14m")
    # The parent message's note gives the same figure.
    assert "Resolved after 14m." in message.notes


def test_thread_reply_without_any_time_says_only_all_resolved() -> None:
    message = make_message([make_event(status=Status.RESOLVED)], "resolved", resolved_after=None)
    reply = build_thread_reply(message, previously_firing={"fp1"})
    assert reply["text"] == ":white_check_mark: All resolved: HighErrorRate (5xx ratio above 5%)"


def test_thread_reply_for_a_partial_resolve_and_a_reminder() -> None:
    partial = make_message([make_event("a"), make_event("b", status=Status.RESOLVED)], "resolved")
    text = build_thread_reply(partial, previously_firing={"a", "b"})["text"]
    assert text.startswith(":large_green_circle: 1 resolved: HighErrorRate")
    assert text.endswith("Still firing: 1 alert")

    repeat = make_message([make_event("a"), make_event("b")], "repeat")
    text = build_thread_reply(repeat, previously_firing={"a", "b"})["text"]
    assert text == (
        ":repeat: Still firing (reminder): 2 alerts — HighErrorRate ×2 (5xx ratio above 5%)"
    )


def test_thread_reply_text_is_escaped() -> None:
    message = make_message([make_event(alertname="<!channel>")], "repeat")
    text = build_thread_reply(message, previously_firing=None)["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text


def test_truncate_mrkdwn_keeps_escapes_and_links_whole() -> None:
    text = escape_mrkdwn("a&b") + " <https://x.example.com/long|title> tail"
    for limit in range(len(TRUNCATED), len(text)):
        cut = truncate_mrkdwn(text, limit)
        assert len(cut) <= limit
        body = cut.removesuffix(TRUNCATED)
        assert body.count("<") == body.count(">")
        assert "&" not in body or body.count("&") == body.count(";")


def test_truncate_mrkdwn_closes_a_cut_code_block() -> None:
    text = "head\n```\n" + "x" * 5000 + "\n```"
    cut = truncate_mrkdwn(text, 3000)
    assert len(cut) <= 3000
    assert cut.count("```") == 2


# -- digests ---------------------------------------------------------------------------------


def storm(count: int, **event: Any) -> list[Message]:
    """One single-alert notification per pod of a crash-looping deployment."""
    return [
        make_message(
            [
                make_event(
                    f"fp{i}",
                    **{
                        "alertname": "KubePodCrashLooping",
                        "labels": {"namespace": "shop", "pod": f"web-{i}"},
                        "summary": f"Pod web-{i} is crash looping",
                        **event,
                    },
                )
            ]
        )
        for i in range(count)
    ]


def digest_posts(digest: Message) -> list[dict[str, Any]]:
    return [build_message_payload(digest), *build_digest_chunks(digest)]


def post_texts(post: Mapping[str, Any]) -> str:
    blocks = list(post["blocks"])
    for attachment in post.get("attachments", []):
        blocks += attachment["blocks"]
    return "\n".join([str(post["text"]), *(t for b in blocks for t in _block_texts(b))])


def _block_texts(block: Mapping[str, Any]) -> list[str]:
    texts = []
    if isinstance(block.get("text"), dict):
        texts.append(block["text"]["text"])
    texts += [item["text"] for item in [*block.get("fields", []), *block.get("elements", [])]]
    return texts


def test_digest_title_counts_alerts_and_names_the_channel() -> None:
    digest = build_digest(storm(19), destination="in #dev-alerts")
    payload = build_message_payload(digest)
    assert digest.title == "Digest: 19 alerts firing in #dev-alerts"
    assert payload["blocks"][0]["text"]["text"] == (
        ":rotating_light: Digest: 19 alerts firing in #dev-alerts"
    )
    # Not the first alert's summary: no one alert speaks for a digest.
    assert payload["text"] == "Digest: 19 alerts firing in #dev-alerts"
    mixed = build_digest([*storm(2), *storm(1, status=Status.RESOLVED)])
    assert mixed.title == "Digest: 2 alerts firing, 1 resolved"


def test_digest_top_keeps_the_counts_and_points_at_its_thread() -> None:
    digest = build_digest(storm(19), destination="in #dev-alerts")
    assert_within_limits(build_message_payload(digest, mention=MENTION))
    top = post_texts(build_message_payload(digest))
    assert "by alertname — KubePodCrashLooping: 19" in top
    assert "by env — prod: 19" in top
    assert "Every alert is listed in this thread" in top
    # The top lists no alert itself.
    assert "web-3" not in top


def test_digest_thread_lists_every_alert_once_with_what_tells_it_apart() -> None:
    digest = build_digest(storm(19), destination="in #dev-alerts")
    [chunk] = build_digest_chunks(digest)
    text = post_texts(chunk)
    lines = [line for line in text.splitlines() if line.startswith(":red_circle:")]
    assert len(lines) == 19
    assert lines[0] == (
        ":red_circle: *KubePodCrashLooping* `instance=10.0.0.1:fp0` `pod=web-0`"
        " — Pod web-0 is crash looping"
    )
    # What every alert shares is said once, at the top of the list.
    assert "every alert has `env=prod` `namespace=shop` `severity=critical`" in text
    assert "Alerts 1–19 of 19" in text


def test_digest_thread_of_a_thousand_alerts_is_chunked_within_slacks_limits() -> None:
    digest = build_digest(storm(1000, description="d" * 50))
    chunks = build_digest_chunks(digest)
    assert len(chunks) > 1
    named: list[str] = []
    for chunk in chunks:
        assert block_errors(chunk["blocks"]) == []
        assert blocks_text_size(chunk["blocks"]) <= MAX_BLOCKS_TEXT
        assert len(chunk["text"]) <= 300
        named += re.findall(r"`pod=(web-\d+)`", post_texts(chunk))
    assert sorted(named) == sorted(f"web-{i}" for i in range(1000))


def test_digest_beyond_a_thousand_alerts_links_to_the_rest() -> None:
    digest = build_digest(storm(1200), router_url="https://alerts.example.com")
    chunks = build_digest_chunks(digest)
    text = "\n".join(post_texts(c) for c in chunks)
    assert len(set(re.findall(r"`pod=(web-\d+)`", text))) == 1000
    url = f"https://alerts.example.com/ui/digests/{digest.notification_id}"
    assert f"200 more alerts of this digest are not listed here: <{url}|all 1,200>" in text
    top = post_texts(build_message_payload(digest))
    assert "The first 1,000 of 1,200 alerts are listed in this thread" in top


def test_digest_without_a_router_url_names_the_api_path() -> None:
    digest = build_digest(storm(6))
    top = post_texts(build_message_payload(digest))
    assert f"`GET /api/v1/notifications?digest={digest.notification_id}&amp;limit=1000`" in top


def test_digest_lines_escape_what_alerts_say() -> None:
    messages = storm(3, summary="<!channel> look")
    messages.append(make_message([make_event("x", alertname="<@U123>", labels={"a": "`b`"})]))
    text = "\n".join(post_texts(p) for p in digest_posts(build_digest(messages)))
    assert "<!channel>" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt; look" in text and "*&lt;@U123&gt;*" in text


def test_digest_lists_firing_before_resolved_and_critical_first() -> None:
    messages = [
        make_message([make_event("r", status=Status.RESOLVED, alertname="A")]),
        make_message([make_event("w", severity="warning", alertname="B")]),
        make_message([make_event("c", alertname="C")]),
    ]
    [chunk] = build_digest_chunks(build_digest(messages))
    names = re.findall(r"\*([ABC])\*", post_texts(chunk))
    assert names == ["C", "B", "A"]
    assert "*A* (resolved)" in post_texts(chunk)
