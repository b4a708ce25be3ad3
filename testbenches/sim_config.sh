#!/usr/bin/env bash
# Regression for one config: golden vectors from the Rust reference, then every block's bench.
#   testbenches/sim_config.sh generators/<name>.toml
# Env: KLLM (the kllm-gen binary), SEED (default: the config's test.seed), VECTORS, WAVES=1,
#      VECTORS_DIVISOR=d (quick run: the random vectors divided by d, timed segments whole),
#      VERILATOR_FLAGS (extra options for the models' builds, see testbenches/run_block.sh),
#      SKIP_BLOCKS="<config>:<block> ..." (blocks not run here: make sim-quick leaves out the
#      top-k sorter baseline at N = 64, see the Makefile).
set -euo pipefail
config=$1
name=$(basename "$config" .toml)
KLLM=${KLLM:-target/release/kllm-gen}
design=verilog_out/$name
build=build/$name
mkdir -p "$build"
# A config with its own Verilator configuration, testbenches/hier/<name>.vlt, has its models built
# hierarchically with it (unless VERILATOR_FLAGS is set): tile_wide's 4 lines x 128 bins of
# 64-input popcounts and 256 Orizuru leaf units, flattened, are ~70 MB of C++ (336 CPU-s to build);
# the paper tile's 16 lines x 256 bins of 512-input popcounts would not build in hours.
if [ -z "${VERILATOR_FLAGS:-}" ] && [ -f "testbenches/hier/$name.vlt" ]; then
  export VERILATOR_FLAGS="--hierarchical $(pwd)/testbenches/hier/$name.vlt"
fi
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
args=()
[ -n "${SEED:-}" ] && args+=(--seed "$SEED")
[ -n "${VECTORS:-}" ] && args+=(--vectors "$VECTORS")
[ -n "${VECTORS_DIVISOR:-}" ] && args+=(--vectors-divisor "$VECTORS_DIVISOR")
"$KLLM" golden --config "$config" --out "$build" "${args[@]}" >/dev/null
status=0
# verdict LOG PASS_PREFIX WHAT: the verdict is the bench's PASS line; its absence is a failure
# (printed with the log's tail, and a non-zero return).
verdict() {
  if grep -q '^PASS' "$1"; then
    echo "[$name] $2$(grep '^PASS' "$1")"
  else
    echo "[$name] FAIL $3 (log: $1)"; tail -15 "$1" | sed 's/^/    /'
    return 1
  fi
}
while read -r block _top; do
  if [[ " ${SKIP_BLOCKS:-} " == *" $name:$block "* ]]; then
    echo "[$name] $block: not run (SKIP_BLOCKS; make sim runs it)"
    continue
  fi
  log=$build/sim_$block.log
  if testbenches/run_block.sh "$design" "$block" "$build/golden_$block.txt" "$build" +seed="${SEED:-1}" >"$log" 2>&1; then :; else status=1; fi
  verdict "$log" "" "$block" || status=1
done <"$build/blocks.txt"
# Real data: the MatMuls of the reference decoder layer (K-Means W/A codebooks, LUTs, indices).
# (Integer mode only: float mode has no reference decoder layer yet, so a float config skips it.)
if grep -q '"numerics"' "$design/manifest.json"; then
  grep -q '^pe_line ' "$build/blocks.txt" && echo "[$name] layer MatMuls: skipped (float mode has no reference decoder layer yet)"
elif grep -q '^pe_line ' "$build/blocks.txt"; then
  log=$build/sim_pe_line_layer.log
  "$KLLM" golden --from-layer --config "$config" --out "$build" >"$build/layer_summary.txt" 2>&1 || status=1
  testbenches/run_block.sh "$design" pe_line "$build/golden_pe_line_layer.txt" "$build" +seed="${SEED:-1}" +timed=0 >"$log" 2>&1 || status=1
  verdict "$log" "layer MatMuls " "pe_line on layer MatMuls" || status=1
fi
# Real data through the tile: every MatMul of the reference decoder layer (q, k, v, o, gate, up,
# down on eval's 16 tokens, seed 1, compensation on) bit-exactly, then eval's error table rebuilt
# from the RTL's integer results, whose K-Means + outliers row must be the reference's exactly.
# Runs for the tile configs named in LAYER_CONFIGS (default: the default tile, a few minutes of
# Verilator; the paper tile would take far longer); a tile too small for the layer (K up to 1024,
# 5 outliers per side) says so and skips it.
if grep -q '^tile ' "$build/blocks.txt" && [[ " ${LAYER_CONFIGS:-default} " == *" $name "* ]]; then
  log=$build/sim_tile_layer.log
  if "$KLLM" golden --from-layer --seed 1 --config "$config" --out "$build" >"$build/layer_summary.txt" 2>&1; then
    rm -f "$build/rtl_tile_layer.txt"
    testbenches/run_block.sh "$design" tile "$build/golden_tile_layer.txt" "$build" +seed="${SEED:-1}" +timed=0 \
      +dump="$build/rtl_tile_layer.txt" >"$log" 2>&1 || status=1
    if verdict "$log" "layer MatMuls " "tile on layer MatMuls"; then
      eval_log=$build/eval_rtl.txt
      if "$KLLM" eval --seed 1 --config "$config" --rtl-results "$build" >"$eval_log" 2>&1 \
        && grep -q 'the row from RTL results equals the reference row' "$eval_log"; then
        echo "[$name] PASS: eval from RTL results: $(grep -o '[0-9]* of [0-9]* integer results differ' "$eval_log"), K-Means + outliers row = reference row"
      else
        status=1; echo "[$name] FAIL: eval from RTL results (log: $eval_log)"; tail -12 "$eval_log" | sed 's/^/    /'
      fi
    else
      status=1
    fi
  elif grep -q "^error: the layer's" "$build/layer_summary.txt"; then
    echo "[$name] layer MatMuls not run: $(sed 's/^error: //' "$build/layer_summary.txt")"
  else
    status=1; echo "[$name] FAIL golden --from-layer"; tail -3 "$build/layer_summary.txt" | sed 's/^/    /'
  fi
fi
exit $status
