#!/usr/bin/env bash
# Replaces each README block between
#   <!-- sweep: reports/<name>/summary.md -->   and   <!-- /sweep -->
# with that file's current contents, so the README's results tables are the committed sweep
# reports, not hand-copied numbers. With --check, only reports whether the README is up to date.
set -euo pipefail
readme=$1 mode=${2:-write}
tmp=$(mktemp)
awk '
  /^<!-- sweep: .* -->$/ {
    print; file = $3; while ((getline line < file) > 0) print line; close(file); skip = 1; next
  }
  /^<!-- \/sweep -->$/ { skip = 0 }
  !skip { print }
' "$readme" >"$tmp"
if [ "$mode" = --check ]; then
  if cmp -s "$tmp" "$readme"; then rm -f "$tmp"; echo "PASS: $readme results tables match reports/*/summary.md"
  else diff "$readme" "$tmp" | head -20; rm -f "$tmp"; echo "FAIL: $readme results tables are stale (run scripts/readme_results.sh $readme)"; exit 1; fi
else
  mv "$tmp" "$readme"
fi
