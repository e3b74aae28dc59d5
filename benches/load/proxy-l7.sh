#!/usr/bin/env bash
# reverse-proxy (HTTP, layer 7) against nginx (proxy_pass, upstream keepalive) and haproxy
# (mode http), all in front of the same nginx backend, through the harness (benches/harness) in interleaved
# rounds (ROUNDS, default 3):
#   proxy: plain HTTP on the client side (proxy.sh: proxy on SERVER_CPU, backend + wrk on
#          LOAD_CPU) -> scenario proxy_plain
#   tls:   TLS on the client side (tls.sh with a backend: keep-alive https requests and full
#          handshakes) -> tls_keepalive, tls_handshake, tls_handshake_rustls; anchors
#          haproxy-tls->nginx (the harness's) and nginx-tls-proxy->nginx (l7-tls-anchor.sh)
# Run from the repository root after `cargo build --release --examples`. Prints the
# comparisons; results under BENCH_HOME.
set -eu
# The harness: the copy in benches/harness unless BENCH names another (../shared/bench).
BENCH=${BENCH:-$(cd "$(dirname "$0")/../harness" && pwd)}
HERE=$(cd "$(dirname "$0")" && pwd)
RES=${RES:-/tmp/wireloop-bench/results/proxy-l7-$(date +%m%d-%H%M)/results.csv}
mkdir -p "$(dirname "$RES")"
S="$BENCH/servers"
CERT_DIR=${CERT_DIR:-/tmp/wireloop-bench/run/certs}
RP=target/release/examples/reverse-proxy
EXTRA_PROXY="nginx-proxy->nginx|8081|$S/nginx.sh proxy 8081 8090|8090|$S/nginx.sh hello 8090
haproxy->nginx|9080|$S/haproxy.sh http 9080 8090|8090|$S/nginx.sh hello 8090
wireloop-reverse-proxy->nginx|8082|$RP --port 8082 --tlsport 0 --upstream http://127.0.0.1:8090 --no-access-log|8090|$S/nginx.sh hello 8090" \
EXTRA_TLS="haproxy-tls->nginx|9443|$S/haproxy.sh tls 9443 8090|8090|$S/nginx.sh hello 8090
nginx-tls-proxy->nginx|9444|$HERE/l7-tls-anchor.sh 9444 8090|8090|$S/nginx.sh hello 8090
wireloop-reverse-proxy-tls->nginx|9445|$RP --port 0 --tlsport 9445 --tlscert $CERT_DIR/combined.pem --no-resumption --upstream http://127.0.0.1:8090 --no-access-log|8090|$S/nginx.sh hello 8090" \
ANCHORS=0 SCENARIOS="proxy tls" ROUNDS=${ROUNDS:-3} RESULTS=$RES "$BENCH/run_all.sh"
"$BENCH/compare.sh" "$RES" proxy_plain wireloop-reverse-proxy-\>nginx nginx-proxy-\>nginx,haproxy-\>nginx
for sc in tls_keepalive tls_handshake_rustls; do
  "$BENCH/compare.sh" "$RES" $sc wireloop-reverse-proxy-tls-\>nginx haproxy-tls-\>nginx,nginx-tls-proxy-\>nginx
done
