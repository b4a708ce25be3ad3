#!/usr/bin/env bash
# End-to-end check of `kllm-gen sweep` (run by `make test`):
#  1. a fresh run of testbenches/sweep_smoke.toml: exit 0, every row ok, cycles equal to the
#     manifest, transistor and iCE40 columns filled;
#  2. the same command again: every row comes from the cache and the CSV is byte-identical;
#  3. with a bench that does not compile: exit 1, and the row is still there, FAILED, with why.
set -uo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
sweep=testbenches/sweep_smoke.toml
root=build/sweep_smoke
rm -rf "$root"
fail() { echo "FAIL: sweep-smoke: $*"; exit 1; }

"$KLLM" sweep "$sweep" --out "$root/report" --work "$root/work" >"$root.log" 2>&1 || { tail -20 "$root.log"; fail "fresh run exited non-zero"; }
csv=$root/report/results.csv
col() { head -1 "$csv" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
# Data rows with quoted fields emptied, so `cut -d,` counts columns right (the columns checked
# here are never quoted: numbers and ok/true).
data() { tail -n +2 "$csv" | sed -E 's/"[^"]*"//g'; }
rows=$(data | wc -l)
[ "$rows" = 2 ] || fail "expected 2 rows (pe_line, dq_pe_line), got $rows"
for c in status cycles_match; do
  bad=$(data | cut -d, -f"$(col $c)" | grep -cvE '^(ok|true)$')
  [ "$bad" = 0 ] || fail "$bad rows with $c not ok/true"
done
for c in cells transistors ice40_lut4 cycles_measured throughput layer_err_kmeans; do
  empty=$(data | cut -d, -f"$(col $c)" | grep -c '^$')
  [ "$empty" = 0 ] || fail "$empty rows without $c"
done
ls "$root"/report/*.svg >/dev/null 2>&1 || fail "no SVG plot written"
cp "$csv" "$root/first.csv"

"$KLLM" sweep "$sweep" --out "$root/report" --work "$root/work" >"$root.log" 2>&1 || fail "cached run exited non-zero"
grep -q "2 jobs (2 cached, 0 to run" "$root.log" || { cat "$root.log"; fail "second run did not use the cache"; }
cmp -s "$csv" "$root/first.csv" || fail "cached run changed results.csv"

# A bench that cannot build must give a FAILED row with the reason, not a missing row.
mkdir -p "$root/tb_broken"
cp testbenches/*.h testbenches/*.cpp "$root/tb_broken/"
echo '#error injected by sweep_smoke.sh' >>"$root/tb_broken/tb_pe_line.cpp"
# Only the sim step, so this part takes seconds.
sed 's/^\[run\]$/[run]\nlint = false\nsynth = false\nice40 = false/' "$sweep" >"$root/broken.toml"
if "$KLLM" sweep "$root/broken.toml" --out "$root/report_broken" --work "$root/work" --testbenches "$root/tb_broken" >"$root.log" 2>&1; then
  fail "a sweep with a broken bench exited 0"
fi
grep -q "1 of 2 rows FAILED" "$root.log" || { cat "$root.log"; fail "the broken bench was not reported as one FAILED row"; }
grep -q '^p00,4,pe_line,kllm_pe_line,FAILED,sim build:' "$root/report_broken/results.csv" || fail "no FAILED pe_line row with its reason"
grep -q '^p00,4,dq_pe_line,kllm_dq_pe_line,ok,' "$root/report_broken/results.csv" || fail "the baseline row should still pass"
echo "PASS: sweep-smoke: 2 rows measured and matching the manifest, cache reused, broken bench gives a FAILED row"
