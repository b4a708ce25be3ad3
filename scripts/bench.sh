#!/usr/bin/env bash
# `make bench`: measured figures, never asserted by timed tests. Writes reports/bench.md.
#  - generation time of the default config (mean of 20 runs of the release binary)
#  - Verilator simulation rate of the default PE line (dot products/s, cycles/s) and of the
#    default tile (result groups/s, cycles/s), dense stream
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

# Simulation rate: gaps, back-pressure, traffic phases, resets and table re-writes off, so the
# rate is the design's, not the bench's. rate <config> <block> <vectors> <what one output is>
rate() {
  local cfg=$1 block=$2 n=$3 what=$4 name dir line outputs cycles ms t0 t1
  name=$(basename "$cfg" .toml) dir=build/bench/$(basename "$cfg" .toml)
  mkdir -p "$dir"
  "$KLLM" blocks --config "$cfg" >"$dir/blocks.txt"
  "$KLLM" golden --config "$cfg" --out "$dir" --block "$block" --vectors "$n" --seed 3 >/dev/null
  local args=(+gap=0 +stall=0 +phases=0 +resets=0 +rewrites=0)
  # The first run builds the model (if needed); the second is timed.
  testbenches/run_block.sh "verilog_out/$name" "$block" "$dir/golden_$block.txt" "$dir" "${args[@]}" >/dev/null 2>&1 || true
  t0=$(now)
  line=$(testbenches/run_block.sh "verilog_out/$name" "$block" "$dir/golden_$block.txt" "$dir" "${args[@]}" | grep -E '^(PASS|FAIL)')
  t1=$(now)
  outputs=$(echo "$line" | sed -E 's/.*outputs=([0-9]+)\/.*/\1/')
  cycles=$(echo "$line" | sed -E 's/.* cycles=([0-9]+) .*/\1/')
  ms=$(( (t1 - t0) / 1000000 ))
  echo "- Verilator, $name $block, $outputs $what (incl. golden parsing): ${ms} ms wall,"
  echo "  $(( outputs * 1000 / (ms > 0 ? ms : 1) )) $what/s, $(( cycles * 1000 / (ms > 0 ? ms : 1) )) cycles/s (${line%% *})"
  rate_ms=$ms rate_golden=$dir/golden_$block.txt
}
rate generators/pe_default.toml pe_line 5000 "dot products (K log-uniform up to 4096)"
# The tile's golden file lists each GEMV's rows as outputs (P results per group).
rate generators/default.toml tile 500 "result groups of random GEMVs"
gemvs=$(awk '$1 == "in.x" && $NF == 1' "$rate_golden" | wc -l)
echo "  = $(( gemvs * 1000 / (rate_ms > 0 ? rate_ms : 1) )) GEMVs/s ($gemvs GEMVs: the random ones and the timed workloads)"

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
