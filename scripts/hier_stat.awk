# Reads the output of Yosys `stat -top TOP` (every module's cells by type, then the design
# hierarchy) and prints, from the module-to-module instance counts in the netlist:
#   MOD <module> <own cells> <own flip-flop bits> <instances under TOP> <own area>
#   TOP <cells> <flip-flop bits> <distinct modules> <instances> <Yosys's total cells> <area> <Yosys's total area>
# "Own" leaves out the cells that are instances of submodules, so a top's cells (and area) are
# Σ instances × own cells; the caller checks that against Yosys's own total. Area is only there
# with `stat -liberty` (else 0). Flip-flops are the cell types matching `ffre` (default: Yosys's
# internal $_*DFF*_ cells; the ASIC flow passes the Liberty flop cell names).
# Usage: awk -v top=TOP [-v ffre=REGEX] -f scripts/hier_stat.awk file.stat
BEGIN { if (ffre == "") ffre = "^\\$_[A-Z]*DFF[A-Z]*_" }
/^=== .* ===$/ { m = $2; if (m != "design") mods[m] = 1; next }
m == "design" && /Number of cells:/ && ycells == "" { ycells = $4 }
m == "design" && /Chip area for top module/ { yarea = $NF }
m == "" || m == "design" { next }
/Number of cells:/ { cells[m] = $4; next }
/Chip area for module/ { area[m] = $NF; next }
/^ +[^ ]+ +[0-9]+$/ { n[m, $1] = $2; types[m] = types[m] " " $1 }
function walk(mod, mult,    k, t, list) {
  inst[mod] += mult
  k = split(types[mod], list, " ")
  for (t = 1; t <= k; t++) if (list[t] in mods) walk(list[t], mult * n[mod, list[t]])
}
END {
  if (!(top in mods)) { print "ERROR top " top " not in the stat output" > "/dev/stderr"; exit 1 }
  for (mod in mods) {
    own[mod] = cells[mod]; ff[mod] = 0
    k = split(types[mod], list, " ")
    for (t = 1; t <= k; t++) {
      if (list[t] in mods) own[mod] -= n[mod, list[t]]
      else if (list[t] ~ ffre) ff[mod] += n[mod, list[t]]
    }
  }
  walk(top, 1)
  for (mod in mods) {
    printf "MOD %s %d %d %d %.0f\n", mod, own[mod], ff[mod], inst[mod], area[mod]
    if (inst[mod]) { total += inst[mod] * own[mod]; ffs += inst[mod] * ff[mod]; nm++; ni += inst[mod]; ar += inst[mod] * area[mod] }
  }
  # Without submodules `stat -top` prints no hierarchy section: the top's own figures are the total.
  printf "TOP %d %d %d %d %d %.0f %.0f\n", total, ffs, nm, ni, (ycells == "" ? total : ycells), ar, (yarea == "" ? ar : yarea)
}
