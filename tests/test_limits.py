"""Rate limits, the daily quota and the per-run budget: pause cleanly, resume exactly."""

from __future__ import annotations

import collections
import json

import pytest

from tests.helpers import run_tap

STREAMS = ("contacts", "tasks", "organizations")
# 500 contacts and 200 tasks at 100 a page, plus one page of organizations.
FULL_SYNC_PAGES = 5 + 2 + 1


def all_ids(sandbox) -> dict[str, set]:
    return {
        "contacts": {r["id"] for r in sandbox.records("contacts")},
        "tasks": {r["id"] for r in sandbox.records("tasks")},
        "organizations": {849, 850},
    }


def emitted(runs) -> dict[str, collections.Counter]:
    seen = {stream: collections.Counter() for stream in STREAMS}
    for run in runs:
        for stream in STREAMS:
            seen[stream] += run.ids(stream)
    return seen


def pages_served(sandbox) -> int:
    return sum(sandbox.stats()["pages_served"].values())


def has_resume(state: dict) -> bool:
    return '"resume"' in str(state).replace("'", '"')


@pytest.mark.parametrize("cutoff", range(FULL_SYNC_PAGES + 1))
def test_quota_cut_off_at_every_request_resumes_exactly(sandbox, cutoff):
    expected = all_ids(sandbox)
    sandbox.update(quota_cutoff_after=cutoff)
    first = run_tap(sandbox.config(page_size=100))

    assert first.returncode == 0, first.stderr
    paused = cutoff < FULL_SYNC_PAGES
    assert ("Run paused" in first.stderr) is paused
    if paused:
        assert "daily request quota for organization 849 is spent" in first.stderr
        assert "next UTC midnight" in first.stderr
        assert has_resume(first.final_state)
    assert sandbox.stats().get("quota_rejected", 0) == (1 if paused else 0)

    sandbox.new_day()
    sandbox.update(quota_cutoff_after=None)
    second = run_tap(sandbox.config(page_size=100), state=first.final_state)

    assert second.returncode == 0, second.stderr
    seen = emitted([first, second])
    for stream in STREAMS:
        assert set(seen[stream]) == expected[stream], stream
    # No page already emitted was read again (the first run's finished streams included);
    # after a complete first run, the second is a normal incremental run of every page.
    assert pages_served(sandbox) == FULL_SYNC_PAGES * (1 if paused else 2)
    assert not has_resume(second.final_state)
    newest = max(r["updated_at"] for r in first.records("contacts") + second.records("contacts"))
    (partition,) = second.final_state["bookmarks"]["contacts"]["partitions"]
    assert partition["replication_key_value"] == newest


def test_max_requests_per_run_spreads_a_sync_over_runs_without_gaps(sandbox):
    expected = all_ids(sandbox)
    runs, state = [], None
    for _ in range(10):
        before = sandbox.stats().get("requests", 0)
        run = run_tap(sandbox.config(page_size=100, max_requests_per_run=3), state=state)
        assert run.returncode == 0, run.stderr
        assert sandbox.stats()["requests"] - before <= 3
        runs.append(run)
        state = run.final_state
        if not has_resume(state):
            break
    seen = emitted(runs)
    for stream in STREAMS:
        assert set(seen[stream]) == expected[stream], stream
    # A token and two pages a run: four runs for eight pages.
    assert len(runs) == 4
    assert pages_served(sandbox) == FULL_SYNC_PAGES
    assert "max_requests_per_run (3) reached" in runs[0].stderr


def test_a_state_is_emitted_after_every_page(sandbox):
    run = run_tap(sandbox.config(page_size=50))
    pages = [
        state["bookmarks"]["contacts"]["partitions"][0]["resume"]["next_page"]
        for state in run.states
        if "resume" in str(state.get("bookmarks", {}).get("contacts", {}))
    ]
    assert pages == list(range(2, 11))


def test_resume_after_records_were_deleted_overnight_loses_nothing(sandbox):
    sandbox.update(quota_cutoff_after=3)
    first = run_tap(sandbox.config(page_size=100))
    gone = set(sandbox.mutate("contacts", delete=40)["deleted"])
    sandbox.new_day()
    sandbox.update(quota_cutoff_after=None)
    second = run_tap(sandbox.config(page_size=100), state=first.final_state)

    seen = emitted([first, second])
    still_there = {r["id"] for r in sandbox.records("contacts")}
    assert still_there <= set(seen["contacts"])
    assert gone  # the deletions did shift the pages not yet read
    assert "reading again from position" in second.stderr


@pytest.mark.parametrize("where", ["body", "header", "both"])
def test_throttle_429_waits_as_told_and_completes(sandbox, where):
    sandbox.update(rate_limit=4, rate_window=1.0, retry_after_in=where)
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    stats = sandbox.stats()
    assert stats["throttled"] >= 1
    expected = all_ids(sandbox)
    for stream in STREAMS:
        assert set(run.ids(stream)) == expected[stream]


def test_the_client_limiter_avoids_429s_at_nearly_the_full_rate(sandbox, real_clock):
    """In real time: the tap's throttle against the server's own, both on the wall clock."""
    sandbox.reset(contacts=2500, rate_limit=8, rate_window=1.0)
    run = run_tap(sandbox.config(page_size=100, requests_per_minute=8, rate_limit_window_seconds=1))

    assert run.returncode == 0, run.stderr
    stats = sandbox.stats()
    assert stats.get("throttled", 0) == 0
    assert len(run.records("contacts")) == 2500
    rate = (stats["requests"] - 1) / (stats["last_request_at"] - stats["first_request_at"])
    assert rate >= 0.9 * 8, f"{stats['requests']} requests at {rate:.2f}/s, the limit is 8/s"


def test_quota_on_the_very_first_request_is_a_clean_pause(sandbox):
    sandbox.update(faults=[{"at": 1, "kind": "quota"}])
    run = run_tap(sandbox.config(page_size=100))
    assert run.returncode == 0
    assert "Run paused" in run.stderr
    assert has_resume(run.final_state)


def test_deselecting_a_stream_mid_cycle_never_freezes_the_others(sandbox):
    sandbox.update(quota_cutoff_after=2)  # paused inside contacts, tasks not read yet
    first = run_tap(sandbox.config(page_size=100))
    assert "Run paused" in first.stderr
    (paused,) = first.final_state["bookmarks"]["contacts"]["partitions"]
    first_resume = paused["resume"]["next_page"]
    sandbox.new_day()
    sandbox.update(quota_cutoff_after=None)

    catalog = json.loads(run_tap(sandbox.config(), args=["--discover"]).stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if not metadata["breadcrumb"]:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "tasks"
    state = first.final_state
    for _ in range(2):  # every run, not just the first
        run = run_tap(sandbox.config(page_size=100), state=state, catalog=catalog)
        assert run.returncode == 0, run.stderr
        assert "already synced in this cycle" not in run.stderr
        assert sandbox.stats()["pages_served"].get("849/tasks", 0) >= 2
        assert len(run.records("tasks")) >= 1
        state = run.final_state
        sandbox.reset()
    # contacts' resume point waits for contacts to be selected again.
    (partition,) = state["bookmarks"]["contacts"]["partitions"]
    assert partition["resume"]["next_page"] == first_resume
