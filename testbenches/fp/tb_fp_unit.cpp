// Standalone Verilator bench for one combinational float-mode unit (src/fp_rtl.rs).
//
// Reads a vector file written from the Rust reference by tests/fp.rs (write_fp_bench_files):
//   # <module> <input bits> <output bits> <count>
//   <input hex> <expected output hex>        (one line per vector, two's complement)
// drives every input, compares the output bit for bit, and prints one PASS or FAIL line. The
// process exits non-zero on any mismatch, a malformed or truncated file, or a value wider than
// its port, so a missing PASS line always means failure.
//
// Built by testbenches/fp/run.sh with `--prefix Vdut` and -DIN_PORT=<name> -DOUT_PORT=<name>
// (and -DIN2_PORT=<name> for a two-operand unit, whose vector input is the two operands
// concatenated), so one source serves every unit whatever its port widths (narrow ports are integers in
// Verilator, ports over 64 bits are VlWide word arrays; put/take handle both).
#include "Vdut.h"
#include <verilated.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

using Words = std::vector<uint32_t>;

static bool parse_hex(const std::string& h, unsigned width, Words& out) {
    out.assign((width + 31) / 32, 0);
    unsigned bit = 0;
    for (size_t i = h.size(); i-- > 0; bit += 4) {
        char c = h[i];
        uint32_t v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else return false;
        for (unsigned b = 0; b < 4; ++b) {
            if (!(v >> b & 1)) continue;
            if (bit + b >= width) return false;  // wider than the port
            out[(bit + b) / 32] |= 1u << ((bit + b) % 32);
        }
    }
    return !h.empty();
}

static std::string hex(const Words& w) {
    std::string s;
    char buf[16];
    bool lead = true;
    for (size_t i = w.size(); i-- > 0;) {
        if (lead && w[i] == 0 && i > 0) continue;
        snprintf(buf, sizeof buf, lead ? "%x" : "%08x", w[i]);
        s += buf;
        lead = false;
    }
    return s;
}

template <typename T>
static void put(T& port, const Words& w) {
    if constexpr (std::is_integral_v<T>) {
        uint64_t v = w[0];
        if (w.size() > 1) v |= (uint64_t)w[1] << 32;
        port = (T)v;
    } else {
        for (size_t i = 0; i < sizeof(port) / sizeof(port[0]); ++i) port[i] = i < w.size() ? w[i] : 0;
    }
}

template <typename T>
static Words take(const T& port, unsigned width) {
    Words w((width + 31) / 32, 0);
    if constexpr (std::is_integral_v<T>) {
        uint64_t v = port;
        w[0] = (uint32_t)v;
        if (w.size() > 1) w[1] = (uint32_t)(v >> 32);
    } else {
        for (size_t i = 0; i < w.size(); ++i) w[i] = port[i];
    }
    if (width % 32) w.back() &= (1u << (width % 32)) - 1;
    return w;
}

int main(int argc, char** argv) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "FAIL: usage: %s VECTOR_FILE\n", argv[0]);
        return 2;
    }
    std::ifstream in(argv[1]);
    std::string line, hash, name;
    unsigned in_bits = 0, out_bits = 0;
    long count = -1;
    if (!std::getline(in, line) || !(std::istringstream(line) >> hash >> name >> in_bits >> out_bits >> count) ||
        hash != "#") {
        printf("FAIL %s: no '# module in_bits out_bits count' header\n", argv[1]);
        return 1;
    }
    auto dut = std::make_unique<Vdut>(ctx.get());
    long n = 0, bad = 0;
    std::string first;
    Words a, want;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string ih, oh;
        if (!(ls >> ih >> oh) || !parse_hex(ih, in_bits, a) || !parse_hex(oh, out_bits, want)) {
            printf("FAIL %s: malformed vector line %ld: '%s'\n", name.c_str(), n + 1, line.c_str());
            return 1;
        }
#ifdef IN2_PORT
        // Two operands of in_bits / 2 each (at most 32), IN_PORT in the upper half.
        unsigned h = in_bits / 2;
        uint64_t v = a[0] | (a.size() > 1 ? (uint64_t)a[1] << 32 : 0);
        put(dut->IN_PORT, Words{(uint32_t)(v >> h)});
        put(dut->IN2_PORT, Words{(uint32_t)(v & ((1ull << h) - 1))});
#else
        put(dut->IN_PORT, a);
#endif
        dut->eval();
        Words got = take(dut->OUT_PORT, out_bits);
        if (got != want) {
            if (bad == 0) first = "in=" + ih + " got=" + hex(got) + " want=" + oh;
            ++bad;
        }
        ++n;
    }
    dut->final();
    if (n != count) {
        printf("FAIL %s: %ld vectors in the file, the header says %ld\n", name.c_str(), n, count);
        return 1;
    }
    if (bad) {
        printf("FAIL %s: %ld of %ld vectors mismatch; first: %s\n", name.c_str(), bad, n, first.c_str());
        return 1;
    }
    printf("PASS %s: %ld vectors, 0 mismatches\n", name.c_str(), n);
    return 0;
}
