#!/usr/bin/env bash
# Every benchmark at full size (docs/benchmarks.md says what each measures): the swarm
# simulator up to N = 1000, the signaling load against PeerJS, and the browser benchmark
# (P1 and P2 at 1 GiB, P4 at 4 GiB; about 40 minutes on the reference machine), and the
# network lab's L1-L4 (docs/netlab.md). Sets up tools and services as scripts/test.sh does.
# Add the results to benches/RESULTS.md.
#   scripts/bench.sh            all of them
#   scripts/bench.sh swarm      one of: swarm, signal, browser, lab
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

which="${1:-all}"
case "$which" in all|swarm|signal|browser|lab) ;; *) die "usage: scripts/bench.sh [swarm|signal|browser|lab]" ;; esac

phase "tool setup" install_build_tools
apt_install chromium chromium-driver postgresql redis-server coturn
for dir in "$ROOT/tests/e2e" "$ROOT/benches/peerjs"; do
  [ -d "$dir/node_modules" ] || (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
done
trap stop_services EXIT
phase "services" eval "start_postgres; start_redis"
cd "$ROOT"
phase "release build" build_bundle
if [ "$which" = all ] || [ "$which" = swarm ]; then
  phase "swarm benchmark" bench_cargo --bench swarm
fi
if [ "$which" = all ] || [ "$which" = signal ]; then
  export PEERJS_DIR="$ROOT/benches/peerjs"
  phase "signaling load benchmark vs PeerJS" bench_cargo --bench signal_load
fi
if [ "$which" = all ] || [ "$which" = browser ]; then
  export BENCH_SIZE_MIB="${BENCH_SIZE_MIB:-1024}" BENCH_LARGE_MIB="${BENCH_LARGE_MIB:-4096}"
  phase "browser benchmark (P1, P2, P4, hashing, first byte)" node tests/e2e/bench.mjs
fi
if [ "$which" = all ] || [ "$which" = lab ]; then
  phase "network lab setup" bash scripts/netlab.sh setup
  phase "network lab benchmark (L1-L4)" env LAB_SCALE=full node tests/netlab/bench.mjs
fi
log "benchmarks done in $SECONDS s"
