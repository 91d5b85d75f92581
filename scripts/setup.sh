#!/usr/bin/env bash
# Creates .venv with the tap, the sandbox, Meltano and the test tools, at the versions of
# requirements/lock.txt. Idempotent. LOCK=none installs the newest the bounds allow.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
LOCK=${LOCK:-requirements/lock.txt}
constraints=()
[ "$LOCK" = none ] || constraints=(--constraint "$LOCK")

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet "${constraints[@]}" --upgrade pip
"$VENV/bin/python" -m pip install --quiet "${constraints[@]}" --requirement requirements/dev.txt
