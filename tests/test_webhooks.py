"""The HTTP contract end to end: webhooks in, receivers reached, bad input refused."""

from __future__ import annotations

import asyncio
import base64
import logging
import platform
import textwrap
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from router.config.schema import Config
from router.web.state import Tuning
from tests.conftest import Running, running
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import DATA, config_from, payload

TOKEN = "am-secret-token"


def routing_config(sink: WebhookSink, state_url: str, extra: str = "") -> Config:
    """The example's route tree and label sources (env from a namespace too, as the example
    opts in to), with every receiver a webhook into `sink` (path = name)."""
    names = ["slack-deploys", "slack-prod", "email-sre", "slack-dev", "stdout"]
    receivers = "\n".join(
        f"  - name: {n}\n    webhook:\n      url: {sink.url('/' + n)}" for n in names
    )
    return config_from(
        f"""
server:
  auth:
    alertmanager:
      bearer_token: {TOKEN}
    argocd:
      basic_auth: {{username: argocd, password: pw}}
  max_body_bytes: 20000
state:
  url: {state_url}
environment:
  from_labels: [env, environment, namespace]
  aliases: {{production: prod, development: dev}}
severity:
  from_labels: [severity]
  aliases: {{page: critical}}
  default: warning
receivers:
{receivers}
route:
  receiver: stdout
  routes:
    - matchers: ['source="argocd"', 'severity="info"']
      receiver: slack-deploys
    - matchers: ['env="prod"', 'severity="critical"']
      receiver: slack-prod
      continue: true
    - matchers: ['env="prod"', 'severity=~"critical|warning"']
      receiver: email-sre
    - matchers: ['env="dev"']
      receiver: slack-dev
{extra}
"""
    )


AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARGO_AUTH = {"Authorization": "Basic " + base64.b64encode(b"argocd:pw").decode()}


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as s:
        yield s


@pytest.fixture
async def service(sink: WebhookSink, state_url: str) -> AsyncIterator[Running]:
    # Routing is what these tests check: no flap-damping hold delays a degraded app.
    no_hold = "argocd:\n  hold: {on-health-degraded: 0s}"
    async with running(routing_config(sink, state_url, no_hold)) as svc:
        yield svc


def am_alert(labels: dict[str, str], status: str = "firing", group: str = "g1") -> dict[str, Any]:
    body = payload("alertmanager_firing.json")
    body["groupKey"] = group
    body["status"] = status
    alert = body["alerts"][0]
    alert.update(status=status, labels=labels, fingerprint="")
    body["alerts"] = [alert]
    return body


async def paths(sink: WebhookSink, count: int) -> list[str]:
    async with asyncio.timeout(10):
        requests = await sink.wait_for(count)
    return sorted(r.path for r in requests)


async def test_alertmanager_sample_is_accepted_and_delivered(
    service: Running, sink: WebhookSink
) -> None:
    status, body = await service.post(
        "/webhook/alertmanager", payload("alertmanager_firing.json"), AUTH
    )
    assert (status, body) == (200, {"accepted": 2})
    [request] = [r for r in await sink.wait_for(1)]
    assert request.path == "/stdout"
    delivered = request.json
    assert delivered["status"] == "firing"
    assert {a["fingerprint"] for a in delivered["alerts"]} == {
        "83eb2c81e0da3faf",
        "93eb2c81e0da3fb0",
    }


async def test_prod_critical_goes_to_slack_and_email_in_order(
    service: Running, sink: WebhookSink
) -> None:
    labels = {"alertname": "HighErrorRate", "env": "production", "severity": "page"}
    status, _ = await service.post("/webhook/alertmanager", am_alert(labels), AUTH)
    assert status == 200
    assert await paths(sink, 2) == ["/email-sre", "/slack-prod"]
    records = await service.records()
    assert {r["receiver"] for r in records} == {"slack-prod", "email-sre"}


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "A", "env": "prod", "severity": "warning"}, "/email-sre"),
        ({"alertname": "A", "namespace": "dev"}, "/slack-dev"),
        ({"alertname": "A", "env": "stage", "severity": "critical"}, "/stdout"),
    ],
)
async def test_alert_reaches_the_receiver_its_labels_route_to(
    service: Running, sink: WebhookSink, labels: dict[str, str], receiver: str
) -> None:
    status, _ = await service.post("/webhook/alertmanager", am_alert(labels), AUTH)
    assert status == 200
    assert await paths(sink, 1) == [receiver]


async def test_an_alert_without_env_label_does_not_take_its_namespace_as_env(
    sink: WebhookSink, state_url: str
) -> None:
    config = config_from(
        f"""
state: {{url: '{state_url}'}}
receivers:
  - {{name: prod, webhook: {{url: '{sink.url("/prod")}'}}}}
  - {{name: fallback, webhook: {{url: '{sink.url("/fallback")}'}}}}
route:
  receiver: fallback
  routes:
    - {{matchers: ['env="prod"'], receiver: prod}}
"""
    )
    async with running(config) as svc:
        labels = {"alertname": "A", "namespace": "prod"}
        status, _ = await svc.post("/webhook/alertmanager", am_alert(labels))
        assert status == 200
        assert await paths(sink, 1) == ["/fallback"]
    assert sink.requests[0].json["alerts"][0]["labels"]["env"] == "unknown"


@pytest.mark.parametrize(
    ("trigger", "receiver"),
    [
        ("on-sync-failed", "/slack-prod"),
        ("on-health-degraded", "/slack-prod"),
        ("on-sync-status-unknown", "/email-sre"),
        ("on-deployed", "/slack-deploys"),
        ("on-sync-succeeded", "/slack-deploys"),
        ("on-sync-running", "/slack-deploys"),
        ("on-created", "/slack-deploys"),
        ("on-deleted", "/slack-deploys"),
    ],
)
async def test_each_argocd_trigger_reaches_its_receivers(
    service: Running, sink: WebhookSink, trigger: str, receiver: str
) -> None:
    body = payload("argocd_sync_failed.json") | {"trigger": trigger}
    status, answer = await service.post("/webhook/argocd", body, ARGO_AUTH)
    assert status == 200 and answer["accepted"] >= 1
    got = await paths(sink, 1)
    if trigger in ("on-sync-failed", "on-health-degraded"):
        got = await paths(sink, 2)  # critical in prod: Slack and email
        assert got == ["/email-sre", "/slack-prod"]
    else:
        assert got == [receiver]
    delivered = sink.requests[0].json
    assert delivered["alerts"][0]["labels"]["alertname"] == trigger


async def test_argocd_recovery_resolves_the_incident_it_opened(
    service: Running, sink: WebhookSink
) -> None:
    failed = payload("argocd_sync_failed.json")
    await service.post("/webhook/argocd", failed, ARGO_AUTH)
    await paths(sink, 2)
    recovered = failed | {
        "trigger": "on-sync-succeeded",
        "operationPhase": "Succeeded",
        "healthStatus": "Healthy",
    }
    await service.post("/webhook/argocd", recovered, ARGO_AUTH)
    # The deploy notice, plus the resolve at both receivers that saw the failure.
    got = await paths(sink, 5)
    assert got.count("/slack-prod") == 2 and got.count("/email-sre") == 2
    resolves = [r.json for r in sink.requests[2:] if r.path == "/slack-prod"]
    assert resolves[0]["status"] == "resolved"


async def bad(
    service: Running, body: Any, headers: dict[str, str], source: str = "alertmanager"
) -> tuple[int, Any]:
    return await service.post(f"/webhook/{source}", body, headers)


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", AUTH, 400),
        (b"[1, 2]", AUTH, 400),
        ({"version": "4", "alerts": []}, AUTH, 400),
        (payload("alertmanager_firing.json"), {}, 401),
        (payload("alertmanager_firing.json"), {"Authorization": "Bearer wrong"}, 401),
        (payload("alertmanager_firing.json"), {"Authorization": "Basic Zm9vOmJhcg=="}, 401),
        (b"x" * 20001, AUTH, 413),
        (payload("alertmanager_firing.json"), {**AUTH, "Content-Type": "text/plain"}, 415),
        (
            payload("alertmanager_firing.json"),
            {**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
            415,
        ),
    ],
)
async def test_bad_webhook_gets_its_status_and_records_nothing(
    service: Running, sink: WebhookSink, body: Any, headers: dict[str, str], status: int
) -> None:
    got, answer = await bad(service, body, headers)
    assert got == status
    assert isinstance(answer["error"], str) and answer["error"]
    assert await service.records() == []
    assert await service.state.store.pending_count() == 0


async def test_oversized_body_without_content_length_is_refused(
    service: Running,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b" " * 1000

    async with service.http.post(
        service.url + "/webhook/alertmanager",
        data=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 413
    assert await service.records() == []


async def test_argocd_without_trigger_is_a_400_naming_the_field(service: Running) -> None:
    status, answer = await bad(service, {"app": "backend"}, ARGO_AUTH, "argocd")
    assert status == 400
    assert "trigger" in answer["error"]


async def test_unauthorized_answer_does_not_echo_the_token(service: Running) -> None:
    status, answer = await bad(service, {}, {"Authorization": "Bearer am-secret-tokeX"})
    assert status == 401
    assert TOKEN not in str(answer)


async def test_store_down_answers_503_so_alertmanager_retries(
    service: Running,
) -> None:
    await service.state.store.close()
    status, answer = await service.post(
        "/webhook/alertmanager", payload("alertmanager_firing.json"), AUTH
    )
    assert status == 503
    assert "store" in answer["error"]
    status, _ = await service.get_json("/readyz")
    assert status == 503


async def test_health_readiness_and_metrics(service: Running) -> None:
    assert (await service.get_json("/healthz"))[0] == 200
    assert (await service.get_json("/readyz"))[0] == 200
    await service.post("/webhook/alertmanager", payload("alertmanager_firing.json"), AUTH)
    await service.post("/webhook/alertmanager", b"{", AUTH)
    async with service.http.get(service.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert 'alert_router_events_received_total{source="alertmanager"} 2.0' in text
    assert (
        'alert_router_webhooks_rejected_total{reason="bad_request",source="alertmanager"} 1.0'
        in text
    )
    for name in (
        "alert_router_outbox_pending",
        "alert_router_config_last_reload_successful 1.0",
        "alert_router_notification_latency_seconds",
    ):
        assert name in text


async def test_reload_applies_a_valid_file_and_keeps_the_old_one_on_error(
    sink: WebhookSink, state_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"state: {{url: '{state_url}'}}\n"
        f"receivers: [{{name: a, webhook: {{url: '{sink.url('/a')}'}}}}]\n"
        "route: {receiver: a}\n"
    )
    from router.config.loader import load_config

    async with running(load_config(path), config_path=path) as svc:
        path.write_text(
            f"state: {{url: '{state_url}'}}\n"
            f"receivers: [{{name: b, webhook: {{url: '{sink.url('/b')}'}}}}]\n"
            "route: {receiver: b}\n"
        )
        status, answer = await svc.post("/-/reload", {})
        assert (status, answer) == (200, {"status": "reloaded"})
        await svc.post("/webhook/alertmanager", payload("alertmanager_firing.json"))
        assert await paths(sink, 1) == ["/b"]

        path.write_text("route: {receiver: nowhere}\nreceivers: []\n")
        status, answer = await svc.post("/-/reload", {})
        assert status == 400
        assert any("routes.yaml:" in e for e in answer["errors"])
        async with svc.http.get(svc.url + "/metrics") as resp:
            assert "alert_router_config_last_reload_successful 0.0" in await resp.text()
        # The old config still routes.
        await svc.post("/webhook/alertmanager", am_alert({"alertname": "Other"}, group="g2"))
        assert await paths(sink, 2) == ["/b", "/b"]


# --- refusals are logged ------------------------------------------------------------------


async def test_each_refused_webhook_is_one_log_line_without_credentials(
    service: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="router.web")
    tried = {"Authorization": "Bearer am-secret-tokeX"}
    assert (await bad(service, payload("alertmanager_firing.json"), tried))[0] == 401
    assert (await bad(service, b"{", AUTH))[0] == 400
    refused = [vars(r) for r in caplog.records if r.getMessage() == "request refused"]
    assert [(r["levelname"], r["status"], r["reason"], r["source"]) for r in refused] == [
        ("INFO", 401, "unauthorized", "alertmanager"),
        ("INFO", 400, "bad_request", "alertmanager"),
    ]
    assert all(r["remote"] == "127.0.0.1" for r in refused)
    logged = " ".join(str(vars(r)) for r in caplog.records)
    assert "am-secret-tokeX" not in logged and TOKEN not in logged


# --- the read API and the actions ---------------------------------------------------------

API_TOKEN = "api-secret-token"
ADMIN_AUTH = {"Authorization": "Basic " + base64.b64encode(b"ops:admin-pw").decode()}


def guarded_config(state_url: str, auth: str) -> Config:
    return config_from(
        f"""
server:
  auth:
{textwrap.indent(auth, "    ")}
state: {{url: '{state_url}'}}
receivers: [{{name: stdout, log: {{}}}}]
route: {{receiver: stdout}}
"""
    )


async def status_of(svc: Running, method: str, path: str, headers: dict[str, str]) -> int:
    async with svc.http.request(method, svc.url + path, headers=headers) as resp:
        if resp.status == 401:
            assert resp.headers["WWW-Authenticate"].endswith('realm="alert-router"')
        return resp.status


async def test_api_credentials_guard_the_read_api_and_reload(state_url: str) -> None:
    config = guarded_config(state_url, f"api: {{bearer_token: {API_TOKEN}}}")
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    async with running(config) as svc:
        for headers in ({}, {"Authorization": "Bearer wrong"}, ADMIN_AUTH):
            assert await status_of(svc, "GET", "/api/v1/notifications", headers) == 401
            assert await status_of(svc, "POST", "/-/reload", headers) == 401
        assert await status_of(svc, "GET", "/api/v1/notifications", api) == 200
        # Allowed in, then refused for having no file to reload: not a 401.
        assert await status_of(svc, "POST", "/-/reload", api) == 400
        # Probes, metrics and webhooks keep their own rules.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert await status_of(svc, "GET", path, {}) == 200


async def test_admin_credentials_take_over_the_actions_from_api(state_url: str) -> None:
    config = guarded_config(
        state_url,
        f"api: {{bearer_token: {API_TOKEN}}}\n"
        "admin: {basic_auth: {username: ops, password: admin-pw}}",
    )
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    async with running(config) as svc:
        assert await status_of(svc, "POST", "/-/reload", api) == 401
        assert await status_of(svc, "POST", "/-/reload", ADMIN_AUTH) == 400
        # An admin reads too: one sign-in in a browser covers the console's pages and actions.
        assert await status_of(svc, "GET", "/api/v1/notifications", ADMIN_AUTH) == 200
        assert await status_of(svc, "GET", "/api/v1/notifications", api) == 200
        assert await status_of(svc, "GET", "/api/v1/notifications", {}) == 401


async def test_every_api_and_action_endpoint_is_guarded(state_url: str) -> None:
    config = guarded_config(state_url, f"api: {{bearer_token: {API_TOKEN}}}")
    async with running(config) as svc:
        endpoints = [
            (route.method, route.resource.canonical)
            for route in svc.app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith(("/api/", "/-/"))
            and route.method != "HEAD"
        ]
        assert {("GET", "/api/v1/notifications"), ("POST", "/-/reload")} <= set(endpoints)
        for method, path in endpoints:
            assert await status_of(svc, method, path, {}) == 401, path


# --- operability --------------------------------------------------------------------------


async def metrics_text(svc: Running) -> str:
    async with svc.http.get(svc.url + "/metrics") as resp:
        return await resp.text()


async def test_store_up_follows_the_store_without_anyone_polling_readyz(
    sink: WebhookSink, state_url: str
) -> None:
    pinged_often = Tuning(store_ping_every=0.05)
    async with running(routing_config(sink, state_url), tuning=pinged_often) as svc:
        assert "alert_router_store_up 1.0" in await metrics_text(svc)
        await svc.state.store.close()
        async with asyncio.timeout(10):
            while "alert_router_store_up 0.0" not in await metrics_text(svc):  # noqa: ASYNC110
                await asyncio.sleep(0.02)


async def test_metrics_name_the_running_build(service: Running) -> None:
    text = await metrics_text(service)
    version = metadata.version("alert-router")
    assert (
        f'alert_router_build_info{{python_version="{platform.python_version()}",'
        f'version="{version}"}} 1.0'
    ) in text


async def test_each_delivered_notification_is_one_info_line(
    service: Running, sink: WebhookSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="router.notify.stages")
    labels = {"alertname": "HighErrorRate", "env": "prod", "severity": "critical"}
    await service.post("/webhook/alertmanager", am_alert(labels), AUTH)

    def sent() -> list[dict[str, Any]]:
        return [vars(r) for r in caplog.records if r.getMessage() == "notification sent"]

    async with asyncio.timeout(10):
        # Logging has no change notification to wait on: poll what was captured.
        while len(sent()) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert sorted(r["receiver"] for r in sent()) == ["email-sre", "slack-prod"]
    for record in sent():
        assert record["levelname"] == "INFO"
        assert (record["group_key"], record["reason"], record["attempts"]) == (
            "am/devops_team/g1",
            "first",
            1,
        )
        assert record["latency_seconds"] >= 0


# --- real-world bodies ----------------------------------------------------------------

REAL_WORLD = sorted(p.name for p in (DATA / "real_world").glob("*.json"))
# What alert-router sets on every alert itself; the rest of the labels are the sender's.
NORMALIZED = ("source", "env", "severity")


def sent_labels(labels: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """An alert's labels as a sender gave them, without those normalization sets."""
    return frozenset((k, str(v)) for k, v in labels.items() if k not in NORMALIZED and v)


def delivered(sink: WebhookSink) -> list[tuple[str, frozenset[tuple[str, str]]]]:
    """(status, labels) of every alert delivered to the sink so far."""
    return [
        (a["status"], sent_labels(a["labels"]))
        for request in sink.requests
        for a in request.json["alerts"]
    ]


async def wait_delivered(sink: WebhookSink, wanted: set[tuple[str, frozenset[Any]]]) -> None:
    async with asyncio.timeout(10):
        while not wanted <= set(delivered(sink)):
            await sink.wait_for(len(sink.requests) + 1)


def firing_twin(body: dict[str, Any]) -> dict[str, Any]:
    """The body as it was while its alerts fired: a resolve is only told to whoever knew."""
    alerts = [a | {"status": "firing", "endsAt": "0001-01-01T00:00:00Z"} for a in body["alerts"]]
    return body | {"status": "firing", "alerts": alerts}


@pytest.mark.parametrize("name", REAL_WORLD)
async def test_every_real_world_body_is_accepted_and_delivered(
    service: Running, sink: WebhookSink, name: str
) -> None:
    body = payload(f"real_world/{name}")
    statuses = {a.get("status") or body.get("status") or "firing" for a in body["alerts"]}
    if statuses == {"resolved"}:
        status, _ = await service.post("/webhook/alertmanager", firing_twin(body), AUTH)
        assert status == 200
        await wait_delivered(sink, {("firing", sent_labels(a["labels"])) for a in body["alerts"]})

    status, answer = await service.post("/webhook/alertmanager", body, AUTH)

    assert (status, answer) == (200, {"accepted": len(body["alerts"])})
    await wait_delivered(
        sink,
        {
            (a.get("status") or body.get("status") or "firing", sent_labels(a["labels"]))
            for a in body["alerts"]
        },
    )


async def test_alerts_sent_with_one_fingerprint_are_delivered_and_resolved_apart(
    service: Running, sink: WebhookSink
) -> None:
    body = payload("real_world/alertmanager-webhook-adapter_alert-firing.json")
    first, second, third = body["alerts"]
    assert first["fingerprint"] == second["fingerprint"] == third["fingerprint"]
    assert (await service.post("/webhook/alertmanager", body, AUTH))[0] == 200
    await wait_delivered(sink, {("firing", sent_labels(a["labels"])) for a in body["alerts"]})
    fingerprints = {a["fingerprint"] for r in sink.requests for a in r.json["alerts"]}
    assert fingerprints == {first["fingerprint"]}  # shown as sent

    # One of them ends: only that one is told as resolved, the others are still firing.
    ended = first | {"status": "resolved", "endsAt": "2021-03-30T21:17:50Z"}
    body = body | {"alerts": [ended, second, third]}
    assert (await service.post("/webhook/alertmanager", body, AUTH))[0] == 200
    await wait_delivered(sink, {("resolved", sent_labels(first["labels"]))})
    last = [r.json for r in sink.requests if r.json["counts"]["resolved"]][-1]
    assert sorted((a["status"], a["labels"]["alertname"]) for a in last["alerts"]) == [
        ("firing", "CPUHigh1"),
        ("firing", "CPUHigh2"),
        ("resolved", "CPUHigh"),
    ]


async def test_alerts_of_one_body_sent_with_one_fingerprint_are_told_apart(
    service: Running, sink: WebhookSink
) -> None:
    first = am_alert({"alertname": "Disk", "instance": "a"})
    second = am_alert({"alertname": "Disk", "instance": "b"})
    body = first | {"alerts": first["alerts"] + second["alerts"]}
    for alert in body["alerts"]:
        alert["fingerprint"] = "0000000000000001"
    assert (await service.post("/webhook/alertmanager", body, AUTH))[0] == 200
    both = {("firing", sent_labels(alert["labels"])) for alert in body["alerts"]}
    await wait_delivered(sink, both)
    [record] = await service.records()
    assert len({alert["fingerprint"] for alert in record["alerts"]}) == 2


async def test_a_sent_fingerprint_names_the_alert_as_in_alertmanager(
    service: Running, sink: WebhookSink
) -> None:
    # Alertmanager's fingerprint is the alert's identity: sent again, it is the same alert.
    body = am_alert({"alertname": "Disk", "instance": "a"})
    body["alerts"][0]["fingerprint"] = "0000000000000001"
    for _ in range(2):
        assert (await service.post("/webhook/alertmanager", body, AUTH))[0] == 200
    await wait_delivered(sink, {("firing", sent_labels(body["alerts"][0]["labels"]))})
    records = await service.wait_for_records(
        lambda rs: len(rs) == 2 and all(r["state"] != "pending" for r in rs)
    )
    assert sorted(r["reason"] for r in records) == ["duplicate", "first"]


async def settled(svc: Running, count: int) -> dict[str, str]:
    """Reason per group once `count` notifications are recorded and none is pending."""
    async with asyncio.timeout(10):
        while True:
            records = await svc.records()
            if len(records) >= count and all(r["state"] != "pending" for r in records):
                return {r["group_key"]: r["reason"] for r in records}
            # The store has no change notification to wait on: poll it.
            await asyncio.sleep(0.02)


async def test_inhibiting_alerts_sent_with_one_fingerprint_are_remembered_apart(
    sink: WebhookSink, state_url: str
) -> None:
    inhibit = """
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
"""
    async with running(routing_config(sink, state_url, inhibit)) as svc:

        def alert(instance: str, severity: str, status: str = "firing") -> dict[str, Any]:
            labels = {"alertname": "Down", "instance": instance, "severity": severity}
            return am_alert(labels, status=status, group=f"{severity}-{instance}")

        # Both sources come in one body with one fingerprint, as a broken sender sends them.
        sources = alert("a", "critical")
        sources["alerts"] += alert("b", "critical")["alerts"]
        for source in sources["alerts"]:
            source["fingerprint"] = "00000000000000ff"
        assert (await svc.post("/webhook/alertmanager", sources, AUTH))[0] == 200
        await settled(svc, 1)
        # The source on `a` ends; the one on `b`, sent with the same fingerprint, does not.
        sources["alerts"][0]["status"] = "resolved"
        assert (await svc.post("/webhook/alertmanager", sources, AUTH))[0] == 200
        await settled(svc, 2)
        await svc.post("/webhook/alertmanager", alert("a", "warning"), AUTH)
        await svc.post("/webhook/alertmanager", alert("b", "warning"), AUTH)
        reasons = await settled(svc, 4)
    assert reasons["am/devops_team/warning-a"] == "first"
    assert reasons["am/devops_team/warning-b"] == "inhibited"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "4", "alerts": []}, "alerts: "),
        ({"alerts": [{"labels": {}}]}, "alerts.0.labels: an alert needs at least one label"),
        ({"alerts": [{"labels": {"a": ["b"]}}]}, "alerts.0.labels.a: Input should be a valid"),
        ({"alerts": [{"labels": {"a": "b"}, "endsAt": "soon"}]}, "alerts.0.endsAt: Input should"),
        ({"alerts": [{"labels": {"a": "b"}, "status": "pending"}]}, "alerts.0.status: "),
    ],
)
async def test_a_refused_body_is_told_which_field_cannot_be_read(
    service: Running, body: dict[str, Any], field: str
) -> None:
    status, answer = await bad(service, body, AUTH)
    assert status == 400
    assert field in answer["error"]
    assert await service.records() == []


# --- what fuzzing found ---------------------------------------------------------------


async def test_an_argocd_trigger_with_braces_is_text_not_a_format_string(
    service: Running, sink: WebhookSink
) -> None:
    body = {"trigger": "on-{app}-{0}-{", "app": "backend", "revision": "r1"}
    status, answer = await service.post("/webhook/argocd", body, ARGO_AUTH)
    assert (status, answer) == (200, {"accepted": 1})
    [request] = await sink.wait_for(1)
    assert request.json["alerts"][0]["summary"] == "backend: on-{app}-{0}-{"


async def test_an_argocd_time_outside_the_calendar_in_utc_is_a_400(service: Running) -> None:
    body = payload("argocd_sync_failed.json") | {"finishedAt": "9999-12-31T23:59:59-05:00"}
    status, answer = await service.post("/webhook/argocd", body, ARGO_AUTH)
    assert status == 400
    assert "finishedAt" in answer["error"]


async def test_an_alertmanager_time_outside_the_calendar_in_utc_is_read_not_shown(
    service: Running, sink: WebhookSink
) -> None:
    body = am_alert({"alertname": "A"})
    body["alerts"][0] |= {
        "startsAt": "0001-01-01T00:30:00+01:00",
        "endsAt": "9999-12-31T23:59:59-05:00",
    }
    del body["alerts"][0]["status"]
    assert (await service.post("/webhook/alertmanager", body, AUTH))[0] == 200
    [request] = await sink.wait_for(1)
    alert = request.json["alerts"][0]
    assert (alert["status"], alert["startsAt"], alert["endsAt"]) == ("firing", None, None)
