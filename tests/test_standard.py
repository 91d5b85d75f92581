"""The Meltano SDK's standard tap tests, over HTTP against the sandbox."""

from __future__ import annotations

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORGANIZATION_ID
from tap_mokapen.tap import TapMokapen
from tests.helpers import SANDBOX_URL

# The standard tests talk to the sandbox from the class-scoped runner fixture on.
pytestmark = pytest.mark.usefixtures("sandbox_server")

TestTapMokapen = get_tap_test_class(
    TapMokapen,
    config={
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "organization_id": DEMO_ORGANIZATION_ID,
        "base_url": SANDBOX_URL,
        "requests_per_minute": 100_000,
        # Shipped but off by default: declared, they are on and tested like the others.
        "extra_streams": [{"name": "companies"}, {"name": "projects"}],
    },
    # rejected_records only has records when the API sends broken ones.
    suite_config=SuiteConfig(
        max_records_limit=1000, ignore_no_records_for_streams=["rejected_records"]
    ),
)
