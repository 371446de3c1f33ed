"""Run bandit over router/ and fail on every finding that is not explicitly waived.

Inline `# nosec BXXX` comments are honoured by bandit itself; scripts/bandit-waivers.txt
lists the remaining accepted findings with a reason each. Waivers that no longer match any
finding are reported (not fatal: the code they covered may simply have been fixed).

Usage: python scripts/bandit_gate.py [PATH ...]   (default: router)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WAIVERS = Path(__file__).with_name("bandit-waivers.txt")


def load_waivers() -> dict[tuple[str, str, str], str]:
    waivers: dict[tuple[str, str, str], str] = {}
    for number, raw in enumerate(WAIVERS.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) != 4 or not all(parts):
            raise SystemExit(f"{WAIVERS}:{number}: expected `path | test id | line | reason`")
        path, test_id, code, reason = parts
        waivers[(path, test_id, code)] = reason
    return waivers


def main(argv: list[str]) -> int:
    targets = argv[1:] or ["router"]
    result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "bandit", "-r", *targets, "-f", "json", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(result.stdout, result.stderr, sep="\n", file=sys.stderr)
        return 2
    if report.get("errors"):
        for error in report["errors"]:
            print(f"bandit error: {error}", file=sys.stderr)
        return 2
    waivers = load_waivers()
    used: set[tuple[str, str, str]] = set()
    failures = 0
    for issue in report["results"]:
        path = Path(issue["filename"]).as_posix().removeprefix("./")
        source = ROOT / path
        lines = source.read_text().splitlines()
        code = lines[issue["line_number"] - 1].strip()
        candidates = [(p, issue["test_id"], c) for p in (path, "*") for c in (code, "*")]
        matched = [key for key in candidates if key in waivers]
        if matched:
            used.update(matched)
            continue
        failures += 1
        print(
            f"{path}:{issue['line_number']}: {issue['test_id']} "
            f"[{issue['issue_severity']}/{issue['issue_confidence']}] {issue['issue_text']}\n"
            f"    {code}"
        )
    for key in sorted(set(waivers) - used):
        print(f"note: waiver no longer matches a finding: {' | '.join(key)}")
    scanned = report["metrics"]["_totals"]["loc"]
    print(
        f"bandit: {scanned} lines scanned, {len(report['results'])} findings, "
        f"{len(used)} waived, {failures} unwaived"
    )
    if failures:
        print(
            "Fix them, or waive each with `# nosec BXXX - reason` on the line or an entry in "
            f"{WAIVERS.relative_to(ROOT)}.",
            file=sys.stderr,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
