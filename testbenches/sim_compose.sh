#!/usr/bin/env bash
# Several blocks in one top (issue 10's composition check): two PE lines of different parameters
# (tiny: W2A2, 4 lanes; wide: 64 lanes) and an Orizuru (N=16, k=2) composed by `kllm-gen compose`,
# linted as one top (Verilator -Wall, Icarus), then simulated: each part runs its own golden file
# from the Rust reference through the shared bench, on the composed top.
# Env: KLLM, SEED (default 1), VECTORS (default 2000).
set -euo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
here=$(cd "$(dirname "$0")" && pwd)
build=build/compose
name=compose_test
seed=${SEED:-1}
vectors=${VECTORS:-2000}
parts=(a:generators/tiny.toml:pe_line b:generators/wide.toml:pe_line o:generators/orizuru_n16_k2.toml:orizuru)
args=()
for p in "${parts[@]}"; do args+=(--part "${p%%:*}=${p#*:}"); done
mkdir -p "$build"
design=$("$KLLM" compose "${args[@]}" --name "$name" --out "$build")
design=$(cd "$design" && pwd)
top=kllm_$name
out=$( cd "$design" && verilator --lint-only -Wall --top-module "$top" -f files.f 2>&1;
       iverilog -g2005 -Wall -o /dev/null -s "$top" -f files.f 2>&1 )
if [ -n "$out" ]; then echo "FAIL lint $design $top"; echo "$out" | head -20 | sed 's/^/    /'; exit 1; fi
echo "PASS lint $design $top ($(wc -l <"$design/files.f") modules)"
obj=$build/obj_$name
files=$(sed "s|^|$design/|" "$design/files.f")
rm -rf "$obj"
verilator --cc --exe --build -j "${JOBS:-2}" -O2 --x-assign unique --x-initial unique \
  -Wno-fatal -Wno-lint -Wno-style --top-module "$top" -Mdir "$obj" -CFLAGS "-O1 -I$design -I$here" \
  $files "$here/tb_compose.cpp" >"$obj.log" 2>&1 || { tail -30 "$obj.log"; echo "FAIL: $name: verilator build failed"; exit 1; }
status=0
for p in "${parts[@]}"; do
  prefix=${p%%:*} rest=${p#*:}; config=${rest%%:*} block=${rest##*:}
  g=$build/golden_$prefix
  "$KLLM" golden --config "$config" --block "$block" --out "$g" --seed "$seed" --vectors "$vectors" >/dev/null
  log=$build/sim_$prefix.log
  "$obj/V$top" +verilator+rand+reset+2 +verilator+seed+"$seed" +part="$prefix" +golden="$g/golden_$block.txt" +seed="$seed" >"$log" 2>&1 || true
  if grep -q '^PASS' "$log"; then
    echo "[$name part $prefix] $(grep '^PASS' "$log")"
  else
    status=1; echo "[$name part $prefix] FAIL (log: $log)"; tail -15 "$log" | sed 's/^/    /'
  fi
done
# Negative control: part b's first expected result with its low bit flipped must FAIL with one
# mismatch, so a PASS above means the composed top really produced part b's results.
good=$build/golden_b/golden_pe_line.txt
n=$(grep -n -m1 '^out ' "$good" | cut -d: -f1); w=$(sed -n "${n}p" "$good" | cut -d' ' -f2)
flip=$(printf '%s' "$w" | sed 's/.$//')$(printf '%x' $(( 0x${w: -1} ^ 1 )))
sed "${n}s/.*/out $flip/" "$good" >"$build/bad_b.txt"
log=$build/sim_b_negative.log
if "$obj/V$top" +verilator+rand+reset+2 +part=b +golden="$build/bad_b.txt" +seed="$seed" >"$log" 2>&1; then
  status=1; echo "[$name] FAIL negative control: a corrupted expected result of part b passed"
elif grep -q '^FAIL.* mismatches=1 ' "$log"; then
  echo "[$name] PASS negative control: corrupted expected result of part b fails with 1 mismatch"
else
  status=1; echo "[$name] FAIL negative control: bench failed without 'mismatches=1'"; tail -5 "$log" | sed 's/^/    /'
fi
exit $status
