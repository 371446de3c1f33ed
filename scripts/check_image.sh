#!/usr/bin/env bash
# Builds the container image from the Dockerfile and starts it the way a container engine
# would, then proves it serves: run by .ci/run (through scripts/ci-checks.sh) and by hand.
#
#   scripts/check_image.sh [SBOM_PATH]
#
# 1. A Debian bookworm base with Debian's python3 (mmdebstrap, `podman import`), kept in a
#    private podman store between runs (IMAGE_CHECK_STORE; REBUILD_BASE=1 makes it again).
# 2. `podman build --isolation=chroot --build-arg BASE_IMAGE=<that base>`: the Dockerfile's
#    own steps, pip installing the hashed locks with Debian's Python 3.11.2.
# 3. The image's filesystem exported, and its own ENTRYPOINT + CMD run under chroot as its
#    USER with its ENV and WORKDIR (this machine's OCI runtime cannot start containers):
#    /readyz answers 200, a webhook is accepted and delivered to the `log` receiver, the
#    SQLite file is written on the VOLUME, and nothing is written anywhere else.
# 4. A CycloneDX SBOM of the image's Python environment (/opt/venv) to SBOM_PATH
#    (default build/sbom/alert-router-image.cdx.json), with cyclonedx-py from the test lock.
#
# Needs root, podman, buildah, mmdebstrap, curl and the venv of .ci/run (cyclonedx-py on
# PATH). Outside CI it is skipped when podman is missing; in CI that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

sbom=${1:-build/sbom/alert-router-image.cdx.json}
if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then
  if [ -n "${CI:-}" ]; then
    echo "check_image: podman and mmdebstrap are required in CI" >&2
    exit 1
  fi
  echo "check_image: SKIPPED (podman or mmdebstrap not installed; CI installs them)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "check_image: needs root (chroot, podman's store)" >&2; exit 1; }

store=${IMAGE_CHECK_STORE:-/var/tmp/alert-router-image-check}
pm() { podman --root "$store/storage" --runroot "$store/run" "$@"; }
base=localhost/alert-router-base:bookworm
image=localhost/alert-router:check
work=$(mktemp -d /var/tmp/alert-router-image.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  pm rm -f alert-router-check >/dev/null 2>&1 || true
  pm rmi -f "$image" >/dev/null 2>&1 || true
  pm image prune -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. base -----------------------------------------------------------------------------
if [ -n "${REBUILD_BASE:-}" ] || ! pm image exists "$base"; then
  echo "image: mmdebstrap bookworm base (python3 from Debian)"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$work/base.tar"
  pm import --quiet "$work/base.tar" "$base" >/dev/null
  rm -f "$work/base.tar"
fi

# --- 2. build ----------------------------------------------------------------------------
# The machine's CA bundle, so pip inside the build trusts what the host trusts (Debian's
# pip reads /etc/ssl/certs/ca-certificates.crt; PIP_CERT covers a pip that does not).
echo "image: podman build --isolation=chroot (BASE_IMAGE=$base)"
build_start=$SECONDS
# The machine's package indexes too (a mirror or proxy of PyPI), as the build's
# /etc/pip.conf; local folders (file:// indexes, find-links) mean nothing inside the build.
mounts=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
python3 - "$work/pip.conf" <<'EOF_PY'
import re
import subprocess
import sys

listed = subprocess.run(
    [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
).stdout
found: dict[str, list[str]] = {}
for line in listed.splitlines():
    match = re.match(r"^[^.]*\.(index-url|extra-index-url|trusted-host)='(.*)'$", line)
    if match:
        for value in match.group(2).split():
            if match.group(1) == "trusted-host" or value.startswith(("http://", "https://")):
                found.setdefault(match.group(1), []).append(value)
if found.get("index-url") or found.get("extra-index-url"):
    with open(sys.argv[1], "w") as conf:
        conf.write("[global]\n")
        for key, values in found.items():
            conf.write(f"{key} = {' '.join(dict.fromkeys(values))}\n")
EOF_PY
if [ -f "$work/pip.conf" ]; then
  echo "image: the machine's pip indexes: $(grep -v '^\[' "$work/pip.conf" | tr '\n' ' ')"
  mounts+=(-v "$work/pip.conf:/etc/pip.conf:ro")
fi
pm build --quiet --isolation=chroot --format=docker --network=host \
  --build-arg "BASE_IMAGE=$base" "${mounts[@]}" -t "$image" . >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; echo "check_image: the image did not build" >&2; exit 1; }
size=$(pm image inspect --format '{{.Size}}' "$image")
echo "image: built in $((SECONDS - build_start)) s, $((size / 1000000)) MB ($image)"

# --- 3. run ------------------------------------------------------------------------------
rootfs=$work/rootfs
mkdir "$rootfs"
pm create --name alert-router-check "$image" >/dev/null
pm export alert-router-check | tar -x -p --numeric-owner -C "$rootfs"
pm image inspect --format '{{json .Config}}' "$image" >"$work/config.json"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The image's own configuration, read by Python: the run command, user, env and volume.
python3 - "$work/config.json" "$rootfs" "$port" "$work" <<'EOF'
import json
import shlex
import sys
from pathlib import Path

config = json.loads(Path(sys.argv[1]).read_text())
rootfs, port, work = Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
user = config.get("User", "")
if not user or user.split(":")[0] in ("0", "root"):
    sys.exit(f"check_image: the image runs as {user or 'root'}, not as its own user")
[volume] = config["Volumes"]
# The engine's -e ROUTER_PORT: a free port, since 8080 may be taken on a shared machine.
env = [*config["Env"], f"ROUTER_PORT={port}", f"HOME={volume}"]
command = [*config["Entrypoint"], *config["Cmd"]]
paths = [e.split("=", 1)[1] for e in config["Env"] if e.startswith("PATH=")]
(work / "run.env").write_text(
    f"user={shlex.quote(user)}\nvolume={shlex.quote(volume)}\n"
    f"workdir={shlex.quote(config.get('WorkingDir') or '/')}\n"
    f"env=({' '.join(shlex.quote(e) for e in env)})\n"
    f"command=({' '.join(shlex.quote(c) for c in command)})\n"
    f"path={shlex.quote(paths[0] if paths else '/usr/bin:/bin')}\n"
)
EOF
# shellcheck disable=SC1091
. "$work/run.env"
# Resolve the entrypoint through the image's PATH, inside the image's filesystem.
exe=${command[0]}
if [[ $exe != /* ]]; then
  for dir in ${path//:/ }; do
    [ -x "$rootfs$dir/$exe" ] && { exe=$dir/$exe; break; }
  done
fi
command[0]=$exe
echo "image: running ${command[*]} as $user in $workdir, volume $volume"

snapshot() {
  # Every path, its size, mode, owner and mtime: a write anywhere changes a line.
  (cd "$rootfs" && find . -path ".$volume" -prune -o -printf '%p %s %m %U:%G %T@\n' | sort)
}
snapshot >"$work/before"
chroot --userspec="$user" "$rootfs" /usr/bin/env -i "${env[@]}" \
  /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$workdir" "${command[@]}" \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
url=http://127.0.0.1:$port

fail() {
  echo "check_image: $*" >&2
  echo "--- stderr" >&2; tail -20 "$work/stderr" >&2
  echo "--- stdout" >&2; tail -20 "$work/stdout" >&2
  exit 1
}
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && break
  kill -0 "$pid" 2>/dev/null || fail "the image's command exited before it was ready"
  sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] || fail "/readyz never answered 200"
echo "image: /readyz 200"

answer=$(curl -s -H 'Content-Type: application/json' \
  --data @tests/data/alertmanager_firing.json "$url/webhook/alertmanager")
[ "$answer" = '{"accepted": 2}' ] || fail "webhook answered $answer"
for _ in $(seq 300); do
  grep -q '"type": *"notification"' "$work/stdout" && break
  sleep 0.1
done
grep '"type": *"notification"' "$work/stdout" | grep -q '"receiver": *"stdout"' ||
  fail "the webhook was not delivered to the log receiver"
echo "image: webhook accepted ($answer) and delivered to the log receiver"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" = 0 ] || fail "the service exited with $status on SIGTERM"

db=$rootfs$volume/alert-router.db
[ -s "$db" ] || fail "no SQLite file at $volume/alert-router.db"
owner=$(stat -c %u:%g "$db")
[ "$owner" = "$user" ] || fail "$volume/alert-router.db is owned by $owner, not $user"
echo "image: $volume/alert-router.db written ($(stat -c %s "$db") bytes, owner $owner)"
snapshot >"$work/after"
if ! diff -u "$work/before" "$work/after" >"$work/diff"; then
  cat "$work/diff" >&2
  fail "the service wrote outside its volume $volume"
fi
echo "image: nothing written outside $volume"

# --- 4. SBOM -----------------------------------------------------------------------------
# The image's venv is run by the host's Python of the same version (its pyvenv.cfg home is
# /usr/bin, Debian's python3 3.11 on both), so the SBOM lists what the image really holds;
# without the caller's PYTHONPATH, whose packages are not the image's.
mkdir -p "$(dirname "$sbom")"
env -u PYTHONPATH -u PYTHONHOME cyclonedx-py environment --output-reproducible --of JSON --pyproject pyproject.toml \
  -o "$sbom" "$rootfs/opt/venv" 2>"$work/sbom.log" ||
  { cat "$work/sbom.log" >&2; echo "check_image: the SBOM was not written" >&2; exit 1; }
components=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["components"]))' "$sbom")
echo "image: CycloneDX SBOM of /opt/venv, $components components: $sbom"
echo "image: check passed in $((SECONDS - start)) s, image size $((size / 1000000)) MB"
