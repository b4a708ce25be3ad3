#!/usr/bin/env bash
# Standard-cell area and static timing of every top of one design folder (verilog_out/<config>).
#
# Yosys maps each distinct module once, keeping the hierarchy: generic `synth`, flip-flops onto
# the Liberty library's flops (`dfflibmap`), logic with ABC onto its gates (`abc -liberty`, delay
# target = the clock period, then ABC's buffering and gate sizing so that a high-fanout net is
# not timed as one minimum-size gate). Area is `stat -liberty` per module, summed over each top's
# module tree as instances × module area (checked against Yosys's own hierarchy total).
# OpenSTA then reads the mapped netlist and times each top with one clock on `clk`
# (inputs and outputs constrained to the same clock with zero external delay, so I/O paths
# count as well): the worst path's delay and Fmax = 1 / (period - worst slack).
#
# No placement and no wires: delays are the Liberty cells' own (zero-wireload) delays, so Fmax is
# optimistic against a routed chip. With the default OSU 0.18 um library the ratios between
# designs are meaningful, the absolute numbers are those of a 0.18 um process, not a modern node.
#
# Timing is taken on each top's mapped netlist flattened and re-mapped by ABC with buffering,
# where that finishes within ASIC_FLAT_TIMEOUT: only there can ABC buffer a register that feeds
# many submodule instances (see below).
#
# Environment: LIBERTY (a .lib file), CLOCK_PERIOD (ns, the delay target and STA clock),
# STA (OpenSTA binary), ASIC_TIMEOUT (seconds for the hierarchical Yosys run),
# ASIC_FLAT_TIMEOUT (seconds for each top's flatten and re-buffer), ASIC_TABLE (output file),
# ASIC_PER_MODULE=1 (one Yosys process per module; ASIC_TIMEOUT is then per module, ASIC_JOBS
# of them at a time), ASIC_STA_MAX_CELLS (per-module mode only: a top with more cells than this,
# default 3 000 000, is neither flattened nor timed whole, which would not fit the machine's
# memory; each module's netlist is timed on its own instead, see below).
# Writes build/asic/<config>/ (netlist, logs, stat, STA reports) and reports/asic_<config>.md.
set -uo pipefail
die() { echo "asic: $*" >&2; exit 2; }
[ $# = 1 ] || die "usage: scripts/asic.sh verilog_out/<config>"
design=${1%/}
name=$(basename "$design")
liberty=${LIBERTY:-/usr/share/qflow/tech/osu018/osu018_stdcells.lib}
period=${CLOCK_PERIOD:-10}
sta=${STA:-sta}
limit=${ASIC_TIMEOUT:-900}
flat_limit=${ASIC_FLAT_TIMEOUT:-600}
sta_max_cells=${ASIC_STA_MAX_CELLS:-3000000}
[[ $sta_max_cells =~ ^[0-9]+$ ]] || die "ASIC_STA_MAX_CELLS='$sta_max_cells' is not a cell count (a whole number >= 0)"
[ -f "$design/manifest.json" ] || die "'$design' is not a generated design folder (no manifest.json): run \`make gen CONFIG=generators/$name.toml\`"
[ -f "$liberty" ] || die "Liberty file '$liberty' not found: \`make tools\` installs the OSU 0.18 um library (Debian qflow-tech-osu018), or set LIBERTY=/path/to/your_pdk.lib"
grep -q '^ *cell *(' "$liberty" || die "LIBERTY='$liberty' holds no cell groups: is it a Liberty (.lib) file?"
command -v yosys >/dev/null || die "yosys not found: run \`make tools\`"
command -v "$sta" >/dev/null || die "OpenSTA ('$sta') not found: \`make tools\` installs Debian opensta, or set STA=/path/to/sta"
awk -v p="$period" 'BEGIN { exit !(p ~ /^[0-9]+([.][0-9]+)?$/ && p > 0 && p <= 1000) }' ||
  die "CLOCK_PERIOD='$period' is not a period in ns in (0, 1000]"

out=build/asic/$name
mkdir -p "$out" reports
rm -f "$out"/*.stat "$out"/*.sta
final=${ASIC_TABLE:-reports/asic_$name.md}
tops=$(grep -o '"top": "[a-z_0-9]*"' "$design/manifest.json" | cut -d'"' -f4)
files=$(sed "s|^|$design/|" "$design/files.f" | tr '\n' ' ')
# The library's flip-flop cells (those with an `ff` group), to count flip-flops in the stat.
flops=$(awk '/^[ \t]*cell[ \t]*\(/ { c = $0; sub(/.*\([ \t]*"?/, "", c); sub(/"?[ \t]*\).*/, "", c) }
             /^[ \t]*ff[ \t]*\(/ { printf "%s%s", sep, c; sep = "|" }' "$liberty")
[ -n "$flops" ] || die "LIBERTY='$liberty' has no flip-flop cell (no ff group): dfflibmap cannot map registers onto it"
ps=$(awk -v p="$period" 'BEGIN { printf "%d", p * 1000 }')
# ABC assumes ideal drivers on its inputs, which include every flip-flop output: a register
# feeding hundreds of gates would not be buffered. Tell it they are driven by the library's
# smallest inverter (the cell whose function is "!A" with the least area).
driver=$(awk '/^[ \t]*cell[ \t]*\(/ { c = $0; sub(/.*\([ \t]*"?/, "", c); sub(/"?[ \t]*\).*/, "", c); a = "" }
  /^[ \t]*area[ \t]*:/ { a = $3; sub(/;/, "", a) }
  /function[ \t]*:[ \t]*"\(?![ \t]*\(?[A-Za-z0-9_]+\)?\)?"/ { if (best == "" || a + 0 < ba) { best = c; ba = a + 0 } }
  END { print best }' "$liberty")
[ -n "$driver" ] || die "LIBERTY='$liberty' has no inverter (no cell with function \"!A\"): ABC needs one as input driver"
mkdir -p "$out"
printf 'set_driving_cell %s\nset_load 0.01\n' "$driver" >"$out/abc.constr"
# ABC script: Yosys's default delay-driven mapping, then buffering and sizing against the target.
abc_script="+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf,{D};&put;buffer,-p;upsize,{D};dnsize,{D}"
stats=""
for top in $tops; do stats="$stats tee -q -o $out/$top.stat stat -liberty $liberty -top $top;"; done
echo "asic $name: Yosys + ABC onto $(basename "$liberty"), clock target $period ns"
start=$(date +%s)
map="dfflibmap -liberty $liberty; abc -D $ps -constr $out/abc.constr -liberty $liberty -script $abc_script; \
    splitnets; opt_clean -purge; select -assert-none t:\$*"
checks="check -assert; select -assert-none t:\$_DLATCH*_ t:\$_SR_* t:\$dlatch* t:\$sr"
if [ "${ASIC_PER_MODULE:-0}" = 1 ]; then
  # One bounded Yosys per module file, its submodules read as black boxes (ASIC_TIMEOUT per
  # module, ASIC_JOBS at a time), for designs whose one-process run does not fit this machine
  # (the paper tile). The per-module netlists and stats are concatenated: the same Σ instances ×
  # module area, without Yosys's own hierarchy total to check it against. Kept per module under
  # build/asic/<config>/modules/ and reused while the module file and library are unchanged.
  mdir=$out/modules
  source scripts/per_module.sh
  per_module_yosys "$design" "$mdir" "$limit" ASIC_TIMEOUT "${ASIC_JOBS:-1}" "asic $name" \
    "synth -top @m@; $checks; $map; write_verilog -noattr -noexpr -nohex -nodec @out@.v; \
     tee -q -o @out@.stat.tmp stat -liberty $liberty" "$liberty"
  rc=$?
  if [ $rc = 0 ]; then
    sed "s|\.v$||" "$design/files.f" | while read -r m; do cat "$mdir/$m.v"; done >"$out/netlist.v"
    all=$(sed "s|\.v$|.stat|; s|^|$mdir/|" "$design/files.f" | tr '\n' ' ')
    for top in $tops; do cat $all >"$out/$top.stat"; done
  fi
else
timeout --kill-after=10 "$limit" yosys -q -l "$out/yosys.log" -p "read_verilog $files; synth; \
    $checks; $map; $stats \
    write_verilog -noattr -noexpr -nohex -nodec $out/netlist.v" >/dev/null 2>&1
rc=$?
fi
secs=$(( $(date +%s) - start ))
if [ "${ASIC_PER_MODULE:-0}" = 1 ] && [ $rc != 0 ]; then
  # per_module_yosys has named each module that did not pass, with its log.
  if [ $rc = 124 ]; then echo "asic: $name not finished: a module did not finish in $limit s (ASIC_TIMEOUT)" >&2
  else echo "asic: Yosys failed for $name (a module above)" >&2; fi
  exit 1
elif [ $rc = 124 ] || [ $rc = 137 ]; then
  echo "asic: Yosys did not finish in $limit s (ASIC_TIMEOUT) for $name; log: $out/yosys.log" >&2; exit 1
elif [ $rc != 0 ]; then
  echo "asic: Yosys failed for $name (log: $out/yosys.log):" >&2
  grep -iE "error|assert" "$out/yosys.log" | head -3 | sed 's/^/    /' >&2; exit 1
fi
lib_name=$(awk '/^[ \t]*library[ \t]*\(/ { l = $0; sub(/.*\([ \t]*"?/, "", l); sub(/"?[ \t]*\).*/, "", l); print l; exit }' "$liberty")
{
  echo "# Standard-cell area and static timing: \`$name\`"
  echo
  echo "Generated by \`make asic CONFIG=generators/$name.toml\` (\`scripts/asic.sh\`) with"
  echo "$(yosys -V | cut -d' ' -f1-2) + ABC and OpenSTA $("$sta" -version 2>/dev/null | head -1), Liberty library"
  echo "\`$lib_name\` (\`$(basename "$liberty")\`), clock target $period ns. Each distinct module is mapped once"
  echo "(hierarchy kept); a top's **area** is Σ instances × module area. Timing is taken on that"
  echo "netlist flattened and mapped once more by ABC with buffering and sizing (ABC can buffer a"
  echo "register's fanout only when it sees all of it; the **timed area** is that netlist's), or on"
  echo "the hierarchical netlist where this does not finish in ${flat_limit} s (ASIC_FLAT_TIMEOUT;"
  echo "unbuffered fanout across module ports then makes Fmax pessimistic, and the table says so)."
  echo "No placement and no wire"
  echo "load: delays are the cells' own, so Fmax is optimistic against a routed chip. With the OSU"
  echo "0.18 µm library the ratios between designs are the meaningful part; the absolute figures are"
  echo "those of a 0.18 µm process, several times larger and slower than a modern node."
  if [ "${ASIC_PER_MODULE:-0}" = 1 ]; then
    echo
    echo "This run mapped every module in its own Yosys process (\`ASIC_PER_MODULE=1\`, its submodules"
    echo "as black boxes), so the area sum is not checked against a Yosys hierarchy total; on \`tiny\`"
    echo "it came within 0.5 % of the one-process run (ABC's choices differ slightly)."
  fi
  echo
  echo "| top | area µm² | timed area µm² | cells | flip-flops | worst path ns | Fmax MHz | timed netlist | worst path from → to |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
} >"$final.tmp"
# sta_time <netlist> <module> <base> <label> <clock>: times <module> of <netlist> in OpenSTA with one
# clock (`port`: on its clk port, other inputs and all outputs constrained to it with zero
# external delay; `virtual`: a clock on no port, for a combinational module's input-to-output
# paths). Writes <base>.tcl and <base>.sta, fails (exit 1) if OpenSTA does, and prints the
# worst slack, its start and its end point (nothing when the report has no worst slack; "INF":
# no constrained path).
sta_time() {
  local netlist=$1 module=$2 base=$3 label=$4 clock=$5 inputs
  if [ "$clock" = port ]; then
    clock="create_clock -name clk -period $period [get_ports clk]" inputs="[delete_from_list [all_inputs] [get_ports clk]]"
  else
    clock="create_clock -name clk -period $period" inputs="[all_inputs]"
  fi
  cat >"$base.tcl" <<EOF
read_liberty $liberty
read_verilog $netlist
link_design $module
$clock
set_input_delay 0 -clock clk $inputs
set_output_delay 0 -clock clk [all_outputs]
report_checks -path_delay max -digits 3
report_worst_slack -digits 3
exit
EOF
  if ! "$sta" -no_init -no_splash "$base.tcl" >"$base.sta" 2>&1 || grep -q '^Error' "$base.sta"; then
    echo "asic: OpenSTA failed on $name $label (report: $base.sta):" >&2
    grep '^Error' "$base.sta" | head -3 | sed 's/^/    /' >&2; exit 1
  fi
  local slack from to
  slack=$(awk '/^worst slack/ { print $3 }' "$base.sta")
  from=$(awk '/^Startpoint:/ { print $2; exit }' "$base.sta")
  to=$(awk '/^Endpoint:/ { print $2; exit }' "$base.sta")
  echo "$slack $from $to"
}
# The worst path's delay and Fmax of a worst slack: "ns MHz".
path_fmax() { awk -v p="$period" -v s="$1" 'BEGIN { d = p - s; printf "%.3f %.1f", d, 1000 / d }'; }
modrows=""
status=0
for top in $tops; do
  sums=$(awk -v top="$top" -v ffre="^($flops)\$" -f scripts/hier_stat.awk "$out/$top.stat") || exit 1
  read -r _ cells ffs nmod ninst ycells area yarea <<<"$(echo "$sums" | grep '^TOP')"
  if [ "${ASIC_PER_MODULE:-0}" != 1 ] && { [ "$cells" != "$ycells" ] || [ "$area" != "$yarea" ]; }; then
    echo "asic: $name $top: Σ instances × module cells/area = $cells/$area, Yosys stat -top says $ycells/$yarea" >&2
    exit 1
  fi
  while read -r _ mod own ff n marea; do
    [ "$n" = 0 ] || modrows="$modrows| $top | $mod | $marea | $own | $ff | $n |"$'\n'
  done < <(echo "$sums" | grep '^MOD' | sort -k2)
  has_clk=$(grep -cE "^ *input +wire +clk\b|^ *input +clk\b" "$design/$top.v" || true)
  # Timing wants a flat netlist: in the hierarchical one a register that feeds many instances
  # of a submodule drives them through module ports, where ABC (one module at a time) cannot
  # see the fanout to buffer it, and STA would time one gate driving hundreds of loads. So the
  # mapped hierarchical netlist is flattened (the Liberty cells read back as logic) and ABC maps
  # it once more with buffering and sizing, now seeing every fanout: no second `synth`, which
  # for the large tops takes far longer.
  netlist=$out/netlist.v netlist_kind=hierarchical flat_area=""
  if [ "${ASIC_PER_MODULE:-0}" = 1 ] && [ "$cells" -gt "$sta_max_cells" ]; then
    # Too large to flatten or to time whole (the paper tile: 18 M generic cells; OpenSTA holds
    # every instance of the linked design). Each module's mapped netlist is timed alone, its
    # submodules black boxes: a path is cut where it crosses a module port, so this is the
    # worst path inside one module (a combinational module's input-to-output delay included),
    # optimistic for paths that run through several modules. Fmax is that of the worst module.
    worst="" wslack="" wfrom="" wto=""
    while read -r m; do
      # A module without clk (a combinational one) is timed input to output on a virtual clock.
      clock=virtual
      grep -qE "^ *input +(wire +)?clk\b" "$mdir/$m.v" && clock=port
      timed=$(sta_time "$mdir/$m.v" "$m" "$mdir/$m" "module $m" "$clock") || exit 1
      read -r ms from to <<<"$timed"
      [ -n "$ms" ] && [ "$ms" != "INF" ] || continue
      if [ -z "$wslack" ] || awk -v a="$ms" -v b="$wslack" 'BEGIN { exit !(a < b) }'; then
        wslack=$ms worst=$m wfrom=$from wto=$to
      fi
    done < <(echo "$sums" | awk '$1 == "MOD" && $5 > 0 { print $2 }')
    [ -n "$wslack" ] || { echo "asic: no module of $name has a timed path" >&2; exit 1; }
    read -r path fmax <<<"$(path_fmax "$wslack")"
    echo "| $top | $area |  | $cells | $ffs | $path | $fmax | per module ($cells cells > ASIC_STA_MAX_CELLS = $sta_max_cells: paths cut at module ports, optimistic) | \`$worst\`: \`$wfrom\` → \`$wto\` |" >>"$final.tmp"
    echo "asic $name $top: per-module STA, worst module $worst" >&2
    continue
  fi
  fstart=$(date +%s)
  timeout --kill-after=10 "$flat_limit" yosys -q -l "$out/${top}_flat.log" -p "read_liberty $liberty; \
      read_verilog $out/netlist.v; hierarchy -top $top; flatten; opt_clean; \
      dfflibmap -liberty $liberty; abc -D $ps -constr $out/abc.constr -liberty $liberty -script $abc_script; \
      splitnets; opt_clean -purge; select -assert-none t:\$*; tee -q -o $out/${top}_flat.stat stat -liberty $liberty; \
      write_verilog -noattr -noexpr -nohex -nodec $out/${top}_flat.v" >/dev/null 2>&1
  frc=$?
  flat_secs=$(( $(date +%s) - fstart ))
  if [ $frc = 0 ]; then
    netlist=$out/${top}_flat.v netlist_kind="flat, re-buffered"
    flat_area=$(grep -F "Chip area for module '\\$top':" "$out/${top}_flat.stat" | awk '{ printf "%.0f", $NF }')
  elif [ $frc = 124 ] || [ $frc = 137 ]; then
    netlist_kind="hierarchical (re-buffering not finished in $flat_limit s: pessimistic)"
  else
    echo "asic: flattening and re-buffering $name $top failed (log: $out/${top}_flat.log)" >&2; exit 1
  fi
  [ "$has_clk" != 0 ] || { echo "asic: $name $top has no clk port; it is not timed" >&2; status=1; continue; }
  timed=$(sta_time "$netlist" "$top" "$out/$top" "$top" port) || exit 1
  read -r slack from to <<<"$timed"
  [ -n "$slack" ] || { echo "asic: no worst slack in $out/$top.sta" >&2; exit 1; }
  read -r path fmax <<<"$(path_fmax "$slack")"
  echo "| $top | $area | ${flat_area:-} | $cells | $ffs | $path | $fmax | $netlist_kind | \`$from\` → \`$to\` |" >>"$final.tmp"
  echo "asic $name $top: flatten, re-buffer and STA ${flat_secs} s" >&2
done
{
  echo
  echo "## Area per module"
  echo
  echo "Area and cells of one instance of each module (its submodules not included) and the number"
  echo "of instances under each top."
  echo
  echo "| top | module | area µm² | cells | flip-flops | instances |"
  echo "|---|---|---:|---:|---:|---:|"
  printf '%s' "$modrows"
  echo
  echo "Yosys + ABC: ${secs} s for all tops of the config."
} >>"$final.tmp"
mv "$final.tmp" "$final"
sed -n '/^| top | area/,/^$/p' "$final"
echo "asic $name: table in $final (netlist and reports in $out/)"
exit $status
