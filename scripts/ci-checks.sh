#!/usr/bin/env bash
# Shipping and security gates, run by .ci/run between mypy and pytest (and by hand):
# hadolint, bandit, lock files, every shipped routes file and its route tests, the Helm
# chart (lint, render, Kubernetes schemas, its routes.yaml and PrometheusRule), promtool
# and amtool, the runtime lock on Debian's own python3, and the image built and started
# (scripts/check_image.sh, which also writes the SBOM).
# Needs requirements-test.lock installed (.ci/run does) and the Debian packages prometheus
# (promtool), prometheus-alertmanager (amtool), podman, buildah and mmdebstrap.
# Fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# The interpreter itself (not a pyenv shim), so it also runs under `env -i` below.
PYBIN=$("$PY" -c 'import sys; print(sys.executable)')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for tool in hadolint promtool amtool; do
  command -v "$tool" >/dev/null || { echo "ci-checks: $tool is not installed" >&2; exit 1; }
done

echo "== hadolint Dockerfile"
hadolint Dockerfile
echo "Dockerfile: no findings"

echo "== bandit router/ (waivers: scripts/bandit-waivers.txt)"
"$PY" scripts/bandit_gate.py router

echo "== lock files match pyproject.toml"
"$PY" scripts/check_locks.py

# The lock is universal (markers for every Python from 3.11.0): prove it on Debian's 3.11.2,
# below redis's async-timeout marker, as well as on the interpreter running CI.
if [ -x /usr/bin/python3 ]; then
  echo "== requirements.lock on Debian's $(/usr/bin/python3 --version) (--require-hashes)"
  /usr/bin/python3 -m venv "$out/debian-venv"
  "$out/debian-venv/bin/python" -m pip install --disable-pip-version-check -q \
    --require-hashes --only-binary=:all: -r requirements.lock
  "$out/debian-venv/bin/python" -c 'import aiohttp, aiosmtplib, jinja2, pydantic, redis.asyncio, slack_sdk, yaml'
  echo "requirements.lock: installed and imported"
fi

echo "== alert-router check: every routes file shipped"
# ${VAR} without a default must be set for check to pass: give each one a placeholder, so
# the check covers everything else (schema, receivers, matchers, intervals, templates).
# A routes file's team files (routes.d/) use the same environment as the file itself.
placeholders() {
  grep -rhoE '\$\{[A-Za-z_][A-Za-z0-9_]*\}' "$@" | sort -u | tr -d '${}' | sed 's/.*/&=placeholder-&/' || true
}
for f in routes.yaml examples/routes/*.yaml examples/routes/*/routes.yaml; do
  case "$f" in *.test.yaml) continue ;; esac
  files=("$f")
  [ -d "$(dirname "$f")/routes.d" ] && files+=("$(dirname "$f")/routes.d")
  mapfile -t envs < <(placeholders "${files[@]}")
  printf '%s: ' "$f"
  env -i "${envs[@]}" "$PYBIN" -m router check "$f"
done

echo "== alert-router test: the route test files shipped with the examples"
mapfile -t envs < <(placeholders examples/routes)
env -i "${envs[@]}" "$PYBIN" -m router test examples/routes/*.test.yaml examples/routes/*/*.test.yaml

echo "== helm chart: lint, render, Kubernetes schemas, rendered routes.yaml"
"$PY" scripts/check_chart.py "$out/chart"

echo "== promtool: the PrometheusRule's rules"
for rules in "$out"/chart/*/rules.yaml; do
  promtool check rules "$rules"
done
cp scripts/promtool/rules.test.yaml "$out/chart/all-toggles/"
promtool test rules "$out/chart/all-toggles/rules.test.yaml"

echo "== amtool: the Alertmanager example"
amtool check-config examples/alertmanager/alertmanager.yml
for example in "$out"/chart/*/alertmanager.yaml; do
  amtool check-config "$example"
done

echo "== image: built with podman on Debian's bookworm, started under chroot (scripts/check_image.sh)"
bash scripts/check_image.sh "${SBOM_PATH:-build/sbom/alert-router-image.cdx.json}"

echo "== ci-checks: all passed"
