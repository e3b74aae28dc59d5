#!/usr/bin/env bash
# Soak-and-chaos run of the reverse-proxy and the tcp-proxy: benches/chaos/run.sh [SECONDS]
# (default 600). Loopback only; builds the release examples if needed; every process the
# harness starts is stopped by its PID when it ends (or is interrupted). Extra arguments
# after SECONDS go to chaos.py run (see chaos.py run --help). Exit status 1: an invariant
# failed (the report says which).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-600}
shift || true
if [ -z "${CHAOS_NO_BUILD:-}" ]; then
  cargo build --release --example reverse-proxy --example tcp-proxy
fi
python3 benches/chaos/chaos.py run --duration "$secs" --bin target/release/examples "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' INT TERM
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
wait $pid
