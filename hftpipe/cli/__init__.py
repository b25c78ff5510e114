"""The ``hftpipe`` command line: ``main(argv) -> exit code``.

Subcommands live in a registry, so adding one is a decorator, not a parser edit:

    from hftpipe.cli import command, group

    group("run", help="run the pipeline")                       # optional: a group's help
    @command("run", "demo", help="offline demo against the simulator",
             arguments=lambda p: p.add_argument("--seconds", type=float, default=30))
    def _run_demo(args) -> int: ...

Command names are tuples of words (``("config", "check")`` is ``hftpipe config check``);
groups are created on demand. A handler returns the exit code. Modules that register commands
are listed in :data:`COMMAND_MODULES` and imported when the parser is built; keep heavy imports
inside the handlers so that ``hftpipe --help`` and ``hftpipe config check`` stay fast.

Exit codes: 0 success, 1 failure at run time, 2 usage or configuration error, 130 interrupted.
"""

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int | None]
ArgumentAdder = Callable[[argparse.ArgumentParser], Any]


@dataclass(frozen=True)
class Command:
    name: tuple[str, ...]
    help: str
    handler: Handler
    arguments: ArgumentAdder | None = None
    description: str | None = None


#: Registered commands, in registration order (which is their order in --help).
COMMANDS: dict[tuple[str, ...], Command] = {}
#: Help text of command groups, e.g. ``{("config",): "..."}``.
GROUPS: dict[tuple[str, ...], str] = {}
#: Modules imported by :func:`build_parser` so that their ``@command`` registrations run.
COMMAND_MODULES: list[str] = []


def group(*name: str, help: str) -> None:
    """Declare the help text of a command group (``hftpipe <group> ...``)."""
    GROUPS[tuple(name)] = help


def register(cmd: Command) -> Command:
    if not cmd.name:
        raise ValueError("a command needs a name")
    if cmd.name in COMMANDS:
        raise ValueError(f"command {' '.join(cmd.name)!r} is already registered")
    COMMANDS[cmd.name] = cmd
    return cmd


def command(*name: str, help: str, arguments: ArgumentAdder | None = None,
            description: str | None = None) -> Callable[[Handler], Handler]:
    """Decorator registering ``handler(args) -> exit code`` as ``hftpipe <name...>``."""

    def decorate(handler: Handler) -> Handler:
        register(Command(tuple(name), help, handler, arguments, description))
        return handler

    return decorate


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("hftpipe")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _show_help(parser: argparse.ArgumentParser) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    return handler


def build_parser() -> argparse.ArgumentParser:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(
        prog="hftpipe",
        description="Low-latency multiprocess crypto trading pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"hftpipe {_version()}")
    parser.set_defaults(handler=_show_help(parser))
    subparsers: dict[tuple[str, ...], Any] = {}
    parsers: dict[tuple[str, ...], argparse.ArgumentParser] = {(): parser}

    def container(prefix: tuple[str, ...]) -> Any:
        if prefix not in subparsers:
            parent = node(prefix)
            subparsers[prefix] = parent.add_subparsers(title="commands", metavar="COMMAND")
        return subparsers[prefix]

    def node(prefix: tuple[str, ...]) -> argparse.ArgumentParser:
        if prefix not in parsers:
            help_text = GROUPS.get(prefix, "")
            p = container(prefix[:-1]).add_parser(prefix[-1], help=help_text, description=help_text)
            p.set_defaults(handler=_show_help(p))
            parsers[prefix] = p
        return parsers[prefix]

    for name, cmd in COMMANDS.items():
        p = container(name[:-1]).add_parser(name[-1], help=cmd.help, description=cmd.description or cmd.help)
        if cmd.arguments is not None:
            cmd.arguments(p)
        p.set_defaults(handler=cmd.handler)
        parsers[name] = p
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (never raises SystemExit)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK if code is None else int(code)


# --------------------------------------------------------------------------------------------
# hftpipe config ...

group("config", help="validate and inspect configuration files")


def _config_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="YAML config file (merged over the defaults)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")


@command("config", "check", help="validate a config file and print the effective configuration",
         arguments=_config_check_arguments,
         description="Validate FILE (merged over the packaged defaults). On success print the effective "
                     "configuration as YAML and exit 0; otherwise print every error to stderr as "
                     "'error: <key.path>: <message>' and exit 2.")
def _config_check(args: argparse.Namespace) -> int:
    import yaml

    from hftpipe.config import ConfigError, check_config

    try:
        cfg, warnings = check_config(args.file)
    except ConfigError as exc:
        for issue in exc.errors:
            print(f"error: {issue.render(exc.source)}", file=sys.stderr)
        n = len(exc.errors)
        print(f"{args.file}: {n} error{'s' if n != 1 else ''}; configuration not valid", file=sys.stderr)
        return EXIT_USAGE
    for issue in warnings:
        print(f"warning: {issue.render(args.file)}", file=sys.stderr)
    if not args.quiet:
        sys.stdout.write(f"# {args.file}: valid. Effective configuration:\n")
        sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False))
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# hftpipe sim


def _sim_arguments(p: argparse.ArgumentParser) -> None:
    from hftpipe.sim import cli as sim_cli

    sim_cli.add_arguments(p)


@command("sim", help="run the offline exchange simulator (real venue protocols on loopback)",
         arguments=_sim_arguments)
def _sim(args: argparse.Namespace) -> int:
    from hftpipe.sim import cli as sim_cli

    return sim_cli.run(args)


# --------------------------------------------------------------------------------------------
# hftpipe book-check


def _book_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--venue", required=True, help="venue id (binance, binanceusdm, ...)")
    p.add_argument("--depth", type=int, default=20, help="levels per side to compare (default 20)")
    p.add_argument("file", metavar="FILE", help="one received frame per line; 'REST <url> <body>' lines")


@command("book-check", help="replay recorded frames through the feed code and report book sync",
         arguments=_book_check_arguments)
def _book_check(args: argparse.Namespace) -> int:
    from hftpipe.feeds.bookcheck import main_book_check

    return main_book_check(args.venue, args.file, args.depth)


# --------------------------------------------------------------------------------------------
# hftpipe record / replay


def _record_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--venue", required=True, help="venue id (binance, binanceusdm, ...)")
    p.add_argument("--symbols", required=True, help="comma-separated unified symbols, e.g. BTC/USDT,ETH/USDT")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the .rec.gz files")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--ws-url", default=None, help="override the venue's WebSocket URL (e.g. the simulator)")
    p.add_argument("--rest-url", default=None, help="override the venue's REST URL")
    p.add_argument("--roll-mb", type=float, default=64.0, help="start a new file after this many MB")


@command("record", help="record a venue's raw frames with receive times (compressed, rolling files)",
         arguments=_record_arguments)
def _record(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from hftpipe.feeds.process import record

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    result = asyncio.run(record(args.venue, symbols, args.out, args.duration, args.ws_url, args.rest_url,
                                int(args.roll_mb * 2**20)))
    print(json.dumps(result))
    return EXIT_OK


def _replay_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="recording files (.rec.gz), in order")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=None, help="replay at X times the original pace")
    pace.add_argument("--max", action="store_true", help="replay as fast as possible (the default)")
    p.add_argument("--depth", type=int, default=20, help="published levels per side (default 20)")


@command("replay", help="drive a recording through the feed code into rings; prints ring digests",
         arguments=_replay_arguments)
def _replay(args: argparse.Namespace) -> int:
    import json

    from hftpipe.feeds.recording import RecordingError, replay_to_private_rings

    try:
        result = replay_to_private_rings(args.files, depth=args.depth, speed=None if args.max else args.speed)
    except (OSError, RecordingError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result))
    return EXIT_OK
