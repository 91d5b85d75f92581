"""The page size: the default unless the server will not serve it (page_size.py).

Each test serves 2,500 contacts and 700 tasks from a sandbox whose largest page is
300 (or 5,000), behaving above it as the switch says, and counts the requests a
sync spends: ceil(records / largest honoured page) per stream, plus what finding a
refused size costs, plus the token request.
"""

from __future__ import annotations

import datetime as dt
import math
import typing as t

import pytest

from tests.helpers import run_tap, selecting

CONTACTS, TASKS = 2500, 700
ORGANIZATION = 849


def sync(sandbox, state: dict | None = None, **config: t.Any):
    """A run with the tap's own page size; a first run (no state) must emit every record."""
    run = run_tap(sandbox.config(**{"page_size": None, **config}), state=state)
    assert run.returncode == 0, run.stderr
    if state is not None:  # the bookmark lets through only what changed since
        return run
    assert run.ids("contacts") == {r["id"]: 1 for r in sandbox.records("contacts")}
    assert run.ids("tasks") == {r["id"]: 1 for r in sandbox.records("tasks")}
    return run


def learned(run, stream: str) -> dict[str, t.Any]:
    (partition,) = run.final_state["bookmarks"][stream]["partitions"]
    return partition["page_size"]


def kept(run, stream: str) -> dict[str, t.Any] | None:
    """What STATE keeps of the page size (None: nothing, the default is asked for)."""
    (partition,) = run.final_state["bookmarks"][stream]["partitions"]
    return partition.get("page_size")


def pages(largest: int) -> int:
    """Pages of a full sync: contacts, tasks and the organizations list (one page)."""
    return math.ceil(CONTACTS / largest) + math.ceil(TASKS / largest) + 1


def requests_spent(sandbox) -> tuple[int, int]:
    stats = sandbox.stats()
    return stats["api_requests"], stats["token_requests"]


def serve(sandbox, **switches: t.Any) -> None:
    sandbox.reset(contacts=CONTACTS, tasks=TASKS, **switches)


def test_a_server_honouring_large_pages_is_read_1000_a_page(sandbox):
    serve(sandbox, max_per_page=5000)
    run = sync(sandbox)
    assert requests_spent(sandbox) == (pages(1000), 1)
    assert kept(run, "contacts") is None  # nothing to remember: the default is served


def test_a_clamping_server_costs_nothing_and_needs_nothing_remembered(sandbox):
    """Page numbers follow the server's own per_page: asking for 1000 where 300 are
    served costs no request, on the first run or any later one."""
    serve(sandbox, max_per_page=300)
    first = sync(sandbox)
    assert requests_spent(sandbox) == (pages(300), 1)
    assert kept(first, "contacts") is None

    serve(sandbox, max_per_page=300)
    second = sync(sandbox, state=first.final_state)
    assert requests_spent(sandbox) == (pages(300), 1)
    assert kept(second, "contacts") is None


def test_a_refused_page_size_is_lowered_to_the_named_limit_and_trusted_once_confirmed(sandbox):
    serve(sandbox, max_per_page=300, above_max_per_page="refuse")
    first = sync(sandbox)
    # One refused request per stream (contacts, tasks, organizations) on the first run.
    assert requests_spent(sandbox) == (pages(300) + 3, 1)
    assert sandbox.stats()["pages_too_large"] == 3
    assert learned(first, "tasks")["largest"] == 300
    assert first.stderr.count("refused pages of 1000") == 3

    # A refusal seen once is not trusted: the second run asks again, and is refused again.
    serve(sandbox, max_per_page=300, above_max_per_page="refuse")
    second = sync(sandbox, state=first.final_state)
    assert requests_spent(sandbox) == (pages(300) + 3, 1)
    assert learned(second, "tasks") | {"checked_at": None} == {
        "largest": 300,
        "how": "refused",
        "confirmed": True,
        "checked_at": None,
    }

    serve(sandbox, max_per_page=300, above_max_per_page="refuse")
    third = sync(sandbox, state=second.final_state)
    assert requests_spent(sandbox) == (pages(300), 1)  # no learning request
    assert "refused" not in third.stderr


def test_one_transient_refusal_does_not_pin_a_small_page(sandbox):
    # The first run meets one 422 "not greater than 10" (say, a deploy gone wrong).
    serve(sandbox, max_per_page=10, above_max_per_page="refuse")
    first = run_tap(sandbox.config(page_size=None), catalog=selecting("contacts"))
    assert first.returncode == 0, first.stderr
    assert learned(first, "contacts")["largest"] == 10

    serve(sandbox, max_per_page=5000)  # the server is itself again
    second = run_tap(
        sandbox.config(page_size=None), state=first.final_state, catalog=selecting("contacts")
    )
    assert second.returncode == 0, second.stderr
    assert sandbox.stats()["pages_served"]["849/contacts"] == math.ceil(CONTACTS / 1000)
    assert kept(second, "contacts") is None  # served at 1000: the limit is forgotten


def test_a_refusal_naming_no_limit_halves_the_page(sandbox):
    serve(sandbox, max_per_page=300, above_max_per_page="refuse_vaguely")
    first = sync(sandbox)
    # 1000 and 500 refused, 250 served, for each of the three streams.
    assert requests_spent(sandbox) == (pages(250) + 6, 1)
    assert learned(first, "contacts")["largest"] == 250


@pytest.mark.parametrize(
    "switches",
    [
        {"above_max_per_page": "fail"},
        {"above_max_per_page": "slow", "slow_page_seconds": 2},
    ],
    ids=["5xx", "timeout"],
)
def test_large_pages_that_keep_failing_are_tried_smaller(sandbox, switches):
    serve(sandbox, max_per_page=300, **switches)
    run = run_tap(
        sandbox.config(page_size=None, request_deadline_seconds=0.3),
        catalog=selecting("contacts"),
    )
    assert run.returncode == 0, run.stderr
    assert run.ids("contacts") == {r["id"]: 1 for r in sandbox.records("contacts")}
    # Three times at 1000, three at 500, then 250 works; the size is kept as learned.
    assert learned(run, "contacts") | {"checked_at": None} == {
        "largest": 250,
        "how": "failed",
        "confirmed": False,
        "checked_at": None,
    }
    assert "failed pages of 500" in run.stderr


def test_faults_at_every_size_end_in_the_usual_retries_not_a_failure(sandbox):
    # 13 answers fail whatever the size: 1000, 500, 250 and 125 three times each, and
    # the first at 100; below 100 the tap does not shrink, it retries, and completes.
    serve(sandbox, faults=[{"at": 1, "kind": "500", "times": 13}])
    run = run_tap(sandbox.config(page_size=None), catalog=selecting("contacts"))
    assert run.returncode == 0, run.stderr
    assert run.ids("contacts") == {r["id"]: 1 for r in sandbox.records("contacts")}
    assert learned(run, "contacts")["largest"] == 100


def test_a_configured_page_size_is_asked_for_as_it_is(sandbox):
    serve(sandbox, max_per_page=5000)
    sync(sandbox, page_size=250)
    assert requests_spent(sandbox) == (pages(250), 1)


def test_a_refused_configured_page_size_names_the_setting_and_completes(sandbox):
    serve(sandbox, max_per_page=300, above_max_per_page="refuse")
    run = sync(sandbox, page_size=2000)
    assert "page_size=2000" in run.stderr and "Set page_size to at most 300" in run.stderr


def test_a_week_old_page_size_is_checked_again(sandbox):
    serve(sandbox, max_per_page=5000)
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=8)).isoformat()
    remembered = {"largest": 300, "checked_at": long_ago, "how": "refused", "confirmed": True}
    state = {
        "bookmarks": {
            stream: {
                "partitions": [
                    {"context": {"organization_id": ORGANIZATION}, "page_size": remembered}
                ]
            }
            for stream in ("contacts", "tasks")
        }
    }
    run = sync(sandbox, state=state)
    assert "Re-checking the page size" in run.stderr
    assert requests_spent(sandbox) == (pages(1000), 1)  # Mokapen raised its limit
    assert kept(run, "contacts") is None  # and the old one is forgotten


def test_a_page_size_checked_in_the_future_is_not_trusted(sandbox):
    # A wrong clock once wrote a checked_at years ahead: it would pin 10 a page until then.
    serve(sandbox, max_per_page=5000)
    remembered = {
        "largest": 10,
        "checked_at": "2099-01-01T00:00:00.000000Z",
        "how": "refused",
        "confirmed": True,
    }
    partition = {"context": {"organization_id": ORGANIZATION}, "page_size": remembered}
    state = {"bookmarks": {"contacts": {"partitions": [partition]}}}
    run = run_tap(sandbox.config(page_size=None), state=state, catalog=selecting("contacts"))
    assert run.returncode == 0, run.stderr
    assert sandbox.stats()["pages_served"]["849/contacts"] == math.ceil(CONTACTS / 1000)
    assert kept(run, "contacts") is None  # served at 1000: the wrong-clock 10 is gone
