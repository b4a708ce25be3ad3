#!/usr/bin/env bash
# Negative control of the tile's weight-index buffer: the bench must FAIL when one weight index
# that a GEMV reads from the buffer is wrong. It corrupts one index (the lowest bit of line 0,
# lane 0) in the first load beat of a copy of tile_buf's golden vectors — group 0, beat 0 of the
# first layer, which that layer's GEMVs read — and requires a non-zero exit with mismatches. The
# uncorrupted file must pass first, or the control proves nothing.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
config=generators/tile_buf.toml
design=verilog_out/tile_buf
build=build/negative_tile_buf
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
"$KLLM" golden --config "$config" --out "$build" --block tile --vectors "${VECTORS:-60}" --seed 7 >/dev/null
good=$build/golden_tile.txt
if testbenches/run_block.sh "$design" tile "$good" "$build" +seed=7 >"$build/good.log" 2>&1; then
  echo "PASS negative control baseline: uncorrupted tile_buf golden passes"
else
  echo "FAIL negative control baseline: uncorrupted tile_buf golden fails"; tail -5 "$build/good.log"; exit 1
fi
# `in.w <idx> <rows> <last> <op> <addr>`: the first load (op 1).
n=$(grep -n -m1 -E '^in\.w [0-9a-f]+ [0-9a-f]+ [01] 1 ' "$good" | cut -d: -f1)
[ -n "$n" ] || { echo "FAIL negative control: no load beat in $good"; exit 1; }
read -r tag idx rest <<<"$(sed -n "${n}p" "$good")"
bad_idx=$(printf "%0${#idx}x" $(( 16#$idx ^ 1 )))
sed "${n}s/^in\.w $idx /in.w $bad_idx /" "$good" >"$build/bad_buffered_index.txt"
log=$build/bad_buffered_index.log
if testbenches/run_block.sh "$design" tile "$build/bad_buffered_index.txt" "$build" +seed=7 >"$log" 2>&1; then
  echo "FAIL negative control 'corrupt-buffered-weight-index': the bench passed (golden line $n)"; exit 1
elif grep -q "^FAIL" "$log" && grep -q " mismatches=[1-9]" "$log"; then
  echo "PASS negative control 'corrupt-buffered-weight-index': bench failed as it must (golden line $n, idx $idx -> $bad_idx, $(grep -o ' mismatches=[0-9]*' "$log" | head -1))"
else
  echo "FAIL negative control 'corrupt-buffered-weight-index': bench failed without mismatches"; tail -5 "$log"; exit 1
fi
