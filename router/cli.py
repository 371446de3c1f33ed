"""The `alert-router` command line: serve, check a config, show and test its routes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from router.config.exposure import open_surfaces
from router.config.loader import load_complete
from router.config.schema import Config
from router.importer import command as import_command
from router.matchers import is_label_name
from router.model import parse_time
from router.replay import command as replay_command
from router.routing.outline import outline
from router.routing.timeintervals import TimeIntervals
from router.routing.tree import RouteTree

_DEFAULT_CONFIG = "./routes.yaml"
_DEFAULT_HOST = "0.0.0.0, or 127.0.0.1 while no credentials are configured"
_DEFAULT_PORT = 8080
_LOG_LEVELS = ("debug", "info", "warning", "error")
_DEFAULT_LOG_LEVEL = "info"

_CHECK_HELP = """\
Validate a config completely, exactly as `serve` and a reload do: schema, receivers
referenced by routes, matchers and regexes, time intervals, inhibit rules, the Loki query
template, the state URL, and that every ${VAR} without a default is set. Prints
`OK: <n> routes, <m> receivers` (n counts every node of the route tree, the root included)
and exits 0; otherwise prints each problem as PATH:LINE:COL: field: message on stderr and
exits 1. PATH defaults to --config, then ROUTER_CONFIG, then ./routes.yaml. Team files
the config declares are checked too; a problem in one is reported (and fails the check)
like any other, although `serve` would contain it.
"""

_ROUTES_SHOW_HELP = """\
Print the route tree as an indented outline, like `amtool config routes show`: per node
its matchers (default-route when it has none), `continue`, its receiver, the intervals and
timers it sets, and for a team's nodes the team file they came from. Exits 1 on a bad
config (team files included).
"""

_TEST_HELP = """\
Run route test files: each case's labels (read as a webhook alert's, so env and severity
are normalized) go through the route tree, time intervals (at `at`) and inhibit rules
(with the `firing` alerts) of the config, and must reach exactly the expected receivers,
in order. Prints `PASS <name>` or `FAIL <name>: <expected vs got>` per case, then
`<N> passed, <M> failed`. Exits 0 when all pass, 1 when any failed, 2 when a test file or
its config could not be read (its problems on stderr as FILE:LINE:COL: message).
The config is --config, else the file's `config:` (relative to it), else ROUTER_CONFIG,
else ./routes.yaml.
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


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _add_routes(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    routes = commands.add_parser("routes", help="inspect the route tree")
    routes_commands = routes.add_subparsers(dest="routes_command", required=True, metavar="COMMAND")
    show = routes_commands.add_parser(
        "show",
        help="print the route tree as an outline",
        description=_ROUTES_SHOW_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument(
        "--config", help=f"config file (env ROUTER_CONFIG, default {_DEFAULT_CONFIG})"
    )
    show.set_defaults(handler=_routes_show)
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


def _add_test(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    test = commands.add_parser(
        "test",
        help="run route test files",
        description=_TEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument(
        "--config",
        help="the routes.yaml to test, for every file (overrides each file's `config:`)",
    )
    test.add_argument(
        "--junit-xml", metavar="OUT", help="also write the results as JUnit XML to OUT"
    )
    test.add_argument("files", nargs="+", metavar="FILE", help="route test files")
    test.set_defaults(handler=_test)


_ONCALL_HELP = """\
Print who is on call for each rotation of the config's `oncall` (or only NAME): the
person, since when, and the next handoff (in the rotation's zone and in UTC). Overrides
come from the configured state store when it answers (else the rotation alone is shown,
with a note on stderr). Exits 1 on a bad config or an unknown NAME.
"""


def _add_oncall(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    oncall = commands.add_parser(
        "oncall",
        help="who is on call, and the next handoff",
        description=_ONCALL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    oncall.add_argument(
        "--config", help=f"config file (env ROUTER_CONFIG, default {_DEFAULT_CONFIG})"
    )
    oncall.add_argument("--at", type=_instant, metavar="RFC3339", help="at this instant")
    oncall.add_argument("name", nargs="?", metavar="NAME", help="one rotation")
    oncall.set_defaults(handler=_oncall)


def _oncall(args: argparse.Namespace) -> int:
    from router.config.validate import did_you_mean
    from router.oncall.command import describe, read_overrides

    config = _load(_config_path(args.config, os.environ))
    if config is None:
        return 1
    rotations = config.rotations
    if args.name is not None and args.name not in rotations:
        hint = did_you_mean(args.name, sorted(rotations)) if rotations else ""
        print(f"alert-router: unknown rotation {args.name!r}{hint}", file=sys.stderr)
        return 1
    if not rotations:
        print("alert-router: the config has no oncall rotations", file=sys.stderr)
        return 1
    when: datetime = args.at or datetime.now(UTC)
    if not 1970 <= when.year <= 9000:
        print("alert-router: --at must be in the years 1970 to 9000", file=sys.stderr)
        return 2
    at = when.timestamp()
    overrides, note = read_overrides(config, at)
    if note:
        print(f"note: {note}", file=sys.stderr)
    chosen = [r for name, r in rotations.items() if args.name in (None, name)]
    for line in describe(chosen, overrides, at):
        print(line)
    return 0


# Each adds one top-level command (its parser and handler) to the command line.
COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_serve,
    _add_check,
    _add_routes,
    _add_test,
    import_command.add_parser,
    _add_oncall,
    replay_command.add_parsers,
]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alert-router",
        description="Routes Alertmanager and Argo CD notifications to Slack, email and webhooks.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def _config_path(given: str | None, env: Mapping[str, str]) -> str:
    return given or env.get("ROUTER_CONFIG") or _DEFAULT_CONFIG


def _load(path: str) -> Config | None:
    """The complete config, or None after printing each problem on stderr."""
    config, problems = load_complete(path)
    for problem in problems:
        print(problem, file=sys.stderr)
    return config


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
    run_server = cast(Callable[[str, str | None, int, str], int], app.run_server)
    return run_server(
        _config_path(args.config, env),
        # None: the server picks (loopback only while nothing asks for credentials).
        args.host or env.get("ROUTER_HOST") or None,
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
    for surface in open_surfaces(config):
        print(f"warning: {surface}", file=sys.stderr)
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


def _routes_show(args: argparse.Namespace) -> int:
    config = _load(_config_path(args.config, os.environ))
    if config is None:
        return 1
    files = {load.name: load.file for load in config.team_loads}
    for line in outline(RouteTree.from_config(config), files):
        print(line)
    return 0


def _test(args: argparse.Namespace) -> int:
    # Imported here: only this command needs the runner.
    from router.routetest.junit import junit_xml
    from router.routetest.runner import Runner

    started = datetime.now(UTC)
    runner = Runner(config=args.config, default_config=_config_path(None, os.environ))
    runs = [runner.run(Path(name)) for name in args.files]
    passed = failed = 0
    for run in runs:
        for problem in run.errors:
            print(problem, file=sys.stderr)
        for result in run.results:
            if result.passed:
                passed += 1
                print(f"PASS {result.name}")
            else:
                failed += 1
                print(f"FAIL {result.name}: {'; '.join(result.failures)}")
    print(f"{passed} passed, {failed} failed")
    if args.junit_xml:
        try:
            Path(args.junit_xml).write_bytes(junit_xml(runs, started))
        except OSError as exc:
            print(f"alert-router: cannot write {args.junit_xml}: {exc.strerror}", file=sys.stderr)
            return 2
    if any(run.errors for run in runs):
        return 2
    return 1 if failed else 0


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
