#!/usr/bin/env bash
# One config's regression under both simulators, from the same golden files: Verilator (the
# project's benches, testbenches/run_block.sh) and Icarus Verilog (testbenches/icarus/). Both
# must pass and report the same counts (outputs checked, timing segments), i.e. agree with the
# reference and with each other. Both benches reset the block in the middle of vectors (up to 3
# times per untimed segment, each followed by a cfg reload and a rerun); the reset places differ
# (different random generators), the counts compared do not depend on them. Then an Icarus-only
# stress run, a corrupted-golden negative control and, for a PE line, a broken-reset one.
#   testbenches/icarus/sim_config.sh generators/<name>.toml
# Env: KLLM, SEED (default: the config's test.seed), ICARUS_VECTORS (default 2000; Icarus is an
# event-driven simulator, far slower than Verilator on these benches), ICARUS_TILE_VECTORS.
set -euo pipefail
config=$1
name=$(basename "$config" .toml)
KLLM=${KLLM:-target/release/kllm-gen}
design=verilog_out/$name
build=build/$name
work=$build/icarus
mkdir -p "$work"
"$KLLM" blocks --config "$config" >"$build/blocks.txt"
cp "$build/blocks.txt" "$work/blocks.txt"
vectors=${ICARUS_VECTORS:-2000}
# A tile is ~100x slower per vector under Icarus (two input streams, 2 PE lines, compensation):
# its random GEMVs are capped at ICARUS_TILE_VECTORS (default 30, about a minute of Icarus CPU);
# its timed workloads are always there.
if grep -q '^tile ' "$build/blocks.txt" && [ "$vectors" -gt "${ICARUS_TILE_VECTORS:-30}" ]; then
  vectors=${ICARUS_TILE_VECTORS:-30}
fi
args=(--vectors "$vectors")
[ -n "${SEED:-}" ] && args+=(--seed "$SEED")
"$KLLM" golden --config "$config" --out "$work" "${args[@]}" >/dev/null
counts() { grep -m1 -E '^(PASS|FAIL)' "$1" | grep -oE '(^| )(outputs|mismatches|unexpected|missing|timing_segments|timing_mismatches)=[0-9/]+' | tr -d ' ' | tr '\n' ' '; }
status=0
while read -r block _top; do
  golden=$work/golden_$block.txt
  vlog=$work/verilator_$block.log ilog=$work/icarus_$block.log
  testbenches/run_block.sh "$design" "$block" "$golden" "$build" +seed="${SEED:-1}" >"$vlog" 2>&1 || true
  testbenches/icarus/run_block.sh "$design" "$block" "$golden" "$work" +seed="${SEED:-1}" >"$ilog" 2>&1 || true
  v=$(counts "$vlog") i=$(counts "$ilog")
  if grep -q '^PASS' "$vlog" && grep -q '^PASS' "$ilog" && [ "$v" = "$i" ]; then
    echo "[$name] PASS $block: Verilator and Icarus agree: ${v% }"
  else
    status=1
    echo "[$name] FAIL $block: Verilator: $(grep -m1 -E '^(PASS|FAIL)' "$vlog" || echo 'no verdict')"
    echo "[$name]      $block: Icarus:    $(grep -m1 -E '^(PASS|FAIL)' "$ilog" || echo 'no verdict')"
    tail -5 "$ilog" | sed 's/^/    /'
  fi
  # Stress: 90 % output back-pressure and back-to-back inputs (Icarus only; the Verilator
  # bench's rates are fixed in kllm_tb.h).
  slog=$work/icarus_stress_$block.log
  if testbenches/icarus/run_block.sh "$design" "$block" "$golden" "$work" +seed="${SEED:-1}" +stall=90 +gap=0 >"$slog" 2>&1; then
    echo "[$name] PASS $block under 90 % back-pressure, no gaps: $(counts "$slog" | grep -oE 'outputs=[0-9/]+')"
  else
    status=1; echo "[$name] FAIL $block under 90 % back-pressure, no gaps"; tail -5 "$slog" | sed 's/^/    /'
  fi
done <"$build/blocks.txt"
# Negative control: the Icarus bench must fail on a golden file with one expected word wrong.
read -r block _top <"$build/blocks.txt"
n=$(grep -n -m1 '^out' "$work/golden_$block.txt" | cut -d: -f1)
awk -v n="$n" 'NR == n { w = $2; d = substr(w, length(w), 1); $2 = substr(w, 1, length(w) - 1) (d == "0" ? "1" : "0") } { print }' \
  "$work/golden_$block.txt" >"$work/bad_$block.txt"
if testbenches/icarus/run_block.sh "$design" "$block" "$work/bad_$block.txt" "$work" +seed="${SEED:-1}" >"$work/bad_$block.log" 2>&1; then
  status=1; echo "[$name] FAIL negative control: the Icarus bench passed a corrupted $block golden file"
elif grep -q '^FAIL.*mismatches=1 ' "$work/bad_$block.log"; then
  echo "[$name] PASS negative control: the Icarus bench fails a corrupted $block golden file (mismatches=1)"
else
  status=1; echo "[$name] FAIL negative control: $block failed without reporting the one mismatch"; tail -3 "$work/bad_$block.log"
fi
# Negative control of the reset-in-the-middle segments (configs with a count-weigh core, whose
# result-credit counter outstanding_q must clear on reset): a copy whose reset no longer clears
# it, given a power-up value of 0 instead (Icarus starts registers at X, which would fail the copy
# before any mid-segment reset), passes with +resets=0 and must fail with the resets on.
core=$(grep -lE "outstanding_q <= [0-9]+'d0;" "$design"/kllm_count_weigh_*.v 2>/dev/null | head -1 || true)
if [ -n "$core" ] && grep -q '^pe_line ' "$build/blocks.txt"; then
  bad=$work/broken_reset
  rm -rf "$bad"; cp -r "$design" "$bad"
  core=$bad/$(basename "$core")
  sed -i -E "/if \(rst\) begin/,/end/ s/^( +)outstanding_q <= [^;]+;$/\1\/\/ reset of outstanding_q removed (negative control)/" "$core"
  sed -i -E 's/^endmodule/  initial outstanding_q = 0;  \/\/ power-up value instead (negative control)\nendmodule/' "$core"
  golden=$work/golden_pe_line.txt
  if ! grep -q 'reset of outstanding_q removed' "$core"; then
    status=1; echo "[$name] FAIL negative control 'broken-reset': could not remove the reset of outstanding_q"
  elif ! testbenches/icarus/run_block.sh "$bad" pe_line "$golden" "$work" +seed="${SEED:-1}" +resets=0 >"$work/broken_reset_noresets.log" 2>&1; then
    status=1; echo "[$name] FAIL negative control 'broken-reset' baseline: the broken copy fails even without resets"
    tail -3 "$work/broken_reset_noresets.log" | sed 's/^/    /'
  elif testbenches/icarus/run_block.sh "$bad" pe_line "$golden" "$work" +seed="${SEED:-1}" >"$work/broken_reset.log" 2>&1; then
    status=1; echo "[$name] FAIL negative control 'broken-reset': the Icarus bench passed a block whose reset leaves a counter set"
  elif grep -q 'reset: idle is 0 in the first cycle after reset' "$work/broken_reset.log"; then
    echo "[$name] PASS negative control 'broken-reset': passes with +resets=0, the reset-in-the-middle segment fails it ($(grep -m1 -oE 'reset_errors=[0-9]+' "$work/broken_reset.log"))"
  else
    status=1; echo "[$name] FAIL negative control 'broken-reset': failed without the expected reset report"
    tail -5 "$work/broken_reset.log" | sed 's/^/    /'
  fi
fi
exit $status
