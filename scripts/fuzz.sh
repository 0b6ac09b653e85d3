#!/usr/bin/env bash
# `make fuzz`: runs each cargo-fuzz target for FUZZ_SECONDS (default 30) and prints executions, CPU seconds and
# findings per target. Working corpora live in target/fuzz-corpus/<target> (seeded from fuzz/seeds/
# and, for the agent, the repository's example configs); crashes land in fuzz/artifacts/<target>/.
# Every crash found must become a regression test in the ordinary suite.
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
  echo "== fuzz $target for ${seconds}s" >&2
  before=$({ find "fuzz/artifacts/$target" -type f 2>/dev/null || true; } | wc -l)
  # Build first, so the CPU time measured below is the fuzzer's alone.
  cargo +nightly fuzz build --fuzz-dir fuzz "$target" >>"$log.build" 2>&1 || { tail -20 "$log.build" >&2; exit 1; }
  if ! /usr/bin/time -f '%U %S' -o "$log.cpu" cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 >"$log" 2>&1; then
    status=1
  fi
  cpu=$(awk 'END { printf "%.0f", $1 + $2 }' "$log.cpu")
  after=$({ find "fuzz/artifacts/$target" -type f 2>/dev/null || true; } | wc -l)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  corpus_size=$(ls "$corpus" | wc -l)
  results+=("$(printf '%-16s %12s runs  %6s CPU-s  %6s corpus  %3s findings' "$target" "$runs" "$cpu" "$corpus_size" "$((after - before))")")
  if [[ $((after - before)) -gt 0 ]]; then
    grep -m5 -E 'panicked|ERROR|SUMMARY' "$log" >&2 || true
  fi
done
echo
echo "fuzz results (${seconds}s per target):"
printf '%s\n' "${results[@]}"
exit "$status"
