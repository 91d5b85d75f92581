"""Airflow DAG: tap-mokapen's incremental sync, `meltano run` every hour.

Configuration (environment of the Airflow scheduler and workers; nothing hard-coded):

- ``MOKAPEN_MELTANO_PROJECT_ROOT`` (required): the Meltano project (this repository).
- ``MOKAPEN_MELTANO_BIN``: the meltano executable (default: ``meltano`` on PATH).
- ``MOKAPEN_MELTANO_ENVIRONMENT``: the Meltano environment (default: ``prod``).
- ``MOKAPEN_PIPELINE``: what ``meltano run`` runs (default: the ``mokapen-to-postgres`` job).

Credentials reach the tap as ``TAP_MOKAPEN_*`` variables, as in the README.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

PROJECT_ROOT = os.environ.get("MOKAPEN_MELTANO_PROJECT_ROOT", "")
MELTANO = os.environ.get("MOKAPEN_MELTANO_BIN", "meltano")
ENVIRONMENT = os.environ.get("MOKAPEN_MELTANO_ENVIRONMENT", "prod")
PIPELINE = os.environ.get("MOKAPEN_PIPELINE", "mokapen-to-postgres")

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
    BashOperator(
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
