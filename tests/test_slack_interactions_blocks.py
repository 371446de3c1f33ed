"""The buttons and status line a group's Slack message carries (pure rendering)."""

from __future__ import annotations

import json

from router.channels.slack.buttons import (
    MAX_BUTTON_VALUE,
    ButtonAction,
    Buttons,
    encode_button,
    interactive_blocks,
    with_buttons,
)
from router.model import ActionKind, GroupActions, SilenceScope
from tests.fakes.slack import block_errors

NOW = 1_800_000_000.0
GROUP = 'am/prod/{}:{alertname="CPUHigh"}'
SCOPE = SilenceScope("prod", (("alertname", "=", "CPUHigh"),))


def buttons(state: GroupActions | None = None, **kw: object) -> Buttons:
    args: dict[str, object] = {
        "receiver": "slack-prod",
        "group_key": GROUP,
        "durations": [3600.0, 14400.0],
        "state": state,
        "now": NOW,
        "silence": SCOPE,
    }
    args.update(kw)
    return Buttons(**args)  # type: ignore[arg-type]


def texts(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks)


def test_buttons_carry_the_group_and_stay_inside_slacks_limits() -> None:
    blocks = interactive_blocks(buttons())
    assert block_errors(blocks) == []
    [actions] = blocks
    values = [json.loads(e["value"]) for e in actions["elements"]]
    assert values == [{"r": "slack-prod", "g": GROUP}] * 3
    assert [e["action_id"] for e in actions["elements"]] == ["ack", "silence_3600", "silence_14400"]


def test_a_group_key_too_long_for_a_button_value_gets_no_buttons() -> None:
    assert interactive_blocks(buttons(group_key="x" * 2000)) == []


def test_buttons_appear_exactly_while_their_value_fits_slack() -> None:
    overhead = len(encode_button(ButtonAction(ActionKind.ACK, "slack-prod", ""))[1])
    longest = "x" * (MAX_BUTTON_VALUE - overhead)
    blocks = interactive_blocks(buttons(group_key=longest))
    assert [b["type"] for b in blocks] == ["actions"] and block_errors(blocks) == []
    assert interactive_blocks(buttons(group_key=longest + "x")) == []


def test_a_fresh_post_names_the_acknowledger_and_an_edit_mentions_them() -> None:
    acked = GroupActions(
        "slack-prod", GROUP, acked_by="U0ALICE001", acked_by_name="alice", acked_at=NOW, version=1
    )
    assert "<@U0ALICE001>" in texts(interactive_blocks(buttons(acked)))
    fresh = texts(interactive_blocks(buttons(acked, fresh=True)))
    assert "<@" not in fresh and "Acknowledged by alice" in fresh


def test_a_user_id_that_is_not_slacks_is_shown_escaped_never_as_a_mention() -> None:
    odd = GroupActions(
        "slack-prod", GROUP, acked_by="<!channel>", acked_by_name="<!here>", acked_at=NOW, version=1
    )
    shown = texts(interactive_blocks(buttons(odd)))
    assert "<!channel>" not in shown and "<!here>" not in shown


def test_block_ids_change_with_the_groups_state_and_edits_replace_only_ours() -> None:
    before = interactive_blocks(buttons(GroupActions("slack-prod", GROUP, version=1)))
    silenced = GroupActions(
        "slack-prod",
        GROUP,
        silenced_by="U0BOB00001",
        silenced_at=NOW,
        silenced_until=NOW + 3600,
        silence_id="abc",
        version=2,
    )
    after = interactive_blocks(buttons(silenced))
    assert {b["block_id"] for b in before}.isdisjoint({b["block_id"] for b in after})
    payload = {"text": "t", "blocks": [{"type": "header", "block_id": "h"}, *before]}
    edited = with_buttons(payload, buttons(silenced))
    assert edited["blocks"][0] == {"type": "header", "block_id": "h"}
    assert edited["blocks"][1:] == after
    assert [e["action_id"] for e in after[-1]["elements"]] == ["ack", "unsilence"]
    assert "silence `abc`" in texts(after)
    assert with_buttons(payload, None)["blocks"] == [{"type": "header", "block_id": "h"}]


def test_the_silence_dialog_lists_the_matchers_and_the_alertmanager() -> None:
    [actions] = interactive_blocks(buttons())
    dialog = actions["elements"][1]["confirm"]["text"]["text"]
    assert dialog == (
        'Creates a silence for 1h on Alertmanager prod matching `alertname="CPUHigh"`'
    )


def test_a_dialog_too_long_for_slack_counts_the_matchers_it_leaves_out() -> None:
    many = tuple((f"label_{i}", "=", "v" * 20) for i in range(30))
    [actions] = interactive_blocks(buttons(silence=SilenceScope("prod", many)))
    dialog = actions["elements"][1]["confirm"]["text"]["text"]
    assert len(dialog) <= 300 and "more matchers (see the console)" in dialog
    shown = dialog.count("label_")
    assert f"and {30 - shown} more matchers" in dialog
    assert block_errors([actions]) == []


def test_a_group_without_a_silence_offers_acknowledge_only() -> None:
    for scope in (None, SilenceScope(unavailable="no configured Alertmanager has ...")):
        [actions] = interactive_blocks(buttons(silence=scope))
        assert [e["action_id"] for e in actions["elements"]] == ["ack"]
