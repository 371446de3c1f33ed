"""The jinja2 environment, its filters, and the shipped email templates."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import pytest

import router
from router.model import Event, Notification, RouteSettings, Status
from router.render.message import Link, LogExcerpt, Message, alert_links, build_message
from router.render.templates import (
    DEFAULT_TEMPLATES_DIR,
    duration,
    humantime,
    mrkdwn,
    oneline,
    printable,
    rfc3339,
    safe_url,
    since,
    template_env,
)

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=12)
TEMPLATES = ("email.subject.j2", "email.txt.j2", "email.html.j2")


def event(
    fingerprint: str,
    status: Status = Status.FIRING,
    *,
    source: str = "alertmanager",
    annotations: dict[str, str] | None = None,
    details: dict[str, str] | None = None,
    **labels: str,
) -> Event:
    return Event(
        source=source,
        fingerprint=fingerprint,
        group_key="g",
        status=status,
        labels={"alertname": "DiskFull", "env": "prod", "severity": "warning", **labels},
        annotations={"summary": "disk almost full"} if annotations is None else annotations,
        starts_at=T0,
        ends_at=T0 + timedelta(minutes=90) if status is Status.RESOLVED else None,
        details=details or {},
    )


def message(*events: Event) -> Message:
    notification = Notification(
        id="n-7",
        route=RouteSettings(receiver="r", path="/", repeat_interval=60.0, send_resolved=True),
        group_key="g",
        events=list(events),
        created_at=T0,
    )
    return build_message(notification, "new_alerts")


def render(name: str, msg: Message, directory: str = "") -> str:
    return template_env(directory).get_template(name).render(message=msg, now=NOW)


def test_default_directory_is_the_projects_templates_folder() -> None:
    assert DEFAULT_TEMPLATES_DIR == Path(router.__file__).resolve().parent.parent / "templates"
    for name in TEMPLATES:
        assert (DEFAULT_TEMPLATES_DIR / name).is_file()
    assert template_env().get_template("email.txt.j2").filename == str(
        DEFAULT_TEMPLATES_DIR / "email.txt.j2"
    )


def test_environments_are_cached_per_directory(tmp_path: Path) -> None:
    assert template_env() is template_env("")
    assert template_env() is template_env(str(DEFAULT_TEMPLATES_DIR))
    assert template_env(str(tmp_path)) is template_env(str(tmp_path))
    assert template_env(str(tmp_path)) is not template_env()


def test_html_templates_are_autoescaped_and_text_templates_are_not(tmp_path: Path) -> None:
    (tmp_path / "x.html.j2").write_text("{{ value }}")
    (tmp_path / "x.txt.j2").write_text("{{ value }}")
    env = template_env(str(tmp_path))
    assert env.get_template("x.html.j2").render(value="<b>&") == "&lt;b&gt;&amp;"
    assert env.get_template("x.txt.j2").render(value="<b>&") == "<b>&"


def test_a_misspelt_variable_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "typo.txt.j2").write_text("{{ message.titel }}")
    with pytest.raises(jinja2.UndefinedError):
        render("typo.txt.j2", message(event("a")), str(tmp_path))


@pytest.mark.parametrize("name", TEMPLATES)
@pytest.mark.parametrize(
    "events",
    [
        pytest.param([event("a")], id="firing"),
        pytest.param([event("a", Status.RESOLVED)], id="resolved"),
        pytest.param([event("a"), event("b", Status.RESOLVED)], id="mixed"),
        pytest.param([event("a", annotations={})], id="bare"),
        pytest.param(
            [
                event(
                    "argo",
                    source="argocd",
                    alertname="on-deployed",
                    app="shop",
                    annotations={},
                    details={"revision": "abc123", "message": "sync ok"},
                )
            ],
            id="argocd",
        ),
    ],
)
def test_every_shipped_template_renders_every_kind_of_message(
    name: str, events: list[Event]
) -> None:
    out = render(name, message(*events))
    assert out.strip()


def test_subject_is_one_line_even_when_labels_hold_newlines() -> None:
    msg = message(event("a", app="shop\r\nBcc: x@example.org\u2028more"))
    subject = render("email.subject.j2", msg).rstrip("\n")
    assert "\n" not in subject and "\r" not in subject and "\u2028" not in subject
    assert subject.startswith("[FIRING:1] DiskFull (shop Bcc: x@example.org more")


def test_text_body_shows_status_and_resolved_times() -> None:
    out = render("email.txt.j2", message(event("a"), event("b", Status.RESOLVED)))
    assert out.splitlines()[0] == "[FIRING:1] DiskFull (prod warning)"
    assert "Status:    FIRING:1, 1 resolved" in out
    assert "firing for 12m" in out
    assert "Ended:    2026-11-26 11:30:00 UTC (lasted 1h 30m)" in out


def test_log_excerpt_lines_or_the_reason_there_are_none() -> None:
    msg = message(event("a"), event("b"))
    first = dataclasses.replace(
        msg.firing[0], logs=LogExcerpt(query='{app="x"}', lines=["\x1b[31mERROR\x1b[0m x <y>"])
    )
    second = dataclasses.replace(msg.firing[1], logs=LogExcerpt(note="no lines in 15m"))
    msg = dataclasses.replace(msg, firing=[first, second])

    text = render("email.txt.j2", msg)
    html = render("email.html.j2", msg)

    assert "| ERROR x <y>" in text and "\x1b" not in text
    assert "Logs: no lines in 15m" in text
    assert "ERROR x &lt;y&gt;" in html and "<pre" in html
    assert "no lines in 15m" in html


def test_javascript_links_are_not_clickable_in_html() -> None:
    msg = dataclasses.replace(
        message(event("a")),
        links=[Link("Dashboard", "https://grafana.example.com/d/x"), Link("Evil", "javascript:x")],
    )
    html = render("email.html.j2", msg)
    assert '<a href="https://grafana.example.com/d/x"' in html
    assert 'href="javascript:' not in html


def test_html_colour_follows_status_and_severity() -> None:
    assert "#c62828" in render("email.html.j2", message(event("a", severity="critical")))
    assert "#ef6c00" in render("email.html.j2", message(event("a")))
    resolved = render("email.html.j2", message(event("a", Status.RESOLVED)))
    assert "#2e7d32" in resolved and "#ef6c00" not in resolved


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (12, "12s"), (150, "2m 30s"), (3600, "1h"), (3900, "1h 5m"), (273600, "3d 4h")],
)
def test_duration(seconds: int, text: str) -> None:
    assert duration(seconds) == text
    assert duration(timedelta(seconds=seconds)) == text


def test_time_filters() -> None:
    assert rfc3339(T0) == "2026-11-26T10:00:00Z"
    assert rfc3339(None) == ""
    assert humantime(T0) == "2026-11-26 10:00:00 UTC"
    assert since(T0, NOW) == "12m"
    assert since(None, NOW) == ""
    assert duration(None) == "" and duration(-5) == "0s"


def test_oneline_and_printable() -> None:
    assert oneline("a\r\nb\tc\u2028d  e") == "a b c d e"
    assert oneline("abcdefghij", 5) == "abcd…"
    assert printable("\x1b[1;31mred\x1b[0m\r\nnext\x07") == "red\nnext"


def test_safe_url_and_mrkdwn() -> None:
    assert safe_url("https://x.example.com/a?b=1") == "https://x.example.com/a?b=1"
    assert safe_url("mailto:sre@example.com") == "mailto:sre@example.com"
    assert safe_url("javascript:alert(1)") == ""
    assert safe_url("JaVaScRiPt:alert(1)") == ""
    assert safe_url("http://[::1") == ""
    assert mrkdwn("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_alert_links_put_runbook_and_source_first_each_url_once() -> None:
    msg = message(
        dataclasses.replace(
            event("a", annotations={"runbook_url": "https://runbooks/disk"}),
            generator_url="http://prom/graph",
        )
    )
    alert = dataclasses.replace(
        msg.firing[0],
        links=[Link("Runbook (wiki)", "https://runbooks/disk"), Link("Explore", "https://g/e")],
    )
    assert [(link.title, link.url) for link in alert_links(alert)] == [
        ("Runbook", "https://runbooks/disk"),
        ("Source", "http://prom/graph"),
        ("Explore", "https://g/e"),
    ]
