"""What each glitch of a server costs the warehouse: live rows retired, records never emitted.

    .venv/bin/python bench/glitches.py                       # this checkout's tap
    cd /path/to/old/checkout && /path/to/this/.venv/bin/python bench/glitches.py   # another one

Each row first completes two passes over the sandbox's contacts (so a table version
is there to activate), then runs the tap against the glitch with
``detect_deletions: ["contacts"]`` and applies what it emitted to a table the way
meltanolabs-target-postgres does (tests/helpers.py's ``VersionedTable``). "retired"
counts live rows marked deleted; the incremental row counts edited records that no
run emitted. The tap runs in this process, its waits skipped, against the sandbox on
loopback. The figures are counts, not times: they do not depend on the machine.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_mokapen import clock  # noqa: E402
from tests.helpers import (  # noqa: E402
    Sandbox,
    SkippingClock,
    TapRun,
    VersionedTable,
    run_tap,
    selecting,
)

ORGS = [849, 850]


class Case:
    """Runs over one sandbox, STATE carried on, all loaded into one table."""

    def __init__(self, sandbox: Sandbox, *, orgs: list[int] = ORGS, **config: t.Any) -> None:
        self.sandbox = sandbox
        self.table = VersionedTable()
        self.state: dict | None = None
        self.orgs = orgs
        self.config = {
            "organization_id": None,
            "organization_ids": orgs,
            "detect_deletions": ["contacts"],
            **config,
        }
        self.exit_codes: list[int] = []

    def run(self, **config: t.Any) -> TapRun:
        run = run_tap(
            self.sandbox.config(**{**self.config, **config}),
            state=self.state,
            catalog=selecting("contacts"),
        )
        self.exit_codes.append(run.returncode)
        self.table.load(run)
        if run.states:
            self.state = run.final_state
        return run

    def next_request(self, org: int = 849, after: int = 0) -> int:
        return self.sandbox.stats()["pages_served"].get(f"{org}/contacts", 0) + 1 + after

    def retired(self, orgs: list[int] | None = None) -> int:
        live = {
            (org, r["id"])
            for org in orgs or self.orgs
            for r in self.sandbox.records("contacts", org)
        }
        return len(self.table.retired & live)


def baseline(sandbox: Sandbox, contacts: int, **switches: t.Any) -> None:
    sandbox.reset(contacts=contacts, **switches)


def paged(sandbox: Sandbox, glitch: dict, *, contacts: int = 2000, size: int = 100) -> str:
    baseline(sandbox, contacts)
    case = Case(sandbox, page_size=size)
    case.run()
    case.run()
    after = glitch.pop("after", 0)
    sandbox.update(glitches=[{**glitch, "at": case.next_request(after=after)}])
    case.run()
    return f"{case.retired()} of {contacts * len(ORGS)}"


def expired_cursor(sandbox: Sandbox) -> str:
    baseline(sandbox, 1000, list_shape="cursor")
    case = Case(sandbox, page_size=100)
    case.run()
    case.run()
    case.run(max_requests_per_run=4)  # paused mid-list, each organization keeping a cursor
    sandbox.new_day()
    sandbox.update(glitches=[{"kind": "empty_end", "at": case.next_request(), "org": 849}])
    case.run()
    return f"{case.retired()} of 2000"


def clamped_array(sandbox: Sandbox) -> str:
    baseline(sandbox, 2000, list_shape="array")
    case = Case(sandbox, orgs=[849])
    case.run()
    case.run()
    sandbox.update(glitches=[{"kind": "short", "keep": 777, "at": 1, "times": 10**6}])
    case.run()
    return f"{case.retired()} of 2000"


def cursor_ending_early(sandbox: Sandbox) -> str:
    baseline(sandbox, 2000, list_shape="cursor")
    case = Case(sandbox, orgs=[849], page_size=100)
    case.run()
    case.run()
    sandbox.update(glitches=[{"kind": "end", "at": case.next_request(after=4)}])
    case.run()
    return f"{case.retired()} of 2000"


def organization_missing(sandbox: Sandbox, *, contradicts: bool) -> str:
    # data_list: a listing that cannot show it lacks one; length_aware: one whose total does.
    shape = "length_aware" if contradicts else "data_list"
    baseline(sandbox, 300, list_shape={"organizations": shape})
    case = Case(sandbox, orgs=[849], all_organizations=True, page_size=100)
    case.run()
    case.run()
    organizations_list = {"entity": "organizations", "kind": "short", "keep": 1}
    sandbox.update(glitches=[{**organizations_list, "at": 1, "times": 10**6}])
    run = case.run()
    return f"{case.retired([850])} of 300 (exit {run.returncode})"


def edited_mid_pass(sandbox: Sandbox, *, paused: bool) -> str:
    baseline(sandbox, 1000, edits_move_to_front=True)
    case = Case(sandbox, orgs=[849], page_size=100)
    case.run()
    case.run()
    sandbox.update(drift={"update": 2})
    worst = 0
    for _ in range(4):
        if paused:
            case.run(max_requests_per_run=5)
            sandbox.mutate("contacts", 849, update=50)  # edited during the pause
            sandbox.new_day()
        case.run()
        worst = max(worst, case.retired())
    return f"{worst} of 1000 (most at once, 4 passes)"


def sdk_versions(sandbox: Sandbox) -> str:
    baseline(sandbox, 1000)
    case = Case(sandbox, orgs=[849], page_size=100, detect_deletions=[])
    case.config.pop("detect_deletions")
    case.run(emit_activate_version_messages=True)
    sandbox.update(quota_cutoff_after=3)
    run = case.run(emit_activate_version_messages=True)
    return f"{case.retired()} of 1000 (exit {run.returncode})"


def incremental_short_page(sandbox: Sandbox, tap_clock: SkippingClock) -> str:
    baseline(sandbox, 2000)
    config = sandbox.config(page_size=1000)
    first = run_tap(config, catalog=selecting("contacts"))
    edited = set(sandbox.mutate("contacts", 849, update=1500)["updated"])
    edited |= set(sandbox.mutate("contacts", 849, update=10)["updated"])
    tap_clock.sleep(3600)
    at = sandbox.stats()["pages_served"]["849/contacts"] + 1
    sandbox.update(glitches=[{"kind": "short", "keep": 10, "at": at}])
    state, emitted = first.final_state, set()
    for glitched in (True, False, False):
        run = run_tap(config, state=state, catalog=selecting("contacts"))
        emitted |= set(run.ids("contacts"))
        state = run.final_state
        if glitched:
            sandbox.update(glitches=[])
    return f"{len(edited - emitted)} of {len(edited)} edited never emitted"


def lying_clamp(sandbox: Sandbox) -> str:
    baseline(sandbox, 2000, max_per_page=100, paging_lies={"per_page": 1000})
    runs = [run_tap(sandbox.config(page_size=None), catalog=selecting("contacts")) for _ in "ab"]
    codes = ", ".join(str(r.returncode) for r in runs)
    return f"exit {codes}; {len(set(runs[-1].ids('contacts')))} of 2000 emitted"


def absurd_total(sandbox: Sandbox) -> str:
    baseline(sandbox, 2000, paging_lies={"total": 10**12})
    run = run_tap(sandbox.config(progress_log_seconds=0), catalog=selecting("contacts"))
    plan = run_tap(sandbox.config(), catalog=selecting("contacts"), args=["--plan"])
    progress = next((line for line in run.stderr.splitlines() if "page 1 of" in line), "")
    pages = "page 1 of " + progress.split("page 1 of ", 1)[1].split(";")[0] if progress else "none"
    planned = next((line for line in plan.stdout.splitlines() if "Requests at" in line), "")
    return f"progress: {pages}; plan: {planned.strip()[:60] or plan.stderr.strip()[-60:]}"


def consistent_lie(sandbox: Sandbox, passes: int = 3, **switches: t.Any) -> str:
    """A list that loses records while every count agrees (``switches``), over passes."""
    baseline(sandbox, 2000)
    case = Case(sandbox, orgs=[849], page_size=100)
    case.run()
    case.run()
    sandbox.update(**switches)
    worst = 0
    for _ in range(passes):
        case.run()
        worst = max(worst, case.retired())
    return f"{worst} of 2000 (most at once, {passes} passes)"


def ratchet(sandbox: Sandbox, *, route: bool) -> str:
    """Each pass holds 80% of the one before, the total too."""
    baseline(sandbox, 2000, record_route=route)
    case = Case(sandbox, orgs=[849], page_size=100)
    case.run()
    case.run()
    for share in (0.8, 0.64, 0.51, 0.41):
        sandbox.update(list_cut=share)
        case.run()
    return f"{case.retired()} of 2000 (after 4 passes)"


def upgrade(sandbox: Sandbox) -> str:
    """The first passes after an upgrade from a STATE with no counts, the list at 35%."""
    baseline(sandbox, 2000)
    case = Case(sandbox, orgs=[849], page_size=100)
    case.run()
    case.run()
    for part in (case.state or {}).get("bookmarks", {}).get("contacts", {}).get("partitions", []):
        for key in ("last_complete_pass", "id_sample"):
            part.pop(key, None)
    sandbox.update(list_cut=0.35)
    worst = 0
    for _ in range(3):
        case.run()
        worst = max(worst, case.retired())
    return f"{worst} of 2000 (most at once, 3 passes)"


def main() -> None:
    tap_clock = SkippingClock()
    clock.CLOCK = tap_clock
    sandbox = Sandbox()
    sandbox.use_clock(tap_clock)
    rows: list[tuple[str, t.Callable[[], str]]] = [
        (
            "a 200 with data: [] in the middle (page 5 of 20, twice)",
            lambda: paged(sandbox, {"kind": "empty", "times": 2, "after": 4, "org": 849}),
        ),
        (
            "a non-last page short once (10 where 1,000 were asked)",
            lambda: paged(sandbox, {"kind": "short", "keep": 10, "org": 849}, size=1000),
        ),
        ("a resumed cursor that expired (an empty end)", lambda: expired_cursor(sandbox)),
        ("a plain JSON array clamped at 777", lambda: clamped_array(sandbox)),
        (
            "total/last_page shrinking mid-pass",
            lambda: paged(sandbox, {"kind": "shrunk_total", "times": 10**6, "after": 4}),
        ),
        ("next_cursor null before the end", lambda: cursor_ending_early(sandbox)),
        (
            "all_organizations: 850 missing from a listing",
            lambda: organization_missing(sandbox, contradicts=False),
        ),
        (
            "all_organizations: a listing that contradicts itself",
            lambda: organization_missing(sandbox, contradicts=True),
        ),
        (
            "records edited mid-pass, list by last update",
            lambda: edited_mid_pass(sandbox, paused=False),
        ),
        ("the same, with a quota pause", lambda: edited_mid_pass(sandbox, paused=True)),
        ("the SDK's emit_activate_version_messages", lambda: sdk_versions(sandbox)),
        (
            "incremental: a short page, then two healthy runs",
            lambda: incremental_short_page(sandbox, tap_clock),
        ),
        ("a clamp at 100 answering per_page: 1000", lambda: lying_clamp(sandbox)),
        ("a total of 10^12", lambda: absurd_total(sandbox)),
        ("an unstable order (no ORDER BY)", lambda: consistent_lie(sandbox, unstable_order="all")),
        (
            "an unstable order in a block (one sort key)",
            lambda: consistent_lie(sandbox, unstable_order="block"),
        ),
        ("a list cut to 80%, its total too", lambda: consistent_lie(sandbox, list_cut=0.8)),
        ("a list cut to 55%, its total too", lambda: consistent_lie(sandbox, list_cut=0.55)),
        ("the ratchet: 80% of the pass before, 4 times", lambda: ratchet(sandbox, route=True)),
        ("the ratchet, no show route", lambda: ratchet(sandbox, route=False)),
        ("an upgrade: no counts in STATE, the list at 35%", lambda: upgrade(sandbox)),
    ]
    print(f"| glitch | retired / seen ({Path(clock.__file__).parent.parent.name}) |")
    print("|:--|:--|")
    for name, case in rows:
        try:
            figure = case()
        except Exception as exc:  # a row that breaks is a figure too
            figure = f"broke: {type(exc).__name__}: {str(exc)[:80]}"
        print(f"| {name} | {figure} |", flush=True)
    sandbox.stop()


if __name__ == "__main__":
    main()
