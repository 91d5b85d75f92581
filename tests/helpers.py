"""Shared test helpers: the sandbox in the test process, driven over HTTP; the tap's real
command line run in-process (run_tap) or, where the process is under test, as a process
(run_tap_process); a clock whose sleeps cost no time."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
import typing as t
from pathlib import Path

import jsonschema
import requests
from singer_sdk.logging import ConsoleFormatter

from mokapen_sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_ORGANIZATION_ID,
    SandboxServer,
)
from tap_mokapen import clock

ROOT = Path(__file__).resolve().parent.parent
TAP = [sys.executable, "-m", "tap_mokapen"]
MELTANO = str(Path(sys.executable).parent / "meltano")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Chosen at import time: the SDK's standard test class needs the URL when it is built.
SANDBOX_PORT = int(os.environ.get("MOKAPEN_TEST_SANDBOX_PORT") or free_port())
SANDBOX_URL = f"http://127.0.0.1:{SANDBOX_PORT}"


class SkippingClock(clock.Clock):
    """Real time, except that a sleep jumps the clock forward instead of waiting: the
    tap's throttle, back-off and re-check waits cost no real time, and what was slept
    is recorded for the tests to assert."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        return super().now() + dt.timedelta(seconds=self.skipped)

    def time(self) -> float:
        return super().time() + self.skipped

    def monotonic(self) -> float:
        return super().monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.skipped += max(0.0, seconds)


class Sandbox:
    """The sandbox server running in the test process (a thread on loopback), with its
    admin calls over HTTP; its clock is the tests' clock, so the tap's skipped waits
    pass for the server too."""

    def __init__(self, port: int = 0) -> None:
        self.server = SandboxServer(port=port).start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    def use_clock(self, clock: t.Any) -> None:
        self.server.sandbox.clock = clock

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
        """Each record against the SCHEMA in force when it came: every value fits, and
        every field is named (a loader drops or refuses fields its SCHEMA lacks)."""
        validators: dict[str, jsonschema.Draft7Validator] = {}
        named: dict[str, set[str]] = {}
        for message in self.messages:
            stream = message.get("stream", "")
            if message["type"] == "SCHEMA":
                schema = message["schema"]
                checker = jsonschema.FormatChecker()
                validators[stream] = jsonschema.Draft7Validator(schema, format_checker=checker)
                named[stream] = set(schema.get("properties", {}))
            elif message["type"] == "RECORD":
                validators[stream].validate(message["record"])
                unnamed = set(message["record"]) - named[stream]
                assert not unnamed, f"{stream}: fields not in its SCHEMA: {unnamed}"

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "ERROR" in line]


class VersionedTable:
    """A target's table, with versions applied as meltanolabs-target-postgres does.

    A row takes the version of the last RECORD for it (and is live again); an
    ACTIVATE_VERSION V retires every row of the stream whose version is older than V
    or that has none (target-postgres: ``_sdc_table_version < V OR IS NULL``).
    """

    def __init__(self, stream: str = "contacts") -> None:
        self.stream = stream
        self.rows: dict[tuple[t.Any, t.Any], int | None] = {}
        self.retired: set[tuple[t.Any, t.Any]] = set()
        self.activations = 0

    def load(self, run: TapRun) -> None:
        for message in run.messages:
            if message.get("stream") != self.stream:
                continue
            if message["type"] == "RECORD":
                key = (message["record"]["organization_id"], message["record"]["id"])
                self.rows[key] = message.get("version")
                self.retired.discard(key)
            elif message["type"] == "ACTIVATE_VERSION":
                self.activations += 1
                version = message["version"]
                self.retired |= {k for k, v in self.rows.items() if v is None or v < version}

    @property
    def live(self) -> set[tuple[t.Any, t.Any]]:
        return set(self.rows) - self.retired


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
    config: dict[str, t.Any] | None,
    *,
    state: dict | None = None,
    catalog: dict | t.Literal["tested streams"] | None = "tested streams",
    args: t.Sequence[str] = (),
    env: dict[str, str] | None = None,
    watch: t.Callable[[str], None] | None = None,
) -> TapRun:
    """Run ``tap-mokapen``'s command line in this process, with files for config, state
    and catalog, stdout and stderr captured, and the exit code it would give.

    ``watch`` is called with each line of stdout as it is flushed, while the tap runs:
    how a test acts on what the tap prints (the browser of ``--authorize``).

    By default the catalog selects TESTED_STREAMS; ``catalog=None`` runs without one
    (the tap's own default selection). The tap talks HTTP to the sandbox over loopback
    as it always does; only its waits are skipped (tests/conftest.py's clock).
    """
    from tap_mokapen.cli import CommandLine

    out_bytes = _WatchedBytes(watch)
    stdout = io.TextIOWrapper(io.BufferedWriter(out_bytes), encoding="utf-8", write_through=True)
    stderr = io.StringIO()
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(ConsoleFormatter())
    root = logging.getLogger()
    saved_level, saved_environ = root.level, dict(os.environ)
    saved_signals = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    with tempfile.TemporaryDirectory() as folder:
        options = _option_files(Path(folder), config, state, catalog, args)
        try:
            os.environ.update(env or {})
            root.addHandler(handler)
            root.setLevel(os.environ.get("TAP_MOKAPEN_LOG_LEVEL", "INFO").upper())
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    CommandLine.get_singer_command().main(
                        [*options, *args], prog_name="tap-mokapen", standalone_mode=True
                    )
                    returncode = 0
                except SystemExit as exit_:
                    returncode = _exit_code(exit_.code, stderr)
                except Exception:
                    stderr.write(traceback.format_exc())
                    returncode = 1
                stdout.flush()
        finally:
            root.removeHandler(handler)
            root.setLevel(saved_level)
            os.environ.clear()
            os.environ.update(saved_environ)
            for number, handler_of in saved_signals.items():
                signal.signal(number, handler_of)
    text = out_bytes.getvalue().decode("utf-8", errors="replace")
    return TapRun(returncode, _messages(text), stderr.getvalue(), text)


class _WatchedBytes(io.BytesIO):
    """Captured stdout that hands each complete line to ``watch`` as it arrives."""

    def __init__(self, watch: t.Callable[[str], None] | None) -> None:
        super().__init__()
        self._watch = watch
        self._partial = b""

    def write(self, data: t.Any) -> int:
        written = super().write(data)
        if self._watch is not None:
            self._partial += bytes(data)
            *lines, self._partial = self._partial.split(b"\n")
            for line in lines:
                self._watch(line.decode("utf-8", errors="replace"))
        return written


def _exit_code(code: object, stderr: io.StringIO) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    stderr.write(f"{code}\n")
    return 1


def _option_files(
    folder: Path,
    config: dict[str, t.Any] | None,
    state: dict | None,
    catalog: dict | t.Literal["tested streams"] | None,
    args: t.Sequence[str],
) -> list[str]:
    """``--config``, ``--state`` and ``--catalog`` options, each from a file in ``folder``."""
    if catalog == "tested streams":
        informative = {"--discover", "--about"} & set(args)
        catalog = None if informative else json.loads(tested_streams_catalog())
    options = []
    for name, content in (("config", config), ("state", state), ("catalog", catalog)):
        if content is not None:
            path = folder / f"{name}.json"
            path.write_text(json.dumps(content))
            options += [f"--{name}", str(path)]
    return options


def _messages(stdout: str) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"type"')]


def run_tap_process(
    config: dict[str, t.Any] | None,
    *,
    state: dict | None = None,
    catalog: dict | t.Literal["tested streams"] | None = "tested streams",
    args: t.Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> TapRun:
    """Run ``tap-mokapen`` as its own process, as a user would: for the tests whose
    subject is the process (signals, exit codes of the interpreter, the installed
    command). Same arguments as run_tap."""
    with tempfile.TemporaryDirectory() as folder:
        options = _option_files(Path(folder), config, state, catalog, args)
        completed = subprocess.run(
            [*TAP, *options, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
    return TapRun(
        completed.returncode, _messages(completed.stdout), completed.stderr, completed.stdout
    )


class NewMeltanoProject:
    """A brand-new Meltano project, made the way docs/meltano.md's walk makes one: `meltano
    init`, the tap from a definition that installs this checkout, loaders from the
    definitions shipped in meltano/. Nothing of this checkout's project or of the tests'
    environment (MELTANO_*, TAP_MOKAPEN_*, TARGET_*) reaches it: what it does, its own
    meltano.yml and .env say."""

    def __init__(self, folder: Path, name: str = "my-project") -> None:
        self.folder = folder
        self.root = folder / name
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("MELTANO_", "TAP_MOKAPEN_", "TARGET_"))
        }
        self.env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        self.meltano("init", "--no-usage-stats", name)
        # docs/meltano.md: python3 scripts/plugin_definition.py --local --pip-url "$PWD" > ...
        definition = folder / "tap-mokapen.yml"
        definition.write_text(
            subprocess.run(
                [
                    *(sys.executable, "-S", "scripts/plugin_definition.py"),
                    *("--local", "--pip-url", str(ROOT)),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        self.meltano(
            "add", "--plugin-type", "extractor", "tap-mokapen", "--from-ref", str(definition)
        )

    def meltano(
        self, *args: str, exit_code: int = 0, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``meltano ARGS`` in the project (in its parent folder before `meltano init`)."""
        done = subprocess.run(
            [MELTANO, *args],
            cwd=self.root if self.root.exists() else self.folder,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == exit_code, (done.stdout + done.stderr)[-3000:]
        return done

    def add_loader(self, name: str) -> None:
        """A loader from its definition shipped beside the tap's: no Hub needed."""
        shipped = ROOT / "meltano" / f"{name}.yml"
        self.meltano("add", "--plugin-type", "loader", name, "--from-ref", str(shipped))

    def use_sandbox_app(self, sandbox_url: str) -> None:
        """docs/meltano.md's settings for the sandbox's demo app (the secret goes to .env)."""
        self.meltano("config", "set", "tap-mokapen", "base_url", sandbox_url)
        self.meltano("config", "set", "tap-mokapen", "client_id", DEMO_CLIENT_ID)
        self.meltano("config", "set", "tap-mokapen", "client_secret", DEMO_CLIENT_SECRET)
        self.meltano("config", "set", "tap-mokapen", "organization_id", str(DEMO_ORGANIZATION_ID))


def about_tap() -> dict[str, t.Any]:
    """``tap-mokapen --about --format=json``, as a process of this interpreter."""
    return t.cast(
        "dict[str, t.Any]",
        json.loads(
            subprocess.run(
                [sys.executable, "-m", "tap_mokapen", "--about", "--format=json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        ),
    )
