"""deletions.py in-process: when a table version may be activated, and when never."""

from __future__ import annotations

from tap_mokapen.deletions import TABLE_PASS, TABLE_VERSION, TableVersions, forget

ORGS = [849, 850]


def start(versions: TableVersions, partition: dict, *, resuming: bool = False) -> bool:
    versions.open(ORGS)
    return versions.begin_pass(partition, resuming=resuming)


def test_a_version_is_activated_only_once_every_organization_completed_its_pass():
    state: dict = {}
    a, b = {}, {}
    versions = TableVersions("contacts", state)
    start(versions, a)
    version = versions.open(ORGS)
    assert versions.completed(849, a) is None  # 850 has not completed
    assert state[TABLE_VERSION]["done"] == ["849"]

    # The next run (a new object on the same state) keeps the version of the open pass.
    resumed = TableVersions("contacts", state)
    assert resumed.open(ORGS) == version
    start(resumed, b)
    assert resumed.completed(850, b) == version
    assert state[TABLE_VERSION] == {"version": version, "closed": True}
    assert resumed.open(ORGS) > version  # the next pass gets a new, later version


def test_a_pass_resumed_under_another_version_starts_over():
    state: dict = {}
    a: dict = {}
    versions = TableVersions("contacts", state)
    start(versions, a)
    old = a[TABLE_PASS]["version"]
    state[TABLE_VERSION]["closed"] = True  # that version was activated; a new pass begins
    assert versions.open(ORGS) > old
    assert not versions.begin_pass(a, resuming=True)  # its first pages carry the old one
    # A resume point from before detect_deletions was set has no pass at all: over too.
    assert not TableVersions("contacts", {}).begin_pass({}, resuming=True)
    # Under its own version it resumes.
    assert versions.begin_pass(a, resuming=True)


def test_a_rejection_in_any_run_of_the_pass_keeps_it_from_retiring_rows():
    state: dict = {}
    a: dict = {}
    versions = TableVersions("contacts", state)
    start(versions, a)
    versions.note_rejections(a)  # run 1 rejects a record, then pauses
    later = TableVersions("contacts", state)
    assert start(later, a, resuming=True)  # run 2 resumes the same pass, rejects nothing
    assert later.completed(849, a) is None
    assert state[TABLE_VERSION]["done"] == []


def test_a_changed_set_of_organizations_drops_the_open_version_unactivated():
    state: dict = {}
    versions = TableVersions("contacts", state)
    first = versions.open(ORGS)
    versions.completed(849, {TABLE_PASS: {"version": first}})
    assert versions.open([849]) > first  # 850 left: a new version, the old one never active
    assert state[TABLE_VERSION]["done"] == []


def test_a_malformed_version_in_state_starts_a_new_pass():
    state: dict = {TABLE_VERSION: {"version": "soon", "done": "849"}}
    versions = TableVersions("contacts", state)
    assert versions.completed(849, {TABLE_PASS: {"version": "soon"}}) is None
    assert isinstance(versions.open(ORGS), int)


def test_a_stream_no_longer_versioned_forgets_its_open_version():
    state: dict = {TABLE_VERSION: {"version": 1, "organizations": ["849"], "done": []}}
    partition: dict = {TABLE_PASS: {"version": 1, "rejected": False}}
    forget(state, partition)
    assert state == {} and partition == {}
