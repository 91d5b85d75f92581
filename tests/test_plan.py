"""--plan: one request per stream, and numbers that match the sync that follows."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_tap


@pytest.mark.parametrize("switches", [{}, {"ignore_per_page": True}], ids=["honoured", "15"])
def test_plan_matches_what_the_sync_spends(sandbox, switches):
    sandbox.reset(contacts=1234, tasks=345, **switches)
    planned = run_tap(sandbox.config(page_size=100), args=["--plan=json"])
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert sandbox.stats()["requests"] == plan["plan_requests_spent"] == 4

    sandbox.reset(contacts=1234, tasks=345, **switches)
    run = run_tap(sandbox.config(page_size=100))
    assert run.returncode == 0, run.stderr
    assert sandbox.stats()["requests"] == plan["requests"]
    records = {c["stream"]: c["records"] for c in plan["streams"]}
    assert records == {"contacts": 1234, "tasks": 345, "organizations": 2}
    assert len(run.records("contacts")) == 1234
    free_days = plan["plan_days"]["Free"]
    assert free_days == round(plan["requests"] / 200, 2)


def test_plan_as_a_table_names_every_plan(sandbox):
    planned = run_tap(sandbox.config(), args=["--plan"])
    assert planned.returncode == 0, planned.stderr
    for text in ("contacts", "Free", "Small Team", "Medium", "Large", "Time at the rate limit"):
        assert text in planned.stdout


def test_summary_line_per_stream_at_the_end_of_a_run(sandbox):
    run = run_tap(sandbox.config(page_size=100))
    lines = [line for line in run.stderr.splitlines() if "Summary of" in line]
    assert any(
        "Summary of 'contacts': 500 records, 5 pages, 5 requests, 0 retries, 0 429 "
        "answers, 0 drift re-reads" in line
        for line in lines
    )
    assert len(lines) == 3
