"""Alert fingerprints and identities fuzzed: Alertmanager's fingerprint for any label set,
a sent fingerprint as the identity, and identities that keep different label sets apart
where the sender could not (placeholders, one fingerprint for several alerts of a body)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from router.identity import alert_identity, as_sent, is_fingerprint, label_fingerprint
from tests.fuzzing import FUZZ, TIMEOUT

pytestmark = pytest.mark.timeout(TIMEOUT)

label_sets = st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=8)
sent = st.from_regex(r"[0-9a-f]{16}", fullmatch=True) | st.text(min_size=1, max_size=20).map(
    str.strip
).filter(bool)


def prometheus_fingerprint(labels: dict[str, str]) -> str:
    """LabelSet.Fingerprint written out plainly: FNV-1a 64 over the sorted names and values,
    each followed by the 0xff byte."""
    h = 14695981039346656037
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            h = ((h ^ byte) * 1099511628211) % 2**64
    return f"{h:016x}"


def test_the_fingerprint_of_prometheus_test_vectors() -> None:
    assert label_fingerprint({}) == f"{14695981039346656037:016x}"
    assert label_fingerprint({"name": "garland, briggs", "fear": "love is not enough"}) == (
        f"{5799056148416392346:016x}"
    )


@FUZZ
@given(labels=label_sets)
def test_the_fingerprint_of_any_label_set_is_prometheus_one(labels: dict[str, str]) -> None:
    assert label_fingerprint(labels) == prometheus_fingerprint(labels)


@FUZZ
@given(labels=label_sets)
def test_an_alert_sent_with_its_own_fingerprint_or_none_is_known_by_it(
    labels: dict[str, str],
) -> None:
    own = label_fingerprint(labels)
    assert alert_identity(own, labels) == alert_identity("", labels) == own == as_sent(own)


@FUZZ
@given(fingerprint=sent, labels=label_sets, others=label_sets)
def test_one_fingerprint_shared_by_different_labels_gives_different_identities(
    fingerprint: str, labels: dict[str, str], others: dict[str, str]
) -> None:
    assume(labels != others)
    one = alert_identity(fingerprint, labels, shared=True)
    other = alert_identity(fingerprint, others, shared=True)
    assert one != other
    assert as_sent(one) == as_sent(other) == fingerprint


@FUZZ
@given(fingerprint=st.from_regex(r"[0-9a-f]{16}", fullmatch=True), labels=label_sets)
def test_a_sent_fingerprint_is_the_identity_as_in_alertmanager(
    fingerprint: str, labels: dict[str, str]
) -> None:
    assert alert_identity(fingerprint, labels) == fingerprint == as_sent(fingerprint)


@FUZZ
@given(
    placeholder=st.text(min_size=1, max_size=20).map(str.strip).filter(bool),
    labels=label_sets,
    others=label_sets,
)
def test_a_value_that_is_no_fingerprint_never_joins_different_labels(
    placeholder: str, labels: dict[str, str], others: dict[str, str]
) -> None:
    assume(labels != others and not is_fingerprint(placeholder))
    one, other = alert_identity(placeholder, labels), alert_identity(placeholder, others)
    assert one != other
    assert as_sent(one) == as_sent(other) == placeholder


@FUZZ
@given(fingerprint=sent | st.just(""), labels=label_sets)
def test_the_identity_does_not_depend_on_the_order_labels_came_in(
    fingerprint: str, labels: dict[str, str]
) -> None:
    backwards = dict(reversed(list(labels.items())))
    assert alert_identity(fingerprint, labels) == alert_identity(fingerprint, backwards)


def test_a_lone_surrogate_in_a_label_is_hashed_not_an_error() -> None:
    # No JSON body can carry one; other callers might.
    assert len(label_fingerprint({"a": "\ud800", "b": "\udcff"})) == 16
    assert as_sent(alert_identity("x", {"a": "\ud800"})) == "x"
