"""What a real Mokapen (or a server claiming to be one) may send that the sandbox's defaults
do not: the sandbox's fault switches, over real HTTP."""

from __future__ import annotations

import collections

import pytest

from mokapen_sandbox import DEMO_ORGANIZATION_ID
from mokapen_sandbox.breakage import BAD_KINDS
from tap_mokapen import paging
from tap_mokapen.paging import COMMON_PAGE_SIZES
from tests.helpers import run_tap


def test_an_encrypted_organization_id_gives_the_same_keys_as_the_numeric_one(sandbox):
    numeric = run_tap(sandbox.config())
    encrypted_id = f"enc_{DEMO_ORGANIZATION_ID * 7919:x}"
    encrypted = run_tap(sandbox.config(organization_id=encrypted_id))

    assert encrypted.returncode == 0, encrypted.stderr
    for stream in ("contacts", "tasks"):
        keys = {(r["organization_id"], r["id"]) for r in numeric.records(stream)}
        assert {(r["organization_id"], r["id"]) for r in encrypted.records(stream)} == keys
        assert all(type(r["organization_id"]) is int for r in encrypted.records(stream))
    # The state partition keeps the configured spelling (it is how the next run finds it).
    (partition,) = encrypted.final_state["bookmarks"]["contacts"]["partitions"]
    assert partition["context"] == {"organization_id": encrypted_id}
    # The token answer said which organization it is: no request more than with the number.
    assert sandbox.stats()["token_requests"] == 2
    assert (
        "Organization enc_" in encrypted.stderr
        and f"is organization {DEMO_ORGANIZATION_ID}" in (encrypted.stderr)
    )


def expected_ids(sandbox, stream: str) -> set[int]:
    return {r["id"] for r in sandbox.records(stream)}


SHAPES = ["length_aware", "simple", "cursor", "resource", "data_list", "array"]


@pytest.mark.parametrize("envelope", [False, True], ids=["bare", "enveloped"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_list_shape_on_every_endpoint_yields_every_record(sandbox, shape, envelope):
    sandbox.reset(list_shape=shape, envelope=envelope)
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    for stream in ("contacts", "tasks"):
        assert run.ids(stream) == collections.Counter(expected_ids(sandbox, stream))
    assert set(run.ids("organizations")) == {849, 850}
    run.assert_records_match_schemas()
    pages = sandbox.stats()["pages_served"]
    if shape in ("data_list", "array"):
        # One request, and a second when the list is as long as a page could be (500
        # contacts, 200 tasks): it might be page 1 of a list paged without saying so.
        for stream in ("contacts", "tasks"):
            count = len(expected_ids(sandbox, stream))
            probe = count == 100 or count in COMMON_PAGE_SIZES
            assert pages[f"849/{stream}"] == 1 + probe
    else:
        assert pages["849/contacts"] == 5
        assert pages["849/tasks"] == 2


def test_a_default_run_with_organizations_as_a_bare_array_extracts_everything(sandbox):
    sandbox.reset(list_shape={"organizations": "array"})
    run = run_tap(sandbox.config(), catalog=None)  # the tap's own default selection

    assert run.returncode == 0, run.stderr
    assert set(run.ids("contacts")) == expected_ids(sandbox, "contacts")
    assert set(run.ids("tasks")) == expected_ids(sandbox, "tasks")
    assert set(run.ids("organizations")) == {849, 850}


def test_a_paused_cursor_stream_resumes_at_its_cursor(sandbox):
    sandbox.reset(list_shape="cursor", quota_cutoff_after=3)
    first = run_tap(sandbox.config(page_size=100))
    (partition,) = first.final_state["bookmarks"]["contacts"]["partitions"]
    assert partition["resume"]["shape"] == "cursor" and partition["resume"]["cursor"]
    deleted = set(sandbox.mutate("contacts", delete=30)["deleted"])
    sandbox.new_day()
    sandbox.update(quota_cutoff_after=None)
    second = run_tap(sandbox.config(page_size=100), state=first.final_state)

    assert second.returncode == 0, second.stderr
    seen = set(first.ids("contacts")) | set(second.ids("contacts"))
    assert expected_ids(sandbox, "contacts") <= seen
    assert deleted  # deletions shift no cursor page: nothing read twice, nothing skipped
    assert not set(first.ids("contacts")) & set(second.ids("contacts"))


MISBEHAVING = ["next_page_url_never_null", "huge_last_page", "endless_empty_pages"]


@pytest.mark.parametrize("fault", MISBEHAVING)
def test_a_paginator_announcing_pages_it_does_not_have_costs_one_request(sandbox, fault):
    sandbox.reset(paginator_fault=fault)
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    assert set(run.ids("contacts")) == expected_ids(sandbox, "contacts")
    pages = sandbox.stats()["pages_served"]
    # 5 pages of contacts and 2 of tasks, plus at most the one empty page that ends each.
    assert pages["849/contacts"] <= 6 and pages["849/tasks"] <= 3


def test_a_flapping_total_is_bounded_and_loses_nothing(sandbox):
    sandbox.reset(paginator_fault="total_flapping")
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    assert set(run.ids("contacts")) == expected_ids(sandbox, "contacts")
    assert sandbox.stats()["pages_served"]["849/contacts"] <= paging.budget(5)
    assert set(run.ids("organizations")) == {849, 850}


def test_bad_records_are_rejected_and_every_good_record_arrives(sandbox):
    sandbox.reset(bad_records={"every": 25, "kinds": list(BAD_KINDS)})
    run = run_tap(sandbox.config(page_size=100))

    assert run.returncode == 0, run.stderr
    run.assert_records_match_schemas()
    rejected = run.records("rejected_records")
    for stream in ("contacts", "tasks"):
        bad = {b["id"]: b["kind"] for b in sandbox.bad_records(stream)}
        rejecting = {"missing_id", "string_id", "bad_updated_at", "int_updated_at", "deep_nesting"}
        must_reject = {i for i, kind in bad.items() if kind in rejecting}
        assert set(run.ids(stream)) == expected_ids(sandbox, stream) - must_reject
        assert len([r for r in rejected if r["stream"] == stream]) == len(must_reject)
    reasons = {r["reason"] for r in rejected}
    assert {"the record has no id", "id is string, not an integer"} <= reasons
    assert "updated_at is not a timestamp" in reasons
    assert "a value is nested deeper than 64 levels" in reasons
    # A value of another type goes to a field of its own; the repaired string is kept.
    contacts_schema = run.schemas()["contacts"]["properties"]
    assert contacts_schema["company_id__string"]["type"] == ["string", "null"]
    assert contacts_schema["name__object"]["type"] == ["object", "null"]
    assert contacts_schema["company_id"]["type"] == ["integer", "null"]
    assert "invalid UTF-8 sequence(s) replaced" in run.stderr
    assert "record(s) rejected (see rejected_records)" in run.stderr


def test_strict_records_fail_the_stream_cleanly_and_the_others_go_on(sandbox):
    sandbox.reset(bad_records={"every": 150, "kinds": ["missing_id"]})
    run = run_tap(sandbox.config(page_size=100, strict_records=True))

    assert run.returncode == 1
    assert "strict_records is on" in run.stderr and "Traceback" not in run.stderr
    assert len(run.records("contacts")) == 100  # the page before the bad one
    assert set(run.ids("organizations")) == {849, 850}
    assert "stream(s) failed: 'contacts' of organization 849, 'tasks' of organization 849" in (
        run.stderr
    )


def test_new_fields_reach_the_output_with_a_schema_and_can_be_frozen(sandbox):
    sandbox.reset(extra_fields=True)
    run = run_tap(sandbox.config(page_size=100))
    assert run.returncode == 0, run.stderr
    schema = run.schemas()["contacts"]["properties"]
    for field, kind in (("custom_fields", "object"), ("tags", "array"), ("score", "number")):
        assert kind in schema[field]["type"]
        assert f"new field {field} ({kind}) in contacts" in run.stderr
    assert all("legacy_ref" in r for r in run.records("contacts"))
    run.assert_records_match_schemas()

    frozen = run_tap(sandbox.config(page_size=100, freeze_schema=True))
    assert frozen.returncode == 0, frozen.stderr
    assert "custom_fields" not in frozen.schemas()["contacts"]["properties"]
    assert not any("custom_fields" in r for r in frozen.records("contacts"))
    assert "new field custom_fields (object) in contacts: left out" in frozen.stderr
    assert len(frozen.records("contacts")) == 500


def test_a_failing_stream_does_not_stop_the_others(sandbox):
    run = run_tap(sandbox.config(scope="contacts.read"))  # tasks.read missing: 403 on tasks
    assert run.returncode == 1
    assert len(run.records("contacts")) == 500
    assert set(run.ids("organizations")) == {849, 850}
    last = run.error_lines()[-1]
    assert "1 stream(s) failed: 'tasks' of organization 849" in last
    assert "completed: contacts, organizations" in last
