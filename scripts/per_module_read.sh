#!/usr/bin/env bash
# Every module file of each DESIGN read by Yosys the way the per-module flows read it (asic-paper,
# synth-paper, SYNTH_PER_MODULE / ASIC_PER_MODULE): every other file of the design as a black
# box (`read_verilog -lib`), then the module's own file, `hierarchy`, `proc`, `check -assert`.
# A construct that only this reading rejects (Yosys 0.23 asserts on a cast in a port connection
# of a black-box submodule, commit 8739e9d) fails here, in `make lint`, instead of hours into a
# paper-size run. The flows' scripts/per_module.sh runs the modules, two at a time.
#   scripts/per_module_read.sh verilog_out/<name>...
# PER_MODULE_READ_SELFTEST=1 first checks that a copy of tile_small with that cast put back fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/per_module.sh"
commands='hierarchy -top @m@; proc; check -assert; tee -q -o @out@.stat.tmp stat'
status=0
mkdir -p build/per_module_read
if [ "${PER_MODULE_READ_SELFTEST:-0}" = 1 ]; then
  bad=build/per_module_read/selftest_design
  rm -rf "$bad" build/per_module_read/selftest
  mkdir -p "$bad"
  cp verilog_out/tile_small/*.v verilog_out/tile_small/files.f "$bad/"
  sed -i 's/\.cfg_wdata (cfg_wdata_bits)/.cfg_wdata ($unsigned(cfg_wdata))/' "$bad/kllm_tile.v"
  grep -q 'unsigned(cfg_wdata)' "$bad/kllm_tile.v" || { echo "FAIL per-module read self-test: kllm_tile.v has no cfg_wdata_bits connection to replace"; exit 1; }
  per_module_yosys "$bad" build/per_module_read/selftest 120 PER_MODULE_READ_TIMEOUT 2 "read selftest" "$commands" 2>"$bad.log"
  if [ $? != 0 ] && grep -q '^FAIL read selftest module kllm_tile: ' "$bad.log" && [ "$(grep -c '^FAIL' "$bad.log")" = 1 ]; then
    echo "PASS per-module read negative control: tile_small with \$unsigned(cfg_wdata) in the line's port connection fails (kllm_tile only)"
  else
    echo "FAIL per-module read negative control: the cast in a black box's port connection was not caught"; cat "$bad.log"; status=1
  fi
fi
for design in "$@"; do
  name=$(basename "$design")
  n=$(wc -l <"$design/files.f")
  t0=$(date +%s)
  if per_module_yosys "$design" "build/per_module_read/$name" "${PER_MODULE_READ_TIMEOUT:-300}" PER_MODULE_READ_TIMEOUT 2 "read $name" "$commands" 2>"build/per_module_read/$name.log"; then
    echo "PASS per-module read $design ($n modules, each with the others as black boxes, $(( $(date +%s) - t0 )) s)"
  else
    echo "FAIL per-module read $design:"; grep -E '^(FAIL|TIMEOUT)' "build/per_module_read/$name.log" | sed 's/^/    /'; status=1
  fi
done
exit $status
