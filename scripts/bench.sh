#!/usr/bin/env bash
# `make bench`: measured figures, never asserted by timed tests. Writes reports/bench.md.
#  - generation time of the default config (mean of 20 runs of the release binary)
#  - Verilator simulation rate of the default PE line (dot products/s, cycles/s), dense stream
#  - Yosys generic cells / flip-flops of the default PE line and encoder
#  - other families' benchmarks, where their scripts exist
set -euo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
out=reports/bench.md
mkdir -p reports build/bench
now() { date +%s%N; }
{
echo "# make bench ($(date -u +%Y-%m-%d), $(nproc) cores, $(verilator --version | cut -d' ' -f1-2), $(yosys -V | cut -d' ' -f1-2))"
echo
runs=20
t0=$(now)
for _ in $(seq $runs); do "$KLLM" generate --config generators/pe_default.toml --out build/bench/gen >/dev/null; done
t1=$(now)
echo "- generation of generators/pe_default.toml: $(( (t1 - t0) / runs / 1000 )) µs per run (mean of $runs)"

# Simulation rate: gaps and back-pressure off, so the rate is the design's, not the bench's.
"$KLLM" blocks --config generators/pe_default.toml >build/bench/blocks.txt
"$KLLM" golden --config generators/pe_default.toml --out build/bench --block pe_line --vectors 5000 --seed 3 >/dev/null
testbenches/run_block.sh verilog_out/pe_default pe_line build/bench/golden_pe_line.txt build/bench +gap=0 +stall=0 >/dev/null 2>&1 || true
t0=$(now)
line=$(testbenches/run_block.sh verilog_out/pe_default pe_line build/bench/golden_pe_line.txt build/bench +gap=0 +stall=0 | grep -E '^(PASS|FAIL)')
t1=$(now)
outputs=$(echo "$line" | sed -E 's/.*outputs=([0-9]+)\/.*/\1/')
cycles=$(echo "$line" | sed -E 's/.* cycles=([0-9]+) .*/\1/')
ms=$(( (t1 - t0) / 1000000 ))
echo "- Verilator, default PE line, $outputs dot products (K log-uniform up to 4096, incl. golden parsing): ${ms} ms wall,"
echo "  $(( outputs * 1000 / (ms > 0 ? ms : 1) )) dot products/s, $(( cycles * 1000 / (ms > 0 ? ms : 1) )) cycles/s (${line%% *})"

SYNTH_TABLE=build/bench/synth.md scripts/synth.sh verilog_out/pe_default >build/bench/synth.txt 2>&1 || true
echo "- Yosys \`synth -flatten\` of the default config:"
sed 's/^PASS synth /  - /' build/bench/synth.txt
echo "  (manifest register bits of kllm_pe_line: $(grep -o '"register_bits": [0-9]*' verilog_out/pe_default/manifest.json | head -1 | grep -o '[0-9]*$'))"
for extra in scripts/bench_*.sh; do
  [ -x "$extra" ] || continue
  echo; echo "## $(basename "$extra" .sh)"; echo
  "$extra" || echo "(failed: $extra)"
done
if "$KLLM" help 2>/dev/null | grep -q bench-kmeans; then
  echo; echo "## K-Means speed"; echo
  "$KLLM" bench-kmeans
fi
} | tee "$out.tmp"
mv "$out.tmp" "$out"
