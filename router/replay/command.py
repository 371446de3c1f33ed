"""`alert-router replay` and `alert-router export`: their arguments and their runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from router.config.loader import load_complete
from router.config.schema import Config
from router.durations import parse_duration
from router.replay.engine import Recorded, read_lines, read_window, replay
from router.store import open_store
from router.store.protocols import StoreUnavailable
from router.store.url import parse_state_url

_DEFAULT_CONFIG = "./routes.yaml"

_REPLAY_HELP = """\
Route every event recorded in the window (--since, default 7d) through the live config
(--against, default ROUTER_CONFIG or ./routes.yaml) and through NEW.yaml, each with its
route tree, its time intervals at the event's own time and its inhibit rules with the
alerts that were firing then, and print each group whose receivers, mute or inhibition
would change (`<group>: before -> after`), then `<N> groups changed of <M>`.

Events come from the state store (NEW.yaml's state.url, or --state-url), or from a file
`alert-router export` wrote (--events). Exits 0; with --fail-on-change 1 when a group
changed; 2 when a config, the events file or the store cannot be read.
"""

_EXPORT_HELP = """\
Write the events recorded in the window (--since, default 7d) as JSON lines, oldest first,
for `alert-router replay --events` where the store is out of reach (a CI job). The store is
the config's state.url, or --state-url.
"""


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `replay` and `export` on the command line's subcommands."""
    parser = commands.add_parser(
        "replay",
        help="what a routes.yaml change would have done to the recorded events",
        description=_REPLAY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, metavar="NEW.yaml", help="the proposed config")
    parser.add_argument(
        "--against",
        metavar="LIVE.yaml",
        help="the live config (env ROUTER_CONFIG, default ./routes.yaml)",
    )
    parser.add_argument("--since", type=_duration, default=7 * 86400.0, help="window (default 7d)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--fail-on-change", action="store_true", help="exit 1 when a group changed")
    parser.add_argument("--state-url", metavar="URL", help="the store to read (default NEW.yaml's)")
    parser.add_argument("--events", metavar="FILE", help="replay an export instead of a store")
    parser.set_defaults(handler=run_replay)

    export = commands.add_parser(
        "export",
        help="write the window's recorded events as JSON lines",
        description=_EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--config", help="config whose state.url to read (env ROUTER_CONFIG, default ./routes.yaml)"
    )
    export.add_argument("--since", type=_duration, default=7 * 86400.0, help="window (default 7d)")
    export.add_argument("--state-url", metavar="URL", help="the store to read")
    export.set_defaults(handler=run_export)


def _load(path: str) -> Config | None:
    """The complete config, or None after printing each problem on stderr."""
    config, problems = load_complete(path)
    for problem in problems:
        print(problem, file=sys.stderr)
    return config


async def _from_store(
    config: Config, url: str | None, since: float, until: float
) -> list[Recorded]:
    state = config.state if url is None else config.state.model_copy(update={"url": url})
    store = open_store(state)
    await store.open()
    try:
        return await read_window(store, since, until)
    finally:
        await store.close()


def _events(
    config: Config, args: argparse.Namespace, since: float, until: float
) -> list[Recorded] | None:
    """The window's events from --events or the store, or None after saying why not."""
    if getattr(args, "events", None):
        try:
            with open(args.events, encoding="utf-8") as lines:
                return read_lines(lines, since, until, args.events)
        except OSError as exc:
            print(f"alert-router: cannot read {args.events}: {exc.strerror}", file=sys.stderr)
        except (ValueError, UnicodeDecodeError) as exc:
            print(f"alert-router: {exc}", file=sys.stderr)
        return None
    if args.state_url is not None:
        try:
            parse_state_url(args.state_url)
        except ValueError as exc:
            print(f"alert-router: --state-url: {exc}", file=sys.stderr)
            return None
    try:
        return asyncio.run(_from_store(config, args.state_url, since, until))
    except StoreUnavailable as exc:
        print(f"alert-router: cannot read the state store: {exc}", file=sys.stderr)
        return None


def _progress(out: TextIO) -> Callable[[int, int], None] | None:
    """A progress bar on a terminal; nothing when the output is piped."""
    if not out.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.1:
            return
        last[0] = now
        width = 30
        filled = width * done // max(total, 1)
        out.write(f"\rreplaying [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            out.write("\r" + " " * (width + 40) + "\r")
        out.flush()

    return show


def run_replay(args: argparse.Namespace) -> int:
    proposed = _load(args.config)
    live = _load(args.against or os.environ.get("ROUTER_CONFIG") or _DEFAULT_CONFIG)
    if proposed is None or live is None:
        return 2
    until = time.time()
    since = until - args.since
    events = _events(proposed, args, since, until)
    if events is None:
        return 2
    result = replay(
        events, live, proposed, since=since, until=until, progress=_progress(sys.stderr)
    )
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        for line in result.lines():
            print(line)
    return 1 if args.fail_on_change and result.changed else 0


def run_export(args: argparse.Namespace) -> int:
    config = _load(args.config or os.environ.get("ROUTER_CONFIG") or _DEFAULT_CONFIG)
    if config is None:
        return 2
    until = time.time()
    events = _events(config, args, until - args.since, until)
    if events is None:
        return 2
    out = sys.stdout
    for recorded in events:
        out.write(recorded.to_json() + "\n")
    return 0
