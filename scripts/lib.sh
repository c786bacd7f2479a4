# Shared by scripts/run.sh and scripts/test.sh: tool installation and test services.
# Every step checks first and skips what is already there, so re-running is cheap.
# shellcheck shell=bash

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MESHDROP_CACHE:-$HOME/.cache/meshdrop}"
# Builds live outside the checkout so fresh clones (CI) reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
# dx must not download tools from GitHub: they come from npm and crates.io instead.
export NO_DOWNLOADS=1
TOOLS="$CACHE/npm-tools"
export PATH="$HOME/.cargo/bin:$TOOLS/node_modules/.bin:$PATH"

DX_VERSION=0.7.10

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a phase and records how long it took.
phase() {
  local name=$1; shift
  local start=$SECONDS
  "$@"
  log "$name took $((SECONDS - start)) s"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
    || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
}

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

# Everything a cargo build and the CSS need: the wasm32 target, and wasm-opt, esbuild and
# Tailwind v3 from npm (versions pinned in scripts/tools/package.json).
install_base_tools() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
  command -v npm >/dev/null || die "npm not found: install Node.js 20 first"
  rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  if ! cmp -s "$ROOT/scripts/tools/package.json" "$TOOLS/package.json" || [ ! -x "$TOOLS/node_modules/.bin/wasm-opt" ]; then
    log "installing wasm-opt, esbuild, tailwindcss from npm"
    mkdir -p "$TOOLS"
    cp "$ROOT/scripts/tools/package.json" "$ROOT/scripts/tools/package-lock.json" "$TOOLS/"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

dx_tools_present() {
  dx --version 2>/dev/null | grep -q "$DX_VERSION" \
    && wasm-bindgen --version 2>/dev/null | grep -q " $(wasm_bindgen_version)\$"
}

# dioxus-cli and wasm-bindgen-cli, needed only by the release build. They compile in a
# target directory of their own, so this can run while another cargo build runs.
install_dx_tools() {
  local dir="$CACHE/tools-target"
  if ! dx --version 2>/dev/null | grep -q "$DX_VERSION"; then
    log "installing dioxus-cli $DX_VERSION (about 20 minutes on 2 cores, once)"
    CARGO_TARGET_DIR="$dir" cargo install dioxus-cli --version "$DX_VERSION" --locked
  fi
  local wb; wb="$(wasm_bindgen_version)"
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb\$"; then
    log "installing wasm-bindgen-cli $wb (must equal Cargo.lock)"
    # --locked fails for this crate on this toolchain; the version pin is what matters.
    CARGO_TARGET_DIR="$dir" cargo install wasm-bindgen-cli --version "$wb" --force
  fi
  rm -rf "$dir"
}

install_build_tools() {
  install_base_tools
  install_dx_tools
}

# On a fresh machine dioxus-cli takes about 20 minutes to compile, yet only the release
# build needs it: `start_dx_tools` compiles it in the background (output in a log file),
# and `wait_dx_tools` waits for it before the release build. Nothing happens when both
# tools are present.
DX_TOOLS_PID=""
DX_TOOLS_LOG="$CACHE/dx-tools.log"
start_dx_tools() {
  dx_tools_present && return 0
  mkdir -p "$CACHE"
  log "installing dioxus-cli and wasm-bindgen-cli in the background (log: $DX_TOOLS_LOG)"
  (install_dx_tools) > "$DX_TOOLS_LOG" 2>&1 &
  DX_TOOLS_PID=$!
}
wait_dx_tools() {
  [ -n "$DX_TOOLS_PID" ] || return 0
  if ! wait "$DX_TOOLS_PID"; then
    tail -n 40 "$DX_TOOLS_LOG" >&2
    die "installing dioxus-cli or wasm-bindgen-cli failed (log: $DX_TOOLS_LOG)"
  fi
  DX_TOOLS_PID=""
}
stop_dx_tools() {
  [ -n "$DX_TOOLS_PID" ] || return 0
  pkill -TERM -P "$DX_TOOLS_PID" 2>/dev/null || true
  kill "$DX_TOOLS_PID" 2>/dev/null || true
}

# Tailwind's output must exist before any cargo build: asset!() checks for the file.
build_css() {
  (cd "$ROOT" && tailwindcss --input tailwind.css --output assets/tailwind.css --minify 2>/dev/null)
}

# Release bundle: dist/server plus dist/public (wasm, js, css).
build_bundle() {
  build_css
  (cd "$ROOT" && dx bundle --web --release --out-dir dist)
  [ -x "$ROOT/dist/server" ] || die "dx bundle produced no dist/server"
}

# fmt and clippy for both builds: the server (native) and the browser (wasm32).
lint() {
  (cd "$ROOT" && cargo fmt --all --check \
    && cargo clippy --features server,sim --all-targets -- -D warnings \
    && cargo clippy --features web --target wasm32-unknown-unknown -- -D warnings \
    && cargo clippy -p meshdrop-linkemu --all-targets -- -D warnings)
}

# cargo-fuzz targets (fuzz/): libFuzzer needs nightly flags, which RUSTC_BOOTSTRAP allows
# on the stable toolchain. Runs are counted, not timed, so the result does not depend on
# machine speed.
fuzz() {
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
  (cd "$ROOT/fuzz" && export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CACHE/fuzz-target" \
    && cargo fuzz run -O wire_decode -- -runs=300000 -max_len=4096 2>&1 | grep -E "^Done" \
    && cargo fuzz run -O hash_layer -- -runs=300000 -max_len=4096 2>&1 | grep -E "^Done" \
    && cargo fuzz run -O swarm_messages -- -runs=30000 -max_len=4096 2>&1 | grep -E "^Done")
}

# The benchmarks build in the release bundle's profile and target directory, so they reuse
# most of what it compiled (on a fresh machine 4 minutes instead of 9).
bench_cargo() {
  (cd "$ROOT" && cargo bench --features server,sim --profile server-release \
    --target "$(rustc -vV | sed -n 's/^host: //p')" \
    --config 'profile.server-release.inherits="release"' --config 'profile.server-release.strip=false' "$@")
}

# ---- services for tests (each on 127.0.0.1 in a temporary directory) ----

SERVICES_DIR=""
SERVICE_PIDS=()

services_dir() {
  if [ -z "$SERVICES_DIR" ]; then
    SERVICES_DIR="$(mktemp -d /tmp/meshdrop-services.XXXXXX)"
    chmod 755 "$SERVICES_DIR"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_postgres() {
  services_dir
  local bin; bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  local data="$SERVICES_DIR/pg" port; port="$(free_port)"
  # initdb refuses to run as root; the Debian package creates a 'postgres' user for this.
  local run=()
  if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); fi
  mkdir -p "$data"
  if [ "$(id -u)" = 0 ]; then chown postgres "$data"; fi
  "${run[@]}" "$bin/initdb" -D "$data" -U meshdrop --auth=trust -E UTF8 >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$data/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c max_connections=200" start >/dev/null
  PG_STOP=("${run[@]}" "$bin/pg_ctl" -D "$data" -m immediate stop)
  export MESHDROP_TEST_POSTGRES="postgres://meshdrop@127.0.0.1:$port/postgres"
  log "postgres on 127.0.0.1:$port"
}

# Redis on a free loopback port, no persistence.
start_redis() {
  services_dir
  local port; port="$(free_port)"
  mkdir -p "$SERVICES_DIR/redis"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$SERVICES_DIR/redis" --logfile "$SERVICES_DIR/redis/log" --daemonize no &
  SERVICE_PIDS+=("$!")
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null || die "redis did not start (see $SERVICES_DIR/redis/log)"
  export MESHDROP_TEST_REDIS="redis://127.0.0.1:$port"
  log "redis on 127.0.0.1:$port"
}

# coturn with TURN REST credentials (use-auth-secret), relaying on loopback only.
start_coturn() {
  services_dir
  local port; port="$(free_port)"
  local secret; secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p "$SERVICES_DIR/coturn"
  turnserver -n --listening-ip=127.0.0.1 --listening-port="$port" --relay-ip=127.0.0.1 \
    --min-port=49152 --max-port=65535 --realm=meshdrop.test \
    --use-auth-secret --static-auth-secret="$secret" --allow-loopback-peers \
    --no-tls --no-dtls --no-cli --fingerprint --pidfile="$SERVICES_DIR/coturn/pid" \
    --log-file="$SERVICES_DIR/coturn/log" --simple-log >/dev/null 2>&1 &
  SERVICE_PIDS+=("$!")
  sleep 0.5
  kill -0 "$!" 2>/dev/null || die "coturn did not start (see $SERVICES_DIR/coturn/log)"
  export MESHDROP_TEST_TURN="127.0.0.1:$port" MESHDROP_TEST_TURN_SECRET="$secret"
  log "coturn on 127.0.0.1:$port"
}

stop_services() {
  if [ -n "${PG_STOP+x}" ]; then "${PG_STOP[@]}" >/dev/null 2>&1 || true; fi
  for pid in "${SERVICE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$SERVICES_DIR" ] && rm -rf "$SERVICES_DIR"
  return 0
}
