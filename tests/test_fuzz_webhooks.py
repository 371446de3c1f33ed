"""Both webhook parsers fuzzed through the running service: every body ends in a 200 or a
400 with a JSON reason, never a 5xx, a hang or a warning or traceback in the logs.

The service runs on its own event loop in a thread for the whole module (each input is one
HTTP round trip), with webhook receivers into a sink, inhibit rules and Argo CD deploy
correlation, so accepted bodies go through routing, recording and delivery as in
production.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.config.schema import Config
from tests.conftest import Running, running
from tests.fakes.webhook_sink import WebhookSink
from tests.fuzzing import FUZZ, TIMEOUT
from tests.helpers import config_from, payload

pytestmark = pytest.mark.timeout(TIMEOUT)

# A round trip that takes this long is a hang.
HANG = 15.0


def fuzz_config(sink: WebhookSink, state_url: str) -> Config:
    return config_from(
        f"""
state: {{url: '{state_url}'}}
environment: {{from_labels: [env, environment, namespace], aliases: {{production: prod}}}}
severity: {{from_labels: [severity], aliases: {{page: critical}}, default: warning}}
receivers:
  - {{name: prod, webhook: {{url: '{sink.url("/prod")}'}}}}
  - {{name: deploys, webhook: {{url: '{sink.url("/deploys")}'}}}}
  - {{name: other, webhook: {{url: '{sink.url("/other")}'}}}}
route:
  receiver: other
  routes:
    - {{matchers: ['source="argocd"', 'severity="info"'], receiver: deploys}}
    - {{matchers: ['env=~"prod|production"', 'alertname!~"^$"'], receiver: prod}}
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
"""
    )


class Problems(logging.Handler):
    """Collects every warning, error and traceback logged while the service runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        found = [self.format(r) for r in self.records]
        self.records.clear()
        return found


class ServiceThread:
    """The service on its own event loop, answering synchronous posts from the tests."""

    def __init__(self, state_url: str) -> None:
        self.state_url = state_url
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.svc: Running | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        async with WebhookSink() as sink, running(fuzz_config(sink, self.state_url)) as svc:
            self.svc = svc
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> ServiceThread:
        self.thread.start()
        assert self.ready.wait(30), "the service did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self.stop is not None
        try:
            # What was accepted is delivered before the logs are judged: a delivery that
            # fails on what a body said would show there.
            asyncio.run_coroutine_threadsafe(self._delivered(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.stop.set)
            self.thread.join(30)

    async def _delivered(self) -> None:
        assert self.svc is not None
        state = self.svc.state
        # The store has no change notification to wait on: poll it.
        while await state.store.pending_count() or state.deliverer.in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def post(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        """POST a raw JSON body; (status, content type, body) of the answer."""
        assert self.loop is not None

        async def post() -> tuple[int, str, bytes]:
            assert self.svc is not None
            headers = {"Content-Type": "application/json"}
            async with self.svc.http.post(self.svc.url + path, data=body, headers=headers) as r:
                return r.status, r.content_type, await r.read()

        return asyncio.run_coroutine_threadsafe(post(), self.loop).result(HANG)


@pytest.fixture(scope="module")
def problems() -> Iterator[Problems]:
    handler = Problems()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, problems: Problems
) -> Iterator[ServiceThread]:
    state = tmp_path_factory.mktemp("fuzz") / "state.db"
    with ServiceThread(f"sqlite:///{state}") as svc:
        yield svc
    assert problems.take() == []


# --- what senders put in bodies -------------------------------------------------------

TRICKY_TEXT = [
    "",
    " ",
    "firing",
    "resolved",
    "FIRING",
    "4",
    "3",
    "<no value>",
    "null",
    "<nil>",
    "0001-01-01T00:00:00Z",
    "2026-11-26T10:00:00Z",
    "2021-03-30T20:17:50.814674209+08:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:30:00+01:00",
    "0000-00-00T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "1460045332",
    "fbab788ec4c1018b",
    "83eb2c81e0da3faf~0123456789abcdef",
    '{}:{alertname="A"}',
    "a\x00b",
    "line\nbreak",
    "\u2028",
    "\U0001f525",
    "x" * 300,
    "prod",
    "production",
    "critical",
    "warning",
    "page",
    "alertname",
    "on-sync-failed",
    "on-health-degraded",
    "on-deployed",
    "Healthy",
    "Succeeded",
]
texts = st.sampled_from(TRICKY_TEXT) | st.text(max_size=24)
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -1, 2**63, 9777663806026784477, 1e300, -0.0])
)
scalars = st.none() | st.booleans() | numbers | texts
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)), timezone.min]
)
times = (
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones
    ).map(lambda t: t.isoformat())
    | st.sampled_from(TRICKY_TEXT)
    | numbers
    | st.none()
)
label_names = st.sampled_from(
    ["alertname", "severity", "env", "environment", "namespace", "instance", "source", ""]
) | st.text(max_size=12)
label_values = texts | numbers | st.none() | st.booleans()
label_maps = st.dictionaries(label_names, label_values, max_size=6) | json_values


def maybe_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly what the field usually holds, sometimes any JSON value at all."""
    return st.one_of(strategy, strategy, strategy, json_values)


alerts = st.fixed_dictionaries(
    {"labels": maybe_junk(st.dictionaries(label_names, label_values, min_size=1, max_size=6))},
    optional={
        "status": maybe_junk(st.sampled_from(["firing", "resolved"]) | texts),
        "annotations": maybe_junk(label_maps),
        "startsAt": maybe_junk(times),
        "endsAt": maybe_junk(times),
        "generatorURL": maybe_junk(texts),
        "fingerprint": maybe_junk(
            st.sampled_from(["", "83eb2c81e0da3faf", "0000000000000001"])
            | st.from_regex(r"[0-9a-f]{16}", fullmatch=True)
            | texts
            | numbers
        ),
    },
)
alertmanager_bodies = st.fixed_dictionaries(
    {"alerts": maybe_junk(st.lists(maybe_junk(alerts), min_size=1, max_size=5))},
    optional={
        "version": maybe_junk(st.sampled_from(["4", "3", 4, 3]) | texts),
        "groupKey": maybe_junk(texts | numbers),
        "receiver": maybe_junk(texts),
        "status": maybe_junk(st.sampled_from(["firing", "resolved"]) | texts),
        "groupLabels": maybe_junk(label_maps),
        "commonLabels": maybe_junk(label_maps),
        "commonAnnotations": maybe_junk(label_maps),
        "externalURL": maybe_junk(texts),
        "truncatedAlerts": maybe_junk(numbers | texts),
        "notification_reason": texts,
    },
)
argocd_bodies = st.fixed_dictionaries(
    {
        "trigger": maybe_junk(
            st.sampled_from(
                ["on-sync-failed", "on-health-degraded", "on-sync-status-unknown", "on-deployed"]
                + ["on-sync-succeeded", "on-health-healthy", "on-created", "on-deleted"]
            )
            | texts
        ),
        "app": maybe_junk(texts),
    },
    optional={
        "project": maybe_junk(texts),
        "namespace": maybe_junk(texts),
        "labels": maybe_junk(label_maps),
        "syncStatus": maybe_junk(st.sampled_from(["Synced", "OutOfSync", "Unknown"]) | texts),
        "healthStatus": maybe_junk(st.sampled_from(["Healthy", "Degraded"]) | texts),
        "operationPhase": maybe_junk(st.sampled_from(["Succeeded", "Failed"]) | texts),
        "message": maybe_junk(texts),
        "revision": maybe_junk(texts | numbers),
        "repoURL": maybe_junk(texts),
        "finishedAt": maybe_junk(times),
        "argocdUrl": maybe_junk(texts),
    },
)


def encoded(bodies: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return bodies.map(lambda body: json.dumps(body).encode())


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[bytes]) -> bytes:
    """A document with a few bytes cut, replaced or inserted: broken JSON, mostly."""
    data = bytearray(draw(documents))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["cut", "replace", "insert"]))
        piece = draw(
            st.binary(max_size=4)
            | st.sampled_from([b"\\ud800", b'"', b"\\", b"\xff", b"NaN", b"1e999", b"[" * 50])
        )
        if action == "cut":
            del data[at : at + len(piece) + 1]
        elif action == "replace":
            data[at : at + len(piece)] = piece
        else:
            data[at:at] = piece
    return bytes(data)


def samples(*names: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from([json.dumps(payload(name)).encode() for name in names])


def bodies_for(structured: st.SearchStrategy[Any], *sample_names: str) -> st.SearchStrategy[bytes]:
    documents = encoded(structured) | samples(*sample_names)
    return (
        documents
        | mutated(documents)
        | encoded(json_values)
        | st.binary(max_size=64)
        | st.sampled_from([b"", b"null", b"[]", b"{}", b'"x"', b"{" * 5000, b"[" * 5000])
    )


def assert_answered_properly(
    service: ServiceThread, problems: Problems, source: str, body: bytes
) -> None:
    status, content_type, raw = service.post(f"/webhook/{source}", body)
    assert status in (200, 400), (status, raw[:500])
    assert content_type == "application/json"
    answer = json.loads(raw)
    if status == 200:
        # An Argo CD recovery trigger with nothing to resolve is accepted with no event.
        least = 1 if source == "alertmanager" else 0
        assert isinstance(answer["accepted"], int) and answer["accepted"] >= least
    else:
        assert isinstance(answer["error"], str) and answer["error"]
    assert problems.take() == []


ALERTMANAGER_SAMPLES = (
    "alertmanager_firing.json",
    "alertmanager_resolved.json",
    "real_world/alertmanagerTofeishu_test.json",
    "real_world/prometheus-am-executor_integration_v3.json",
)


@FUZZ
@given(body=bodies_for(alertmanager_bodies, *ALERTMANAGER_SAMPLES))
def test_every_alertmanager_body_is_accepted_or_refused_with_a_reason(
    service: ServiceThread, problems: Problems, body: bytes
) -> None:
    assert_answered_properly(service, problems, "alertmanager", body)


@FUZZ
@given(body=bodies_for(argocd_bodies, "argocd_sync_failed.json"))
def test_every_argocd_body_is_accepted_or_refused_with_a_reason(
    service: ServiceThread, problems: Problems, body: bytes
) -> None:
    assert_answered_properly(service, problems, "argocd", body)
