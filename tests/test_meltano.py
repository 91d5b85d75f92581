"""`meltano run` end to end: real plugins, the sandbox, JSONL files and a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from mokapen_sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_ORGANIZATION_ID
from tap_mokapen.config import SDK_SETTINGS
from tests.helpers import MELTANO, TESTED_STREAMS, NewMeltanoProject, about_tap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import plugin_definition

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


class Meltano:
    def __init__(self, sandbox, folder: Path) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_ENVIRONMENT": "sandbox",
            # A state database per test: runs share state only within a test.
            "MELTANO_DATABASE_URI": f"sqlite:///{folder}/meltano.db",
            "TAP_MOKAPEN_BASE_URL": sandbox.url,
            "TAP_MOKAPEN_REQUESTS_PER_MINUTE": "100000",
            "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
        }

    def run(self, *pipeline: str, output: str = "out", **env: str) -> subprocess.CompletedProcess:
        destination = self.folder / output
        destination.mkdir(exist_ok=True)
        done = subprocess.run(
            [MELTANO, "run", *pipeline],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**self.env, "TARGET_JSONL_DESTINATION_PATH": str(destination), **env},
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    def jsonl_ids(self, stream: str, output: str = "out") -> list[int]:
        path = self.folder / output / f"{stream}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.fixture
def meltano(meltano_plugins, sandbox, tmp_path) -> Meltano:
    return Meltano(sandbox, tmp_path)


def test_meltano_run_to_jsonl_lands_exactly_the_sandbox_records(meltano, sandbox):
    meltano.run("tap-mokapen", "target-jsonl")
    for stream in ("contacts", "tasks"):
        expected = sorted(r["id"] for r in sandbox.records(stream))
        assert sorted(meltano.jsonl_ids(stream)) == expected
    assert sorted(meltano.jsonl_ids("organizations")) == [849, 850]


def test_second_meltano_run_lands_only_the_changes(meltano, sandbox):
    meltano.run("tap-mokapen", "target-jsonl", output="first")
    changed = sandbox.mutate("contacts", update=6, insert=2)
    meltano.run("tap-mokapen", "target-jsonl", output="second")

    second = set(meltano.jsonl_ids("contacts", "second"))
    new = set(changed["updated"]) | set(changed["inserted"])
    assert new <= second
    # Besides the changes, only records sitting exactly at the bookmark come again.
    assert len(second - new) <= 2
    assert len(meltano.jsonl_ids("tasks", "second")) <= 2


def test_metric_lines_stay_off_the_console_until_turned_back_on(meltano, sandbox):
    quiet = meltano.run("tap-mokapen", "target-jsonl", output="quiet")
    assert "Beginning sync of 'contacts'" in quiet.stderr  # the tap's own lines stay
    assert "METRIC" not in quiet.stderr + quiet.stdout
    assert len(meltano.jsonl_ids("contacts", "quiet")) == len(sandbox.records("contacts"))

    # The README's way back, for one run (paths are relative to the project root).
    loud = meltano.run(
        "tap-mokapen",
        "target-jsonl",
        output="loud",
        TAP_MOKAPEN__LOG_CONFIG="meltano/logging-metrics.yaml",
    )
    assert "METRIC" in loud.stderr
    assert "http_request_duration" in loud.stderr


def test_a_throttled_meltano_run_shows_its_waits_and_progress(meltano, sandbox):
    # Numbers with a fraction, from the environment: Meltano must pass them through.
    throttled = {
        "TAP_MOKAPEN_REQUESTS_PER_MINUTE": "6",
        "TAP_MOKAPEN_RATE_LIMIT_WINDOW_SECONDS": "6.0",
        "TAP_MOKAPEN_PROGRESS_LOG_SECONDS": "2.5",
        "TAP_MOKAPEN_PAGE_SIZE": "100",
    }
    run = meltano.run("tap-mokapen", "target-jsonl", **throttled)
    lines = run.stderr.splitlines()
    assert any(
        "waits" in line and "for the rate limit (6 requests per 6 s)" in line for line in lines
    )
    assert any("s more for the rate limit" in line for line in lines)
    assert "METRIC" not in run.stderr
    assert sorted(meltano.jsonl_ids("contacts")) == sorted(r["id"] for r in sandbox.records())


def test_a_quota_cut_off_meltano_run_is_completed_by_the_next(meltano, sandbox):
    sandbox.update(quota_cutoff_after=3)
    pages_of_100 = {"TAP_MOKAPEN_PAGE_SIZE": "100"}  # several pages to be cut off between
    first = meltano.run("tap-mokapen", "target-jsonl", output="first", **pages_of_100)
    assert "Run paused" in first.stderr
    sandbox.new_day()
    sandbox.update(quota_cutoff_after=None)
    meltano.run("tap-mokapen", "target-jsonl", output="second", **pages_of_100)

    for stream in ("contacts", "tasks"):
        landed = set(meltano.jsonl_ids(stream, "first")) | set(meltano.jsonl_ids(stream, "second"))
        assert landed == {r["id"] for r in sandbox.records(stream)}
    # No page of the streams counted here was read twice (others may be added later).
    pages = sandbox.stats()["pages_served"]
    assert sum(n for key, n in pages.items() if key.split("/")[1] in TESTED_STREAMS) == 8


def test_meltano_run_to_postgres_lands_the_rows_and_then_the_changes(meltano, sandbox, postgres):
    postgres.sql("DROP SCHEMA IF EXISTS mokapen CASCADE")
    database = {"TARGET_POSTGRES_PORT": str(postgres.port)}
    meltano.run("tap-mokapen", "target-postgres", **database)

    assert postgres.sql("SELECT count(*) FROM mokapen.contacts") == "500"
    assert postgres.sql("SELECT count(DISTINCT id) FROM mokapen.contacts") == "500"
    assert postgres.sql("SELECT count(*) FROM mokapen.tasks") == "200"
    assert postgres.sql("SELECT count(*) FROM mokapen.organizations") == "2"

    changed = sandbox.mutate("contacts", update=4, insert=3)
    meltano.run("tap-mokapen", "target-postgres", **database)
    assert postgres.sql("SELECT count(*) FROM mokapen.contacts") == "503"
    updated = ",".join(map(str, changed["updated"]))
    edited = postgres.sql(
        f"SELECT count(*) FROM mokapen.contacts WHERE id IN ({updated}) "
        "AND description LIKE 'Edited at%'"
    )
    assert edited == "4"


def versioned_contacts_into(postgres) -> dict[str, str]:
    """An empty schema, and the settings of a run with deletions detected for contacts."""
    postgres.sql("DROP SCHEMA IF EXISTS mokapen CASCADE")
    return {
        "TARGET_POSTGRES_PORT": str(postgres.port),
        # The target acts on ACTIVATE_VERSION only with its metadata columns.
        "TARGET_POSTGRES_ADD_RECORD_METADATA": "true",
        "TARGET_POSTGRES_ACTIVATE_VERSION": "true",
        "TAP_MOKAPEN_DETECT_DELETIONS": '["contacts"]',
        # The schema holds organization 849 only (the sandbox's app reaches 850 too).
        "TAP_MOKAPEN_TABLES_PER_ORGANIZATION": "true",
        "TAP_MOKAPEN_PAGE_SIZE": "100",
    }


def test_deleted_contacts_are_marked_deleted_in_postgres_at_no_extra_request(
    meltano, sandbox, postgres
):
    """Deleted contacts are marked once two complete passes lacked them; a pass whose
    answers contradict each other (an empty page in the middle) marks nothing."""
    settings = versioned_contacts_into(postgres)
    meltano.run("tap-mokapen", "target-postgres", **settings)
    assert postgres.sql("SELECT count(*) FROM mokapen.contacts") == "500"
    marked = "SELECT count(*) FROM mokapen.contacts WHERE _sdc_deleted_at IS NOT NULL"

    deleted = sandbox.mutate("contacts", delete=3)["deleted"]
    # Page 3 of contacts answers empty, twice, while its total says 497.
    at = sandbox.stats()["pages_served"]["849/contacts"] + 3
    sandbox.update(glitches=[{"kind": "empty", "at": at, "times": 2}])
    glitched = meltano.run("tap-mokapen", "target-postgres", **settings)
    assert "this pass is incomplete" in glitched.stderr
    assert postgres.sql(marked) == "0"

    sandbox.update(glitches=[])
    before = sandbox.stats()
    meltano.run("tap-mokapen", "target-postgres", **settings)
    after = sandbox.stats()
    # Deleted ids the last complete pass's sample held are asked for at the show route
    # (record_checks.py): at most the 3 deleted, and one id the pass saw as the proof.
    checks = after.get("record_requests", 0) - before.get("record_requests", 0)
    assert checks <= 3 + 1
    # Else the same requests as any sync: 5 pages of contacts, 2 of tasks, 1 list, 1 token.
    assert after["requests"] - before["requests"] == 5 + 2 + 1 + 1 + checks
    assert postgres.sql(marked) == "0"  # one complete pass lacked them: not yet

    meltano.run("tap-mokapen", "target-postgres", **settings)
    marked_ids = postgres.sql(
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM mokapen.contacts "
        "WHERE _sdc_deleted_at IS NOT NULL"
    )
    assert marked_ids == ",".join(map(str, sorted(deleted)))
    assert postgres.sql("SELECT count(*) FROM mokapen.contacts WHERE _sdc_deleted_at IS NULL") == (
        "497"
    )
    # Tasks are not versioned: nothing of theirs is marked.
    tasks_marked = "SELECT count(*) FROM mokapen.tasks WHERE _sdc_deleted_at IS NOT NULL"
    assert postgres.sql(tasks_marked) == "0"


def test_a_list_cut_short_that_agrees_with_itself_marks_no_live_row_in_postgres(
    meltano, sandbox, postgres
):
    """Every answer agrees, and the list holds 80% of the contacts (its total too): only
    Mokapen's show route can tell. No live row is marked deleted, however many passes."""
    settings = versioned_contacts_into(postgres)
    for _ in range(2):
        meltano.run("tap-mokapen", "target-postgres", **settings)
    sandbox.update(list_cut=0.8)
    for _ in range(3):
        cut = meltano.run("tap-mokapen", "target-postgres", **settings)
        assert "the list lost records" in cut.stderr
    marked = "SELECT count(*) FROM mokapen.contacts WHERE _sdc_deleted_at IS NOT NULL"
    assert postgres.sql(marked) == "0"
    assert postgres.sql("SELECT count(*) FROM mokapen.contacts") == "500"


def test_an_unfinished_pass_marks_nothing_deleted(meltano, sandbox, postgres):
    settings = versioned_contacts_into(postgres)
    meltano.run("tap-mokapen", "target-postgres", **settings)
    sandbox.mutate("contacts", delete=3)
    sandbox.update(quota_cutoff_after=3)  # the second pass stops after two pages of contacts
    paused = meltano.run("tap-mokapen", "target-postgres", **settings)
    assert "Run paused" in paused.stderr
    assert "ACTIVATE_VERSION" not in paused.stderr
    assert postgres.sql(
        "SELECT count(*) FROM mokapen.contacts WHERE _sdc_deleted_at IS NOT NULL"
    ) == ("0")


def test_new_fields_changed_types_and_rejected_records_load_into_postgres(
    meltano, sandbox, postgres
):
    postgres.sql("DROP SCHEMA IF EXISTS mokapen CASCADE")
    database = {"TARGET_POSTGRES_PORT": str(postgres.port)}
    meltano.run("tap-mokapen", "target-postgres", **database)  # the shipped schema first
    sandbox.update(
        extra_fields=True, bad_records={"every": 40, "kinds": ["changed_type", "missing_id"]}
    )
    # A full read into the tables the shipped schema made: new columns, same column types.
    meltano.run("--full-refresh", "tap-mokapen", "target-postgres", **database)

    columns = postgres.sql(
        "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY column_name) "
        "FROM information_schema.columns WHERE table_schema = 'mokapen' "
        "AND table_name = 'contacts'"
    )
    for column in ("custom_fields", "tags", "score", "legacy_ref"):
        assert f"{column}:" in columns, columns
    # company_id stays a number column; the string value has a column of its own.
    assert "company_id:bigint" in columns and "company_id__string:" in columns, columns
    assert (
        postgres.sql("SELECT count(*) FROM mokapen.contacts WHERE company_id__string = 'C-40'")
        == "1"
    )
    assert postgres.sql("SELECT count(DISTINCT id) FROM mokapen.contacts") == "500"
    missing = len([b for b in sandbox.bad_records("contacts") if b["kind"] == "missing_id"])
    assert postgres.sql(
        "SELECT count(*) FROM mokapen.rejected_records WHERE stream = 'contacts'"
    ) == str(missing)


def test_plugin_definition_file_matches_the_tap():
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plugin_definition.py"), "--check"], check=True
    )
    definition = yaml.safe_load((ROOT / "meltano" / "tap-mokapen.yml").read_text())
    about = about_tap()
    properties = about["settings"]["properties"]
    by_name = {s["name"]: s for s in definition["settings"]}
    assert set(by_name) == set(properties)
    assert set(by_name) > SDK_SETTINGS
    # Meltano passes a setting of unknown kind as text: `meltano config set ... stream_maps`
    # would hand the SDK's mapper a string (it fails), flattening_max_depth "1".
    for name in SDK_SETTINGS:
        (json_type,) = set(properties[name]["type"]) - {"null"}
        kind = {"object": "object", "boolean": "boolean", "integer": "integer"}
        assert by_name[name]["kind"] == kind.get(json_type, "string"), name
        assert by_name[name]["description"] == properties[name]["description"]
    assert definition["capabilities"] == about["capabilities"]
    # What the Meltano Hub's extractor schema requires.
    for key in ("label", "description", "docs", "keywords", "maintenance_status"):
        assert definition[key], key
    for key in ("name", "namespace", "variant", "pip_url", "executable", "settings"):
        assert definition[key], key
    assert definition["quality"] in ("gold", "silver", "bronze", "unknown")
    assert definition["select"] == ["*.*", "!companies.*", "!projects.*"]
    for loader in plugin_definition.LOADERS:  # shipped for an offline --from-ref
        shipped = yaml.safe_load((ROOT / "meltano" / f"{loader}.yml").read_text())
        assert shipped["name"] == loader and shipped["pip_url"] and "config" not in shipped

    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    assert "version" not in project  # deprecated: Meltano warns on every command
    (extractor,) = project["plugins"]["extractors"]
    assert extractor["capabilities"] == about["capabilities"]
    in_project = [s for s in extractor["settings"] if not s["name"].startswith("_")]
    assert in_project == definition["settings"]
    secrets = {s["name"] for s in extractor["settings"] if s["kind"] == "password"}
    assert secrets == {n for n, v in properties.items() if v.get("secret")}


@pytest.mark.parametrize(
    "pip_url", ["/home/ana/src/tap mokapen", "git+https://git.example.com/a/b.git@v1"]
)
def test_a_definition_for_a_checkout_or_a_git_remote(pip_url):
    """--pip-url runs on a python3 with nothing installed (-S: no site-packages)."""
    written = subprocess.run(
        [
            sys.executable,
            "-S",
            str(ROOT / "scripts" / "plugin_definition.py"),
            "--pip-url",
            pip_url,
            *(["--local"] if pip_url.startswith("/") else []),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = yaml.safe_load((ROOT / "meltano" / "tap-mokapen.yml").read_text())
    assert yaml.safe_load(written) == {**committed, "pip_url": pip_url}


def test_a_new_meltano_project_adds_the_tap_from_this_checkout(sandbox, tmp_path):
    """The README's first hour in a brand-new project: add the tap from a definition for
    this checkout, add target-jsonl from the shipped definition (no Hub), set SDK settings,
    run against the sandbox with an app holding only the scopes the README asks for."""
    sandbox.update(enabled_scopes=["contacts.read", "tasks.read"], extra_fields=True)
    # docs/meltano.md's walk: `meltano init`, the tap from a --local definition of this
    # checkout (not a release the index may not have yet), target-jsonl as shipped.
    project = NewMeltanoProject(tmp_path)
    meltano = project.meltano
    project.add_loader("target-jsonl")

    # Meltano drops null values from a plugin's config, so the SDK's "__NULL__" drops a field.
    meltano("config", "set", "tap-mokapen", "stream_maps", '{"contacts": {"email": "__NULL__"}}')
    meltano("config", "set", "tap-mokapen", "flattening_enabled", "true")
    meltano("config", "set", "tap-mokapen", "flattening_max_depth", "1")
    config = json.loads(meltano("invoke", "--dump=config", "tap-mokapen").stdout)
    assert config["stream_maps"] == {"contacts": {"email": "__NULL__"}}
    assert config["flattening_enabled"] is True
    assert config["flattening_max_depth"] == 1

    tap_env = {
        "TAP_MOKAPEN_BASE_URL": sandbox.url,
        "TAP_MOKAPEN_CLIENT_ID": DEMO_CLIENT_ID,
        "TAP_MOKAPEN_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "TAP_MOKAPEN_ORGANIZATION_ID": str(DEMO_ORGANIZATION_ID),
        "TAP_MOKAPEN_REQUESTS_PER_MINUTE": "100000",
    }
    # `meltano config test` shows the tap's last line: with a wrong secret, the cause.
    wrong = {**tap_env, "TAP_MOKAPEN_CLIENT_SECRET": "not-the-secret"}
    refused = meltano("config", "test", "tap-mokapen", exit_code=1, **wrong)
    shown = refused.stdout + refused.stderr
    assert "Plugin configuration is invalid" in shown
    assert "client_id and client_secret" in shown and "not-the-secret" not in shown
    assert (
        "Plugin configuration is valid"
        in meltano("config", "test", "tap-mokapen", **tap_env).stdout
    )

    output = tmp_path / "output"
    output.mkdir()
    loader_env = {
        "TARGET_JSONL_DESTINATION_PATH": str(output),
        "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
    }
    meltano("run", "tap-mokapen", "target-jsonl", **tap_env, **loader_env)

    served = sandbox.records("contacts")
    assert all("email" in record for record in served)
    landed = [json.loads(line) for line in (output / "contacts.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in landed) == sorted(r["id"] for r in served)
    assert not [r["id"] for r in landed if "email" in r]
    assert all(r["updated_at"] for r in landed)
    # Fields the API added reach the stream map and are flattened (to JSON text: no
    # schema names the object's keys).
    assert all("legacy_ref" in r and "email" not in r for r in landed)
    assert json.loads(landed[0]["custom_fields"])["source"] == "sandbox"
    tasks = (output / "tasks.jsonl").read_text().splitlines()
    assert len(tasks) == len(sandbox.records("tasks"))
    # The streams off by default, selected by Meltano's implicit "*.*" (it drops a
    # definition's select on --from-ref), are skipped: the app has no scope for them.
    for off in ("companies", "projects"):
        path = output / f"{off}.jsonl"
        assert not path.exists() or not path.read_text().strip()

    # README: re-sync one stream with Meltano's state commands and the tap's --resync.
    (state_id,) = meltano("state", "list").stdout.split()
    saved = tmp_path / "state.json"
    saved.write_text(meltano("state", "get", state_id).stdout)
    resynced = meltano("invoke", "tap-mokapen", "--state", str(saved), "--resync", "contacts")
    (tmp_path / "resynced.json").write_text(resynced.stdout)
    meltano("state", "set", "--force", state_id, "--input-file", str(tmp_path / "resynced.json"))
    meltano("run", "tap-mokapen", "target-jsonl", **tap_env, **loader_env)
    again = (output / "contacts.jsonl").read_text().splitlines()
    assert len(again) == 2 * len(served)  # the contacts came again, in full
    assert len((output / "tasks.jsonl").read_text().splitlines()) < 2 * len(tasks)


def test_the_shipped_postgres_loader_declares_the_capabilities_it_has(meltano_plugins):
    """meltano/target-postgres.yml says what the pinned loader's --about says: Meltano and
    readers of the definition learn it acts on ACTIVATE_VERSION (detect_deletions)."""
    loader = ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "target-postgres"
    about = json.loads(
        subprocess.run(
            [str(loader), "--about", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    shipped = yaml.safe_load((ROOT / "meltano" / "target-postgres.yml").read_text())
    assert shipped["capabilities"] == about["capabilities"]
    assert {"activate-version", "hard-delete", "target-schema"} <= set(shipped["capabilities"])


def test_a_new_project_with_postgres_marks_a_contact_deleted_in_the_sandbox(
    sandbox, postgres, tmp_path
):
    """docs/meltano.md's PostgreSQL walk in a new project: target-postgres from the shipped
    definition, its settings by `meltano config set`, detect_deletions for contacts; a
    run, one contact deleted in the sandbox, two runs: that row has _sdc_deleted_at (the
    doc's hard_delete false), every other row is live."""
    postgres.sql("DROP SCHEMA IF EXISTS mokapen CASCADE")
    project = NewMeltanoProject(tmp_path)
    project.use_sandbox_app(sandbox.url)
    project.add_loader("target-postgres")
    for name, value in {
        "host": "127.0.0.1",
        "port": str(postgres.port),
        "user": "postgres",
        "password": "postgres",
        "database": "mokapen",
        "default_target_schema": "mokapen",
        "load_method": "upsert",
        "add_record_metadata": "true",
        "activate_version": "true",
        "hard_delete": "false",
    }.items():
        project.meltano("config", "set", "target-postgres", name, value)
    project.meltano("config", "set", "tap-mokapen", "detect_deletions", '["contacts"]')
    project.meltano("config", "set", "tap-mokapen", "tables_per_organization", "true")

    def run() -> None:
        project.meltano("run", "tap-mokapen", "target-postgres")

    marked = (
        "SELECT string_agg(id::text, ',') FROM mokapen.contacts WHERE _sdc_deleted_at IS NOT NULL"
    )
    run()
    assert postgres.sql("SELECT count(*) FROM mokapen.contacts") == "500"
    # The doc's curl: POST /_sandbox/mutate {"org": 849, "stream": "contacts", "delete": 1}
    answer = requests.post(
        f"{sandbox.url}/_sandbox/mutate",
        json={"org": 849, "stream": "contacts", "delete": 1},
        timeout=10,
    ).json()
    (deleted,) = answer["deleted"]
    assert deleted not in {r["id"] for r in sandbox.records("contacts")}
    run()
    assert postgres.sql(marked) == ""  # one complete pass lacked it: not yet
    run()
    assert postgres.sql(marked) == str(deleted)
    live = postgres.sql("SELECT count(*) FROM mokapen.contacts WHERE _sdc_deleted_at IS NULL")
    assert live == "499"
    assert postgres.sql("SELECT count(DISTINCT id) FROM mokapen.contacts") == "500"
    # Tasks are not in detect_deletions: none of theirs is marked.
    assert postgres.sql("SELECT count(*) FROM mokapen.tasks WHERE _sdc_deleted_at IS NULL") == "200"
