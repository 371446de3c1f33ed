"""`alert-router replay` and `export`: recorded events through the live and a proposed
config; exactly the groups whose receivers, mute or inhibition differ are reported."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router.cli import main
from router.config.loader import load_config
from router.ingest.intake import plan_notifications
from router.model import Event, Status
from router.replay.command import _progress as progress_bar
from router.replay.engine import Recorded, read_window
from router.routing.tree import RouteTree
from router.store.protocols import Store
from router.store.redis import RedisStore
from router.store.sqlite import SQLiteStore
from router.web.console.mrkdwn import render as render_mrkdwn
from tests.conftest import running
from tests.helpers import config_from, until

LIVE = """\
state: {{url: "sqlite:///{db}"}}
receivers:
  - name: sre
    log: {{}}
  - name: payments
    log: {{}}
  - name: db
    log: {{}}
route:
  receiver: sre
  routes:
    - matchers: ['alertname="DiskFull"']
      receiver: sre
    - matchers: ['service="db"']
      receiver: db
"""

# DiskFull moves to payments; a rule lets DatabaseDown inhibit db warnings; db is muted
# at night (UTC); the unchanged `Cpu` group must not be reported.
PROPOSED = """\
state: {{url: "sqlite:///{db}"}}
receivers:
  - name: sre
    log: {{}}
  - name: payments
    log: {{}}
  - name: db
    log: {{}}
time_intervals:
  - name: night
    time_intervals:
      - times: [{{start_time: "22:00", end_time: "24:00"}}]
inhibit_rules:
  - name: down-mutes-warnings
    source_matchers: ['alertname="DatabaseDown"']
    target_matchers: ['severity="warning"', 'alertname!="DatabaseDown"']
    equal: [service]
route:
  receiver: sre
  routes:
    - matchers: ['alertname="DiskFull"']
      receiver: payments
    - matchers: ['service="db"', 'alertname="Backup"']
      receiver: db
      mute_time_intervals: [night]
    - matchers: ['service="db"']
      receiver: db
"""

# A team split out of the root file: its alerts go to the team's own receiver.
SPLIT = """\
state: {{url: "sqlite:///{db}"}}
receivers:
  - name: sre
    log: {{}}
  - name: payments
    log: {{}}
  - name: db
    log: {{}}
teams:
  - name: dbteam
    file: dbteam.yaml
    matchers: ['service="db"']
route:
  receiver: sre
  routes:
    - matchers: ['alertname="DiskFull"']
      receiver: sre
    - team: dbteam
"""

DBTEAM = """\
receivers:
  - name: pager
    log: {}
route:
  receiver: pager
"""


def _event(name: str, status: Status = Status.FIRING, **labels: str) -> Event:
    full = {"alertname": name, "env": "prod", "severity": "warning", **labels}
    return Event(
        source="alertmanager",
        fingerprint=f"fp-{name}-{labels.get('service', '')}",
        group_key=f'{{}}:{{alertname="{name}"}}',
        status=status,
        labels=full,
    )


def _day(days_ago: int, hour: int, minute: int = 0) -> float:
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (base - timedelta(days=days_ago) + timedelta(hours=hour, minutes=minute)).timestamp()


def _corpus() -> list[Recorded]:
    return [
        Recorded.of(_day(2, 10), _event("DiskFull")),
        Recorded.of(_day(2, 10, 5), _event("DiskFull", Status.RESOLVED)),
        Recorded.of(_day(2, 11), _event("Cpu")),
        # DatabaseDown and a db warning arrive together: inhibition sees both.
        Recorded.of(_day(3, 12), _event("DatabaseDown", service="db", severity="critical")),
        Recorded.of(_day(3, 12), _event("ReplicaLag", service="db")),
        Recorded.of(_day(3, 13), _event("DatabaseDown", Status.RESOLVED, service="db")),
        # Later, with nothing firing, the same warning is not inhibited.
        Recorded.of(_day(3, 14), _event("SlowQueries", service="db")),
        # Backup at noon is delivered, at 23:30 muted by the new night interval.
        Recorded.of(_day(4, 12), _event("Backup", service="db")),
        Recorded.of(_day(4, 23, 30), _event("Backup", service="db")),
        # Outside the window (--since 7d): ignored, although it would change.
        Recorded.of(_day(9, 12), _event("OldDiskFull", service="x", alertname="DiskFull")),
    ]


def _write(tmp_path: Path, events: Sequence[Recorded]) -> dict[str, Path]:
    db = tmp_path / "state.db"
    paths = {}
    for name, text in {"live": LIVE, "proposed": PROPOSED, "split": SPLIT}.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text.format(db=db))
        paths[name] = path
    (tmp_path / "dbteam.yaml").write_text(DBTEAM)
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(e.to_json() + "\n" for e in events))
    paths["events"] = events_file
    paths["db"] = db
    return paths


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_reports_exactly_the_groups_a_moved_route_a_new_rule_and_a_mute_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, _corpus())
    code, out, err = _run(
        capsys,
        "replay",
        "--config", str(paths["proposed"]),
        "--against", str(paths["live"]),
        "--events", str(paths["events"]),
    )  # fmt: skip
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[-1] == "3 groups changed of 6"
    changed = sorted(lines[:-1])
    assert changed == [
        '{}:{alertname="Backup"}: db -> db [muted db x1]',
        '{}:{alertname="DiskFull"}: sre -> payments',
        '{}:{alertname="ReplicaLag"}: db -> (nobody) [inhibited x1]',
    ]


def test_replay_json_names_each_change_and_fail_on_change_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, _corpus())
    code, out, _ = _run(
        capsys,
        "replay",
        "--config", str(paths["proposed"]),
        "--against", str(paths["live"]),
        "--events", str(paths["events"]),
        "--format", "json",
        "--fail-on-change",
    )  # fmt: skip
    assert code == 1
    report = json.loads(out)
    assert (report["events"], report["groups"], report["changed_count"]) == (9, 6, 3)
    by_group = {c["alertname"]: c for c in report["changed"]}
    assert by_group["ReplicaLag"]["after"] == {"receivers": {}, "muted": {}, "inhibited": 1}
    assert by_group["Backup"]["changed_events"] == 1
    assert by_group["Backup"]["example"]["received_at"].endswith("T23:30:00Z")


def test_replay_of_an_identical_config_changes_nothing_and_passes_fail_on_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, _corpus())
    code, out, _ = _run(
        capsys,
        "replay",
        "--config", str(paths["live"]),
        "--against", str(paths["live"]),
        "--events", str(paths["events"]),
        "--fail-on-change",
    )  # fmt: skip
    assert (code, out) == (0, "0 groups changed of 6\n")


def test_replay_of_a_team_split_out_moves_only_that_teams_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, _corpus())
    code, out, _ = _run(
        capsys,
        "replay",
        "--config", str(paths["split"]),
        "--against", str(paths["live"]),
        "--events", str(paths["events"]),
    )  # fmt: skip
    assert code == 0
    team = (
        RouteTree.from_config(load_config(paths["split"], env={}))
        .match({"service": "db", "alertname": "Backup"})[0]
        .receiver
    )
    assert team != "db"
    assert sorted(out.splitlines()) == sorted(
        [
            f'{{}}:{{alertname="Backup"}}: db -> {team}',
            f'{{}}:{{alertname="DatabaseDown"}}: db -> {team}',
            f'{{}}:{{alertname="ReplicaLag"}}: db -> {team}',
            f'{{}}:{{alertname="SlowQueries"}}: db -> {team}',
            "4 groups changed of 6",
        ]
    )


def test_replay_of_a_config_that_does_not_load_exits_2_naming_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, _corpus())
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers:\n  - name: sre\n    lgo: {}\nroute:\n  receiver: sre\n")
    code, out, err = _run(
        capsys,
        "replay",
        "--config", str(bad),
        "--against", str(paths["live"]),
        "--events", str(paths["events"]),
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err.startswith(f"{bad}:3:5: ")


def test_replay_of_an_unreadable_events_file_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, _corpus())
    paths["events"].write_text(_corpus()[0].to_json() + "\n{not json\n")
    code, _, err = _run(
        capsys,
        "replay",
        "--config", str(paths["proposed"]),
        "--against", str(paths["live"]),
        "--events", str(paths["events"]),
    )  # fmt: skip
    assert code == 2
    assert f"{paths['events']}:2: not an exported event" in err


async def _record(db: Path, config_path: Path, events: Sequence[Recorded]) -> None:
    """Record events the way the intake does: each to every receiver it routes to."""
    config = load_config(config_path, env={})
    tree = RouteTree.from_config(config)
    store = SQLiteStore(str(db))
    await store.open()
    try:
        for recorded in events:
            at = datetime.fromtimestamp(recorded.at, UTC)
            await store.record(plan_notifications([recorded.event], tree, at))
    finally:
        await store.close()


def test_export_writes_each_recorded_event_once_and_replay_reads_the_store_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = _write(tmp_path, [])
    # The split config routes DatabaseDown to two receivers: still one event exported.
    (tmp_path / "both.yaml").write_text(
        LIVE.format(db=paths["db"]).replace(
            "      receiver: db\n", "      receiver: db\n      continue: true\n"
        )
        + "    - matchers: ['service=\"db\"']\n      receiver: payments\n"
    )
    asyncio.run(_record(paths["db"], tmp_path / "both.yaml", _corpus()))
    code, exported, _ = _run(capsys, "export", "--config", str(paths["live"]))
    assert code == 0
    lines = exported.splitlines()
    assert len(lines) == 9
    assert [Recorded.from_json(line).at for line in lines] == sorted(r.at for r in _corpus()[:-1])
    paths["events"].write_text(exported)
    from_file = _run(
        capsys, "replay", "--config", str(paths["proposed"]), "--against", str(paths["live"]),
        "--events", str(paths["events"]),
    )  # fmt: skip
    from_store = _run(
        capsys, "replay", "--config", str(paths["proposed"]), "--against", str(paths["live"]),
    )  # fmt: skip
    assert from_file == from_store
    assert from_store[1].endswith("3 groups changed of 6\n")


def test_read_window_pages_through_the_store_and_stops_before_the_window(tmp_path: Path) -> None:
    paths = _write(tmp_path, [])
    now = float(int(time.time()))
    many = [Recorded.of(now - 3600 + i, _event(f"A{i % 7}")) for i in range(2500)]
    old = [Recorded.of(now - 30 * 86400, _event("Old"))]
    asyncio.run(_record(paths["db"], paths["live"], old + many))

    async def read() -> list[Recorded]:
        store = SQLiteStore(str(paths["db"]))
        await store.open()
        try:
            return await read_window(store, now - 7200, now)
        finally:
            await store.close()

    found = asyncio.run(read())
    assert [r.at for r in found] == [r.at for r in many]


# --- POST /api/v1/routes/replay ---------------------------------------------------------

ADMIN = {"Authorization": "Bearer admin-secret"}

SERVED = """\
server: {{auth: {{admin: {{bearer_token: admin-secret}}}}}}
state: {{url: '{state_url}'}}
receivers:
  - name: ops
    log: {{}}
  - name: dev
    log: {{}}
time_intervals:
  - name: always
    time_intervals: [{{times: [{{start_time: "00:00", end_time: "24:00"}}]}}]
route:
  receiver: ops
  routes:
    - matchers: ['env="dev"']
      receiver: dev
      mute_time_intervals: [always]
"""


def _alert(group: str, **labels: str) -> dict[str, object]:
    return {
        "version": "4",
        "groupKey": group,
        "status": "firing",
        "receiver": "r",
        "alerts": [{"status": "firing", "labels": labels, "fingerprint": group}],
    }


async def test_the_replay_api_is_for_admins_and_answers_the_cli_s_diff(state_url: str) -> None:
    text = SERVED.format(state_url=state_url)
    async with running(config_from(text)) as svc:
        for group, env in (("g-dev", "dev"), ("g-prod", "prod")):
            status, _ = await svc.post(
                "/webhook/alertmanager", _alert(group, alertname=group, env=env)
            )
            assert status == 200
        await svc.wait_for_records(lambda records: len(records) >= 2)
        proposed = text.replace("      mute_time_intervals: [always]\n", "")
        status, _ = await svc.post("/api/v1/routes/replay", {"config": proposed})
        assert status == 401
        status, body = await svc.post("/api/v1/routes/replay", {"config": proposed}, ADMIN)
        assert status == 200, body
        assert (body["events"], body["groups"], body["changed_count"]) == (2, 2, 1)
        [change] = body["changed"]
        assert change["group_key"].endswith("g-dev")
        assert change["before"] == {"receivers": {}, "muted": {"dev": 1}, "inhibited": 0}
        assert change["after"] == {"receivers": {"dev": 1}, "muted": {}, "inhibited": 0}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"config": "route: [\n"}, 422, "the proposed config does not load"),
        ({"config": "x: 1", "since": "forever"}, 400, "invalid duration"),
        ({"config": "x: 1", "since": "90d"}, 400, "since must be a duration between"),
        ({"yaml": "x"}, 400, "unknown field 'yaml'"),
        ({"config": 3}, 400, "config must be the proposed routes.yaml"),
    ],
)
async def test_a_bad_replay_request_says_what_to_change(
    state_url: str, body: dict[str, object], status: int, error: str
) -> None:
    async with running(config_from(SERVED.format(state_url=state_url))) as svc:
        got, answer = await svc.post("/api/v1/routes/replay", body, ADMIN)
        assert got == status, answer
        assert answer["error"].startswith(error)
        if status == 422:
            assert answer["problems"][0].startswith("/")
            assert "proposed.yaml:2:1: YAML syntax error" in answer["problems"][0]


# --- the routes page's compare form ------------------------------------------------------

CONSOLE = """\
server:
  auth:
    api: {{basic_auth: {{username: viewer, password: view-pw}}}}
    admin: {{basic_auth: {{username: ops, password: admin-pw}}}}
state: {{url: '{state_url}'}}
receivers:
  - name: ops
    log: {{}}
  - name: dev
    log: {{}}
route:
  receiver: ops
  routes:
    - matchers: ['env="dev"']
      receiver: dev
"""
CONSOLE_ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin-pw").decode()}
CONSOLE_VIEWER = {"Authorization": "Basic " + base64.b64encode(b"viewer:view-pw").decode()}


async def _recorded(store: Store, count: int) -> bool:
    return len(await store.list_notifications(count)) >= count


async def test_the_routes_page_compares_a_pasted_config_for_admins_only(state_url: str) -> None:
    text = CONSOLE.format(state_url=state_url)
    async with running(config_from(text)) as svc:
        for group, env in (("g-dev", "dev"), ("g-prod", "prod")):
            status, _ = await svc.post(
                "/webhook/alertmanager", _alert(group, alertname=group, env=env)
            )
            assert status == 200
        # The records API asks for credentials here: the store is asked directly.
        store = svc.state.store
        await until(lambda: _recorded(store, 2))
        async with svc.http.get(svc.url + "/ui/routes", headers=CONSOLE_VIEWER) as resp:
            viewer_page = await resp.text()
        assert 'action="/ui/routes/replay"' not in viewer_page
        async with svc.http.get(svc.url + "/ui/routes", headers=CONSOLE_ADMIN) as resp:
            markup = await resp.text()
        found = re.search(r'name="csrf" value="([^"]+)"', markup)
        assert found is not None
        proposed = text.replace("receiver: dev\n", "receiver: ops\n")
        form = {"csrf": found.group(1), "config": proposed, "since": "1d"}
        here = {**CONSOLE_ADMIN, "Origin": svc.url}
        async with svc.http.post(svc.url + "/ui/routes/replay", data=form, headers=here) as resp:
            assert resp.status == 200
            answer = await resp.text()
        assert "1 groups changed of 2" in answer
        assert "<td>dev</td><td>ops</td>" in answer
        assert "/ui/routes?labels=" in answer
        # What the changed group's first event would send, under each config.
        sides = answer[answer.index("would send, now and proposed") :]
        now_side, proposed_side = sides.split("<h4>proposed</h4>", 1)
        assert "What dev would get" in now_side and "What ops would get" in proposed_side
        async with svc.http.post(
            svc.url + "/ui/routes/replay", data=form, headers={**CONSOLE_VIEWER, "Origin": svc.url}
        ) as resp:
            assert resp.status == 403
        bad = {**form, "config": "route: [\n"}
        async with svc.http.post(svc.url + "/ui/routes/replay", data=bad, headers=here) as resp:
            assert resp.status == 400
            assert "YAML syntax error" in await resp.text()


# --- the route tester's preview as Slack shows it ----------------------------------------


def test_mrkdwn_renders_bold_dates_links_and_code_blocks_and_escapes_the_rest() -> None:
    text = (
        "*Status:* firing since <!date^1796663780^{date_short_pretty} {time}|2026-12-07 17:16 UTC>"
        " _prod_ <https://grafana.example/d?x=1&amp;y=2|Grafana> <javascript:alert(1)|click>"
        " &lt;img src=x&gt;\n```\nGET /pay 500 <b>\n```"
    )
    shown = str(render_mrkdwn(text))
    assert "<b>Status:</b>" in shown and "<i>prod</i>" in shown
    assert '<time datetime="2026-12-07T17:16:20+00:00">Dec 07, 2026 17:16 UTC</time>' in shown
    assert (
        '<a href="https://grafana.example/d?x=1&amp;y=2" rel="noopener noreferrer">Grafana</a>'
        in shown
    )
    assert "javascript" not in shown and ">click<" not in shown
    assert "&lt;img src=x&gt;" in shown and "<img" not in shown
    assert "<pre>GET /pay 500 &lt;b&gt;\n</pre>" in shown


async def test_the_route_tester_shows_the_slack_message_rendered_with_the_raw_text_a_click_away(
    state_url: str,
) -> None:
    text = (
        f"state: {{url: '{state_url}'}}\n"
        "receivers:\n  - name: ops\n    slack: {token: xoxb-1, channel: '#ops', api_url: 'http://127.0.0.1:9/'}\n"
        "route: {receiver: ops}\n"
    )
    async with running(config_from(text)) as svc:
        async with svc.http.get(
            svc.url + "/ui/routes?labels=alertname%3DDiskFull+env%3Dprod"
        ) as resp:
            assert resp.status == 200
            page = await resp.text()
    preview = page[page.index('<div class="slack-preview">') :]
    assert "<b>" in preview and "<time datetime=" in preview
    assert "<!date^" not in preview.split("<details", 1)[0]
    assert '<details class="raw"><summary>raw text</summary>' in page
    assert "&lt;!date^" in page  # the raw mrkdwn, escaped, inside the details


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_replay_shows_progress_on_a_terminal_and_nothing_when_piped() -> None:
    terminal = _Terminal()
    show = progress_bar(terminal)
    assert show is not None
    show(50, 100)
    show(100, 100)
    assert "replaying [###############...............] 50/100" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r")  # the bar is wiped before the report prints
    assert progress_bar(io.StringIO()) is None


async def test_read_window_reads_a_redis_store_the_same(redis_url: str, prefix: str) -> None:
    now = float(int(time.time()))
    many = [Recorded.of(now - 1800 + i, _event(f"R{i % 5}")) for i in range(1200)]
    config = config_from(
        LIVE.format(db="unused.db").replace('state: {url: "sqlite:///unused.db"}\n', "")
    )
    tree = RouteTree.from_config(config)
    store = RedisStore(redis_url, key_prefix=prefix)
    await store.open()
    try:
        for recorded in [Recorded.of(now - 9 * 86400, _event("Old")), *many]:
            at = datetime.fromtimestamp(recorded.at, UTC)
            await store.record(plan_notifications([recorded.event], tree, at))
        found = await read_window(store, now - 3600, now)
    finally:
        await store.close()
    assert [r.at for r in found] == [r.at for r in many]


async def test_the_route_tester_shows_the_mails_subject_and_text_part(state_url: str) -> None:
    text = (
        f"state: {{url: '{state_url}'}}\n"
        "receivers:\n  - name: mail\n"
        "    email: {to: [sre@example.com], from: r@example.com, smarthost: 'localhost:25'}\n"
        "route: {receiver: mail}\n"
    )
    async with running(config_from(text)) as svc:
        query = "/ui/routes?labels=alertname%3DDiskFull+env%3Dprod"
        async with svc.http.get(svc.url + query) as resp:
            assert resp.status == 200
            page = await resp.text()
    assert '<code class="subject">[FIRING:1] DiskFull' in page
    body = page[page.index('<pre class="email-text">') :]
    assert "DiskFull" in body.split("</pre>", 1)[0]
