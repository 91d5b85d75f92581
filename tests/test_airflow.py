"""The shipped Airflow DAG, run for real with `airflow dags test` in its own virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_VENV = ROOT / ".venv-airflow"
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


def test_dag_runs_meltano_and_the_records_land(airflow, meltano_plugins, sandbox, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "orchestrate" / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
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
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
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
