# One bounded Yosys process per module file of a generated design (sourced by scripts/synth.sh
# for SYNTH_PER_MODULE=1 and by scripts/asic.sh for ASIC_PER_MODULE=1), for designs whose
# one-process run does not fit the machine (the paper tile).
#
#   per_module_yosys DESIGN DIR LIMIT LIMIT_VAR JOBS LABEL COMMANDS [DEPENDENCY...]
#
# For every file of DESIGN/files.f, largest first (so the long modules start while the small ones
# fill the other slots), JOBS at a time: one Yosys run bounded by LIMIT seconds that reads every
# other file of the design as a black box (`read_verilog -lib`), then the module's own file, then
# runs COMMANDS, where @m@ stands for the module's name and @out@ for DIR/<module>. COMMANDS must
# write its statistics to @out@.stat.tmp; it becomes DIR/<module>.stat when Yosys succeeded.
# A module whose .stat is newer than its file and than every DEPENDENCY (e.g. the Liberty file)
# is reused, so a stopped run resumes.
#
# Writes DIR/<module>.log (Yosys), .stat, .secs (wall seconds of its run) and, for a module that
# did not finish, .timeout; prints one line per module on stderr, prefixed with LABEL.
# Returns 0 when every module passed, 1 when one failed, else 124 when one did not finish in LIMIT
# (LIMIT_VAR names the variable that sets it). xargs turns any non-zero exit of a module into
# 123, so a timeout is carried through the .timeout files instead.

per_module_one() {  # module file (relative to PM_DESIGN)
  local f=$1 m=${1%.v} out others dep cmds t0 rc
  out=$PM_DIR/$m
  if [ -s "$out.stat" ] && [ "$out.stat" -nt "$PM_DESIGN/$f" ]; then
    local fresh=1
    for dep in $PM_DEPS; do [ "$out.stat" -nt "$dep" ] || fresh=0; done
    [ $fresh = 1 ] && { echo "$PM_LABEL module $m: cached" >&2; return 0; }
  fi
  rm -f "$out.stat" "$out.stat.tmp" "$out.timeout"
  others=$(grep -vxF "$f" "$PM_DESIGN/files.f" | sed "s|^|$PM_DESIGN/|" | tr '\n' ' ')
  cmds=${PM_COMMANDS//@m@/$m}
  cmds=${cmds//@out@/$out}
  t0=$(date +%s)
  timeout --kill-after=10 "$PM_LIMIT" yosys -q -l "$out.log" -p "read_verilog -lib $others; \
      read_verilog $PM_DESIGN/$f; $cmds" >/dev/null 2>&1
  rc=$?
  if [ $rc = 0 ] && [ -s "$out.stat.tmp" ]; then
    echo $(( $(date +%s) - t0 )) >"$out.secs"
    mv "$out.stat.tmp" "$out.stat"
    echo "$PM_LABEL module $m: $(cat "$out.secs") s" >&2
  elif [ $rc = 124 ] || [ $rc = 137 ]; then
    : >"$out.timeout"
    echo "TIMEOUT $PM_LABEL module $m: did not finish in $PM_LIMIT s ($PM_LIMIT_VAR); log: $out.log" >&2
    return 1
  else
    echo "FAIL $PM_LABEL module $m: Yosys exit $rc (log: $out.log)" >&2
    grep -iE "error|assert" "$out.log" 2>/dev/null | head -3 | sed 's/^/    /' >&2
    return 1
  fi
}

per_module_yosys() {
  local design=$1 dir=$2 limit=$3 limit_var=$4 jobs=$5 label=$6 commands=$7 m rc failed=0 late=0
  shift 7
  mkdir -p "$dir"
  # Timeout markers of an earlier run must not decide this one.
  sed "s|\.v$|.timeout|; s|^|$dir/|" "$design/files.f" | xargs rm -f
  (cd "$design" && ls -S $(cat files.f)) |
    PM_DESIGN=$design PM_DIR=$dir PM_LIMIT=$limit PM_LIMIT_VAR=$limit_var PM_LABEL=$label \
    PM_COMMANDS=$commands PM_DEPS="$*" xargs -P "$jobs" -I{} bash -c 'per_module_one {}'
  rc=$?
  [ $rc = 0 ] && return 0
  # xargs says only that some module did not pass (123); the files say which way.
  while read -r m; do
    if [ -e "$dir/$m.timeout" ]; then late=1; elif [ ! -s "$dir/$m.stat" ]; then failed=1; fi
  done < <(sed "s|\.v$||" "$design/files.f")
  if [ $failed = 0 ] && [ $late = 1 ]; then return 124; fi
  return 1
}
export -f per_module_one
