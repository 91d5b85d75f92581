"""Airflow DAG: tap-mokapen's incremental sync, `meltano run` every hour.

Configuration (environment of the Airflow scheduler and workers; for ``airflow dags
test``, of its shell; the DAG reads no Airflow Variables and takes no params):

- ``MOKAPEN_MELTANO_PROJECT_ROOT`` (required): the Meltano project, the folder of its
  ``meltano.yml``.
- ``MOKAPEN_MELTANO_BIN``: the meltano executable (default: ``meltano`` on PATH).
- ``MOKAPEN_MELTANO_ENVIRONMENT``: an environment of that project (default: ``prod``).
- ``MOKAPEN_PIPELINE``: what ``meltano run`` runs, a job of that project or its plugins'
  names (default: the ``mokapen-to-postgres`` job of tap-mokapen's own project).

Before running, the first task asks Meltano to check the pipeline (``meltano run
--dry-run``): a project, environment or job that does not exist fails that task at
once, in one line naming the setting, without a retry.

Credentials reach the tap as ``TAP_MOKAPEN_*`` variables, as in the README.
"""

from __future__ import annotations

import datetime as dt
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


with DAG(
    dag_id="mokapen_incremental",
    description="Incremental Mokapen sync with tap-mokapen through Meltano",
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    # Two runs at once would spend the same organization's quota twice.
    max_active_runs=1,
    tags=["mokapen", "meltano"],
    default_args={
        # A run paused by the daily quota exits 0 (its state resumes the next run), so
        # retries only meet real faults, which the tap already retried for 15 minutes.
        "retries": 1,
        "retry_delay": dt.timedelta(minutes=15),
    },
) as dag:
    checked = task(check_project, execution_timeout=dt.timedelta(minutes=15))()
    meltano_run = BashOperator(
        task_id="meltano_run",
        bash_command=(
            f"{shlex.quote(MELTANO)} --environment {shlex.quote(ENVIRONMENT)} run {PIPELINE}"
        ),
        cwd=PROJECT_ROOT or None,
        # Appended to the worker's environment, which carries the TAP_MOKAPEN_* secrets.
        env={"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
        append_env=True,
        execution_timeout=dt.timedelta(hours=12),
    )
    checked >> meltano_run
