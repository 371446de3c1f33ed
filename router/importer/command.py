"""`alert-router import AM_CONFIG --out-dir DIR`: the subcommand's arguments and its run."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from router.importer.convert import DEFAULT_ROUTER_URL, Unreadable, import_config

_HELP = f"""\
Read an Alertmanager config (a plain alertmanager.yml, a Kubernetes Secret or ConfigMap
holding alertmanager.yaml, or Helm values that wrap it) and write two files into DIR:

  routes.yaml       the route tree, receivers, time intervals and inhibit rules, for
                    alert-router; secrets become ${{NAME}} references to set
  alertmanager.yml  the same Alertmanager with its grouping and timers, sending every
                    alert to alert-router's webhook (--router-url, default
                    {DEFAULT_ROUTER_URL}); integrations alert-router has no
                    equivalent for (Opsgenie, Telegram, ...) stay in it, sent the
                    same alerts as before

For any label set, `alert-router routes test --config DIR/routes.yaml name=value...`
names the receivers `amtool config routes test` names on the original (each once). What
has no equivalent is printed, one line each with its source line, and the environment
variables to set. Exits 0 when the files are written, 1 when the input cannot be read.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `import` on the command line's subcommands."""
    parser = commands.add_parser(
        "import",
        help="turn an alertmanager.yml into routes.yaml plus a forwarding alertmanager.yml",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="AM_CONFIG", help="the Alertmanager config to read")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="where to write both files")
    parser.add_argument(
        "--router-url",
        default=DEFAULT_ROUTER_URL,
        metavar="URL",
        help="where Alertmanager reaches alert-router (default %(default)s)",
    )
    parser.set_defaults(handler=run)


def _write(path: Path, text: str) -> None:
    """Replace `path` whole or not at all (an interrupted run leaves no half file)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    """Import, write both files, print the report; the exit status."""
    source = str(args.source)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        print(f"{source}: not a text file (not valid UTF-8)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{source}: cannot read the file: {exc.strerror}", file=sys.stderr)
        return 1
    router_url: str = args.router_url
    if not router_url.startswith(("http://", "https://")):
        print(f"--router-url must be an http(s) URL, got {router_url!r}", file=sys.stderr)
        return 2
    try:
        imported = import_config(text, source, router_url)
    except Unreadable as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write(out_dir / "routes.yaml", imported.routes_yaml)
        _write(out_dir / "alertmanager.yml", imported.alertmanager_yml)
    except OSError as exc:
        print(f"{out_dir}: cannot write: {exc.strerror}", file=sys.stderr)
        return 1
    for line in imported.report.lines():
        print(line)
    if imported.report.secrets:
        print("Set these environment variables for routes.yaml (the values are in the original):")
        for line in imported.report.secret_lines():
            print(line)
    if imported.kept:
        print(
            "Kept in Alertmanager (the forwarding alertmanager.yml still sends these receivers"
            " the same alerts):"
        )
        for line in imported.kept_lines():
            print(line)
    read_from = f" (read from {imported.wrapper})" if imported.wrapper else ""
    print(
        f"Wrote {out_dir / 'routes.yaml'} ({imported.routes} routes, {imported.receivers}"
        f" receivers) and {out_dir / 'alertmanager.yml'}{read_from};"
        f" {len(imported.report.notes)} not carried over as they were."
    )
    return 0
