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
[ $# -gt 0 ] && exit 0
phase "lint" lint
phase "fuzz" fuzz
phase "waiting for dx" wait_dx_tools
phase "release build" build_bundle
# The benchmarks build in the release build's profile and target directory, so they reuse
# most of what it compiled (on a fresh machine 4 minutes instead of 9).
bench() {
  cargo bench --features server,sim --profile server-release --target "$(rustc -vV | sed -n 's/^host: //p')" \
    --config 'profile.server-release.inherits="release"' --config 'profile.server-release.strip=false' "$@"
}
# A fresh machine reaches this point after about 55 minutes (a warm one after about 8):
# there the swarm benchmark skips N = 1000 (about 2.5 minutes).
if [ "$SECONDS" -lt 1800 ]; then SWARM_BENCH_ARGS=(); else SWARM_BENCH_ARGS=(-- quick); fi
phase "swarm benchmark" bench --bench swarm "${SWARM_BENCH_ARGS[@]}"
export PEERJS_DIR="$ROOT/benches/peerjs"
phase "signaling load benchmark (vs PeerJS)" bench --bench signal_load

phase "browser tests" node --test tests/e2e/
# P1 and P2 run at a quarter of their full size (256 MiB); the full size is
# BENCH_SIZE_MIB=1024 node tests/e2e/bench.mjs (about 25 minutes more). P4 runs at its full
# size (4 GiB to disk, 8-10 minutes) when this run has the time. A warm machine reaches this
# point after about 30 minutes; a fresh one (installing dioxus-cli and building everything
# cold) after 65-72 (2026-12-02) or later on a slow day (on 2026-12-03, before dx compiled
# in the background, the browser tests alone started after 73), and there the benchmark
# shrinks to stay inside CI's 90 minutes: P4 at 1 GiB, and past 65 minutes P1 and P2 at
# 128 MiB and P4 at 512 MiB (about 5 minutes in all).
if [ "$SECONDS" -lt 2700 ]; then
  default_large=4096 default_size=256
elif [ "$SECONDS" -lt 3900 ]; then
  default_large=1024 default_size=256
else
  default_large=512 default_size=128
fi
export BENCH_SIZE_MIB="${BENCH_SIZE_MIB:-$default_size}" BENCH_LARGE_MIB="${BENCH_LARGE_MIB:-$default_large}"
phase "browser benchmark (P1, P2, P4, hashing, first byte)" node tests/e2e/bench.mjs
log "all tests passed in $SECONDS s"
