#!/usr/bin/env bash
# Sets up everything (tools, Chromium, Postgres, Redis, coturn when missing), starts the
# services on 127.0.0.1 in a temporary directory, runs every test, and stops what it started.
# Arguments are passed to `cargo test` (e.g. `scripts/test.sh http::sqlite`); with arguments
# only the Rust tests run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_test_tools() {
  apt_install chromium chromium-driver postgresql redis-server coturn
  local dir
  for dir in "$ROOT/tests/e2e" "$ROOT/benches/peerjs"; do
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.src" 2>/dev/null; then
      (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
        && cp package-lock.json node_modules/.package-lock.json.src)
    fi
  done
}

phase "tool setup" install_base_tools
phase "test tool setup" install_test_tools
# Only the release build needs dx: on a fresh machine it compiles alongside the Rust tests,
# lint and fuzzing, which leave a core idle much of the time.
[ $# -gt 0 ] || start_dx_tools
trap 'stop_services; stop_dx_tools' EXIT
phase "services" eval "start_postgres; start_redis; start_coturn"

cd "$ROOT"
phase "css" build_css
phase "rust tests" cargo test --features server "$@"
[ $# -gt 0 ] || phase "link emulator tests" cargo test -q -p meshdrop-linkemu
[ $# -gt 0 ] && exit 0
phase "lint" lint
phase "fuzz" fuzz
phase "waiting for dx" wait_dx_tools
phase "release build" build_bundle
phase "browser tests" node --test tests/e2e/
# The network lab (docs/netlab.md): real browsers in network namespaces on shaped links.
phase "network lab setup" bash scripts/netlab.sh setup
phase "network lab tests" node --test tests/netlab/

# Every benchmark at smoke size: each must still run and print its ratios, so a broken
# benchmark fails here. Full sizes are scripts/bench.sh's (docs/benchmarks.md).
phase "swarm benchmark (smoke)" bench_cargo --bench swarm -- quick
export PEERJS_DIR="$ROOT/benches/peerjs"
phase "signaling load benchmark vs PeerJS (smoke)" bench_cargo --bench signal_load -- quick
phase "browser benchmark (smoke)" env BENCH_SIZE_MIB=32 BENCH_LARGE_MIB=128 BENCH_P1_ROUNDS=1 \
  BENCH_FIRST_RUNS=3 node tests/e2e/bench.mjs
phase "network lab benchmark (smoke)" env LAB_SCALE=smoke node tests/netlab/bench.mjs
log "all tests passed in $SECONDS s"
