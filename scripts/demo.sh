#!/usr/bin/env bash
# The main job: a real sync of the local sandbox into JSONL files through Meltano.
#   bash scripts/demo.sh                  # 500 contacts, 200 tasks, 2 organizations
#   CONTACTS=5000 bash scripts/demo.sh
#   SANDBOX_PORT=9000 bash scripts/demo.sh   # if that port is taken, a free one is used
# Each run writes to a folder of its own, output/<UTC time>/ (DEMO_OUTPUT=dir moves
# them); earlier runs' files are left alone. Meltano keeps the state in .meltano/, so
# the next run is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false

LOG=.meltano-sandbox.log
SANDBOX_PID=
trap '[ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true' EXIT

# Starts the sandbox on port $1 in the background (SANDBOX_PID).
start_sandbox() {
    mokapen-sandbox --port "$1" --contacts "${CONTACTS:-500}" --tasks "${TASKS:-200}" \
        > "$LOG" 2>&1 &
    SANDBOX_PID=$!
}

# Prints the sandbox's URL once it serves, taken from its own first line: the URL is
# then surely that process's, not whatever else holds a port.
# Exit status 2: the port was in use; 1: the sandbox failed otherwise.
sandbox_url() {
    python - "$SANDBOX_PID" "$LOG" <<'PY'
import re, sys, time, urllib.request
from pathlib import Path

pid, log = sys.argv[1], Path(sys.argv[2])


def running() -> bool:
    # A child that exited stays a zombie until the shell reaps it.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


for _ in range(300):
    text = log.read_text()
    found = re.search(r"listening on (http://\S+)", text)
    if found and running():
        try:
            urllib.request.urlopen(f"{found.group(1)}/_sandbox/stats", timeout=5)
        except OSError:
            sys.exit(1)
        print(found.group(1))
        sys.exit(0)
    if not running():
        sys.exit(2 if "is in use" in text else 1)
    time.sleep(0.1)
sys.exit(1)
PY
}

PORT=${SANDBOX_PORT:-8765}
start_sandbox "$PORT"
status=0
URL=$(sandbox_url) || status=$?
if [ "$status" -eq 2 ]; then
    echo "Port $PORT is in use by another program; the sandbox takes a free port instead."
    start_sandbox 0
    status=0
    URL=$(sandbox_url) || status=$?
fi
if [ "$status" -ne 0 ]; then
    echo "The sandbox did not start: $(tail -n 1 "$LOG") (full log: $LOG)" >&2
    exit 1
fi
head -n 2 "$LOG"

meltano install

RUN_DIR="${DEMO_OUTPUT:-output}/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN_DIR"
export TAP_MOKAPEN_BASE_URL="$URL"
export TARGET_JSONL_DESTINATION_PATH="$RUN_DIR" TARGET_JSONL_DO_TIMESTAMP_FILE=false
meltano --environment sandbox run tap-mokapen target-jsonl
# Whatever answered the tap, the sandbox this script started must have served to the end.
if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then
    echo "The sandbox stopped during the run: $(tail -n 1 "$LOG") (full log: $LOG)" >&2
    exit 1
fi

echo
echo "Output of this run, from the sandbox at $URL, in $RUN_DIR:"
for file in "$RUN_DIR"/*.jsonl; do
    printf '  %-40s %6d records\n' "$(basename "$file")" "$(wc -l < "$file")"
done
echo "Running it again is incremental: every page is read again, and only the records"
echo "changed since the last run are written (Mokapen has no filter on updated_at)."
