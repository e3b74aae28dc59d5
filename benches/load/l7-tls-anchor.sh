#!/usr/bin/env bash
# nginx terminating TLS in front of an HTTP backend (proxy_pass with upstream keep-alive):
# the TLS reverse-proxy anchor the harness lacks (it has haproxy's, `haproxy.sh tls`).
# Writes a config under $WORK and execs nginx in the foreground (one worker), so this
# script's PID is the server's PID, as the harness expects.
#   l7-tls-anchor.sh PORT BACKEND_PORT
# env: WORK (default $BENCH_HOME/run), CERT_DIR (default $WORK/certs, from certs.sh),
#      TLS_RESUME=0|1 (default 0: no tickets, no session cache)
set -eu
port=$1; bport=${2:-8090}
WORK=${WORK:-${BENCH_HOME:-/tmp/wireloop-bench}/run}; CERT_DIR=${CERT_DIR:-$WORK/certs}
dir=$WORK/nginx-tlsproxy-$port
source "$(dirname "$0")/nginx-conf.sh"
if [ "${TLS_RESUME:-0}" = 1 ]; then res="ssl_session_cache shared:S:10m; ssl_session_tickets on;"
else res="ssl_session_cache off; ssl_session_tickets off;"; fi
nginx_conf "$dir" on "$(nginx_http "$dir" "  upstream be { server 127.0.0.1:$bport; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$port ssl backlog=4096;
    ssl_certificate $CERT_DIR/cert.pem; ssl_certificate_key $CERT_DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; $res
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }")"

exec nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
