#!/usr/bin/env bash
# Layer-4 (TCP) proxy anchors for the harness's proxy.sh (benches/harness), which has only HTTP proxies.
# Writes a config under $WORK and execs the server in the foreground (one worker/thread),
# so this script's PID is the server's PID, as the harness expects.
#   l4-anchor.sh haproxy PORT BACKEND_PORT   haproxy "mode tcp"
#   l4-anchor.sh nginx   PORT BACKEND_PORT   nginx "stream" (module libnginx-mod-stream)
# env: WORK (default $BENCH_HOME/run, BENCH_HOME=/tmp/wireloop-bench)
set -eu
mode=$1; port=$2; bport=${3:-8090}
WORK=${WORK:-${BENCH_HOME:-/tmp/wireloop-bench}/run}
dir=$WORK/l4-$mode-$port; mkdir -p "$dir/logs"
source "$(dirname "$0")/nginx-conf.sh"
case $mode in
  haproxy)
    cat > "$dir/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend fe
  bind 127.0.0.1:$port
  maxconn 9000
  default_backend be
backend be
  server s1 127.0.0.1:$bport maxconn 9000
CONF
    exec haproxy -db -f "$dir/haproxy.cfg" ;;
  nginx)
    mod=/usr/lib/nginx/modules/ngx_stream_module.so
    if [ ! -f "$mod" ]; then
      echo "l4-anchor.sh: $mod missing: apt-get install libnginx-mod-stream" >&2; exit 1
    fi
    nginx_conf "$dir" on "stream {
  upstream be { server 127.0.0.1:$bport; }
  server { listen 127.0.0.1:$port backlog=4096; proxy_pass be; }
}" "load_module $mod;"
    exec nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" ;;
  *) echo "unknown mode $mode" >&2; exit 1 ;;
esac
