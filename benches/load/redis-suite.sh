#!/usr/bin/env bash
# redis-benchmark's default suite (-q) against Debian's redis-server and the redis-server
# example, one after the other, server pinned to core 0 and redis-benchmark to core 1:
# requests/s per test for both and their ratio. Run from the repository root after
# `cargo build --release --examples`.
#   bash benches/load/redis-suite.sh [N]     (N requests per test, default 100000)
set -eu
N=${1:-100000}
OUT=${OUT:-/tmp/wireloop-bench/results/redis-suite-$(date +%m%d-%H%M)}
mkdir -p "$OUT"
WORK=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

run() { # NAME PORT CMD...
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$@" >"$OUT/$name.server.log" 2>&1 &
  pid=$!
  wait_port "$port"
  taskset -c 1 redis-benchmark -p "$port" -q -n "$N" -c 50 >"$OUT/$name.txt" 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pid=
  # "SET: 123.45 requests per second, p50=..." -> "SET 123.45"
  tr '\r' '\n' <"$OUT/$name.txt" | sed -n 's/^\([^:]*\): \([0-9.]*\) requests per second.*/\1\t\2/p' >"$OUT/$name.tsv"
}

run redis-server 6390 redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no \
  --io-threads 1 --daemonize no --protected-mode no --dir "$WORK"
run wireloop 6391 target/release/examples/redis-server --port 6391

printf '%-40s %14s %14s %7s\n' test redis-server wireloop ratio
join -t "$(printf '\t')" <(sort "$OUT/redis-server.tsv") <(sort "$OUT/wireloop.tsv") |
  awk -F '\t' '{ printf "%-40s %14.0f %14.0f %7.2f\n", $1, $2, $3, ($2 > 0 ? $3 / $2 : 0) }'
echo "raw output under $OUT"
