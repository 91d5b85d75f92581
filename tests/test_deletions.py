"""detect_deletions over HTTP, with a target's version semantics played out in the test.

``VersionedTable`` (tests/helpers.py) does what meltanolabs-target-postgres does
with versions. A live record must never be retired, whatever the runs were cut
by; a deleted one must be, once two passes complete for every organization
lacked it. (tests/test_meltano.py runs the real PostgreSQL; test_completeness.py
has the glitches.)
"""

from __future__ import annotations

from tests.helpers import VersionedTable, run_tap, selecting

ORGANIZATIONS = [849, 850]


def live(sandbox) -> set[tuple[int, int]]:
    return {(org, r["id"]) for org in ORGANIZATIONS for r in sandbox.records("contacts", org)}


def sync(sandbox, table: VersionedTable, state: dict | None, **switches) -> dict:
    sandbox.update(**switches)
    config = sandbox.config(
        organization_id=None, organization_ids=ORGANIZATIONS, detect_deletions=["contacts"]
    )
    run = run_tap(config, state=state, catalog=selecting("contacts"))
    assert run.returncode == 0, run.stderr
    table.load(run)
    assert not (table.retired & live(sandbox)), "a live record was retired"
    return run.final_state


def test_no_live_record_is_retired_however_the_passes_are_cut(sandbox):
    table = VersionedTable()
    # Run 1: 850 runs out of quota mid-pass; 849 completes.
    state = sync(sandbox, table, None, quota_by_org={850: 3})
    sandbox.new_day()
    # Run 2: now 849 is cut mid-pass (a new pass of it), 850 completes: activation.
    state = sync(sandbox, table, state, quota_by_org={849: 3})
    sandbox.new_day()
    # Run 3: 849 resumes; its pass began under the version just activated.
    state = sync(sandbox, table, state, quota_by_org={})
    # Deletions, then complete passes: exactly the deleted records are retired.
    deleted = {(849, i) for i in sandbox.mutate("contacts", 849, delete=3)["deleted"]}
    for _ in range(2):
        state = sync(sandbox, table, state)
    assert table.retired == deleted


def test_a_pass_resumed_from_a_state_without_versions_starts_over(sandbox):
    table = VersionedTable()
    plain = sandbox.config(
        organization_id=None, organization_ids=ORGANIZATIONS, max_requests_per_run=3
    )
    cut = run_tap(plain, catalog=selecting("contacts"))  # paused before detect_deletions
    assert cut.returncode == 0, cut.stderr
    table.load(cut)
    state = sync(sandbox, table, cut.final_state)
    assert table.rows.keys() == live(sandbox)
    # The pass that resumed started over under the version, so it is a complete pass.
    assert state["bookmarks"]["contacts"]["table_version"].get("closed") is True
    assert "table_complete" in state["bookmarks"]["contacts"]


def test_a_rejected_record_in_an_earlier_run_of_the_pass_stops_the_retiring(sandbox):
    table = VersionedTable()
    sandbox.update(bad_records={"every": 150, "kinds": ["missing_id"]})
    state = sync(sandbox, table, None, quota_by_org={849: 2, 850: 2})
    sandbox.new_day()
    state = sync(sandbox, table, state, quota_by_org={}, bad_records=None)
    assert not table.retired
    assert "table_complete" not in state["bookmarks"]["contacts"]


def test_deletions_of_a_stream_that_cannot_have_them_are_one_line_errors(sandbox):
    for settings, problem in (
        ({"detect_deletions": ["rejected_records"]}, "detect_deletions names no stream"),
        ({"detect_deletions": ["deals"]}, "detect_deletions names no stream: 'deals'"),
        (
            {"detect_deletions": ["contacts"], "batch_config": {"encoding": {"format": "jsonl"}}},
            "detect_deletions cannot be used with batch_config",
        ),
    ):
        run = run_tap(sandbox.config(**settings), catalog=None)
        assert run.returncode == 1
        assert problem in run.stderr
        assert sum(problem in line for line in run.error_lines()) == 1, run.error_lines()
    assert sandbox.stats().get("requests", 0) == 0
