"""Small builders shared by tests (configs from YAML text, payload files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from router.config.loader import parse_config
from router.config.schema import Config

DATA = Path(__file__).parent / "data"


def config_from(text: str) -> Config:
    """A Config from inline YAML, validated exactly like a routes.yaml (an empty environment:
    a `${VAR}` without default is an error)."""
    return parse_config(text, "test.yaml", env={})


def payload(name: str) -> dict[str, Any]:
    """A sample webhook body from tests/data."""
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


MINIMAL = """
receivers:
  - name: stdout
    log: {}
route:
  receiver: stdout
"""
