#!/usr/bin/env bash
# Sets up everything the build needs (skipping what is installed), builds the release bundle
# and serves meshdrop on http://127.0.0.1:8080 with the embedded defaults (SQLite in ./data).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

phase "tool setup" install_build_tools
phase "release build" build_bundle
cd "$ROOT"
export IP="${IP:-127.0.0.1}" PORT="${PORT:-8080}"
log "serving on http://$IP:$PORT (Ctrl-C stops)"
exec "$ROOT/dist/server"
