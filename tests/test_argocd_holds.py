"""`argocd.hold`: which Argo CD notifications wait before anyone is told, and for how long."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from router.config.loader import ConfigError
from router.ingest import argocd
from router.ingest.intake import plan_notifications
from router.routing.tree import RouteTree
from tests.helpers import MINIMAL, config_from

NOW = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


def notify(trigger: str, config_text: str = MINIMAL, **fields: str) -> dict[str, float]:
    """group key -> not_before of what one Argo CD body records."""
    config = config_from(config_text)
    body = argocd.ArgoCDNotification.model_validate(
        {"trigger": trigger, "app": "backend", "namespace": "prod", **fields}
    )
    events = argocd.to_events(body, config, NOW)
    planned = plan_notifications(events, RouteTree.from_config(config), NOW, argocd.hold_of(config))
    return {n.group_key: n.not_before for n in planned}


def test_a_degraded_app_waits_a_minute_by_default_and_nothing_else_waits() -> None:
    held = notify("on-health-degraded", healthStatus="Degraded")
    assert held == {"argocd/backend/on-health-degraded": NOW.timestamp() + 60}
    assert set(notify("on-sync-failed", operationPhase="Failed").values()) == {0.0}
    assert set(notify("on-deployed", revision="abc").values()) == {0.0}


def test_a_recovery_is_never_held() -> None:
    recovered = notify("on-health-healthy", healthStatus="Healthy", syncStatus="Synced")
    assert recovered and set(recovered.values()) == {0.0}


def test_holds_are_set_per_trigger_over_the_defaults() -> None:
    text = MINIMAL + "argocd:\n  hold: {on-sync-failed: 30s}\n"
    assert notify("on-sync-failed", text, operationPhase="Failed") == {
        "argocd/backend/on-sync-failed": NOW.timestamp() + 30
    }
    # The default for a degraded app still applies; 0 switches it off.
    assert config_from(text).argocd.hold["on-health-degraded"] == 60
    off = MINIMAL + "argocd:\n  hold: {on-health-degraded: 0s}\n"
    assert set(notify("on-health-degraded", off, healthStatus="Degraded").values()) == {0.0}


def test_a_hold_on_a_trigger_that_never_resolves_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        config_from(MINIMAL + "argocd:\n  hold: {on-deployed: 1m}\n")
    [problem] = info.value.problems
    assert problem.startswith("test.yaml:")
    assert "argocd.hold" in problem and "on-deployed" in problem
    assert "problem triggers" in problem


def test_the_problem_triggers_of_the_config_are_those_the_source_knows() -> None:
    from router.config.schema import ARGOCD_PROBLEM_TRIGGERS

    assert set(ARGOCD_PROBLEM_TRIGGERS) == set(argocd.PROBLEM_TRIGGERS)
