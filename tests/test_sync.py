"""Full and incremental syncs through the real CLI against the sandbox."""

from __future__ import annotations

import collections
import json
import re

from tests.helpers import run_tap, selecting


def bookmark(state: dict, stream: str) -> str:
    (partition,) = state["bookmarks"][stream]["partitions"]
    return partition["replication_key_value"]


def test_full_sync_emits_every_record_once_and_one_token(sandbox):
    run = run_tap(sandbox.config())

    assert run.returncode == 0, run.stderr
    expected_contacts = {r["id"] for r in sandbox.records("contacts")}
    expected_tasks = {r["id"] for r in sandbox.records("tasks")}
    assert len(expected_contacts) == 500 and len(expected_tasks) == 200
    assert run.ids("contacts") == collections.Counter(expected_contacts)
    assert run.ids("tasks") == collections.Counter(expected_tasks)
    assert {r["id"] for r in run.records("organizations")} == {849, 850}
    run.assert_records_match_schemas()
    # One token for the whole run, shared by all three streams.
    assert sandbox.stats()["tokens_issued"] == 1
    state = run.final_state
    for stream in ("contacts", "tasks"):
        newest = max(r["updated_at"] for r in run.records(stream))
        assert bookmark(state, stream) == newest
        assert "progress_markers" not in state["bookmarks"][stream]["partitions"][0]


def test_records_carry_their_organization(sandbox):
    run = run_tap(sandbox.config())
    assert {r["organization_id"] for r in run.records("contacts")} == {849}


def test_second_run_with_state_emits_only_records_at_the_bookmark(sandbox):
    first = run_tap(sandbox.config())
    second = run_tap(sandbox.config(), state=first.final_state)

    assert second.returncode == 0, second.stderr
    for stream in ("contacts", "tasks"):
        mark = bookmark(first.final_state, stream)
        emitted = second.records(stream)
        assert all(r["updated_at"] == mark for r in emitted)
        at_mark = [r for r in first.records(stream) if r["updated_at"] == mark]
        assert len(emitted) == len(at_mark) >= 1
    assert sandbox.stats()["tokens_issued"] == 2  # one per run


def test_incremental_run_picks_up_changes(sandbox):
    first = run_tap(sandbox.config())
    changed = sandbox.mutate("contacts", update=7, insert=3)
    second = run_tap(sandbox.config(), state=first.final_state)

    emitted = set(second.ids("contacts"))
    assert set(changed["updated"]) | set(changed["inserted"]) <= emitted
    mark = bookmark(first.final_state, "contacts")
    stale = {r["id"] for r in second.records("contacts") if r["updated_at"] <= mark}
    assert emitted - stale == set(changed["updated"]) | set(changed["inserted"])
    assert bookmark(second.final_state, "contacts") > mark


def test_start_date_limits_the_first_run(sandbox):
    start = "2025-06-01T00:00:00Z"
    run = run_tap(sandbox.config(start_date=start))
    expected = {r["id"] for r in sandbox.records("contacts") if r["updated_at"] >= "2025-06-01"}
    assert set(run.ids("contacts")) == expected
    assert 0 < len(expected) < 500


def test_catalog_selection_syncs_only_selected_streams(sandbox):
    catalog = json.loads(run_tap(sandbox.config(), args=["--discover"]).stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if not metadata["breadcrumb"]:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "tasks"
    run = run_tap(sandbox.config(), catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(run.records("tasks")) == 200
    assert not run.records("contacts")


def test_discovery_makes_no_request(sandbox):
    run = run_tap(sandbox.config(), args=["--discover"])
    assert run.returncode == 0
    stats = sandbox.stats()
    assert stats.get("api_requests", 0) == 0 and stats.get("token_requests", 0) == 0


def test_progress_lines_report_records_pages_requests_and_time_left(sandbox):
    run = run_tap(sandbox.config(page_size=50, progress_log_seconds=0))
    lines = [line for line in run.stderr.splitlines() if "Progress of 'contacts'" in line]
    assert len(lines) == 10
    assert "250 records, page 5 of 10, 5 requests; 5 pages left, about" in lines[4]


def test_a_stream_map_takes_the_sdks_record_path_with_the_same_records(sandbox):
    """Stream maps turn the page-at-a-time path off (sdk_private.py): same records, same state."""
    fast = run_tap(sandbox.config())
    mapped = run_tap(sandbox.config(stream_maps={"contacts": {"email": None}}))

    assert mapped.returncode == 0, mapped.stderr
    assert "email" not in mapped.schemas()["contacts"]["properties"]
    expected = [{k: v for k, v in r.items() if k != "email"} for r in fast.records("contacts")]
    assert sorted(mapped.records("contacts"), key=lambda r: r["id"]) == sorted(
        expected, key=lambda r: r["id"]
    )
    assert mapped.records("tasks") == fast.records("tasks")
    mapped.assert_records_match_schemas()
    for stream in ("contacts", "tasks"):
        assert bookmark(mapped.final_state, stream) == bookmark(fast.final_state, stream)


def test_a_throttled_run_announces_its_waits_and_reports_progress_while_waiting(sandbox):
    # 6 requests per 6 s: every sixth request waits about 6 s for the window.
    config = sandbox.config(
        page_size=50, requests_per_minute=6, rate_limit_window_seconds=6, progress_log_seconds=2
    )
    run = run_tap(config, catalog=selecting("contacts"))
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    waits = [line for line in lines if "waits" in line and "for the rate limit" in line]
    assert waits and "'contacts' of organization 849 waits 6 s" in waits[0]
    assert "(6 requests per 6 s)" in waits[0]
    while_waiting = [line for line in lines if "s more for the rate limit" in line]
    assert while_waiting and all("Progress of 'contacts'" in line for line in while_waiting)
    summary = next(line for line in lines if "Summary of 'contacts'" in line)
    assert "s of it waiting for the rate limit" in summary and " 0.0 s of it" not in summary


def test_waits_for_the_servers_429_are_shown_and_counted_like_the_throttles(sandbox):
    # The server's own throttle (60 per 60 s), the tap's limit set far above it.
    sandbox.reset(rate_limit=3, rate_window=60)
    config = sandbox.config(page_size=50, progress_log_seconds=10)
    run = run_tap(config, catalog=selecting("contacts"))
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert any("waits" in line and "s for a retry" in line for line in lines)
    assert any("s more for a retry" in line for line in lines)  # progress while waiting
    summary = next(line for line in lines if "Summary of 'contacts'" in line)
    elapsed, waited = (float(x) for x in re.findall(r"; ([\d.]+) s, ([\d.]+) s of it", summary)[0])
    assert 0 < waited <= elapsed
