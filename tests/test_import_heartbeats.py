"""`alert-router import` turns a Watchdog route to a dead man's switch into a heartbeat."""

from __future__ import annotations

from typing import Any

import yaml

from router.config.loader import parse_config
from router.importer.convert import import_config

SNITCH = """
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['alertname="Watchdog"']
      receiver: snitch
      group_interval: 1m
      repeat_interval: 5m
receivers:
  - name: default
    email_configs: [{to: sre@example.com, from: am@example.com, smarthost: 'smtp:25'}]
  - name: snitch
    webhook_configs:
      - url: https://nosnch.in/c2354d53d2
"""


def imported(text: str) -> tuple[dict[str, Any], list[str]]:
    result = import_config(text, "alertmanager.yml")
    data = yaml.safe_load(result.routes_yaml)
    assert isinstance(data, dict)
    return data, result.report.lines()


def test_a_watchdog_route_to_a_dead_man_service_becomes_a_heartbeat_and_the_report_says_so() -> (
    None
):
    data, report = imported(SNITCH)
    assert data["heartbeats"] == [
        {
            "name": "watchdog",
            "matchers": ['alertname="Watchdog"'],
            # Alertmanager repeats the group after repeat_interval, at a group_interval tick.
            "interval": "6m",
            "grace": "6m",
            "labels": {"severity": "critical"},
        }
    ]
    [note] = [line for line in report if "heartbeat" in line]
    assert note.startswith("alertmanager.yml:6: ")
    assert "nosnch.in" in note and "no longer sends Watchdog to 'snitch'" in note
    # The written routes.yaml is a valid config with that heartbeat.
    config = parse_config(
        import_config(SNITCH, "alertmanager.yml").routes_yaml,
        "routes.yaml",
        env={"SNITCH_WEBHOOK_URL": "https://nosnch.in/x", "DEFAULT_EMAIL_SMARTHOST": "smtp:25"},
    )
    assert [(h.name, h.interval, h.grace) for h in config.heartbeats] == [
        ("watchdog", 360.0, 360.0)
    ]


def test_a_watchdog_route_commented_as_a_dead_mans_switch_becomes_a_heartbeat() -> None:
    text = SNITCH.replace(
        "    - matchers: ['alertname=\"Watchdog\"']",
        "    # dead man's switch for the prod cluster\n"
        "    - matchers: ['alertname=\"Watchdog\"', 'env=\"prod\"']",
    )
    text = text.replace("https://nosnch.in/c2354d53d2", "https://hooks.example.com/in")
    text = text.replace("receiver: snitch", "receiver: hook").replace("name: snitch", "name: hook")
    data, report = imported(text)
    [heartbeat] = data["heartbeats"]
    assert heartbeat["labels"] == {"env": "prod", "severity": "critical"}
    assert any("commented as one" in line for line in report)


def test_watchdog_sent_to_a_receiver_that_drops_it_is_no_heartbeat() -> None:
    # kube-prometheus-stack's default: Watchdog to the "null" receiver.
    text = """
route:
  receiver: default
  routes:
    - matchers: ['alertname="Watchdog"']
      receiver: "null"
receivers:
  - name: default
  - name: "null"
"""
    data, report = imported(text)
    assert "heartbeats" not in data
    assert not any("heartbeat" in line for line in report)


def test_another_alert_to_a_dead_man_service_is_no_heartbeat() -> None:
    data, _ = imported(SNITCH.replace('alertname="Watchdog"', 'alertname="DiskFull"'))
    assert "heartbeats" not in data
