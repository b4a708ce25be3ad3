#!/usr/bin/env bash
# Negative controls of the tile's weight-index buffer (the uncorrupted file must pass first, or
# they prove nothing):
# 1. one weight index that GEMVs read from the buffer is wrong: the lowest bit of line 0, lane 0
#    in the first load beat of a copy of tile_buf's golden vectors (group 0, beat 0 of the first
#    layer, which that layer's GEMVs read): the bench must fail with mismatches;
# 2. the load-ordering rule broken in a copy of the RTL (a load no longer waits until the reads
#    of the tokens before it were issued): the timed reload segments, whose loads overwrite the
#    rows the previous GEMV is reading, must fail.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
config=generators/tile_buf.toml
design=verilog_out/tile_buf
build=build/negative_tile_buf
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
"$KLLM" golden --config "$config" --out "$build" --block tile --vectors "${VECTORS:-60}" --seed 7 >/dev/null
good=$build/golden_tile.txt
source testbenches/negative_lib.sh
if testbenches/run_block.sh "$design" tile "$good" "$build" +seed=7 >"$build/good.log" 2>&1; then
  echo "PASS negative control baseline: uncorrupted tile_buf golden passes"
else
  echo "FAIL negative control baseline: uncorrupted tile_buf golden fails"; tail -5 "$build/good.log"; exit 1
fi
# `in.w <idx> <rows> <last> <op> <addr>`: the first load (op 1).
n=$(grep -n -m1 -E '^in\.w [0-9a-f]+ [0-9a-f]+ [01] 1 ' "$good" | cut -d: -f1)
[ -n "$n" ] || { echo "FAIL negative control: no load beat in $good"; exit 1; }
read -r tag idx rest <<<"$(sed -n "${n}p" "$good")"
bad_idx=$(flip_hex "$idx")
sed "${n}s/^in\.w $idx /in.w $bad_idx /" "$good" >"$build/bad_buffered_index.txt"
log=$build/bad_buffered_index.log
if testbenches/run_block.sh "$design" tile "$build/bad_buffered_index.txt" "$build" +seed=7 >"$log" 2>&1; then
  echo "FAIL negative control 'corrupt-buffered-weight-index': the bench passed (golden line $n)"; exit 1
elif grep -q "^FAIL" "$log" && grep -q " mismatches=[1-9]" "$log"; then
  echo "PASS negative control 'corrupt-buffered-weight-index': bench failed as it must (golden line $n, idx $idx -> $bad_idx, $(grep -o ' mismatches=[0-9]*' "$log" | head -1))"
else
  echo "FAIL negative control 'corrupt-buffered-weight-index': bench failed without mismatches"; tail -5 "$log"; exit 1
fi
# 2. The RTL with loads that do not wait for earlier reads.
mut=$build/design_load_no_wait
rm -rf "$mut"; cp -r "$design" "$mut"
sed -i 's/(op_load ? rd_none : tok_ok)/(op_load ? 1'"'"'b1 : tok_ok)/' "$mut/kllm_tile.v"
grep -q "op_load ? 1'b1" "$mut/kllm_tile.v" || { echo "FAIL negative control 'load-does-not-wait': the mutation did not apply"; exit 1; }
mbuild=$build/mutant; mkdir -p "$mbuild"; cp "$build/blocks.txt" "$mbuild/"
log=$build/load_no_wait.log
if testbenches/run_block.sh "$mut" tile "$good" "$mbuild" +seed=7 >"$log" 2>&1; then
  echo "FAIL negative control 'load-does-not-wait': the bench passed a tile whose loads overtake reads"; exit 1
elif grep -q "^FAIL" "$log" && grep -q " mismatches=[1-9]" "$log"; then
  echo "PASS negative control 'load-does-not-wait': bench failed as it must ($(grep -o ' mismatches=[0-9]*' "$log" | head -1),$(grep -o ' timing_mismatches=[0-9]*' "$log" | head -1))"
else
  echo "FAIL negative control 'load-does-not-wait': bench failed without mismatches"; tail -5 "$log"; exit 1
fi
