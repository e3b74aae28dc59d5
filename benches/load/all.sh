#!/usr/bin/env bash
# Every figure of BENCHMARKS.md from a clean clone, with the repository's own scripts and
# the harness copy in benches/harness (BENCH=... to use another). Run from the repository
# root; it takes about 30 minutes on 2 cores and needs nothing running besides.
#
#   bash benches/load/all.sh [PART...]
#
# PARTs (default: all, in this order):
#   setup    the harness's setup.sh (Debian's wrk, nginx, haproxy, redis; the Rust anchors;
#            the TLS certificate) and `cargo build --release --examples`
#   core     echo (depth 1, 16) and idle memory, HTTP keep-alive and pipelined, Redis at
#            -P 1, 8 and 16 against their anchors (run_all.sh, interleaved rounds)
#   l4       proxy-l4.sh: tcp-proxy vs haproxy mode tcp / nginx stream
#   l7       proxy-l7.sh: reverse-proxy vs nginx proxy_pass / haproxy, plain and TLS
#   ws       ws-echo.sh: websocket-echo vs tokio-tungstenite
#   redis-suite  redis-suite.sh: redis-benchmark -q's default suite, redis-server vs ours
#   h2       h2.sh: HTTP/2 with h2load -c50 -m16, http-server vs nginx and haproxy, h2c and
#            TLS (interleaved rounds, then instructions per request under callgrind)
#   instr    user-space instructions per operation (instr.sh under callgrind; exact, the
#            same on a busy machine): echo1, echo16, ka, pipe, the L7 proxy, redis1, tlshs
# env: ROUNDS (default 3), BENCH_HOME (default /tmp/wireloop-bench; results under
#      $BENCH_HOME/results/all-MMDD-HHMM/), BENCH.
set -eu
cd "$(dirname "$0")/../.."
BENCH=${BENCH:-$(pwd)/benches/harness}
export BENCH_HOME=${BENCH_HOME:-/tmp/wireloop-bench}
export ROUNDS=${ROUNDS:-3}
OUT=$BENCH_HOME/results/all-$(date +%m%d-%H%M)
mkdir -p "$OUT"
PARTS=${*:-setup core l4 l7 ws redis-suite h2 instr}
T=target/release/examples
S=$BENCH/servers

part() { echo; echo "=== $* ($(date +%H:%M:%S))"; }

for p in $PARTS; do
  case $p in
  setup)
    part "setup: harness tools and anchors, release examples"
    "$BENCH/setup.sh"
    cargo build --release --examples
    ;;
  core)
    part "core: echo, memory, HTTP, Redis against their anchors (ROUNDS=$ROUNDS)"
    R=$OUT/core.csv
    EXTRA_ECHO="wireloop|5000|$T/echo-server --port 5000" \
    EXTRA_MEM="wireloop|5000|$T/echo-server --port 5000" \
    EXTRA_HTTP="wireloop|8080|$T/http-server --port 8080 --tlsport 0" \
    EXTRA_REDIS="wireloop|6379|$T/redis-server --port 6379" \
    PIPELINES="1 8 16" SCENARIOS="echo mem http redis" RESULTS=$R "$BENCH/run_all.sh"
    "$BENCH/compare.sh" "$R" echo_c50_s64_d1 wireloop tokio-echo,tokio-echo-shared
    "$BENCH/compare.sh" "$R" echo_c50_s64_d16 wireloop tokio-echo,tokio-echo-shared
    "$BENCH/compare.sh" "$R" http_plain wireloop may_minihttp,hyper,nginx
    "$BENCH/compare.sh" "$R" http_pipe16 wireloop may_minihttp,hyper,nginx
    for op in SET GET; do
      for d in 1 8 16; do
        "$BENCH/compare.sh" "$R" "redis_${op}_P$d" wireloop redis-server
      done
    done
    ;;
  l4)
    part "l4: tcp-proxy against haproxy mode tcp and nginx stream"
    RES=$OUT/proxy-l4.csv bash benches/load/proxy-l4.sh
    ;;
  l7)
    part "l7: reverse-proxy against nginx proxy_pass and haproxy, plain and TLS"
    RES=$OUT/proxy-l7.csv bash benches/load/proxy-l7.sh
    ;;
  ws)
    part "ws: websocket-echo against tokio-tungstenite"
    bash benches/load/ws-echo.sh
    ;;
  redis-suite)
    part "redis-suite: redis-benchmark -q default suite against redis-server"
    OUT=$OUT/redis-suite bash benches/load/redis-suite.sh
    ;;
  h2)
    part "h2: HTTP/2 (h2load -c50 -m16) against nginx and haproxy, h2c and TLS: req/s, CPU and instructions per request"
    BENCH=$BENCH RES=$OUT/h2.csv bash benches/load/h2.sh rps instr
    ;;
  instr)
    part "instr: user-space instructions per operation (callgrind)"
    BENCH=$BENCH ANCHORS=1 bash benches/load/instr.sh echo1 echo16 ka pipe redis1 tlshs proxy
    ;;
  *)
    echo "unknown part $p (setup core l4 l7 ws redis-suite h2 instr)" >&2
    exit 2
    ;;
  esac
done
echo "results under $OUT"
