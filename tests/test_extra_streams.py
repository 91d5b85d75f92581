"""Streams beyond contacts and tasks: the packaged optional ones and extra_streams, over HTTP."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_tap

# The sandbox serves projects; declared under another name there is no packaged schema.
JOBS = {"name": "jobs", "path": "projects", "scope": "projects.read"}


def catalog_entry(catalog: dict, stream: str) -> dict:
    return next(s for s in catalog["streams"] if s["tap_stream_id"] == stream)


def selected_by_default(entry: dict) -> bool:
    root = next(m for m in entry["metadata"] if not m["breadcrumb"])
    return root["metadata"]["selected-by-default"]


def test_companies_and_projects_are_shipped_but_off_by_default(sandbox):
    discovered = run_tap(sandbox.config(), args=["--discover"])
    catalog = json.loads(discovered.stdout)
    for stream in ("companies", "projects"):
        assert not selected_by_default(catalog_entry(catalog, stream))
        assert "updated_at" in catalog_entry(catalog, stream)["schema"]["properties"]
    assert selected_by_default(catalog_entry(catalog, "contacts"))

    run = run_tap(sandbox.config(), catalog=None)  # the tap's own default selection
    assert run.returncode == 0, run.stderr
    assert not run.records("companies") and not run.records("projects")


@pytest.mark.parametrize("shape", ["length_aware", "cursor", "array"])
def test_a_declared_shipped_stream_reads_every_record_in_every_shape(sandbox, shape):
    sandbox.reset(list_shape=shape, counts={"companies": 250})
    config = sandbox.config(extra_streams=[{"name": "companies"}])
    run = run_tap(config, catalog=None)
    assert run.returncode == 0, run.stderr
    assert run.ids("companies") == {r["id"]: 1 for r in sandbox.records("companies")}
    run.assert_records_match_schemas()
    assert run.schemas()["companies"]["properties"]["industry"]  # the packaged schema
    (partition,) = run.final_state["bookmarks"]["companies"]["partitions"]
    assert partition["replication_key_value"]  # incremental, with a bookmark


def test_a_declared_stream_without_a_schema_is_sampled_by_discovery_and_grows(sandbox):
    config = sandbox.config(extra_streams=[JOBS])
    discovered = run_tap(config, args=["--discover"])
    assert discovered.returncode == 0, discovered.stderr
    entry = catalog_entry(json.loads(discovered.stdout), "jobs")
    assert {"name", "status", "company_id"} <= set(entry["schema"]["properties"])
    assert selected_by_default(entry)
    assert entry["key_properties"] == ["organization_id", "id"]

    catalog = json.loads(discovered.stdout)
    for stream in catalog["streams"]:  # Meltano selects what the user chose: jobs alone
        root = next(m for m in stream["metadata"] if not m["breadcrumb"])
        root["metadata"]["selected"] = stream["tap_stream_id"] == "jobs"
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert run.ids("jobs") == {r["id"]: 1 for r in sandbox.records("projects")}
    run.assert_records_match_schemas()
    assert all("status" in record for record in run.records("jobs"))
    assert "new field" not in run.stderr  # the catalog's schema is the one used

    # Without discovery's sample the schema starts from the keys and grows on the way.
    grown = run_tap(config, catalog=None)
    assert grown.returncode == 0, grown.stderr
    assert "status" in grown.schemas()["jobs"]["properties"]
    assert len(grown.records("jobs")) == len(sandbox.records("projects"))


def test_a_misspelled_path_fails_that_stream_alone_in_one_line(sandbox):
    config = sandbox.config(extra_streams=[{"name": "deals", "scope": "contacts.read"}])
    run = run_tap(config, catalog=None)
    assert run.returncode == 1
    failures = [line for line in run.error_lines()[:-1] if "'deals'" in line and "404" in line]
    assert len(failures) == 1, run.error_lines()
    assert "(cause: 404 from GET" in run.error_lines()[-1]  # the last line says why
    assert len(run.records("contacts")) == 500 and len(run.records("tasks")) == 200


def test_a_scope_the_app_lacks_fails_that_stream_alone_in_one_line(sandbox):
    run = run_tap(sandbox.config(extra_streams=[{"name": "deals"}]), catalog=None)
    assert run.returncode == 1
    said = "'deals' needs the scope deals.read"
    failures = [line for line in run.error_lines()[:-1] if said in line]
    assert len(failures) == 1, run.stderr
    assert "(cause: 'deals' needs the scope deals.read" in run.error_lines()[-1]
    assert len(run.records("contacts")) == 500 and len(run.records("tasks")) == 200


def test_plan_covers_declared_streams(sandbox):
    config = sandbox.config(extra_streams=[{"name": "companies"}, JOBS])
    planned = run_tap(config, catalog=None, args=["--plan=json"])
    assert planned.returncode == 0, planned.stderr
    records = {c["stream"]: c["records"] for c in json.loads(planned.stdout)["streams"]}
    assert records["companies"] == len(sandbox.records("companies"))
    assert records["jobs"] == len(sandbox.records("projects"))


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        ([{"name": "Deals"}], "extra_streams[0].name must be a lowercase stream name"),
        ([{"name": "contacts"}], "extra_streams 'contacts' is a stream the tap has already"),
        ([{"name": "deals", "path": "../admin"}], "extra_streams 'deals': path must be"),
        ([{"name": "deals", "colour": "red"}], "extra_streams 'deals' has unknown keys: colour"),
        ([{"name": "deals"}, {"name": "deals"}], "extra_streams 'deals' is declared twice"),
        # Checked whole: a trailing newline is no part of a name.
        ([{"name": "deals\n"}], "extra_streams[0].name must be a lowercase stream name"),
        ([{"name": "deals", "path": "deals\n"}], "extra_streams 'deals': path must be"),
        ([{"name": "deals", "primary_key": "id\n"}], "'deals': primary_key must be a field"),
        ([{"name": "deals", "primary_key": ["id\n"]}], "'deals': primary_key must be a field"),
        ([{"name": "deals", "replication_key": "at\n"}], "'deals': replication_key must be"),
        ([{"name": "deals", "scope": "deals.read\n"}], "'deals': scope must be a scope name"),
    ],
)
def test_a_bad_declaration_is_one_line_naming_it(sandbox, declared, problem):
    run = run_tap(sandbox.config(extra_streams=declared), catalog=None)
    assert run.returncode == 1
    assert problem in run.stderr
    assert "Traceback" not in run.stderr
    assert sandbox.stats().get("requests", 0) == 0
