"""Inhibition with Alertmanager semantics (inhibit/inhibit.go)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import pytest

from router.config.loader import ConfigError, parse_config
from router.config.schema import InhibitRule
from router.routing.inhibit import Inhibitor


def inhibitor(*rules: Mapping[str, object]) -> Inhibitor:
    return Inhibitor.from_config([InhibitRule.model_validate(rule) for rule in rules])


CRITICAL_SILENCES_WARNING = {
    "source_matchers": ['severity="critical"'],
    "target_matchers": ['severity="warning"'],
    "equal": ["alertname", "namespace"],
}


def test_a_firing_source_inhibits_a_matching_target_with_equal_labels() -> None:
    source = {"alertname": "HighLatency", "namespace": "shop", "severity": "critical"}
    target = {"alertname": "HighLatency", "namespace": "shop", "severity": "warning"}
    assert inhibitor(CRITICAL_SILENCES_WARNING).inhibited_by(target, [source]) == source


def test_a_different_value_in_an_equal_label_does_not_inhibit() -> None:
    source = {"alertname": "HighLatency", "namespace": "search", "severity": "critical"}
    target = {"alertname": "HighLatency", "namespace": "shop", "severity": "warning"}
    assert inhibitor(CRITICAL_SILENCES_WARNING).inhibited_by(target, [source]) is None


def test_an_equal_label_missing_on_both_sides_counts_as_equal() -> None:
    source = {"alertname": "NodeDown", "severity": "critical"}
    target = {"alertname": "NodeDown", "severity": "warning"}
    assert inhibitor(CRITICAL_SILENCES_WARNING).inhibited_by(target, [source]) == source


def test_an_equal_label_missing_on_one_side_only_is_not_equal() -> None:
    source = {"alertname": "NodeDown", "severity": "critical"}
    target = {"alertname": "NodeDown", "namespace": "shop", "severity": "warning"}
    assert inhibitor(CRITICAL_SILENCES_WARNING).inhibited_by(target, [source]) is None


def test_an_empty_equal_label_is_the_same_as_a_missing_one() -> None:
    source = {"alertname": "NodeDown", "namespace": "", "severity": "critical"}
    target = {"alertname": "NodeDown", "severity": "warning"}
    assert inhibitor(CRITICAL_SILENCES_WARNING).inhibited_by(target, [source]) == source


def test_source_and_target_must_match_their_own_side() -> None:
    rules = inhibitor(CRITICAL_SILENCES_WARNING)
    warning = {"alertname": "A", "severity": "warning"}
    info = {"alertname": "A", "severity": "info"}
    critical = {"alertname": "A", "severity": "critical"}
    assert rules.inhibited_by(warning, [info]) is None
    assert rules.inhibited_by(info, [critical]) is None
    assert rules.inhibited_by(critical, [critical]) is None


def test_without_equal_any_matching_source_inhibits() -> None:
    rules = inhibitor(
        {"source_matchers": ['alertname="ClusterDown"'], "target_matchers": ["env=~.+"]}
    )
    down = {"alertname": "ClusterDown"}
    assert rules.inhibited_by({"alertname": "X", "env": "prod"}, [down]) == down
    # The target side needs a non-empty env: an alert without one is untouched.
    assert rules.inhibited_by({"alertname": "X"}, [down]) is None


def test_no_firing_alerts_or_no_rules_inhibit_nothing() -> None:
    target = {"alertname": "A", "severity": "warning"}
    assert inhibitor(CRITICAL_SILENCES_WARNING).inhibited_by(target, []) is None
    assert Inhibitor.from_config([]).inhibited_by(target, [{"severity": "critical"}]) is None


TWO_SIDED = {
    "source_matchers": ['severity=~"critical|warning"'],
    "target_matchers": ['severity="warning"'],
    "equal": ["alertname"],
}


def test_an_alert_matching_both_sides_does_not_inhibit_itself() -> None:
    warning = {"alertname": "DiskFull", "severity": "warning"}
    assert inhibitor(TWO_SIDED).inhibited_by(warning, [warning]) is None
    assert inhibitor(TWO_SIDED).inhibited_by(warning, [dict(warning)]) is None


def test_two_sided_alerts_do_not_inhibit_each_other() -> None:
    # Alertmanager skips every source that also matches the target side when the target
    # matches the source side, not only the identical alert.
    first = {"alertname": "DiskFull", "severity": "warning", "instance": "a"}
    second = {"alertname": "DiskFull", "severity": "warning", "instance": "b"}
    assert inhibitor(TWO_SIDED).inhibited_by(first, [first, second]) is None


def test_a_one_sided_source_still_inhibits_a_two_sided_target() -> None:
    warning = {"alertname": "DiskFull", "severity": "warning"}
    critical = {"alertname": "DiskFull", "severity": "critical"}
    assert inhibitor(TWO_SIDED).inhibited_by(warning, [warning, critical]) == critical


def test_any_rule_can_inhibit_and_the_first_inhibiting_source_is_named() -> None:
    rules = inhibitor(
        CRITICAL_SILENCES_WARNING,
        {"source_matchers": ['alertname="Maintenance"'], "target_matchers": ['team="shop"']},
    )
    maintenance = {"alertname": "Maintenance"}
    other_maintenance = {"alertname": "Maintenance", "id": "2"}
    target = {"alertname": "Slow", "severity": "warning", "team": "shop"}
    assert rules.inhibited_by(target, [maintenance, other_maintenance]) == maintenance


def test_firing_may_be_a_one_shot_iterator() -> None:
    rules = inhibitor(
        {"source_matchers": ['a="1"'], "target_matchers": ['t="x"']},
        {"source_matchers": ['b="1"'], "target_matchers": ['t="x"']},
    )

    def firing() -> Iterator[Mapping[str, str]]:
        yield {"b": "1"}

    assert rules.inhibited_by({"t": "x"}, firing()) == {"b": "1"}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"source_matchers": ['a=="x"'], "target_matchers": ["b=c"]},
            "inhibit_rules[0].source_matchers[0]: bad matcher 'a==\"x\"'",
        ),
        (
            {"source_matchers": ["a=x"], "target_matchers": ['b=~"("']},
            "inhibit_rules[0].target_matchers[0]: bad matcher 'b=~\"(\"': bad regex '('",
        ),
        (
            {"source_matchers": ["a=x"], "target_matchers": ["b=c"], "equal": ["not-a-label"]},
            "inhibit_rules[0].equal[0]: 'not-a-label' is not a valid label name",
        ),
    ],
)
def test_validation_refuses_rules_the_inhibitor_could_not_apply(
    rule: Mapping[str, object], message: str
) -> None:
    text = json.dumps(
        {
            "receivers": [{"name": "r", "log": {}}],
            "route": {"receiver": "r"},
            "inhibit_rules": [rule],
        }
    )
    with pytest.raises(ConfigError) as excinfo:
        parse_config(text, "routes.yaml", env={})
    [problem] = excinfo.value.problems
    assert message in problem
