"""What a Silence button creates: the group it was shown on, and never more.

Worked out from the group's own alerts and Alertmanager's `groupKey`, which a stranger may
have written: fuzzed with arbitrary keys and labels, the silence always covers every alert
of the group, never names only a subset of what the group has in common, and stays inside
the team's scope.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from router.alertmanager_api.scope import route_matchers, silence_scope, split_group_key
from router.matchers import Matcher
from router.model import NORMALIZED_LABELS, Event, SilenceScope, Status
from router.web.security import USER_HEADERS, user_header_problem
from tests.fuzzing import FUZZ
from tests.helpers import config_from

AM = "https://am-prod.example.com"

CONFIG = config_from(
    f"""
alertmanagers:
  - {{name: prod, url: 'http://alertmanager-prod:9093', external_url: '{AM}'}}
  - {{url: 'http://alertmanager-dev:9093'}}
teams:
  - {{name: payments, file: payments.yaml, matchers: ['team="payments"']}}
receivers: [{{name: s, log: {{}}}}]
route:
  receiver: s
  routes: [{{team: payments}}]
"""
)


def event(labels: dict[str, str], group_key: str, group_labels: dict[str, str], **kw: str) -> Event:
    return Event(
        source="alertmanager",
        fingerprint=str(abs(hash(tuple(sorted(labels.items()))))),
        group_key="am/alert-router/" + group_key,
        status=Status.FIRING,
        labels=labels,
        starts_at=datetime(2026, 12, 1, tzinfo=UTC),
        external_url=kw.get("external_url", AM),
        group_labels=group_labels,
        # As ingest keeps them: the sender's own env/severity, which normalizing replaces.
        replaced_labels={k: v for k, v in labels.items() if k in NORMALIZED_LABELS},
    )


def covers(scope: SilenceScope, labels: dict[str, str]) -> bool:
    return all(Matcher(n, o, v).matches(labels) for n, o, v in scope.matchers)


def test_the_route_in_the_group_key_keeps_the_silence_to_its_team() -> None:
    disk = {"alertname": "DiskFull", "team": "payments", "instance": "db-1"}
    key = '{}/{team="payments"}:{alertname="DiskFull"}'
    scope = silence_scope("s", [event(disk, key, {"alertname": "DiskFull"})], CONFIG)
    assert scope.alertmanager == "prod"
    assert scope.matchers == (("team", "=", "payments"), ("alertname", "=", "DiskFull"))
    # Another team's DiskFull is not silenced by it.
    assert not covers(scope, {"alertname": "DiskFull", "team": "search"})


def test_an_alertmanager_is_known_by_its_external_url_or_its_url() -> None:
    labels = {"alertname": "X"}
    dev = "http://alertmanager-dev:9093"
    for external, name in ((AM + "/", "prod"), (dev, "alertmanager-dev:9093")):
        scope = silence_scope("s", [event(labels, "{}:{}", {}, external_url=external)], CONFIG)
        assert scope.alertmanager == name and scope.offered
    for external in ("https://am-prod.example.com.evil", "http://attacker/am", ""):
        scope = silence_scope("s", [event(labels, "{}:{}", {}, external_url=external)], CONFIG)
        assert not scope.offered and scope.alertmanager == ""


def test_group_labels_that_do_not_hold_for_the_alerts_are_not_believed() -> None:
    # A stranger's body: group labels wider than, and unlike, its own alerts.
    alerts = [
        event({"alertname": "A", "env": "prod", "pod": "p1"}, '{}:{env="prod"}', {"env": "x"}),
        event({"alertname": "A", "env": "prod", "pod": "p2"}, '{}:{env="prod"}', {"env": "x"}),
    ]
    scope = silence_scope("s", alerts, CONFIG)
    # The labels every alert shares, all of them.
    assert scope.matchers == (("alertname", "=", "A"), ("env", "=", "prod"))


def test_a_team_receivers_silence_carries_the_teams_scope() -> None:
    labels = {"alertname": "DiskFull", "team": "payments"}
    scope = silence_scope("payments/pager", [event(labels, "{}:{}", {})], CONFIG)
    assert ("team", "=", "payments") in scope.matchers


def test_group_keys_split_into_route_levels_and_group_labels() -> None:
    assert split_group_key('{}/{path="/a:{b}/c"}:{x="1"}') == (
        ["{}", '{path="/a:{b}/c"}'],
        '{x="1"}',
    )
    assert route_matchers("{}:{}") == []
    for broken in ("", "{", "{}/", "{}:{", "x{}:{}", '{}/{a=~"("}:{}'):
        assert route_matchers(broken) is None


label_names = st.sampled_from(["alertname", "env", "team", "pod", "job", "severity"])
label_values = st.text(min_size=0, max_size=6)
label_sets = st.dictionaries(label_names, label_values, max_size=5)


@FUZZ
@given(
    alerts=st.lists(label_sets, min_size=1, max_size=4),
    group_key=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda route, group: "{}/" + route + ":" + group,
            st.sampled_from(['{team="payments"}', '{env=~".*"}', '{pod!="x"}', "{}"]),
            st.sampled_from(['{alertname="A"}', "{}", '{env="prod"}']),
        ),
    ),
    group_labels=label_sets,
)
def test_a_silence_always_covers_its_group_and_nothing_it_does_not_share(
    alerts: list[dict[str, str]], group_key: str, group_labels: dict[str, str]
) -> None:
    events = [event(labels, group_key, group_labels) for labels in alerts]
    scope = silence_scope("s", events, CONFIG)
    if not scope.offered:
        return
    # It silences the group it was shown on...
    assert all(covers(scope, labels) for labels in alerts)
    # ...and names at least every label value all of its alerts share, or the route's
    # own matchers with the group labels Alertmanager grouped them by.
    common = {k: v for k, v in alerts[0].items() if v and all(a.get(k) == v for a in alerts)}
    names = {(n, v) for n, o, v in scope.matchers if o == "="}
    route = route_matchers(group_key)
    from_route = (
        route is not None
        and group_labels
        and all((k, v) in names for k, v in group_labels.items() if v)
    )
    assert from_route or set(common.items()) <= names
    assert any(o in ("=", "=~") for _, o, _ in scope.matchers)


@FUZZ
@given(
    headers=st.lists(
        st.tuples(st.sampled_from([*USER_HEADERS, "X-Other", "Accept"]), st.text(max_size=8)),
        max_size=5,
    ),
    configured=st.sampled_from(USER_HEADERS),
)
def test_a_user_is_believed_only_from_one_copy_of_the_one_configured_header(
    headers: list[tuple[str, str]], configured: str
) -> None:
    sent: CIMultiDict[str] = CIMultiDict(headers)
    problem = user_header_problem(sent, configured)
    named = [v for k, v in headers if k.lower() == configured.lower()]
    others = [k for k, _ in headers if k in USER_HEADERS and k.lower() != configured.lower()]
    assert (problem is None) == (len(named) <= 1 and not others)
