"""deletions.py in-process: when a table version may be activated, and when never."""

from __future__ import annotations

from tap_mokapen.deletions import (
    TABLE_COMPLETE,
    TABLE_VERSION,
    PassOutcome,
    TableVersions,
    forget,
)
from tap_mokapen.state import TABLE_PASS, Partition

ORGS = [849, 850]


def owned(partition: dict, *, resuming: bool | None = None) -> Partition:
    """The partition's STATE as its owner (state.py) holds it; ``resuming``: a pass's
    resume point is there (True) or not (False)."""
    if resuming:
        partition.setdefault("resume", {"next_page": 2})
    elif resuming is False:
        partition.pop("resume", None)
    return Partition(partition, "2026-12-02T00:00:00.000000Z")


def begin(versions: TableVersions, partition: dict, version: int, *, resuming: bool) -> bool:
    return versions.begin_pass(owned(partition, resuming=resuming), version)


def start(versions: TableVersions, partition: dict, *, resuming: bool = False) -> bool:
    return begin(versions, partition, versions.open(ORGS), resuming=resuming)


def whole(org: int, records: int = 100, last: int | None = None) -> PassOutcome:
    """An organization's pass whose answers agreed."""
    return PassOutcome(org, None, records, last)


def complete_pass(state: dict, orgs=ORGS, **kwargs) -> int | None:
    """One pass over every organization in ``orgs``; the version it activates, if any."""
    versions = TableVersions("contacts", state, **kwargs)
    version = versions.open(orgs)
    activated = None
    for org in orgs:
        partition: dict = {}
        begin(versions, partition, version, resuming=False)
        activated = versions.completed(whole(org), owned(partition))
    return activated


def test_a_version_is_activated_when_the_next_complete_pass_ends():
    state: dict = {}
    a, b = {}, {}
    versions = TableVersions("contacts", state)
    start(versions, a)
    first = versions.open(ORGS)
    assert versions.completed(whole(849), owned(a)) is None  # 850 has not completed
    assert state[TABLE_VERSION]["done"] == ["849"]

    # The next run (a new object on the same state) keeps the version of the open pass.
    resumed = TableVersions("contacts", state)
    assert resumed.open(ORGS) == first
    start(resumed, b)
    # The first complete pass activates nothing: a row it lacked may be back in the next.
    assert resumed.completed(whole(850), owned(b)) is None
    assert state[TABLE_VERSION] == {"version": first, "closed": True}
    assert state[TABLE_COMPLETE] == {"version": first, "organizations": ["849", "850"]}
    # The second complete pass activates the first's version.
    assert complete_pass(state) == first
    assert complete_pass(state) > first


def test_a_pass_resumed_under_another_version_starts_over():
    state: dict = {}
    a: dict = {}
    versions = TableVersions("contacts", state)
    start(versions, a)
    old = a[TABLE_PASS]["version"]
    state[TABLE_VERSION]["closed"] = True  # that pass ended; a new pass begins
    new = versions.open(ORGS)
    assert new > old
    assert not begin(versions, a, new, resuming=True)  # its first pages carry the old one
    # A resume point from before detect_deletions was set has no pass at all: over too.
    assert not begin(TableVersions("contacts", {}), {}, new, resuming=True)
    # Under its own version it resumes.
    assert begin(versions, a, new, resuming=True)


def test_a_rejection_in_any_run_of_the_pass_keeps_it_from_counting():
    state: dict = {}
    a: dict = {}
    versions = TableVersions("contacts", state)
    start(versions, a)
    owned(a).note_rejected()  # run 1 rejects a record, then pauses
    later = TableVersions("contacts", state)
    assert start(later, a, resuming=True)  # run 2 resumes the same pass, rejects nothing
    assert later.completed(whole(849), owned(a)) is None
    assert state[TABLE_VERSION]["closed"]  # the next pass takes a new version
    assert TABLE_COMPLETE not in state


def test_a_doubted_pass_does_not_count():
    state: dict = {}
    complete_pass(state)
    versions = TableVersions("contacts", state)
    version = versions.open(ORGS)
    for org in ORGS:
        partition: dict = {}
        begin(versions, partition, version, resuming=False)
        doubted = PassOutcome(org, "page 3: an empty page (asked twice)", 100, 100)
        assert versions.completed(doubted, owned(partition)) is None
        assert state[TABLE_VERSION]["closed"]


def test_a_pass_far_smaller_than_the_last_complete_one_waits_for_confirmation(caplog):
    state: dict = {}
    complete_pass(state)
    first = state[TABLE_COMPLETE]["version"]
    for share, expected in ((0.5, None), (1, first)):
        versions = TableVersions("contacts", state, max_deleted_share=share)
        version = versions.open(ORGS)
        activated = None
        for org in ORGS:
            partition: dict = {}
            begin(versions, partition, version, resuming=False)
            activated = versions.completed(PassOutcome(org, None, 300, 1000), owned(partition))
        assert activated == expected
    assert "this pass holds 300 records, the last complete one 1000" in caplog.text
    assert "run once with max_deleted_share set to 1" in caplog.text


def test_a_pass_missing_an_organization_of_the_last_complete_one_activates_nothing(caplog):
    state: dict = {}
    complete_pass(state)
    complete_pass(state)  # 849 and 850, twice: the first activated
    assert complete_pass(state, orgs=[849]) is None  # 850 missing from the listing
    assert "organization(s) 850 of the last complete pass are missing" in caplog.text
    assert "add it to removed_organizations" in caplog.text
    # The last complete pass is still the one with both: a later whole pass activates it.
    assert state[TABLE_COMPLETE]["organizations"] == ["849", "850"]
    assert complete_pass(state) is not None
    # Confirmed gone: the pass without it counts.
    assert complete_pass(state, orgs=[849], removed_organizations=[850]) is not None


def test_a_run_whose_organization_listing_failed_activates_nothing(caplog):
    state: dict = {}
    complete_pass(state)
    versions = TableVersions("contacts", state)
    version = versions.open(ORGS)
    activated = []
    for org in ORGS:
        partition: dict = {}
        begin(versions, partition, version, resuming=False)
        activated.append(versions.completed(whole(org), owned(partition), listing_failed=True))
    assert activated == [None, None]
    assert "the organizations listing failed this run" in caplog.text


def test_a_changed_set_of_organizations_drops_the_open_version_unactivated():
    state: dict = {}
    versions = TableVersions("contacts", state)
    first = versions.open(ORGS)
    versions.completed(whole(849), owned({TABLE_PASS: {"version": first}}))
    assert versions.open([849]) > first  # 850 left: a new version, the old one never active
    assert state[TABLE_VERSION]["done"] == []


def test_a_malformed_version_in_state_starts_a_new_pass():
    state: dict = {TABLE_VERSION: {"version": "soon", "done": "849"}}
    versions = TableVersions("contacts", state)
    assert versions.completed(whole(849), owned({TABLE_PASS: {"version": "soon"}})) is None
    assert isinstance(versions.open(ORGS), int)


def test_a_stream_no_longer_versioned_forgets_its_versions():
    state: dict = {
        TABLE_VERSION: {"version": 1, "organizations": ["849"], "done": []},
        TABLE_COMPLETE: {"version": 0, "organizations": ["849"]},
    }
    partition: dict = {TABLE_PASS: {"version": 1, "rejected": False}}
    forget(state, owned(partition))
    assert state == {} and partition == {}


def test_a_run_whose_listing_failed_keeps_the_open_version_for_the_runs_after():
    state: dict = {}
    versions = TableVersions("contacts", state)
    version = versions.open(ORGS)
    # The listing failed: the run knows only the configured 849.
    assert versions.open([849], listing_unsure=True) == version
    assert state[TABLE_VERSION]["organizations"] == ["849", "850"]
    assert versions.open([849]) > version  # a listing that worked and lacks 850: a new pass
