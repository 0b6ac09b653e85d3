#!/usr/bin/env bash
# `make bench`: every benchmark, each part bounded (it stops by itself), results in BENCHMARKS.md. Under 10 minutes on
# 2 cores before the Kubernetes-scale and failover sections were added; the whole has not been timed since.
# Needs the release builds of `make build` (Envoy from `make setup`, the filter's .wasm), wrk, valgrind and wat2wasm
# (`make bench` installs them).
# Sizes can be raised: BENCH_ENVOY_KEYS (keys per run through Envoy), BENCH_ROUNDS, BENCH_SECONDS,
# BENCH_AGENT_ENVOYS (Envoys per protocol connected to the agent), BENCH_ADS_RUNS (runs of each
# bench/agent_scale.sh program and bench/kube_scale.sh protocol), BENCH_ADS_STREAMS (concurrent ADS
# streams, 100), BENCH_FAILOVER_RUNS (runs of each bench/failover.py setting, 1; the failover section is
# written to bench/notes/failover.md; 0 skips it and leaves that file as it is).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/machine_env.sh
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
ENVOY_BIN="${ENVOY_BIN:-.tools/bin/envoy-$(cat .envoy-version)}"
AFFINITY_WASM="${AFFINITY_WASM:-$TARGET_DIR/wasm32-wasip1/release/affinity_filter.wasm}"
XDS_AGENT_BIN="${XDS_AGENT_BIN:-$TARGET_DIR/release/xds-agent}"
PREDICTOR_KEYS=100000
ENVOY_KEYS="${BENCH_ENVOY_KEYS:-50000}"
ROUNDS="${BENCH_ROUNDS:-5}"
SECONDS_PER_RUN="${BENCH_SECONDS:-3}"
AGENT_ENVOYS="${BENCH_AGENT_ENVOYS:-2}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/bench-results-XXXXXX")"

started=$(date +%s)
{
  machine_env
  echo "envoy=$("$ENVOY_BIN" --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*/[^/]*' | head -1)"
  echo "wrk=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "rustc=$(rustc --version)"
} > "$OUT/machine.env"

echo "== predictor: balance and churn, $PREDICTOR_KEYS keys" >&2
cargo build -q --release -p affinity-predictor --example balance
PREDICTOR="$TARGET_DIR/release/examples/balance"
for n in 10 100; do
  for lb in ring:1024 ring:auto maglev:65537; do
    "$PREDICTOR" --hosts "$n" --lb "$lb" --keys "$PREDICTOR_KEYS" --remove-last
  done
done > "$OUT/predictor.jsonl"

echo "== real Envoy: balance and churn, $ENVOY_KEYS keys per run" >&2
for n in 10 100; do
  python3 bench/balance_envoy.py --hosts "$n" --keys "$ENVOY_KEYS" --envoy "$ENVOY_BIN" --predictor "$PREDICTOR"
done > "$OUT/envoy.jsonl"

echo "== real Envoy: filter overhead, $ROUNDS rounds x ${SECONDS_PER_RUN}s" >&2
# The do-nothing SDK filter and host-call probes (bench/probe-filter), built as `make wasm` builds ours
# (fat LTO, opt-level z, panic=abort), and the same module with only our filter's exports kept.
CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=z cargo build -q --release --target wasm32-wasip1 -p probe-filter
PROBE_WASM="$TARGET_DIR/wasm32-wasip1/release/probe_filter.wasm"
wasm-metadce --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
  --graph-file filter/exports.json "$PROBE_WASM" -o "$OUT/probe_filter_trimmed.wasm" >/dev/null
wat2wasm bench/raw-filter.wat -o "$OUT/raw_filter.wasm"
python3 bench/filter_overhead.py --envoy "$ENVOY_BIN" --wasm "$AFFINITY_WASM" \
  --probe-wasm "$PROBE_WASM" --trimmed-probe-wasm "$OUT/probe_filter_trimmed.wasm" --raw-wasm "$OUT/raw_filter.wasm" \
  --rounds "$ROUNDS" --seconds "$SECONDS_PER_RUN" > "$OUT/filter.json"

echo "== agent: 1000 services x 10 endpoints to $AGENT_ENVOYS SotW + $AGENT_ENVOYS delta Envoys" >&2
python3 bench/agent_xds.py --agent "$XDS_AGENT_BIN" --envoy "$ENVOY_BIN" --services 1000 --endpoints 10 \
  --envoys "$AGENT_ENVOYS" > "$OUT/agent.json"

bench/agent_scale.sh "$OUT"
bench/kube_scale.sh "$OUT"

FAILOVER_RUNS="${BENCH_FAILOVER_RUNS:-1}"
if [[ $FAILOVER_RUNS -gt 0 ]]; then
  echo "== failover: a backend killed behind 3 Envoys, $FAILOVER_RUNS runs per setting" >&2
  python3 bench/failover.py --agent "$XDS_AGENT_BIN" --envoy "$ENVOY_BIN" \
    --backend "${DEMO_BACKEND_BIN:-$TARGET_DIR/release/demo-backend}" --runs "$FAILOVER_RUNS" \
    --out bench/notes/failover.md --json "$OUT/failover.jsonl" --command "${BENCH_COMMAND:-make bench}"
else
  echo "== failover: skipped (BENCH_FAILOVER_RUNS=0), bench/notes/failover.md left as it is" >&2
fi

echo "== criterion: key derivation per source" >&2
cargo bench -q -p affinity-core --bench key_derivation -- --warm-up-time 1 --measurement-time 3 \
  2>/dev/null | tee "$OUT/criterion.txt" >&2

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.env"
echo "total_seconds=$(( $(date +%s) - started ))" >> "$OUT/machine.env"
python3 bench/report.py "$OUT" "${BENCH_COMMAND:-make bench}" \
  "BENCH_ENVOY_KEYS=$ENVOY_KEYS BENCH_ROUNDS=$ROUNDS BENCH_SECONDS=$SECONDS_PER_RUN BENCH_AGENT_ENVOYS=$AGENT_ENVOYS BENCH_ADS_RUNS=${BENCH_ADS_RUNS:-3} BENCH_ADS_STREAMS=${BENCH_ADS_STREAMS:-100} BENCH_FAILOVER_RUNS=$FAILOVER_RUNS" \
  > BENCHMARKS.md
echo "BENCHMARKS.md written (raw results in $OUT)" >&2
