"""schemathesis against the service's own OpenAPI document: every endpoint, fed generated
requests, never answers 5xx, answers only documented status codes and content types, and
its bodies match the described schemas. The service runs on a real port with real
records (webhooks posted first), in a thread of its own so schemathesis can call it."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from router.web.app import create_app
from router.web.openapi import openapi_document
from tests.helpers import config_from, payload

schema = schemathesis.openapi.from_dict(openapi_document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# schemathesis's own strategies draw from `random` for generated text, which this
# Hypothesis deprecates (a warning, an error under the suite's filterwarnings).
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
# Enough to reach every parameter and status of each operation; the suite stays quick.
EXAMPLES = 30


def _serve(state_dir: Path, ready: threading.Event, stop: threading.Event, url: list[str]) -> None:
    config = config_from(
        f"""
state: {{url: 'sqlite:///{state_dir}/state.db'}}
receivers:
  - name: quiet
    webhook: {{url: 'http://127.0.0.1:9/unreachable', timeout: 1s}}
route: {{receiver: quiet}}
"""
    )

    async def main() -> None:
        runner = web.AppRunner(create_app(config), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await runner.cleanup()

    asyncio.run(main())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with records of both sources in every state a first delivery gives."""
    ready, stop = threading.Event(), threading.Event()
    url: list[str] = []
    thread = threading.Thread(
        target=_serve, args=(tmp_path_factory.mktemp("schema"), ready, stop, url), daemon=True
    )
    thread.start()
    assert ready.wait(15), "the service did not start"
    for path, body in (
        ("/webhook/alertmanager", payload("alertmanager_firing.json")),
        ("/webhook/argocd", payload("argocd_sync_failed.json")),
        ("/webhook/alertmanager", payload("alertmanager_resolved.json")),
    ):
        request = urllib.request.Request(
            url[0] + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            assert answer.status == 200
    yield url[0]
    stop.set()
    thread.join(15)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_endpoint_answers_as_its_description_says(
    case: schemathesis.Case[Any], base_url: str
) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)
