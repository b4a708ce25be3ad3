#!/usr/bin/env bash
# The regression of several configs, SIM_JOBS at a time (default 2: one per core; a config's
# Verilator build uses the idle core while the other config simulates). Each config's report is
# printed whole, in the order given, once it is done; the exit status is non-zero if any failed.
#   testbenches/sim_all.sh generators/a.toml generators/b.toml ...
# Env: as testbenches/sim_config.sh (SEED, VECTORS, VECTORS_DIVISOR, ...), SIM_JOBS, SIM_RUNNER
# (the per-config script under testbenches/, default sim_config.sh; make sim-icarus: icarus/sim_config.sh).
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 CONFIG.toml..."; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d build/sim_all.XXXXXX 2>/dev/null || { mkdir -p build && mktemp -d build/sim_all.XXXXXX; })
trap 'rm -rf "$logs"' EXIT
i=0
for c in "$@"; do printf '%d\t%s\n' $((i++)) "$c"; done |
  xargs -P "${SIM_JOBS:-2}" -L 1 bash -c '
    here=$0 logs=$1 i=$2 config=$3 start=$(date +%s)
    if "$here/${SIM_RUNNER:-sim_config.sh}" "$config" >"$logs/$i.out" 2>&1; then echo 0 >"$logs/$i.rc"; else echo 1 >"$logs/$i.rc"; fi
    echo "[$(basename "$config" .toml)] done in $(( $(date +%s) - start )) s" >>"$logs/$i.out"' "$here" "$logs"
status=0
i=0
for c in "$@"; do
  cat "$logs/$i.out" 2>/dev/null || echo "[$(basename "$c" .toml)] FAIL: no report"
  [ "$(cat "$logs/$i.rc" 2>/dev/null)" = 0 ] || status=1
  i=$((i + 1))
done
exit $status
