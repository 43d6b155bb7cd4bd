#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 3600) of wall-clock time, two at a time at the
# lowest CPU priority, then minimises each corpus in place (`cargo fuzz cmin`), so that the
# committed corpora stay small. Logs go to fuzz/logs/<target>.log; a crash stops its target
# and leaves the input in fuzz/artifacts/<target>/, to become a regression test.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-3600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(beacon_decode segment_decode config_load audience_rule)
export RUSTC_BOOTSTRAP=1 # lets stable rustc take the sanitizer flags cargo-fuzz passes
mkdir -p logs
cargo fuzz build
run() {
  mkdir -p "corpus/$1"
  nice -n 19 cargo fuzz run "$1" "corpus/$1" "seeds/$1" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"logs/$1.log" 2>&1 \
    && echo "$1: no crash in ${seconds}s ($(grep -o 'Done [0-9]* runs' "logs/$1.log"))" \
    || echo "$1: FAILED, see fuzz/logs/$1.log and fuzz/artifacts/$1/"
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [ -z "${targets[i + 1]:-}" ] || run "${targets[i + 1]}" &
  wait
done
for target in "${targets[@]}"; do
  nice -n 19 cargo fuzz cmin "$target" "corpus/$target" >>"logs/$target.log" 2>&1
  echo "$target: corpus minimised to $(ls "corpus/$target" | wc -l) inputs"
done
