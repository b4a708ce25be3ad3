# Sourced by the negative-control scripts (testbenches/negative_control*.sh, scripts/tile_dq.sh).
# flip_hex WORD: WORD with its lowest bit flipped, same digit count, for a hex word of any width
# (only the last digit changes, so words wider than the shell's 64-bit arithmetic work too).
flip_hex() {
  printf '%s%x' "${1:0:${#1}-1}" $(( 16#${1: -1} ^ 1 ))
}

# expect_pass LABEL LOG -- COMMAND...: the baseline of a negative control. COMMAND (a bench run
# on the uncorrupted input) must exit 0; prints "PASS negative control LABEL passes", or a FAIL
# line and the log's tail and returns 1 (a control whose baseline fails proves nothing).
expect_pass() {
  local label=$1 log=$2
  shift 3 # LABEL LOG --
  if "$@" >"$log" 2>&1; then
    echo "PASS negative control $label passes"
  else
    echo "FAIL negative control $label fails"; tail -5 "$log"; return 1
  fi
}

# expect_fail [--note TEXT] NAME LOG PATTERN... -- COMMAND...: one negative control. COMMAND
# (a bench run on a corrupted golden file or a broken design) must exit non-zero with a line
# starting with FAIL and a match of every grep pattern PATTERN in its output (LOG): the bench
# failed for the reason the control is about, not for any reason. Prints
# "PASS negative control 'NAME': bench failed as it must (NOTE, the first match of each pattern)"
# or a FAIL line saying which check did not hold (and the log's tail), and returns 1.
expect_fail() {
  local note=
  if [ "$1" = --note ]; then note="$2, "; shift 2; fi
  local name=$1 log=$2 pats=() seen=() p
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do pats+=("$1"); shift; done
  shift # --
  if "$@" >"$log" 2>&1; then
    echo "FAIL negative control '$name': the bench passed (${note}log $log)"; return 1
  fi
  if ! grep -q '^FAIL' "$log"; then
    echo "FAIL negative control '$name': the bench exited non-zero without a FAIL line"; tail -5 "$log"; return 1
  fi
  for p in "${pats[@]}"; do
    if ! grep -q -- "$p" "$log"; then
      echo "FAIL negative control '$name': bench failed without the expected report '$p'"; tail -5 "$log"; return 1
    fi
    seen+=("$(grep -o -- "$p" "$log" | head -1 | sed 's/^ *//; s/ *$//')")
  done
  local found
  found=$(printf ', %s' "${seen[@]}")
  echo "PASS negative control '$name': bench failed as it must (${note}${found:2})"
}
