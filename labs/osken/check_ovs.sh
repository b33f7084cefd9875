#!/usr/bin/env bash
# Validates labs/osken/simple_switch_13.py against a real switch: Open vSwitch's userspace
# datapath (netdev bridge, fail_mode secure, OpenFlow 1.3) in a namespace of its own, three
# hosts on veths, os-ken as its controller. The same three checks tests/tests/ryu.rs makes
# against strato:
#   (a) one controller: every pair pings; dump-flows shows the app's cookie/priority flows with
#       n_packets > 0;
#   (b) failover: MASTER and SLAVE instances; the master is killed, its flows deleted, the
#       slave promoted (trigger file); every pair pings again through new flows from the slave;
#   (c) secure mode, no controller left: the installed flows keep forwarding.
# A tshark capture of the controller connections must hold OpenFlow frames and no malformed one.
# Needs root, openvswitch-switch, tshark and the os-ken venv (scripts/bootstrap.sh).
# Everything is named osk<pid>-*, and torn down on exit (also on failure).
#   labs/osken/check_ovs.sh        prints "check_ovs: PASS" (exit 0) or what failed (exit 1)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
APP=$here/simple_switch_13.py
VENV=${OSKEN_VENV:-/var/cache/strato/osken-venv}
P=osk$$
D=$(mktemp -d "/tmp/$P.XXXXXX")
SW=$P-sw
HOSTS=(h1 h2 h3)
PIDS=()
fail() { echo "check_ovs: FAIL: $*" >&2; exit 1; }
say() { echo "check_ovs: $*"; }

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for f in vswitchd.pid ovsdb.pid; do
    [ -f "$D/$f" ] && kill "$(cat "$D/$f")" 2>/dev/null
  done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for f in vswitchd.pid ovsdb.pid; do
    [ -f "$D/$f" ] && kill -9 "$(cat "$D/$f")" 2>/dev/null
  done
  for h in "${HOSTS[@]}"; do ip netns del "$P-$h" 2>/dev/null; done
  ip netns del "$SW" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then say "kept logs in $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "needs root (namespaces)"
[ -x "$VENV/bin/osken-manager" ] || fail "no os-ken venv at $VENV (run scripts/bootstrap.sh)"
for t in ovs-vswitchd ovsdb-server ovs-vsctl ovs-ofctl tshark; do
  command -v $t >/dev/null || fail "$t missing (run scripts/bootstrap.sh)"
done

ovs_env=(env OVS_RUNDIR="$D" OVS_LOGDIR="$D" OVS_DBDIR="$D")
insw() { ip netns exec "$SW" "$@"; }
vsctl() { insw "${ovs_env[@]}" ovs-vsctl --db="unix:$D/db.sock" "$@"; }
ofctl() { insw "${ovs_env[@]}" ovs-ofctl -O OpenFlow13 "$@"; }

ip netns add "$SW"; insw ip link set lo up
i=0
for h in "${HOSTS[@]}"; do
  i=$((i + 1))
  ip netns add "$P-$h"
  ip -n "$P-$h" link set lo up
  ip -n "$P-$h" link add eth0 type veth peer name "$P-$h" netns "$SW"
  ip -n "$P-$h" link set eth0 address "02:00:00:00:00:0$i"
  ip -n "$P-$h" addr add "10.0.0.$i/24" dev eth0
  ip -n "$P-$h" link set eth0 up
  ip -n "$SW" link set "$P-$h" up
done

ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
insw "${ovs_env[@]}" ovsdb-server "$D/conf.db" --remote="punix:$D/db.sock" \
  --pidfile="$D/ovsdb.pid" --detach --log-file="$D/ovsdb.log" </dev/null >/dev/null 2>&1
vsctl --no-wait init
insw "${ovs_env[@]}" ovs-vswitchd "unix:$D/db.sock" --pidfile="$D/vswitchd.pid" --detach \
  --log-file="$D/vswitchd.log" </dev/null >/dev/null 2>&1

# The capture runs for the whole check, in the switch's namespace (controllers at 127.0.0.1).
ip netns exec "$SW" tshark -q -i lo -f "tcp port 6633 or tcp port 6634" -w "$D/of.pcap" >"$D/tshark.log" 2>&1 &
PIDS+=($!)

osken() { # NAME PORT [VAR=VALUE...]: starts an os-ken instance in the switch namespace
  local name=$1 port=$2; shift 2
  # A simple command (not a function) in the background: $! is the process itself
  # (`ip netns exec` and `env` exec their command), so `kill $!` stops os-ken.
  ip netns exec "$SW" env "$@" "$VENV/bin/osken-manager" --ofp-tcp-listen-port "$port" "$APP" \
    >"$D/$name.log" 2>&1 &
  PIDS+=($!)
  eval "${name}_pid=$!"
}
wait_log() { # FILE PATTERN [SECONDS]
  local t=0
  until grep -q -- "$2" "$1" 2>/dev/null; do
    t=$((t + 1)); [ $t -le $((${3:-20} * 10)) ] || { cat "$1" >&2; fail "no '$2' in $1"; }
    sleep 0.1
  done
}
ping_all() { # all ordered pairs, one ping each (after a first, ARP-warming, attempt)
  local bad=0 a b
  for a in 1 2 3; do for b in 1 2 3; do
    [ $a = $b ] && continue
    ip netns exec "$P-h$a" ping -c 1 -W 2 "10.0.0.$b" >/dev/null \
      || ip netns exec "$P-h$a" ping -c 1 -W 2 "10.0.0.$b" >/dev/null || { say "h$a -> h$b FAILED"; bad=1; }
  done; done
  return $bad
}

# ---- (a) one controller ----
wait_log "$D/tshark.log" "Capturing on" 20
osken c1 6633 SS13_ROLE=master SS13_GENERATION=1
sleep 2  # os-ken listening
vsctl add-br br0 -- set bridge br0 datapath_type=netdev protocols=OpenFlow13 fail_mode=secure
i=0
for h in "${HOSTS[@]}"; do
  i=$((i + 1))
  vsctl add-port br0 "$P-$h" -- set interface "$P-$h" ofport_request=$i
done
vsctl set-controller br0 tcp:127.0.0.1:6633
wait_log "$D/c1.log" "SS13 role_reply .* role=MASTER"
wait_log "$D/c1.log" "SS13 table_miss"
ping_all || fail "(a) pings with one controller"
flows=$(ofctl dump-flows br0)
echo "$flows"
n=$(grep -c "cookie=0x5157, .*priority=10,in_port=" <<<"$flows" || true)
[ "$n" -ge 6 ] || fail "(a) want >= 6 learned flows with cookie 0x5157 priority 10, got $n"
grep "cookie=0x5157, .*priority=10,in_port=" <<<"$flows" | grep -q "n_packets=[1-9]" \
  || fail "(a) no learned flow counted packets"
say "(a) ok: 6/6 pairs, $n learned flows with cookie=0x5157 priority=10"

# ---- (b) failover ----
osken c2 6634 SS13_ROLE=slave SS13_GENERATION=1 SS13_PROMOTE_FILE="$D/promote"
vsctl set-controller br0 tcp:127.0.0.1:6633 tcp:127.0.0.1:6634
wait_log "$D/c2.log" "SS13 role_reply .* role=SLAVE"
wait_log "$D/c1.log" "SS13 role_reply .* role=MASTER"
kill "$c1_pid"; wait "$c1_pid" 2>/dev/null || true
! kill -0 "$c1_pid" 2>/dev/null || fail "(b) the master still runs"
ofctl del-flows br0 "cookie=0x5157/-1"
[ -z "$(ofctl dump-flows br0 | grep cookie= || true)" ] || fail "(b) flows left after del-flows"
echo 2 >"$D/promote"
wait_log "$D/c2.log" "SS13 role_reply .* role=MASTER generation=2"
wait_log "$D/c2.log" "SS13 table_miss"
ping_all || fail "(b) pings after failover"
grep -q "SS13 flow_add" "$D/c2.log" || fail "(b) the promoted controller installed no flow"
n=$(ofctl dump-flows br0 | grep -c "cookie=0x5157, .*priority=10,in_port=" || true)
[ "$n" -ge 6 ] || fail "(b) want >= 6 flows from the promoted controller, got $n"
say "(b) ok: master killed, slave promoted (generation 2), 6/6 pairs, $n new flows"

# ---- (c) secure mode, no controller ----
kill "$c2_pid"; wait "$c2_pid" 2>/dev/null || true
! kill -0 "$c2_pid" 2>/dev/null || fail "(c) the controller still runs"
sleep 1
ping_all || fail "(c) installed flows stopped forwarding without a controller"
say "(c) ok: no controller, fail_mode secure, 6/6 pairs on installed flows"

# ---- the capture ----
sleep 1
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
of=$(tshark -r "$D/of.pcap" -Y openflow_v4 2>/dev/null | wc -l)
bad=$(tshark -r "$D/of.pcap" -Y _ws.malformed 2>/dev/null | wc -l)
types=$(tshark -r "$D/of.pcap" -Y openflow_v4 -T fields -e openflow_v4.type 2>/dev/null | tr ',' '\n' | sort -n | uniq -c | tr -s ' ' | tr '\n' ';')
say "capture: $of OpenFlow frames, $bad malformed; types (count type): $types"
[ "$of" -gt 0 ] || fail "capture holds no OpenFlow frame"
[ "$bad" -eq 0 ] || fail "capture holds $bad malformed frames"
say "PASS"
