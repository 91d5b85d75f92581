"""``mokapen-sandbox``: start the local Mokapen API server."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import signal
import sys
import typing as t

from mokapen_sandbox.data import ENTITIES
from mokapen_sandbox.server import SandboxServer
from mokapen_sandbox.settings import COUNT_FIELDS, SandboxSettings, describe_switches

# One place for the defaults and meanings the dedicated flags share with SandboxSettings.
SWITCHES = {name: (default, meaning) for name, default, meaning in describe_switches()}


def _record_count(text: str) -> tuple[str, int]:
    """``NAME=N`` of ``--records``, checked against the entity registry."""
    name, sep, number = text.partition("=")
    if not sep or not number.strip().isdigit():
        msg = f"expected NAME=N, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    if name not in ENTITIES:
        msg = f"no entity {name!r} (entities: {', '.join(ENTITIES)})"
        raise argparse.ArgumentTypeError(msg)
    if name in COUNT_FIELDS:
        msg = f"use --{name} {number.strip()}"
        raise argparse.ArgumentTypeError(msg)
    return name, int(number)


def switches_epilog() -> str:
    """Every SandboxSettings switch with its meaning and default, from the dataclass."""
    rows = describe_switches()
    width = max(len(name) for name, _, _ in rows)
    lines = [
        f"  {name:<{width}}  {meaning} [default: {json.dumps(default)}]"
        for name, default, meaning in rows
    ]
    return (
        "switches (set with --settings '{\"name\": value, ...}' or POST /_sandbox/reset):\n"
        + "\n".join(lines)
        + f"\n\nentities (GET /api/v1/{{org}}/<entity>, scope <entity>.read): {', '.join(ENTITIES)}"
    )


def _flag(parser: argparse.ArgumentParser, name: str, kind: t.Callable[[str], t.Any]) -> None:
    """A flag for one switch, with the switch's own default and meaning."""
    default, meaning = SWITCHES[name]
    flag = "--" + name.replace("_", "-")
    # argparse %-formats help strings.
    parser.add_argument(flag, type=kind, default=default, help=meaning.replace("%", "%%"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mokapen-sandbox",
        description="A local Mokapen API server (loopback only) for tap-mokapen.",
        epilog=switches_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind [default: 127.0.0.1]"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8765,
        help="port to listen on; 0 picks a free one, printed on the first line [default: 8765]",
    )
    _flag(parser, "contacts", int)
    _flag(parser, "tasks", int)
    parser.add_argument(
        "--records",
        type=_record_count,
        action="append",
        default=[],
        metavar="NAME=N",
        help="records per organization of another entity (repeatable)",
    )
    _flag(parser, "seed", int)
    _flag(parser, "rate_limit", int)
    _flag(parser, "rate_window", float)
    _flag(parser, "daily_quota", int)
    parser.add_argument(
        "--settings",
        type=json.loads,
        default={},
        help="any other switch, as a JSON object (all listed below); wins over the flags",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("mokapen-sandbox: --host must be a loopback address")
    settings = SandboxSettings.from_dict(
        {
            "seed": args.seed,
            "contacts": args.contacts,
            "tasks": args.tasks,
            "counts": dict(args.records),
            "rate_limit": args.rate_limit,
            "rate_window": args.rate_window,
            "daily_quota": args.daily_quota,
            **args.settings,
        }
    )
    try:
        server = SandboxServer(settings, host=args.host, port=args.port, verbose=args.verbose)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        # One line, not a traceback: scripts/demo.sh reacts to it by taking a free port.
        sys.exit(f"mokapen-sandbox: port {args.port} is in use (--port 0 picks a free one)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"mokapen-sandbox listening on {server.url}", flush=True)
    print(
        "demo credentials: "
        f"client_id={settings.client_id} client_secret={settings.client_secret} "
        f"organization_id={next(iter(settings.organizations))} "
        f"(organizations: {', '.join(map(str, settings.organizations))})",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
