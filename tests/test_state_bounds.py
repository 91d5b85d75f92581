"""Nothing a server sends reaches STATE without a bound: a cursor that grows on every page
and absurd counts are not kept, and a run resumed without them loses no record."""

from __future__ import annotations

import json

from tap_mokapen.paging import MAX_KEPT_CURSOR
from tests.helpers import run_tap, selecting


def test_a_cursor_too_long_to_keep_is_not_kept_and_the_resumed_run_starts_over(sandbox):
    # Each cursor is 1,000 characters of filler longer than the one before.
    sandbox.reset(list_shape="cursor", cursor_growth=1000)
    config = sandbox.config(page_size=50, max_requests_per_run=6)
    first = run_tap(config, catalog=selecting("contacts"))
    assert first.returncode == 0, first.stderr
    assert max(len(json.dumps(state)) for state in first.states) < 4 * MAX_KEPT_CURSOR
    assert "is not kept in STATE" in first.stderr

    resumed = run_tap(
        sandbox.config(page_size=50), state=first.final_state, catalog=selecting("contacts")
    )
    assert resumed.returncode == 0, resumed.stderr
    arrived = set(first.ids("contacts")) | set(resumed.ids("contacts"))
    assert arrived == {r["id"] for r in sandbox.records("contacts")}
