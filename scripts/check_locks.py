"""Check that the hashed lock files match their sources, without resolving anything.

- requirements.lock pins every runtime dependency of [project.dependencies] with `==`, at a
  version the dependency's specifier allows, and every pinned package carries hashes;
- requirements-build.lock does the same for [build-system].requires;
- requirements-test.lock does it for the `test` extra and requirements-ci.txt, and pins
  every package of requirements.lock at the same version (CI installs both in one venv);
- each lock names scripts/relock.sh, the command that regenerates it.

Completeness of the transitive closure is proven by installing with --require-hashes (pip
refuses any package that is not pinned and hashed): the Dockerfile does, .ci/run does, and so
does tests/test_shipping.py through scripts/build-venv.sh.

Usage: python scripts/check_locks.py
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(lock: Path) -> tuple[dict[str, Version], list[str]]:
    """The `name==version` pins of a pip-compile file, and problems with its hashes."""
    problems: list[str] = []
    found: dict[str, Version] = {}
    blocks: list[list[str]] = []
    for line in lock.read_text().splitlines():
        if PIN_RE.match(line):
            blocks.append([line])
        elif blocks and line.startswith(" "):
            blocks[-1].append(line)
        elif line.strip() and not line.startswith("#"):
            problems.append(f"{lock.name}: not a hashed pin: {line.strip()}")
    for block in blocks:
        match = PIN_RE.match(block[0])
        assert match is not None
        name = canonicalize_name(match.group(1))
        found[name] = Version(match.group(2))
        if not any("--hash=sha256:" in line for line in block):
            problems.append(f"{lock.name}: {name} has no --hash")
    return found, problems


def check(lock: Path, requirements: list[str], source: str) -> list[str]:
    found, problems = pins(lock)
    if "scripts/relock.sh" not in "".join(lock.read_text().splitlines(keepends=True)[:3]):
        problems.append(f"{lock.name}: its header does not name scripts/relock.sh")
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        if name not in found:
            problems.append(f"{lock.name}: {req.name} (from {source}) is not pinned")
        elif not req.specifier.contains(found[name], prereleases=True):
            problems.append(
                f"{lock.name}: {req.name}=={found[name]} does not satisfy {text!r} ({source})"
            )
    return problems


def requirement_lines(path: Path) -> list[str]:
    """The requirements of a pip requirements file (comments and blank lines dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def same_pins(runtime: Path, test: Path) -> list[str]:
    """Problems where the test lock pins a runtime package differently, or not at all."""
    runtime_pins, _ = pins(runtime)
    test_pins, _ = pins(test)
    problems = []
    for name, version in sorted(runtime_pins.items()):
        if test_pins.get(name) != version:
            problems.append(
                f"{test.name}: {name}=={test_pins.get(name)} but {runtime.name} pins {version}"
            )
    return problems


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime_lock, test_lock = ROOT / "requirements.lock", ROOT / "requirements-test.lock"
    problems = check(runtime_lock, project["project"]["dependencies"], "pyproject.toml")
    problems += check(
        ROOT / "requirements-build.lock",
        project["build-system"]["requires"],
        "requirements-build.in",
    )
    problems += check(
        test_lock,
        project["project"]["optional-dependencies"]["test"]
        + requirement_lines(ROOT / "requirements-ci.txt"),
        "pyproject.toml [test], requirements-ci.txt",
    )
    problems += same_pins(runtime_lock, test_lock)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            "Regenerate the locks (see the README, section Dependencies): scripts/relock.sh",
            file=sys.stderr,
        )
        return 1
    runtime, _ = pins(runtime_lock)
    test, _ = pins(test_lock)
    print(
        f"locks in sync with their sources: {len(runtime)} runtime and {len(test)} test "
        "packages pinned with hashes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
