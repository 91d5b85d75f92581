"""Whatever a server names its fields, and whatever it puts in them: no crash, no rejected
record, nothing a loader mistakes for its own, and no type learned once that poisons later
runs. Over HTTP, against the sandbox's ``added_fields`` switch."""

from __future__ import annotations

import copy

import pytest

from tests.helpers import run_tap, selecting

#: Names that broke the typed records, or a loader: each on every third contact.
HOSTILE_NAMES = [
    "__init__",
    "__private",
    "__dict__",
    "__slots__",
    "__weakref__",
    "__annotations__",
    "__post_init__",
    "field_3",  # the attribute name the tap once generated for its 4th field
    'label "quoted"',
    "back\\slash",
    "tab\tand\x01control",
]


def sync(sandbox, state=None):
    run = run_tap(
        sandbox.config(page_size=100),
        state=state,
        catalog=selecting("contacts", "rejected_records"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    return run


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_any_field_name_is_carried_and_no_record_is_rejected(sandbox, name):
    sandbox.reset(added_fields=[{"every": 3, "fields": {name: "value"}}])
    run = sync(sandbox)

    assert run.ids("contacts") == {r["id"]: 1 for r in sandbox.records("contacts")}
    assert not run.records("rejected_records")
    carried = [r for r in run.records("contacts") if r["id"] % 3 == 0]
    emitted_names = {key for record in carried for key in record} - set(
        run.schemas()["contacts"]["properties"]
    )
    assert not emitted_names  # every emitted field is in the SCHEMA
    assert all("value" in record.values() for record in carried)
    run.assert_records_match_schemas()


def test_names_a_record_cannot_carry_are_renamed_once_with_a_line(sandbox):
    fields = {'label "quoted"': 1, "back\\slash": 2, "tab\tand\x01control": 3}
    sandbox.reset(added_fields=[{"every": 1, "fields": fields}])
    run = sync(sandbox)

    record = run.records("contacts")[0]
    assert (record["label _quoted_"], record["back_slash"], record["tab_and_control"]) == (1, 2, 3)
    assert sum("is emitted as" in line for line in run.stderr.splitlines()) == 3


def test_a_field_with_the_loaders_prefix_is_renamed_not_taken_for_a_deletion(sandbox):
    deleted = "2026-01-01T00:00:00.000000Z"
    sandbox.reset(added_fields=[{"every": 1, "fields": {"_sdc_deleted_at": deleted}}])
    run = sync(sandbox)

    records = run.records("contacts")
    assert not any("_sdc_deleted_at" in r for r in records)
    assert all(r["api_sdc_deleted_at"] == deleted for r in records)
    assert "_sdc_deleted_at" not in run.schemas()["contacts"]["properties"]
    (line,) = [line for line in run.stderr.splitlines() if "is emitted as" in line]
    assert '"_sdc_deleted_at"' in line and '"api_sdc_deleted_at"' in line


def test_a_variant_column_learned_from_the_api_never_takes_a_value_of_another_type(sandbox):
    # The API itself sends company_id__string holding integers (learned as integer), and
    # company_id holding text on other records.
    sandbox.reset(
        added_fields=[
            {"every": 2, "fields": {"company_id__string": 7}},
            {"every": 5, "fields": {"company_id": "C-12"}},
        ]
    )
    first = sync(sandbox)
    # A second full read, with what the first run learned kept in STATE.
    state = copy.deepcopy(first.final_state)
    for partition in state["bookmarks"]["contacts"]["partitions"]:
        partition.pop("replication_key_value")
    second = sync(sandbox, state=state)

    for run in (first, second):
        assert run.ids("contacts") == {r["id"]: 1 for r in sandbox.records("contacts")}
        assert not run.records("rejected_records")
        run.assert_records_match_schemas()
        by_id = {r["id"]: r for r in run.records("contacts")}
        assert by_id[10]["company_id__string"] == 7  # the API's own field, as sent
        texts = [v for r in by_id.values() for k, v in r.items() if v == "C-12"]
        assert len(texts) == len([i for i in by_id if i % 5 == 0])  # every text kept
    properties = second.schemas()["contacts"]["properties"]
    assert "integer" in properties["company_id__string"]["type"]
    assert "string" in properties["company_id__string_2"]["type"]


def many_fields(count: int) -> dict[str, int]:
    return {f"custom_{index:04d}": index for index in range(count)}


def test_schema_growth_stops_at_max_learned_fields_and_the_rest_is_kept_in_one_column(sandbox):
    sandbox.reset(contacts=200, added_fields=[{"every": 1, "fields": many_fields(600)}])
    run = run_tap(
        sandbox.config(page_size=100, max_learned_fields=50), catalog=selecting("contacts")
    )
    assert run.returncode == 0, run.stderr[-2000:]

    properties = run.schemas()["contacts"]["properties"]
    learned = [name for name in properties if name.startswith("custom_")]
    assert len(learned) == 50
    record = run.records("contacts")[0]
    assert len(record["overflow_fields"]) == 550  # every other value, in one object
    assert {**record["overflow_fields"], **{k: record[k] for k in learned}} == many_fields(600)
    run.assert_records_match_schemas()
    assert sum("max_learned_fields" in line for line in run.stderr.splitlines()) == 1
    # STATE stays small: the 50 fields, not 600.
    assert len(str(run.final_state)) < 20_000


def test_learned_fields_are_forgotten_after_30_runs_unseen_or_when_asked(sandbox):
    sandbox.reset(added_fields=[{"every": 1, "fields": {"legacy_ref": "L-1"}}])
    first = sync(sandbox)
    stream_state = first.final_state["bookmarks"]["contacts"]
    assert stream_state["learned_fields"] == {"legacy_ref": {"type": ["string", "null"]}}
    assert stream_state["learned_fields_unseen_runs"] == {"legacy_ref": 0}

    # The API stopped sending it, 29 runs ago: one run more and it is forgotten.
    sandbox.reset()
    stream_state["learned_fields_unseen_runs"] = {"legacy_ref": 29}
    unseen = sync(sandbox, state=first.final_state)
    assert unseen.final_state["bookmarks"]["contacts"]["learned_fields_unseen_runs"] == {
        "legacy_ref": 30
    }
    forgotten = sync(sandbox, state=unseen.final_state)
    assert "legacy_ref" not in forgotten.schemas()["contacts"]["properties"]
    assert "learned_fields" not in forgotten.final_state["bookmarks"]["contacts"]
    assert "not seen for 30 runs are forgotten: legacy_ref" in forgotten.stderr

    # forget_learned_fields: the rest of the state (the bookmark) is kept.
    asked = run_tap(
        sandbox.config(page_size=100, forget_learned_fields=True),
        state=first.final_state,
        catalog=selecting("contacts", "rejected_records"),
    )
    assert asked.returncode == 0, asked.stderr
    assert "legacy_ref" not in asked.schemas()["contacts"]["properties"]
    assert "learned_fields" not in asked.final_state["bookmarks"]["contacts"]
    assert len(asked.records("contacts")) < 500  # incremental: the bookmark was kept


def test_past_the_cap_a_variant_column_overflows_too_and_nothing_is_rejected(sandbox):
    sandbox.reset(
        added_fields=[
            {"every": 1, "fields": {"legacy_ref": "L-1"}},
            {"every": 5, "fields": {"company_id": "C-12"}},
        ]
    )
    run = run_tap(
        sandbox.config(page_size=100, max_learned_fields=1),
        catalog=selecting("contacts", "rejected_records"),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert not run.records("rejected_records")
    by_id = {r["id"]: r for r in run.records("contacts")}
    assert len(by_id) == 500
    assert by_id[5]["overflow_fields"] == {"company_id__string": "C-12"}
    run.assert_records_match_schemas()


@pytest.mark.parametrize(
    ("sent", "emitted"),
    [
        ("overflow_fields", "api_overflow_fields"),  # the tap's own column
        ("_SDC_DELETED_AT", "api_SDC_DELETED_AT"),  # a loader lowercases it to its own
        ("_sdc-deleted-at", "api_sdc-deleted-at"),
    ],
)
def test_names_a_loader_or_the_tap_would_take_for_its_own_are_renamed(sandbox, sent, emitted):
    sandbox.reset(added_fields=[{"every": 1, "fields": {sent: {"mine": 1}}}])
    run = sync(sandbox)
    assert all(r[emitted] == {"mine": 1} and sent not in r for r in run.records("contacts"))
    (line,) = [line for line in run.stderr.splitlines() if "is emitted as" in line]
    assert "a quote, a backslash" not in line  # the reason is the name's own


def test_a_forgotten_field_that_comes_back_keeps_its_column_type(sandbox):
    sandbox.reset(added_fields=[{"every": 1, "fields": {"legacy_ref": "L-1"}}])
    integer = {"type": ["integer", "null"]}
    state = {"bookmarks": {"contacts": {"learned_fields_forgotten": {"legacy_ref": integer}}}}
    run = sync(sandbox, state=state)

    properties = run.schemas()["contacts"]["properties"]
    assert properties["legacy_ref"] == integer  # the column's type, as it was
    assert all(r["legacy_ref__string"] == "L-1" for r in run.records("contacts"))
    assert "field legacy_ref in contacts is back" in run.stderr
    assert "learned_fields_forgotten" not in run.final_state["bookmarks"]["contacts"]


def test_an_output_name_once_given_is_given_again_in_every_run(sandbox):
    """One API field, one column, across runs: a renamed field keeps its name when a
    later record also holds a field of that very name, which takes a suffix instead."""
    sandbox.reset(contacts=20, added_fields=[{"every": 1, "fields": {'a"b': "quoted"}}])
    config = sandbox.config(page_size=10)
    first = run_tap(config, catalog=selecting("contacts"))
    assert {r["a_b"] for r in first.records("contacts")} == {"quoted"}
    both = {'a"b': "quoted", "a_b": "literal"}
    sandbox.update(added_fields=[{"every": 1, "fields": both}])
    sandbox.mutate("contacts", update=20)
    second = run_tap(config, state=first.final_state, catalog=selecting("contacts"))
    records = second.records("contacts")
    assert records and {(r["a_b"], r["a_b_2"]) for r in records} == {("quoted", "literal")}
    sandbox.update(added_fields=[{"every": 1, "fields": {"a_b": "literal"}}])
    sandbox.mutate("contacts", update=20)
    third = run_tap(config, state=second.final_state, catalog=selecting("contacts"))
    records = third.records("contacts")
    assert records and {r["a_b_2"] for r in records} == {"literal"}
    assert all(r.get("a_b") is None for r in records)
    third.assert_records_match_schemas()


def test_a_type_split_keeps_its_column_when_the_api_sends_a_field_of_that_name(sandbox):
    sandbox.reset(contacts=20, bad_records={"every": 5, "kinds": ["changed_type"]})
    config = sandbox.config(page_size=10)
    first = run_tap(config, catalog=selecting("contacts"))
    split = {r["id"]: r.get("company_id__string") for r in first.records("contacts")}
    assert split[5] == "C-5"
    sandbox.update(added_fields=[{"every": 1, "fields": {"company_id__string": "the API's"}}])
    sandbox.mutate("contacts", update=20)
    second = run_tap(config, state=first.final_state, catalog=selecting("contacts"))
    for record in second.records("contacts"):
        assert record["company_id__string_2"] == "the API's"
        assert record.get("company_id__string") in (None, f"C-{record['id']}")
    second.assert_records_match_schemas()


def test_a_field_sent_under_its_own_name_first_keeps_its_column(sandbox):
    """The literal field came first: its column is its own, and a field renamed into
    that name later takes a suffix, in every run after."""
    sandbox.reset(contacts=20, added_fields=[{"every": 1, "fields": {"a_b": "literal"}}])
    config = sandbox.config(page_size=10)
    first = run_tap(config, catalog=selecting("contacts"))
    assert {r["a_b"] for r in first.records("contacts")} == {"literal"}
    sandbox.update(added_fields=[{"every": 1, "fields": {'a"b': "quoted"}}])
    sandbox.mutate("contacts", update=20)
    second = run_tap(config, state=first.final_state, catalog=selecting("contacts"))
    assert {r["a_b_2"] for r in second.records("contacts")} == {"quoted"}
    assert all(r.get("a_b") is None for r in second.records("contacts"))


@pytest.mark.parametrize("given", [{"updated_at": "id"}, {"email": "updated_at"}, "x", [1]])
def test_hostile_output_names_in_state_are_ignored(sandbox, given):
    sandbox.reset(contacts=20)
    config = sandbox.config(page_size=10)
    first = run_tap(config, catalog=selecting("contacts"))
    state = first.final_state
    state["bookmarks"]["contacts"]["output_names"] = given
    state["bookmarks"]["contacts"]["partitions"][0].pop("replication_key_value", None)
    run = run_tap(config, state=state, catalog=selecting("contacts"))
    assert run.returncode == 0 and len(run.records("contacts")) == 20
    assert not run.records("rejected_records")
