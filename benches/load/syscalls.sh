#!/usr/bin/env bash
# Where a server's time per operation goes: user vs kernel CPU of its process tree, and the
# system calls, context switches and TCP segments per operation on each core, counted with
# perf's tracepoints (software events only: they work where hardware counters do not).
# Pinned like the harness (benches/harness) (server on SERVER_CPU, load and backend on LOAD_CPU).
#
#   syscalls.sh NAME PORT 'SERVER CMD' echo  DEPTH        loadtool echo, 50 conns x 64 B
#   syscalls.sh NAME PORT 'SERVER CMD' wrk   [DEPTH]      wrk -c50 keep-alive, or pipelined
#   syscalls.sh NAME PORT 'SERVER CMD' redis TEST P       redis-benchmark -t TEST -P P -c 50
#
# env: BACKEND='PORT|CMD' (a backend on LOAD_CPU, for proxies), SECS (default 5),
#      SCHEME=https (wrk over TLS), REDIS_RATE (expected commands/s at -P 1, default 60000:
#      sizes -n so a redis run lasts about SECS), plus the knobs of the harness's lib.sh.
# Needs perf (linux-perf) and nstat (iproute2). Run it with nothing else busy; it prints
# one block per run and writes nothing else.
set -u   # no -e: lib.sh's stop_pid relies on commands that may fail
[ $# -ge 4 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
# The harness: the copy in benches/harness unless BENCH names another (../shared/bench).
BENCH=${BENCH:-$(cd "$(dirname "$0")/../harness" && pwd)}
source "$BENCH/lib.sh"
name=$1; port=$2; cmd=$3; mode=$4; shift 4
SECS=${SECS:-5}
command -v perf >/dev/null || { log "perf is missing (apt-get install linux-perf)"; exit 1; }
trap cleanup_all EXIT INT TERM
if [ -n "${BACKEND:-}" ]; then
  start_backend "$name-backend" "${BACKEND%%|*}" "${BACKEND#*|}" || exit 1
fi
start_server "$name" "$port" "$cmd" || exit 1

# load SECONDS ARGS... -> runs the load once on LOAD_CPU and prints the number of operations done
load() {
  local secs=$1 out; shift
  case $mode in
    echo)
      out=$(taskset -c "$LOAD_CPU" timeout $((secs + 20)) "$BIN/loadtool" echo "127.0.0.1:$port" 50 64 "$secs" "${1:-1}")
      kv msgs <<< "$out" ;;
    wrk)
      local script=()
      [ $# -ge 1 ] && [ "${1:-1}" != 1 ] && script=(-s "$BENCH/conf/pipeline.lua" -- "$1")
      out=$(taskset -c "$LOAD_CPU" timeout $((secs + 20)) wrk -t1 -c50 -d"${secs}s" "${SCHEME:-http}://127.0.0.1:$port/" "${script[@]}")
      awk '/ requests in /{print $1; exit}' <<< "$out" ;;
    redis)
      local n=$(( secs * ${REDIS_RATE:-60000} * ${2:-1} ))
      taskset -c "$LOAD_CPU" timeout $((secs * 10 + 20)) redis-benchmark -p "$port" -t "$1" -P "$2" -c 50 -n "$n" -q >/dev/null
      echo "$n" ;;
    *) log "unknown load $mode"; exit 2 ;;
  esac
}
# ticks PID -> "user system" clock ticks summed over the process tree
ticks() {
  local p u=0 s=0
  for p in $(tree_pids "$1"); do
    read -r a b < <(awk '{print $14, $15}' /proc/"$p"/stat 2>/dev/null || echo "0 0")
    u=$((u + a)); s=$((s + b))
  done
  echo "$u $s"
}

load 1 "$@" >/dev/null                      # warm-up
EV=context-switches
for s in epoll_wait epoll_pwait epoll_ctl recvfrom sendto read write readv writev sendmsg recvmsg; do
  EV="$EV,syscalls:sys_enter_$s"
done
PERF_OUT=$(mktemp); NSTAT_OUT=$(mktemp)
nstat -n >/dev/null
read -r u0 s0 < <(ticks "$SERVER_PID")
# perf counts until its workload, a sleep, ends: the sleep is stopped when the load is done
# (a background job ignores SIGINT, so perf itself cannot be interrupted).
perf stat -a -A -x, -o "$PERF_OUT" -e "$EV" -- sleep $((SECS * 10 + 30)) & perf_pid=$!
ops=$(load "$SECS" "$@")
pkill -P "$perf_pid" -x sleep || true
wait "$perf_pid" 2>/dev/null || true
read -r u1 s1 < <(ticks "$SERVER_PID")
nstat > "$NSTAT_OUT"
awk -v n="$name" -v ops="$ops" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$CLK_TCK" 'BEGIN {
  us = 1e6 / hz
  printf "%s: %d ops; server CPU per op %.3f us = user %.3f + kernel %.3f (user %.1f%%)\n",
    n, ops, (u + s) * us / ops, u * us / ops, s * us / ops, 100 * u / ((u + s) > 0 ? u + s : 1) }'
awk -F, -v ops="$ops" '$2 ~ /^[0-9]+$/ && $2 > 0 {
  sub(/syscalls:sys_enter_/, "", $4); printf "  %-5s %-18s %8.3f per op\n", $1, $4, $2 / ops }' "$PERF_OUT"
awk -v ops="$ops" '$1 == "TcpOutSegs" || $1 == "TcpExtDelayedACKs" || $1 == "TcpExtTCPHPAcks" {
  printf "  all   %-18s %8.3f per op\n", $1, $2 / ops }' "$NSTAT_OUT"
rm -f "$PERF_OUT" "$NSTAT_OUT"
