"""The webhook path reads ordinary Alertmanager bodies without the schema's Python
validators: what it reads is what AlertmanagerWebhook reads, and whatever it cannot read
alike is left to AlertmanagerWebhook."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from router.ingest.alertmanager import AlertmanagerWebhook, read_plain
from tests.helpers import payload
from tests.test_fuzz_webhooks import (
    ALERTMANAGER_SAMPLES,
    alertmanager_bodies,
    bodies_for,
    label_names,
    numbers,
    texts,
)

# Mostly what ordinary senders send, now and then what only the schema reads alike.
rarely: st.SearchStrategy[Any] = st.none() | numbers | st.booleans()
words = st.text(min_size=1, max_size=12) | texts
maps = st.one_of(
    *[st.dictionaries(label_names, words, min_size=1, max_size=6)] * 4,
    st.dictionaries(label_names, words | rarely, max_size=6),
)
# Times as Alertmanager and its imitators write them (the fuzzed bodies bring the rest).
moments = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat().replace("+00:00", "Z")),
    st.just("0001-01-01T00:00:00Z"),
    st.integers(0, 2**40),
)
ordinary_alerts = st.fixed_dictionaries(
    {"labels": maps},
    optional={
        "status": st.sampled_from(["firing", "resolved"]),
        "annotations": maps,
        "startsAt": moments,
        "endsAt": moments,
        "generatorURL": texts,
        "fingerprint": texts | numbers,
    },
)
ordinary_bodies = st.fixed_dictionaries(
    {"alerts": st.lists(ordinary_alerts, min_size=1, max_size=4)},
    optional={
        "version": st.sampled_from(["4", 4]),
        "groupKey": texts | numbers,
        "receiver": texts,
        "status": st.sampled_from(["firing", "resolved"]),
        "groupLabels": maps,
        "externalURL": texts,
        "truncatedAlerts": st.integers(-1, 10) | numbers,
    },
).map(lambda body: json.dumps(body).encode())


def read_exactly(body: bytes) -> Any:
    try:
        return AlertmanagerWebhook.model_validate_json(body)
    except ValidationError:
        return None


def dumped(model: AlertmanagerWebhook) -> str:
    # repr, so a time read with another offset differs too.
    return repr(model.model_dump())


def assert_read_alike(body: bytes) -> None:
    plain = read_plain(body)
    if plain is None:
        return
    exact = read_exactly(body)
    assert exact is not None, body
    assert dumped(plain) == dumped(exact), body


@settings(max_examples=500, deadline=None)
@given(body=ordinary_bodies | bodies_for(alertmanager_bodies, *ALERTMANAGER_SAMPLES))
def test_a_body_read_plainly_is_read_as_the_schema_reads_it(body: bytes) -> None:
    assert_read_alike(body)


@pytest.mark.parametrize("name", ALERTMANAGER_SAMPLES)
def test_the_senders_own_bodies_are_read_plainly(name: str) -> None:
    body = json.dumps(payload(name)).encode()
    assert read_plain(body) is not None
    assert_read_alike(body)


def alert(labels: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"labels": labels, **fields}


@pytest.mark.parametrize(
    ("body", "plain"),
    [
        ({"alerts": [alert({"a": "b", "c": "", "": "d"}, annotations={"x": "", "y": "z"})]}, True),
        ({"groupLabels": {"a": "", "b": "c"}, "alerts": [alert({"a": "b"})]}, True),
        ({"alerts": [alert({"a": "b"}, startsAt=1764151200.5, endsAt=None)]}, True),
        # For the schema: no value left, a value to drop, numbers, blank times, no alerts.
        ({"alerts": [alert({"a": ""})]}, False),
        ({"alerts": [alert({"a": "b", "c": None})]}, False),
        ({"alerts": [alert({"a": "b"}, annotations=None)]}, False),
        ({"alerts": [alert({"a": 1.0})]}, False),
        ({"alerts": [alert({"a": "b"}, annotations={"n": 1e3})]}, False),
        ({"alerts": [alert({"a": "b"}, startsAt="")]}, False),
        ({"alerts": []}, False),
        ({"alerts": [alert({"a": "b"}, status="burning")]}, False),
    ],
)
def test_what_only_the_schema_reads_alike_is_left_to_it(body: dict[str, Any], plain: bool) -> None:
    encoded = json.dumps(body).encode()
    assert (read_plain(encoded) is not None) is plain
    assert_read_alike(encoded)
