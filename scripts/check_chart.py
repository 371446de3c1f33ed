"""Lint, render and validate helm/alert-router for every shipped values file.

Run by scripts/ci-checks.sh; needs the PyPI packages helm-python-sdk (Helm's Go SDK in a
wheel: the real template engine and `helm lint`) and kubernetes-validate (the Kubernetes
OpenAPI schemas, offline). For each case it:

1. runs `helm lint --strict` with the case's values;
2. renders the chart (`helm template`) and writes the manifests to OUT/<case>/;
3. validates every core object against the Kubernetes schemas in strict mode (unknown
   fields are errors) for the oldest and newest Kubernetes the chart supports;
4. checks the ServiceMonitor points at the Service's port and labels;
5. writes the ConfigMap's routes.yaml to OUT/<case>/routes.yaml (and its team files where the
   Deployment mounts them, routes.d/) and runs `alert-router check` on it with exactly the environment the Deployment gives the container (secret values
   replaced by placeholders), so every ${VAR} the config uses must be provided by the chart;
6. writes the PrometheusRule's groups to OUT/<case>/rules.yaml for promtool, and the example
   Alertmanager config (with the generated webhook token) to OUT/<case>/alertmanager.yaml
   for amtool;
7. checks the Grafana dashboard ConfigMap (label, content) is there exactly when enabled.

Usage: python scripts/check_chart.py OUT
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "alert-router"
KUBE_VERSIONS = ("1.25.0", "1.37.0")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
DASHBOARD = CHART / "dashboards" / "alert-router.json"
DASHBOARD_LABEL = "grafana_dashboard"

# (case, namespace, values files in order, extra values)
CASES: list[tuple[str, str, list[str], dict[str, Any]]] = [
    ("default", "monitoring", [], {}),
    (
        "all-toggles",
        "monitoring",
        [],
        {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "networkPolicy": {"enabled": True},
            "state": {"sqlite": {"persistence": {"enabled": True}}},
            "secret": {"create": True, "data": {"ALERTMANAGER_TOKEN": "change-me"}},
        },
    ),
    (
        "teams",
        "monitoring",
        [],
        {
            "grafanaDashboard": {"enabled": False},
            "config": {
                "receivers": [{"name": "stdout", "log": {}}],
                "route": {"receiver": "stdout", "routes": [{"team": "payments"}]},
            },
            "teams": {
                "payments": {
                    "matchers": ['team="payments"'],
                    "fallback": "stdout",
                    "file": {
                        "receivers": [{"name": "hook", "webhook": {"url": "https://x.example"}}],
                        "route": {"receiver": "hook"},
                    },
                }
            },
        },
    ),
    ("dev", "dev", ["values-dev.yaml"], {}),
    ("prod", "prod", ["values-prod.yaml"], {}),
]


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps merge key by key, everything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def case_values(files: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in files:
        values = merge(values, yaml.safe_load((CHART / name).read_text()) or {})
    return merge(values, extra)


def fail(problems: list[str], case: str, message: str) -> None:
    problems.append(f"[{case}] {message}")


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    """The env the Deployment gives the container; secret references become placeholders."""
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            env[item["name"]] = f"placeholder-{item['name'].lower()}"
    return env


def check_dashboards(
    case: str, dashboards: list[dict[str, Any]], values: dict[str, Any]
) -> list[str]:
    """The dashboard ConfigMap is there when enabled, labelled for Grafana's sidecar, and
    carries dashboards/alert-router.json unchanged; tests/test_dashboard.py runs its queries."""
    problems: list[str] = []
    enabled = values.get("grafanaDashboard", {}).get("enabled", True)
    if len(dashboards) != (1 if enabled else 0):
        fail(
            problems,
            case,
            f"{len(dashboards)} dashboard ConfigMaps, grafanaDashboard.enabled={enabled}",
        )
    for configmap in dashboards:
        if configmap["metadata"]["labels"][DASHBOARD_LABEL] != "1":
            fail(problems, case, f'the dashboard ConfigMap is not labelled {DASHBOARD_LABEL}: "1"')
        shipped = json.loads(DASHBOARD.read_text())
        if list(configmap["data"]) != [DASHBOARD.name]:
            fail(problems, case, f"the dashboard ConfigMap holds {list(configmap['data'])}")
        elif json.loads(configmap["data"][DASHBOARD.name]) != shipped:
            fail(problems, case, f"the dashboard ConfigMap differs from {DASHBOARD}")
    return problems


def check_case(
    helm: Any, kv: Any, case: str, namespace: str, values: dict[str, Any], out: Path
) -> list[str]:
    problems: list[str] = []
    report = helm.lint(str(CHART), values or None, strict=True, namespace=namespace)
    for message in report.get("messages", []):
        if message["severity"] >= 2:
            fail(problems, case, f"helm lint: {message['path']}: {message['error']}")
    for error in report.get("errors", []):
        fail(problems, case, f"helm lint: {error}")

    with helm.Chart.load(str(CHART)) as chart:
        rendered: dict[str, str] = chart.render(values, name="alert-router", namespace=namespace)
    target = out / case
    target.mkdir(parents=True, exist_ok=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        (target / Path(path).name).write_text(text)
        docs += [d for d in yaml.safe_load_all(text) if d]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
        if doc["kind"] in CRD_KINDS:
            continue
        for version in KUBE_VERSIONS:
            try:
                kv.validate(doc, version, strict=True)
            except Exception as exc:  # noqa: BLE001 - every validation error is reported
                name = f"{doc['kind']}/{doc['metadata']['name']}"
                fail(problems, case, f"{name} is not valid Kubernetes {version}: {exc}")

    # The Grafana dashboard is a ConfigMap of its own, told apart by the sidecar's label.
    dashboards = [
        d for d in by_kind.get("ConfigMap", []) if d["metadata"]["labels"].get(DASHBOARD_LABEL)
    ]
    by_kind["ConfigMap"] = [d for d in by_kind.get("ConfigMap", []) if d not in dashboards]
    problems += check_dashboards(case, dashboards, values)
    missing = [k for k in ("Deployment", "Service", "ConfigMap") if len(by_kind.get(k, [])) != 1]
    if missing:
        fail(problems, case, f"expected exactly one of each: {', '.join(missing)}")
        return problems
    [deployment] = by_kind["Deployment"]
    [service] = by_kind["Service"]
    for monitor in by_kind.get("ServiceMonitor", []):
        ports = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint["port"] not in ports:
                fail(problems, case, f"ServiceMonitor port {endpoint['port']} not in {ports}")
        selector = monitor["spec"]["selector"]["matchLabels"]
        labels = service["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            fail(problems, case, "ServiceMonitor selector does not match the Service's labels")

    [configmap] = by_kind["ConfigMap"]
    routes = target / "routes.yaml"
    routes.write_text(configmap["data"]["routes.yaml"])
    # Team files: the ConfigMap's keys where the Deployment's config volume puts them.
    for volume in deployment["spec"]["template"]["spec"]["volumes"]:
        if volume["name"] != "config":
            continue
        for source in volume.get("projected", {}).get("sources", []):
            if source["configMap"]["name"] != configmap["metadata"]["name"]:
                continue
            for item in source["configMap"].get("items", []):
                path = target / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(configmap["data"][item["key"]])
    env = container_env(deployment)
    result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "router", "check", str(routes)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        fail(problems, case, f"alert-router check {routes} failed:\n{result.stderr}")
    else:
        print(f"  [{case}] alert-router check: {result.stdout.strip()} (env: {', '.join(env)})")

    for rule in by_kind.get("PrometheusRule", []):
        (target / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    for secret in by_kind.get("Secret", []):
        example = (secret.get("stringData") or {}).get("alertmanager.yaml")
        if example is None:
            continue
        # The token Alertmanager sends must be the one the router is given.
        tokens = secret_data(by_kind, "webhook-auth").values()
        if not any(token in example for token in tokens):
            fail(problems, case, "the example Alertmanager config lacks the webhook token")
        (target / "alertmanager.yaml").write_text(example)
    return problems


def secret_data(by_kind: dict[str, list[dict[str, Any]]], suffix: str) -> dict[str, str]:
    """The stringData of the rendered Secret whose name ends in `suffix`."""
    for secret in by_kind.get("Secret", []):
        if secret["metadata"]["name"].endswith(suffix):
            return dict(secret.get("stringData") or {})
    return {}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    helm = importlib.import_module("helm_python")
    kv = importlib.import_module("kubernetes_validate")
    problems: list[str] = []
    for case, namespace, files, extra in CASES:
        values = case_values(files, extra)
        found = check_case(helm, kv, case, namespace, values, out)
        problems += found
        print(f"  [{case}] {'FAILED' if found else 'ok'}: lint, render, schemas {KUBE_VERSIONS}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
