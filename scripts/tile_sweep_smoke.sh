#!/usr/bin/env bash
# The tile in the sweep flow, end to end (`make tile-sweep-smoke`):
#  1. a fresh run of testbenches/tile_sweep_smoke.toml (one tiny tile and its dequantize-multiply
#     twin; lint and simulation, no synthesis): exit 0, both rows ok, measured cycles equal to
#     the manifest and to `explain --gemv`, throughput filled, both rows compensation-bound (16
#     steps per row against 8 beats) in the CSV and in the ratio table of summary.md;
#  2. negative control: the same tile with a bench that counts one cycle too many must give a
#     FAILED tile row whose cycles do not match, and a non-zero exit.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
sweep=testbenches/tile_sweep_smoke.toml
root=build/tile_sweep_smoke
rm -rf "$root"
mkdir -p "$root"
fail() { echo "FAIL: tile-sweep-smoke: $*"; exit 1; }

"$KLLM" sweep "$sweep" --jobs 1 --out "$root/report" --work "$root/work" >"$root/run.log" 2>&1 || { tail -20 "$root/run.log"; fail "fresh run exited non-zero"; }
csv=$root/report/results.csv
col() { head -1 "$csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
# Data rows with quoted fields emptied, so `cut -d,` counts columns right (the columns read here
# are never quoted); the bottleneck text has a comma-free form and is read with the CSV's own
# last column.
data() { tail -n +2 "$csv" | sed -E 's/"[^"]*"//g'; }
rows=$(data | wc -l)
[ "$rows" = 2 ] || fail "expected 2 rows (tile, dq_tile), got $rows"
[ "$(data | cut -d, -f"$(col block)" | tr '\n' ' ')" = "tile dq_tile " ] || fail "rows are not tile, dq_tile"
for c in status cycles_match; do
  bad=$(data | cut -d, -f"$(col $c)" | grep -cvE '^(ok|true)$')
  [ "$bad" = 0 ] || fail "$bad rows with $c not ok/true"
done
for c in cycles_measured cycles_predicted throughput bottleneck; do
  empty=$(data | cut -d, -f"$(col $c)" | grep -c '^$')
  [ "$empty" = 0 ] || fail "$empty rows without $c"
done
# The tile's measured cycles are the single-GEMV figure of `explain --gemv 32,64` (the timed
# workload: 64 rows of K = k_max = 32).
cfg=$root/tile.toml
printf '[quant]\nnw = 2\nna = 2\n[tile]\nlines = 1\nlanes = 4\nreduce_width = 4\nk_max = 32\nk = 8\ncomp_macs = 1\nradix = 0\n' >"$cfg"
want=$("$KLLM" explain --config "$cfg" --gemv 32,64 | sed -nE 's/^ *single GEMV +([0-9]+) cycles.*/\1/p')
got=$(data | head -1 | cut -d, -f"$(col cycles_measured)")
[ -n "$want" ] && [ "$got" = "$want" ] || fail "tile measured $got cycles, explain --gemv 32,64 says ${want:-nothing}"
necks=$(data | cut -d, -f"$(col bottleneck)" | grep -c '^compensation (16 cycles per group of 1 rows')
[ "$necks" = 2 ] || fail "expected both rows compensation-bound at 16 cycles per group, got: $(data | cut -d, -f"$(col bottleneck)" | tr '\n' ';')"
grep -q "| 1 | $want | $want | 1.94 | 1.94 | compensation, 16/group | compensation, 16/group | ok |" "$root/report/summary.md" \
  || { cat "$root/report/summary.md"; fail "summary.md has no tile/dq_tile line with both cycle counts and bottlenecks"; }

# Negative control: a bench whose cycle count is one too high. Only the tile's sim step, so it
# takes one Verilator build.
mkdir -p "$root/tb_off"
cp testbenches/*.h testbenches/*.cpp "$root/tb_off/"
sed -i 's/(long)(last_out - first_in + 1)/(long)(last_out - first_in + 2)/' "$root/tb_off/kllm_tb.h"
grep -q 'last_out - first_in + 2' "$root/tb_off/kllm_tb.h" || fail "could not inject the off-by-one into kllm_tb.h (its measurement line changed?)"
sed 's/^\[run\]$/[run]\nlint = false\nblocks = ["tile"]/' "$sweep" >"$root/off.toml"
if "$KLLM" sweep "$root/off.toml" --jobs 1 --out "$root/report_off" --work "$root/work" --testbenches "$root/tb_off" >"$root/off.log" 2>&1; then
  fail "a sweep whose tile bench counts one cycle too many exited 0"
fi
grep -q "1 of 1 rows FAILED" "$root/off.log" || { cat "$root/off.log"; fail "the miscounting bench was not reported as one FAILED row"; }
csv=$root/report_off/results.csv
off=$(data | head -1)
[ "$(echo "$off" | cut -d, -f"$(col status)")" = FAILED ] || fail "the tile row is not FAILED: $off"
[ "$(echo "$off" | cut -d, -f"$(col cycles_match)")" = false ] || fail "the tile row's cycles match: $off"
[ "$(echo "$off" | cut -d, -f"$(col cycles_measured)")" = "$((want + 1))" ] || fail "the tile row did not measure $((want + 1)) cycles: $off"
echo "PASS: tile-sweep-smoke: tile and dq_tile rows ok, $want cycles measured = manifest = explain, both compensation-bound; a bench one cycle off gives a FAILED row"
