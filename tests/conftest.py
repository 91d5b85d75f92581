"""One sandbox process for the whole test session, reset to its defaults before each test."""

from __future__ import annotations

import typing as t

import pytest

from tests.helpers import SANDBOX_PORT, Sandbox


@pytest.fixture(scope="session", autouse=True)
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
