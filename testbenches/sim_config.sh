#!/usr/bin/env bash
# Regression for one config: golden vectors from the Rust reference, then every block's bench.
#   testbenches/sim_config.sh generators/<name>.toml
# Env: KLLM (the kllm-gen binary), SEED (default: the config's test.seed), VECTORS, WAVES=1.
set -euo pipefail
config=$1
name=$(basename "$config" .toml)
KLLM=${KLLM:-target/release/kllm-gen}
design=verilog_out/$name
build=build/$name
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
args=()
[ -n "${SEED:-}" ] && args+=(--seed "$SEED")
[ -n "${VECTORS:-}" ] && args+=(--vectors "$VECTORS")
"$KLLM" golden --config "$config" --out "$build" "${args[@]}" >/dev/null
status=0
while read -r block _top; do
  log=$build/sim_$block.log
  if testbenches/run_block.sh "$design" "$block" "$build/golden_$block.txt" "$build" +seed="${SEED:-1}" >"$log" 2>&1; then :; else status=1; fi
  # The verdict is the bench's PASS line; its absence is a failure.
  if grep -q '^PASS' "$log"; then
    echo "[$name] $(grep '^PASS' "$log")"
  else
    status=1
    echo "[$name] FAIL $block (log: $log)"; tail -15 "$log" | sed 's/^/    /'
  fi
done <"$build/blocks.txt"
# Real data: the MatMuls of the reference decoder layer (K-Means W/A codebooks, LUTs, indices).
# (Integer mode only: float mode has no reference decoder layer yet, so a float config skips it.)
if grep -q '"numerics"' "$design/manifest.json"; then
  grep -q '^pe_line ' "$build/blocks.txt" && echo "[$name] layer MatMuls: skipped (float mode has no reference decoder layer yet)"
elif grep -q '^pe_line ' "$build/blocks.txt"; then
  log=$build/sim_pe_line_layer.log
  "$KLLM" golden --from-layer --config "$config" --out "$build" >"$build/layer_summary.txt" 2>&1 || status=1
  testbenches/run_block.sh "$design" pe_line "$build/golden_pe_line_layer.txt" "$build" +seed="${SEED:-1}" +timed=0 >"$log" 2>&1 || status=1
  if grep -q '^PASS' "$log"; then
    echo "[$name] layer MatMuls $(grep '^PASS' "$log")"
  else
    status=1; echo "[$name] FAIL pe_line on layer MatMuls (log: $log)"; tail -15 "$log" | sed 's/^/    /'
  fi
fi
exit $status
