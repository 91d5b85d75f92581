"""Shared test helpers: drive the sandbox over HTTP and run the tap through its real CLI."""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import jsonschema
import requests

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORGANIZATION_ID

TAP = [sys.executable, "-m", "tap_mokapen"]
MELTANO = str(Path(sys.executable).parent / "meltano")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Chosen at import time: the SDK's standard test class needs the URL when it is built.
SANDBOX_PORT = int(os.environ.get("MOKAPEN_TEST_SANDBOX_PORT") or free_port())
SANDBOX_URL = f"http://127.0.0.1:{SANDBOX_PORT}"


class Sandbox:
    """A ``mokapen-sandbox`` process on loopback, with its admin calls."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mokapen_sandbox", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/_sandbox/stats", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        msg = "the sandbox did not start"
        raise RuntimeError(msg)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def reset(self, **settings: t.Any) -> None:
        requests.post(f"{self.url}/_sandbox/reset", json=settings, timeout=10).raise_for_status()

    def update(self, **settings: t.Any) -> None:
        requests.post(f"{self.url}/_sandbox/update", json=settings, timeout=10).raise_for_status()

    def new_day(self) -> None:
        requests.post(f"{self.url}/_sandbox/new-day", timeout=10).raise_for_status()

    def dashboard_token(self, org: int = DEMO_ORGANIZATION_ID) -> str:
        answer = requests.post(
            f"{self.url}/_sandbox/dashboard-token", json={"org": org}, timeout=10
        )
        return answer.json()["access_token"]

    def refresh_token(self, org: int = DEMO_ORGANIZATION_ID) -> str:
        answer = requests.post(f"{self.url}/_sandbox/refresh-token", json={"org": org}, timeout=10)
        return answer.json()["refresh_token"]

    def tokens(self) -> list[str]:
        return requests.get(f"{self.url}/_sandbox/tokens", timeout=10).json()

    def stats(self) -> dict[str, t.Any]:
        return requests.get(f"{self.url}/_sandbox/stats", timeout=10).json()

    def records(self, stream: str = "contacts", org: int = DEMO_ORGANIZATION_ID) -> list[dict]:
        params = {"stream": stream, "org": org}
        return requests.get(f"{self.url}/_sandbox/records", params=params, timeout=60).json()

    def bad_records(self, stream: str = "contacts", org: int = DEMO_ORGANIZATION_ID) -> list[dict]:
        params = {"stream": stream, "org": org}
        return requests.get(f"{self.url}/_sandbox/bad-records", params=params, timeout=60).json()

    def mutate(
        self, stream: str = "contacts", org: int = DEMO_ORGANIZATION_ID, **changes: int
    ) -> dict[str, list[int]]:
        payload = {"stream": stream, "org": org, **changes}
        return requests.post(f"{self.url}/_sandbox/mutate", json=payload, timeout=10).json()

    def config(self, **overrides: t.Any) -> dict[str, t.Any]:
        """The demo app's config; an override of None leaves that setting out."""
        config = {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "organization_id": DEMO_ORGANIZATION_ID,
            "base_url": self.url,
            # The throttle is off in the sandbox unless a test turns it on.
            "requests_per_minute": 100_000,
            # Several pages from the sandbox's few hundred records; the tap's own choice
            # of page size is tested with page_size=None (test_page_size.py).
            "page_size": 100,
            **overrides,
        }
        return {key: value for key, value in config.items() if value is not None}


@dataclasses.dataclass
class TapRun:
    returncode: int
    messages: list[dict[str, t.Any]]
    stderr: str
    stdout: str

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str) -> collections.Counter:
        return collections.Counter(r["id"] for r in self.records(stream))

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, t.Any]:
        return self.states[-1]

    def schemas(self) -> dict[str, dict]:
        return {m["stream"]: m["schema"] for m in self.messages if m["type"] == "SCHEMA"}

    def assert_records_match_schemas(self) -> None:
        schemas = self.schemas()
        validators = {
            name: jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
            for name, schema in schemas.items()
        }
        for message in self.messages:
            if message["type"] == "RECORD":
                validators[message["stream"]].validate(message["record"])

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "ERROR" in line]


#: The streams the tests count requests and records of. A stream added to the tap
#: later is left out of their runs, so adding one never changes what they measure.
TESTED_STREAMS = ("contacts", "tasks", "organizations", "rejected_records")


@functools.cache
def tested_streams_catalog(streams: tuple[str, ...] = TESTED_STREAMS) -> str:
    """The tap's catalog with exactly ``streams`` selected (discovery makes no request)."""
    from tap_mokapen.tap import TapMokapen

    catalog = TapMokapen(config={}, validate_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if not metadata["breadcrumb"]:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return json.dumps(catalog)


def selecting(*streams: str) -> dict[str, t.Any]:
    """A catalog for run_tap that selects only ``streams``."""
    return json.loads(tested_streams_catalog(streams))


def run_tap(
    config: dict[str, t.Any],
    *,
    state: dict | None = None,
    catalog: dict | t.Literal["tested streams"] | None = "tested streams",
    args: t.Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> TapRun:
    """Run ``tap-mokapen`` as a user would, with files for config, state and catalog.

    By default the catalog selects TESTED_STREAMS; ``catalog=None`` runs without one
    (the tap's own default selection).
    """
    if catalog == "tested streams":
        informative = {"--discover", "--about"} & set(args)
        catalog = None if informative else json.loads(tested_streams_catalog())
    with tempfile.TemporaryDirectory() as folder:
        command = [*TAP]
        for name, content in (("config", config), ("state", state), ("catalog", catalog)):
            if content is not None:
                path = Path(folder) / f"{name}.json"
                path.write_text(json.dumps(content))
                command += [f"--{name}", str(path)]
        completed = subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
    messages = []
    for line in completed.stdout.splitlines():
        if line.startswith('{"type"'):
            messages.append(json.loads(line))
    return TapRun(completed.returncode, messages, completed.stderr, completed.stdout)
