"""The shared vocabulary of messages (render/text.py) and the one redaction helper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from router.durations import format_duration
from router.render.text import escape_mrkdwn, reason_text, resolved_after, status_text
from router.secrets import REDACTED, redact, redact_url, url_secrets

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.3, "300ms"),
        (1.5, "1.5s"),
        (12, "12s"),
        (45.9, "45s"),
        (60, "1m"),
        (150, "2m 30s"),
        (840, "14m"),
        (3600, "1h"),
        (3605, "1h"),
        (11100, "3h 5m"),
        (86400, "1d"),
        (187200, "2d 4h"),
        (0, "0s"),
        (-5, "0s"),
    ],
)
def test_durations_read_the_same_everywhere(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_status_text_is_alertmanagers() -> None:
    assert status_text(2) == "FIRING:2"
    assert status_text(0) == "RESOLVED"


def test_reason_text_says_why_in_words() -> None:
    assert reason_text("first") == "first notification"
    assert reason_text("new_alerts") == "new alerts"
    assert reason_text("some_future_reason") == "some future reason"


def test_resolved_after_spans_earliest_start_to_latest_end() -> None:
    starts = [T0 + timedelta(minutes=1), T0, None]
    ends = [T0 + timedelta(minutes=30), None, T0 + timedelta(minutes=61)]
    first_told = T0 + timedelta(minutes=5)
    later = T0 + timedelta(hours=3)

    assert resolved_after(starts, ends, first_notified=first_told, now=later) == 61 * 60


def test_resolved_after_falls_back_to_first_notified_and_now() -> None:
    first_told = T0 + timedelta(minutes=5)
    now = T0 + timedelta(minutes=19)

    assert resolved_after([None], [None], first_notified=first_told, now=now) == 14 * 60
    assert resolved_after([], [], first_notified=None, now=now) is None
    # An end before the start (clock skew between senders) is no negative duration.
    assert resolved_after([now], [T0], first_notified=None, now=now) == 0.0


def test_mrkdwn_escaping_defuses_mentions_and_links() -> None:
    assert escape_mrkdwn("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


def test_redact_replaces_every_secret_longest_first() -> None:
    url = "https://hooks.example.com/T1/B2/s3cr3t"
    text = f"POST {url} failed; token s3cr3t, token again s3cr3t"

    assert redact(text, [None, "", "s3cr3t", url]) == (
        f"POST {REDACTED} failed; token {REDACTED}, token again {REDACTED}"
    )


def test_url_secrets_name_the_parts_that_may_carry_a_token() -> None:
    parts = url_secrets("https://user:pa%20ss@hooks.example.com/T1/B2/xyz?token=abcd")

    assert "https://user:pa%20ss@hooks.example.com/T1/B2/xyz?token=abcd" in parts
    assert {"user", "pa%20ss", "pa ss", "/T1/B2/xyz", "token=abcd"} <= set(parts)
    # Short parts are no secrets and would shred the text they are replaced in.
    assert "/" not in url_secrets("http://h/")


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("rediss://u:pw@redis.example:6380/2") == (
        f"rediss://u:{REDACTED}@redis.example:6380/2"
    )
    assert redact_url("redis://[::1]:6379/0") == "redis://[::1]:6379/0"
    assert redact_url("redis://:pw@[::1]:6379/0") == f"redis://:{REDACTED}@[::1]:6379/0"
