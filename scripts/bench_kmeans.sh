#!/usr/bin/env bash
# K-Means weight quantization speed and memory (called by `make bench` through scripts/bench.sh).
#  1. The same seeded f16 checkpoint (2048x5120 + 1024x1024 = 11.5 M weights, row scales over two
#     decades) through `kllm-gen quantize --solver lloyd|exact|both` and through the plain numpy
#     Lloyd loop of scripts/kmeans_numpy.py (same quantizer and objective). Whole processes, wall
#     time and peak RSS from /usr/bin/time; speedup = numpy wall / kllm-gen wall.
#  2. Memory: a 16-matrix checkpoint (168 MB) through `quantize --solver both`: peak RSS against the
#     file and the largest tensor (tensors are memory-mapped and processed one at a time).
# numpy goes into a venv under build/ when it is missing; /usr/bin/time and python3-venv come
# from apt-get when missing, as `make tools` does for the EDA tools.
set -euo pipefail
KLLM=${KLLM:-target/release/kllm-gen}
work=build/bench_kmeans
mkdir -p "$work"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
apt_install() { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null; }
[ -x /usr/bin/time ] || apt_install time
py=build/venv/bin/python
if ! "$py" -c 'import numpy' 2>/dev/null; then
  python3 -m venv build/venv 2>/dev/null || { apt_install python3-venv; python3 -m venv build/venv; }
  build/venv/bin/pip install -q numpy
fi
small=$work/bench_11m.safetensors
big=$work/bench_168mb.safetensors
[ -f "$small" ] || "$py" scripts/kmeans_numpy.py make "$small" 1 2048x5120 1024x1024
[ -f "$big" ] || "$py" scripts/kmeans_numpy.py make "$big" 2 $(for _ in $(seq 16); do printf '1024x5120 '; done)
weights=$((2048 * 5120 + 1024 * 1024))

run() { # label, command... -> "wall rss_kb" in $work/<label>.time, stdout in $work/<label>.out
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/$label.time" "$@" >"$work/$label.out"
}
run numpy "$py" scripts/kmeans_numpy.py run "$small"
for s in lloyd exact both; do run "$s" "$KLLM" quantize --weights "$small" --solver "$s"; done
run big "$KLLM" quantize --weights "$big" --solver both

read -r np_wall np_rss <"$work/numpy.time"
echo "Same checkpoint ($weights f16 weights in 2 matrices, W4 with 8-bit centroids, one codebook per"
echo "matrix), whole processes on $(nproc) cores:"
echo
echo "| run | wall s | weights/s | peak RSS MB | speedup vs numpy |"
echo "|---|---:|---:|---:|---:|"
row() { # label, name, wall, rss
  awk -v n="$2" -v w="$3" -v r="$4" -v np="$np_wall" -v N="$weights" \
    'BEGIN { printf "| %s | %.2f | %.3g | %.0f | %.1fx |\n", n, w, N / (w > 0 ? w : 0.01), r / 1024, np / (w > 0 ? w : 0.01) }'
}
row numpy "numpy Lloyd (\`scripts/kmeans_numpy.py\`)" "$np_wall" "$np_rss"
for s in lloyd exact both; do
  read -r wall rss <"$work/$s.time"
  row "$s" "\`kllm-gen quantize --solver $s\`" "$wall" "$rss"
done
echo
echo "Per matrix, SQNR in dB (original units; numpy's Lloyd starts from weighted quantiles, kllm-gen's"
echo "from k-means++, so their Lloyd figures differ slightly; opt-Lloyd >= 0 is the exact solver's gain):"
echo
echo '```'
grep -v '^W4' "$work/both.out" | grep -v 'weights in'
sed 's/^/numpy: /' "$work/numpy.out"
echo '```'
echo
echo "Inside kllm-gen (its own timers; the rest of the wall time is process start, mapping, row maxima):"
echo
for s in lloyd exact; do echo "- \`--solver $s\`: $(grep 'weights in' "$work/$s.out")"; done
read -r big_wall big_rss <"$work/big.time"
echo
echo "Memory bound: \`quantize --solver both\` on 16 matrices of 1024x5120 (f16, $(($(stat -c %s "$big") / 1048576)) MB file,"
echo "10 MB largest tensor): peak RSS $((big_rss / 1024)) MB, wall ${big_wall} s ($(grep 'weights in' "$work/big.out" | sed 's/:.*//'))."
