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
    assert free_days == round(plan["requests"] / 200, 4)


def test_plan_as_a_table_names_every_plan(sandbox):
    planned = run_tap(sandbox.config(), args=["--plan"])
    assert planned.returncode == 0, planned.stderr
    for text in ("contacts", "Free", "Small Team", "Medium", "Large", "Time at the rate limit"):
        assert text in planned.stdout


def test_summary_line_per_stream_at_the_end_of_a_run(sandbox):
    run = run_tap(sandbox.config(page_size=100))
    lines = [line for line in run.stderr.splitlines() if "Summary of" in line]
    assert any(
        "Summary of 'contacts' of organization 849: 500 records read, 500 emitted, "
        "0 rejected; 5 pages, 5 requests, 0 retries, 0 429 answers, 0 drift re-reads" in line
        for line in lines
    )
    assert len(lines) == 3


def test_plan_learns_the_page_size_and_costs_the_sync_at_it(sandbox):
    sandbox.reset(contacts=2500, tasks=700, max_per_page=300, above_max_per_page="refuse")
    planned = run_tap(sandbox.config(page_size=None), args=["--plan=json"])
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    # One refused request and one first page per stream, and the token.
    assert sandbox.stats()["requests"] == plan["plan_requests_spent"] == 7
    contacts = next(c for c in plan["streams"] if c["stream"] == "contacts")
    assert contacts["per_page"] == contacts["largest_page"] == 300
    assert plan["requests"] == 9 + 3 + 1 + 1

    sandbox.reset(contacts=2500, tasks=700, max_per_page=300, above_max_per_page="refuse")
    run = run_tap(sandbox.config(page_size=None))
    assert run.returncode == 0, run.stderr
    # The sync spends what the plan said, plus the same one-off learning (no state given).
    assert sandbox.stats()["requests"] == plan["requests"] + 3


def test_plan_at_the_users_page_size_shows_the_cost_at_the_learned_one(sandbox):
    sandbox.reset(contacts=2500, tasks=700, max_per_page=300, above_max_per_page="refuse")
    learned = run_tap(sandbox.config(page_size=None))
    assert learned.returncode == 0, learned.stderr

    planned = run_tap(sandbox.config(page_size=100), args=["--plan"], state=learned.final_state)
    assert planned.returncode == 0, planned.stderr
    assert "Requests at page_size=100: 34 (33 pages + 1 token)" in planned.stdout
    assert "Requests at the largest page the server honours: 14;" in planned.stdout


def test_the_summary_of_an_incremental_run_tells_read_from_emitted(sandbox):
    first = run_tap(sandbox.config(page_size=100))
    sandbox.mutate("contacts", update=1)
    second = run_tap(sandbox.config(page_size=100), state=first.final_state)
    summary = next(line for line in second.stderr.splitlines() if "Summary of 'contacts'" in line)
    emitted = len(second.records("contacts"))
    assert 1 <= emitted < 500
    assert f"500 records read, {emitted} emitted, 0 rejected" in summary


def test_plan_says_what_it_knows_and_shows_small_shares_as_small(sandbox):
    sandbox.reset(contacts=30, tasks=20, omit_last_page=True)
    planned = run_tap(sandbox.config(page_size=None), args=["--plan"])
    assert planned.returncode == 0, planned.stderr
    text = planned.stdout
    assert "the learned page size" not in text  # nothing was learned
    assert "Requests at the default page size" in text
    assert "?: not known from the first page" in text  # the '?' columns explained
    quota_line = next(line for line in text.splitlines() if line.startswith("Share of each"))
    assert "Large <0.01" in quota_line and " 0.0," not in quota_line


def test_plan_help_says_what_the_plan_spends(sandbox):
    """The help names the token request beside the one request per stream: a plan of
    the tested streams (three) of one organization spends four."""
    shown = " ".join(run_tap(None, catalog=None, args=["--help"]).stdout.split())
    assert "a token request per organization and one request per selected stream" in shown
    run = run_tap(sandbox.config(), args=["--plan=json"])
    assert run.returncode == 0, run.stderr
    assert sandbox.stats()["token_requests"] == 1
    assert sandbox.stats()["requests"] == 1 + 3


@pytest.mark.parametrize("separate", [False, True])
def test_plan_counts_the_organizations_list_a_versioned_sync_asks(sandbox, separate):
    """With detect_deletions, a run of one of the app's two organizations asks the
    organizations list once (unless tables_per_organization settles it): the plan says
    so, and a first sync spends exactly what it says."""
    settings = {"page_size": 100, "detect_deletions": ["contacts"]}
    settings["tables_per_organization"] = separate
    sandbox.reset(contacts=1234, tasks=345)
    planned = run_tap(sandbox.config(**settings), args=["--plan=json"])
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["organizations_list_requests"] == (0 if separate else 1)
    sandbox.reset(contacts=1234, tasks=345)
    run = run_tap(sandbox.config(**settings))
    assert run.returncode == 0, run.stderr
    assert sandbox.stats()["requests"] == plan["requests"]
