"""What ships beside the code: the Argo CD ConfigMap, the Helm chart, the lock files, the image.

- The argocd-notifications-cm defines every trigger alert-router knows, each with a template
  whose body is the contract's JSON; the bodies are rendered by a real Go text/template
  engine (Helm's, from the helm-python-sdk wheel, which has the same Sprig `toJson`) for a
  full and a bare Application, and every rendering is accepted by a running alert-router.
- The chart renders what values-dev.yaml and values-prod.yaml promise and refuses several
  replicas on SQLite.
- scripts/build-venv.sh (the Dockerfile's install step) builds a working service from the
  hashed lock files alone.

Helm-backed tests need helm-python-sdk (requirements-test.lock): a failure in CI, a skip elsewhere.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.config.loader import load_config
from router.config.schema import DEFAULT_ARGOCD_SEVERITY
from router.ingest.argocd import RECOVERY_TRIGGERS
from router.routing.tree import RouteTree
from tests.conftest import running
from tests.fakes.smtp import FakeSMTPServer, free_port
from tests.helpers import DATA, config_from

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "alert-router"
ARGOCD_CM = ROOT / "examples" / "argocd" / "argocd-notifications-cm.yaml"
# The keys of the Argo CD webhook body every shipped template sends.
ARGOCD_BODY_KEYS = {
    "trigger", "app", "project", "namespace", "labels", "syncStatus", "healthStatus",
    "operationPhase", "message", "revision", "repoURL", "finishedAt", "argocdUrl",
}  # fmt: skip
ALL_TRIGGERS = set(DEFAULT_ARGOCD_SEVERITY) | set(RECOVERY_TRIGGERS)
ARGOCD_TOKEN = "argocd-shipping-token"


def helm() -> Any:
    """The helm_python module; fails in CI and skips elsewhere when it is not installed."""
    try:
        return importlib.import_module("helm_python")
    except ImportError:
        message = "helm-python-sdk is not installed (.ci/run installs requirements-test.lock)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


# --- Argo CD ----------------------------------------------------------------------------


def argocd_data() -> dict[str, str]:
    data: dict[str, str] = yaml.safe_load(ARGOCD_CM.read_text())["data"]
    return data


def template_of(trigger: str) -> dict[str, Any]:
    """The webhook section of the one template the trigger sends."""
    data = argocd_data()
    [condition] = yaml.safe_load(data[f"trigger.{trigger}"])
    [name] = condition["send"]
    template = yaml.safe_load(data[f"template.{name}"])
    webhook: dict[str, Any] = template["webhook"]["alert-router"]
    return webhook


def test_argocd_cm_defines_the_eight_catalog_triggers_and_both_recovery_triggers() -> None:
    triggers = {k.removeprefix("trigger.") for k in argocd_data() if k.startswith("trigger.")}
    assert triggers == ALL_TRIGGERS
    assert len(ALL_TRIGGERS) == 10


@pytest.mark.parametrize("trigger", sorted(ALL_TRIGGERS))
def test_each_trigger_posts_its_own_template_with_every_contract_key(trigger: str) -> None:
    webhook = template_of(trigger)
    assert webhook["method"] == "POST"
    assert webhook["path"] == "/webhook/argocd"
    body: str = webhook["body"]
    assert f'"{trigger}"' in body
    for other in ALL_TRIGGERS - {trigger}:
        assert f'"{other}"' not in body
    assert set(re.findall(r'^\s*"(\w+)":', body, re.M)) == ARGOCD_BODY_KEYS


@pytest.mark.parametrize("trigger", sorted(ALL_TRIGGERS))
def test_every_value_in_a_body_goes_through_tojson(trigger: str) -> None:
    for line in template_of(trigger)["body"].splitlines():
        match = re.match(r'^\s*"\w+": (.*?),?$', line)
        if match is None:
            continue
        value = match.group(1)
        # What is left once guards and toJson actions are removed must be nothing but the
        # JSON literal null of an `else` branch.
        rest = re.sub(r"\{\{ (if [^}]+|else|end) \}\}", "", value)
        rest = re.sub(r"\{\{ [^}]+ \| toJson \}\}", "", rest)
        assert rest in ("", "null"), line
        if "operationState" in value:
            assert value.startswith("{{ if .app.status.operationState }}"), line


def test_argocd_service_sends_json_with_the_bearer_token_from_the_secret() -> None:
    data = argocd_data()
    service = yaml.safe_load(data["service.webhook.alert-router"])
    headers = {h["name"]: h["value"] for h in service["headers"]}
    assert headers == {
        "Content-Type": "application/json",
        "Authorization": "Bearer $alert-router-token",
    }
    secret = yaml.safe_load((ARGOCD_CM.parent / "argocd-notifications-secret.yaml").read_text())
    assert "alert-router-token" in secret["stringData"]
    assert "argocdUrl" in yaml.safe_load(data["context"])


def test_application_example_subscribes_to_every_trigger() -> None:
    app = yaml.safe_load((ARGOCD_CM.parent / "application.yaml").read_text())
    prefix = "notifications.argoproj.io/subscribe."
    subscribed = {
        key.removeprefix(prefix).split(".")[0]
        for key in app["metadata"]["annotations"]
        if key.startswith(prefix)
    }
    assert subscribed == ALL_TRIGGERS
    assert all(k.endswith(".alert-router") for k in app["metadata"]["annotations"])


FULL_APP: dict[str, Any] = {
    "metadata": {"name": "backend", "labels": {"team": "shop"}},
    "spec": {
        "project": "default",
        "source": {"repoURL": "https://git.example.com/shop/deploy.git"},
        "destination": {"namespace": "prod", "server": "https://kubernetes.default.svc"},
    },
    "status": {
        "sync": {"status": "OutOfSync", "revision": "9f2c1e7"},
        "health": {"status": "Degraded"},
        "operationState": {
            "phase": "Failed",
            "message": 'one or more objects failed to apply: "quotes", <html>\nand a newline',
            "finishedAt": "2026-11-26T10:02:11Z",
        },
    },
}
# No labels, several sources, never synced: every guarded field is absent.
BARE_APP: dict[str, Any] = {
    "metadata": {"name": "frontend"},
    "spec": {
        "project": "web",
        "sources": [{"repoURL": "https://git.example.com/web/a.git"}],
        "destination": {"namespace": "dev"},
    },
    "status": {"sync": {"status": "Unknown"}, "health": {"status": "Missing"}},
}
CONTEXT = {"argocdUrl": "https://argocd.example.com"}


def render_body(trigger: str, app: dict[str, Any], workdir: Path) -> str:
    """The body Argo CD would send: the template run by Go text/template with Sprig.

    Helm's engine is the same text/template and Sprig `toJson`; only the data root differs
    (`.Values.app` for `.app`), so the template is rewritten to that and nothing else.
    """
    chart = workdir / f"body-{trigger}"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: body\nversion: 0.1.0\n")
    source = re.sub(r"(?<![\w.])\.(app|context)\b", r".Values.\1", template_of(trigger)["body"])
    (chart / "templates" / "body.txt").write_text(source)
    with helm().Chart.load(str(chart)) as loaded:
        rendered: dict[str, str] = loaded.render(
            {"app": app, "context": CONTEXT}, name="argocd", namespace="argocd"
        )
    return rendered["body/templates/body.txt"]


@pytest.mark.parametrize("trigger", sorted(ALL_TRIGGERS))
def test_rendered_bodies_are_contract_json_for_full_and_bare_applications(
    trigger: str, tmp_path: Path
) -> None:
    full = json.loads(render_body(trigger, FULL_APP, tmp_path / "full"))
    assert full == {
        "trigger": trigger,
        "app": "backend",
        "project": "default",
        "namespace": "prod",
        "labels": {"team": "shop"},
        "syncStatus": "OutOfSync",
        "healthStatus": "Degraded",
        "operationPhase": "Failed",
        "message": FULL_APP["status"]["operationState"]["message"],
        "revision": "9f2c1e7",
        "repoURL": "https://git.example.com/shop/deploy.git",
        "finishedAt": "2026-11-26T10:02:11Z",
        "argocdUrl": "https://argocd.example.com",
    }
    bare = json.loads(render_body(trigger, BARE_APP, tmp_path / "bare"))
    assert set(bare) == ARGOCD_BODY_KEYS
    assert {k for k, v in bare.items() if v is None} == {
        "labels", "operationPhase", "message", "revision", "repoURL", "finishedAt",
    }  # fmt: skip


def with_status(**status: Any) -> dict[str, Any]:
    app: dict[str, Any] = json.loads(json.dumps(FULL_APP))
    for key, value in status.items():
        app["status"][key] = value
    return app


async def test_every_rendered_body_is_accepted_and_recovery_triggers_resolve(
    tmp_path: Path, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_from(
        f"""
state: {{url: '{state_url}'}}
server: {{auth: {{argocd: {{bearer_token: {ARGOCD_TOKEN}}}}}}}
receivers: [{{name: stdout, log: {{}}}}]
route: {{receiver: stdout}}
"""
    )
    auth = {"Authorization": f"Bearer {ARGOCD_TOKEN}"}
    async with running(config) as service:
        for app_name, app in (("full", FULL_APP), ("bare", BARE_APP)):
            for trigger in sorted(ALL_TRIGGERS):
                body = render_body(trigger, app, tmp_path / app_name)
                status, answer = await service.post("/webhook/argocd", body, auth)
                assert status == 200, (trigger, app_name, answer)

        # An incident per problem trigger, then the recovery trigger that ends it.
        degraded = with_status(health={"status": "Degraded"})
        healthy = with_status(health={"status": "Healthy"})
        unknown = with_status(sync={"status": "Unknown", "revision": "9f2c1e7"})
        known = with_status(sync={"status": "Synced", "revision": "9f2c1e7"})
        for step, (trigger, app) in enumerate(
            [
                ("on-health-degraded", degraded),
                ("on-health-healthy", healthy),
                ("on-sync-status-unknown", unknown),
                ("on-sync-status-known", known),
            ]
        ):
            app["metadata"]["name"] = "lifecycle"
            body = render_body(trigger, app, tmp_path / f"step{step}")
            status, answer = await service.post("/webhook/argocd", body, auth)
            assert status == 200, answer
        # Every webhook was recorded before its 200: wait until none is still in delivery.
        for _ in range(100):
            states = [
                r["state"]
                for r in await service.records()
                if r["group_key"].startswith("argocd/lifecycle/")
            ]
            if states and all(state in ("sent", "suppressed") for state in states):
                break
            await asyncio.sleep(0.1)
    # What the log receiver actually printed for the app. Resolves for incidents that were
    # never opened (the app was healthy all along) are not sent; each incident is told
    # once when it opens and once when it ends, except a health flap: degraded and healthy
    # again within `argocd.hold` (1m by default) is told to nobody.
    delivered: dict[str, list[tuple[str, str]]] = {}
    for line in capsys.readouterr().out.splitlines():
        note = json.loads(line)
        if note.get("type") == "notification" and note["app"] == "lifecycle":
            delivered.setdefault(note["groupKey"], []).append((note["reason"], note["status"]))
    assert delivered == {
        "argocd/lifecycle/on-sync-status-unknown": [("first", "firing"), ("resolved", "resolved")],
    }


# --- Helm chart ---------------------------------------------------------------------------


def values_file(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / name).read_text())
    return dict(values)


def render_chart(values: dict[str, Any], namespace: str = "monitoring") -> dict[str, Any]:
    """Rendered objects by `Kind/name`."""
    with helm().Chart.load(str(CHART)) as chart:
        rendered: dict[str, str] = chart.render(values, name="alert-router", namespace=namespace)
    objects: dict[str, Any] = {}
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def container(objects: dict[str, Any]) -> dict[str, Any]:
    [only] = objects["Deployment/alert-router"]["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def routes_of(objects: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ConfigMap's routes.yaml loaded like the pod loads it, env from the Deployment."""
    path = tmp_path / "routes.yaml"
    path.write_text(objects["ConfigMap/alert-router"]["data"]["routes.yaml"])
    for item in container(objects)["env"]:
        monkeypatch.setenv(item["name"], str(item.get("value", "from-secret")))
    return load_config(path)


def receivers_for(config: Any, **labels: str) -> list[str]:
    return [route.receiver for route in RouteTree.from_config(config).match(labels)]


def test_chart_refuses_several_replicas_on_sqlite() -> None:
    with pytest.raises(Exception, match="needs state.backend=redis"):
        render_chart({"replicaCount": 3})
    with pytest.raises(Exception, match="state.redis.url or state.redis.existingSecret"):
        render_chart({"replicaCount": 3, "state": {"backend": "redis"}})


def test_dev_runs_one_sqlite_replica_with_small_resources_posting_to_the_dev_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render_chart(values_file("values-dev.yaml"), namespace="dev")
    deployment = objects["Deployment/alert-router"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["ROUTER_STATE_URL"]["value"].startswith("sqlite:////var/lib/alert-router/")
    assert container(objects)["resources"]["limits"]["memory"] == "160Mi"
    config = routes_of(objects, tmp_path, monkeypatch)
    [receiver] = receivers_for(config, env="dev", severity="critical", alertname="X")
    slack = config.receiver(receiver).slack
    assert slack is not None and slack.channel == "#dev-alerts"


def test_prod_runs_three_replicas_on_redis_and_sends_critical_to_slack_and_email(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render_chart(values_file("values-prod.yaml"), namespace="prod")
    deployment = objects["Deployment/alert-router"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["ROUTER_STATE_URL"]["value"].startswith("redis://")
    assert env["ROUTER_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "redis"
    assert env["SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "alert-router-secrets",
        "key": "SLACK_BOT_TOKEN",
    }
    assert objects["PodDisruptionBudget/alert-router"]["spec"]["minAvailable"] == 2
    assert "NetworkPolicy/alert-router" in objects
    config = routes_of(objects, tmp_path, monkeypatch)
    assert config.state.url.startswith("redis://")
    assert receivers_for(config, env="prod", severity="critical", alertname="X") == [
        "slack-prod",
        "email-sre",
    ]
    assert receivers_for(config, env="prod", severity="warning", alertname="X") == ["slack-prod"]


def test_a_routes_change_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        template = render_chart(values)["Deployment/alert-router"]["spec"]["template"]
        value: str = template["metadata"]["annotations"]["checksum/config"]
        return value

    base = values_file("values.yaml")
    changed = json.loads(json.dumps(base))
    changed["config"]["dedup"]["repeat_interval"] = "2h"
    assert checksum(base) == checksum(json.loads(json.dumps(base)))
    assert checksum(base) != checksum(changed)


def test_pod_is_non_root_read_only_without_capabilities_and_probed() -> None:
    objects = render_chart({})
    pod = objects["Deployment/alert-router"]["spec"]["template"]["spec"]
    main = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert mounts == {"/etc/alert-router", "/var/lib/alert-router", "/tmp"}
    assert pod["automountServiceAccountToken"] is False


def test_toggles_add_servicemonitor_prometheusrule_networkpolicy_and_pvc() -> None:
    assert not {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "PersistentVolumeClaim"} & {
        key.split("/")[0] for key in render_chart({})
    }
    objects = render_chart(
        {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "networkPolicy": {"enabled": True},
            "state": {"sqlite": {"persistence": {"enabled": True}}},
        }
    )
    rules = objects["PrometheusRule/alert-router"]["spec"]["groups"][0]["rules"]
    exprs = " ".join(rule["expr"] for rule in rules)
    for metric in (
        "alert_router_notifications_total",
        "alert_router_notifications_failed_total",
        "alert_router_notifications_dead_total",
        "alert_router_config_last_reload_successful",
        "alert_router_config_team_ok",
        "alert_router_outbox_pending",
        "alert_router_enrich_failures_total",
        "alert_router_store_up",
    ):
        assert metric in exprs
    assert objects["ServiceMonitor/alert-router"]["spec"]["endpoints"][0]["path"] == "/metrics"
    volumes = objects["Deployment/alert-router"]["spec"]["template"]["spec"]["volumes"]
    [state] = [v for v in volumes if v["name"] == "state"]
    assert state["persistentVolumeClaim"]["claimName"] == "alert-router"
    assert "PersistentVolumeClaim/alert-router" in objects


TEAM_VALUES: dict[str, Any] = {
    "config": {
        "receivers": [{"name": "stdout", "log": {}}, {"name": "sre", "log": {}}],
        "route": {"receiver": "stdout", "routes": [{"team": "payments"}, {"team": "search"}]},
    },
    "teams": {
        "payments": {
            "matchers": ['team="payments"'],
            "fallback": "sre",
            "file": {
                "receivers": [{"name": "slack", "log": {}}, {"name": "pager", "log": {}}],
                "route": {
                    "receiver": "slack",
                    "routes": [{"matchers": ['severity="critical"'], "receiver": "pager"}],
                },
            },
        },
        "search": {"matchers": ['team="search"'], "existingConfigMap": "search-routes"},
    },
}


def config_volume(objects: dict[str, Any]) -> dict[str, Any]:
    volumes = objects["Deployment/alert-router"]["spec"]["template"]["spec"]["volumes"]
    [config] = [v for v in volumes if v["name"] == "config"]
    return dict(config)


def test_team_files_are_configmap_keys_mounted_beside_routes_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render_chart(TEAM_VALUES)
    data = objects["ConfigMap/alert-router"]["data"]
    assert set(data) == {"routes.yaml", "team.payments.yaml"}
    own, search = config_volume(objects)["projected"]["sources"]
    assert own["configMap"]["items"] == [
        {"key": "routes.yaml", "path": "routes.yaml"},
        {"key": "team.payments.yaml", "path": "routes.d/payments.yaml"},
    ]
    # A ConfigMap the team deploys itself; while it is missing the pod still starts.
    assert search["configMap"] == {
        "name": "search-routes",
        "optional": True,
        "items": [{"key": "search.yaml", "path": "routes.d/search.yaml"}],
    }
    # Loaded like the pod loads it: the team file in routes.d/, the search file absent.
    (tmp_path / "routes.d").mkdir()
    (tmp_path / "routes.d" / "payments.yaml").write_text(data["team.payments.yaml"])
    config = routes_of(objects, tmp_path, monkeypatch)
    assert [(t.name, t.file, t.fallback) for t in config.teams] == [
        ("payments", "routes.d/payments.yaml", "sre"),
        ("search", "routes.d/search.yaml", None),
    ]
    assert receivers_for(config, team="payments", severity="critical") == ["payments/pager"]
    assert receivers_for(config, team="search") == ["stdout"]
    [problem] = config.team_problems
    assert problem.endswith("search.yaml:1:1: cannot read the file: No such file or directory")


def test_a_team_file_change_rolls_the_pods_and_without_teams_nothing_changes() -> None:
    def checksum(values: dict[str, Any]) -> str:
        template = render_chart(values)["Deployment/alert-router"]["spec"]["template"]
        value: str = template["metadata"]["annotations"]["checksum/config"]
        return value

    changed = json.loads(json.dumps(TEAM_VALUES))
    changed["teams"]["payments"]["file"]["route"]["receiver"] = "pager"
    assert checksum(TEAM_VALUES) != checksum(changed)
    assert config_volume(render_chart({}))["configMap"] == {"name": "alert-router"}


@pytest.mark.parametrize(
    ("teams", "config", "message"),
    [
        ({"payments": {"file": {}}}, {}, "teams.payments.matchers: the team's scope is required"),
        ({"payments": {"matchers": ["a=b"]}}, {}, "set exactly one of file"),
        (
            {"payments": {"matchers": ["a=b"], "file": {"x": 1}, "existingConfigMap": "c"}},
            {},
            "set exactly one of file",
        ),
        ({"pay/ments": {"matchers": ["a=b"], "file": {"x": 1}}}, {}, "a team name is letters"),
        (
            {"payments": {"matchers": ["a=b"], "file": {"x": 1}}},
            {"teams": []},
            "do not set config.teams",
        ),
    ],
)
def test_chart_refuses_teams_it_cannot_mount(
    teams: dict[str, Any], config: dict[str, Any], message: str
) -> None:
    with pytest.raises(Exception, match=re.escape(message)):
        render_chart({"teams": teams, "config": config})


# --- Image: lock files and the Dockerfile ------------------------------------------------


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_pins_the_base_runs_non_root_and_serves_the_config_path() -> None:
    text = dockerfile()
    # Both stages share one base, a build argument whose default is a pinned official image.
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases == ["${BASE_IMAGE}", "${BASE_IMAGE}"], bases
    [default] = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", default), default
    assert text.index("ARG BASE_IMAGE=") < text.index("FROM ")
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "EXPOSE 8080" in text
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["alert-router"]' in text
    assert 'CMD ["serve", "--config", "/etc/alert-router/routes.yaml"]' in text
    assert "sh scripts/build-venv.sh /src /opt/venv" in text


def test_dockerignore_lets_through_everything_the_dockerfile_copies() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile(), re.M):
        *sources, _ = shlex.split(line)
        for source in sources:
            source = source.rstrip("/")
            assert (ROOT / source).exists(), source
            assert source in allowed, f"{source} is excluded by .dockerignore"


@pytest.mark.timeout(600)
def test_lock_files_alone_build_a_venv_that_checks_and_serves(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    build = subprocess.run(
        ["sh", str(ROOT / "scripts" / "build-venv.sh"), str(ROOT), str(venv)],
        env={**os.environ, "PYTHON": sys.executable},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    router_bin = venv / "bin" / "alert-router"
    clean_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}

    check = subprocess.run(
        [str(router_bin), "check", str(ROOT / "routes.yaml")],
        env=clean_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("OK: ")

    with FakeSMTPServer() as smtp:
        config = tmp_path / "routes.yaml"
        config.write_text(
            f"""
state: {{url: 'sqlite:///{tmp_path}/state.db'}}
receivers:
  - name: email
    email: {{to: [sre@example.com], from: ar@example.com, smarthost: '{smtp.smarthost}',
             starttls: false}}
route: {{receiver: email}}
"""
        )
        port = free_port()
        with (tmp_path / "serve.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(router_bin), "serve", "--config", str(config), "--host", "127.0.0.1"],
                env={**clean_env, "ROUTER_PORT": str(port)},
                cwd=tmp_path,
                stdout=log,
                stderr=log,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while not ready(url):
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "the venv's alert-router never got ready"
                time.sleep(0.1)
            request = urllib.request.Request(
                url + "/webhook/alertmanager",
                data=(DATA / "alertmanager_firing.json").read_bytes(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
                assert json.load(resp) == {"accepted": 2}
            deadline = time.monotonic() + 30
            while not smtp.messages:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        finally:
            proc.terminate()
            assert proc.wait(20) == 0
    [mail] = smtp.messages
    # The installed package found its jinja2 templates: a real multipart mail came out.
    assert "CPUHigh" in mail.text and "CPUHigh" in mail.html


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False
