"""A local Mokapen API server implementing docs/mokapen-api.md, for tests and benchmarks."""

from mokapen_sandbox.server import SandboxServer
from mokapen_sandbox.settings import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_ORGANIZATION_ID,
    SandboxSettings,
)

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_ORGANIZATION_ID",
    "SandboxServer",
    "SandboxSettings",
]
