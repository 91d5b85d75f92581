"""A pass is complete only on evidence: no glitch of the server retires a live row or
leaves a gap. Over HTTP, with the sandbox's glitches (sandbox/mokapen_sandbox/glitches.py)
and a target's version semantics played out by ``VersionedTable``.

Each deletion test first completes two passes (so a version is there to activate),
then runs against the glitch and asserts, after every run, that no live record was
retired; then, the glitch gone, that records really deleted are retired within two
complete passes.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import SkippingClock, TapRun, VersionedTable, run_tap, selecting

ORGS = [849, 850]
COUNT = 200
SIZE = 20  # ten pages an organization


class Runs:
    """Runs of the tap over ``contacts``, STATE carried from one to the next, every one
    loaded into the same table."""

    def __init__(self, sandbox, **config) -> None:
        self.sandbox = sandbox
        self.table = VersionedTable()
        self.state: dict | None = None
        self.config = {
            "organization_id": None,
            "organization_ids": ORGS,
            "detect_deletions": ["contacts"],
            "page_size": SIZE,
            **config,
        }

    def run(self, expect: int = 0, **config) -> TapRun:
        run = run_tap(
            self.sandbox.config(**{**self.config, **config}),
            state=self.state,
            catalog=selecting("contacts"),
        )
        assert run.returncode == expect, run.stderr
        self.table.load(run)
        if run.states:
            self.state = run.final_state
        assert not (self.table.retired & self.live()), "a live record was retired"
        return run

    def live(self) -> set[tuple[int, int]]:
        return {
            (org, r["id"])
            for org in self.config["organization_ids"]
            for r in self.sandbox.records("contacts", org)
        }

    def request_number(self, org: int = 849, after: int = 0) -> int:
        """The number the sandbox gives the organization's next contacts request, plus ``after``."""
        served = self.sandbox.stats()["pages_served"].get(f"{org}/contacts", 0)
        return served + 1 + after

    def delete(self, org: int, count: int) -> set[tuple[int, int]]:
        return {(org, i) for i in self.sandbox.mutate("contacts", org, delete=count)["deleted"]}

    def retires_deletions_within_two_passes(self) -> None:
        """Records deleted now are retired once the two complete passes that follow the
        pass under way lacked them, no sooner (that pass may have read them already)."""
        self.run()
        deleted = self.delete(849, 3) | self.delete(850, 2)
        self.run()
        assert not (self.table.retired & deleted)  # one pass lacked them: not yet
        self.run()
        assert deleted <= self.table.retired


def activations(run: TapRun) -> int:
    return sum(m["type"] == "ACTIVATE_VERSION" for m in run.messages)


def keys(run: TapRun, org: int | None = None) -> set[tuple[int, int]]:
    """(organization, id) of every contact the run emitted (of one organization)."""
    found = {(r["organization_id"], r["id"]) for r in run.records("contacts")}
    return {k for k in found if org is None or k[0] == org}


STANDING = {
    "an empty page in the middle": {"kind": "empty"},
    "a short page that is not the last": {"kind": "short", "keep": 3},
    "a total that shrinks mid-pass": {"kind": "shrunk_total", "times": 1000},
    "the list ending early": {"kind": "end", "times": 1000},
}


@pytest.mark.parametrize("glitch", STANDING.values(), ids=STANDING.keys())
def test_a_contradiction_that_stands_retires_no_live_row(sandbox, glitch):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    assert activations(runs.run()) == 1  # two complete passes: the first is activated

    # Page 4 of 849's next pass glitches, and again when asked a second time.
    sandbox.update(
        glitches=[{"times": 2, **glitch, "at": runs.request_number(after=3), "org": 849}]
    )
    glitched = runs.run()
    assert activations(glitched) == 0
    assert "this pass is incomplete" in glitched.stderr
    if glitch["kind"] in ("empty", "short"):  # a fallen total is re-read by the drift rules
        assert "asking for it again" in glitched.stderr

    sandbox.update(glitches=[])
    runs.retires_deletions_within_two_passes()


def test_a_glitch_seen_once_is_asked_again_and_the_pass_counts(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    sandbox.update(glitches=[{"kind": "empty", "at": runs.request_number(after=3), "org": 849}])
    healed = runs.run()
    assert "asking for it again" in healed.stderr
    assert "incomplete" not in healed.stderr
    assert activations(healed) == 1
    assert runs.table.live == runs.live()


def test_a_short_page_leaves_no_gap_in_an_incremental_stream(
    sandbox, skipping_clock: SkippingClock
):
    """Without detect_deletions: the bookmark does not pass what the glitched pass missed,
    so once the glitch is gone every record changed since reaches the output."""
    sandbox.reset(contacts=COUNT)
    config = sandbox.config(page_size=SIZE)
    first = run_tap(config, catalog=selecting("contacts"))
    assert first.returncode == 0, first.stderr
    edited = set(sandbox.mutate("contacts", 849, update=60)["updated"])
    # Edited a little later: a newer updated_at, which a bookmark moved by the glitched pass
    # would reach, leaving the first edits behind it.
    edited |= set(sandbox.mutate("contacts", 849, update=10)["updated"])
    # Both well before the next run: past the bookmark's margin for clock skew.
    skipping_clock.sleep(3600)

    at = sandbox.stats()["pages_served"]["849/contacts"] + 3
    sandbox.update(glitches=[{"kind": "short", "keep": 2, "at": at, "times": 2}])
    glitched = run_tap(config, state=first.final_state, catalog=selecting("contacts"))
    assert glitched.returncode == 0, glitched.stderr
    missed = edited - set(glitched.ids("contacts"))
    assert missed, "the glitch hid no edited record: the test proves nothing"

    sandbox.update(glitches=[])
    emitted = set(glitched.ids("contacts"))
    state = glitched.final_state
    for _ in range(2):
        healthy = run_tap(config, state=state, catalog=selecting("contacts"))
        assert healthy.returncode == 0, healthy.stderr
        emitted |= set(healthy.ids("contacts"))
        state = healthy.final_state
    assert edited <= emitted


def test_a_resumed_cursor_answered_with_an_empty_end_starts_the_pass_over(sandbox):
    sandbox.reset(contacts=COUNT, list_shape="cursor")
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    cut = runs.run(max_requests_per_run=4)  # 849 stops mid-list, keeping its cursor
    assert "Organization 849 paused" in cut.stderr
    sandbox.new_day()
    # The kept cursor has expired: its answer is an empty end of the list.
    sandbox.update(glitches=[{"kind": "empty_end", "at": runs.request_number(), "org": 849}])
    resumed = runs.run()
    assert "the pass starts over from the first page" in resumed.stderr
    assert keys(resumed, 849) == {k for k in runs.live() if k[0] == 849}

    sandbox.update(glitches=[])
    runs.retires_deletions_within_two_passes()


def test_a_cursor_list_ending_early_is_stopped_by_the_mass_deletion_guard(sandbox):
    sandbox.reset(contacts=COUNT, list_shape="cursor")
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    # next_cursor null after 3 pages of 849: nothing in the answers contradicts it.
    sandbox.update(glitches=[{"kind": "end", "at": runs.request_number(after=2), "org": 849}])
    guarded = runs.run()
    assert activations(guarded) == 0
    assert "this pass holds 60 records, the last complete one 200" in guarded.stderr
    assert "TAP_MOKAPEN_MAX_DELETED_SHARE=1" in guarded.stderr


def test_a_plain_list_clamped_at_an_odd_size_retires_nothing(sandbox):
    sandbox.reset(contacts=COUNT, list_shape="array")
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    first_request = runs.request_number()
    sandbox.update(glitches=[{"kind": "short", "keep": 77, "at": 1, "times": 10**6, "org": 849}])
    clamped = runs.run()
    # The versioned stream probed page 2 although 77 looks like no page size.
    assert runs.request_number() - first_request == 2
    assert activations(clamped) == 0
    assert "this pass holds 77 records, the last complete one 200" in clamped.stderr
    # A clamp that lasts is no baseline: it keeps being refused until someone confirms.
    for _ in range(2):
        assert "the last complete one 200" in runs.run().stderr


def test_a_real_mass_deletion_is_retired_once_confirmed(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    deleted = runs.delete(849, 150)
    guarded = runs.run()
    assert activations(guarded) == 0
    assert "this pass holds 50 records, the last complete one 200" in guarded.stderr
    runs.run(max_deleted_share=1)  # confirmed: a complete pass again
    assert not (runs.table.retired & deleted)
    runs.run()
    assert deleted <= runs.table.retired


def test_records_edited_mid_pass_in_a_list_by_last_update_are_never_retired(sandbox):
    """Edited records jump to page 1, behind the reader: the pages alone miss them, and
    only the ids read twice say so. The pass reads the front of the list again at its
    end (about one request), so every pass sees every record, and the passes count."""
    sandbox.reset(contacts=COUNT, edits_move_to_front=True, drift={"update": 2})
    runs = Runs(sandbox)
    caught_up = False
    for _ in range(4):
        run = runs.run()
        caught_up |= "edited during the pass were read again" in run.stderr
        assert runs.live() <= keys(run), "a pass missed an edited record"
    assert caught_up, "no pass met an edited record behind the reader: the test proves nothing"
    assert runs.table.activations >= 2


def test_an_organization_missing_from_one_listing_keeps_its_rows(sandbox):
    sandbox.reset(contacts=COUNT, list_shape={"organizations": "data_list"})
    runs = Runs(sandbox, organization_ids=[849], all_organizations=True)
    runs.run()
    runs.run()
    # 850 is missing from the listing, and nothing in the answer says so.
    sandbox.update(
        glitches=[{"kind": "short", "keep": 1, "entity": "organizations", "at": 1, "times": 10**6}]
    )
    missing = runs.run(organization_ids=[849])
    assert activations(missing) == 0
    assert "organization(s) 850 of the last complete pass are missing" in missing.stderr
    assert {k for k in runs.live() if k[0] == 850} <= runs.table.live
    # Confirmed gone: its rows are retired after two passes.
    runs.run(removed_organizations=[850])
    last = runs.run(removed_organizations=[850])
    assert activations(last) == 1
    assert {k for k in runs.table.rows if k[0] == 850} <= runs.table.retired


def test_a_failed_organization_listing_activates_nothing_and_exits_1(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox, organization_ids=[849], all_organizations=True)
    runs.run()
    runs.run()
    # The listing says two organizations but holds one, asked twice: it contradicts itself.
    sandbox.update(
        glitches=[{"kind": "short", "keep": 1, "entity": "organizations", "at": 1, "times": 10**6}]
    )
    failed = runs.run(expect=1)
    assert activations(failed) == 0
    assert "all_organizations could not list the organizations" in failed.error_lines()[-1]
    assert len(failed.records("contacts")) == COUNT  # the configured organization is read


def test_a_server_clamping_pages_without_saying_so_is_read_at_the_size_it_serves(sandbox):
    sandbox.reset(contacts=COUNT, max_per_page=20, paging_lies={"per_page": 1000})
    run = run_tap(sandbox.config(), catalog=selecting("contacts"))
    assert run.returncode == 0, run.stderr
    assert set(run.ids("contacts")) == {r["id"] for r in sandbox.records("contacts")}
    assert (
        sum(
            "pages hold 20 records where per_page says 1000" in line
            for line in run.stderr.splitlines()
        )
        == 1
    )
    # Ten pages and the first asked twice.
    assert sandbox.stats()["pages_served"]["849/contacts"] == 11


def test_an_absurd_total_counts_as_unknown(sandbox):
    sandbox.reset(contacts=COUNT, paging_lies={"total": 10**12})
    run = run_tap(
        sandbox.config(page_size=SIZE, progress_log_seconds=0), catalog=selecting("contacts")
    )
    assert run.returncode == 0, run.stderr
    assert set(run.ids("contacts")) == {r["id"] for r in sandbox.records("contacts")}
    assert "10000000000" not in run.stderr
    assert "unbelievable 'total'" in run.stderr
    plan = run_tap(sandbox.config(page_size=SIZE), catalog=selecting("contacts"), args=["--plan"])
    assert plan.returncode == 0, plan.stderr
    assert not re.search(r"\d{9}", plan.stdout + plan.stderr), plan.stdout


def test_a_cursor_list_ending_early_leaves_no_gap_in_an_incremental_stream(
    sandbox, skipping_clock: SkippingClock
):
    """Nothing in a cursor answer says the list ended early; holding far fewer records
    than the last complete pass keeps the bookmark, so the next run emits the rest."""
    sandbox.reset(contacts=COUNT, list_shape="cursor")
    config = sandbox.config(page_size=SIZE)
    first = run_tap(config, catalog=selecting("contacts"))
    edited = set(sandbox.mutate("contacts", 849, update=60)["updated"])
    edited |= set(sandbox.mutate("contacts", 849, update=10)["updated"])
    skipping_clock.sleep(3600)
    state, emitted = first.final_state, set()
    for _ in range(2):  # cut short twice running: the short pass is no baseline either
        at = sandbox.stats()["pages_served"]["849/contacts"] + 3
        sandbox.update(glitches=[{"kind": "end", "at": at}])
        cut = run_tap(config, state=state, catalog=selecting("contacts"))
        assert cut.returncode == 0, cut.stderr
        assert "the bookmark stays where it was" in cut.stderr
        emitted |= set(cut.ids("contacts"))
        state = cut.final_state
    assert edited - emitted, "the glitch hid no edited record"

    sandbox.update(glitches=[])
    healthy = run_tap(config, state=state, catalog=selecting("contacts"))
    assert edited <= emitted | set(healthy.ids("contacts"))


def test_a_total_that_falls_before_a_pause_is_still_judged_after_it(sandbox):
    """The fall is kept in the resume point: the resumed run asks for the page past the
    end, which still holds records, so the pass stays incomplete."""
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    shrunk = {"kind": "shrunk_total", "at": runs.request_number(after=3), "times": 10**6}
    sandbox.update(glitches=[{**shrunk, "org": 849}])
    cut = runs.run(max_requests_per_run=6)
    assert "Organization 849 paused" in cut.stderr
    assert "fell_from" in str(cut.final_state)
    sandbox.new_day()
    resumed = runs.run()
    assert activations(resumed) == 0
    assert "holds 20 records" in resumed.stderr  # the page past the end that was set


def test_a_busy_list_with_deletions_during_every_pass_still_retires_them(sandbox):
    """Honest deletions between pages make the total fall; the page past the end is empty,
    so the passes count, and deleted records are retired."""
    sandbox.reset(contacts=COUNT, drift={"delete": 1}, drift_every=3)
    runs = Runs(sandbox)
    for _ in range(4):
        run = runs.run()
        assert "this pass is incomplete" not in run.stderr
    assert runs.table.activations >= 2
    assert runs.table.retired  # rows deleted during the first passes, lacked by two since


def test_a_failure_right_after_a_plain_list_turns_out_paged_leaves_no_gap(sandbox):
    """A plain array that pages without saying so: page 2's answer hands the pass over
    to page numbers, and a record on it fails the stream (strict_records) before the
    page is taken. The next run still emits every record; nothing is taken as read."""
    sandbox.reset(
        contacts=55, list_shape="paged_array", bad_records={"every": 15, "kinds": ["missing_id"]}
    )
    config = sandbox.config(page_size=10, strict_records=True)
    first = run_tap(config, catalog=selecting("contacts"))
    assert first.returncode == 1
    assert sorted(r["id"] for r in first.records("contacts")) == list(range(1, 11))

    sandbox.update(bad_records=None)
    second = run_tap(config, state=first.final_state, catalog=selecting("contacts"))
    assert second.returncode == 0, second.stderr[-2000:]
    emitted = {r["id"] for r in first.records("contacts") + second.records("contacts")}
    assert emitted == {r["id"] for r in sandbox.records("contacts")}


def test_one_process_per_organization_into_one_table_retires_no_other_organizations_row(
    sandbox,
):
    """The fan-out DAG's failing order (849, 850, 849, 849: 850's run failed on the
    second day), each organization its own STATE, every run loaded into one table: a
    run of 849 alone cannot know 850's rows, so it activates nothing, and says why."""
    sandbox.reset(contacts=COUNT)
    alone = {org: Runs(sandbox, organization_ids=[org]) for org in ORGS}
    table = alone[849].table
    alone[850].table = table
    alone[849].run()
    alone[849].delete(849, 2)
    for org in (850, 849, 849, 849):
        run = alone[org].run()
        assert activations(run) == 0
    assert "also installed in organization(s) 850" in run.stderr
    assert "set tables_per_organization" in run.stderr
    assert not table.retired  # 850's 200 rows, and even 849's deletions, stay

    # Tables of its own (a schema per organization, as the fan-out DAG gives): 849's
    # deletions are retired in 849's table, and 850 is never asked about.
    own = Runs(sandbox, organization_ids=[849], tables_per_organization=True)
    listings = sandbox.stats()["pages_served"].get("0/organizations", 0)
    assert listings  # the runs alone asked whether others share the table
    own.run()
    deleted = own.delete(849, 2)
    for _ in range(3):
        own.run()
    assert deleted <= own.table.retired
    assert {org for org, _ in own.table.retired} == {849}
    assert sandbox.stats()["pages_served"].get("0/organizations", 0) == listings  # none asked


@pytest.mark.parametrize(
    "oddities",
    [[], [{"id": "eyJpdiI6Ijg1MCJ9", "encrypted_id": "eyJpdiI6Ijg1MCJ9", "name": "Globex"}]],
    ids=["one listing leaves 850 out", "850 also listed by an encrypted id alone"],
)
def test_an_organization_once_listed_is_not_taken_for_gone_by_one_listing(sandbox, oddities):
    """One process per organization into one table: an organizations list that leaves
    850 out once (a glitch consistent in itself) must not let 849's process retire 850's
    rows; the organizations earlier lists named are remembered (found by a review)."""
    sandbox.reset(
        contacts=COUNT, list_shape={"organizations": "data_list"}, listed_oddities=oddities
    )
    alone = {org: Runs(sandbox, organization_ids=[org]) for org in ORGS}
    table = alone[849].table
    alone[850].table = table
    alone[850].run()
    alone[849].run()
    listed = sandbox.stats()["pages_served"].get("0/organizations", 0)
    sandbox.update(
        glitches=[
            {"kind": "short", "keep": 1, "entity": "organizations", "at": listed + 1, "times": 1}
        ]
    )
    run = alone[849].run()
    assert activations(run) == 0
    assert "850 (listed by an earlier run)" in run.stderr
    assert not {key for key in table.retired if key[0] == 850}
