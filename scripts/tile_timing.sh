#!/usr/bin/env bash
# Measured cycles of a tile config's timed segments, for the record that `explain --gemv` is
# checked against (tests/cli.rs: explain_gemv_equals_measured_timed_segments).
#   scripts/tile_timing.sh generators/<config>.toml   ->  reports/tile_timing/<config>.log
# It writes the config's golden file with one random GEMV (the timed segments are always whole:
# the manifest's three workloads, then every vector length of 1 .. 3·max(weigh_steps, comp_steps)
# beats), runs the Verilator bench and keeps its `timing:` and PASS lines. The log is written
# only when the bench passes.
set -euo pipefail
config=${1:?usage: scripts/tile_timing.sh generators/<config>.toml}
[ -f "$config" ] || { echo "error: config file '$config' not found"; exit 1; }
KLLM=${KLLM:-target/release/kllm-gen}
name=$(basename "$config" .toml)
design=${OUT:-verilog_out}/$name
build=build/${name}_timing
mkdir -p "$build" reports/tile_timing
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
grep -q '^tile ' "$build/blocks.txt" || { echo "error: $config has no [tile] section"; exit 1; }
"$KLLM" generate --config "$config" --out "$(dirname "$design")" >/dev/null
"$KLLM" golden --config "$config" --out "$build" --block tile --vectors 1 >/dev/null
log="$build/sim_tile.log"
testbenches/run_block.sh "$design" tile "$build/golden_tile.txt" "$build" +seed="${SEED:-1}" >"$log" 2>&1 || {
  tail -5 "$log"; echo "FAIL: $name: the bench did not pass; reports/tile_timing/$name.log not written"; exit 1; }
hash=$(head -1 "$build/golden_tile.txt")
out=reports/tile_timing/$name.log
{
  echo "# $name: measured timed segments of kllm_tile (scripts/tile_timing.sh $config)"
  echo "# golden: $hash"
  grep -E '^  timing: |^PASS' "$log"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "PASS: $out ($(grep -c 'timing:' "$out") timed segments)"
