#!/usr/bin/env bash
# Lint every top module of each design folder: verilator -Wall must print nothing, and Icarus
# (strict Verilog-2005) must elaborate it. Prints one PASS/FAIL line per top.
set -uo pipefail
status=0
for design in "$@"; do
  tops=$(grep -o '"top": "[a-z_0-9]*"' "$design/manifest.json" | cut -d'"' -f4)
  for top in $tops; do
    out=$( cd "$design" && verilator --lint-only -Wall --top-module "$top" -f files.f 2>&1;
           iverilog -g2005 -Wall -o /dev/null -s "$top" -f files.f 2>&1 )
    if [ -z "$out" ]; then
      echo "PASS lint $design $top"
    else
      echo "FAIL lint $design $top"; echo "$out" | head -20 | sed 's/^/    /'; status=1
    fi
  done
done
exit $status
