#!/usr/bin/env bash
# Negative controls of the tile's weight-index buffer (the uncorrupted file must pass first, or
# they prove nothing), on a tile config with a buffer (default generators/tile_buf.toml; also
# run on generators/tile_fp16_buf.toml, the float tile with the same buffer):
#   testbenches/negative_control_tile_buf.sh [generators/<name>.toml]
# 1. one weight index that GEMVs read from the buffer is wrong: the lowest bit of line 0, lane 0
#    in the first load beat of a copy of the config's golden vectors (group 0, beat 0 of the
#    first layer, which that layer's GEMVs read): the bench must fail with mismatches;
# 2. the load-ordering rule broken in a copy of the RTL (a load no longer waits until the reads
#    of the tokens before it were issued): the timed reload segments, whose loads overwrite the
#    rows the previous GEMV is reading, must fail.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
config=${1:-generators/tile_buf.toml}
name=$(basename "$config" .toml)
design=verilog_out/$name
build=build/negative_$name
[ -f "$design/kllm_tile.v" ] || { echo "error: $design/kllm_tile.v not found (run make gen-all)"; exit 1; }
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
"$KLLM" golden --config "$config" --out "$build" --block tile --vectors "${VECTORS:-60}" --seed 7 >/dev/null
good=$build/golden_tile.txt
source testbenches/negative_lib.sh
expect_pass "baseline: uncorrupted $name golden" "$build/good.log" -- \
  testbenches/run_block.sh "$design" tile "$good" "$build" +seed=7 || exit 1
# `in.w <idx> <rows> <last> <op> <addr>`: the first load (op 1).
n=$(grep -n -m1 -E '^in\.w [0-9a-f]+ [0-9a-f]+ [01] 1 ' "$good" | cut -d: -f1)
[ -n "$n" ] || { echo "FAIL negative control: no load beat in $good"; exit 1; }
read -r tag idx rest <<<"$(sed -n "${n}p" "$good")"
bad_idx=$(flip_hex "$idx")
sed "${n}s/^in\.w $idx /in.w $bad_idx /" "$good" >"$build/bad_buffered_index.txt"
expect_fail --note "golden line $n, idx $idx -> $bad_idx" corrupt-buffered-weight-index "$build/bad_buffered_index.log" \
  " mismatches=[1-9][0-9]*" -- \
  testbenches/run_block.sh "$design" tile "$build/bad_buffered_index.txt" "$build" +seed=7 || exit 1
# 2. The RTL with loads that do not wait for earlier reads.
mut=$build/design_load_no_wait
rm -rf "$mut"; cp -r "$design" "$mut"
sed -i 's/(op_load ? rd_none : tok_ok)/(op_load ? 1'"'"'b1 : tok_ok)/' "$mut/kllm_tile.v"
grep -q "op_load ? 1'b1" "$mut/kllm_tile.v" || { echo "FAIL negative control 'load-does-not-wait': the mutation did not apply"; exit 1; }
mbuild=$build/mutant; mkdir -p "$mbuild"; cp "$build/blocks.txt" "$mbuild/"
expect_fail load-does-not-wait "$build/load_no_wait.log" " mismatches=[1-9][0-9]*" " timing_mismatches=[0-9]*" -- \
  testbenches/run_block.sh "$mut" tile "$good" "$mbuild" +seed=7 || exit 1
