#!/bin/sh
# Build alert-router into a virtualenv the way the container image does, from the hashed lock
# files only: the Dockerfile runs this script, and tests/test_shipping.py runs it too, so the
# image's install steps are exercised without a container engine.
#
#   scripts/build-venv.sh SRC VENV
#
# SRC holds pyproject.toml, README.md, router/, templates/ and the two lock files; VENV is
# created. Needs only a Python 3.11 (`$PYTHON`, default python3) and access to PyPI.
set -eu

src=$1
venv=$2
python=${PYTHON:-python3}
# A caller's PYTHONPATH (a checkout with an alert_router.egg-info, say) would make pip think
# the package is installed already and skip the wheel.
unset PYTHONPATH PYTHONHOME
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The package's wheel, built offline from the source with a hashed setuptools.
"$python" -m venv "$work/build"
"$work/build/bin/python" -m pip install --require-hashes --only-binary=:all: \
    -r "$src/requirements-build.lock"
cp -R "$src/pyproject.toml" "$src/README.md" "$src/router" "$work/"
"$work/build/bin/python" -m pip wheel --no-deps --no-build-isolation \
    --wheel-dir "$work/dist" "$work"

# 2. The runtime venv: every dependency pinned and hash-checked, then the wheel alone.
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --require-hashes --only-binary=:all: -r "$src/requirements.lock"
"$venv/bin/python" -m pip install --no-deps "$work"/dist/alert_router-*.whl

# 3. The jinja2 templates where router.render.templates looks by default: a `templates` folder
#    beside the installed `router` package, i.e. $VENV/lib/python3.X/site-packages/templates.
# -I: isolated mode, so `import router` finds the installed package, never a checkout in $PWD.
site=$("$venv/bin/python" -I -c \
    'import pathlib, router; print(pathlib.Path(router.__file__).resolve().parent.parent)')
rm -rf "$site/templates"
cp -R "$src/templates" "$site/templates"
"$venv/bin/python" -I -c 'import router.render.templates as t; assert (t.DEFAULT_TEMPLATES_DIR / "email.html.j2").is_file(), t.DEFAULT_TEMPLATES_DIR'
