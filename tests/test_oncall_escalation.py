"""A console acknowledgement of one receiver's group (naming no message) stops its
escalation like the Slack button: same worker, same SlackClickRunner.acknowledge."""

from __future__ import annotations

from router.interact.console import request_acknowledgement
from router.web.slack import RUNNER
from tests import test_escalation as esc
from tests.conftest import Running
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack
from tests.helpers import until

# test_escalation's service (an injected clock, three Slack receivers, a two-step chain).
clock, service = esc.clock, esc.service


async def test_a_console_acknowledgement_stops_the_chain(
    service: Running, slack: FakeSlack, clock: FakeClock
) -> None:
    await esc.fire(service, slack, "ConsoleAcked")
    await esc.fire(service, slack, "Ignored")
    assert await request_acknowledgement(
        service.state.store,
        "slack-prod",
        esc.group_key("ConsoleAcked"),
        acknowledge=True,
        user="ops",
        now=clock(),
    )
    service.app[RUNNER].wake()
    await until(lambda: esc.chain_gone(service, "ConsoleAcked"))

    # Its Slack message shows who, as after a click.
    def shown() -> str:
        return esc.about(slack, esc.PROD, "ConsoleAcked")[0].visible_text()

    await until(lambda: "Acknowledged by ops" in shown())

    clock.now += 601
    await until(lambda: esc.about(slack, esc.ONCALL, "Ignored"))
    assert esc.about(slack, esc.ONCALL, "ConsoleAcked") == []
    assert (
        esc.sample(service, "alert_router_time_to_acknowledge_seconds_count", receiver="slack-prod")
        == 1
    )
