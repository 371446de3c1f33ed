"""The `alert-router` command line: serve, check a config, test routes against labels."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import cast

from router.config.loader import ConfigError, load_config
from router.config.schema import Config
from router.importer import command as import_command
from router.model import parse_time
from router.routing.matchers import is_label_name
from router.routing.timeintervals import TimeIntervals
from router.routing.tree import RouteTree

_DEFAULT_CONFIG = "./routes.yaml"
_DEFAULT_HOST = "0.0.0.0"
_DEFAULT_PORT = 8080
_LOG_LEVELS = ("debug", "info", "warning", "error")
_DEFAULT_LOG_LEVEL = "info"

_CHECK_HELP = """\
Validate a config completely, exactly as `serve` and a reload do: schema, receivers
referenced by routes, matchers and regexes, time intervals, inhibit rules, the Loki query
template, the state URL, and that every ${VAR} without a default is set. Prints
`OK: <n> routes, <m> receivers` (n counts every node of the route tree, the root included)
and exits 0; otherwise prints each problem as PATH:LINE:COL: field: message on stderr and
exits 1. PATH defaults to --config, then ROUTER_CONFIG, then ./routes.yaml.
"""

_ROUTES_TEST_HELP = """\
Show which receivers an event with the given labels reaches, one per line in delivery order.
Labels are the normalized ones: env, severity and source may be given directly
(e.g. env=prod severity=critical). Without --at, time intervals are ignored; with --at a
receiver whose route is muted at that instant is shown as `name (muted by <interval>)`.
--expect compares the receivers that would be notified (muted ones do not count) with the
given list, in order, and exits 1 if they differ.
"""


def _label(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected a label as name=value, got {text!r}")
    if not is_label_name(name):
        raise argparse.ArgumentTypeError(
            f"bad label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*"
        )
    return name, value


def _instant(text: str) -> datetime:
    try:
        parsed = parse_time(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time like 2026-11-26T23:00:00+01:00, got {text!r}"
        )
    return parsed


class _Version(argparse.Action):
    """`--version`: the installed package's version (looked up only when asked for)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from router import version

        print(f"alert-router {version()}")
        parser.exit()


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alert-router",
        description="Routes Alertmanager and Argo CD notifications to Slack, email and webhooks.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the service",
        description="Run the service until SIGTERM/SIGINT, then drain in-flight work.",
    )
    serve.add_argument(
        "--config", help=f"config file (env ROUTER_CONFIG, default {_DEFAULT_CONFIG})"
    )
    serve.add_argument(
        "--host", help=f"address to listen on (env ROUTER_HOST, default {_DEFAULT_HOST})"
    )
    serve.add_argument(
        "--port", type=int, help=f"port to listen on (env ROUTER_PORT, default {_DEFAULT_PORT})"
    )
    serve.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        help=f"least severe log level written (env ROUTER_LOG_LEVEL, default {_DEFAULT_LOG_LEVEL})",
    )
    serve.set_defaults(handler=_serve)

    check = commands.add_parser(
        "check",
        help="validate a config file",
        description=_CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("path", nargs="?", metavar="PATH", help="the routes.yaml to check")
    check.add_argument(
        "--config", help=f"the same as PATH (env ROUTER_CONFIG, default {_DEFAULT_CONFIG})"
    )
    check.set_defaults(handler=_check)

    routes = commands.add_parser("routes", help="inspect the route tree")
    routes_commands = routes.add_subparsers(dest="routes_command", required=True, metavar="COMMAND")
    test = routes_commands.add_parser(
        "test",
        help="show the receivers a label set reaches",
        description=_ROUTES_TEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument(
        "--config", help=f"config file (env ROUTER_CONFIG, default {_DEFAULT_CONFIG})"
    )
    test.add_argument(
        "--tree",
        action="store_true",
        help="print the matched route path for each receiver: `<path> -> <receiver>`",
    )
    test.add_argument(
        "--expect",
        type=_names,
        metavar="A,B",
        help="the receivers expected, in delivery order (muted ones excluded); exit 1 if not",
    )
    test.add_argument(
        "--at",
        type=_instant,
        metavar="RFC3339",
        help="evaluate mute/active time intervals at this instant",
    )
    test.add_argument("labels", nargs="*", type=_label, metavar="name=value")
    test.set_defaults(handler=_routes_test)
    import_command.add_parser(commands)
    return parser


def _config_path(given: str | None, env: Mapping[str, str]) -> str:
    return given or env.get("ROUTER_CONFIG") or _DEFAULT_CONFIG


def _load(path: str) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    env = os.environ
    port: int | None = args.port
    if port is None:
        raw = env.get("ROUTER_PORT", "")
        try:
            port = int(raw) if raw else _DEFAULT_PORT
        except ValueError:
            print(f"alert-router: ROUTER_PORT must be a port number, got {raw!r}", file=sys.stderr)
            return 2
    level: str | None = args.log_level
    if level is None:
        raw = env.get("ROUTER_LOG_LEVEL", "").strip().lower()
        if raw and raw not in _LOG_LEVELS:
            print(
                f"alert-router: ROUTER_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)},"
                f" got {raw!r}",
                file=sys.stderr,
            )
            return 2
        level = raw or _DEFAULT_LOG_LEVEL
    # Imported here so that `check` and `routes test` need none of the server's dependencies.
    app = importlib.import_module("router.web.app")
    run_server = cast(Callable[[str, str, int, str], int], app.run_server)
    return run_server(
        _config_path(args.config, env),
        args.host or env.get("ROUTER_HOST") or _DEFAULT_HOST,
        port,
        level,
    )


def _check(args: argparse.Namespace) -> int:
    if args.path and args.config and args.path != args.config:
        print("alert-router: give the file once, as PATH or as --config", file=sys.stderr)
        return 2
    config = _load(_config_path(args.path or args.config, os.environ))
    if config is None:
        return 1
    routes = len(RouteTree.from_config(config))
    print(f"OK: {routes} routes, {len(config.receivers)} receivers")
    return 0


def _routes_test(args: argparse.Namespace) -> int:
    config = _load(_config_path(args.config, os.environ))
    if config is None:
        return 1
    tree = RouteTree.from_config(config)
    intervals = TimeIntervals.from_config(config.time_intervals)
    labels = dict(args.labels)
    at: datetime | None = args.at
    delivered: list[str] = []
    muted: list[str] = []
    for route in tree.match(labels):
        reason = intervals.mute_reason(route, at) if at is not None else None
        shown = route.receiver if reason is None else f"{route.receiver} ({reason})"
        print(f"{route.path} -> {shown}" if args.tree else shown)
        (muted if reason else delivered).append(route.receiver)
    expected: list[str] | None = args.expect
    if expected is not None and delivered != expected:
        print(_expect_diff(expected, delivered, muted), file=sys.stderr)
        return 1
    return 0


def _expect_diff(expected: Sequence[str], delivered: Sequence[str], muted: Sequence[str]) -> str:
    lines = [
        "receivers differ from --expect:",
        f"  expected: {', '.join(expected) or '(none)'}",
        f"  got:      {', '.join(delivered) or '(none)'}",
    ]
    if muted:
        lines.append(f"  muted, not counted: {', '.join(muted)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for usage errors)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits on --help and on usage errors; callers of main() get a status instead.
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    handler = cast(Callable[[argparse.Namespace], int], args.handler)
    return handler(args)
