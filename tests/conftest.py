"""One sandbox server for the whole test session, in this process, started by the first test
that needs it and reset to its defaults before each test; unit tests run without it.
Every test runs on a clock whose sleeps skip ahead instead of waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from tap_mokapen import clock
from tests.helpers import MELTANO, SANDBOX_PORT, Sandbox, SkippingClock, free_port
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def signal_handlers() -> t.Iterator[None]:
    """A Tap built in a test (a catalog, a contract check) installs its SIGTERM and SIGINT
    handlers in this process: they are put back after each test."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.fixture(autouse=True)
def own_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default refresh_token_store of this test, in its own folder: a token one test
    stored (tap-mokapen --authorize) never turns another test's client credentials into a
    public app's refresh, and nothing reaches the user's own store."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def skipping_clock(monkeypatch: pytest.MonkeyPatch) -> SkippingClock:
    """The tap's clock for this test: waits are recorded and skipped, not slept."""
    fake = SkippingClock()
    monkeypatch.setattr(clock, "CLOCK", fake)
    return fake


@pytest.fixture
def real_clock(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    """The wall clock for the tap and the sandbox: for the few tests of real-time pacing."""
    monkeypatch.setattr(clock, "CLOCK", clock.Clock())
    sandbox.use_clock(time)


@pytest.fixture(scope="session")
def sandbox_server() -> t.Iterator[Sandbox]:
    sandbox = Sandbox(SANDBOX_PORT)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox, skipping_clock: SkippingClock) -> t.Iterator[Sandbox]:
    """The shared sandbox, at its defaults and on the test's clock; left at its defaults
    for the tests after."""
    sandbox_server.reset()
    sandbox_server.use_clock(skipping_clock)
    yield sandbox_server
    sandbox_server.reset()
    sandbox_server.use_clock(time)


@pytest.fixture(scope="session")
def meltano_plugins() -> None:
    """Install the project's plugins once (uv builds their virtualenvs from the index)."""
    subprocess.run(
        [MELTANO, "install"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )


@pytest.fixture(scope="session")
def postgres() -> t.Iterator[PostgresServer]:
    server = PostgresServer(free_port())
    yield server
    server.stop()
