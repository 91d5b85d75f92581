"""One sandbox process for the whole test session, started by the first test that needs it
and reset to its defaults before each test; unit tests run without it."""

from __future__ import annotations

import os
import subprocess
import typing as t
from pathlib import Path

import pytest

from tests.helpers import MELTANO, SANDBOX_PORT, Sandbox, free_port
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sandbox_process() -> t.Iterator[Sandbox]:
    sandbox = Sandbox(SANDBOX_PORT)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_process: Sandbox) -> t.Iterator[Sandbox]:
    """The shared sandbox, at its defaults; left at its defaults for the tests after."""
    sandbox_process.reset()
    yield sandbox_process
    sandbox_process.reset()


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
