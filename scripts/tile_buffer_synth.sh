#!/usr/bin/env bash
# Yosys check of a tile's weight-index buffer (generators/tile_buf.toml by default):
# - after `proc; memory -nomap`, `wbuf_q` is one inferred memory cell ($mem_v2) with one
#   clocked (registered) read port and one write port: a plain memory, no vendor primitive,
#   mappable to block RAM or SRAM;
# - then generic `synth` of the whole tile (hierarchy kept), `check -assert` and no latch.
#   scripts/tile_buffer_synth.sh [design dir]   (default verilog_out/tile_buf)
# Writes build/synth_<design>/{yosys.log,memory.txt,stat.txt}; prints one PASS or FAIL line.
set -uo pipefail
design=${1:-verilog_out/tile_buf}
name=$(basename "$design")
[ -f "$design/files.f" ] || { echo "error: $design/files.f not found (run make gen-all)"; exit 1; }
grep -q 'wbuf_q' "$design/kllm_tile.v" || { echo "error: $design/kllm_tile.v has no weight buffer (weight_buffer_rows = 0)"; exit 1; }
out=build/synth_$name
mkdir -p "$out"
files=$(sed "s|^|$design/|" "$design/files.f" | tr '\n' ' ')
if yosys -q -l "$out/yosys.log" -p "
  read_verilog -sv $files; hierarchy -top kllm_tile; proc; opt_clean; memory -nomap;
  select -assert-count 1 kllm_tile/wbuf_q kllm_tile/t:\$mem_v2 %i;
  select -assert-count 1 kllm_tile/wbuf_q r:RD_PORTS=1 %i r:WR_PORTS=1 %i r:RD_CLK_ENABLE=1'1 %i;
  tee -q -o $out/memory.txt dump kllm_tile/wbuf_q;
  synth -top kllm_tile; check -assert;
  select -assert-none t:\$_DLATCH*_ t:\$_SR_* t:\$dlatch* t:\$sr;
  tee -q -o $out/stat.txt stat -top kllm_tile" >/dev/null 2>&1; then
  size=$(grep -m1 -oE 'parameter .SIZE [0-9]+' "$out/memory.txt" | grep -oE '[0-9]+$')
  width=$(grep -m1 -oE 'parameter .WIDTH [0-9]+' "$out/memory.txt" | grep -oE '[0-9]+$')
  echo "PASS tile buffer synth $name: wbuf_q inferred as one memory (${size} x ${width} bits, 1 registered read port, 1 write port); synth check passed, no latches"
else
  echo "FAIL tile buffer synth $name (log: $out/yosys.log)"; grep -E "ERROR|Assert" "$out/yosys.log" | head -5 | sed 's/^/    /'; exit 1
fi
