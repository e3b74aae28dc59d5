#!/usr/bin/env bash
# WebSocket echo: wireloop's websocket-echo example against tungstenite on tokio (the
# anchor, built from ws/), one core each, through the harness's lib.sh (server pinned to
# SERVER_CPU, load client `wsload` to LOAD_CPU, CPU sampled from the server's process tree).
# Workload: CONNS connections (default 50), SIZE-byte binary messages (default 64), DEPTH
# messages per write and wait for all echoes (depth 1 and 16), DURATION seconds per run.
# Interleaved rounds (ROUNDS, default 3: anchor, wireloop, anchor, ...), medians over rounds
# by aggregate.sh, then compare.sh. Run from the repository root after
# `cargo build --release --examples`.
set -u
# The harness: the copy in benches/harness unless BENCH names another (../shared/bench).
BENCH=${BENCH:-$(cd "$(dirname "$0")/../harness" && pwd)}
HERE=$(cd "$(dirname "$0")" && pwd)
RES=${RES:-/tmp/wireloop-bench/results/ws-echo-$(date +%m%d-%H%M)/results.csv}
ROUNDS=${ROUNDS:-3}
mkdir -p "$(dirname "$RES")"
RESULTS=$RES LOGDIR=$(dirname "$RES")/logs
source "$BENCH/lib.sh"
SIZE=${SIZE:-64}
WS_TARGET=${WS_TARGET:-$BENCH_HOME/ws-target}
CARGO_TARGET_DIR=$WS_TARGET cargo build --release --quiet --manifest-path "$HERE/ws/Cargo.toml" || exit 1
WSLOAD=$WS_TARGET/release/wsload
SERVERS="tungstenite-tokio|9301|$WS_TARGET/release/ws-echo-tungstenite 9301
wireloop|9302|target/release/examples/websocket-echo --port 9302"
trap cleanup_all EXIT INT TERM
rounds=()
for r in $(seq 1 "$ROUNDS"); do
  RESULTS="$RES.round$r"; rounds+=("$RESULTS")
  echo "scenario,server,metric,median,min,max,runs,values" > "$RESULTS"
  while IFS="|" read -r name port cmd <&3; do
    start_server "$name" "$port" "$cmd" || exit 1
    for d in 1 16; do
      sc="wsecho_c${CONNS}_s${SIZE}_d$d"
      taskset -c "$LOAD_CPU" timeout 20 "$WSLOAD" "127.0.0.1:$port" "$CONNS" "$SIZE" 1 "$d" >/dev/null
      sample_begin "$SERVER_PID"
      out=$(taskset -c "$LOAD_CPU" timeout $((DURATION + 20)) "$WSLOAD" "127.0.0.1:$port" "$CONNS" "$SIZE" "$DURATION" "$d" 2>&1)
      sample_end "$SERVER_PID"
      echo "$out" > "$LOGDIR/$sc.$name.round$r.log"
      case "$out" in *"errors=0"*) ;; *) log "WARN $sc/$name: $out";; esac
      record "$sc" "$name" msgs_per_s "$(kv msgs_per_sec <<< "$out")"
      record "$sc" "$name" p99_us "$(kv p99_us <<< "$out")"
      record "$sc" "$name" server_proc_cpu_pct "$SMP_CPU_PCT"
      record "$sc" "$name" server_cpu_us_per_op "$(per_op_us "$(kv msgs <<< "$out")")"
      record "$sc" "$name" server_core_busy_pct "$SMP_SRV_CORE"
      record "$sc" "$name" load_core_busy_pct "$SMP_LOAD_CORE"
    done
    stop_server
  done 3<<< "$SERVERS"
done
"$BENCH/aggregate.sh" "$RES" "${rounds[@]}"
for d in 1 16; do "$BENCH/compare.sh" "$RES" "wsecho_c${CONNS}_s${SIZE}_d$d" wireloop tungstenite-tokio; done
