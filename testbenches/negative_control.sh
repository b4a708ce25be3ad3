#!/usr/bin/env bash
# Negative controls: the bench must FAIL when the golden file is wrong or the protocol is broken. Each case corrupts a
# copy of the tiny config's golden vectors in one way and requires a non-zero exit and a FAIL
# line; a bench that passed any of them could not catch a real bug.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
config=generators/tiny.toml
design=verilog_out/tiny
build=build/negative
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
"$KLLM" golden --config "$config" --out "$build" --block pe_line --vectors 300 --seed 7 >/dev/null
good=$build/golden_pe_line.txt
source testbenches/negative_lib.sh
# The verdict functions themselves first (each wrong verdict fed to them must be caught).
testbenches/negative_lib_test.sh || exit 1
status=0
block=pe_line
run() { # name, golden file, expected text in the FAIL line (for the bench of $block), [plusargs]
  local name=$1 file=$2 want=$3
  shift 3
  expect_fail "$name" "$build/$name.log" "$want" -- \
    testbenches/run_block.sh "$design" "$block" "$file" "$build" +seed=7 "$@" || status=1
}
# 0. The uncorrupted file passes (otherwise the controls below prove nothing).
expect_pass "baseline: uncorrupted golden" "$build/good.log" -- testbenches/run_block.sh "$design" pe_line "$good" "$build" +seed=7 || exit 1
# 1. One expected result word wrong.
n=$(grep -n -m1 '^out ' "$good" | cut -d: -f1); w=$(sed -n "${n}p" "$good" | cut -d' ' -f2)
sed "${n}s/.*/out $(flip_hex "$w")/" "$good" >"$build/bad_out.txt"
run corrupt-result "$build/bad_out.txt" " mismatches=1 "
# 2. One LUT entry wrong (entry 0 and all entries in the first segment see traffic).
for e in 0 5; do
  n=$(grep -n '^cfg ' "$good" | sed -n "$((e + 1))p" | cut -d: -f1); line=$(sed -n "${n}p" "$good")
  addr=$(echo "$line" | cut -d' ' -f2); w=$(echo "$line" | cut -d' ' -f3)
  sed "${n}s/.*/cfg $addr $(flip_hex "$w")/" "$good" >"$build/bad_lut_$e.txt"
  run "corrupt-lut-entry-$e" "$build/bad_lut_$e.txt" " mismatches=[1-9]"
done
# 3. An expected output removed: the hardware's extra result is unexpected.
n=$(grep -n -m1 '^out ' "$good" | cut -d: -f1); total=$(grep -c '^out ' "$good")
sed -e "${n}d" -e "s/^end .*/end $((total - 1))/" "$good" >"$build/missing_out.txt"
run dropped-expectation "$build/missing_out.txt" " mismatches=[1-9]\| unexpected=[1-9]"
# 4. A truncated file is refused outright.
head -n -20 "$good" >"$build/truncated.txt"
run truncated "$build/truncated.txt" "truncated"
# 5. A golden file with no expected output could never fail: refused.
grep -v '^out ' "$good" | sed "s/^end .*/end 0/" >"$build/no_outputs.txt"
run no-expected-output "$build/no_outputs.txt" "no expected output"
# 6. A timed workload the manifest predicts is missing: refused, so a cycle model can't go unchecked.
n=$(grep -n -m1 '^timing ' "$good" | cut -d: -f1)
sed "${n}d" "$good" >"$build/no_timing.txt"
run missing-timed-segment "$build/no_timing.txt" "predicts a timed workload"
# 7. A table write while the line is busy (a copy of an entry it already holds, placed after the
#    third input beat): the bench sees `idle` low and fails, though no result changes.
n=$(grep -n '^in ' "$good" | sed -n 3p | cut -d: -f1); c=$(grep -m1 '^cfg ' "$good")
sed "${n}a $c" "$good" >"$build/cfg_busy.txt"
run cfg-write-while-busy "$build/cfg_busy.txt" "cfg_writes_while_busy=1"
# 8. Fields in another order than the module's ports: refused before any beat is driven.
sed 's/^fields in: idx_a idx_w/fields in: idx_w idx_a/' "$good" >"$build/fields_swapped.txt"
run fields-swapped "$build/fields_swapped.txt" "names fields"
# 9. The dequantize-multiply baseline's bench: a wrong result word and a wrong centroid (weight
#    codebook entry 0, first segment) must fail too.
block=dq_pe_line
"$KLLM" golden --config "$config" --out "$build" --block dq_pe_line --vectors 300 --seed 7 >/dev/null
good=$build/golden_dq_pe_line.txt
expect_pass "dq_pe_line: uncorrupted golden" "$build/dq_good.log" -- testbenches/run_block.sh "$design" dq_pe_line "$good" "$build" +seed=7 || exit 1
n=$(grep -n -m1 '^out ' "$good" | cut -d: -f1); w=$(sed -n "${n}p" "$good" | cut -d' ' -f2)
sed "${n}s/.*/out $(flip_hex "$w")/" "$good" >"$build/dq_bad_out.txt"
run dq-corrupt-result "$build/dq_bad_out.txt" " mismatches=1 "
abits=$(grep -m1 '^#define KLLM_DQ_PE_LINE_CFG_ADDR_BITS' "$design/kllm_params.h" | cut -d' ' -f3)
half=$(( 1 << (abits - 1) )) # cfg_addr of weight centroid 0
n=$(grep -n -m1 "^cfg $(printf %x "$half") " "$good" | cut -d: -f1); w=$(sed -n "${n}p" "$good" | cut -d' ' -f3)
sed "${n}s/.*/cfg $(printf %x "$half") $(flip_hex "$w")/" "$good" >"$build/dq_bad_centroid.txt"
run dq-corrupt-centroid "$build/dq_bad_centroid.txt" " mismatches=[1-9]"
# 10. Reset handling broken: a copy of the design whose count-weigh core no longer clears its
#     result-credit counter (outstanding_q) on reset. Registers start at zero (RAND_RESET=0), so
#     the bench's first reset is not needed and the copy passes without mid-segment resets
#     (+resets=0); a reset in the middle of a dot product leaves a credit counted, `idle` stays
#     low after the reset and the bench must fail.
block=pe_line
good=$build/golden_pe_line.txt
bad=$build/broken_reset
rm -rf "$bad"; cp -r "$design" "$bad"
core=$(grep -lE "outstanding_q <= [0-9]+'d0;" "$bad"/kllm_count_weigh_*.v | head -1)
sed -i -E "/if \(rst\) begin/,/end/ s/^( +)outstanding_q <= [^;]+;$/\1\/\/ reset of outstanding_q removed (negative control)/" "$core"
if ! grep -q 'reset of outstanding_q removed' "$core"; then
  echo "FAIL negative control 'broken-reset': could not remove the reset of outstanding_q"; status=1
else
  mkdir -p "$build/broken_reset_run"; cp "$build/blocks.txt" "$build/broken_reset_run/"
  expect_pass "'broken-reset' baseline: without mid-segment resets the broken copy" "$build/broken_reset_noresets.log" -- \
    env RAND_RESET=0 testbenches/run_block.sh "$bad" pe_line "$good" "$build/broken_reset_run" +seed=7 +resets=0 || status=1
  expect_fail broken-reset "$build/broken_reset.log" 'reset: idle low in the first cycle after reset' -- \
    env RAND_RESET=0 testbenches/run_block.sh "$bad" pe_line "$good" "$build/broken_reset_run" +seed=7 || status=1
fi
# 11. Compensation is really in the tile: the default tile's layer MatMuls (2 tokens, every
#     projection) with the runtime k written as 0 (the expected results keep compensation) must
#     fail. The tile's bench build is shared with the default regression (build/default).
block=tile design=verilog_out/default build=build/default
mkdir -p "$build"
"$KLLM" blocks --config generators/default.toml >"$build/blocks.txt"
"$KLLM" golden --from-layer --seed 1 --tokens 2 --config generators/default.toml --out "$build/negative" >/dev/null
good=$build/negative/golden_tile_layer.txt
expect_pass "tile: uncorrupted layer golden" "$build/negative/good.log" -- testbenches/run_block.sh "$design" tile "$good" "$build" +seed=7 +timed=0 || exit 1
off=$(grep -m1 '^#define KLLM_TILE_CFG_OFFSET_BITS' "$design/kllm_params.h" | cut -d' ' -f3)
kaddr=$(printf %x $(( 4 << off ))) # region 4: the runtime k
[ "$(grep -c "^cfg $kaddr " "$good")" -ge 1 ] || { echo "FAIL negative control tile: no runtime-k write at cfg $kaddr"; exit 1; }
sed "s/^cfg $kaddr .*/cfg $kaddr 0/" "$good" >"$build/negative/k0.txt"
run tile-compensation-off "$build/negative/k0.txt" " mismatches=[1-9]" +timed=0
# 12. Float mode (fp16_tiny): one bit of one fp16 table entry (the last fraction bit of LUT[5],
#     the smallest change an entry can take) and one bit of one fp16 weight centroid must make the
#     index line's and the baseline's benches fail.
config=generators/fp16_tiny.toml design=verilog_out/fp16_tiny build=build/negative_fp16
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
for block in pe_line dq_pe_line; do
  "$KLLM" golden --config "$config" --out "$build" --block $block --vectors 300 --seed 7 >/dev/null
  good=$build/golden_$block.txt
  expect_pass "fp16 $block: uncorrupted golden" "$build/${block}_good.log" -- testbenches/run_block.sh "$design" $block "$good" "$build" +seed=7 || exit 1
  if [ $block = pe_line ]; then
    n=$(grep -n '^cfg ' "$good" | sed -n 6p | cut -d: -f1)
  else
    abits=$(grep -m1 '^#define KLLM_DQ_PE_LINE_CFG_ADDR_BITS' "$design/kllm_params.h" | cut -d' ' -f3)
    n=$(grep -n -m1 "^cfg $(printf %x $(( 1 << (abits - 1) ))) " "$good" | cut -d: -f1)
  fi
  line=$(sed -n "${n}p" "$good"); addr=$(echo "$line" | cut -d' ' -f2); w=$(echo "$line" | cut -d' ' -f3)
  sed "${n}s/.*/cfg $addr $(flip_hex "$w")/" "$good" >"$build/bad_entry_$block.txt"
  run "fp16-$block-flipped-table-bit" "$build/bad_entry_$block.txt" " mismatches=[1-9]"
done
# 13. Float-mode encoder (fp16_tiny): the last bit of one fp16 threshold t_0 (one F step, the
#     smallest change) must make the bench fail: values on both sides of every threshold are driven.
block=act_encoder
"$KLLM" golden --config "$config" --out "$build" --block $block --vectors 300 --seed 7 >/dev/null
good=$build/golden_$block.txt
expect_pass "fp16 $block: uncorrupted golden" "$build/${block}_good.log" -- testbenches/run_block.sh "$design" $block "$good" "$build" +seed=7 || exit 1
n=$(grep -n -m1 '^cfg 0 ' "$good" | cut -d: -f1); w=$(sed -n "${n}p" "$good" | cut -d' ' -f3)
sed "${n}s/.*/cfg 0 $(flip_hex "$w")/" "$good" >"$build/bad_threshold.txt"
run fp16-act_encoder-flipped-threshold-bit "$build/bad_threshold.txt" " mismatches=[1-9]"
# 14. Float-mode Orizuru and its sorter (orizuru_fp16_n8_k8, k = n: every value is an output):
#     the first vectors hold -0 and +0 only. The sign of one expected -0 turned into +0 must fail
#     (the outputs are the input patterns, not values), and so must one input value moved by one
#     F step (-0 -> -2^-24, which reorders the vector).
config=generators/orizuru_fp16_n8_k8.toml design=verilog_out/orizuru_fp16_n8_k8 build=build/negative_orizuru_fp16
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
for block in orizuru topk_sorter; do
  "$KLLM" golden --config "$config" --out "$build" --block $block --vectors 100 --seed 7 >/dev/null
  good=$build/golden_$block.txt
  expect_pass "fp16 $block: uncorrupted golden" "$build/${block}_good.log" -- testbenches/run_block.sh "$design" $block "$good" "$build" +seed=7 || exit 1
  n=$(grep -n -m1 '^out.max 8000 ' "$good" | cut -d: -f1)
  sed "${n}s/^out.max 8000 /out.max 0000 /" "$good" >"$build/bad_zero_sign_$block.txt"
  run "fp16-$block-expected-minus-zero-as-plus-zero" "$build/bad_zero_sign_$block.txt" " mismatches=1 "
  n=$(grep -n -m1 '^in 80008000$' "$good" | cut -d: -f1)
  sed "${n}s/.*/in 80008001/" "$good" >"$build/bad_input_$block.txt"
  run "fp16-$block-input-one-step-off" "$build/bad_input_$block.txt" " mismatches=[1-9]"
done
# 15. Float-mode centroid-table units (nl_fp16_na4): one bit of one table entry (the lowest bit of
#     the sixth table write of the first segment: the last fraction bit of an fp16 value for
#     nl_map2 and nl_reduce, the lowest index bit for nl_map's requantized SiLU) must fail. The
#     benches' builds are shared with the config's regression (build/nl_fp16_na4).
config=generators/nl_fp16_na4.toml design=verilog_out/nl_fp16_na4 build=build/nl_fp16_na4
mkdir -p "$build/negative"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
for block in nl_map nl_map2 nl_reduce; do
  "$KLLM" golden --config "$config" --out "$build/negative" --block $block --vectors 300 --seed 7 >/dev/null
  good=$build/negative/golden_$block.txt
  expect_pass "fp16 $block: uncorrupted golden" "$build/negative/${block}_good.log" -- testbenches/run_block.sh "$design" $block "$good" "$build" +seed=7 || exit 1
  n=$(grep -n '^cfg ' "$good" | sed -n 6p | cut -d: -f1)
  line=$(sed -n "${n}p" "$good"); addr=$(echo "$line" | cut -d' ' -f2); w=$(echo "$line" | cut -d' ' -f3)
  sed "${n}s/.*/cfg $addr $(flip_hex "$w")/" "$good" >"$build/negative/bad_entry_$block.txt"
  run "fp16-$block-flipped-table-bit" "$build/negative/bad_entry_$block.txt" " mismatches=[1-9]"
done
# 16. Float-mode tile (tile_fp16_small): the last fraction bit of one fp16 table entry (LUT[5],
#     the smallest change an entry can take) in the first random segment's tables (typical fp16
#     codebooks: the sixth table load, after the five edge GEMVs') must make the bench fail.
#     The bench's build is shared with the config's regression (build/tile_fp16_small).
config=generators/tile_fp16_small.toml design=verilog_out/tile_fp16_small build=build/tile_fp16_small block=tile
mkdir -p "$build/negative"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
"$KLLM" golden --config "$config" --out "$build/negative" --block tile --vectors 50 --seed 7 >/dev/null
good=$build/negative/golden_tile.txt
expect_pass "fp16 tile: uncorrupted golden" "$build/negative/good.log" -- testbenches/run_block.sh "$design" tile "$good" "$build" +seed=7 +timed=0 || exit 1
n=$(grep -n '^cfg 5 ' "$good" | sed -n 6p | cut -d: -f1)
[ -n "$n" ] || { echo "FAIL negative control fp16 tile: no sixth write of LUT[5] (cfg 5)"; exit 1; }
w=$(sed -n "${n}p" "$good" | cut -d' ' -f3)
sed "${n}s/.*/cfg 5 $(flip_hex "$w")/" "$good" >"$build/negative/bad_lut_entry.txt"
run fp16-tile-flipped-table-bit "$build/negative/bad_lut_entry.txt" " mismatches=[1-9]" +timed=0
exit $status
