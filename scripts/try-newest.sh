#!/usr/bin/env bash
# Tries the newest versions pyproject.toml's bounds allow: installs them into .venv-newest
# (requirements/lock.txt not applied), runs the fast tier there, and prints what moved.
#   bash scripts/try-newest.sh               try, and show the versions that differ
#   bash scripts/try-newest.sh --write-lock  the same; if the fast tier passes, the new
#                                            set becomes requirements/lock.txt (then run
#                                            the whole suite: bash scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

rm -rf .venv-newest
VENV=.venv-newest LOCK=none bash scripts/setup.sh
freeze() { .venv-newest/bin/python -m pip freeze --all --exclude-editable | grep -v '^#'; }
echo "Versions that differ from requirements/lock.txt (< locked, > newest):"
diff <(grep -v '^#' requirements/lock.txt | sort) <(freeze | sort) || true
.venv-newest/bin/python -m pytest -n 4 -m "not slow" -p no:cacheprovider -q
if [ "${1:-}" = --write-lock ]; then
    {
        echo "# The exact set the whole suite passed with (Python 3.11), used as pip constraints by"
        echo "# scripts/setup.sh. Regenerate with: bash scripts/try-newest.sh --write-lock"
        freeze
    } > requirements/lock.txt
    echo "requirements/lock.txt now holds the newest set; run bash scripts/test.sh before committing it."
fi
