"""What the page size costs in requests, run after run, for each way a server treats a
page larger than it serves.

    .venv/bin/python bench/page_size.py                                  # this checkout
    cd /path/to/old/checkout && /path/to/this/.venv/bin/python bench/page_size.py   # another one

The sandbox serves 5,000 contacts and honours pages of at most 300; above that it
clamps silently, refuses with a 422 naming the limit, refuses without naming it, or
fails with a 500. Three runs follow one another, the STATE carried on, with the tap's
own page size (page_size unset). Each cell is the requests of one run (token request
included) and its exit code. The figures are counts, not times: the tap runs in this
process, its waits skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_mokapen import clock  # noqa: E402
from tests.helpers import Sandbox, SkippingClock, run_tap, selecting  # noqa: E402

CONTACTS, LARGEST = 5000, 300
BEHAVIOURS = ("clamp", "refuse", "refuse_vaguely", "fail")
RUNS = 3


def runs(sandbox: Sandbox, behaviour: str) -> list[str]:
    sandbox.reset(contacts=CONTACTS, max_per_page=LARGEST, above_max_per_page=behaviour)
    state: dict | None = None
    cells = []
    for _ in range(RUNS):
        before = sandbox.stats()
        run = run_tap(
            sandbox.config(page_size=None, max_wait_seconds=120),
            state=state,
            catalog=selecting("contacts"),
        )
        after = sandbox.stats()
        spent = sum(after.get(k, 0) - before.get(k, 0) for k in ("api_requests", "token_requests"))
        cells.append(f"{spent} (exit {run.returncode})")
        state = run.final_state if run.states else state
    return cells


def main() -> None:
    tap_clock = SkippingClock()
    clock.CLOCK = tap_clock
    sandbox = Sandbox()
    sandbox.use_clock(tap_clock)
    floor = -(-CONTACTS // LARGEST) + 1
    print(f"{CONTACTS} contacts, pages of at most {LARGEST}: {floor} requests at best a run")
    print(f"{'above the largest page':<24}" + "".join(f"{f'run {n}':>16}" for n in range(1, 4)))
    try:
        for behaviour in BEHAVIOURS:
            print(f"{behaviour:<24}" + "".join(f"{c:>16}" for c in runs(sandbox, behaviour)))
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
