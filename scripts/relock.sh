#!/usr/bin/env bash
# The one command that moves dependency versions: regenerates the three hashed lock files
# with uv's universal resolver, so each lock installs on every Python from 3.11.0 on and on
# every platform (environment markers, e.g. redis's async-timeout below 3.11.3).
#
#   scripts/relock.sh              re-resolve after editing pyproject.toml,
#                                  requirements-build.in or requirements-ci.txt: pins that
#                                  still fit are kept
#   scripts/relock.sh --upgrade    the scheduled refresh: every package to its newest release
#
# Any other argument goes to `uv pip compile` (e.g. --upgrade-package redis). uv is a relock
# tool only (pinned below, installed into a throw-away venv): nothing at run time needs it.
# Review the diff, run `bash .ci/run`, commit the locks together.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.10
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
uv=$tools/venv/bin/uv

# Only PyPI: a machine's extra indexes or wheel folders must not leak into the locks.
compile() {
  "$uv" pip compile --quiet --universal --python-version 3.11.0 --generate-hashes \
    --no-config --index-url https://pypi.org/simple \
    --custom-compile-command "scripts/relock.sh   (after editing a source; --upgrade: the scheduled refresh)" "$@"
}

compile -o requirements.lock pyproject.toml "${@}"
compile -o requirements-build.lock requirements-build.in "${@}"
# The test lock holds the runtime closure too, constrained to requirements.lock, so
# installing both locks into one venv never asks for two versions of a package.
compile -o requirements-test.lock --extra test -c requirements.lock \
  pyproject.toml requirements-ci.txt "${@}"
echo "relocked: requirements.lock requirements-build.lock requirements-test.lock"
