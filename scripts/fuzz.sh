#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target until it has had FUZZ_SECONDS (default 30) of CPU time, and prints
# executions, CPU seconds and findings per target. On a busy machine a fuzzer gets less CPU than wall time, so a
# target runs again (on the corpus it grew) until its CPU seconds reach FUZZ_SECONDS. Working corpora live in
# target/fuzz-corpus/<target> (seeded from fuzz/seeds/ and, for the agent, the repository's example configs);
# crashes land in fuzz/artifacts/<target>/. Every crash found must become a regression test in the ordinary suite.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(filter_config request_parsers policy json_body agent_yaml)
results=()
status=0
for target in "${targets[@]}"; do
  corpus="target/fuzz-corpus/$target"
  mkdir -p "$corpus"
  seeds=()
  [[ -d "fuzz/seeds/$target" ]] && seeds+=("fuzz/seeds/$target")
  [[ $target == agent_yaml ]] && seeds+=(examples istio/agent-mode)
  log="target/fuzz-corpus/$target.log"
  echo "== fuzz $target for ${seconds} CPU-s" >&2
  before=$({ find "fuzz/artifacts/$target" -type f 2>/dev/null || true; } | wc -l)
  # Build first, so the CPU time measured below is the fuzzer's alone.
  cargo +nightly fuzz build --fuzz-dir fuzz "$target" >>"$log.build" 2>&1 || { tail -20 "$log.build" >&2; exit 1; }
  cpu=0 runs=0 sessions=0
  : >"$log"
  while [[ $cpu -lt $seconds ]]; do
    left=$((seconds - cpu))
    if ! /usr/bin/time -f '%U %S' -o "$log.cpu" cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" \
        "${seeds[@]}" -- -max_total_time="$((left < 10 ? 10 : left))" -print_final_stats=1 -rss_limit_mb=4096 \
        >>"$log" 2>&1; then
      status=1
      break
    fi
    sessions=$((sessions + 1))
    cpu=$((cpu + $(awk 'END { printf "%.0f", $1 + $2 }' "$log.cpu")))
    runs=$((runs + $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')))
  done
  after=$({ find "fuzz/artifacts/$target" -type f 2>/dev/null || true; } | wc -l)
  corpus_size=$(ls "$corpus" | wc -l)
  results+=("$(printf '%-16s %12s runs  %6s CPU-s  %2s sessions  %6s corpus  %3s findings' "$target" "$runs" "$cpu" \
    "$sessions" "$corpus_size" "$((after - before))")")
  if [[ $((after - before)) -gt 0 ]]; then
    grep -m5 -E 'panicked|ERROR|SUMMARY' "$log" >&2 || true
  fi
done
echo
echo "fuzz results (${seconds} CPU-s per target):"
printf '%s\n' "${results[@]}"
exit "$status"
