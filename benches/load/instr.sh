#!/usr/bin/env bash
# wireloop's user-space instructions per operation, counted by callgrind with the harness's
# instr.sh (exact: the same on a busy machine). Run from anywhere in a clone:
#
#   bash benches/load/instr.sh [SCENARIO...]
#
# SCENARIOs (default: echo1 echo16 ka pipe):
#   echo1 echo16   examples/echo-server, loadtool echo 50 x 64 B, depth 1 / 16 (op = message)
#   ka pipe        examples/http-server, wrk -c50 keep-alive / 16 pipelined (op = request)
#   redis1         examples/redis-server, redis-benchmark GET -P 1 (op = command)
#   tlshs          examples/http-server on TLS without resumption (op = full handshake)
#   proxy          examples/reverse-proxy in front of the harness's nginx hello (op = request)
#   ws1 ws16       examples/websocket-echo, benches/load/ws's wsload 50 x 64 B binary
#                  messages, depth 1 / 16 (op = message); the anchor is tokio-tungstenite
#                  (ws-echo-tungstenite), counted with glibc's `rep stosb` memset turned off
#                  (callgrind counts each byte a `rep stosb` stores as one instruction, and
#                  tungstenite zeroes its 128 KiB read buffer on every read)
# env: ANCHORS=1 also counts the anchor of each scenario (tokio-echo, may-hello,
#      redis-server, nginx, tokio-tungstenite); BENCH (default benches/harness, the vendored copy of the shared
#      harness), BENCH_HOME (default /tmp/wireloop-bench), SECS (load length, default 6).
# Prints one 'instr_per_op=...' line per run; the callgrind files stay under
# $BENCH_HOME/instr/ (PROFILE=1 for a file callgrind_annotate can name functions in).
set -eu
cd "$(dirname "$0")/../.."
BENCH=${BENCH:-$(pwd)/benches/harness}
export BENCH_HOME=${BENCH_HOME:-/tmp/wireloop-bench}
I=$BENCH/instr.sh
B=$BENCH_HOME/bin
T=target/release/examples
SCENARIOS=${*:-echo1 echo16 ka pipe}
[ -x "$B/loadtool" ] && command -v valgrind >/dev/null && command -v wrk >/dev/null || "$BENCH/setup.sh"
cargo build --release --examples

run() { "$I" "$@" | grep instr_per_op=; }
anchor() { [ "${ANCHORS:-0}" = 1 ] && run "$@" || true; }

for s in $SCENARIOS; do
  case $s in
  echo1 | echo16)
    run wireloop-echo 7201 "$s" "$T/echo-server --port 7201 --loops 1"
    anchor tokio-echo 7202 "$s" "$B/tokio-echo 127.0.0.1:7202"
    ;;
  ka | pipe)
    run wireloop-http 7203 "$s" "$T/http-server --port 7203 --tlsport 0 --loops 1"
    anchor may-hello 7204 "$s" "$B/may-hello 127.0.0.1:7204"
    NGINX_MASTER=off anchor nginx 7205 "$s" "$BENCH/servers/nginx.sh hello 7205"
    ;;
  redis1)
    run wireloop-redis 7206 redis1 "$T/redis-server --port 7206 --loops 1"
    anchor redis-server 7207 redis1 "redis-server --port 7207 --save '' --appendonly no --io-threads 1"
    ;;
  tlshs)
    run wireloop-tls 7208 tlshs "$T/http-server --port 0 --tlsport 7208 --tlscert $BENCH_HOME/run/certs/combined.pem --no-resumption --loops 1"
    ;;
  proxy)
    "$BENCH/servers/nginx.sh" hello 7260 &
    nginx_pid=$!
    trap 'kill $nginx_pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/7260) 2>/dev/null && break; sleep 0.1; done
    run wireloop-reverse-proxy 7209 ka "$T/reverse-proxy --port 7209 --tlsport 0 --upstream http://127.0.0.1:7260 --no-access-log"
    NGINX_MASTER=off anchor nginx-proxy 7210 ka "$BENCH/servers/nginx.sh proxy 7210 7260"
    kill $nginx_pid 2>/dev/null || true
    wait $nginx_pid 2>/dev/null || true
    trap - EXIT
    ;;
  ws1 | ws16)
    d=${s#ws}
    WS_TARGET=${WS_TARGET:-$BENCH_HOME/ws-target}
    CARGO_TARGET_DIR=$WS_TARGET cargo build --release --quiet --manifest-path benches/load/ws/Cargo.toml
    wsload() { echo "$WS_TARGET/release/wsload 127.0.0.1:$1 50 64 ${SECS:-6} $d | sed 's/ msgs=\\([0-9]*\\)/ msgs=\\1 ops=\\1/'"; }
    LOAD=$(wsload 7211) run wireloop-ws 7211 custom "$T/websocket-echo --port 7211 --loops 1"
    LOAD=$(wsload 7212) anchor tungstenite 7212 custom \
      "env GLIBC_TUNABLES=glibc.cpu.x86_rep_stosb_threshold=4294967295 $WS_TARGET/release/ws-echo-tungstenite 7212"
    ;;
  *)
    echo "unknown scenario $s (echo1 echo16 ka pipe redis1 tlshs proxy ws1 ws16)" >&2
    exit 2
    ;;
  esac
done
