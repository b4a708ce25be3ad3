#!/usr/bin/env bash
# Self-test of testbenches/negative_lib.sh's verdict functions (run first by
# testbenches/negative_control.sh; no simulator needed, well under a second). The negative
# controls are only as good as the function that judges them: each way a control must NOT
# pass (the bench passed, failed without a FAIL line, failed for another reason than the
# expected one) is fed to it with stand-in bench commands and must give a FAIL verdict and
# status 1, and the one way it must pass must give PASS and status 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/negative_lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
# check WANT_STATUS WANT_TEXT FUNCTION ARGS...: FUNCTION must return WANT_STATUS and print a
# first line starting with WANT_TEXT.
check() {
  local want=$1 text=$2 out rc
  shift 2
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want" ] || [[ "$(head -1 <<<"$out")" != "$text"* ]]; then
    echo "FAIL negative_lib self-test: $* returned $rc (want $want), printed: $(head -1 <<<"$out") (want: $text...)"
    bad=1
  fi
}
bench_pass() { echo "PASS: outputs=10 mismatches=0"; }
bench_mismatch() { echo "FAIL: outputs=10 mismatches=3 timing_mismatches=0"; return 1; }
bench_crash() { echo "Segmentation fault"; return 139; }
bench_other() { echo "FAIL: outputs=10 mismatches=0 timing_mismatches=2"; return 1; }
log=$tmp/log
check 1 "FAIL negative control 'x': the bench passed" expect_fail x "$log" " mismatches=[1-9]" -- bench_pass
check 1 "FAIL negative control 'x': the bench exited non-zero without a FAIL line" expect_fail x "$log" "fault" -- bench_crash
check 1 "FAIL negative control 'x': bench failed without the expected report ' mismatches=[1-9]'" \
  expect_fail x "$log" " mismatches=[1-9]" -- bench_other
check 1 "FAIL negative control 'x': bench failed without the expected report ' mismatches=0 '" \
  expect_fail x "$log" " timing_mismatches=[0-9]" " mismatches=0 " -- bench_mismatch
check 0 "PASS negative control 'x': bench failed as it must (n, mismatches=3, timing_mismatches=0)" \
  expect_fail --note n x "$log" " mismatches=[1-9]" " timing_mismatches=[0-9]" -- bench_mismatch
check 0 "PASS negative control b passes" expect_pass b "$log" -- bench_pass
check 1 "FAIL negative control b fails" expect_pass b "$log" -- bench_mismatch
if [ "$bad" = 0 ]; then
  echo "PASS negative_lib self-test: 7 verdicts as expected (bench passed, no FAIL line, wrong reason, missing second pattern, right failure, baseline pass and fail)"
fi
exit $bad
