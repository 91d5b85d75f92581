"""What a stored file or a server's listing can turn against the data (the third hostile
round): a table version from the future, organization ids as text or as objects."""

from __future__ import annotations

from tests.test_completeness import COUNT, Runs, activations


def test_a_table_version_from_the_future_is_never_activated(sandbox):
    sandbox.reset(contacts=COUNT)
    runs = Runs(sandbox)
    runs.run()
    runs.run()
    assert runs.state is not None
    contacts = runs.state["bookmarks"]["contacts"]
    contacts.pop("table_version", None)  # removed by hand to unstick a pass
    contacts["table_complete"]["version"] = 10**15  # ahead of the clock
    run = runs.run()  # Runs.run asserts no live row was retired
    assert activations(run) == 0
    assert "not older than this pass's" in run.stderr
    runs.retires_deletions_within_two_passes()


def test_a_confirmation_of_an_organization_gone_expires_when_it_is_listed_again(sandbox):
    sandbox.reset(contacts=COUNT, list_shape={"organizations": "data_list"})
    runs = Runs(sandbox, organization_ids=[849], all_organizations=True)
    runs.run()
    runs.run()
    cut_850 = [{"kind": "short", "keep": 1, "entity": "organizations", "at": 1, "times": 10**6}]
    sandbox.update(glitches=cut_850)
    runs.run(organization_ids=[849], removed_organizations=[850])  # the user confirms
    sandbox.update(glitches=[])  # the app is reinstalled: 850 is listed again
    back = runs.run(removed_organizations=[850])
    assert "850 is in removed_organizations but is read again" in back.stderr
    runs.run(removed_organizations=[850])
    sandbox.update(glitches=cut_850)  # one listing misses 850 again, for two passes
    for _ in range(2):
        missing = runs.run(organization_ids=[849], removed_organizations=[850])
        assert activations(missing) == 0  # Runs.run asserts no live row retired
