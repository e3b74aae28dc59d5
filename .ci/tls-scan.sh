#!/usr/bin/env bash
# TLS scans of wireloop's TLS listeners: testssl.sh (Debian's package) and sslyze (PyPI)
# against the http-server example's and the reverse-proxy example's HTTPS ports on
# 127.0.0.1. Fails on any vulnerability or weak protocol/cipher finding; certificate
# findings (the examples' generated certificate is self-signed, so it is not trusted) are
# printed and explained in RELIABILITY.md ("TLS scans"), never fatal.
#
#   .ci/tls-scan.sh            # installs what is missing (apt-get, a venv under target/)
#   TLS_SCAN_KEEP=DIR .ci/tls-scan.sh   # keeps the scanners' JSON reports in DIR
#
# Bounded: each scanner run has a time limit; every process started here is stopped by
# its PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)
say() { echo "--- tls-scan: $* ($(( $(date +%s) - start ))s)"; }

out=${TLS_SCAN_KEEP:-$(mktemp -d)}
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [ -n "${TLS_SCAN_KEEP:-}" ] || rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ----- tools --------------------------------------------------------------------------
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v testssl >/dev/null 2>&1; then
  say "installing testssl.sh"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q testssl.sh
fi
venv=$root/target/tls-scan-venv
if [ ! -x "$venv/bin/sslyze" ]; then
  say "installing sslyze into $venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check 'sslyze>=6,<7'
fi
echo "testssl.sh $(dpkg-query -W -f '${Version}' testssl.sh 2>/dev/null || echo '?'), sslyze $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sslyze"))')"

# ----- servers ------------------------------------------------------------------------
say "building the examples"
cargo build --quiet --example http-server --example reverse-proxy
bin=$root/target/debug/examples

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 30 s) for a line matching $2 in log file $1 of process $3.
wait_line() {
  local deadline=$(( $(date +%s) + 30 ))
  while ! grep -q "$2" "$1" 2>/dev/null; do
    if ! kill -0 "$3" 2>/dev/null; then echo "process $3 exited:"; cat "$1"; return 1; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "no '$2' in $1 within 30 s:"; cat "$1"; return 1; fi
    sleep 0.1
  done
}

# Starts example $1 with its TLS listener on a free port ("0" turns the examples' TLS
# listeners off), retried if the port is taken meanwhile, and waits for a line matching
# $2 in its log; the rest are its arguments, with @PORT@ for the TLS port. Sets tls_port.
start_tls() {
  local name=$1 ready=$2; shift 2
  tls_port=""
  for _ in 1 2 3; do
    local port p
    port=$(free_port)
    WIRELOOP_LOG=info "$bin/$name" "${@//@PORT@/$port}" >"$out/$name.log" 2>&1 &
    p=$!
    if wait_line "$out/$name.log" "$ready" "$p" >/dev/null; then
      pids+=("$p"); tls_port=$port; return 0
    fi
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  echo "$name did not start"; cat "$out/$name.log"; return 1
}

# http-server: the plain listener on any free port (0), read back from its log line.
start_tls http-server "https://" --port 0 --tlsport @PORT@ --loops 1
hs_tls=$tls_port
hs_http=$(grep -o 'http://[0-9.]*:[0-9]*' "$out/http-server.log" | head -1 | sed 's/.*://')

# reverse-proxy: its plain listener off (0), TLS only.
start_tls reverse-proxy "forwarding to" --listen-host 127.0.0.1 --port 0 --tlsport @PORT@ \
  --upstream "http://127.0.0.1:$hs_http" --no-access-log
rp_tls=$tls_port
say "http-server TLS on 127.0.0.1:$hs_tls, reverse-proxy TLS on 127.0.0.1:$rp_tls"

# ----- scans --------------------------------------------------------------------------
fail=0
for target in "http-server:$hs_tls" "reverse-proxy:$rp_tls"; do
  name=${target%%:*}; port=${target##*:}
  say "testssl.sh on $name (127.0.0.1:$port)"
  # Protocols, cipher categories, server defaults (certificate) and every vulnerability
  # check; --fast skips the slow per-cipher enumerations.
  timeout 120 testssl --quiet --color 0 --warnings off --fast --ip one \
    --protocols --std --server-defaults --vulnerable \
    --jsonfile "$out/testssl-$name.json" "127.0.0.1:$port" >"$out/testssl-$name.txt" 2>&1 || true
  say "sslyze on $name (127.0.0.1:$port)"
  # Every scan command, judged by the verdict below rather than against a Mozilla profile
  # (which would fail on the self-signed certificate alone).
  timeout 60 "$venv/bin/sslyze" --quiet --mozilla_config=disable --certinfo \
    --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 --compression --early_data \
    --openssl_ccs --fallback --heartbleed --robot --reneg --resum --elliptic_curves \
    --http_headers --ems \
    --json_out "$out/sslyze-$name.json" "127.0.0.1:$port" >"$out/sslyze-$name.txt" 2>&1 || true
  if ! "$venv/bin/python" "$root/.ci/tls-scan-verdict.py" "$name" \
      "$out/testssl-$name.json" "$out/sslyze-$name.json"; then
    fail=1
  fi
done
say "done"
exit $fail
