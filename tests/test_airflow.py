"""The shipped Airflow DAGs, run for real with `airflow dags test` in its own virtualenv."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mokapen_sandbox import DEMO_CLIENT_SECRET
from tests.helpers import MELTANO, NewMeltanoProject

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parent.parent
# MOKAPEN_AIRFLOW_VENV: an Airflow virtualenv built elsewhere (another checkout's), used
# as it is; the fixture below only ever creates one that does not exist.
AIRFLOW_VENV = Path(os.environ.get("MOKAPEN_AIRFLOW_VENV") or ROOT / ".venv-airflow")
AIRFLOW = AIRFLOW_VENV / "bin" / "airflow"


@pytest.fixture(scope="session")
def airflow() -> Path:
    """Apache Airflow 3 in a virtualenv of its own (its pins clash with Meltano's)."""
    if not AIRFLOW.exists():
        subprocess.run([sys.executable, "-m", "venv", str(AIRFLOW_VENV)], check=True)
        subprocess.run(
            [str(AIRFLOW_VENV / "bin" / "pip"), "install", "-q", "apache-airflow>=3.1,<4"],
            check=True,
            capture_output=True,
        )
    return AIRFLOW


@pytest.fixture(scope="session")
def airflow_home(airflow: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME migrated once, with the tests' pool: each test starts from a copy
    (an ``airflow`` command costs seconds of CPU; migrating, about eight)."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ, **airflow_settings(home)}
    for args in (["db", "migrate"], ["pools", "set", POOL, "2", "the Mokapen client's throttle"]):
        subprocess.run([str(airflow), *args], env=env, check=True, capture_output=True)
    return home


POOL = "mokapen-test"


def airflow_settings(home: Path) -> dict[str, str]:
    """Airflow's home and database, named outright."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def fresh_airflow_home(template: Path, folder: Path) -> dict[str, str]:
    """A copy of the migrated home in ``folder``, as the settings that select it. Its
    airflow.cfg is left behind: it names the template's folders, and Airflow writes a new
    one for the copy."""
    home = folder / "airflow"
    shutil.copytree(template, home, ignore=shutil.ignore_patterns("airflow.cfg", "logs"))
    return airflow_settings(home)


def task_states(
    airflow: Path, env: dict[str, str], dag_id: str, done: subprocess.CompletedProcess
) -> dict[tuple[str, str], str]:
    """(task, map index) -> state, of the run ``airflow dags test`` made (``done``)."""
    run_id = re.findall(r"run_id=(manual__[^,\s]+)", done.stdout + done.stderr)[-1]
    listed = subprocess.run(
        [str(airflow), "tasks", "states-for-dag-run", dag_id, run_id, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, (listed.stdout + listed.stderr)[-4000:]
    # A DAG without mapped tasks lists no map_index.
    rows = json.loads(listed.stdout)
    return {(row["task_id"], row.get("map_index", "")): row["state"] for row in rows}


def test_dag_runs_meltano_and_the_records_land(
    airflow, airflow_home, meltano_plugins, sandbox, tmp_path
):
    output = tmp_path / "out"
    output.mkdir()
    env = {
        **os.environ,
        **fresh_airflow_home(airflow_home, tmp_path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "orchestrate" / "airflow" / "dags"),
        "MOKAPEN_MELTANO_PROJECT_ROOT": str(ROOT),
        "MOKAPEN_MELTANO_BIN": str(Path(sys.executable).parent / "meltano"),
        "MOKAPEN_MELTANO_ENVIRONMENT": "sandbox",
        "MOKAPEN_PIPELINE": "tap-mokapen target-jsonl",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        "TAP_MOKAPEN_BASE_URL": sandbox.url,
        "TAP_MOKAPEN_REQUESTS_PER_MINUTE": "100000",
        "TARGET_JSONL_DESTINATION_PATH": str(output),
        "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
    }
    done = subprocess.run(
        [str(airflow), "dags", "test", "mokapen_incremental"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    landed = (output / "contacts.jsonl").read_text().splitlines()
    assert len(landed) == len(sandbox.records("contacts")) == 500
    assert len((output / "tasks.jsonl").read_text().splitlines()) == 200
    # The task's success is recorded, and the DAG never runs twice at once.
    assert "success" in (done.stdout + done.stderr).lower()


# -- docs/airflow.md's first hour: the DAG in the user's own Meltano project ----------------

DAGS = ROOT / "orchestrate" / "airflow" / "dags"


@pytest.fixture(scope="module")
def users_project(sandbox_server, tmp_path_factory) -> NewMeltanoProject:
    """docs/meltano.md's walk in a new project (the tap from this checkout, target-jsonl
    from the shipped definition, the sandbox's app), then docs/airflow.md's job for it."""
    project = NewMeltanoProject(tmp_path_factory.mktemp("user"))
    project.add_loader("target-jsonl")
    project.use_sandbox_app(sandbox_server.url)
    project.meltano("config", "set", "target-jsonl", "destination_path", "output")
    (project.root / "output").mkdir(exist_ok=True)  # meltano init makes it already
    project.meltano("job", "add", "mokapen-to-jsonl", "--tasks", "tap-mokapen target-jsonl")
    return project


def users_airflow(
    airflow_home: Path, project: NewMeltanoProject, folder: Path, **settings: str | None
) -> dict[str, str]:
    """docs/airflow.md's steps: a migrated AIRFLOW_HOME, the DAG file in its dags/ folder,
    and the variables that name the project, its environment and its job (a setting of
    None is left unset: the DAG's default)."""
    env = {**project.env, **fresh_airflow_home(airflow_home, folder)}
    dags = Path(env["AIRFLOW_HOME"]) / "dags"  # Airflow's default dags_folder
    dags.mkdir()
    shutil.copy(DAGS / "mokapen_incremental.py", dags)
    named = {
        "MOKAPEN_MELTANO_PROJECT_ROOT": str(project.root),
        "MOKAPEN_MELTANO_BIN": MELTANO,
        "MOKAPEN_MELTANO_ENVIRONMENT": "dev",
        "MOKAPEN_PIPELINE": "mokapen-to-jsonl",
        **settings,
    }
    return {**env, **{name: value for name, value in named.items() if value is not None}}


def dags_test(airflow: Path, env: dict[str, str], dag_id: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(airflow), "dags", "test", dag_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_dag_runs_green_in_a_new_meltano_project(
    airflow, airflow_home, users_project, sandbox, tmp_path
):
    """docs/airflow.md from nothing: Airflow in its own virtualenv, `airflow db migrate`,
    the DAG copied to $AIRFLOW_HOME/dags, the four MOKAPEN_* variables naming the user's
    project (not this checkout), its `dev` environment and its job; `airflow dags test`."""
    env = users_airflow(airflow_home, users_project, tmp_path)
    done = dags_test(airflow, env, "mokapen_incremental")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert task_states(airflow, env, "mokapen_incremental", done) == {
        ("check_project", ""): "success",
        ("meltano_run", ""): "success",
    }
    output = users_project.root / "output"
    for stream in ("contacts", "tasks"):
        # target-jsonl's default name: <stream>-<time>.jsonl
        (written,) = output.glob(f"{stream}-*.jsonl")
        landed = [json.loads(line)["id"] for line in written.open()]
        assert sorted(landed) == sorted(r["id"] for r in sandbox.records(stream))
    # The job's state, in the project's own system database.
    state_ids = users_project.meltano("state", "list").stdout.split()
    assert state_ids == ["dev:tap-mokapen-to-target-jsonl"]


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        # The case: the defaults name tap-mokapen's own job, which a user's
        # project lacks.
        (
            {"MOKAPEN_PIPELINE": None},
            "MOKAPEN_PIPELINE='mokapen-to-postgres' is not a job or plugins of the Meltano "
            "project {root} (Block mokapen-to-postgres not found): name one of its jobs "
            "(meltano job list) or 'tap-mokapen <loader>'",
        ),
        (
            {"MOKAPEN_MELTANO_ENVIRONMENT": "production"},
            "MOKAPEN_MELTANO_ENVIRONMENT='production' is not an environment of the Meltano "
            "project {root} (Environment 'production' was not found): name one of its "
            "meltano.yml",
        ),
    ],
    ids=["no-such-job", "no-such-environment"],
)
def test_a_job_or_environment_the_project_lacks_fails_at_once_in_one_line(
    airflow, airflow_home, users_project, sandbox, tmp_path, settings, line
):
    env = users_airflow(airflow_home, users_project, tmp_path, **settings)
    started = time.monotonic()
    done = dags_test(airflow, env, "mokapen_incremental")
    took = time.monotonic() - started
    log = done.stdout + done.stderr
    assert done.returncode != 0
    assert line.format(root=users_project.root) in log, log[-4000:]
    # Failed once, not retried (a retry waits 15 minutes: `dags test` would sit in
    # up_for_retry), and the sync never started.
    assert "up_for_retry" not in log
    assert took < 120
    assert task_states(airflow, env, "mokapen_incremental", done) == {
        ("check_project", ""): "failed",
        ("meltano_run", ""): "upstream_failed",
    }
    assert sandbox.stats().get("requests", 0) == 0


# -- mokapen_per_organization: one mapped task, one Meltano state per organization -----------

STATE_ID = "sandbox:tap-mokapen-to-target-jsonl:{}"


class FanOut:
    """The fan-out DAG's environment in a folder of its own, and what a run left there."""

    def __init__(self, airflow: Path, home: Path, sandbox, folder: Path, **settings: str) -> None:
        self.airflow, self.folder = airflow, folder
        self.output = folder / "out"
        self.env = {
            **os.environ,
            **fresh_airflow_home(home, folder),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "orchestrate" / "airflow" / "dags"),
            "MOKAPEN_MELTANO_PROJECT_ROOT": str(ROOT),
            "MOKAPEN_MELTANO_BIN": MELTANO,
            "MOKAPEN_MELTANO_ENVIRONMENT": "sandbox",
            "MOKAPEN_PIPELINE": "tap-mokapen target-jsonl",
            "MOKAPEN_POOL": POOL,
            "MOKAPEN_POOL_SLOTS": "2",
            # The sandbox's throttle is off; each task gets half of this.
            "MOKAPEN_REQUESTS_PER_MINUTE": "100000",
            # Two tasks appending to one contacts.jsonl could not be told apart.
            "MOKAPEN_ORGANIZATION_ENV": json.dumps(
                {"TARGET_JSONL_DESTINATION_PATH": f"{self.output}/{{organization_id}}"}
            ),
            "MELTANO_DATABASE_URI": f"sqlite:///{folder}/meltano.db",
            "TAP_MOKAPEN_BASE_URL": sandbox.url,
            "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
            **settings,
        }

    def dags_test(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.airflow), "dags", "test", "mokapen_per_organization"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    def task_states(self, done: subprocess.CompletedProcess) -> dict[tuple[str, str], str]:
        return task_states(self.airflow, self.env, "mokapen_per_organization", done)

    def landed(self, org: int, stream: str) -> list[dict]:
        path = self.output / str(org) / f"{stream}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def meltano(self, *args: str) -> str:
        done = subprocess.run(
            [MELTANO, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout

    def state_ids(self) -> list[str]:
        return sorted(self.meltano("state", "list").split())

    def state(self, org: int) -> dict:
        return json.loads(self.meltano("state", "get", STATE_ID.format(org)))["singer_state"]


def starts(done: subprocess.CompletedProcess, map_index: int) -> int:
    """How many times the run started the mapped task with this index (retries included)."""
    needle = f"[DAG TEST] starting task_id=meltano_run map_index={map_index}"
    return (done.stdout + done.stderr).count(needle)


def partitions(state: dict, stream: str) -> list[dict]:
    return [p["context"] for p in state["bookmarks"][stream]["partitions"]]


def test_fan_out_runs_one_task_and_keeps_one_state_per_organization(
    airflow, airflow_home, meltano_plugins, sandbox, tmp_path
):
    fan_out = FanOut(airflow, airflow_home, sandbox, tmp_path, MOKAPEN_ORGANIZATION_IDS="849, 850")
    done = fan_out.dags_test()
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]

    assert fan_out.task_states(done) == {
        ("organizations", ""): "success",
        ("meltano_run", "0"): "success",
        ("meltano_run", "1"): "success",
    }
    assert "Organizations from MOKAPEN_ORGANIZATION_IDS: 849, 850" in log
    # Read once by each sync's organizations stream, and never to list them first.
    assert sandbox.stats()["pages_served"].get("0/organizations") == 2
    for org in (849, 850):
        for stream in ("contacts", "tasks"):
            rows = fan_out.landed(org, stream)
            ids = [row["id"] for row in rows]
            # Each organization's rows, all of them, each once, and no other organization's.
            assert sorted(ids) == sorted(r["id"] for r in sandbox.records(stream, org))
            assert len(ids) == len(set(ids))
            assert {row["organization_id"] for row in rows} == {org}
    # One Meltano state per organization, each holding its own organization only.
    assert fan_out.state_ids() == [STATE_ID.format(849), STATE_ID.format(850)]
    for org in (849, 850):
        state = fan_out.state(org)
        assert (
            partitions(state, "contacts")
            == partitions(state, "tasks")
            == [{"organization_id": org}]
        )
    assert DEMO_CLIENT_SECRET not in log


def test_fan_out_lists_the_organizations_and_a_paused_one_leaves_the_others_alone(
    airflow, airflow_home, meltano_plugins, sandbox, tmp_path
):
    # No MOKAPEN_ORGANIZATION_IDS: the first task asks Mokapen. 850 may spend only two
    # requests today: two pages of 100 contacts, then its quota is gone.
    sandbox.update(quota_by_org={"850": 2})
    fan_out = FanOut(airflow, airflow_home, sandbox, tmp_path, TAP_MOKAPEN_PAGE_SIZE="100")
    done = fan_out.dags_test()
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]

    assert "Organizations listed by Mokapen: 849, 850" in log
    assert "Run paused: Mokapen's daily request quota for organization 850 is spent" in log
    # The pause is no failure: every task succeeded, each ran once.
    assert set(fan_out.task_states(done).values()) == {"success"}
    assert (starts(done, 0), starts(done, 1)) == (1, 1)
    for stream in ("contacts", "tasks"):
        assert len(fan_out.landed(849, stream)) == len(sandbox.records(stream, 849))
    first = [row["id"] for row in fan_out.landed(850, "contacts")]
    assert len(first) == 200
    assert fan_out.landed(850, "tasks") == []
    (resume,) = fan_out.state(850)["bookmarks"]["contacts"]["partitions"]
    assert resume["resume"]["next_page"] == 3

    # The next day the paused organization resumes from its own state, at page 3.
    sandbox.new_day()
    sandbox.update(quota_by_org={})
    again = fan_out.dags_test()
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    contacts = [row["id"] for row in fan_out.landed(850, "contacts")]
    assert sorted(contacts) == sorted(r["id"] for r in sandbox.records("contacts", 850))
    assert len(contacts) == len(set(contacts))  # no page of the first day read again
    assert len(fan_out.landed(850, "tasks")) == len(sandbox.records("tasks", 850))


def test_a_failing_organization_is_retried_alone(
    airflow, airflow_home, meltano_plugins, sandbox, tmp_path
):
    # The sandbox app is not installed in 851: its token request fails on every try.
    fan_out = FanOut(
        airflow,
        airflow_home,
        sandbox,
        tmp_path,
        MOKAPEN_ORGANIZATION_IDS="[849, 851]",
        MOKAPEN_RETRY_DELAY_MINUTES="0",
    )
    done = fan_out.dags_test()
    log = done.stdout + done.stderr

    assert fan_out.task_states(done) == {
        ("organizations", ""): "success",
        ("meltano_run", "0"): "success",
        ("meltano_run", "1"): "failed",
    }
    assert (starts(done, 0), starts(done, 1)) == (1, 2)
    assert "The app is not installed in organization 851" in log
    assert len(fan_out.landed(849, "contacts")) == len(sandbox.records("contacts", 849))
    assert STATE_ID.format(849) in fan_out.state_ids()


def test_fan_out_refuses_deletions_into_shared_tables_in_one_line(
    airflow, airflow_home, meltano_plugins, sandbox, tmp_path
):
    """With detect_deletions, one organization's ACTIVATE_VERSION would retire the other
    organizations' rows of a shared table: without a destination of each organization's
    own, the DAG does not fan out, and says why."""
    fan_out = FanOut(
        airflow,
        airflow_home,
        sandbox,
        tmp_path,
        TAP_MOKAPEN_DETECT_DELETIONS='["contacts"]',
        MOKAPEN_ORGANIZATION_ENV="{}",
        MOKAPEN_ORGANIZATION_IDS="849,850",
    )
    done = fan_out.dags_test()
    log = done.stdout + done.stderr
    assert "refusing to fan out" in log
    assert "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA" in log
    assert done.returncode != 0 or "failed" in log.lower()
    assert sandbox.stats().get("api_requests", 0) == 0  # no organization's task ran


# -- the fan-out with detect_deletions into a real PostgreSQL ----------------------------------


def versioned_fan_out(airflow, home, sandbox, postgres, folder: Path, **settings: str) -> FanOut:
    """The fan-out DAG running this project's sandbox pipeline into PostgreSQL, with
    deletions detected for contacts and retired rows marked (_sdc_deleted_at)."""
    for org in ("849", "850"):
        postgres.sql(f"DROP SCHEMA IF EXISTS mokapen_{org} CASCADE")
    postgres.sql("DROP SCHEMA IF EXISTS mokapen CASCADE")
    return FanOut(
        airflow,
        home,
        sandbox,
        folder,
        MOKAPEN_PIPELINE="tap-mokapen target-postgres",
        MOKAPEN_ORGANIZATION_IDS="849,850",
        MOKAPEN_RETRY_DELAY_MINUTES="0",
        TAP_MOKAPEN_DETECT_DELETIONS='["contacts"]',
        TARGET_POSTGRES_PORT=str(postgres.port),
        TARGET_POSTGRES_ADD_RECORD_METADATA="true",
        TARGET_POSTGRES_ACTIVATE_VERSION="true",
        **settings,
    )


def test_fan_out_with_deletions_retires_only_each_organizations_own_rows(
    airflow, airflow_home, meltano_plugins, sandbox, postgres, tmp_path
):
    """The order that retires another organization's rows of a shared table: 849, 850,
    849, 850 failing, 849 (three runs of the DAG with `airflow dags test`, each mapped
    task running its `meltano run` as the DAG builds it). 849's third pass activates its
    second pass's version; in a shared table that would retire every row of 850, whose
    last good pass is older. Each organization in a schema of its own (docs/airflow.md):
    850's rows all stay live, and 849's deleted contact is marked in 849's schema only."""
    fan_out = versioned_fan_out(
        airflow,
        airflow_home,
        sandbox,
        postgres,
        tmp_path,
        MOKAPEN_ORGANIZATION_ENV=json.dumps(
            {"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "mokapen_{organization_id}"}
        ),
    )
    first = fan_out.dags_test()
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    assert set(fan_out.task_states(first).values()) == {"success"}
    (deleted,) = sandbox.mutate("contacts", org=849, delete=1)["deleted"]

    # The second day 850's task fails (the app was removed from it, for this run only),
    # and its retry fails too; 849's succeeds.
    sandbox.update(organizations={"849": "Acme Sandbox S.r.l."})
    second = fan_out.dags_test()
    assert fan_out.task_states(second) == {
        ("organizations", ""): "success",
        ("meltano_run", "0"): "success",
        ("meltano_run", "1"): "failed",
    }
    assert "The app is not installed in organization 850" in second.stdout + second.stderr
    sandbox.update(organizations={"849": "Acme Sandbox S.r.l.", "850": "Globex Sandbox GmbH"})

    fan_out.env["MOKAPEN_ORGANIZATION_IDS"] = "849"
    third = fan_out.dags_test()
    assert third.returncode == 0, (third.stdout + third.stderr)[-4000:]

    def marked(org: int) -> str:
        return postgres.sql(
            f"SELECT coalesce(string_agg(id::text, ','), '') FROM mokapen_{org}.contacts "
            "WHERE _sdc_deleted_at IS NOT NULL"
        )

    assert marked(849) == str(deleted)
    assert postgres.sql("SELECT count(*) FROM mokapen_849.contacts") == "500"
    assert marked(850) == ""
    assert postgres.sql("SELECT count(*) FROM mokapen_850.contacts") == "500"
    for org in (849, 850):
        owners = postgres.sql(
            f"SELECT string_agg(DISTINCT organization_id::text, ',') FROM mokapen_{org}.contacts"
        )
        assert owners == str(org)
    # Nothing went to the project's shared schema.
    assert postgres.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'mokapen'") == "0"


def test_fan_out_with_deletions_into_one_shared_schema_is_refused_in_one_line(
    airflow, airflow_home, meltano_plugins, sandbox, postgres, tmp_path
):
    """The same sequence's first run with every organization in the project's one schema
    (MOKAPEN_ORGANIZATION_ENV unset): the DAG's first task refuses, in one line and without
    a retry, and no organization is read or loaded."""
    fan_out = versioned_fan_out(airflow, airflow_home, sandbox, postgres, tmp_path)
    del fan_out.env["MOKAPEN_ORGANIZATION_ENV"]
    done = fan_out.dags_test()
    log = done.stdout + done.stderr
    refusals = [line for line in log.splitlines() if "refusing to fan out" in line]
    assert refusals, log[-4000:]
    assert "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA" in refusals[0]
    assert "up_for_retry" not in log
    assert fan_out.task_states(done) == {
        ("organizations", ""): "failed",
        ("meltano_run", ""): "upstream_failed",  # never expanded
    }
    assert sandbox.stats().get("api_requests", 0) == 0
    assert postgres.sql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'mokapen%'") == "0"
