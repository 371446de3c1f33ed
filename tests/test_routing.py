"""Route tree matching, ported from Alertmanager's dispatch/route_test.go and extended."""

from __future__ import annotations

import json
import textwrap

import pytest

from router.config.loader import ConfigError, parse_config
from router.model import RouteSettings
from router.routing.tree import RouteTree
from tests.test_configfile import EXAMPLE, EXAMPLE_ENV

RECEIVERS = """
receivers:
  - {name: notify-def, log: {}}
  - {name: notify-A, log: {}}
  - {name: notify-testing, log: {}}
  - {name: notify-productionA, log: {}}
  - {name: notify-productionB, log: {}}
  - {name: notify-BC, log: {}}
"""

# Alertmanager's TestRouteMatch tree (group_* timers, which we do not have, became
# repeat_interval where the test relied on a child overriding its parent).
AM_TREE = """
route:
  receiver: notify-def
  routes:
    - matchers: ['owner="team-A"']
      receiver: notify-A
      routes:
        - matchers: ['env="testing"']
          receiver: notify-testing
        - matchers: ['env="production"']
          receiver: notify-productionA
          continue: true
        - matchers: ['env=~"produ.*"', 'job=~".*"']
          receiver: notify-productionB
          repeat_interval: 1h
    - matchers: ['owner=~"team-(B|C)"']
      receiver: notify-BC
    - matchers: ['group_by="role"']
      routes:
        - matchers: ['env="testing"']
          receiver: notify-testing
          routes:
            - matchers: ['wait="long"']
              repeat_interval: 2m
"""

# Alertmanager's TestRouteMatchers tree: `!=` and `!~` on labels the alert does not have.
AM_MATCHERS_TREE = """
route:
  receiver: notify-def
  routes:
    - matchers: ['{owner="team-A"}', '{level!="critical"}']
      receiver: notify-A
      routes:
        - matchers: ['{env="testing"}', '{baz!~".*quux"}']
          receiver: notify-testing
        - matchers: ['{env="production"}']
          receiver: notify-productionA
          continue: true
        - matchers: [env=~"produ.*", job=~".*"]
          receiver: notify-productionB
    - matchers: [owner=~"team-(B|C)"]
      receiver: notify-BC
"""

DEFAULT_REPEAT = 4 * 3600.0


def tree_from(text: str, receivers: str = RECEIVERS) -> RouteTree:
    config = parse_config(textwrap.dedent(receivers) + textwrap.dedent(text), "test.yaml", env={})
    return RouteTree.from_config(config)


def receivers(tree: RouteTree, **labels: str) -> list[str]:
    return [s.receiver for s in tree.match(labels)]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"owner": "team-A"}, [("notify-A", DEFAULT_REPEAT)]),
        ({"owner": "team-A", "env": "unset"}, [("notify-A", DEFAULT_REPEAT)]),
        ({"owner": "team-C"}, [("notify-BC", DEFAULT_REPEAT)]),
        ({"owner": "team-A", "env": "testing"}, [("notify-testing", DEFAULT_REPEAT)]),
        (
            {"owner": "team-A", "env": "production"},
            [("notify-productionA", DEFAULT_REPEAT), ("notify-productionB", 3600.0)],
        ),
        ({"group_by": "role"}, [("notify-def", DEFAULT_REPEAT)]),
        ({"env": "testing", "group_by": "role"}, [("notify-testing", DEFAULT_REPEAT)]),
        ({"env": "testing", "group_by": "role", "wait": "long"}, [("notify-testing", 120.0)]),
    ],
)
def test_alertmanager_route_match_cases(
    labels: dict[str, str], expected: list[tuple[str, float]]
) -> None:
    tree = tree_from(AM_TREE)
    assert [(s.receiver, s.repeat_interval) for s in tree.match(labels)] == expected


def test_paths_name_each_matched_node_with_its_index_and_matchers() -> None:
    tree = tree_from(AM_TREE)
    assert [s.path for s in tree.match({"owner": "team-A", "env": "production"})] == [
        'routes[0] owner="team-A" > routes[1] env="production"',
        'routes[0] owner="team-A" > routes[2] env=~"produ.*", job=~".*"',
    ]
    assert [s.path for s in tree.match({"env": "testing", "group_by": "role", "wait": "long"})] == [
        'routes[2] group_by="role" > routes[0] env="testing" > routes[0] wait="long"'
    ]
    assert [s.path for s in tree.match({"nothing": "matches"})] == ["root route"]


def test_regex_route_matchers_are_anchored() -> None:
    tree = tree_from(AM_TREE)
    assert receivers(tree, owner="team-Cx") == ["notify-def"]
    assert receivers(tree, owner="a-team-B") == ["notify-def"]
    assert receivers(tree, owner="team-B") == ["notify-BC"]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"owner": "team-A"}, ["notify-A"]),
        ({"owner": "team-A", "env": "unset"}, ["notify-A"]),
        ({"owner": "team-A", "level": "critical"}, ["notify-def"]),
        ({"owner": "team-C"}, ["notify-BC"]),
        ({"owner": "team-A", "env": "testing"}, ["notify-testing"]),
        ({"owner": "team-A", "env": "testing", "baz": "my-quux"}, ["notify-A"]),
        ({"owner": "team-A", "env": "production"}, ["notify-productionA", "notify-productionB"]),
    ],
)
def test_negative_matchers_match_alerts_missing_the_label(
    labels: dict[str, str], expected: list[str]
) -> None:
    assert [s.receiver for s in tree_from(AM_MATCHERS_TREE).match(labels)] == expected


def test_walk_visits_every_node_depth_first_in_order() -> None:
    tree = tree_from(AM_TREE)
    assert [node.settings.receiver for node in tree.walk()] == [
        "notify-def",
        "notify-A",
        "notify-testing",
        "notify-productionA",
        "notify-productionB",
        "notify-BC",
        "notify-def",
        "notify-testing",
        "notify-testing",
    ]
    assert len(tree) == 9


SIBLINGS = """
receivers:
  - {name: root, log: {}}
  - {name: first, log: {}}
  - {name: second, log: {}}
  - {name: third, log: {}}
"""


def test_first_matching_child_wins_without_continue() -> None:
    tree = tree_from(
        """
        route:
          receiver: root
          routes:
            - {matchers: ['env="prod"'], receiver: first}
            - {matchers: ['env="prod"'], receiver: second}
        """,
        SIBLINGS,
    )
    assert receivers(tree, env="prod") == ["first"]


def test_continue_true_delivers_to_both_matching_siblings() -> None:
    tree = tree_from(
        """
        route:
          receiver: root
          routes:
            - {matchers: ['env="prod"'], receiver: first, continue: true}
            - {matchers: ['team="shop"'], receiver: second}
            - {matchers: ['env="prod"'], receiver: third}
        """,
        SIBLINGS,
    )
    assert receivers(tree, env="prod") == ["first", "third"]
    assert receivers(tree, env="prod", team="shop") == ["first", "second"]


def test_a_continuing_match_still_counts_as_a_match_for_its_parent() -> None:
    tree = tree_from(
        """
        route:
          receiver: root
          routes:
            - {matchers: ['env="prod"'], receiver: first, continue: true}
        """,
        SIBLINGS,
    )
    assert receivers(tree, env="prod") == ["first"]
    assert receivers(tree, env="dev") == ["root"]


def test_a_node_whose_children_all_miss_delivers_itself() -> None:
    tree = tree_from(
        """
        route:
          receiver: root
          routes:
            - matchers: ['env="prod"']
              receiver: first
              routes:
                - {matchers: ['team="shop"'], receiver: second}
        """,
        SIBLINGS,
    )
    assert receivers(tree, env="prod", team="search") == ["first"]
    assert receivers(tree, env="prod", team="shop") == ["second"]


def test_a_receiver_reached_twice_is_delivered_once_with_the_first_route() -> None:
    tree = tree_from(
        """
        route:
          receiver: root
          routes:
            - {matchers: ['env="prod"'], receiver: first, continue: true, repeat_interval: 1h}
            - {matchers: ['severity="critical"'], receiver: second, continue: true}
            - {matchers: ['env="prod"'], receiver: first, repeat_interval: 2h}
        """,
        SIBLINGS,
    )
    matched = tree.match({"env": "prod", "severity": "critical"})
    assert [(s.receiver, s.repeat_interval) for s in matched] == [
        ("first", 3600.0),
        ("second", DEFAULT_REPEAT),
    ]
    assert matched[0].path == 'routes[0] env="prod"'


def test_settings_inherit_down_the_tree_and_children_override_them() -> None:
    tree = tree_from(
        """
        dedup: {repeat_interval: 6h, send_resolved: false}
        time_intervals:
          - {name: nights, time_intervals: [{times: [{start_time: "00:00", end_time: "06:00"}]}]}
          - {name: office, time_intervals: [{weekdays: ["monday:friday"]}]}
        route:
          receiver: root
          routes:
            - matchers: ['env="dev"']
              receiver: first
              repeat_interval: 12h
              mute_time_intervals: [nights]
              active_time_intervals: [office]
              routes:
                - matchers: ['team="shop"']
                  send_resolved: true
                  routes:
                    - {matchers: ['app="cart"'], receiver: second}
                - matchers: ['team="search"']
                  receiver: third
                  mute_time_intervals: []
                  active_time_intervals: []
        """,
        SIBLINGS,
    )
    [root] = tree.match({})
    assert root == RouteSettings(
        receiver="root", path="root route", repeat_interval=6 * 3600.0, send_resolved=False
    )
    [shop] = tree.match({"env": "dev", "team": "shop"})
    assert shop.receiver == "first"
    assert shop.repeat_interval == 12 * 3600.0
    assert shop.send_resolved is True
    assert shop.mute_time_intervals == ("nights",)
    assert shop.active_time_intervals == ("office",)
    [cart] = tree.match({"env": "dev", "team": "shop", "app": "cart"})
    assert (cart.receiver, cart.repeat_interval, cart.send_resolved) == ("second", 43200.0, True)
    assert cart.mute_time_intervals == ("nights",)
    [search] = tree.match({"env": "dev", "team": "search"})
    assert search.receiver == "third"
    assert search.mute_time_intervals == ()
    assert search.active_time_intervals == ()


def test_root_settings_come_from_the_root_route_before_dedup_defaults() -> None:
    tree = tree_from(
        """
        route: {receiver: root, repeat_interval: 30m, send_resolved: false}
        """,
        SIBLINGS,
    )
    [root] = tree.match({})
    assert (root.repeat_interval, root.send_resolved) == (1800.0, False)


def test_example_config_routes_as_documented() -> None:
    tree = RouteTree.from_config(parse_config(EXAMPLE.read_text(), "x", env=EXAMPLE_ENV))
    assert [(r.path, r.receiver) for r in tree.match({"env": "prod", "severity": "critical"})] == [
        ('routes[1] env="prod", severity="critical"', "slack-prod"),
        ('routes[2] env="prod", severity=~"critical|warning"', "email-sre"),
    ]
    assert receivers(tree, source="argocd", severity="info") == ["slack-deploys"]
    assert receivers(tree, env="prod", severity="warning") == ["email-sre"]
    [dev] = tree.match({"env": "dev"})
    assert (dev.receiver, dev.repeat_interval, dev.mute_time_intervals) == (
        "slack-dev",
        12 * 3600.0,
        ("dev-nights",),
    )
    assert receivers(tree, env="stage", severity="critical") == ["stdout"]
    assert len(tree) == 5


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({}, "route.receiver: the root route must have a receiver"),
        (
            {"receiver": "r", "matchers": ['a="b"']},
            "route.matchers: the root route must not have any matchers",
        ),
        ({"receiver": "r", "continue": True}, "route.continue: the root route cannot have"),
        ({"receiver": "nope"}, "route.receiver: undefined receiver 'nope' used in route"),
        (
            {"receiver": "r", "routes": [{"matchers": ["a=b"], "receiver": "x"}]},
            "route.routes[0].receiver: undefined receiver 'x' used in route",
        ),
        (
            {"receiver": "r", "routes": [{"matchers": ["a=b"], "receiver": ""}]},
            "route.routes[0].receiver: empty receiver",
        ),
        ({"receiver": "r", "routes": [{"matchers": ["a=="]}]}, "bad matcher 'a=='"),
    ],
)
def test_validation_refuses_trees_the_builder_could_not_route(
    route: dict[str, object], message: str
) -> None:
    # The builder trusts validated configs; these never reach it.
    text = json.dumps({"receivers": [{"name": "r", "log": {}}], "route": route})
    with pytest.raises(ConfigError) as excinfo:
        parse_config(text, "routes.yaml", env={})
    assert any(message in problem for problem in excinfo.value.problems)
