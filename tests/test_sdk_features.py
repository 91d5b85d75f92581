"""The SDK's stream maps and flattening beside schema growth (evolution.py): fields the
API adds during a run reach the maps, are flattened like the others, and no SCHEMA is
contradicted by the records that follow it."""

from __future__ import annotations

from tests.helpers import run_tap, selecting

#: What the sandbox's extra_fields adds to every record (one field of each JSON type).
NEW_FIELDS = {"custom_fields", "legacy_ref", "tags", "score"}


def schemas_of(run, stream: str) -> list[dict]:
    return [m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == stream]


def test_new_fields_reach_a_stream_map_and_the_map_still_applies(sandbox):
    sandbox.reset(extra_fields=True, contacts=30)
    run = run_tap(
        sandbox.config(stream_maps={"contacts": {"email": None}}), catalog=selecting("contacts")
    )

    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records("contacts")
    assert len(records) == 30
    assert all(set(r) >= NEW_FIELDS and "email" not in r for r in records)
    last = schemas_of(run, "contacts")[-1]["properties"]
    assert set(last) >= NEW_FIELDS and "email" not in last
    assert "freeze_schema" not in run.stderr  # nobody froze anything
    run.assert_records_match_schemas()


def test_an_aliased_stream_gets_the_new_fields_under_its_alias(sandbox):
    sandbox.reset(extra_fields=True, contacts=30)
    maps = {"contacts": {"__alias__": "people"}}
    run = run_tap(sandbox.config(stream_maps=maps), catalog=selecting("contacts"))

    assert run.returncode == 0, run.stderr[-2000:]
    assert not run.records("contacts") and len(run.records("people")) == 30
    assert not schemas_of(run, "contacts")
    assert set(schemas_of(run, "people")[-1]["properties"]) >= NEW_FIELDS
    run.assert_records_match_schemas()


def test_flattening_applies_to_fields_learned_during_the_run(sandbox):
    sandbox.reset(extra_fields=True, contacts=30)
    config = sandbox.config(flattening_enabled=True, flattening_max_depth=1)
    run = run_tap(config, catalog=selecting("contacts"))

    assert run.returncode == 0, run.stderr[-2000:]
    # An object whose keys no schema names is kept as JSON text, as the SDK flattens.
    (record, *_) = run.records("contacts")
    assert record["custom_fields"] == '{"source":"sandbox","score":1}'
    assert record["tags"] == '["sandbox","group-1"]'
    last = schemas_of(run, "contacts")[-1]["properties"]
    assert last["custom_fields"]["type"] == ["string", "null"]
    run.assert_records_match_schemas()


def test_an_object_a_catalog_adds_is_learned_from_its_values_and_no_record_contradicts(sandbox):
    """A catalog declares custom_fields' keys (one of them with a type the values do not
    have), which the shipped schema lacks. Nothing could check those keys: the field is
    learned from the values like any new one, flattened to JSON text, and every record
    fits the SCHEMA in force when it goes out."""
    sandbox.reset(extra_fields=True, contacts=30)
    catalog = selecting("contacts")
    (entry,) = [e for e in catalog["streams"] if e["tap_stream_id"] == "contacts"]
    entry["schema"]["properties"]["custom_fields"] = {
        "type": ["object", "null"],
        "properties": {"source": {"type": ["string", "null"]}, "score": {"type": ["string"]}},
    }
    for config in ({"flattening_enabled": True, "flattening_max_depth": 1}, {}):
        run = run_tap(sandbox.config(**config), catalog=catalog)

        assert run.returncode == 0, run.stderr[-2000:]
        last = schemas_of(run, "contacts")[-1]["properties"]
        assert "properties" not in last["custom_fields"]  # the catalog's keys are not kept
        records = run.records("contacts")
        assert len(records) == 30
        run.assert_records_match_schemas()


def test_a_map_keeping_only_the_keys_drops_the_new_fields_too(sandbox):
    sandbox.reset(extra_fields=True, contacts=30)
    fast = run_tap(sandbox.config(), catalog=selecting("contacts"))
    keys_only = {"id": "id", "organization_id": "organization_id", "__else__": None}
    mapped = run_tap(
        sandbox.config(stream_maps={"contacts": keys_only}), catalog=selecting("contacts")
    )

    assert fast.returncode == mapped.returncode == 0
    assert set(fast.records("contacts")[0]) >= NEW_FIELDS
    assert [r["id"] for r in mapped.records("contacts")] == [
        r["id"] for r in fast.records("contacts")
    ]
    assert all(set(r) == {"id", "organization_id"} for r in mapped.records("contacts"))
    mapped.assert_records_match_schemas()


def test_a_map_removing_rejected_records_removes_all_of_it(sandbox):
    sandbox.reset(bad_records={"every": 10, "kinds": ["missing_id"]}, contacts=100)
    kept = run_tap(sandbox.config(), catalog=selecting("contacts", "rejected_records"))
    removed = run_tap(
        sandbox.config(stream_maps={"rejected_records": "__NULL__"}),
        catalog=selecting("contacts", "rejected_records"),
    )

    assert kept.returncode == 0 and removed.returncode == 0, removed.stderr[-2000:]
    assert len(kept.records("rejected_records")) == 10  # the sandbox sent bad records
    streams = {m.get("stream") for m in removed.messages if m["type"] in {"SCHEMA", "RECORD"}}
    assert streams == {"contacts"}
    assert len(removed.records("contacts")) == 90


def test_an_alias_renames_all_of_rejected_records(sandbox):
    sandbox.reset(bad_records={"every": 10, "kinds": ["missing_id"]}, contacts=100)
    maps = {"rejected_records": {"__alias__": "bad_rows"}}
    run = run_tap(
        sandbox.config(stream_maps=maps), catalog=selecting("contacts", "rejected_records")
    )

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records("bad_rows")) == 10
    assert {r["reason"] for r in run.records("bad_rows")} == {"the record has no id"}
    named = {m.get("stream") for m in run.messages if m["type"] in {"SCHEMA", "RECORD"}}
    assert "rejected_records" not in named and "bad_rows" in named
    assert run.schemas()["bad_rows"]["properties"]["reason"] == {"type": "string"}
    run.assert_records_match_schemas()
