#!/usr/bin/env bash
# tcp-proxy (layer 4) against haproxy "mode tcp" and nginx "stream", same nginx backend,
# through the harness (benches/harness: proxy.sh: proxy pinned to SERVER_CPU, backend + wrk on LOAD_CPU),
# in interleaved rounds (ROUNDS, default 3). Run from the repository root after
# `cargo build --release --examples`. Prints the comparison; results under BENCH_HOME.
set -eu
# The harness: the copy in benches/harness unless BENCH names another (../shared/bench).
BENCH=${BENCH:-$(cd "$(dirname "$0")/../harness" && pwd)}
HERE=$(cd "$(dirname "$0")" && pwd)
RES=${RES:-/tmp/wireloop-bench/results/proxy-l4-$(date +%m%d-%H%M)/results.csv}
mkdir -p "$(dirname "$RES")"
S="$BENCH/servers"
EXTRA_PROXY="haproxy-tcp->nginx|9080|$HERE/l4-anchor.sh haproxy 9080 8090|8090|$S/nginx.sh hello 8090
nginx-stream->nginx|8081|$HERE/l4-anchor.sh nginx 8081 8090|8090|$S/nginx.sh hello 8090
wireloop-tcp-proxy->nginx|8082|target/release/examples/tcp-proxy --listen 127.0.0.1:8082 --upstream 127.0.0.1:8090|8090|$S/nginx.sh hello 8090" \
ANCHORS=0 SCENARIOS=proxy ROUNDS=${ROUNDS:-3} RESULTS=$RES "$BENCH/run_all.sh"
"$BENCH/compare.sh" "$RES" proxy_plain wireloop-tcp-proxy-\>nginx haproxy-tcp-\>nginx,nginx-stream-\>nginx
