# Sourced by the negative-control scripts (testbenches/negative_control*.sh, scripts/tile_dq.sh).
# flip_hex WORD: WORD with its lowest bit flipped, same digit count, for a hex word of any width
# (only the last digit changes, so words wider than the shell's 64-bit arithmetic work too).
flip_hex() {
  printf '%s%x' "${1:0:${#1}-1}" $(( 16#${1: -1} ^ 1 ))
}
