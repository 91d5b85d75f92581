"""Every paginator variation of docs/mokapen-api.md, over real HTTP."""

from __future__ import annotations

import collections
import re

import pytest

from tests.helpers import run_tap

CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

VARIATIONS = {
    "bare paginator": {},
    "envelope": {"envelope": True},
    "per_page ignored (15 a page)": {"ignore_per_page": True},
    "no next_page_url": {"omit_next_page_url": True},
    "no next_page_url nor last_page": {"omit_last_page": True},
    "envelope without paging hints": {"envelope": True, "omit_last_page": True},
    "zone-less timestamps": {"timestamp_style": "plain"},
    "mixed timestamps": {"timestamp_style": "mixed"},
    "unknown extra fields": {"extra_fields": True},
    "server caps per_page": {"max_per_page": 40},
}


@pytest.mark.parametrize("switches", VARIATIONS.values(), ids=VARIATIONS.keys())
def test_every_variation_yields_every_record_once(sandbox, switches):
    sandbox.reset(**switches)
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    for stream in ("contacts", "tasks"):
        expected = collections.Counter(r["id"] for r in sandbox.records(stream))
        assert run.ids(stream) == expected
    run.assert_records_match_schemas()
    for record in run.records("contacts"):
        assert CANONICAL.match(record["updated_at"]), record["updated_at"]
    if switches.get("extra_fields"):  # fields the schema did not name reach the output
        assert all("custom_fields" in r for r in run.records("contacts"))
        assert "custom_fields" in run.schemas()["contacts"]["properties"]


def test_pages_requested_follow_the_server_page_size(sandbox):
    sandbox.reset(ignore_per_page=True)
    run = run_tap(sandbox.config(page_size=100))
    assert run.returncode == 0, run.stderr
    pages = sandbox.stats()["pages_served"]
    assert pages["849/contacts"] == -(-500 // 15)
    assert pages["849/tasks"] == -(-200 // 15)


def test_exact_page_count_when_per_page_is_honoured(sandbox):
    run = run_tap(sandbox.config(page_size=100))
    assert run.returncode == 0, run.stderr
    assert sandbox.stats()["pages_served"] == {
        "849/contacts": 5,
        "849/tasks": 2,
        "0/organizations": 1,
    }


def test_timestamps_are_utc_rfc3339_for_both_documented_shapes(sandbox):
    sandbox.reset(timestamp_style="plain")
    plain = {r["id"]: r["updated_at"] for r in run_tap(sandbox.config()).records("contacts")}
    sandbox.reset(timestamp_style="iso")
    iso = {r["id"]: r["updated_at"] for r in run_tap(sandbox.config()).records("contacts")}
    assert plain == iso
    assert all(CANONICAL.match(v) for v in iso.values())


def test_a_server_repeating_a_page_ends_the_run_with_an_error(sandbox):
    sandbox.reset(repeat_first_page=True)
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 1
    assert "returned page 1 when page 2 was asked for" in run.stderr
    # Each stream stops at its second request; the failing streams do not stop the others.
    assert sandbox.stats()["pages_served"] == {
        "849/contacts": 2,
        "849/tasks": 2,
        "0/organizations": 1,
    }
    assert len(run.records("organizations")) == 2
    assert "2 stream(s) failed: 'contacts' of organization 849, 'tasks' of organization 849" in (
        run.stderr
    )
