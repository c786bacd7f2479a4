#!/usr/bin/env bash
# Runs the browser suite N times in a row (default 5) against the release bundle in dist/
# (build it first: scripts/test.sh or scripts/run.sh), with Postgres, Redis and coturn
# started as scripts/test.sh starts them, and prints how many runs passed and which tests
# failed. For hunting intermittent failures: `scripts/e2e-repeat.sh 10`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs="${1:-5}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "usage: scripts/e2e-repeat.sh [runs]"
[ -x "$ROOT/dist/server" ] || die "no release bundle in dist/: run scripts/test.sh first"
trap stop_services EXIT
start_postgres; start_redis; start_coturn
cd "$ROOT"
logs="$(mktemp -d /tmp/meshdrop-e2e-repeat.XXXXXX)"
passed=0
for run in $(seq "$runs"); do
  start=$SECONDS
  if node --test tests/e2e/ > "$logs/run-$run.log" 2>&1; then
    passed=$((passed + 1))
    log "run $run of $runs passed in $((SECONDS - start)) s"
  else
    log "run $run of $runs FAILED in $((SECONDS - start)) s (log: $logs/run-$run.log):"
    grep -E "^not ok|^    not ok" "$logs/run-$run.log" >&2 || true
  fi
done
log "$passed of $runs runs passed (logs: $logs)"
[ "$passed" -eq "$runs" ]
