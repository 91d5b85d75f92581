"""Airflow DAG: tap-mokapen fanned out, one mapped `meltano run` per Mokapen organization.

The first task decides the organizations: ``MOKAPEN_ORGANIZATION_IDS`` if set, else
``meltano invoke tap-mokapen --list-organizations`` (what the configured token can
see). Each organization then gets a task of its own (dynamic task mapping) that
runs the pipeline for that organization alone, under its own Meltano state id
(``--state-id-suffix <organization>``), so one organization's failure is retried
alone and a paused one (daily quota: the tap exits 0 with a resumable state)
leaves the others untouched.

Mokapen's 60 requests a minute are per client, not per organization: the tasks
share them. They run in an Airflow pool, and each gets ``requests_per_minute``
equal to the client's budget divided by the pool's size, so a full pool stays
within the throttle.

Configuration (environment of the Airflow scheduler and workers; nothing hard-coded):

- ``MOKAPEN_MELTANO_PROJECT_ROOT`` (required), ``MOKAPEN_MELTANO_BIN``,
  ``MOKAPEN_MELTANO_ENVIRONMENT`` and ``MOKAPEN_PIPELINE``: as for mokapen_incremental.
- ``MOKAPEN_EXTRACTOR``: the extractor that lists the organizations (default: ``tap-mokapen``).
- ``MOKAPEN_ORGANIZATION_IDS``: the organizations, as a JSON list (``[849, 850]``) or
  comma separated (``849,850``). Unset: listed from Mokapen at the start of each run.
- ``MOKAPEN_POOL``: the Airflow pool the tasks run in (default: ``mokapen``). Create it
  first: ``airflow pools set mokapen 3 "Mokapen API client"``.
- ``MOKAPEN_POOL_SLOTS``: that pool's size (default: 3).
- ``MOKAPEN_REQUESTS_PER_MINUTE``: the client's throttle, shared by every task (default:
  60, Mokapen's). Each task gets this divided by ``MOKAPEN_POOL_SLOTS``.
- ``MOKAPEN_RETRY_DELAY_MINUTES``: how long a failed organization's task waits before its
  one retry (default: 15).
- ``MOKAPEN_ORGANIZATION_ENV``: a JSON object of further variables for each organization's
  task, ``{organization_id}`` replaced in the values, e.g.
  ``{"TARGET_JSONL_DESTINATION_PATH": "/data/mokapen/{organization_id}"}``. The values
  show in Airflow's rendered fields: never put a secret here.

Like mokapen_incremental, the first task fails at once, in one line and without a retry,
when the project, environment or pipeline named does not exist (``meltano run --dry-run``).

Credentials reach the tap as ``TAP_MOKAPEN_*`` variables, as in the README; the
first task's token (``TAP_MOKAPEN_ORGANIZATION_ID``) is the one that lists.

With ``detect_deletions``, each organization needs a target schema of its own
(``MOKAPEN_ORGANIZATION_ENV='{"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA":
"mokapen_{organization_id}"}'``): each task sees one organization, and its
ACTIVATE_VERSION would otherwise retire the other organizations' rows of a shared
table. Without one, the DAG refuses to fan out, in one line saying so (or run all
organizations in one task: mokapen_incremental).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shlex
import subprocess
from pathlib import Path

try:  # the task SDK's since Airflow 3.2 (the old name warns on every parse)
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

PROJECT_ROOT = os.environ.get("MOKAPEN_MELTANO_PROJECT_ROOT", "")
MELTANO = os.environ.get("MOKAPEN_MELTANO_BIN", "meltano")
ENVIRONMENT = os.environ.get("MOKAPEN_MELTANO_ENVIRONMENT", "prod")
PIPELINE = os.environ.get("MOKAPEN_PIPELINE", "mokapen-to-postgres")
EXTRACTOR = os.environ.get("MOKAPEN_EXTRACTOR", "tap-mokapen")
POOL = os.environ.get("MOKAPEN_POOL", "mokapen")

# The id ends up in a Meltano state id, a shell variable and maybe a folder name.
ORGANIZATION_ID = re.compile(r"[A-Za-z0-9_-]+")

log = logging.getLogger(__name__)


def positive_int(name: str, default: int) -> int:
    value = os.environ.get(name) or str(default)
    if not value.isdigit() or int(value) < 1:
        msg = f"{name} must be a positive whole number (got {value!r})"
        raise ValueError(msg)
    return int(value)


def requests_per_minute_per_task() -> int:
    """Each task's share of the client's throttle: a pool full of tasks stays within it
    (a task starting in a slot does not know what its predecessor sent: see the README)."""
    budget = positive_int("MOKAPEN_REQUESTS_PER_MINUTE", 60)
    return max(1, budget // positive_int("MOKAPEN_POOL_SLOTS", 3))


def parse_organization_ids(text: str) -> list[str]:
    """A JSON list or a comma-separated list, in order, without duplicates."""
    text = text.strip()
    values = json.loads(text) if text.startswith("[") else text.split(",")
    ids = [str(value).strip() for value in values if str(value).strip()]
    wrong = [i for i in ids if not ORGANIZATION_ID.fullmatch(i)]
    if wrong:
        msg = f"MOKAPEN_ORGANIZATION_IDS: not an organization id: {', '.join(map(repr, wrong))}"
        raise ValueError(msg)
    return list(dict.fromkeys(ids))


def meltano_environment() -> dict[str, str]:
    """The worker's environment (it carries the secrets) with the DAG's own settings."""
    return {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_MOKAPEN_REQUESTS_PER_MINUTE": str(requests_per_minute_per_task()),
    }


def organization_environment(organization_id: str) -> dict[str, str]:
    """What one organization's task adds to the worker's environment: no secret."""
    extra = json.loads(os.environ.get("MOKAPEN_ORGANIZATION_ENV") or "{}")
    if not isinstance(extra, dict):
        msg = "MOKAPEN_ORGANIZATION_ENV must be a JSON object of variable names and values"
        raise TypeError(msg)
    # Each organization's rows in tables of its own: the tap may retire rows though it
    # reads one organization of several (it refuses to otherwise).
    separated = {"TAP_MOKAPEN_TABLES_PER_ORGANIZATION": "true"} if separates_tables() else {}
    return {
        **{
            name: str(value).replace("{organization_id}", organization_id)
            for name, value in extra.items()
        },
        **separated,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_MOKAPEN_REQUESTS_PER_MINUTE": str(requests_per_minute_per_task()),
        # One organization per run: whatever the worker says about several is overridden
        # (organization_ids is unset by the command: the tap refuses both at once).
        "TAP_MOKAPEN_ORGANIZATION_ID": organization_id,
        "TAP_MOKAPEN_ALL_ORGANIZATIONS": "false",
    }


def check_project() -> None:
    """Fail without a retry, in one line, when the settings name no Meltano project,
    environment or pipeline of it: a retry cannot fix a name. Meltano itself judges the
    pipeline (``run --dry-run`` reads the project, runs nothing and installs nothing), so
    jobs, plugins and environments from included files count too. Kept in each DAG file,
    so that one file is all a DAG needs."""
    if not PROJECT_ROOT or not (Path(PROJECT_ROOT) / "meltano.yml").is_file():
        msg = (
            f"MOKAPEN_MELTANO_PROJECT_ROOT={PROJECT_ROOT!r} is not a Meltano project "
            "(no meltano.yml there): set it to your project's folder"
        )
        raise AirflowFailException(msg)
    command = [MELTANO, "--environment", ENVIRONMENT, "run", "--dry-run", "--no-install"]
    try:
        done = subprocess.run(
            [*command, *shlex.split(PIPELINE)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    except FileNotFoundError:
        msg = f"MOKAPEN_MELTANO_BIN={MELTANO!r}: no such executable (the path of your meltano)"
        raise AirflowFailException(msg) from None
    if done.returncode == 0:
        return
    said = done.stdout + done.stderr
    environment = re.search(r"Environment '[^']*' was not found", said)
    if environment:
        msg = (
            f"MOKAPEN_MELTANO_ENVIRONMENT={ENVIRONMENT!r} is not an environment of the Meltano "
            f"project {PROJECT_ROOT} ({environment[0]}): name one of its meltano.yml"
        )
        raise AirflowFailException(msg)
    block = re.search(r"Block (.+) not found", said)
    if block:
        msg = (
            f"MOKAPEN_PIPELINE={PIPELINE!r} is not a job or plugins of the Meltano project "
            f"{PROJECT_ROOT} ({block[0]}): name one of its jobs (meltano job list) or "
            "'tap-mokapen <loader>'"
        )
        raise AirflowFailException(msg)
    # Anything else (the system database out of reach, say) may pass: retried as usual.
    lines = [line for line in said.splitlines() if line.strip()]
    msg = f"meltano run --dry-run {PIPELINE} failed: {lines[-1] if lines else 'no output'}"
    raise RuntimeError(msg)


def detect_deletions_configured() -> bool:
    """Whether the extractor detects deletions: its environment, else Meltano's config
    of it (read here, never logged: it holds the credentials)."""
    given = os.environ.get("TAP_MOKAPEN_DETECT_DELETIONS")
    if given is None:
        done = subprocess.run(
            [MELTANO, "--environment", ENVIRONMENT, "config", EXTRACTOR],
            cwd=PROJECT_ROOT or None,
            env=meltano_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            given = json.loads(done.stdout or "{}").get("detect_deletions")
        except (ValueError, AttributeError):
            given = None
    if isinstance(given, str):
        given = json.loads(given) if given.strip().startswith("[") else given.strip()
    return bool(given)


def separates_tables() -> bool:
    """Whether MOKAPEN_ORGANIZATION_ENV gives each organization a schema, table, database
    or path of its own (a variable of that kind naming {organization_id})."""
    extra = json.loads(os.environ.get("MOKAPEN_ORGANIZATION_ENV") or "{}")
    return isinstance(extra, dict) and any(
        "{organization_id}" in str(value)
        for name, value in extra.items()
        if re.search(r"SCHEMA|TABLE|DESTINATION|DATABASE|PATH", name)
    )


def shared_tables_problem() -> str | None:
    """Why fanning out would let one organization's deletions retire the others' rows."""
    if separates_tables() or not detect_deletions_configured():
        return None
    return (
        "detect_deletions is set and every organization's task would load into the same "
        "tables, where one organization's ACTIVATE_VERSION retires the others' rows: "
        "give each organization a target schema of its own (MOKAPEN_ORGANIZATION_ENV="
        '\'{"TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "mokapen_{organization_id}"}\') or '
        "run every organization in one task (mokapen_incremental); refusing to fan out"
    )


with DAG(
    dag_id="mokapen_per_organization",
    description="tap-mokapen through Meltano, one task (and one state) per Mokapen organization",
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    # Two runs at once would spend the same organizations' quota twice.
    max_active_runs=1,
    tags=["mokapen", "meltano"],
    default_args={
        # Each mapped task is retried alone. A quota pause exits 0, so retries only meet
        # real faults, which the tap already retried for max_wait_seconds.
        "retries": 1,
        "retry_delay": dt.timedelta(
            minutes=float(os.environ.get("MOKAPEN_RETRY_DELAY_MINUTES") or 15)
        ),
        # Every task that talks to Mokapen takes a slot of the client's pool.
        "pool": POOL,
    },
) as dag:

    @task(execution_timeout=dt.timedelta(hours=1))
    def organizations() -> list[str]:
        """The organizations of this run: configured, else listed by Mokapen; first, the
        settings' mistakes that no retry can mend."""
        check_project()
        problem = shared_tables_problem()
        if problem:  # a setting to change, not a fault to retry
            raise AirflowFailException(problem)
        configured = os.environ.get("MOKAPEN_ORGANIZATION_IDS", "")
        if configured.strip():
            ids = parse_organization_ids(configured)
            log.info("Organizations from MOKAPEN_ORGANIZATION_IDS: %s", ", ".join(ids))
            return ids
        done = subprocess.run(
            [MELTANO, "--environment", ENVIRONMENT, "invoke", EXTRACTOR, "--list-organizations"],
            cwd=PROJECT_ROOT or None,
            env=meltano_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        # The tap redacts its own lines; Meltano's carry no secret either.
        for line in done.stderr.splitlines():
            log.info("%s", line)
        if done.returncode != 0:
            msg = f"--list-organizations failed with exit code {done.returncode} (see above)"
            raise RuntimeError(msg)
        # The tap prints the list as the last line; anything before it is not ours.
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        ids = [str(i) for i in json.loads(lines[-1])] if lines else []
        log.info("Organizations listed by Mokapen: %s", ", ".join(ids) or "none")
        return ids

    BashOperator.partial(
        task_id="meltano_run",
        bash_command=(
            "unset TAP_MOKAPEN_ORGANIZATION_IDS; exec "
            f"{shlex.quote(MELTANO)} --environment {shlex.quote(ENVIRONMENT)} run "
            f'--state-id-suffix "$TAP_MOKAPEN_ORGANIZATION_ID" {PIPELINE}'
        ),
        cwd=PROJECT_ROOT or None,
        append_env=True,
        execution_timeout=dt.timedelta(hours=12),
        # The organization names each mapped task in the UI instead of its index.
        map_index_template="{{ task.env['TAP_MOKAPEN_ORGANIZATION_ID'] }}",
    ).expand(env=organizations().map(organization_environment))
