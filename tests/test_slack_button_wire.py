"""What a Slack button carries back (`action_id` and `value`): one encoder, one decoder,
and values posted by earlier versions still understood."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.channels.slack.buttons import (
    ButtonAction,
    Buttons,
    decode_button,
    encode_button,
    interactive_blocks,
)
from router.model import ActionKind, SilenceScope

GROUP = 'am/prod/{}:{alertname="CPUHigh"}'

plain_kinds = st.sampled_from([ActionKind.ACK, ActionKind.UNACK, ActionKind.UNSILENCE])
button_actions = st.one_of(
    st.builds(ButtonAction, plain_kinds, st.text(), st.text()),
    st.builds(
        ButtonAction,
        st.just(ActionKind.SILENCE),
        st.text(),
        st.text(),
        st.integers(min_value=0, max_value=10**12).map(float),
    ),
)


@given(button_actions)
def test_every_button_decodes_to_what_it_was_encoded_from(action: ButtonAction) -> None:
    assert decode_button(*encode_button(action)) == action


def test_a_message_s_buttons_decode_to_what_their_labels_say() -> None:
    scope = SilenceScope("prod", (("alertname", "=", "CPUHigh"),))
    offer = Buttons("slack-prod", GROUP, [3600.0, 86400.0], now=1.0, silence=scope)
    [actions] = interactive_blocks(offer)
    decoded = [decode_button(e["action_id"], e["value"]) for e in actions["elements"]]
    assert decoded == [
        ButtonAction(ActionKind.ACK, "slack-prod", GROUP),
        ButtonAction(ActionKind.SILENCE, "slack-prod", GROUP, 3600.0),
        ButtonAction(ActionKind.SILENCE, "slack-prod", GROUP, 86400.0),
    ]
    # The value names the group and nothing else: the action_id says what to do.
    assert all(set(json.loads(e["value"])) == {"r", "g"} for e in actions["elements"])


def test_a_silence_button_posted_by_an_earlier_version_still_decodes() -> None:
    # Earlier versions also wrote the length into the value as "d".
    old = json.dumps({"r": "slack-prod", "g": GROUP, "d": 14400}, separators=(",", ":"))
    assert decode_button("silence_14400", old) == ButtonAction(
        ActionKind.SILENCE, "slack-prod", GROUP, 14400.0
    )
    assert decode_button("ack", old) == ButtonAction(ActionKind.ACK, "slack-prod", GROUP)


@pytest.mark.parametrize(
    ("action_id", "value"),
    [
        ("approve", '{"r":"slack-prod","g":"g"}'),
        ("silence", '{"r":"slack-prod","g":"g"}'),
        ("silence_1h", '{"r":"slack-prod","g":"g"}'),
        ("silence_٣٦٠٠", '{"r":"slack-prod","g":"g"}'),
        ("silence_-5", '{"r":"slack-prod","g":"g"}'),
        ("ack", ""),
        ("ack", "not json"),
        ("ack", '["slack-prod","g"]'),
        ("ack", '{"r":"slack-prod"}'),
        ("ack", '{"r":"slack-prod","g":7}'),
        ("ack", "[" * 100_000),
    ],
)
def test_a_button_that_is_not_ours_decodes_to_nothing(action_id: str, value: str) -> None:
    assert decode_button(action_id, value) is None
