#!/usr/bin/env bash
# `make sim-fp`: the float-mode RTL units (src/fp_rtl.rs) against the Rust reference (src/fp.rs).
#  1. writes each unit's Verilog and vector file into build/fp (tests/fp.rs, write_fp_bench_files;
#     FP_SEED=n picks the random vectors, default 1);
#  2. lints each unit (verilator --lint-only -Wall, iverilog -g2005: both must print nothing) and
#     synthesizes it in Yosys (check -assert, no latches);
#  3. builds and runs its Verilator bench (tb_fp_unit.cpp) over every vector;
#  4. negative control: one flipped bit in one expected value must make each bench fail.
# Prints one PASS/FAIL line per step and unit; exits non-zero if any fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${KLLM_FP_OUT:-build/fp}
mkdir -p "$out"
out=$(cd "$out" && pwd)
KLLM_FP_OUT=$out cargo test --release --quiet --test fp write_fp_bench_files -- --ignored --exact --nocapture \
  >"$out/write.log" 2>&1 || { cat "$out/write.log"; echo "FAIL sim-fp: writing the units failed"; exit 1; }
grep -h FP_SEED "$out/write.log" || true
status=0
while read -r unit inport outport in2port; do
  v=$out/$unit.v vec=$out/$unit.vec
  lint=$(verilator --lint-only -Wall --top-module "$unit" "$v" 2>&1; iverilog -g2005 -Wall -o /dev/null -s "$unit" "$v" 2>&1)
  if [ -n "$lint" ]; then echo "FAIL lint $unit"; echo "$lint" | head -20 | sed 's/^/    /'; status=1; continue; fi
  if ! yosys -q -l "$out/$unit.synth.log" -p "read_verilog $v; synth -flatten -top $unit; check -assert; \
      tee -q -o $out/$unit.stat stat; select -assert-none t:\$_DLATCH*_ t:\$_SR_* t:\$dlatch*" >/dev/null 2>&1; then
    echo "FAIL synth $unit (log: $out/$unit.synth.log)"; status=1; continue
  fi
  cells=$(awk '/Number of cells:/ { n = $4 } END { print n }' "$out/$unit.stat")
  echo "PASS lint + synth $unit: $cells Yosys cells, no latches"
  obj=$out/obj_$unit
  want=$(cat "$here/tb_fp_unit.cpp" "$v" | sha256sum | cut -c1-16)
  if [ ! -x "$obj/Vdut" ] || [ "$(cat "$obj/.inputs" 2>/dev/null)" != "$want" ]; then
    rm -rf "$obj"
    verilator --cc --exe --build -j "${JOBS:-2}" -O2 --prefix Vdut --top-module "$unit" -Mdir "$obj" \
      -CFLAGS "-O1 -DIN_PORT=$inport -DOUT_PORT=$outport${in2port:+ -DIN2_PORT=$in2port}" "$v" "$here/tb_fp_unit.cpp" >"$obj.log" 2>&1 \
      || { tail -20 "$obj.log"; echo "FAIL build $unit"; status=1; continue; }
    echo "$want" >"$obj/.inputs"
  fi
  "$obj/Vdut" "$vec" || status=1
  # Negative control: flip bit 0 of the expected output of the middle vector.
  bad=$out/$unit.flipped.vec
  n=$(( ($(wc -l <"$vec") + 1) / 2 ))
  awk -v n="$n" 'NR == n { d = substr($2, length($2)); i = index("0123456789abcdef", d);
      $2 = substr($2, 1, length($2) - 1) substr("1032547698badcfe", i, 1) } { print }' "$vec" >"$bad"
  res=$("$obj/Vdut" "$bad")
  # It must fail for the right reason: exactly the one corrupted vector mismatches.
  if [[ $res == "FAIL $unit: 1 of "*" vectors mismatch"* ]]; then
    echo "PASS negative control $unit: flipped bit caught ($res)"
  else
    echo "FAIL negative control $unit: a flipped expected bit was not reported as one mismatch ($res)"; status=1
  fi
done <"$out/units.txt"
exit $status
