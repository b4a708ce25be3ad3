#!/usr/bin/env bash
# Full acceptance count for the N=4096 Orizuru config: 20 000 random vectors, run as 10 chunks of
# 2 000 (seeds 1..10) so no golden file exceeds ~40 MB. The default `make sim` runs 300 vectors.
#   testbenches/sim_orizuru_long.sh [config]   (default generators/orizuru_n4096_k20.toml)
set -euo pipefail
config=${1:-generators/orizuru_n4096_k20.toml}
KLLM=${KLLM:-target/release/kllm-gen}
name=$(basename "$config" .toml)
design=verilog_out/$name
build=build/${name}_long
mkdir -p "$build"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
status=0 total=0 start=$(date +%s)
for seed in 1 2 3 4 5 6 7 8 9 10; do
  "$KLLM" golden --config "$config" --out "$build" --seed "$seed" --vectors 2000 >/dev/null
  while read -r block _top; do
    log=$build/sim_${block}_$seed.log
    testbenches/run_block.sh "$design" "$block" "$build/golden_$block.txt" "$build" +seed="$seed" >"$log" 2>&1 || status=1
    if grep -q '^PASS' "$log"; then echo "[$name seed $seed] $(grep '^PASS' "$log")"; total=$((total + 2000))
    else status=1; echo "[$name seed $seed] FAIL $block (log: $log)"; tail -5 "$log"; fi
  done <"$build/blocks.txt"
  rm -f "$build"/golden_*.txt
done
echo "[$name] long regression: $total random vectors per block passed, status $status, $(( $(date +%s) - start ))s"
exit $status
