"""A route test file as typed models, read with positions like routes.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from router.config.loader import Document, parse_document, read_file
from router.config.validate import Report
from router.matchers import is_label_name
from router.model import parse_time


def _label_value(value: Any) -> Any:
    # `code: 500` is a label value of "500"; anything else unquoted is more likely a mistake.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _instant(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = parse_time(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"expected an RFC 3339 time like 2026-11-28T03:00:00+01:00, got {value!r}")
    return parsed


LabelValue = Annotated[str, BeforeValidator(_label_value)]
Labels = dict[str, LabelValue]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Model):
    # Notified, in delivery order: muted receivers and an inhibited alert notify nobody.
    receivers: list[str]
    # Compared as a set when given.
    muted: list[str] | None = None
    # false, true, or the name of the rule that must inhibit it.
    inhibited: bool | str | None = None


class Case(_Model):
    name: str = Field(min_length=1)
    labels: Labels = Field(min_length=1)
    # When given, time intervals are evaluated at this instant; otherwise nothing is muted.
    at: Annotated[datetime | None, BeforeValidator(_instant)] = None
    # Other alerts firing at that moment, for inhibition.
    firing: list[Labels] = Field(default_factory=list)
    expect: Expect


class RouteTestFile(_Model):
    # The routes.yaml under test, relative to this file.
    config: str | None = None
    tests: list[Case] = Field(min_length=1)


def _check(data: Mapping[str, Any], report: Report) -> None:
    tests = data.get("tests")
    if not isinstance(tests, list):
        return
    seen: dict[str, int] = {}
    for i, case in enumerate(tests):
        if not isinstance(case, dict):
            continue
        name = case.get("name")
        if isinstance(name, str):
            if name in seen:
                report(
                    ("tests", i, "name"), f"duplicate test name {name!r} (also tests[{seen[name]}])"
                )
            else:
                seen[name] = i
        sets: list[tuple[tuple[str | int, ...], object]] = [
            (("tests", i, "labels"), case.get("labels"))
        ]
        firing = case.get("firing")
        if isinstance(firing, list):
            sets += [(("tests", i, "firing", j), labels) for j, labels in enumerate(firing)]
        for loc, labels in sets:
            if isinstance(labels, dict):
                for key in labels:
                    if isinstance(key, str) and not is_label_name(key):
                        report((*loc, key), f"{key!r} is not a valid label name")
        expect = case.get("expect")
        if isinstance(expect, dict) and expect.get("muted") and case.get("at") is None:
            report(
                ("tests", i, "expect", "muted"),
                "muted receivers need `at`: without an instant no time interval is evaluated",
            )


def read_test_file(path: Path) -> Document[RouteTestFile]:
    """Read and validate a route test file; ConfigError lists its problems as file:line:col."""
    filename = str(path)
    return parse_document(read_file(filename), filename, RouteTestFile, check=_check)
