#!/usr/bin/env bash
# The agent at scale (part of `make bench`; runs alone too): `bench/agent_scale.sh [RESULT_DIR]`.
#  - translate_bench: in-process YAML load, translate and encode of 1,000 services x 10 endpoints,
#    and of one 1,000-endpoint ClusterLoadAssignment (medians over many iterations per run);
#  - ads_load: the real `xds-agent serve` with that snapshot and BENCH_ADS_STREAMS (100)
#    concurrent ADS streams, SotW then delta: one-endpoint change to every stream's ACK, bytes per
#    stream for the change, agent RSS. Each ads_load run stops by itself within 85 s.
# BENCH_ADS_RUNS (3) runs of each. Writes agent_scale.env, translate.jsonl, ads_load.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/machine_env.sh
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
XDS_AGENT_BIN="${XDS_AGENT_BIN:-$TARGET_DIR/release/xds-agent}"
RUNS="${BENCH_ADS_RUNS:-3}"
STREAMS="${BENCH_ADS_STREAMS:-100}"
OUT="${1:-$(mktemp -d "${TMPDIR:-/tmp}/bench-agent-scale-XXXXXX")}"
mkdir -p "$OUT"

cargo build -q --release -p xds-agent --bin xds-agent --example translate_bench --example ads_load
started=$(date +%s)
{
  machine_env
  echo "runs=$RUNS"
  echo "streams=$STREAMS"
} > "$OUT/agent_scale.env"

echo "== agent in-process: translate + encode, $RUNS runs" >&2
for _ in $(seq "$RUNS"); do
  "$TARGET_DIR/release/examples/translate_bench"
done > "$OUT/translate.jsonl"

echo "== agent: $STREAMS concurrent ADS streams, SotW and delta, $RUNS runs each" >&2
for _ in $(seq "$RUNS"); do
  for protocol in sotw delta; do
    "$TARGET_DIR/release/examples/ads_load" --agent "$XDS_AGENT_BIN" --protocol "$protocol" --streams "$STREAMS"
  done
done > "$OUT/ads_load.jsonl"

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/agent_scale.env"
echo "seconds=$(( $(date +%s) - started ))" >> "$OUT/agent_scale.env"
echo "agent scale results in $OUT" >&2
