#!/usr/bin/env bash
# Soak: every config's Verilator regression over many seeds (nightly use, not part of make test).
#   scripts/soak.sh            SEEDS=n (default 5) seeds from SEED0 (default 2; make test uses 1)
# Env: CONFIGS (default every generators/*.toml), SOAK_VECTORS (default: each config's
# test.vectors), KLLM. A seed changes every random codebook, vector, gap and stall. Writes one
# line per (seed, config, block) to build/soak/results.txt and a summary; exits 1 on any failure.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
seeds=${SEEDS:-5} first=${SEED0:-2}
configs=${CONFIGS:-$(ls generators/*.toml | sort)}
out=build/soak
mkdir -p "$out"
: >"$out/results.txt"
start=$(date +%s)
fail=0
for ((s = first; s < first + seeds; s++)); do
  for c in $configs; do
    log=$out/$(basename "$c" .toml)_seed$s.log
    SEED=$s VECTORS=${SOAK_VECTORS:-} testbenches/sim_config.sh "$c" >"$log" 2>&1 || fail=1
    sed "s/^/seed=$s /" "$log" | grep -E 'PASS|FAIL' >>"$out/results.txt"
  done
  echo "seed $s done: $(grep -c "^seed=$s .*PASS" "$out/results.txt") PASS, $(grep -c "^seed=$s .*FAIL" "$out/results.txt") FAIL"
done
pass=$(grep -c 'PASS' "$out/results.txt") bad=$(grep -c 'FAIL' "$out/results.txt")
sum() { grep -oE " $1=[0-9]+" "$out/results.txt" | awk -F= '{ s += $2 } END { print s + 0 }'; }
outputs=$(sum outputs) cycles=$(sum cycles)
summary="soak: seeds $first..$((first + seeds - 1)), $(echo $configs | wc -w) configs: $pass bench runs passed, $bad failed; $outputs outputs checked over $cycles simulated cycles; $(( $(date +%s) - start )) s"
echo "$summary" | tee "$out/summary.txt"
[ "$fail" = 0 ] && [ "$bad" = 0 ]
