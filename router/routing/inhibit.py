"""Alertmanager `inhibit_rules`: a firing source alert mutes matching target alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from router.config.schema import InhibitRule
from router.config.teams import inhibit_rule_name
from router.matchers import Matcher, matches_all


@dataclass(frozen=True, slots=True)
class InhibitionRule:
    """One parsed rule: sources matching `source` mute targets matching `target`."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()
    # The rule's name, or its place in the root file (`inhibit_rules[0]`).
    name: str = ""

    def equal_labels(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        """True if every `equal` label has the same value on both (missing counts as "")."""
        return all(source.get(name, "") == target.get(name, "") for name in self.equal)


class Inhibitor:
    """Decides whether an alert is inhibited by the alerts currently firing."""

    def __init__(self, rules: Sequence[InhibitionRule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def from_config(cls, rules: Sequence[InhibitRule]) -> Inhibitor:
        """The rules of a config, their matchers parsed by its schema."""
        return cls(
            [
                InhibitionRule(
                    source=rule.source_matchers,
                    target=rule.target_matchers,
                    equal=tuple(rule.equal),
                    name=inhibit_rule_name(rule, i),
                )
                for i, rule in enumerate(rules)
            ]
        )

    def inhibited_by(
        self, target: Mapping[str, str], firing: Iterable[Mapping[str, str]]
    ) -> Mapping[str, str] | None:
        """The labels of a firing alert that inhibits `target`, or None."""
        found = self.inhibition(target, firing)
        return found[1] if found is not None else None

    def inhibition(
        self, target: Mapping[str, str], firing: Iterable[Mapping[str, str]]
    ) -> tuple[InhibitionRule, Mapping[str, str]] | None:
        """The first rule that inhibits `target` and the firing alert it does so with, or None.

        As in Alertmanager (`inhibit.go`): when `target` matches both sides of a rule, source
        alerts that also match both sides are skipped, so such alerts never inhibit
        themselves or each other.
        """
        applicable = [rule for rule in self.rules if matches_all(rule.target, target)]
        if not applicable:
            return None
        sources = list(firing)
        for rule in applicable:
            two_sided = matches_all(rule.source, target)
            for source in sources:
                if not matches_all(rule.source, source):
                    continue
                if not rule.equal_labels(source, target):
                    continue
                if two_sided and matches_all(rule.target, source):
                    continue
                return rule, source
        return None
