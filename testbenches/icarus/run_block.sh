#!/usr/bin/env bash
# Build and run one block's Icarus Verilog bench against one golden file (the second simulator).
#   testbenches/icarus/run_block.sh <design dir> <block> <golden file> <build dir> [plusargs...]
# The bench is generated for the block's top and this golden file (gen_bench.py), compiled with
# `iverilog -g2005` and run with `vvp`; its verdict is its PASS/FAIL line, as with Verilator.
set -euo pipefail
design=$1 block=$2 golden=$3 build=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
top=$(awk -v b="$block" '$1 == b { print $2 }' "$build/blocks.txt")
[ -n "$top" ] || { echo "FAIL: $block is not a block of $design"; exit 1; }
out=$build/icarus_$block
mkdir -p "$out"
python3 "$here/gen_bench.py" "$design" "$top" "$golden" "$out/tb.v"
iverilog -g2005 -o "$out/sim.vvp" -s tb "$out/tb.v" $(sed "s|^|$design/|" "$design/files.f") >"$out/build.log" 2>&1 \
  || { tail -20 "$out/build.log"; echo "FAIL: $block: iverilog build failed"; exit 1; }
vvp -n "$out/sim.vvp" +golden="$golden" +seed="${SEED:-1}" "$@" | tee "$out/run.log" | grep -v '^VCD'
grep -q '^PASS' "$out/run.log"
