#!/usr/bin/env bash
# The network lab: a small internet of Linux network namespaces on this machine (docs/netlab.md).
#
#   netlab.sh check                  one line: "netlab: ready", or why the lab cannot run here
#   netlab.sh setup                  installs the lab's tools and builds the link emulator
#   netlab.sh up LAB                 the "wan" namespace with its bridge (10.237.0.1/24)
#   netlab.sh peer LAB I [k=v ...]   peer I (1..200) behind router I, its uplink shaped:
#        rate=2mbyte (tc tbf; k/mbyte/mbit)  delay=20 (one-way ms)  jitter=0 (ms)  loss=0 (0..1)
#        queue=50 (bottleneck queue, ms at the rate)  nat=none|cone|symmetric
#   netlab.sh link LAB I up|down     cuts or restores peer I's link (both directions)
#   netlab.sh turn LAB SECRET        coturn on 10.237.0.1:3478 in the wan namespace
#   netlab.sh stats LAB I            peer I's uplink counters as JSON (tc and the emulator)
#   netlab.sh down LAB               kills every process in the lab's namespaces, removes them
#
# Addresses live only inside the lab's namespaces: nothing links them to this machine's own
# network namespace, so no packet can leave. Namespaces are md-LAB-wan, md-LAB-rI (router),
# md-LAB-pI (peer); run files (emulator stats, logs) are under /run/meshdrop-netlab/LAB.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IPT=iptables-legacy # the nftables backend has no NFQUEUE support on this kernel
RUN_BASE=/run/meshdrop-netlab
LINKEMU="$CARGO_TARGET_DIR/release/linkemu"

lab_name_ok() { [[ "$1" =~ ^[a-z0-9]{1,8}$ ]] || die "lab name must be 1-8 of [a-z0-9]: $1"; }
ns() { echo "md-$1-$2"; }
inns() { local n=$1; shift; ip netns exec "$n" "$@"; }

cmd_check() {
  local why=""
  if [ "$(id -u)" != 0 ]; then why="needs root (CAP_NET_ADMIN) to create network namespaces"
  elif ! command -v $IPT >/dev/null || ! command -v tc >/dev/null; then why="needs iptables and iproute2 (netlab.sh setup)"
  elif [ ! -x "$LINKEMU" ]; then why="the link emulator is not built (netlab.sh setup)"
  elif ! ip netns add md-check-$$ 2>/dev/null; then why="cannot create a network namespace here"
  else
    local ok=1
    inns md-check-$$ $IPT -A OUTPUT -o lo -j NFQUEUE --queue-num 9 --queue-bypass 2>/dev/null || ok=0
    inns md-check-$$ tc qdisc add dev lo root tbf rate 1mbit burst 3000 limit 3000 2>/dev/null || ok=0
    ip netns del md-check-$$
    [ $ok = 1 ] || why="the kernel lacks NFQUEUE or tbf"
  fi
  if [ -n "$why" ]; then echo "netlab: unavailable: $why"; return 1; fi
  echo "netlab: ready"
}

cmd_setup() {
  apt_install iproute2 iptables nftables iputils-ping curl coturn
  (cd "$ROOT" && cargo build --release -q -p meshdrop-linkemu)
}

cmd_up() {
  local lab=$1; lab_name_ok "$lab"
  cmd_down "$lab" 2>/dev/null || true
  mkdir -p "$RUN_BASE/$lab"
  local wan; wan=$(ns "$lab" wan)
  add_ns "$wan"
  inns "$wan" ip link add br0 type bridge
  inns "$wan" ip addr add 10.237.0.1/24 dev br0
  inns "$wan" ip link set br0 up
  inns "$wan" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.br0.send_redirects=0
}

# A namespace with IPv6 off, so no address appears seconds later (duplicate address
# detection would finish after the browser started, and Chromium aborts loads on an address
# change with ERR_NETWORK_CHANGED), and the lab stays IPv4 only.
add_ns() {
  ip netns add "$1"
  inns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  inns "$1" ip link set lo up
}

# tc tbf rate from "2mbyte", "500kbyte", "8mbit": prints "<bytes per second>".
rate_bytes() {
  local v=$1
  case "$v" in
    *mbyte) awk -v x="${v%mbyte}" 'BEGIN { printf "%d", x * 1000000 }' ;;
    *kbyte) awk -v x="${v%kbyte}" 'BEGIN { printf "%d", x * 1000 }' ;;
    *mbit) awk -v x="${v%mbit}" 'BEGIN { printf "%d", x * 125000 }' ;;
    *) die "rate must end in mbyte, kbyte or mbit: $v" ;;
  esac
}

cmd_peer() {
  local lab=$1 i=$2; shift 2; lab_name_ok "$lab"
  [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -ge 1 ] && [ "$i" -le 200 ] || die "peer index must be 1..200: $i"
  local rate="" delay=0 jitter=0 loss=0 queue=50 nat=none kv
  for kv in "$@"; do
    case "$kv" in
      rate=*) rate=${kv#rate=} ;; delay=*) delay=${kv#delay=} ;; jitter=*) jitter=${kv#jitter=} ;;
      loss=*) loss=${kv#loss=} ;; queue=*) queue=${kv#queue=} ;; nat=*) nat=${kv#nat=} ;;
      *) die "unknown peer setting: $kv" ;;
    esac
  done
  case "$nat" in none|cone|symmetric) ;; *) die "nat must be none, cone or symmetric: $nat" ;; esac
  local wan router peer
  wan=$(ns "$lab" wan); router=$(ns "$lab" "r$i"); peer=$(ns "$lab" "p$i")
  add_ns "$router"
  add_ns "$peer"
  # wan bridge <-> router
  inns "$wan" ip link add "w$i" type veth peer name wan netns "$router"
  inns "$wan" ip link set "w$i" master br0 up
  inns "$router" ip addr add "10.237.0.$((10 + i))/24" dev wan
  inns "$router" ip link set wan up
  inns "$router" ip route add default via 10.237.0.1
  # router <-> peer
  inns "$router" ip link add lan type veth peer name eth0 netns "$peer"
  inns "$router" ip addr add "10.237.$i.1/24" dev lan
  inns "$router" ip link set lan up
  inns "$peer" ip addr add "10.237.$i.2/24" dev eth0
  inns "$peer" ip link set eth0 up
  inns "$peer" ip route add default via "10.237.$i.1"
  inns "$router" sysctl -qw net.ipv4.ip_forward=1
  # The wan knows every peer LAN, NATed ones included: coturn closes a whole allocation when
  # a send to a peer's private candidate fails with "network unreachable".
  inns "$wan" ip route add "10.237.$i.0/24" via "10.237.0.$((10 + i))"

  if [ -n "$rate" ]; then
    local bps; bps=$(rate_bytes "$rate")
    # Burst: 4 ms at the rate (at least two full packets); queue: `queue` ms at the rate.
    local burst=$(( bps / 250 > 3000 ? bps / 250 : 3000 ))
    local limit=$(( bps * queue / 1000 > 6000 ? bps * queue / 1000 : 6000 ))
    inns "$router" tc qdisc add dev wan root tbf rate "${bps}bps" burst "$burst" limit "$limit"
  fi
  if [ "$delay" != 0 ] || [ "$jitter" != 0 ] || [ "$loss" != 0 ]; then
    [ -x "$LINKEMU" ] || die "the link emulator is not built: run scripts/netlab.sh setup"
    inns "$router" $IPT -A FORWARD -i lan -o wan -j NFQUEUE --queue-num 1 --queue-bypass
    # Real-time priority keeps the delay line on time when the browsers load the machine.
    inns "$router" chrt -f 10 "$LINKEMU" --queue 1 --delay-ms "$delay" --jitter-ms "$jitter" \
      --loss "$loss" --seed "$i" --stats "$RUN_BASE/$lab/emu-$i.json" \
      >>"$RUN_BASE/$lab/emu-$i.log" 2>&1 &
    local deadline=$((SECONDS + 10))
    until [ -s "$RUN_BASE/$lab/emu-$i.log" ]; do
      [ $SECONDS -lt $deadline ] || die "linkemu for peer $i did not start"
      sleep 0.05
    done
    grep -q "linkemu: queue" "$RUN_BASE/$lab/emu-$i.log" || die "linkemu: $(cat "$RUN_BASE/$lab/emu-$i.log")"
  fi
  if [ "$nat" != none ]; then
    local masq=(-j MASQUERADE)
    # --random-fully: a fresh random port per destination (endpoint-dependent, "symmetric").
    [ "$nat" = symmetric ] && masq+=(--random-fully)
    inns "$router" $IPT -t nat -A POSTROUTING -o wan "${masq[@]}"
    inns "$router" $IPT -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    inns "$router" $IPT -A FORWARD -i wan -o lan -j DROP
    # Unsolicited packets to the router itself must not claim a tuple the NAT wants.
    inns "$router" $IPT -A INPUT -i wan -m conntrack --ctstate NEW,INVALID -j DROP
  fi
}

cmd_link() {
  local lab=$1 i=$2 state=$3; lab_name_ok "$lab"
  case "$state" in up|down) ;; *) die "link state must be up or down: $state" ;; esac
  inns "$(ns "$lab" "r$i")" ip link set lan "$state"
}

cmd_turn() {
  local lab=$1 secret=$2; lab_name_ok "$lab"
  local dir="$RUN_BASE/$lab/coturn"; mkdir -p "$dir"
  inns "$(ns "$lab" wan)" turnserver -n --listening-ip=10.237.0.1 --listening-port=3478 \
    --relay-ip=10.237.0.1 --min-port=49152 --max-port=65535 --realm=meshdrop.lab \
    --use-auth-secret --static-auth-secret="$secret" --allowed-peer-ip=10.237.0.0-10.237.255.255 \
    --no-tls --no-dtls --no-cli --fingerprint --pidfile="$dir/pid" \
    --log-file="$dir/log" --simple-log >/dev/null 2>&1 &
  local deadline=$((SECONDS + 10))
  until inns "$(ns "$lab" wan)" ss -lun | grep -q '10.237.0.1:3478'; do
    [ $SECONDS -lt $deadline ] || die "coturn did not start (see $dir/log)"
    sleep 0.05
  done
}

cmd_stats() {
  local lab=$1 i=$2; lab_name_ok "$lab"
  local tcj emu
  tcj=$(inns "$(ns "$lab" "r$i")" tc -s -j qdisc show dev wan)
  emu=$(cat "$RUN_BASE/$lab/emu-$i.json" 2>/dev/null || echo null)
  printf '{"tc":%s,"emu":%s}\n' "$tcj" "$emu"
}

cmd_down() {
  local lab=$1; lab_name_ok "$lab"
  local all; all=$(ip netns list | awk '{print $1}' | grep -E "^md-$lab-(wan|r[0-9]+|p[0-9]+)$" || true)
  local n pids
  # SIGTERM first (the emulators release what they hold and write their counters), then
  # SIGKILL whatever is left after 3 s.
  for n in $all; do pids=$(ip netns pids "$n"); [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true; done
  local deadline=$((SECONDS + 3)) left
  while [ $SECONDS -lt $deadline ]; do
    left=""; for n in $all; do left+=$(ip netns pids "$n"); done
    [ -z "$left" ] && break
    sleep 0.1
  done
  for n in $all; do pids=$(ip netns pids "$n"); [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true; done
  for n in $all; do ip netns del "$n" 2>/dev/null || true; done
  [ "${KEEP_RUN_FILES:-}" = 1 ] || rm -rf "${RUN_BASE:?}/$lab"
}

[ $# -ge 1 ] || { sed -n '2,17p' "$0"; exit 2; }
command=$1; shift
case "$command" in
  check) cmd_check ;;
  setup) cmd_setup ;;
  up|peer|link|turn|stats|down) "cmd_$command" "$@" ;;
  *) die "unknown command: $command" ;;
esac
