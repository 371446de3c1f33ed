"""The chart's Grafana dashboard against a real Prometheus scraping a real router.

Debian's `prometheus` scrapes `python -m router serve` every 200 ms while a short scripted
load runs: webhooks delivered to Slack (one channel, paced, so a backlog goes out as a
digest), a duplicate, rejected webhooks, a refused and a carried-out button click, a
receiver that fails for good, a Loki that is down (its breaker opens), and a reload. Then
every query of every panel goes through Prometheus's HTTP API: each must parse and return
data, and each metric it names must be one the router exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.slack import FakeSlack
from tests.fakes.slack_clicks import buttons, click, form_body, post_signed
from tests.fakes.smtp import free_port
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import until

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "helm" / "alert-router" / "dashboards" / "alert-router.json"
CHANNEL = "#prod-alerts"
SECRET = "dashboard-signing-secret"
# What Grafana puts in place of the dashboard's variables: every namespace (the scraped
# router has no namespace label, which `=~".*"` matches) and a window that holds several
# scrapes.
VARIABLES = {"$namespace": ".*", "$__rate_interval": "1m"}
METRIC_RE = re.compile(r"\balert_router_[a-z_]+\b")


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        message = "Debian's prometheus is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, query) for every target of every panel, variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            queries.append((panel["title"], expr))
    return queries


def exported_names(exposition: str) -> set[str]:
    """The sample names of a Prometheus text exposition (histograms' _bucket included)."""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


def alert(pod: str, alertname: str = "PodCrashLooping") -> dict[str, Any]:
    labels = {"alertname": alertname, "env": "prod", "severity": "critical", "pod": pod}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}", pod="{pod}"}}',
        "receiver": "alert-router",
        "status": "firing",
        "externalURL": "http://alertmanager:9093",
        "groupLabels": {"alertname": alertname, "pod": pod},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"{pod} restarts"},
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{pod} restarts"},
                "startsAt": "2026-12-07T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"fp-{pod}",
            }
        ],
    }


def routes(tmp_path: Path, slack: FakeSlack, hook: str, loki: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(
        f"""
server: {{shutdown_grace: 1s}}
state: {{url: 'sqlite:///{tmp_path}/state.db'}}
slack:
  per_channel_interval: 0.3
  digest_threshold: 2
  interactivity: {{signing_secret: {SECRET}}}
enrich:
  loki: {{url: '{loki}', query: '{{pod="{{{{ labels.pod }}}}"}}', timeout: 1s}}
receivers:
  - name: slack-prod
    slack: {{token: {slack.token}, channel: '{CHANNEL}', api_url: '{slack.api_url}'}}
  - name: broken-hook
    webhook: {{url: '{hook}'}}
route:
  receiver: slack-prod
  routes:
    - matchers: ['alertname="Broken"']
      receiver: broken-hook
"""
    )
    return path


@contextmanager
def process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process logging to `log`, terminated on the way out."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Router:
    """The spawned router (or Prometheus, for `answers`) over HTTP."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def post(self, body: bytes, content_type: str = "application/json") -> int:
        async with self.http.post(
            self.url + "/webhook/alertmanager", data=body, headers={"Content-Type": content_type}
        ) as resp:
            await resp.read()
            return resp.status

    async def metrics(self) -> str:
        async with self.http.get(self.url + "/metrics") as resp:
            return await resp.text()

    async def sample(self, name: str) -> float:
        """The sum of every sample of `name` (0 when there is none yet)."""
        total = 0.0
        for line in (await self.metrics()).splitlines():
            if re.match(rf"{name}[{{ ]", line):
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def answers(self, path: str) -> bool:
        try:
            async with self.http.get(self.url + path) as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False


async def test_every_panel_query_returns_data_from_a_scraped_router(tmp_path: Path) -> None:
    queries = panel_queries()
    assert len(queries) >= 15
    prometheus = prometheus_binary()
    router_port, prom_port, loki_port = free_port(), free_port(), free_port()
    router_url = f"http://127.0.0.1:{router_port}"
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text(
        f"""
global: {{scrape_interval: 200ms, evaluation_interval: 1s}}
scrape_configs:
  - job_name: alert-router
    static_configs: [{{targets: ['127.0.0.1:{router_port}']}}]
"""
    )
    async with (
        FakeSlack() as slack,
        WebhookSink(default_status=400) as hook,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
    ):
        config = routes(tmp_path, slack, hook.url("/hook"), f"http://127.0.0.1:{loki_port}")
        router_argv = [sys.executable, "-m", "router", "serve", "--config", str(config)]
        prom_argv = [
            prometheus,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ]
        env = {**os.environ, "ROUTER_PORT": str(router_port), "ROUTER_HOST": "127.0.0.1"}
        with (
            process(router_argv, tmp_path / "router.log", env) as proc,
            process(prom_argv, tmp_path / "prometheus.log") as prom,
        ):
            router = Router(http, router_url)

            async def up() -> bool:
                assert proc.poll() is None, (tmp_path / "router.log").read_text()
                assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()
                prom_up = await Router(http, f"http://127.0.0.1:{prom_port}").answers("/-/ready")
                return prom_up and await router.answers("/readyz")

            await until(up, within=30)
            await scripted_load(router, slack, proc)
            names = exported_names(await router.metrics())
            await every_query_returns_data(http, f"http://127.0.0.1:{prom_port}", queries, names)


async def scripted_load(router: Router, slack: FakeSlack, proc: subprocess.Popen[bytes]) -> None:
    # Four groups at once to one paced channel: the first goes alone, the backlog behind
    # it as a digest. Loki is down: the lookups fail until the breaker opens.
    for pod in ("web-1", "web-2", "web-3", "web-4"):
        assert await router.post(json.dumps(alert(pod)).encode()) == 200
    await until(lambda: router.sample("alert_router_paced_sends_total"), within=30)
    await until(lambda: _at_least(router, "alert_router_enrich_failures_total", 3), within=30)
    # With the breaker open, the next group's lookup is skipped.
    assert await router.post(json.dumps(alert("web-5")).encode()) == 200
    assert await router.post(json.dumps(alert("web-1")).encode()) == 200  # a duplicate
    assert await router.post(json.dumps(alert("db-1", alertname="Broken")).encode()) == 200
    assert await router.post(b"{not json") == 400
    await until(lambda: router.sample("alert_router_notifications_dead_total"), within=30)
    await until(lambda: router.sample("alert_router_notifications_suppressed_total"), within=30)

    # A click Slack would refuse to forward (bad signature), then a real one.
    url = router.url + "/slack/interactions"
    assert await post_signed(router.http, url, "wrong-secret", form_body({"type": "x"})) == 401
    [message] = [m for m in slack.messages(CHANNEL) if "ack" in buttons(m)][:1]
    assert await click(router.http, url, SECRET, message, slack.channel_id(CHANNEL), "ack") == 200
    await until(lambda: router.sample("alert_router_slack_actions_total"), within=30)

    # A reload (SIGHUP), seen when its success timestamp moves.
    before = await router.sample("alert_router_config_last_reload_success_timestamp_seconds")
    proc.send_signal(signal.SIGHUP)

    async def reloaded() -> bool:
        now = await router.sample("alert_router_config_last_reload_success_timestamp_seconds")
        return now > before

    await until(reloaded, within=30)


async def _at_least(router: Router, name: str, count: float) -> bool:
    return await router.sample(name) >= count


async def every_query_returns_data(
    http: aiohttp.ClientSession, prom_url: str, queries: list[tuple[str, str]], names: set[str]
) -> None:
    unknown = {
        (title, name)
        for title, expr in queries
        for name in METRIC_RE.findall(expr)
        if name not in names
    }
    assert not unknown, f"panels name metrics the router does not export: {sorted(unknown)}"

    async def result(expr: str) -> list[Any]:
        async with http.get(prom_url + "/api/v1/query", params={"query": expr}) as resp:
            body = await resp.json()
        assert body["status"] == "success", (expr, body)
        data: list[Any] = body["data"]["result"]
        return data

    # Rates need two scrapes after the load; the reload's change a scrape of its own.
    missing = list(queries)

    async def all_answered() -> bool:
        for item in list(missing):
            if await result(item[1]):
                missing.remove(item)
        return not missing

    try:
        await until(all_answered, within=30)
    except TimeoutError:
        pytest.fail(f"panels without data: {missing}")
