"""The JSON API behind the console, against the running service fed by real webhooks: the
filters and pages of the list, one record's decision timeline, one group, the route
tester, the admin's retry, and what a bad request or a store outage answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest

from router.model import DeliveryState
from router.web.openapi import openapi_document
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack, Reply
from tests.helpers import config_from

ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def config(slack: FakeSlack, state_url: str) -> Any:
    return config_from(
        f"""
server: {{auth: {{admin: {{bearer_token: {ADMIN_TOKEN}}}}}}}
state: {{url: '{state_url}'}}
slack: {{per_channel_interval: 0.01}}
receivers:
  - name: ops
    slack: {{token: {slack.token}, channel: '#prod-alerts', api_url: '{slack.api_url}'}}
  - name: dev
    slack: {{token: {slack.token}, channel: '#dev-alerts', api_url: '{slack.api_url}'}}
time_intervals:
  - name: always
    time_intervals: [{{times: [{{start_time: "00:00", end_time: "24:00"}}]}}]
inhibit_rules:
  - name: critical-silences-warning
    source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
route:
  receiver: ops
  routes:
    - matchers: ['env="dev"']
      receiver: dev
      mute_time_intervals: [always]
"""
    )


@pytest.fixture
async def svc(slack: FakeSlack, state_url: str) -> AsyncIterator[Running]:
    async with running(config(slack, state_url)) as service:
        yield service


def webhook(group: str, *alerts: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "receiver": "r",
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": "s"},
                "startsAt": "2026-11-26T10:00:00Z",
                "fingerprint": f"{abs(hash(tuple(sorted(labels.items())))):016x}"[:16],
            }
            for labels in alerts
        ],
    }


async def post_alert(svc: Running, group: str, **labels: str) -> None:
    status, body = await svc.post("/webhook/alertmanager", webhook(group, labels))
    assert status == 200, body


def finished(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda records: len(records) >= count and all(r["state"] != "pending" for r in records)


async def one(svc: Running, nid: str) -> dict[str, Any]:
    status, body = await svc.get_json(f"/api/v1/notifications/{nid}")
    assert status == 200, body
    record: dict[str, Any] = body
    return record


def kinds(record: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in record["timeline"]]


async def test_a_sent_notification_tells_its_whole_story(svc: Running) -> None:
    await post_alert(svc, "g-sent", alertname="DiskFull", env="prod", severity="critical")
    [record] = await svc.wait_for_records(finished(1))
    story = await one(svc, record["id"])
    assert story["state"] == "sent"
    assert kinds(story) == ["received", "routed", "deduplicated", "enriched", "sent"]
    received, routed, dedup, enriched, sent = story["timeline"]
    assert received["detail"]["source"] == "alertmanager"
    assert routed["detail"] == {"receiver": "ops", "route": record["route_path"]}
    assert dedup["detail"]["reason"] == "first"
    assert "enrich.loki is not configured" in enriched["text"]
    assert sent["detail"]["channel"] == "C0PRODALRT" and sent["detail"]["ts"]
    assert sent["detail"]["permalink"].endswith(
        "/archives/C0PRODALRT/p" + sent["detail"]["ts"].replace(".", "")
    )
    assert "#prod-alerts" in sent["text"]


async def test_an_inhibited_alert_names_the_rule_and_the_source_alert(svc: Running) -> None:
    await post_alert(svc, "g-crit", alertname="Latency", env="prod", severity="critical")
    await svc.wait_for_records(finished(1))
    await post_alert(svc, "g-warn", alertname="Latency", env="prod", severity="warning")
    records = await svc.wait_for_records(finished(2))
    warn = next(r for r in records if r["group_key"].endswith("g-warn"))
    story = await one(svc, warn["id"])
    assert (story["state"], story["reason"]) == ("suppressed", "inhibited")
    [inhibited] = [e for e in story["timeline"] if e["kind"] == "inhibited"]
    assert inhibited["detail"]["rule"] == "critical-silences-warning"
    assert '"severity": "critical"' in inhibited["detail"]["source"]
    assert "critical-silences-warning" in inhibited["text"]
    assert 'severity="critical"' in inhibited["text"]


async def test_a_muted_alert_names_the_interval(svc: Running) -> None:
    await post_alert(svc, "g-dev", alertname="Flaky", env="dev")
    [record] = await svc.wait_for_records(finished(1))
    story = await one(svc, record["id"])
    assert (story["receiver"], story["reason"]) == ("dev", "muted")
    [muted] = [e for e in story["timeline"] if e["kind"] == "muted"]
    assert muted["text"] == "muted by always"
    assert kinds(story)[-1] == "suppressed"


async def test_a_failed_notification_is_retried_by_an_admin_and_delivered(
    svc: Running, slack: FakeSlack
) -> None:
    slack.script("chat.postMessage", Reply.error("channel_not_found"))
    await post_alert(svc, "g-fail", alertname="Down", env="prod")
    [record] = await svc.wait_for_records(finished(1))
    story = await one(svc, record["id"])
    assert story["state"] == "failed"
    assert kinds(story)[-2:] == ["attempt", "failed"]
    assert "channel_not_found" in story["timeline"][-2]["detail"]["error"]

    status, body = await svc.post(f"/api/v1/notifications/{record['id']}/retry", {})
    assert status == 401, body
    status, body = await svc.post(f"/api/v1/notifications/{record['id']}/retry", {}, ADMIN)
    assert status == 200, body
    assert body["notification"]["state"] in ("pending", "sent")
    records = await svc.wait_for_records(lambda rs: rs[0]["state"] == "sent")
    story = await one(svc, records[0]["id"])
    assert "retried" in kinds(story) and kinds(story)[-1] == "sent"

    status, body = await svc.post(f"/api/v1/notifications/{record['id']}/retry", {}, ADMIN)
    assert (status, body["error"]) == (
        409,
        f"notification {record['id']!r} is sent: only failed or dead ones are retried",
    )
    status, body = await svc.post("/api/v1/notifications/nope/retry", {}, ADMIN)
    assert status == 404 and "nope" in body["error"]


async def test_the_list_filters_and_pages_newest_first(svc: Running) -> None:
    await post_alert(svc, "a", alertname="KubePodCrashLooping", env="prod", severity="critical")
    await post_alert(svc, "b", alertname="DiskFull", env="prod", severity="warning")
    await post_alert(svc, "c", alertname="CPUHigh", env="dev", severity="warning")
    await post_alert(svc, "d", alertname="DiskFull", env="staging", severity="info")
    await svc.wait_for_records(finished(4))

    async def groups(query: str) -> list[str]:
        status, body = await svc.get_json(f"/api/v1/notifications?{query}")
        assert status == 200, body
        return [r["group_key"].rsplit("/", 1)[-1] for r in body["notifications"]]

    assert await groups("") == ["d", "c", "b", "a"]
    assert await groups("env=prod") == ["b", "a"]
    assert await groups("severity=warning") == ["c", "b"]
    assert await groups("receiver=dev") == ["c"]
    assert await groups("state=suppressed&reason=muted") == ["c"]
    assert await groups("state=sent&env=prod&severity=critical") == ["a"]
    assert await groups("q=diskf") == ["d", "b"]
    assert await groups("q=CRASHLOOP&source=alertmanager") == ["a"]
    assert await groups("source=argocd") == []

    seen: list[str] = []
    cursor = ""
    while True:
        status, body = await svc.get_json(f"/api/v1/notifications?limit=3&cursor={cursor}")
        assert status == 200
        seen += [r["group_key"].rsplit("/", 1)[-1] for r in body["notifications"]]
        if body["next_cursor"] is None:
            break
        cursor = quote(body["next_cursor"])
    assert seen == ["d", "c", "b", "a"]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=1001", "limit must be between 1 and 1000"),
        ("limit=ten", "limit must be an integer"),
        ("state=lost", "state must be one of pending, sent, suppressed, failed, dead"),
        ("q=ab", "q must be at least 3 characters"),
        ("cursor=zzz", "cursor: not a cursor this service gave out"),
    ],
)
async def test_a_bad_list_request_says_what_to_change(svc: Running, query: str, error: str) -> None:
    status, body = await svc.get_json(f"/api/v1/notifications?{query}")
    assert status == 400
    assert body["error"].startswith(error)


async def test_an_unknown_notification_is_a_json_404(svc: Running) -> None:
    status, body = await svc.get_json("/api/v1/notifications/no-such-id")
    assert status == 404 and "no-such-id" in body["error"]


async def test_a_group_shows_every_receivers_records_by_its_url_encoded_key(
    svc: Running,
) -> None:
    await post_alert(svc, '{}/{team="web"}:{alertname="X"}', alertname="X", env="prod")
    [record] = await svc.wait_for_records(finished(1))
    key = record["group_key"]
    assert "/" in key
    status, body = await svc.get_json(f"/api/v1/groups/{quote(key, safe='')}")
    assert status == 200, body
    assert body["group_key"] == key
    assert body["receivers"] == [
        {
            "receiver": "ops",
            "state": "sent",
            "reason": "first",
            "latest": record["id"],
            "actions": None,
        }
    ]
    assert [r["id"] for r in body["notifications"]] == [record["id"]]
    status, body = await svc.get_json(f"/api/v1/groups/{quote('no such group')}")
    assert (status, body["receivers"], body["notifications"]) == (200, [], [])


async def test_the_route_tester_answers_receivers_path_mutes_and_inhibition(
    svc: Running,
) -> None:
    status, body = await svc.post(
        "/api/v1/routes/test", {"labels": {"alertname": "A", "env": "dev"}}
    )
    assert status == 200, body
    assert (body["receivers"], body["muted"], body["inhibited"]) == ([], ["dev"], False)
    assert body["path"] == [body["routes"][0]["path"]]
    assert body["routes"][0]["muted_by"] == "muted by always"

    await post_alert(svc, "g-crit", alertname="Latency", env="prod", severity="critical")
    await svc.wait_for_records(finished(1))
    status, body = await svc.post(
        "/api/v1/routes/test",
        {"labels": {"alertname": "Latency", "severity": "warning"}, "at": "2026-11-26T22:00:00Z"},
    )
    assert status == 200, body
    assert body["receivers"] == ["ops"]
    assert body["inhibited"] is True
    assert body["inhibited_by"]["rule"] == "critical-silences-warning"
    assert body["labels"]["env"] == "unknown"  # normalized as a webhook's would be


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "body must be a JSON object"),
        (b"[1]", "body must be a JSON object"),
        (b"{}", "labels must be a non-empty object"),
        (b'{"labels": {"a": 1}}', "labels.a: each label needs a name and a string value"),
        (b'{"labels": {"a": "b"}, "at": "tomorrow"}', "at must be an RFC 3339 time"),
        (b'{"labels": {"a": "b"}, "when": "x"}', "unknown field 'when'"),
    ],
)
async def test_a_bad_route_test_says_what_to_change(svc: Running, body: bytes, error: str) -> None:
    status, answer = await svc.post("/api/v1/routes/test", body)
    assert status == 400
    assert answer["error"].startswith(error)


async def test_a_store_that_does_not_answer_is_a_json_503(svc: Running) -> None:
    await svc.state.store.close()
    for path in ("/api/v1/notifications", "/api/v1/notifications/x", "/api/v1/groups/g"):
        status, body = await svc.get_json(path)
        assert (status, body) == (503, {"error": "state store unavailable, retry later"}), path


async def test_the_openapi_document_describes_every_route_of_the_service(
    svc: Running,
) -> None:
    status, doc = await svc.get_json("/api/v1/openapi.json")
    assert status == 200
    assert doc == openapi_document()
    assert doc["openapi"].startswith("3.")
    served = {
        (
            route.method.lower(),
            route.resource.canonical.replace(":[^/]+", "").replace(":[\\s\\S]+", ""),
        )
        for route in svc.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served - described == set()
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "basic"}


async def test_records_of_a_retry_are_counted_in_their_new_state(svc: Running) -> None:
    """count_states backs the console's 24 h counters: a retried record moves."""
    store = svc.state.store
    await post_alert(svc, "g1", alertname="A", env="prod")
    await post_alert(svc, "g2", alertname="B", env="dev")
    await svc.wait_for_records(finished(2))
    assert await store.count_states(0) == {
        (DeliveryState.SENT.value, "first"): 1,
        (DeliveryState.SUPPRESSED.value, "muted"): 1,
    }
