#!/usr/bin/env bash
# The main job: a real sync of the local sandbox into JSONL files through Meltano.
#   bash scripts/demo.sh            # 500 contacts, 200 tasks, 2 organizations
#   CONTACTS=5000 bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false

PORT=${SANDBOX_PORT:-8765}
mokapen-sandbox --port "$PORT" --contacts "${CONTACTS:-500}" --tasks "${TASKS:-200}" \
    > .meltano-sandbox.log 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true' EXIT
python - "$PORT" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_sandbox/stats", timeout=1)
        break
    except OSError:
        time.sleep(0.2)
PY
head -n 2 .meltano-sandbox.log

meltano install
rm -f output/*.jsonl
export TAP_MOKAPEN_BASE_URL="http://127.0.0.1:$PORT"
meltano --environment sandbox run tap-mokapen target-jsonl

echo
echo "Output landed in $PWD/output:"
for file in output/*.jsonl; do
    printf '  %-60s %6d records\n' "$file" "$(wc -l < "$file")"
done
