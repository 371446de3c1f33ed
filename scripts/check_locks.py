"""Check that the hashed lock files match pyproject.toml, without resolving anything.

- requirements.lock pins every runtime dependency of [project.dependencies] with `==`, at a
  version the dependency's specifier allows, and every pinned package carries hashes;
- requirements-build.lock does the same for [build-system].requires;
- each lock names the command that regenerates it.

Completeness of the transitive closure is proven by installing with --require-hashes (pip
refuses any package that is not pinned and hashed): the Dockerfile does, and so does
tests/test_shipping.py through scripts/build-venv.sh.

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
    header = lock.read_text()
    if "pip-compile" not in header or source not in header:
        problems.append(f"{lock.name}: header does not name the pip-compile command for {source}")
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


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    problems = check(
        ROOT / "requirements.lock", project["project"]["dependencies"], "pyproject.toml"
    )
    problems += check(
        ROOT / "requirements-build.lock",
        project["build-system"]["requires"],
        "requirements-build.in",
    )
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            "Regenerate the locks (see the README, section Dependencies):\n"
            "  pip-compile --generate-hashes --strip-extras --no-emit-index-url "
            "--no-emit-find-links -o requirements.lock pyproject.toml\n"
            "  pip-compile --generate-hashes --allow-unsafe --no-emit-index-url "
            "--no-emit-find-links -o requirements-build.lock requirements-build.in",
            file=sys.stderr,
        )
        return 1
    runtime, _ = pins(ROOT / "requirements.lock")
    print(f"locks in sync with pyproject.toml: {len(runtime)} runtime packages pinned with hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
