#!/usr/bin/env bash
# The test suite: sets up .venv (scripts/setup.sh), lints, type-checks, runs pytest.
#   bash scripts/test.sh          everything (the README's test command, and CI's)
#   bash scripts/test.sh --fast   all but the end-to-end tier (Meltano, PostgreSQL,
#                                 Airflow, the demo): under a minute
# Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=false
if [ "${1:-}" = --fast ]; then
    fast=true
    shift
fi
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The CI and release workflows against the GitHub Actions schema that check-jsonschema
# ships (no network): a misspelled key, an unknown event or a job without runs-on fails
# here, not on the first push.
.venv/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
# The fast tier on four workers: the project's machines have two cores, and much of the
# tier waits on sockets and child processes, not the CPU (measured: 66 s with two
# workers, 48-55 s with four). The end-to-end tier shares one Meltano project and one
# Airflow virtualenv: one test at a time.
# A tier that -k or a path leaves empty (pytest's exit 5) is not a failure.
tier() { .venv/bin/python -m pytest "$@" || [ $? -eq 5 ]; }
tier -n 4 -m "not slow" "$@"
$fast || tier -m slow "$@"
# The figure the README's "The suite takes about ..." quotes.
echo "scripts/test.sh took $SECONDS s"
