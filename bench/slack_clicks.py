"""Slack Silence clicks against the running service and Debian's real Alertmanager.

Starts Alertmanager (`prometheus-alertmanager`, no cluster) and a fake Slack in this
process, and `alert-router serve` as a subprocess with Slack interactivity on. Posts one
firing webhook per group (its `externalURL` is the Alertmanager), waits for each group's
Slack message, then clicks "Silence 1h" on each, signed as Slack signs, `--rate` clicks per
second, and prints as JSON the p50/p99 of:

- `answer`: POST /slack/interactions until its 200 (Slack gives up after 3 s);
- `silence_visible`: the click until Alertmanager lists the silence (GET /api/v2/silences,
  polled every 5 ms);
- `message_edited`: the click until the fake Slack has the message edited to "Silenced by".

    python bench/slack_clicks.py --clicks 100 --rate 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, peak_rss_mb, spawn, wait_ready  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.fakes.slack_clicks import SlackUser, block_actions, form_body, sign  # noqa: E402

SECRET = "bench-signing-secret"
CHANNEL = "#prod-alerts"

CONFIG = """
state: {{url: 'sqlite:///{tmp}/bench.db'}}
slack:
  per_channel_interval: 0.001
  digest_threshold: 100000
  interactivity: {{signing_secret: {secret}}}
alertmanager: {{url: '{am_url}'}}
receivers:
  - name: slack
    slack: {{token: {token}, channel: '{channel}', api_url: '{slack}'}}
route:
  receiver: slack
"""

AM_CONFIG = """
route: {receiver: none}
receivers: [{name: none}]
"""


def webhook(n: int, am_url: str) -> dict[str, Any]:
    labels = {"alertname": f"BenchClick{n}", "env": "prod", "severity": "critical"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="BenchClick{n}"}}',
        "groupLabels": {"alertname": f"BenchClick{n}"},
        "receiver": "bench",
        "status": "firing",
        "externalURL": am_url,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"bench group {n}"},
                "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{n:016x}",
            }
        ],
    }


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    q = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else ordered * 99
    )
    return {
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="clicks per second")
    parser.add_argument("--alertmanager", default="/usr/bin/prometheus-alertmanager")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        am_port = free_port()
        am_url = f"http://127.0.0.1:{am_port}"
        (tmp / "am.yml").write_text(AM_CONFIG)
        am = subprocess.Popen(  # noqa: ASYNC220 - once, before anything is measured
            [
                args.alertmanager,
                f"--config.file={tmp / 'am.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with FakeSlack() as slack, aiohttp.ClientSession() as http:
            cfg = tmp / "routes.yaml"
            cfg.write_text(
                CONFIG.format(
                    tmp=tmp,
                    secret=SECRET,
                    token=slack.token,
                    channel=CHANNEL,
                    slack=slack.api_url,
                    am_url=am_url,
                )
            )
            port = free_port()
            router = spawn(cfg, port)
            base = f"http://127.0.0.1:{port}"
            try:
                try:
                    await wait_ready(http, base + "/readyz", router)
                except SystemExit:
                    print((tmp / "server.log").read_text(), file=sys.stderr)
                    raise
                await wait_ready(http, am_url + "/-/ready", am)
                for n in range(args.clicks):
                    async with http.post(
                        base + "/webhook/alertmanager", json=webhook(n, am_url)
                    ) as r:
                        assert r.status == 200, await r.text()
                async with asyncio.timeout(60):
                    while len(slack.messages(CHANNEL)) < args.clicks:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                messages = slack.messages(CHANNEL)
                channel_id = slack.channel_id(CHANNEL)
                results = await asyncio.gather(
                    *(
                        one_click(http, base, am_url, slack, m, channel_id, i / args.rate)
                        for i, m in enumerate(messages)
                    )
                )
                answers = [r[0] for r in results]
                visible = [r[1] for r in results]
                edited = [r[2] for r in results]
                print(
                    json.dumps(
                        {
                            "clicks": args.clicks,
                            "rate_per_s": args.rate,
                            "answer": percentiles(answers),
                            "silence_visible": percentiles(visible),
                            "message_edited": percentiles(edited),
                            "peak_rss_mb": round(peak_rss_mb(router.pid), 1),
                        },
                        indent=2,
                    )
                )
            finally:
                router.terminate()
                router.wait(15)
                am.terminate()
                am.wait(15)


async def one_click(
    http: aiohttp.ClientSession,
    base: str,
    am_url: str,
    slack: FakeSlack,
    message: Any,
    channel_id: str,
    delay: float,
) -> tuple[float, float, float]:
    await asyncio.sleep(delay)
    body = form_body(block_actions(message, channel_id, "silence_3600", _USER))
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(SECRET, body, ts),
    }
    group = json.loads(
        block_actions(message, channel_id, "silence_3600", _USER)["actions"][0]["value"]
    )["g"]
    alertname = group.split('alertname="', 1)[1].split('"', 1)[0]
    started = time.perf_counter()
    async with http.post(base + "/slack/interactions", data=body, headers=headers) as resp:
        assert resp.status == 200, resp.status
    answered = time.perf_counter() - started
    visible = edited = 0.0
    query = {"filter": f'alertname="{alertname}"'}
    async with asyncio.timeout(60):
        while not (visible and edited):
            if not visible:
                async with http.get(am_url + "/api/v2/silences", params=query) as resp:
                    found = await resp.json()
                if any(s["status"]["state"] == "active" for s in found):
                    visible = time.perf_counter() - started
            if (
                not edited
                and "Silenced by" in slack.message(message.channel, message.ts).visible_text()
            ):
                edited = time.perf_counter() - started
            await asyncio.sleep(0.005)
    return answered, visible, edited


_USER = SlackUser("U0BENCH001", "bench")

if __name__ == "__main__":
    asyncio.run(main())
