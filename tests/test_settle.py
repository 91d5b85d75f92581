"""Settling a total that over-counts must never retire a live row: attacks found by a
hostile review of the rule (list_pass.py ``_settle``), each a sequence of server
behaviours replayed into one table that applies ACTIVATE_VERSION as target-postgres does
(``Runs`` asserts after every run that no live row was retired)."""

from __future__ import annotations

import json

from tap_mokapen import resync
from tap_mokapen.evidence import decode_ids
from tests.test_completeness import Runs

N = 200


def first_deleted(sandbox, count: int) -> int:
    """The id the sandbox deletes first after a reset (its mutations are seeded)."""
    sandbox.reset(contacts=count)
    (deleted,) = sandbox.mutate("contacts", 849, delete=1)["deleted"]
    return deleted


def contacts_partition(state: dict) -> dict:
    (part,) = state["bookmarks"]["contacts"]["partitions"]
    return part


def sparse_list_read_whole(sandbox) -> tuple[Runs, list[int]]:
    """1,000 contacts read by two complete passes, then 100 deleted (ids sparse) and read
    by a third: the runs, and the live ids in order."""
    sandbox.reset(contacts=1000)
    runs = Runs(sandbox, organization_ids=[849], tables_per_organization=True, page_size=100)
    runs.run()
    runs.run()
    runs.delete(849, 100)
    runs.run()
    return runs, sorted(r["id"] for r in sandbox.records("contacts", 849))


def test_a_few_records_cut_from_the_end_after_complete_passes_are_never_retired(sandbox):
    """Found by a review: ids made sparse by deletions, then the last few records cut with
    the total still whole, where the sample of the last complete pass holds none of them
    and the id after the last one kept is deleted (so probes past the end meet 404s).
    Passes settled that way count, but a settled pass activates nothing and is never
    activated: the cut rows stay live."""
    for _ in range(30):  # the sample's salt is random: a cut it misses is found quickly
        runs, live = sparse_list_read_whole(sandbox)
        sampled = set(decode_ids(contacts_partition(runs.state)["id_sample"]["ids"]))
        kept = next(
            (
                k
                for k in range(len(live) - 1, len(live) - 100, -1)
                if live[k - 1] + 1 not in live and not sampled & set(live[k:])
            ),
            None,
        )
        if kept is not None:
            break
    assert kept is not None
    sandbox.update(list_cut=(kept + 0.5) / len(live), paging_lies={"total": len(live)})
    for _ in range(4):
        runs.run()  # Runs.run asserts that no live row was retired
    assert not ({(849, i) for i in live[kept:]} & runs.table.retired)


def test_a_record_the_probe_found_live_joins_the_ids_at_risk(sandbox):
    """The list ends at x on its first pass ever; the probe past the end finds x + 1 live
    and emits it. Then x is deleted and the list ends at x - 1: passes settle, and x + 1,
    live and never read again from the list, must stay."""
    x = first_deleted(sandbox, N)
    sandbox.reset(contacts=N, list_cut=(x + 0.5) / N, paging_lies={"total": 2 * N})
    runs = Runs(sandbox, organization_ids=[849], tables_per_organization=True)
    runs.run()
    probed = runs.run()
    assert x + 1 in {r["id"] for r in probed.records("contacts")}
    sandbox.mutate("contacts", 849, delete=1)
    sandbox.update(list_cut=(x - 1 + 0.5) / (N - 1))
    for _ in range(3):
        runs.run()
    assert (849, x + 1) not in runs.table.retired


def test_a_blind_settle_does_not_replace_the_sample_a_later_pass_is_held_to(sandbox):
    """Complete passes, then a tail cut with the total whole (settled), then the
    total cut too (nothing contradicts): the pass that counts by its answers is held to
    the sample of the last pass that knew the tail, whose rows stay."""
    runs, live = sparse_list_read_whole(sandbox)
    k = next(
        k
        for k in range(int(0.95 * len(live)), int(0.8 * len(live)), -1)
        if live[k - 1] + 1 not in set(live)
    )
    sampled = set(decode_ids(contacts_partition(runs.state)["id_sample"]["ids"]))
    sandbox.update(list_cut=(k + 0.5) / len(live), paging_lies={"total": len(live)})
    for _ in range(3):
        runs.run()
    kept = set(decode_ids(contacts_partition(runs.state)["id_sample"]["ids"]))
    assert kept == sampled
    sandbox.update(paging_lies={})
    for _ in range(3):
        runs.run()
    assert not ({(849, i) for i in live[k:]} & runs.table.retired)


def test_resync_does_not_make_a_list_look_never_read(sandbox):
    """A first pass cut short, a pause (the ids at risk dropped), --resync: the next
    pass that ends early is not the list's first, so it settles blind at most."""
    x = first_deleted(sandbox, N)
    sandbox.reset(contacts=N, list_cut=0.8, paging_lies={"total": 2 * N})
    runs = Runs(sandbox, organization_ids=[849], tables_per_organization=True)
    runs.run()
    runs.run(max_requests_per_run=3)
    runs.run()
    runs.state = json.loads(resync.run(json.dumps(runs.state), ["contacts"]))
    sandbox.mutate("contacts", 849, delete=1)
    sandbox.update(list_cut=(x - 1 + 0.5) / (N - 1))
    for _ in range(4):
        runs.run()  # Runs.run asserts that no live row was retired


def test_a_first_pass_abandoned_does_not_make_the_next_one_look_first(sandbox):
    """The list's first pass pauses (its rows loaded); the resumed pass fails at once and
    is abandoned; the next pass that ends early is not the list's first."""
    x = first_deleted(sandbox, N)
    sandbox.reset(contacts=N, list_cut=0.8, paging_lies={"total": 2 * N})
    runs = Runs(sandbox, organization_ids=[849], tables_per_organization=True)
    runs.run(max_requests_per_run=3)
    at = sandbox.stats()["api_requests"] + 1
    sandbox.update(faults=[{"at": at, "kind": "oversized", "times": 5}])
    runs.run(expect=1)
    sandbox.update(faults=[])
    sandbox.mutate("contacts", 849, delete=1)
    sandbox.update(list_cut=(x - 1 + 0.5) / (N - 1))
    for _ in range(4):
        runs.run()  # Runs.run asserts that no live row was retired
