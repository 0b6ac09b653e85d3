#!/usr/bin/env bash
# The agent's Kubernetes source at scale (issue 11; part of `make bench`, runs alone too):
# `bench/kube_scale.sh [RESULT_DIR]`.
#  - the fake Kubernetes API server (tests/examples/kube_fake.rs, its own process) with Service shop/web
#    and 100 EndpointSlices x 100 endpoints;
#  - ads_load --source kubernetes: the real `xds-agent serve --kubeconfig` serving them as one service,
#    BENCH_ADS_STREAMS (100) concurrent ADS streams, SotW then delta: agent start -> /readyz (the initial
#    list of 10,000 endpoints), agent RSS with every stream synced, one endpoint of one slice moved ->
#    new snapshot at /debug/snapshot -> every stream ACKed, bytes per stream for the change.
# BENCH_ADS_RUNS (3) runs of each protocol, each stopping by itself within 85 s.
# Writes kube_scale.env and kube_load.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/machine_env.sh
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
XDS_AGENT_BIN="${XDS_AGENT_BIN:-$TARGET_DIR/release/xds-agent}"
RUNS="${BENCH_ADS_RUNS:-3}"
STREAMS="${BENCH_ADS_STREAMS:-100}"
SLICES=100
ENDPOINTS_PER_SLICE=100
OUT="${1:-$(mktemp -d "${TMPDIR:-/tmp}/bench-kube-scale-XXXXXX")}"
mkdir -p "$OUT"

cargo build -q --release -p xds-agent --bin xds-agent --example ads_load
cargo build -q --release -p e2e --example kube_fake
started=$(date +%s)
{
  machine_env
  echo "runs=$RUNS"
  echo "streams=$STREAMS"
} > "$OUT/kube_scale.env"

echo "== agent from Kubernetes: $SLICES slices x $ENDPOINTS_PER_SLICE endpoints, $STREAMS ADS streams, SotW and delta, $RUNS runs each" >&2
for _ in $(seq "$RUNS"); do
  for protocol in sotw delta; do
    "$TARGET_DIR/release/examples/ads_load" --agent "$XDS_AGENT_BIN" --protocol "$protocol" --streams "$STREAMS" \
      --source kubernetes --kube-fake "$TARGET_DIR/release/examples/kube_fake" \
      --slices "$SLICES" --endpoints "$ENDPOINTS_PER_SLICE"
  done
done > "$OUT/kube_load.jsonl"

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/kube_scale.env"
echo "seconds=$(( $(date +%s) - started ))" >> "$OUT/kube_scale.env"
echo "Kubernetes scale results in $OUT" >&2
