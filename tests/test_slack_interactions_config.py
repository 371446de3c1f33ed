"""slack.interactivity and alertmanager in routes.yaml: defaults, problems, secrets kept."""

from __future__ import annotations

import pytest

from router.config.loader import ConfigError, parse_config

BOT = """
receivers:
  - name: s
    slack: {token: xoxb-1, channel: "#a"}
route: {receiver: s}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "routes.yaml", env=env or {})
    return caught.value.problems


def test_interactivity_defaults_to_three_silence_lengths_and_no_alertmanager() -> None:
    config = parse_config(
        "slack: {interactivity: {signing_secret: '${S}'}}\n" + BOT,
        "routes.yaml",
        env={"S": "a-signing-secret"},
    )
    assert config.slack.interactivity is not None
    assert config.slack.interactivity.silence_durations == [3600.0, 14400.0, 86400.0]
    assert config.slack.interactivity.signing_secret.get_secret_value() == "a-signing-secret"
    assert config.alertmanager_entries == []
    assert "a-signing-secret" not in repr(config)


def test_an_empty_signing_secret_is_a_problem_that_names_the_key() -> None:
    [problem] = problems("slack: {interactivity: {signing_secret: ''}}\n" + BOT)
    assert "slack.interactivity.signing_secret" in problem and "empty" in problem


@pytest.mark.parametrize(
    ("durations", "says"),
    [
        ("[30s]", "at least 1m"),
        ("[1h, 60m]", "differ"),
        ("[]", "at least 1"),
        ("[" + ", ".join(f"{i}h" for i in range(1, 26)) + "]", "at most 24"),
    ],
)
def test_silence_durations_must_fit_slack_and_differ(durations: str, says: str) -> None:
    text = f"slack: {{interactivity: {{signing_secret: s3cr3t, silence_durations: {durations}}}}}\n"
    [problem] = problems(text + BOT)
    assert "silence_durations" in problem and says in problem
    assert "s3cr3t" not in problem


def test_buttons_without_a_bot_token_receiver_are_a_problem() -> None:
    text = """
slack: {interactivity: {signing_secret: s3cr3t}}
receivers:
  - name: s
    slack: {webhook_url: "https://hooks.slack.com/services/T/B/X"}
route: {receiver: s}
"""
    [problem] = problems(text)
    assert problem.startswith("routes.yaml:2:") and "bot token" in problem


def test_alertmanager_api_takes_one_kind_of_credentials_and_an_http_url() -> None:
    both = "alertmanager: {api_url: 'http://am:9093', bearer_token: t0ken1,"
    both += " basic_auth: {username: u, password: pa55word}}\n"
    [problem] = problems(both + BOT)
    assert "not both" in problem and "t0ken1" not in problem and "pa55word" not in problem
    [problem] = problems("alertmanager: {api_url: 'am:9093'}\n" + BOT)
    assert "absolute http(s) URL" in problem


def test_alertmanager_credentials_need_a_url_they_alone_go_to() -> None:
    # Once, credentials without a url went to whatever externalURL a webhook named.
    [problem] = problems("alertmanager: {bearer_token: t0ken1}\n" + BOT)
    assert "set url" in problem and "externalURL" in problem and "t0ken1" not in problem
    config = parse_config(
        "alertmanager: {api_url: 'http://am:9093/', bearer_token: t0ken1}\n" + BOT,
        "routes.yaml",
        env={},
    )
    [entry] = config.alertmanager_entries
    assert (entry.url, entry.webhook_url, entry.display_name) == (
        "http://am:9093",
        "http://am:9093",
        "am:9093",
    )


def test_several_alertmanagers_are_told_apart_by_name_and_external_url() -> None:
    text = """
alertmanagers:
  - {name: prod, url: 'http://a:9093', external_url: 'https://am.example.com'}
  - {name: prod, url: 'http://b:9093', external_url: 'https://am.example.com/'}
"""
    found = problems(text + BOT)
    assert any("alertmanagers[1].name" in p and "'prod'" in p for p in found)
    assert any("alertmanagers[1].external_url" in p for p in found)
    both = "alertmanager: {url: 'http://a:9093'}\nalertmanagers: [{url: 'http://b:9093'}]\n"
    assert any("not both" in p for p in problems(both + BOT))


def test_a_trusted_proxy_names_exactly_one_user_header() -> None:
    text = "server: {trusted_proxy: {addresses: [10.0.0.1/32], user_headers: [A, B]}}\n"
    [problem] = problems(text + BOT)
    assert "user_header" in problem and "one header" in problem
