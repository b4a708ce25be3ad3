#!/usr/bin/env bash
# Checks of the per-module Yosys runner (scripts/per_module.sh) through both of its users,
# SYNTH_PER_MODULE=1 scripts/synth.sh and ASIC_PER_MODULE=1 scripts/asic.sh, on copies of
# verilog_out/tiny under build/per_module_check/ (`make per-module-check`, about a minute):
#  1. a module that does not finish (a 1 s limit) is "not finished", not a failure: synth.sh
#     writes a "not finished" row and exits 0, asic.sh says "not finished" (exit 1, no table);
#  2. a module that Yosys rejects (a syntax error put into a copy) is a FAIL naming the module,
#     exit 1 for both;
#  3. with the normal limit the run passes, and a second run reuses every module (cached).
set -uo pipefail
root=build/per_module_check
fail() { echo "FAIL: per-module-check: $*"; exit 1; }
rm -rf "$root" build/synth/pmc_* build/asic/pmc_*
mkdir -p "$root"
cp -r verilog_out/tiny "$root/pmc_slow"
cp -r verilog_out/tiny "$root/pmc_broken"
cp -r verilog_out/tiny "$root/pmc_ok"
# The broken copy: one module file that no longer parses.
victim=$(grep -l '^module kllm_count_weigh' "$root"/pmc_broken/*.v | head -1)
[ -n "$victim" ] || fail "no kllm_count_weigh module in verilog_out/tiny"
echo 'this is not verilog;' >>"$victim"
victim_module=$(basename "$victim" .v)

# 1. Timeouts.
SYNTH_PER_MODULE=1 SYNTH_TIMEOUT=1 SYNTH_TABLE=$root/synth_slow.md scripts/synth.sh "$root/pmc_slow" >"$root/synth_slow.log" 2>&1
rc=$?
[ $rc = 0 ] || { tail -5 "$root/synth_slow.log"; fail "synth.sh with a module timing out exited $rc (a timeout is a row, not a failure)"; }
grep -q '^TIMEOUT synth pmc_slow module ' "$root/synth_slow.log" || fail "synth.sh did not name the module that timed out"
grep -q '| pmc_slow | kllm_pe_line | | | not finished in 1 s |' "$root/synth_slow.md" || fail "synth.sh wrote no 'not finished' row"
grep -q '^FAIL' "$root/synth_slow.log" && fail "synth.sh reported a timeout as FAIL"
ASIC_PER_MODULE=1 ASIC_TIMEOUT=1 ASIC_TABLE=$root/asic_slow.md scripts/asic.sh "$root/pmc_slow" >"$root/asic_slow.log" 2>&1
rc=$?
[ $rc = 1 ] || fail "asic.sh with a module timing out exited $rc, expected 1"
grep -q '^asic: pmc_slow not finished: a module did not finish in 1 s (ASIC_TIMEOUT)' "$root/asic_slow.log" ||
  { tail -5 "$root/asic_slow.log"; fail "asic.sh did not say 'not finished'"; }
[ -e "$root/asic_slow.md" ] && fail "asic.sh wrote a table although a module did not finish"

# 2. A module Yosys rejects.
SYNTH_PER_MODULE=1 SYNTH_TABLE=$root/synth_broken.md scripts/synth.sh "$root/pmc_broken" >"$root/synth_broken.log" 2>&1
rc=$?
[ $rc = 1 ] || fail "synth.sh with a broken module exited $rc, expected 1"
grep -q "^FAIL synth pmc_broken module $victim_module: Yosys exit" "$root/synth_broken.log" ||
  { tail -5 "$root/synth_broken.log"; fail "synth.sh did not name the broken module"; }
ASIC_PER_MODULE=1 ASIC_TABLE=$root/asic_broken.md scripts/asic.sh "$root/pmc_broken" >"$root/asic_broken.log" 2>&1
rc=$?
[ $rc = 1 ] || fail "asic.sh with a broken module exited $rc, expected 1"
grep -q "^FAIL asic pmc_broken module $victim_module: Yosys exit" "$root/asic_broken.log" ||
  { tail -5 "$root/asic_broken.log"; fail "asic.sh did not name the broken module"; }
grep -q "not finished" "$root/asic_broken.log" && fail "asic.sh called a failure 'not finished'"

# 3. Normal runs, then the cache.
nfiles=$(wc -l <"$root/pmc_ok/files.f")
for tool in synth asic; do
  if [ $tool = synth ]; then run() { SYNTH_PER_MODULE=1 SYNTH_TABLE=$root/synth_ok.md scripts/synth.sh "$root/pmc_ok"; }
  else run() { ASIC_PER_MODULE=1 ASIC_TABLE=$root/asic_ok.md scripts/asic.sh "$root/pmc_ok"; }; fi
  run >"$root/${tool}_ok.log" 2>&1 || { tail -5 "$root/${tool}_ok.log"; fail "$tool per module on tiny failed"; }
  run >"$root/${tool}_cached.log" 2>&1 || fail "$tool per module, second run, failed"
  # synth.sh calls the runner once per top, so every module is reused at least once per top.
  cached=$(grep -c "^$tool pmc_ok module .*: cached" "$root/${tool}_cached.log")
  [ "$cached" -ge "$nfiles" ] || fail "$tool: second run reused $cached module runs, expected at least $nfiles"
  grep -q "^$tool pmc_ok module .*: [0-9]* s$" "$root/${tool}_cached.log" && fail "$tool: second run ran a module again"
done
echo "PASS: per-module-check: timeouts are 'not finished' (synth row, exit 0; asic exit 1), a broken module is a FAIL naming it, normal runs pass and resume from the cache"
