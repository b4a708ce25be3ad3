#!/usr/bin/env bash
# End-to-end check of the sweep's ECP5 step (`make ecp5-smoke`; needs `make fpga-tools`):
#  1. testbenches/ecp5_smoke.toml (a 4-lane index PE line and its baseline, ECP5 step only):
#     exit 0, both rows ok, LUT4/FF/DSP/Fmax filled;
#  2. per row, the netlist placed by nextpnr holds exactly the counted block plus the harness:
#     its flip-flops are the block's plus the harness's two shift registers (widths read from the
#     job's fmax_wrap.v), and its multipliers are the block's.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
root=build/ecp5_smoke
rm -rf "$root"
mkdir -p "$root"
fail() { echo "FAIL: ecp5-smoke: $*"; exit 1; }

"$KLLM" sweep testbenches/ecp5_smoke.toml --out "$root/report" --work "$root/work" >"$root/sweep.log" 2>&1 \
  || { tail -20 "$root/sweep.log"; fail "sweep exited non-zero (log: $root/sweep.log)"; }
csv=$root/report/results.csv
col() { head -1 "$csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
data() { tail -n +2 "$csv" | sed -E 's/"[^"]*"//g'; }
[ "$(data | wc -l)" = 2 ] || fail "expected 2 rows (pe_line, dq_pe_line)"
bad=$(data | cut -d, -f"$(col status)" | grep -cvx ok)
[ "$bad" = 0 ] || fail "$bad rows not ok: $(grep FAILED "$csv")"
for c in ecp5_lut4 ecp5_ff ecp5_dsp ecp5_fmax_mhz; do
  empty=$(data | cut -d, -f"$(col $c)" | grep -c '^$')
  [ "$empty" = 0 ] || fail "$empty rows without $c"
done

# count FILE MODULE CELLTYPE: cells of one type in a Yosys `stat -json` file (0 when absent).
count() {
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["modules"]["\\"+sys.argv[2]]; print(m["num_cells_by_type"].get(sys.argv[3],0))' "$@"
}
checked=0
for dir in "$root"/work/designs/*/*/; do
  [ -f "$dir/ecp5_wrap_stat.json" ] || continue
  top=$(grep -o 'Fmax harness for [a-z0-9_]*' "$dir/fmax_wrap.v" | awk '{print $4}')
  chain=$(grep -oE 'reg +\[[0-9]+:0\] (in|out)_chain_q' "$dir/fmax_wrap.v" | sed -E 's/reg +\[([0-9]+):0\].*/\1/' | awk '{s += $1 + 1} END {print s}')
  ff_block=$(count "$dir/ecp5_stat.json" "$top" TRELLIS_FF)
  ff_placed=$(count "$dir/ecp5_wrap_stat.json" kllm_fmax_wrap TRELLIS_FF)
  [ "$ff_placed" = $((ff_block + chain)) ] || fail "$top: placed netlist has $ff_placed FF, expected block $ff_block + harness $chain"
  dsp_block=$(count "$dir/ecp5_stat.json" "$top" MULT18X18D)
  dsp_placed=$(count "$dir/ecp5_wrap_stat.json" kllm_fmax_wrap MULT18X18D)
  [ "$dsp_placed" = "$dsp_block" ] || fail "$top: placed netlist has $dsp_placed MULT18X18D, the block $dsp_block"
  echo "ecp5-smoke: $top: $ff_block FF + $chain harness = $ff_placed placed, $dsp_block DSP"
  checked=$((checked + 1))
done
[ "$checked" = 2 ] || fail "expected 2 job folders with ecp5_wrap_stat.json, found $checked"
echo "PASS: ecp5-smoke: 2 rows with ECP5 LUT4/FF/DSP/Fmax, each placed netlist = the counted block + the harness"
