"""What a pass saw, by id (evidence.py), and the show-route checks (record_checks.py),
in-process: no HTTP."""

from __future__ import annotations

import random

import pytest

from tap_mokapen import evidence, record_checks
from tap_mokapen.list_reader import RecordAnswer


@pytest.mark.parametrize("ids", [[], [1], [1, 2, 3], [5, 36, 37, 10**12, 2**63 - 1]])
def test_ids_round_trip_through_their_compact_text(ids):
    assert evidence.decode_ids(evidence.encode_ids(ids)) == sorted(ids)


@pytest.mark.parametrize("text", [None, 5, "x!", "0", "1.0", "zzzzzzzzzzzzzzzzzzzzz", ["1"]])
def test_text_that_is_not_ids_is_no_ids(text):
    assert evidence.decode_ids(text) == []


def test_a_sample_is_small_and_the_same_however_the_ids_come():
    ids = list(range(1, 100_001))
    one = evidence.IdSample("salt")
    one.offer(ids)
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    other = evidence.IdSample("salt", shuffled[:500])
    other.offer(shuffled[500:] + shuffled[:500])  # read twice, over two runs
    assert one.ids == other.ids and len(one) == evidence.SAMPLE_SIZE
    assert len(evidence.encode_ids(one.ids)) < 8 * evidence.SAMPLE_SIZE
    assert evidence.IdSample.from_state(one.to_state()).ids == one.ids  # type: ignore[union-attr]
    assert evidence.IdSample("other salt", ids).ids != one.ids  # the salt draws the sample


def test_a_sample_is_spread_over_the_whole_list():
    sample = evidence.IdSample("spread", range(1, 10_001))
    assert sum(1 for i in sample.ids if i <= 5_000) in range(30, 71)


def test_seen_ids_count_each_id_once_and_the_repeats():
    seen = evidence.SeenIds()
    huge = evidence.BITMAP_IDS + 5  # kept in a set, not as a bit
    assert seen.add([1, 2, None, 2, huge]) == [1, 2, huge]
    assert seen.add([3, 1, huge, 10**6]) == [3, 10**6]
    assert (len(seen), seen.repeats, seen.low, seen.high) == (5, 3, 1, huge)
    assert 3 in seen and huge in seen and 4 not in seen and 10**7 not in seen


def seen_of(*ids: int) -> evidence.SeenIds:
    seen = evidence.SeenIds()
    seen.add(ids)
    return seen


class FakeRoute:
    """A show route over a set of live ids; optional: it answers 404 to everything."""

    def __init__(self, live: set[int], *, exists: bool = True) -> None:
        self.live, self.exists, self.asked = live, exists, []

    def record(self, record_id: int) -> RecordAnswer:
        self.asked.append(record_id)
        if self.exists and record_id in self.live:
            return RecordAnswer({"id": record_id})
        return RecordAnswer(None, gone=True)


def test_a_404_confirms_a_deletion_only_once_a_seen_id_answered():
    reader = FakeRoute({1, 2, 3})
    route = record_checks.ShowRoute("contacts")
    outcome = record_checks.check(
        reader,
        route,
        missing=[7, 8],
        probed=[],
        proof=3,
        budget=10,  # type: ignore[arg-type]
    )
    # The proof first: an id the pass saw must answer before a 404 means anything.
    assert reader.asked == [3, 7, 8] and outcome.gone == [7, 8] and not outcome.unconfirmed
    assert route.usable is True


def test_without_the_route_nothing_is_confirmed_and_it_is_said_once(caplog):
    reader = FakeRoute({1, 2, 3}, exists=False)
    route = record_checks.ShowRoute("contacts")
    kwargs = {"missing": [7], "probed": [], "proof": 3, "budget": 10}
    first = record_checks.check(reader, route, **kwargs)  # type: ignore[arg-type]
    second = record_checks.check(reader, route, **kwargs)  # type: ignore[arg-type]
    assert first.unconfirmed and second.unconfirmed
    assert reader.asked == [3]  # the proof failed; the second pass asks nothing at all
    assert caplog.text.count("cannot be asked about") == 1


def test_a_live_missing_record_is_found_and_the_budget_holds():
    reader = FakeRoute({1, 2, 3, 9})
    route = record_checks.ShowRoute("contacts")
    outcome = record_checks.check(
        reader,
        route,
        missing=[9, 10, 11, 12],
        probed=[],
        proof=3,
        budget=2,  # type: ignore[arg-type]
    )
    assert [r["id"] for r in outcome.live] == [9] and outcome.asked == 2


def test_probes_ask_past_the_largest_id_and_in_a_gap():
    rng = random.Random(1)
    assert record_checks.probes(seen_of(1, 2, 3), rng) == [4]
    past, gap = record_checks.probes(seen_of(1, 2, 5, 6), rng)
    assert past == 7 and gap in {3, 4}
    assert record_checks.probes(seen_of(), rng) == []
