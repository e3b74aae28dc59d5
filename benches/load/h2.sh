#!/usr/bin/env bash
# HTTP/2: the http-server example against nginx (`listen ... http2`) and haproxy (`proto h2`
# and ALPN h2 frontends answering with `http-request return`), all serving the same
# "Hello World!\r\n" with one worker/thread/loop, loaded by `h2load -c50 -m16` (Debian's
# nghttp2-client): h2c by prior knowledge on a plain port, and h2 over TLS chosen by ALPN.
# Run from anywhere in a clone:
#
#   bash benches/load/h2.sh [PART...]
#
# PARTs (default: rps instr):
#   rps    interleaved rounds (ROUNDS, default 3: wireloop, nginx, haproxy, wireloop, ...)
#          through the harness's lib.sh: the server pinned to SERVER_CPU, h2load -t1 pinned
#          to LOAD_CPU, DURATION seconds per run after a 1 s warm-up; requests/s and server
#          CPU per request, medians over rounds (aggregate.sh), then compare.sh
#   instr  user-space instructions per request, the harness's instr.sh `custom` scenario
#          with a LOAD running `h2load -t1 -c50 -m16` for SECS seconds (default 6); h2c and
#          TLS. Over TLS a second run (`-c50 -n50`: 50 handshakes, one request each) is
#          subtracted, so the TLS figure is per request without the handshakes.
# env: BENCH (default benches/harness), BENCH_HOME (default /tmp/wireloop-bench), ROUNDS,
#      DURATION, SECS, SERVERS (default "wireloop nginx haproxy"), SCENS (default "h2c h2tls"),
#      PROFILE=1 (instr: one callgrind file per run with function names, for
#      `callgrind_annotate --inclusive=no`; start-up is then counted too).
# The nginx and haproxy configurations are written at run time into a temporary folder
# (removed at exit); every process is started and stopped by its PID.
set -u
cd "$(dirname "$0")/../.."
BENCH=${BENCH:-$(pwd)/benches/harness}
export BENCH_HOME=${BENCH_HOME:-/tmp/wireloop-bench}
PARTS=${*:-rps instr}
SERVERS=${SERVERS:-wireloop nginx haproxy}
SCENS=${SCENS:-h2c h2tls}
ROUNDS=${ROUNDS:-3}
RES=${RES:-$BENCH_HOME/results/h2-$(date +%m%d-%H%M)/results.csv}
mkdir -p "$(dirname "$RES")"
RESULTS=$RES LOGDIR=$(dirname "$RES")/logs
source "$BENCH/lib.sh"
source benches/load/nginx-conf.sh
PATH=$PATH:/usr/sbin
command -v h2load >/dev/null || { log "h2load missing: apt-get install nghttp2-client"; exit 2; }
[ -f "$CERT_DIR/combined.pem" ] || "$BENCH/certs.sh" >/dev/null
cargo build --release --example http-server || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wireloop-h2.XXXXXX")
trap 'cleanup_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# conf NAME PORT TLSPORT MASTER -> writes the server's config under $TMP, prints its command
# (one process serving h2c on PORT and h2 over TLS on TLSPORT; TLS without resumption).
conf() {
  local name=$1 port=$2 tport=$3 master=${4:-on} d="$TMP/$1-$2"
  mkdir -p "$d/tmp"
  case $name in
  wireloop)
    echo "target/release/examples/http-server --port $port --tlsport $tport --tlscert $CERT_DIR/combined.pem --no-resumption --loops 1" ;;
  nginx)
    nginx_conf "$d" "$master" "$(nginx_http "$d" "  server {
    listen 127.0.0.1:$port http2 backlog=4096;
    listen 127.0.0.1:$tport ssl http2 backlog=4096;
    ssl_certificate $CERT_DIR/cert.pem; ssl_certificate_key $CERT_DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;
    location / { default_type text/plain; return 200 \"Hello World!\r\n\"; }
  }")"

    echo "nginx -p $d -c $d/nginx.conf -e $d/logs/error.log" ;;
  haproxy)
    cat > "$d/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9000
  tune.ssl.cachesize 0
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend h2c
  bind 127.0.0.1:$port proto h2
  http-request return status 200 content-type text/plain string "Hello World!\r\n"
frontend h2tls
  bind 127.0.0.1:$tport ssl crt $CERT_DIR/combined.pem alpn h2,http/1.1 no-tls-tickets
  http-request return status 200 content-type text/plain string "Hello World!\r\n"
CONF
    echo "haproxy -db -f $d/haproxy.cfg" ;;
  *) log "unknown server $name"; return 1 ;;
  esac
}

url() { if [ "$1" = h2c ]; then echo "http://127.0.0.1:$2/"; else echo "https://127.0.0.1:$3/"; fi; }

# The same response from every server, checked once before measuring.
check() {
  local out; out=$(h2load -n1 -c1 "$1" 2>&1)
  case $out in *"1 succeeded"*"Application protocol: h2"* | *"Application protocol: h2"*"1 succeeded"*) ;;
  *) log "h2load against $1 failed:"; echo "$out" | tail -5 >&2; return 1 ;; esac
}

rps() {
  local rounds=() r name port=7301 tport=7302 sc cmd out u ok
  for r in $(seq 1 "$ROUNDS"); do
    RESULTS="$RES.round$r"; rounds+=("$RESULTS")
    echo "scenario,server,metric,median,min,max,runs,values" > "$RESULTS"
    for name in $SERVERS; do
      cmd=$(conf "$name" $port $tport on) || exit 1
      start_server "$name" $port "$cmd" || exit 1
      wait_port 127.0.0.1 $tport 10 "$SERVER_PID" || exit 1
      for sc in $SCENS; do
        u=$(url "$sc" $port $tport)
        check "$u" || exit 1
        taskset -c "$LOAD_CPU" timeout 20 h2load -t1 -c"$CONNS" -m16 -D1 "$u" >/dev/null 2>&1
        sample_begin "$SERVER_PID"
        out=$(taskset -c "$LOAD_CPU" timeout $((DURATION + 20)) h2load -t1 -c"$CONNS" -m16 -D"$DURATION" "$u" 2>&1)
        sample_end "$SERVER_PID"
        echo "$out" > "$LOGDIR/h2_$sc.$name.round$r.log"
        ok=$(echo "$out" | awk '/^requests:/{print $8}')
        echo "$out" | grep -q ' 0 failed, 0 errored' || log "WARN $sc/$name: $(echo "$out" | grep '^requests:')"
        record "h2_$sc" "$name" req_per_s "$(echo "$out" | awk '/^finished in/{print $4}')"
        record "h2_$sc" "$name" server_proc_cpu_pct "$SMP_CPU_PCT"
        record "h2_$sc" "$name" server_cpu_us_per_op "$(per_op_us "$ok")"
        record "h2_$sc" "$name" server_core_busy_pct "$SMP_SRV_CORE"
        record "h2_$sc" "$name" load_core_busy_pct "$SMP_LOAD_CORE"
      done
      stop_server
    done
  done
  "$BENCH/aggregate.sh" "$RES" "${rounds[@]}"
  local anchors; anchors=$(echo "$SERVERS" | tr ' ' '\n' | grep -v '^wireloop$' | paste -sd,)
  for sc in $SCENS; do "$BENCH/compare.sh" "$RES" "h2_$sc" wireloop "$anchors"; done
}

# instr_run NAME PORT CMD H2LOAD_ARGS -> "instr ops" of one instr.sh run (its line goes to stderr)
instr_run() {
  local line
  line=$(LOAD="h2load -t1 $4 | awk '/^finished in/{print} /^requests:/{print \"ops=\" \$8}'" \
    "$BENCH/instr.sh" "$1" "$2" custom "$3" | grep instr_per_op=) || return 1
  echo "$line" >&2
  echo "$line" | sed -n 's/.* ops=\([0-9]*\) instr=\([0-9]*\).*/\2 \1/p'
}

instr() {
  local name sc cmd port=7311 tport=7312 a b
  for sc in $SCENS; do
    for name in $SERVERS; do
      cmd=$(conf "$name" $port $tport off) || exit 1
      if [ "$sc" = h2c ]; then
        a=$(instr_run "h2-$name" $port "$cmd" "-c50 -m16 -D${SECS:-6} http://127.0.0.1:$port/") || exit 1
        echo "$a" | awk -v n="$name" '{printf "instr_per_req=%.0f name=%s scenario=h2c requests=%d\n", $1/$2, n, $2}'
        continue
      fi
      # Over TLS the run's 50 full handshakes (each server's own TLS library) are counted
      # too: a second run of 50 connections with one request each measures them, and
      # the difference is the cost of the other requests.
      a=$(instr_run "h2-$name" $tport "$cmd" "-c50 -m16 -D${SECS:-6} https://127.0.0.1:$tport/") || exit 1
      b=$(instr_run "h2-$name-hs" $tport "$cmd" "-c50 -n50 https://127.0.0.1:$tport/") || exit 1
      echo "$a $b" | awk -v n="$name" '{printf "instr_per_req=%.0f name=%s scenario=h2tls requests=%d (with handshakes: %.0f; 50 handshakes + 50 requests: %.0f)\n",
        ($1-$3)/($2-$4), n, $2, $1/$2, $3}'
    done
  done
}

for p in $PARTS; do
  case $p in
  rps) rps ;;
  instr) instr ;;
  *) log "unknown part $p (rps instr)"; exit 2 ;;
  esac
done
