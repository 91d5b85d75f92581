"""``mokapen-sandbox``: start the local Mokapen API server."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys

from mokapen_sandbox.server import SandboxServer
from mokapen_sandbox.settings import SandboxSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mokapen-sandbox",
        description="A local Mokapen API server (loopback only) for tap-mokapen.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--contacts", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="requests per --rate-window per client (0: no throttle)",
    )
    parser.add_argument("--rate-window", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--daily-quota",
        type=int,
        default=None,
        help="API requests per organization before 'Quota exceeded'",
    )
    parser.add_argument(
        "--settings",
        type=json.loads,
        default={},
        help="any other switch, as a JSON object (see SandboxSettings)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
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
            "rate_limit": args.rate_limit,
            "rate_window": args.rate_window,
            "daily_quota": args.daily_quota,
            **args.settings,
        }
    )
    server = SandboxServer(settings, host=args.host, port=args.port, verbose=args.verbose)
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
