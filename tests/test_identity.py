"""Ask before retiring: a pass knows which records it saw, and no row is retired until
Mokapen confirms it is gone. Over HTTP against the sandbox, whose lists here lie while
every count stays consistent (an order that changes between requests, a list cut short
with its total cut too), with and without the show route; each run loaded into a table
that applies ACTIVATE_VERSION as target-postgres does (tests/helpers.VersionedTable).
"""

from __future__ import annotations

import pytest

from tests.helpers import run_tap, selecting
from tests.test_completeness import COUNT, Runs, activations, keys


def receipts(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if "Receipt of 'contacts'" in line]


def test_a_healthy_pass_costs_no_extra_request_and_says_why_it_counts(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    before = sandbox.stats()
    second = runs.run()
    after = sandbox.stats()
    # Ten pages for each of two organizations, no single-record request; the two tokens,
    # and the organizations list that shows no other organization shares the table.
    assert after["requests"] - before["requests"] == 20 + 2 + 1
    assert after.get("record_requests", 0) == before.get("record_requests", 0)
    lines = receipts(second)
    assert len(lines) == 2 and all(": complete;" in line for line in lines)
    assert all("distinct_ids 200" in line and "repeated_ids 0" in line for line in lines)
    metric = [m for m in second.stderr.splitlines() if '"metric": "pass_receipt"' in m]
    assert len(metric) == 2


@pytest.mark.parametrize("order", ["all", "block"])
def test_an_unstable_order_retires_no_live_row(sandbox, order):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    sandbox.update(unstable_order=order)
    for _ in range(3):  # Runs.run asserts after each run that no live row was retired
        shuffled = runs.run()
        assert activations(shuffled) == 0
        assert "an unstable order" in shuffled.stderr
    sandbox.update(unstable_order=None)
    runs.retires_deletions_within_two_passes()


def test_a_plain_list_in_another_order_each_time_is_one_list(sandbox):
    sandbox.reset(contacts=COUNT, list_shape="array", unstable_order="all")
    runs = Runs(sandbox)
    for _ in range(3):
        before = sandbox.stats()["pages_served"].get("849/contacts", 0)
        run = runs.run()
        # The list and the page-2 probe of a versioned pass; never read page by page.
        assert sandbox.stats()["pages_served"]["849/contacts"] - before == 2
        assert "pages without saying so" not in run.stderr
        assert len(keys(run, 849)) == COUNT


@pytest.mark.parametrize("shape", ["length_aware", "cursor", "simple"])
def test_a_list_cut_short_that_never_contradicts_itself_retires_no_live_row(sandbox, shape):
    sandbox.reset(contacts=COUNT, list_shape=shape)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    sandbox.update(list_cut=0.8)  # within the count guard: only the show route can tell
    for _ in range(3):
        cut = runs.run()
        assert activations(cut) == 0
        assert "are live at Mokapen: the list lost records" in cut.stderr
        assert "found_live" in cut.stderr
    sandbox.update(list_cut=None)
    runs.retires_deletions_within_two_passes()


def test_deletions_are_confirmed_at_the_show_route_and_retired_within_two_passes(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    deleted = runs.delete(849, 30)  # enough that the sample holds some of them
    before = sandbox.stats().get("record_requests", 0)
    confirming = runs.run()
    assert sandbox.stats()["record_requests"] > before
    (of_849,) = [line for line in receipts(confirming) if "organization 849" in line]
    assert "confirmed_deleted 0" not in of_849
    runs.run()
    assert deleted <= runs.table.retired


def test_without_the_show_route_a_cut_beyond_the_guard_retires_nothing(sandbox):
    sandbox.reset(contacts=COUNT, record_route=False)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    runs.delete(849, 20)  # sampled ids go missing: the route is asked for, and fails
    sandbox.update(list_cut=0.6)
    for _ in range(3):
        cut = runs.run()
        assert activations(cut) == 0
    assert cut.stderr.count("cannot be asked about") <= 1  # said once a run at most


def test_a_list_cut_a_little_more_each_pass_never_lowers_the_guard(sandbox):
    """The ratchet: each pass holds 80% of the one before. Without the show route the
    guard compares with the most of the last few passes, not the last one."""
    sandbox.reset(contacts=COUNT, record_route=False)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    for share in (0.8, 0.64, 0.51, 0.41):
        sandbox.update(list_cut=share)
        runs.run()
    assert {k for k in runs.live() if k[0] == 849} <= runs.table.live


def test_the_first_pass_after_an_upgrade_sets_the_baseline_and_retires_nothing(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    # A STATE of the previous release: no record counts, no sample.
    for part in runs.state["bookmarks"]["contacts"]["partitions"]:
        part.pop("last_complete_pass", None)
        part.pop("id_sample", None)
    sandbox.update(list_cut=0.35)
    first = runs.run()
    assert activations(first) == 0
    # Ids just past the largest one seen answer: the list was cut.
    assert "are live at Mokapen" in first.stderr
    for _ in range(2):
        assert activations(runs.run()) == 0


def test_an_incremental_stream_keeps_its_bookmark_while_the_list_is_cut(sandbox):
    sandbox.reset(contacts=COUNT)
    config = sandbox.config(page_size=20, organization_ids=[849], organization_id=None)
    first = run_tap(config, catalog=selecting("contacts"))
    sandbox.update(list_cut=0.8)  # within the count guard: only the show route can tell
    edited = set(sandbox.mutate("contacts", update=40)["updated"])
    cut = run_tap(config, state=first.final_state, catalog=selecting("contacts"))
    assert "are live at Mokapen" in cut.stderr
    sandbox.update(list_cut=None)
    after = run_tap(config, state=cut.final_state, catalog=selecting("contacts"))
    emitted = {r["id"] for r in cut.records("contacts") + after.records("contacts")}
    assert edited <= emitted  # no gap: every edited record reached the output


def test_deletions_spending_the_checks_do_not_hide_a_cut(sandbox):
    """Real deletions and a cut at once: the checks ask the missing ids in a random
    order, not the smallest first, so the deletions cannot use the budget up."""
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox, organization_ids=[849])
    runs.run()
    runs.run()
    runs.delete(849, 30)
    sandbox.update(list_cut=0.85)  # the last 15% (high ids) never listed
    for _ in range(3):
        runs.run()  # asserts no live row retired


def test_a_failing_show_route_makes_the_pass_incomplete_not_the_run(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox, organization_ids=[849, 850])
    runs.run()
    runs.run()
    runs.delete(849, 30)
    first_check = sandbox.stats()["api_requests"] + 10 + 1  # 849's 10 pages, then checks
    sandbox.update(faults=[{"at": first_check, "kind": "500"}])
    run = runs.run(max_wait_seconds=0)  # exit 0: 850 is read, 849's pass is not confirmed
    assert "could not be asked about" in run.stderr
    assert activations(run) == 0
    assert keys(run, 850) == {k for k in runs.live() if k[0] == 850}


def test_the_quota_during_the_checks_pauses_the_pass_cleanly(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox, organization_ids=[849])
    runs.run()
    runs.run()
    runs.delete(849, 30)
    paused = runs.run(max_requests_per_run=12)  # 10 pages and a token, then a check
    assert "paused" in paused.stderr.lower()
    finished = runs.run()
    assert "Receipt of 'contacts' for organization 849: complete" in finished.stderr


def test_a_raised_share_keeps_the_history_the_guard_holds_passes_to(sandbox):
    sandbox.reset(contacts=COUNT, record_route=False)
    runs = Runs(sandbox, organization_ids=[849], max_deleted_share=0.5)
    runs.run()
    runs.run()
    for share in (0.6, 0.36, 0.36):  # each within 50% of the pass before it
        sandbox.update(list_cut=share)
        runs.run()  # asserts no live row retired


@pytest.mark.parametrize("recent", [[10**400], [10**15], ["x", None, -5], "not a list"])
def test_a_hostile_history_in_state_neither_crashes_nor_stalls(sandbox, recent):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox, organization_ids=[849], tables_per_organization=True)
    runs.run()
    runs.run()
    for part in runs.state["bookmarks"]["contacts"]["partitions"]:
        part["last_complete_pass"]["recent"] = recent
    runs.run()
    runs.delete(849, 3)
    runs.run()
    runs.run()
    assert {(849, i) for i in range(1, COUNT + 1)} - runs.live() <= runs.table.retired
