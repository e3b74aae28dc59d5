#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named) for a given time each, one after the
# other (one process, one job: the machine is shared), each with a persistent working
# corpus outside git; then merges and minimises what it found into fuzz/corpus/<target>/
# and prints, per target: executions, exec/s, coverage (cov and ft from libFuzzer's final
# line), corpus files before and after, and the executions of every run so far.
#
#   fuzz/run.sh [SECONDS] [TARGET...]       # default 60 s, every target of `cargo fuzz list`
#
# Environment:
#   FUZZ_HOME        working corpora, logs, crashes and the run ledger
#                    (default: <repo>/target/fuzz-home; never committed)
#   FUZZ_SECONDS     seconds per target when no argument gives them
#   FUZZ_TIMEOUT     seconds one input may take before libFuzzer calls it a timeout (10)
#   FUZZ_BUILD_FLAGS flags for `cargo fuzz build` / `run` (default: --sanitizer=none
#                    --debug-assertions: wireloop has no `unsafe`, so AddressSanitizer
#                    would only slow the runs 2-5x; debug assertions make an arithmetic
#                    overflow a crash, as in `cargo test`. `--debug-assertions` alone
#                    gives the ASan build)
#   FUZZ_NO_MERGE=1  fuzz only; leave fuzz/corpus/ alone
#
# A crash or timeout stops that target's run; its input is kept under
# $FUZZ_HOME/artifacts/<target>/ and named in the summary. Fix the defect, then copy the
# input into fuzz/regressions/<target>/ under a descriptive name: `cargo test` replays it
# (tests/fuzz_corpus.rs). Exit status: 0 if no target crashed, 1 otherwise.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz_dir")
secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
home=${FUZZ_HOME:-$repo/target/fuzz-home}
per_input=${FUZZ_TIMEOUT:-10}
read -r -a flags <<<"${FUZZ_BUILD_FLAGS:---sanitizer=none --debug-assertions}"
export RUSTC_BOOTSTRAP=1
mkdir -p "$home"/{corpus,artifacts,logs}
ledger=$home/ledger.tsv

cd "$fuzz_dir"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# Every process this script starts is a child it waits for; on Ctrl-C or TERM the one
# running is stopped by its PID (and its process group: cargo's child is libFuzzer).
child=
stop() {
  if [ -n "$child" ]; then
    kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  exit 130
}
trap stop INT TERM

# Runs "$@" in its own process group, bounded by $1 seconds of wall time (then TERM, and
# KILL 10 s later); returns its exit status.
bounded() {
  local limit=$1
  shift
  set -m
  "$@" &
  child=$!
  set +m
  local waited=0 rc=0
  while kill -0 "$child" 2>/dev/null; do
    if [ "$waited" -ge "$limit" ]; then
      kill -TERM -- "-$child" 2>/dev/null || true
      sleep 10
      kill -KILL -- "-$child" 2>/dev/null || true
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  wait "$child" || rc=$?
  child=
  return "$rc"
}

count() { find "$1" -type f 2>/dev/null | wc -l; }
bytes() { find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

echo "building (cargo fuzz build ${flags[*]})"
cargo fuzz build "${flags[@]}" >"$home/logs/build.log" 2>&1 || {
  echo "build failed: $home/logs/build.log" >&2
  exit 1
}

summary=()
crashed=0
for t in "${targets[@]}"; do
  work=$home/corpus/$t
  seeds=$fuzz_dir/corpus/$t
  regress=$fuzz_dir/regressions/$t
  mkdir -p "$work" "$seeds" "$home/artifacts/$t"
  before=$(count "$seeds")
  log=$home/logs/$t.log
  dirs=("$work" "$seeds")
  [ -d "$regress" ] && dirs+=("$regress")
  echo "== $t: ${secs}s, working corpus $work ($(count "$work") files), seeds $before files"
  rc=0
  bounded $((secs + 120)) cargo fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" -timeout="$per_input" -print_final_stats=1 \
    -artifact_prefix="$home/artifacts/$t/" >"$log" 2>&1 || rc=$?
  execs=$(awk '/^stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
  rate=$(awk '/^stat::average_exec_per_sec/ {print $NF}' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  note=ok
  if [ "$rc" -ne 0 ]; then
    crashed=1
    art=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -1)
    note="FAILED (exit $rc) ${art:-see $log}"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$secs" \
    "${execs:-0}" "${rate:-0}" "${cov:-?}" "${ft:-?}" >>"$ledger"

  after=$before
  if [ "${FUZZ_NO_MERGE:-0}" != 1 ] && [ "$rc" -eq 0 ]; then
    merged=$home/merge-$t
    rm -rf "$merged"
    mkdir -p "$merged"
    if bounded 900 cargo fuzz run "${flags[@]}" "$t" "$merged" "$seeds" "$work" -- \
      -merge=1 -timeout="$per_input" >"$home/logs/merge-$t.log" 2>&1 &&
      [ "$(count "$merged")" -gt 0 ]; then
      find "$seeds" -type f -delete
      cp "$merged"/* "$seeds"/
      # The working corpus keeps what it had: it is the fuzzer's memory between runs.
      after=$(count "$seeds")
    else
      note="$note; merge failed: $home/logs/merge-$t.log"
    fi
    rm -rf "$merged"
  fi
  total=$(awk -F'\t' -v t="$t" '$2 == t {s += $4} END {printf "%d", s}' "$ledger")
  summary+=("$(printf '%-17s %12s %9s %7s %8s %6s -> %-6s %14s  %s' "$t" "${execs:-0}" \
    "${rate:-0}" "${cov:-?}" "${ft:-?}" "$before" "$after" "$total" "$note")")
  echo "   ${summary[-1]}"
done

echo
printf '%-17s %12s %9s %7s %8s %16s %14s\n' target executions exec/s cov ft "corpus files" "all runs"
printf '%s\n' "${summary[@]}"
echo "(ledger of every run: $ledger; corpus bytes now: $(bytes "$fuzz_dir/corpus"))"
exit "$crashed"
