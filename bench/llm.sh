#!/usr/bin/env bash
# `make bench-llm [TRACE=path]`: the LLM affinity benchmark on a Mooncake-format trace, bounded
# (about 6 minutes on 2 cores with the defaults): the simulator over the whole trace (8, 16, 64
# backends; 1, 2, 4, 8 router replicas), then a time-compressed replay of the first
# BENCH_LLM_REQUESTS requests through 1 and 3 real Envoys to 8 `demo-backend --llm`, with the
# simulator on the same requests beside it. Prints the tables and writes JSON records (one per
# strategy and setting) to $TARGET_DIR/bench-llm/.
# Sizes: BENCH_LLM_REQUESTS (1000), BENCH_LLM_COMPRESS (20), BENCH_LLM_ROUNDS (1: replay runs per
# setting; medians when more).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/machine_env.sh
TRACE="${TRACE:-}"
TRACE="${TRACE:-../shared/traces/mooncake-conversation.jsonl}"
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
ENVOY_BIN="${ENVOY_BIN:-.tools/bin/envoy-$(cat .envoy-version)}"
AFFINITY_WASM="${AFFINITY_WASM:-$TARGET_DIR/wasm32-wasip1/release/affinity_filter.wasm}"
REQUESTS="${BENCH_LLM_REQUESTS:-1000}"
COMPRESS="${BENCH_LLM_COMPRESS:-20}"
ROUNDS="${BENCH_LLM_ROUNDS:-1}"
OUT="$TARGET_DIR/bench-llm"
mkdir -p "$OUT"

started=$(date +%s)
{
  machine_env
  echo "trace=$TRACE ($(wc -l < "$TRACE") lines)"
  echo "envoy=$("$ENVOY_BIN" --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*/[^/]*' | head -1)"
  echo "rustc=$(rustc --version)"
} > "$OUT/machine.env"

cargo build -q --release -p llm-bench -p demo-backend
BIN="$TARGET_DIR/release"

echo "== simulator: whole trace, 8/16/64 backends x 1/2/4/8 replicas" >&2
"$BIN/llm-sim" --trace "$TRACE" --json "$OUT/sim.jsonl" > "$OUT/sim.md"

echo "== simulator: the replay's $REQUESTS requests, 8 backends x 1/3 replicas" >&2
"$BIN/llm-sim" --trace "$TRACE" --limit "$REQUESTS" --backends 8 --replicas 1,3 \
  --json "$OUT/sim-replay-window.jsonl" > "$OUT/sim-replay-window.md"

echo "== real Envoys: $REQUESTS requests, ${COMPRESS}x compressed, 1 and 3 Envoys, $ROUNDS round(s)" >&2
"$BIN/llm-requests" --trace "$TRACE" --limit "$REQUESTS" --out "$OUT/requests.jsonl"
python3 bench/llm_replay.py --requests "$OUT/requests.jsonl" --envoy "$ENVOY_BIN" --wasm "$AFFINITY_WASM" \
  --backend "$BIN/demo-backend" --envoys 1,3 --compress "$COMPRESS" --rounds "$ROUNDS" > "$OUT/replay.jsonl"
python3 bench/llm_report.py "$OUT/replay.jsonl" "$OUT/sim-replay-window.jsonl" > "$OUT/replay.md"
echo "seconds=$(( $(date +%s) - started ))" >> "$OUT/machine.env"

echo "## Simulator (whole trace)"
cat "$OUT/sim.md"
echo
echo "## Replay"
cat "$OUT/replay.md"
echo
cat "$OUT/machine.env"
echo "JSON records: $OUT/sim.jsonl $OUT/sim-replay-window.jsonl $OUT/replay.jsonl" >&2
