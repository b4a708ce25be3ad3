#!/usr/bin/env bash
# Build (if needed) and run one block's Verilator bench against one golden file.
#   testbenches/run_block.sh <design dir> <block> <golden file> <build dir> [plusargs...]
# WAVES=1 builds with FST tracing and writes <build dir>/<block>.fst.
# CXX_OPT=-O0 compiles the model without optimisation (quicker to build, slower to run: the
# mutant runner builds hundreds of one-off models). Otherwise only Verilator's __Slow.cpp files,
# the code that runs once (constructors, initial blocks, the first settle), are compiled at
# SLOW_CXX_OPT (default -O0; Verilator gives them no level of its own, so they got -O1): the
# default tile's model built in 111 instead of 131 CPU-s and simulated its quick golden file in
# the same time (8.4 against 8.5 CPU-s). OBJCACHE=ccache is passed to Verilator's make.
# VERILATOR_FLAGS adds options to the model's build (testbenches/sim_config.sh: --hierarchical
# with testbenches/hier/<config>.vlt, so e.g. the paper tile's 4 096 popcounts compile once).
set -euo pipefail
design=$(cd "$1" && pwd) block=$2 golden=$3 build=$4
shift 4
top=$(awk -v b="$block" '$1 == b { print $2 }' "$build/blocks.txt")
[ -n "$top" ] || { echo "FAIL: $block is not a block of $design"; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
suffix=; [ "${WAVES:-0}" = 1 ] && suffix=_waves
obj="$build/obj_$block$suffix"
trace=()
if [ "${WAVES:-0}" = 1 ]; then trace=(--trace-fst); set -- "$@" "+waves=$build/$block.fst"; fi
files=$(sed "s|^|$design/|" "$design/files.f")
stamp="$obj/.inputs"
opt=${CXX_OPT:-} optflags=()
read -r -a vflags <<<"${VERILATOR_FLAGS:-}"
slow=${SLOW_CXX_OPT--O0}
if [ -n "$opt" ]; then
  optflags=(-MAKEFLAGS "OPT_FAST=$opt" -MAKEFLAGS "OPT_SLOW=$opt" -MAKEFLAGS "OPT_GLOBAL=$opt")
elif [ -n "$slow" ]; then
  optflags=(-MAKEFLAGS "OPT_SLOW=$slow")
fi
want=$( (cat "$here/kllm_tb.h" "$here/tb_$block.cpp" "$design/kllm_bench.h" "$design/kllm_params.h" $files; echo "${optflags[*]}"; echo "${VERILATOR_FLAGS:-}") | sha256sum | cut -c1-16)
if [ ! -x "$obj/V$top" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$obj"
  verilator --cc --exe --build -j "${JOBS:-2}" -O2 --x-assign unique --x-initial unique \
    -Wno-fatal -Wno-lint -Wno-style "${trace[@]}" "${optflags[@]}" "${vflags[@]}" \
    --top-module "$top" -Mdir "$obj" -CFLAGS "${opt:--O1} -I$design -I$here" \
    $files "$here/tb_$block.cpp" >"$obj.log" 2>&1 || { tail -30 "$obj.log"; echo "FAIL: $block: verilator build failed"; exit 1; }
  echo "$want" >"$stamp"
fi
# Uninitialised registers start random: the design must not depend on power-up values
# (RAND_RESET=0 starts them at zero instead, for a control that must not depend on it).
exec "$obj/V$top" +verilator+rand+reset+"${RAND_RESET:-2}" +verilator+seed+"${SEED:-1}" +golden="$golden" "$@"
