"""Ask before retiring: Mokapen's show route settles what no count can.

Mokapen is a Laravel application: beside each list route it serves one record by id
(``GET /api/v1/{organization_id}/contacts/{id}``). When a pass completes, the ids of
the last complete pass's sample (evidence.py) that this pass did not see are asked
for there, up to ``max_record_checks`` a pass:

* a 404 says the record is gone: a deletion, confirmed;
* the record says this pass missed live records: the list lost some (an unstable
  order, a cut that never contradicts itself), so the pass is incomplete, and the
  record is emitted;
* anything else (another record, no JSON object) says the route is not what it
  should be.

A 404 confirms a deletion only once the route has answered for an id the pass did
see (the *proof*): a server without the route answers 404 to every id. Where the route
is missing or answers wrongly, the tap says so once per run and stream and falls back
to what it can judge without it (the record-count guard, deletions.py). A pass that
has no sample to compare with (a first pass, the first after an upgrade) asks instead
about a few ids it did not see, just past the largest id it saw and in gaps of the
range it saw: a record there proves the list was cut. A pass with no sampled id
missing asks nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import typing as t

if t.TYPE_CHECKING:
    from tap_mokapen.list_reader import ListReader

logger = logging.getLogger("tap-mokapen")

#: Ids asked about where a pass has no sample: just past the largest id it saw, and
#: in the gaps of the range it saw.
PROBES_PAST_THE_END = 1
PROBES_IN_GAPS = 1


class ShowRoute:
    """Whether a stream's show route can be trusted, as far as this run has seen."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        #: True once it answered a record for an id; False once it failed the proof.
        self.usable: bool | None = None

    def failed(self, why: str) -> None:
        if self.usable is not False:
            logger.warning(
                "'%s': the single-record route (GET .../%s/{id}) %s, so a record this pass "
                "did not see cannot be asked about: deletions are judged by the record "
                "counts alone this run",
                self.stream,
                self.stream,
                why,
            )
        self.usable = False


@dataclasses.dataclass
class CheckOutcome:
    """What the checks of one pass found."""

    #: Sampled ids of the last complete pass this pass did not see.
    missing: int = 0
    asked: int = 0
    gone: list[int] = dataclasses.field(default_factory=list)
    live: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    #: The route could not confirm deletions (missing, or answering wrongly).
    unconfirmed: bool = False


class Seen(t.Protocol):
    """The ids a pass saw (evidence.SeenIds)."""

    low: int | None
    high: int | None

    def __len__(self) -> int: ...

    def __contains__(self, value: object) -> bool: ...


def probes(seen: Seen, rng: random.Random) -> list[int]:
    """Ids a pass without a sample asks about: past the largest it saw, and in a gap of
    the range it saw (none where the range has no gap)."""
    low, high = seen.low, seen.high
    if low is None or high is None:
        return []
    asked = [high + step for step in range(1, PROBES_PAST_THE_END + 1)]
    gaps = high - low + 1 - len(seen)
    for _ in range(PROBES_IN_GAPS if gaps > 0 else 0):
        for _ in range(64):  # a gap is found quickly unless the range is nearly full
            candidate = rng.randint(low, high)
            if candidate not in seen:
                asked.append(candidate)
                break
    return asked


def check(
    reader: ListReader,
    route: ShowRoute,
    *,
    missing: list[int],
    probed: list[int],
    proof: int | None,
    budget: int,
    prove_route: bool = False,
) -> CheckOutcome:
    """Ask the show route about ``missing`` sampled ids and ``probed`` ids, within
    ``budget`` requests (the proof included). ``missing`` is asked in the order given:
    the caller shuffles it, so that where the budget ends the ids asked are a random
    sample of the missing ones, not the smallest. ``prove_route``: the route is proven
    now, for this list (it answers for an id the list holds), whatever it answered for
    another: the caller takes every 404 as evidence."""
    outcome = CheckOutcome(missing=len(missing))
    if route.usable is False or budget <= 0 or not (missing or probed):
        outcome.unconfirmed = bool(missing)
        return outcome
    if prove_route or (missing and route.usable is None):
        # A 404 confirms nothing until the route has answered for an id the list holds.
        if proof is None:
            outcome.unconfirmed = True
            return outcome
        answer = reader.record(proof)
        outcome.asked += 1
        if answer.record is None:
            route.failed(
                f"answered {'404' if answer.gone else 'wrongly'} for a record the list holds"
            )
            outcome.unconfirmed = True
            return outcome
        route.usable = True
    for record_id in [*missing, *probed][: budget - outcome.asked]:
        answer = reader.record(record_id)
        outcome.asked += 1
        if answer.record is not None:
            route.usable = True
            outcome.live.append(answer.record)
        elif answer.gone:
            if record_id in missing:
                outcome.gone.append(record_id)
        else:
            route.failed("answered with something that is not that record")
            outcome.unconfirmed = bool(missing)
            return outcome
    # Past the budget, the ids asked are a random sample of the missing ones: all gone
    # says the rest are gone too, as far as a sample can.
    outcome.unconfirmed = bool(missing) and not route.usable
    return outcome
