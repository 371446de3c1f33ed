"""Route test results as JUnit XML, the report format CI systems (GitLab, Jenkins, GitHub
actions) read: one <testsuite> per test file, one <testcase> per case."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET  # noqa: S405  # nosec B405 - only writes XML, never parses it
from collections.abc import Sequence
from datetime import UTC, datetime

from router.routetest.runner import FileRun

# The name a test file's own problems are reported under.
FILE_CASE = "(test file)"


def _seconds(value: float) -> str:
    return f"{value:.6f}"


def junit_xml(runs: Sequence[FileRun], started: datetime) -> bytes:
    """The whole run as a JUnit XML document (UTF-8, with declaration)."""
    stamp = started.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()
    host = socket.gethostname() or "localhost"
    root = ET.Element("testsuites", name="alert-router test")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    elapsed = 0.0
    for index, run in enumerate(runs):
        failures = sum(1 for r in run.results if not r.passed)
        errors = 1 if run.errors else 0
        tests = len(run.results) + errors
        seconds = sum(r.seconds for r in run.results)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=run.path,
            id=str(index),
            package="alert-router",
            tests=str(tests),
            failures=str(failures),
            errors=str(errors),
            skipped="0",
            time=_seconds(seconds),
            timestamp=stamp,
            hostname=host,
        )
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="config", value=run.config)
        for result in run.results:
            case = ET.SubElement(
                suite,
                "testcase",
                name=result.name,
                classname=run.path,
                time=_seconds(result.seconds),
            )
            if result.failures:
                failure = ET.SubElement(
                    case, "failure", message="; ".join(result.failures), type="RouteMismatch"
                )
                failure.text = "\n".join(result.failures)
        if run.errors:
            case = ET.SubElement(
                suite, "testcase", name=FILE_CASE, classname=run.path, time=_seconds(0)
            )
            error = ET.SubElement(
                case, "error", message=run.errors[0], type="UnreadableTestFileOrConfig"
            )
            error.text = "\n".join(run.errors)
        ET.SubElement(suite, "system-out")
        ET.SubElement(suite, "system-err")
        totals["tests"] += tests
        totals["failures"] += failures
        totals["errors"] += errors
        elapsed += seconds
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(elapsed))
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"
