#!/usr/bin/env bash
# The float tile's compensation pipeline where its extra cycle shows. In tile_fp16_small the
# compensation result (8 steps + done + the stage after the F multipliers) is ready before the PE
# lines' (12 cycles of line latency), so the register after kllm_fp_mul costs no cycle there and
# its timed segments equal tile_small's. With comp_macs = 1 (16 steps per row) the compensation
# result is the later one and every timed segment takes one cycle more than the integer twin's:
# 1. tile_fp16_small with comp_macs = 1 (a copy of the config in build/, not committed): 300
#    random GEMVs and every timed segment, bit-exact and cycle-exact against `tile::timing`;
# 2. negative control: the same golden file with the timed segments after the manifest's three
#    workloads set to the integer twin's cycles (the model without the pipeline stage) must
#    fail with timing mismatches;
# 3. negative control: a copy of the RTL that pushes the compensation result at done_q, one
#    cycle before the delayed last step is accumulated, must fail with mismatches.
#   scripts/tile_fp_pipe.sh     (make tile-fp-pipe; ~130 CPU-s, most of it two Verilator builds)
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
build=build/tile_fp_pipe
mkdir -p "$build"
sed 's/^comp_macs = 2$/comp_macs = 1/' generators/tile_fp16_small.toml >"$build/tile_fp16_cm1.toml"
sed 's/^comp_macs = 2$/comp_macs = 1/' generators/tile_small.toml >"$build/tile_cm1.toml"
grep -q '^comp_macs = 1$' "$build/tile_fp16_cm1.toml" && grep -q '^comp_macs = 1$' "$build/tile_cm1.toml" ||
  { echo "FAIL tile-fp-pipe: comp_macs = 2 not found in generators/tile_fp16_small.toml or tile_small.toml"; exit 1; }
"$KLLM" generate --config "$build/tile_fp16_cm1.toml" --out "$build/out" >/dev/null || exit 1
"$KLLM" blocks --config "$build/tile_fp16_cm1.toml" >"$build/blocks.txt"
"$KLLM" golden --config "$build/tile_fp16_cm1.toml" --out "$build" --block tile --vectors "${VECTORS:-300}" --seed 4 >/dev/null || exit 1
"$KLLM" golden --config "$build/tile_cm1.toml" --out "$build/int" --block tile --vectors 1 >/dev/null || exit 1
good=$build/golden_tile.txt
grep '^timing ' "$build/int/golden_tile.txt" | cut -d' ' -f2 >"$build/int_cycles.txt"
# Segments 4.. with the integer twin's cycles (the first three are checked against the manifest).
awk 'NR == FNR { t[++n] = $1; next } /^timing / { i++; if (i > 3) { print "timing " t[i]; next } } { print }' \
  "$build/int_cycles.txt" "$good" >"$build/golden_unpipelined_cycles.txt"
later=$(paste -d' ' <(grep '^timing ' "$good" | cut -d' ' -f2) "$build/int_cycles.txt" | awk '$1 == $2 + 1 { n++ } END { print n + 0 }')
echo "tile-fp-pipe: $later of $(grep -c '^timing ' "$good") timed segments take one cycle more than the integer twin's (comp_macs = 1)"
[ "$later" -gt 0 ] || { echo "FAIL tile-fp-pipe: no timed segment differs from the integer twin: the check proves nothing"; exit 1; }
source testbenches/negative_lib.sh
expect_pass "baseline: tile_fp16_small with comp_macs = 1, pipelined model" "$build/good.log" -- \
  testbenches/run_block.sh "$build/out/tile_fp16_cm1" tile "$good" "$build" +seed=4 || exit 1
grep -m1 '^PASS' "$build/good.log"
expect_fail unpipelined-cycle-model "$build/unpipelined.log" " timing_mismatches=[1-9][0-9]*" -- \
  testbenches/run_block.sh "$build/out/tile_fp16_cm1" tile "$build/golden_unpipelined_cycles.txt" "$build" +seed=4 || exit 1
mut=$build/design_push_early
rm -rf "$mut"; cp -r "$build/out/tile_fp16_cm1" "$mut"
sed -i 's/\.push      (comp_done_q)/.push      (done_q)/' "$mut/kllm_tile.v"
grep -q '\.push      (done_q)' "$mut/kllm_tile.v" || { echo "FAIL negative control 'push-before-last-step': the mutation did not apply"; exit 1; }
mbuild=$build/mutant; mkdir -p "$mbuild"; cp "$build/blocks.txt" "$mbuild/"
expect_fail push-before-last-step "$build/push_early.log" " mismatches=[1-9][0-9]*" -- \
  testbenches/run_block.sh "$mut" tile "$good" "$mbuild" +seed=4 || exit 1
