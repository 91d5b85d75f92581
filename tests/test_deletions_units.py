"""deletions.py in-process: when a table version may be activated, and when never."""

from __future__ import annotations

from tap_mokapen.deletions import TABLE_VERSION, TableVersions


def test_a_version_is_activated_only_once_every_organization_completed_its_pass():
    state: dict = {}
    versions = TableVersions("contacts", state)
    version = versions.current()
    assert versions.current() == version  # one pass, one version, across calls
    assert versions.completed(849, [849, 850], clean=True) is None
    assert state[TABLE_VERSION] == {"version": version, "done": ["849"]}

    # The next run (a new object on the same state) keeps the version of the open pass.
    resumed = TableVersions("contacts", state)
    assert resumed.current() == version
    assert resumed.completed("850", [849, 850], clean=True) == version
    assert TABLE_VERSION not in state  # closed: the next pass gets a new version


def test_a_pass_with_rejected_records_never_activates():
    state: dict = {}
    versions = TableVersions("contacts", state)
    versions.current()
    assert versions.completed(849, [849], clean=False) is None
    assert state[TABLE_VERSION]["done"] == []


def test_a_malformed_version_in_state_starts_a_new_pass():
    state: dict = {TABLE_VERSION: {"version": "soon", "done": "849"}}
    versions = TableVersions("contacts", state)
    assert versions.completed(849, [849], clean=True) is None  # nothing open to activate
    assert isinstance(versions.current(), int)
