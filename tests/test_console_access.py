"""Who may read the console and who may act from it: credentials, the trusted proxy, CSRF."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from router.config.loader import ConfigError, load_config
from router.web.auth import Csrf
from tests.conftest import Running, running
from tests.fakes.webhook_sink import WebhookSink
from tests.helpers import config_from
from tests.test_console_pages import alert, page, raw, settled

VIEWER = {"Authorization": "Basic " + base64.b64encode(b"viewer:view-pw").decode()}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin-pw").decode()}
BEARER = {"Authorization": "Bearer api-token"}

GUARDED = """
state: {{url: "{state_url}"}}
server:
  auth:
    api: {{bearer_token: api-token, basic_auth: {{username: viewer, password: view-pw}}}}
    admin: {{basic_auth: {{username: ops, password: admin-pw}}}}
receivers:
  - name: hook
    webhook: {{url: "{sink}/hook"}}
route: {{receiver: hook}}
"""

PAGES = ("/ui/", "/ui/notifications", "/ui/routes", "/ui/routes?labels=env%3Dprod")


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    async with WebhookSink() as fake:
        yield fake


@pytest.fixture
def config_file(tmp_path: Path, state_url: str, sink: WebhookSink) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(GUARDED.format(state_url=state_url, sink=sink.url("").rstrip("/")))
    return path


@pytest.fixture
async def guarded(config_file: Path) -> AsyncIterator[Running]:
    async with running(load_config(config_file), config_path=config_file) as svc:
        yield svc


def token_of(markup: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', markup)
    assert found is not None, "no form with a CSRF token on the page"
    return found.group(1)


async def post_form(
    svc: Running, path: str, form: dict[str, str], headers: dict[str, str]
) -> tuple[int, str, str]:
    """POST a form: (status, Location, page text)."""
    async with svc.http.post(
        svc.url + path, data=form, headers=headers, allow_redirects=False
    ) as resp:
        return resp.status, resp.headers.get("Location", ""), await resp.text()


async def test_an_open_console_says_so_on_every_page(state_url: str) -> None:
    config = config_from(
        f'state: {{url: "{state_url}"}}\nreceivers: [{{name: s, log: {{}}}}]\n'
        "route: {receiver: s}"
    )
    async with running(config) as svc:
        for path in PAGES:
            status, text = await page(svc, path)
            assert status == 200, path
            assert "Open console: anyone who can reach this port can read it" in text, path
            assert "Read-only: actions are off (server.auth.admin is not set)" in text, path
            assert "Reload the configuration" not in text
        status, _, text = await post_form(svc, "/ui/reload", {"csrf": "x"}, {})
        assert status == 403
        assert "Actions are off" in text


async def test_read_credentials_guard_every_page_with_a_browser_challenge(
    guarded: Running,
) -> None:
    for path in (*PAGES, "/ui/notifications/x", "/ui/groups/g", "/ui/digests/d"):
        async with guarded.http.get(guarded.url + path) as resp:
            assert resp.status == 401, path
            challenges = resp.headers.getall("WWW-Authenticate")
            assert challenges[0] == 'Basic realm="alert-router"', path
            assert (await resp.json())["error"] == "missing or wrong credentials"
    wrong = {"Authorization": "Basic " + base64.b64encode(b"viewer:nope").decode()}
    assert (await page(guarded, "/ui/", wrong))[0] == 401
    for creds in (VIEWER, BEARER, ADMIN):
        status, text = await page(guarded, "/ui/", creds)
        assert status == 200
        assert "Open console" not in text and "Read-only" not in text
    _, text = await page(guarded, "/ui/", VIEWER)
    assert "Signed in as viewer" in text


async def test_only_an_admin_sees_the_actions(guarded: Running) -> None:
    _, text = await page(guarded, "/ui/", VIEWER)
    assert "Reload the configuration" not in text
    assert "Sign in to act" in text
    _, text = await page(guarded, "/ui/", ADMIN)
    assert "Signed in as ops (admin)" in text
    assert "Reload the configuration" in text


async def test_signing_in_as_admin_asks_the_browser_for_credentials(guarded: Running) -> None:
    async with guarded.http.get(
        guarded.url + "/ui/login?next=/ui/routes", headers=VIEWER, allow_redirects=False
    ) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="alert-router"'
    async with guarded.http.get(
        guarded.url + "/ui/login?next=/ui/routes", headers=ADMIN, allow_redirects=False
    ) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "/ui/routes"
    async with guarded.http.get(
        guarded.url + "/ui/login?next=https://evil.example/", headers=ADMIN, allow_redirects=False
    ) as resp:
        assert resp.headers["Location"] == "/ui/"


async def test_reload_from_the_console_needs_admin_a_token_and_this_origin(
    guarded: Running, config_file: Path
) -> None:
    _, markup = await raw(guarded, "/ui/", ADMIN)
    token = token_of(markup)
    status, _, text = await post_form(guarded, "/ui/reload", {"csrf": token}, VIEWER)
    assert status == 403 and "Only an admin may do this" in text
    status, _, text = await post_form(guarded, "/ui/reload", {"csrf": "1.forged"}, ADMIN)
    assert status == 403 and "The form has expired or was not made for you" in text
    status, _, text = await post_form(guarded, "/ui/reload", {}, ADMIN)
    assert status == 403
    elsewhere = {**ADMIN, "Origin": "https://evil.example"}
    status, _, text = await post_form(guarded, "/ui/reload", {"csrf": token}, elsewhere)
    assert status == 403 and "not sent from a page of this console" in text
    assert guarded.state.last_reload is None

    here = {**ADMIN, "Origin": guarded.url}
    status, location, _ = await post_form(guarded, "/ui/reload", {"csrf": token}, here)
    assert (status, location) == (303, "/ui/?reloaded=yes")
    _, text = await page(guarded, "/ui/", ADMIN)
    assert "Configuration reloaded" in text and "last reload" in text

    config_file.write_text("route: {receiver: nowhere}\nreceivers: []\n")  # noqa: ASYNC240
    status, location, _ = await post_form(guarded, "/ui/reload", {"csrf": token}, here)
    assert (status, location) == (303, "/ui/?reloaded=no")
    _, text = await page(guarded, "/ui/", ADMIN)
    assert "Reload failed" in text
    assert "routes.yaml:" in text


async def test_retry_brings_a_failed_notification_back(guarded: Running, sink: WebhookSink) -> None:
    sink.script(400, body="bad payload")
    await guarded.post("/webhook/alertmanager", alert({"alertname": "Retried"}, group="r"))
    async with aiohttp.ClientSession(headers=VIEWER) as reader:
        await retried(Running(guarded.url, guarded.app, reader), sink)


async def retried(guarded: Running, sink: WebhookSink) -> None:
    [record] = await settled(guarded, 1)
    assert record["state"] == "failed"
    path = f"/ui/notifications/{record['id']}"
    _, text = await page(guarded, path, VIEWER)
    assert "Sign in as an admin to retry it" in text
    _, markup = await raw(guarded, path, ADMIN)
    assert 'id="retry"' in markup
    status, location, _ = await post_form(
        guarded, path + "/retry", {"csrf": token_of(markup)}, ADMIN
    )
    assert (status, location) == (303, path + "?retried=yes")
    await guarded.wait_for_records(lambda rs: rs[0]["state"] == "sent")
    _, text = await page(guarded, path + "?retried=yes", ADMIN)
    assert "Retry requested" in text
    assert "state sent" in text
    assert len(await sink.wait_for(2)) == 2


def test_a_csrf_token_is_bound_to_its_credential_and_time() -> None:
    server = config_from(GUARDED.format(state_url="sqlite:///x.db", sink="http://h")).server
    csrf = Csrf(server)
    token = csrf.token("basic:ops", now=1000.0)
    assert csrf.valid(token, "basic:ops", now=1001.0)
    assert not csrf.valid(token, "basic:viewer", now=1001.0)
    assert not csrf.valid(token, "basic:ops", now=1000.0 + 13 * 3600)
    assert not csrf.valid("garbage", "basic:ops", now=1001.0)
    # Another replica with the same configuration accepts it.
    assert Csrf(server).valid(token, "basic:ops", now=1001.0)


PROXIED = """
state: {{url: "{state_url}"}}
server:
  trusted_proxy:
    addresses: [{addresses}]
    admins: [alice@example.com]
receivers: [{{name: s, log: {{}}}}]
route: {{receiver: s}}
"""


async def test_the_user_a_trusted_proxy_names_is_believed_and_shown(state_url: str) -> None:
    config = config_from(PROXIED.format(state_url=state_url, addresses="127.0.0.0/8"))
    async with running(config) as svc:
        assert (await page(svc, "/ui/"))[0] == 403
        status, text = await page(svc, "/ui/", {"X-Forwarded-User": "bob@example.com"})
        assert status == 200
        assert "Signed in as bob@example.com" in text
        assert "Reload the configuration" not in text
        status, text = await page(svc, "/ui/", {"X-Forwarded-User": "alice@example.com"})
        assert "Signed in as alice@example.com (admin)" in text
        # Only the configured header names a user; another one is refused, not ignored.
        status, _ = await page(svc, "/ui/", {"X-Auth-Request-User": "alice@example.com"})
        assert status == 400
        status, _ = await page(svc, "/api/v1/notifications", {"X-Forwarded-User": "bob"})
        assert status == 200


async def test_a_proxy_header_from_another_address_is_ignored(state_url: str) -> None:
    config = config_from(PROXIED.format(state_url=state_url, addresses="10.0.0.0/8"))
    async with running(config) as svc:
        status, text = await page(svc, "/ui/", {"X-Forwarded-User": "alice@example.com"})
        assert status == 403
        assert "sign in through the authenticating proxy" in text


def test_check_names_a_trusted_proxy_address_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "server:\n  trusted_proxy:\n    addresses: [10.0.0.0/33, 0.0.0.0/0]\n"
        "receivers: [{name: s, log: {}}]\nroute: {receiver: s}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = "\n".join(caught.value.problems)
    assert f"{path}:3:16: server.trusted_proxy.addresses:" in problems
    assert "'10.0.0.0/33' is not an IP address or CIDR" in problems
