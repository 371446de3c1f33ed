"""A tree remembers the routes of label sets it matched: what it answers from memory is what
it would have matched afresh."""

from __future__ import annotations

import itertools

import pytest

from router.routing import tree as tree_module
from tests.test_routing import AM_MATCHERS_TREE, AM_TREE, tree_from

VALUES = {
    "owner": [None, "", "team-A", "team-B", "team-X"],
    "env": [None, "", "testing", "production", "produce"],
    "level": [None, "critical", "warning"],
    "group_by": [None, "role"],
    "wait": [None, "long"],
    # Read by no matcher: label sets differing only here are routed alike.
    "pod": [None, "a", "b"],
}


def label_sets() -> list[dict[str, str]]:
    sets = []
    for values in itertools.product(*VALUES.values()):
        sets.append({k: v for k, v in zip(VALUES, values, strict=True) if v is not None})
    return sets


def test_a_remembered_match_is_the_match_a_fresh_tree_makes() -> None:
    for text in (AM_TREE, AM_MATCHERS_TREE):
        shared = tree_from(text)
        sets = label_sets()
        for labels in sets + sets[::-1]:
            assert shared.match(labels) == tree_from(text).match(labels), labels


def test_a_full_memory_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_module, "_MATCHES_KEPT", 3)
    shared = tree_from(AM_TREE)
    for labels in label_sets():
        fresh = tree_from(AM_TREE)
        assert shared.match(labels) == fresh.match(labels)
        assert len(shared._matches) <= 3


def test_the_answer_is_the_callers_to_change() -> None:
    shared = tree_from(AM_TREE)
    first = shared.match({"owner": "team-A"})
    first.clear()
    assert [s.receiver for s in shared.match({"owner": "team-A"})] == ["notify-A"]
