"""A hostile webhook sender, tried over HTTP: every attack on the trust boundaries fails.

Webhooks need no credentials by default, so whatever a body says is a stranger's word. The
capture server below stands where an attacker would want the router's requests to go: it
must receive nothing. Silences are checked on Debian's real Alertmanager.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from router.alertmanager_api.client import AlertmanagerClient, SilenceError
from router.config.schema import AlertmanagerAPI
from router.interact.slack_clicks import SlackClickRunner
from router.matchers import Matcher
from router.metrics import Metrics
from router.runtime import Runtime
from router.store.protocols import Store
from tests.conftest import Running, running
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.fakes.slack_clicks import ALICE, button_labels, buttons, click, form_body, post_signed
from tests.fakes.smtp import free_port
from tests.helpers import config_from, until
from tests.test_alertmanager_e2e import alert
from tests.test_slack_interactions_e2e import SECRET, active, alertmanager

CHANNEL = "#prod-alerts"
TOKEN = "am-api-t0ken-never-elsewhere"


@pytest.fixture
async def capture() -> AsyncIterator[Capture]:
    found = Capture()
    async with found.serving():
        yield found


class Capture:
    """A server on loopback that records every request it gets (an attacker's)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.url = ""
        self.redirect_to = ""
        # While set and not open, answers wait for it: a request stays in flight.
        self.gate: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        if self.gate is not None:
            await self.gate.wait()
        if self.redirect_to:
            raise web.HTTPTemporaryRedirect(self.redirect_to + request.path_qs)
        return web.json_response([])

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield
        finally:
            await runner.cleanup()


def slack_config(slack: FakeSlack, state_url: str, alertmanagers: str, extra: str = "") -> str:
    return f"""
state: {{url: '{state_url}'}}
slack:
  per_channel_interval: 0
  interactivity: {{signing_secret: {SECRET}}}
{alertmanagers}
{extra}
receivers:
  - name: slack-prod
    slack: {{token: {slack.token}, channel: "{CHANNEL}", api_url: {slack.api_url}}}
route: {{receiver: slack-prod}}
"""


def hostile(external_url: str, **changes: Any) -> dict[str, Any]:
    """An Alertmanager-shaped webhook written by a stranger."""
    body: dict[str, Any] = {
        "version": "4",
        "receiver": "alert-router",
        "status": "firing",
        "groupKey": '{}:{alertname="CheckoutErrors", env="prod"}',
        "groupLabels": {"alertname": "CheckoutErrors", "env": "prod"},
        "externalURL": external_url,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "CheckoutErrors", "env": "prod", "severity": "critical"},
                "annotations": {"summary": "checkout fails"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "0123456789abcdef",
            }
        ],
    }
    body.update(changes)
    return body


def the_message(slack: FakeSlack) -> SlackMessage:
    [message] = slack.messages(CHANNEL)
    return message


def forged_silence_click(message: SlackMessage, channel_id: str) -> bytes:
    """A Silence click on a message that offers none, made up from its Acknowledge."""
    ack = buttons(message)["ack"]
    value = json.loads(ack["value"])
    payload = {
        "type": "block_actions",
        "user": {"id": ALICE.id, "username": ALICE.name, "name": ALICE.name, "team_id": "T0"},
        "container": {"type": "message", "message_ts": message.ts, "channel_id": channel_id},
        "team": {"id": "T0", "domain": "example"},
        "channel": {"id": channel_id, "name": "prod-alerts"},
        "message": message.as_json(),
        "actions": [
            {
                "type": "button",
                "action_id": "silence_3600",
                "block_id": ack["block_id"],
                "text": {"type": "plain_text", "text": "Silence 1h"},
                "value": json.dumps({**value, "d": 3600}),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return form_body(payload)


# ---- 1. credentials and requests go only to configured places ----------------------------


async def posted(service: Running, slack: FakeSlack) -> SlackMessage:
    """The group's message, once the store keeps it as the group's current one (a click on
    it before then is rightly ignored)."""
    await service.wait_for_records(lambda rs: any(r["state"] == "sent" for r in rs))
    return the_message(slack)


async def test_an_external_url_chosen_by_the_sender_is_never_called(
    slack: FakeSlack, state_url: str, capture: Capture
) -> None:
    am = f"alertmanager: {{url: 'http://127.0.0.1:9', bearer_token: {TOKEN}}}"
    config = config_from(slack_config(slack, state_url, am))
    async with running(config) as service:
        # The documented default once was: no api_url, so call the webhook's externalURL.
        status, _ = await service.post("/webhook/alertmanager", hostile(capture.url + "/am"))
        assert status == 200
        message = await posted(service, slack)
        # A group from no configured Alertmanager offers no Silence at all...
        assert button_labels(message) == ["Acknowledge"]
        # ...and a click made up for one does nothing but say so.
        url = service.url + "/slack/interactions"
        body = forged_silence_click(message, slack.channel_id(CHANNEL))
        assert await post_signed(service.http, url, SECRET, body) == 200
        await until(lambda: the_message(slack).replies)
        assert "offers no silence" in the_message(slack).replies[0].text
        # The router's own pages are no target either.
        internal = f"{service.url}/metrics?x="
        status, _ = await service.post("/webhook/alertmanager", hostile(internal))
        assert status == 200
    assert capture.requests == []


async def test_a_repost_of_a_real_group_cannot_redirect_its_silence_or_widen_it(
    slack: FakeSlack, state_url: str, capture: Capture, tmp_path: Path
) -> None:
    port = free_port()
    am_url = f"http://127.0.0.1:{port}"
    config = config_from(slack_config(slack, state_url, f"alertmanager: {{url: '{am_url}'}}"))
    async with running(config) as service, alertmanager(tmp_path, service.url, port) as am:
        await am.post_alerts([alert("CheckoutErrors", env="prod", severity="critical")])
        message = await posted(service, slack)
        assert "Silence 1h" in button_labels(message)
        [silence_button] = [b for k, b in buttons(message).items() if k == "silence_3600"]
        dialog = silence_button["confirm"]["text"]["text"]
        assert 'alertname="CheckoutErrors", env="prod"' in dialog and "127.0.0.1" in dialog
        # The same group again, sent by a stranger: another Alertmanager, wider labels.
        repost = hostile(
            capture.url,
            groupKey='{}:{alertname="CheckoutErrors", env="prod"}',
            groupLabels={"env": "prod"},
        )
        status, _ = await service.post("/webhook/alertmanager", repost)
        assert status == 200
        url = service.url + "/slack/interactions"
        channel_id = slack.channel_id(CHANNEL)
        assert await click(service.http, url, SECRET, message, channel_id, "silence_3600") == 200
        [silence] = await until(lambda: _active(am))
        matchers = {(m["name"], m["value"], m["isEqual"]) for m in silence["matchers"]}
        # Exactly what the message offered when it was posted.
        assert matchers == {("alertname", "CheckoutErrors", True), ("env", "prod", True)}
    assert capture.requests == []


async def _active(am: Any) -> list[dict[str, Any]]:
    return active(await am.silences())


async def test_a_redirect_is_not_followed_and_carries_no_credentials(
    capture: Capture, pool: aiohttp.ClientSession
) -> None:
    target = Capture()
    async with target.serving():
        capture.redirect_to = target.url
        for auth in (
            {"bearer_token": TOKEN},
            {"basic_auth": {"username": "am", "password": TOKEN}},
        ):
            entry = AlertmanagerAPI.model_validate({"url": capture.url, **auth})
            client = AlertmanagerClient(entry, pool)
            with pytest.raises(SilenceError) as caught:
                await client.find("marker", [Matcher("alertname", "=", "X")])
            assert "redirect" in str(caught.value) and "not followed" in str(caught.value)
            assert not caught.value.retryable and TOKEN not in str(caught.value)
    # The configured place got the credentials; the place it pointed at got nothing.
    assert len(capture.requests) == 2 and target.requests == []


async def test_a_redirecting_alertmanager_fails_the_click_with_a_clear_message(
    slack: FakeSlack, state_url: str, capture: Capture
) -> None:
    target = Capture()
    async with target.serving():
        capture.redirect_to = target.url
        am = (
            f"alertmanager: {{url: '{capture.url}', external_url: 'https://am.example.com',"
            f" basic_auth: {{username: am, password: {TOKEN}}}}}"
        )
        config = config_from(slack_config(slack, state_url, am))
        async with running(config) as service:
            status, _ = await service.post(
                "/webhook/alertmanager", hostile("https://am.example.com/")
            )
            assert status == 200
            message = await posted(service, slack)
            url = service.url + "/slack/interactions"
            channel_id = slack.channel_id(CHANNEL)
            status = await click(service.http, url, SECRET, message, channel_id, "silence_3600")
            assert status == 200
            [reply] = await until(lambda: the_message(slack).replies)
            assert reply.text.startswith("Could not create the silence")
            assert "redirect" in reply.text and TOKEN not in reply.text
    assert target.requests == []


# ---- 3. one user header, from the proxy only ------------------------------------------------

PROXIED = """
state: {{url: "{state_url}"}}
server:
  trusted_proxy:
    addresses: [127.0.0.0/8]
    user_header: X-Auth-Request-User
    admins: [alice@example.com]
receivers: [{{name: s, log: {{}}}}]
route: {{receiver: s}}
"""


async def _get(svc: Running, path: str, headers: list[tuple[str, str]]) -> tuple[int, str]:
    async with svc.http.get(svc.url + path, headers=CIMultiDict(headers)) as r:
        return r.status, await r.text()


async def test_a_client_cannot_name_itself_through_the_proxy(state_url: str) -> None:
    config = config_from(PROXIED.format(state_url=state_url))
    async with running(config) as svc:
        proxy_says = ("X-Auth-Request-User", "bob@example.com")
        status, text = await _get(svc, "/ui/", [proxy_says])
        assert status == 200 and "bob@example.com" in text
        # A header the proxy does not set, added by the client: refused, not believed.
        spoof = ("X-Forwarded-User", "alice@example.com")
        assert (await _get(svc, "/ui/", [proxy_says, spoof]))[0] == 400
        # The proxy appended instead of overwriting: two values, refused.
        twice = [("X-Auth-Request-User", "alice@example.com"), proxy_says]
        status, text = await _get(svc, "/ui/", twice)
        assert status == 400 and "more than once" in text
        for header in ("Remote-User", "X-Forwarded-Email", "X-Webauth-User"):
            assert (await _get(svc, "/ui/", [proxy_says, (header, "alice")]))[0] == 400


# ---- 4. no cross-site state change -------------------------------------------------------------

GUARDED = """
state: {{url: "{state_url}"}}
server:
  auth:
    admin: {{basic_auth: {{username: ops, password: s3cret-admin}}}}
receivers: [{{name: s, log: {{}}}}]
route: {{receiver: s}}
"""


async def test_another_sites_page_cannot_change_anything(state_url: str, tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(GUARDED.format(state_url=state_url))
    config = config_from(path.read_text())
    admin = {"Authorization": "Basic " + base64.b64encode(b"ops:s3cret-admin").decode()}
    async with running(config, config_path=path) as svc:
        status, _ = await svc.post("/webhook/alertmanager", hostile("http://am"))
        [record] = await svc.wait_for_records(lambda r: len(r) == 1)
        retry = f"/api/v1/notifications/{record['id']}/retry"
        for headers in (
            {"Origin": "https://evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},
        ):
            for path_ in ("/-/reload", retry, "/ui/reload"):
                sent = {**admin, **headers}
                async with svc.http.post(svc.url + path_, headers=sent) as resp:
                    assert resp.status == 403, (path_, headers)
        # The same requests from this service's own pages are carried out.
        same = {"Origin": svc.url, "Sec-Fetch-Site": "same-origin"}
        async with svc.http.post(svc.url + "/-/reload", headers={**admin, **same}) as resp:
            assert resp.status == 200
        # The JSON API's POSTs take JSON only: a form cannot reach them.
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        async with svc.http.post(
            svc.url + "/api/v1/routes/test", data="labels=x", headers=form
        ) as resp:
            assert resp.status == 415


async def test_console_pages_carry_the_browser_protections(state_url: str) -> None:
    config = config_from(PROXIED.format(state_url=state_url))
    async with running(config) as svc:
        async with svc.http.get(
            svc.url + "/ui/", headers={"X-Auth-Request-User": "bob@example.com"}
        ) as resp:
            csp = resp.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Referrer-Policy"] == "same-origin"


# ---- 5. bounded work per request ------------------------------------------------------------

OPEN = """
state: {{url: "{state_url}"}}
server: {{read_timeout: 1s}}
receivers: [{{name: s, log: {{}}}}]
route: {{receiver: s}}
"""


def many_alerts(count: int) -> dict[str, Any]:
    """`count` alerts and no groupKey: each alert would become a group of its own."""
    return {
        "version": "4",
        "status": "firing",
        "alerts": [{"labels": {"alertname": f"Flood{i}"}} for i in range(count)],
    }


async def test_one_body_cannot_open_thousands_of_groups(state_url: str) -> None:
    config = config_from(OPEN.format(state_url=state_url))
    async with running(config) as svc:
        status, answer = await svc.post("/webhook/alertmanager", many_alerts(20_000))
        assert status == 413 and "max_alerts_per_webhook" in answer["error"]
        status, answer = await svc.post("/webhook/alertmanager", many_alerts(101))
        assert status == 413 and "max_groups_per_webhook" in answer["error"]
        # While a body of the largest size was parsed, the loop still answered.
        health = asyncio.create_task(svc.get_json("/healthz"))
        status, _ = await svc.post("/webhook/alertmanager", many_alerts(9_000))
        assert status == 413 and (await health)[0] == 200
        assert await svc.records() == []
        status, _ = await svc.post("/webhook/alertmanager", many_alerts(100))
        assert status == 200


async def test_the_largest_body_allowed_is_accepted_whole_and_its_errors_named(
    state_url: str,
) -> None:
    config = config_from(OPEN.format(state_url=state_url))
    largest = {
        **many_alerts(10_000),
        "alerts": [{"labels": {"alertname": f"A{i % 100}", "i": str(i)}} for i in range(10_000)],
    }
    async with running(config) as svc:
        status, answer = await svc.post("/webhook/alertmanager", largest)
        assert (status, answer) == (200, {"accepted": 10_000})
        records = await svc.wait_for_records(lambda r: len(r) == 100, within=60)
        assert sum(len(r["alerts"]) for r in records) == 10_000
        largest["alerts"][7_777]["labels"] = "not a label set"
        status, answer = await svc.post("/webhook/alertmanager", largest)
        assert status == 400 and "alerts.7777.labels" in answer["error"]


async def test_headers_trickled_byte_by_byte_are_cut_off(state_url: str) -> None:
    config = config_from(OPEN.format(state_url=state_url))
    async with running(config) as svc:
        port = int(svc.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: applic"
        closed = False
        try:
            for byte in request:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
                if reader.at_eof():
                    closed = True
                    break
            if not closed:
                # The server closes the connection at the deadline: read until it does.
                closed = await asyncio.wait_for(reader.read(), 10) == b""
        except ConnectionError:
            closed = True
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        assert closed
        # A body that stops arriving is refused once the deadline passes.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b'\r\nContent-Length: 1000\r\n\r\n{"alerts": ['
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        assert status_line.startswith(b"HTTP/1.1 408")


async def test_the_console_refuses_a_text_search_too_short_to_be_cheap(state_url: str) -> None:
    config = config_from(OPEN.format(state_url=state_url))
    async with running(config) as svc:
        async with svc.http.get(svc.url + "/ui/notifications?q=ab") as resp:
            page = await resp.text()
            assert resp.status == 400
        status, api = await svc.get_json("/api/v1/notifications?q=ab")
        assert status == 400 and api["error"] in page


# ---- a reload leaves no client behind ---------------------------------------------------------


async def test_a_reload_replaces_the_client_of_an_alertmanager_it_changed_under_a_click(
    metrics: Metrics, capture: Capture, pool: aiohttp.ClientSession
) -> None:
    base = "receivers: [{name: s, log: {}}]\nroute: {receiver: s}\n"
    name = capture.url.removeprefix("http://")
    one = config_from(f"alertmanager: {{url: '{capture.url}'}}\n" + base)
    first = Runtime.build(one, None, metrics, http=pool)
    runtime = [first]
    runner = SlackClickRunner(cast(Store, None), lambda: runtime[0])
    old = runner.silences(name)
    assert old is not None and runner.silences(name) is old
    capture.gate = asyncio.Event()
    in_flight = asyncio.create_task(old.find("marker"))
    await until(lambda: len(capture.requests) == 1)

    changed = f"alertmanager: {{url: '{capture.url}', bearer_token: {TOKEN}}}\n"
    runtime[0] = Runtime.build(config_from(changed + base), first, metrics)
    new = runner.silences(name)
    assert new is not None and new is not old and runner.silences(name) is new
    # The replaced client is dropped, not closed: the click using it finishes.
    capture.gate.set()
    assert await in_flight is None
    assert await new.find("marker") is None
    [(_, _, before), (_, _, after)] = capture.requests
    assert "Authorization" not in before and after["Authorization"] == f"Bearer {TOKEN}"

    runtime[0] = Runtime.build(config_from(base), runtime[0], metrics)
    assert runner.silences(name) is None
    await runner.stop()
    assert not pool.closed
