#!/usr/bin/env bash
# `make tile-dq`: the tile with dequantize-multiply PE lines (testbenches/tile_small_dq.toml:
# tile_small with `[tile] line = "dequant"`), generated into build/tile_dq/:
#  1. lint (verilator -Wall silent, iverilog) and hierarchical Yosys (check -assert, no latches);
#  2. the tile bench on its golden file (tile_small's GEMVs, VECTORS of them, default the
#     config's 2 000): 0 mismatches and every timed segment exact, predicted by the tile's
#     control model stepping the baseline line's own model;
#  3. the stimulus is tile_small's, line for line (only the timed segments' cycles differ);
#  4. negative controls: tile_small's cycles (the index line's model) in place of the timed
#     segments' must fail on timing; one corrupted expected result must fail on data.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
config=testbenches/tile_small_dq.toml
root=build/tile_dq
name=tile_small_dq
design=$root/rtl/$name
sim=$root/sim
rm -rf "$root"; mkdir -p "$sim" "$root/index"
fail() { echo "FAIL: tile-dq: $*"; exit 1; }
source testbenches/negative_lib.sh
"$KLLM" generate --config "$config" --out "$root/rtl" >/dev/null || fail "generate"
scripts/lint.sh "$design" || fail "lint"
SYNTH_TABLE=$root/synth.md scripts/synth.sh "$design" >"$root/synth.log" 2>&1 || { tail -5 "$root/synth.log"; fail "Yosys (check -assert / latches)"; }
echo "PASS synth $design: $(grep -c '' "$root/synth.md") lines in $root/synth.md, no latches"
"$KLLM" blocks --config "$config" >"$sim/blocks.txt"
args=(); [ -n "${VECTORS:-}" ] && args+=(--vectors "$VECTORS")
"$KLLM" golden --config "$config" --out "$sim" "${args[@]}" >/dev/null || fail "golden"
good=$sim/golden_tile.txt
testbenches/run_block.sh "$design" tile "$good" "$sim" +seed=1 >"$sim/good.log" 2>&1
grep -q '^PASS' "$sim/good.log" || { tail -8 "$sim/good.log"; fail "bench on the dequantize-multiply tile"; }
echo "[tile_small_dq] $(grep '^PASS' "$sim/good.log")"
# 3. The same stimulus and expected results as the index tile's.
"$KLLM" blocks --config generators/tile_small.toml >"$root/index/blocks.txt"
"$KLLM" golden --config generators/tile_small.toml --out "$root/index" "${args[@]}" >/dev/null || fail "golden of tile_small"
idx=$root/index/golden_tile.txt
body() { grep -v -e '^#' -e '^timing ' "$1"; }
cmp -s <(body "$good") <(body "$idx") || fail "the golden stimulus differs from tile_small's"
differ=$(paste -d' ' <(grep '^timing ' "$good") <(grep '^timing ' "$idx") | awk '$2 != $4' | wc -l)
echo "PASS same stimulus as tile_small: $(body "$good" | wc -l) lines equal; $differ of $(grep -c '^timing ' "$good") timed segments predict other cycles"
# 4a. The index line's cycles for every timed segment after the manifest's three (the bench
# checks those three against the manifest before it runs).
awk 'NR == FNR { if ($1 == "timing") t[++n] = $2; next } $1 == "timing" { i++; if (i > 3) $2 = t[i] } { print }' \
  "$idx" "$good" >"$sim/index_cycles.txt"
# It must fail on timing only: every result right.
expect_fail "index-line cycles" "$sim/index_cycles.log" " timing_mismatches=[1-9][0-9]*" " mismatches=0 " -- \
  testbenches/run_block.sh "$design" tile "$sim/index_cycles.txt" "$sim" +seed=1 || fail "negative control 'index-line cycles'"
# 4b. One expected result wrong (lowest bit of the first `out` line's y).
n=$(grep -n -m1 '^out ' "$good" | cut -d: -f1)
read -r tag y rest <<<"$(sed -n "${n}p" "$good")"
bad=$(flip_hex "$y")
sed "${n}s/^out $y /out $bad /" "$good" >"$sim/bad_y.txt"
expect_fail --note "golden line $n" corrupt-expected-y "$sim/bad_y.log" " mismatches=[1-9][0-9]*" -- \
  testbenches/run_block.sh "$design" tile "$sim/bad_y.txt" "$sim" +seed=1 || fail "negative control 'corrupt-expected-y'"
echo "PASS: tile-dq"
