"""Faults injected by the sandbox: retried within max_wait_seconds, never a lost record."""

from __future__ import annotations

import collections
import json

import pytest

from mokapen_sandbox import DEMO_CLIENT_SECRET
from tests.helpers import run_tap

TRANSIENT = {
    "503 burst": [{"at": 2, "kind": "503", "times": 3}],
    "500 then 502 HTML page": [{"at": 3, "kind": "500"}, {"at": 4, "kind": "html502"}],
    "truncated JSON": [{"at": 2, "kind": "truncated", "times": 2}],
    "connection reset": [{"at": 4, "kind": "reset"}],
    "slow answer": [{"at": 2, "kind": "slow", "seconds": 1.5}],
    "throttle fault": [{"at": 5, "kind": "throttle"}],
    "revoked token": [{"at": 6, "kind": "revoke"}],
}


@pytest.mark.parametrize("faults", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_faults_lose_no_record(sandbox, faults):
    sandbox.update(faults=faults)
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    for stream in ("contacts", "tasks"):
        expected = collections.Counter(r["id"] for r in sandbox.records(stream))
        assert set(run.ids(stream)) == set(expected)
    run.assert_records_match_schemas()
    secrets = [DEMO_CLIENT_SECRET, *sandbox.tokens()]
    for secret in secrets:
        assert secret not in run.stdout and secret not in run.stderr


def test_a_fault_that_never_ends_fails_clearly_with_the_last_good_state(sandbox):
    sandbox.update(faults=[{"at": 3, "kind": "502", "times": 1000}])
    run = run_tap(sandbox.config(page_size=100, max_wait_seconds=4))

    assert run.returncode == 1
    line = next(line for line in run.error_lines() if "still failing" in line)
    assert "502 from GET /api/v1/849/contacts: Server Error" in line
    assert "max_wait_seconds=4" in line
    assert "Traceback" not in run.stderr
    # Two pages were emitted, and the last STATE resumes at the third.
    assert len(run.records("contacts")) == 200
    (partition,) = run.final_state["bookmarks"]["contacts"]["partitions"]
    assert partition["resume"]["next_page"] == 3


def test_a_retry_after_longer_than_max_wait_fails_at_once(sandbox):
    sandbox.update(rate_limit=1, rate_window=600.0)
    run = run_tap(sandbox.config(page_size=100, max_wait_seconds=30))

    assert run.returncode == 1
    assert "Mokapen asks to wait" in run.stderr and "max_wait_seconds" in run.stderr


def test_the_final_state_after_a_failure_resumes_without_gaps(sandbox):
    sandbox.update(faults=[{"at": 4, "kind": "500", "times": 1000}])
    first = run_tap(sandbox.config(page_size=100, max_wait_seconds=2))
    assert first.returncode == 1
    sandbox.update(faults=[])
    second = run_tap(sandbox.config(page_size=100), state=first.final_state)

    assert second.returncode == 0, second.stderr
    expected = {r["id"] for r in sandbox.records("contacts")}
    assert set(first.ids("contacts")) | set(second.ids("contacts")) == expected
    assert not second.ids("contacts") & first.ids("contacts")  # resumed, not restarted


DRIFT = {
    "before every page (worst case)": {"drift_every": 1},
    "before every 4th page": {"drift_every": 4},
}


@pytest.mark.parametrize("pace", DRIFT.values(), ids=DRIFT.keys())
def test_drift_while_paging_loses_no_record_that_existed_throughout(sandbox, pace):
    sandbox.reset(contacts=1000, drift={"delete": 3, "update": 2, "insert": 1}, **pace)
    before = {r["id"] for r in sandbox.records("contacts")}
    run = run_tap(sandbox.config(page_size=50))
    after = {r["id"] for r in sandbox.records("contacts")}

    assert run.returncode == 0, run.stderr
    survivors = before & after
    assert survivors <= set(run.ids("contacts"))
    summary = next(line for line in run.stderr.splitlines() if "Summary of 'contacts'" in line)
    assert "drift re-reads" in summary and " 0 drift re-reads" not in summary


def test_a_malformed_state_is_repaired_with_one_line_each(sandbox, tmp_path):
    good = run_tap(sandbox.config(page_size=100)).final_state
    broken = json.loads(json.dumps(good))
    contacts = broken["bookmarks"]["contacts"]["partitions"][0]
    contacts["resume"] = {"next_page": "3", "cycle_started_at": None}
    broken["bookmarks"]["tasks"]["partitions"][0]["replication_key_value"] = "9999-01-01 00:00:00"
    run = run_tap(sandbox.config(page_size=100), state=broken)

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "the resume point is malformed" in run.stderr
    assert "is in the future: capped at" in run.stderr
    assert set(run.ids("contacts")) <= {r["id"] for r in sandbox.records("contacts")}

    empty = tmp_path / "state.json"
    empty.write_text("")
    done = run_tap(sandbox.config(), args=["--state", str(empty)])
    assert done.returncode == 0 and "is empty: every stream is read in full" in done.stderr
    assert len(done.records("contacts")) == 500
