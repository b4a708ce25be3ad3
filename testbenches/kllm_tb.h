// Shared Verilator testbench driver for kllm-gen blocks.
//
// A bench binds its streams, fields and cfg/idle ports with the `kllm_bind_<block>` function
// that kllm-gen generates from the module's ports (kllm_bench.h in the design folder); this
// header reads the golden file that `kllm-gen golden` wrote (format: src/golden.rs), drives the
// inputs and outputs, compares each output beat with the next expected one, checks `timing`
// segments cycle-exactly, and prints one PASS or FAIL line.
//
// Protocol robustness, in every untimed segment (all of it generic: it needs nothing but the
// generated binding, so every block's bench gets it):
// - traffic phases of random length, each one of: random gaps and back-pressure (+gap, +stall),
//   a back-to-back burst (valid every cycle, ready every cycle), a long stall (ready low for
//   100-1000 cycles while the inputs keep offering beats), 90 % back-pressure, 90 % input gaps;
// - resets in the middle of the segment (up to 3): after 1-256 accepted input beats (plus 0-7
//   cycles), rst is raised for 1-4 cycles with work in flight; no output may be valid while rst is high
//   or in the first cycle after it, and `idle` must be high then; in about half of the resets
//   the sources keep offering beats (drawn from the segment's own input) while rst is high: a
//   beat handshaken while rst is high is discarded (the reset contract, docs/reliability.md), so
//   no output may result from it (counted in reset_beats=); the bench re-writes every
//   table address the golden file wrote so far with its latest value (cfg reload; a table write
//   only stores, so the order does not matter) and runs the segment again from its
//   first beat, all of whose outputs must be right. Outputs compared before the reset are counted
//   apart (pre_reset_outputs, pre_reset_mismatches: these fail the run too), so `outputs=` and
//   `mismatches=` count each golden output once, with or without resets;
// - table writes between vectors: when `idle` is high and no input beat is being offered, an
//   entry is sometimes re-written with the value it holds (results must not change);
// - between writes, cfg_addr/cfg_wdata carry random junk of their widths (only cfg_we writes);
// - `idle` must be low in the cycle after an input beat was accepted, and high after the drain.
// The watchdog counts cycles without a *new* transfer (an accepted input beat or an expected
// output): an output beyond the expected ones is not progress, so a block that repeats an output
// forever fails it instead of hanging the bench.
//
// It fails on any mismatch, a missing or unexpected output, the watchdog, a timing difference,
// a reset error, an `idle` error, a golden file whose `fields` lines differ from the ports, a
// golden file with no expected output, a cycle count the manifest predicts that no timed segment
// checks, and a cfg write while the block's `idle` is low. The process exits non-zero then, so a
// missing PASS line always means failure.
//
// Plusargs: +golden=FILE (required) +seed=N +gap=PCT +stall=PCT +timeout=CYCLES +waves=FILE.fst
//           +timed=0 (a golden file that is not a regression file, e.g. a layer's MatMuls, need
//           not contain the manifest's timed workloads) +resets=N (at most N mid-segment resets;
//           default: up to 3 per untimed segment; 0: none) +reset_beats=0 (inputs quiet during
//           every reset) +phases=0 (only +gap/+stall traffic)
//           +rewrites=0 (no table re-writes between vectors)
//           +dump=FILE (every output transfer of the segments, in the golden file's `out` line
//           format, for tools that use the RTL's results, e.g. `kllm-gen eval --rtl-results`;
//           written to FILE.tmp and renamed when the run ends, whatever its verdict; the
//           transfers of a segment run cut short by a mid-segment reset are left out, so each
//           golden output appears once)
#pragma once

#include <verilated.h>
#if VM_TRACE
#include <verilated_fst_c.h>
#endif

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

// A bus value of any width, 32-bit words, least significant first.
struct Bits {
    std::vector<uint32_t> w;
    uint32_t word(size_t i) const { return i < w.size() ? w[i] : 0; }
    uint64_t u64() const { return (uint64_t)word(1) << 32 | word(0); }
    void trim() {
        while (!w.empty() && w.back() == 0) w.pop_back();
    }
    bool operator==(const Bits& o) const {
        Bits a = *this, b = o;
        a.trim();
        b.trim();
        return a.w == b.w;
    }
    std::string hex() const {
        Bits a = *this;
        a.trim();
        if (a.w.empty()) return "0";
        char buf[16];
        std::string s;
        snprintf(buf, sizeof buf, "%x", a.w.back());
        s += buf;
        for (size_t i = a.w.size() - 1; i-- > 0;) {
            snprintf(buf, sizeof buf, "%08x", a.w[i]);
            s += buf;
        }
        return s;
    }
    static Bits from_hex(const std::string& h) {
        Bits b;
        uint32_t cur = 0;
        int nib = 0;
        for (size_t i = h.size(); i-- > 0;) {
            char c = h[i];
            uint32_t v;
            if (c >= '0' && c <= '9') v = c - '0';
            else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
            else {
                fprintf(stderr, "FAIL: bad hex digit '%c' in '%s'\n", c, h.c_str());
                exit(2);
            }
            cur |= v << (4 * nib);
            if (++nib == 8) {
                b.w.push_back(cur);
                cur = 0;
                nib = 0;
            }
        }
        if (nib) b.w.push_back(cur);
        return b;
    }
    static Bits from_u64(uint64_t v) {
        Bits b;
        b.w = {(uint32_t)v, (uint32_t)(v >> 32)};
        return b;
    }
    // Random bits of a port `width` bits wide (nothing above the width: Verilator assumes it).
    static Bits random(std::mt19937_64& r, unsigned width) {
        Bits b;
        for (unsigned i = 0; i < width; i += 32) {
            uint32_t v = (uint32_t)r();
            if (width - i < 32) v &= (1u << (width - i)) - 1;
            b.w.push_back(v);
        }
        return b;
    }
};

// Signals of up to 64 bits are plain integers in Verilator; wider ones are VlWide<N>.
template <typename T>
inline typename std::enable_if<std::is_integral<T>::value>::type put(T& sig, const Bits& b) {
    sig = (T)b.u64();
}
template <std::size_t N>
inline void put(VlWide<N>& sig, const Bits& b) {
    for (std::size_t i = 0; i < N; i++) sig[i] = b.word(i);
}
template <typename T>
inline typename std::enable_if<std::is_integral<T>::value, Bits>::type get(const T& sig) {
    return Bits::from_u64((uint64_t)sig);
}
template <std::size_t N>
inline Bits get(const VlWide<N>& sig) {
    Bits b;
    for (std::size_t i = 0; i < N; i++) b.w.push_back(sig[i]);
    return b;
}

using Fields = std::vector<Bits>;

struct Beat {
    Fields f;
    long line;
};

// A table write; `at` input beats of stream 0 come before it in its segment (0: before the
// segment starts, when the bench first waits for `idle`).
struct CfgWrite {
    size_t at;
    uint64_t addr;
    Bits data;
    long line;
};

struct Segment {
    std::vector<CfgWrite> cfg;
    std::vector<std::deque<Beat>> in;   // per input stream
    std::vector<std::deque<Beat>> out;  // per output stream
    long timing = -1;
    long line = 0;  // golden line where the segment starts
};

struct InStream {
    std::string name;
    uint8_t* valid;
    const uint8_t* ready;
    std::vector<std::string> fields;
    std::function<void(const Fields&)> drive;
};

struct OutStream {
    std::string name;
    const uint8_t* valid;
    uint8_t* ready;
    std::vector<std::string> fields;
    std::function<Fields()> sample;
};

inline std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
}

inline std::string plusarg(VerilatedContext* ctx, const char* name, const char* dflt) {
    const char* v = ctx->commandArgsPlusMatch(name);
    std::string key = std::string("+") + name + "=";
    if (v && *v && !strncmp(v, key.c_str(), key.size())) return std::string(v + key.size());
    return dflt;
}

template <class Top>
class Bench {
  public:
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Top> top;
    std::string block;
    std::vector<InStream> ins;
    std::vector<OutStream> outs;
    std::function<void(uint64_t, const Bits&)> cfg_write;  // drive one cfg write (none: no cfg port)
    std::function<void()> cfg_idle = []() {};              // deassert cfg_we
    std::function<void(std::mt19937_64&)> cfg_junk;         // random cfg_addr/cfg_wdata (we low)
    std::function<bool()> idle;                             // the block's idle port
    std::vector<uint64_t> predicted;                        // the manifest's timed workloads

    Bench(int argc, char** argv, const char* block_name) : block(block_name) {
        ctx.reset(new VerilatedContext);
        ctx->commandArgs(argc, argv);
        top.reset(new Top{ctx.get()});
    }

    void add_in(const std::string& name, uint8_t* valid, const uint8_t* ready,
                std::vector<std::string> fields, std::function<void(const Fields&)> drive) {
        ins.push_back({name, valid, ready, fields, drive});
    }
    void add_out(const std::string& name, const uint8_t* valid, uint8_t* ready,
                 std::vector<std::string> fields, std::function<Fields()> sample) {
        outs.push_back({name, valid, ready, fields, sample});
    }

    int run() {
        golden_path = plusarg(ctx.get(), "golden", "");
        if (golden_path.empty()) return fail_now("no +golden=FILE given");
        if (!num_arg("seed", "1", 0, -1, seed) || !num_arg("gap", "30", 0, 100, gap_pct) ||
            !num_arg("stall", "30", 0, 100, stall_pct) || !num_arg("timeout", "20000", 100, -1, timeout) ||
            !num_arg("resets", "-1", -1, -1, resets_max))
            return 2;
        timed = plusarg(ctx.get(), "timed", "1") != "0";
        phases = plusarg(ctx.get(), "phases", "1") != "0";
        rewrites_on = plusarg(ctx.get(), "rewrites", "1") != "0";
        reset_beats_on = plusarg(ctx.get(), "reset_beats", "1") != "0";
        rng.seed(seed);
#if VM_TRACE
        std::string waves = plusarg(ctx.get(), "waves", "");
        if (!waves.empty()) {
            ctx->traceEverOn(true);
            tfp.reset(new VerilatedFstC);
            top->trace(tfp.get(), 99);
            tfp->open(waves.c_str());
        }
#endif
        if (!load()) return 2;
        std::string dump_path = plusarg(ctx.get(), "dump", "");
        if (!dump_path.empty() && !open_dump(dump_path)) return fail_now("cannot write dump file " + dump_path + ".tmp");
        reset();
        for (size_t s = 0; s < segments.size() && !aborted; s++) run_segment(segments[s]);
        if (!aborted) drain_check();
#if VM_TRACE
        if (tfp) tfp->close();
#endif
        top->final();
        if (dump && !close_dump()) return fail_now("cannot write dump file " + dump_name);
        bool ok = !aborted && mismatches == 0 && missing == 0 && unexpected == 0 && timing_bad == 0 &&
                  cfg_busy == 0 && reset_errors == 0 && idle_errors == 0 && pre_reset_mismatches == 0 &&
                  checked == expected_total;
        std::string extra;
        if (cfg_busy) extra += " cfg_writes_while_busy=" + std::to_string(cfg_busy);
        if (watchdog) extra += " (watchdog)";
        else if (aborted) extra += " (aborted)";
        printf("%s: %s golden=%s seed=%" PRIu64 " outputs=%ld/%ld mismatches=%ld unexpected=%ld "
               "missing=%ld cycles=%" PRIu64 " timing_segments=%ld timing_mismatches=%ld resets=%ld "
               "reset_beats=%ld pre_reset_outputs=%ld pre_reset_mismatches=%ld reset_errors=%ld idle_checks=%ld "
               "idle_errors=%ld cfg_rewrites=%ld "
               "long_stalls=%ld bursts=%ld%s\n",
               ok ? "PASS" : "FAIL", block.c_str(), golden_path.c_str(), seed, checked, expected_total,
               mismatches, unexpected, missing, cycle, timing_ok + timing_bad, timing_bad, resets, reset_beats,
               pre_reset_checked, pre_reset_mismatches, reset_errors, idle_checks, idle_errors, rewrites, long_stalls, bursts,
               extra.c_str());
        return ok ? 0 : 1;
    }

  private:
    std::string golden_path;
    uint64_t seed = 1;
    long gap_pct = 30, stall_pct = 30;
    long timeout = 20000, resets_max = -1;
    std::mt19937_64 rng;
    std::vector<Segment> segments;
    uint64_t cycle = 0;
    long checked = 0, expected_total = 0, mismatches = 0, unexpected = 0, missing = 0;
    long timing_ok = 0, timing_bad = 0, reported = 0, cfg_busy = 0;
    long resets = 0, sweep_resets = 0, reset_beats = 0, pre_reset_checked = 0, pre_reset_mismatches = 0, reset_errors = 0;
    long idle_checks = 0, idle_errors = 0;
    std::set<long> busy_lines;  // golden lines of table writes made while busy (once each)
    long rewrites = 0, long_stalls = 0, bursts = 0;
    bool aborted = false, watchdog = false, timed = true, phases = true, rewrites_on = true, reset_beats_on = true;
    std::map<uint64_t, CfgWrite> table;      // the golden file's latest write to each address
    std::vector<uint64_t> table_addrs;       // the addresses written so far
    FILE* dump = nullptr;
    std::string dump_name;
    std::string dump_pending;  // this segment run's dump lines, written when it is not cut short
#if VM_TRACE
    std::unique_ptr<VerilatedFstC> tfp;
#endif

    // A numeric plusarg within [lo, hi] (hi < 0: no upper bound); one FAIL line otherwise.
    template <class T>
    bool num_arg(const char* name, const char* dflt, long lo, long hi, T& out) {
        std::string v = plusarg(ctx.get(), name, dflt);
        char* end = nullptr;
        long long x = strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end || x < lo || (hi >= 0 && x > hi)) {
            fail_now("plusarg +" + std::string(name) + "=" + v + " is out of range (allowed " +
                     std::to_string(lo) + ".." + (hi >= 0 ? std::to_string(hi) : std::string("")) + ")");
            return false;
        }
        out = (T)x;
        return true;
    }

    // The dump starts like a golden file (header, the output fields), then one `out` line per
    // output transfer.
    bool open_dump(const std::string& path) {
        dump_name = path;
        dump = fopen((path + ".tmp").c_str(), "w");
        if (!dump) return false;
        fprintf(dump, "# kllm-gen rtl dump block=%s golden=%s seed=%" PRIu64 "\nfields out: %s\n", block.c_str(),
                golden_path.c_str(), seed, outs.empty() ? "" : join(outs[0].fields).c_str());
        return true;
    }
    void dump_out(const OutStream& o, const Fields& got) {
        dump_pending += "out";
        if (!o.name.empty()) dump_pending += "." + o.name;
        for (auto& f : got) dump_pending += " " + f.hex();
        dump_pending += "\n";
    }
    // The segment run's lines go to the file (`keep`), or are dropped when a reset cut it short.
    void dump_flush(bool keep) {
        if (dump && keep) fputs(dump_pending.c_str(), dump);
        dump_pending.clear();
    }
    bool close_dump() {
        dump_flush(true);
        bool ok = fclose(dump) == 0;
        dump = nullptr;
        return ok && rename((dump_name + ".tmp").c_str(), dump_name.c_str()) == 0;
    }

    int fail_now(const std::string& why) {
        printf("FAIL: %s %s\n", block.c_str(), why.c_str());
        return 2;
    }

    int stream_index(const std::vector<std::string>& names, const std::string& n) {
        for (size_t i = 0; i < names.size(); i++)
            if (names[i] == n) return (int)i;
        return -1;
    }

    bool load() {
        std::ifstream f(golden_path);
        if (!f) {
            fail_now("cannot open golden file " + golden_path);
            return false;
        }
        std::vector<std::string> in_names, out_names;
        for (auto& s : ins) in_names.push_back(s.name);
        for (auto& s : outs) out_names.push_back(s.name);
        auto fresh = [&]() {
            Segment s;
            s.in.resize(ins.size());
            s.out.resize(outs.size());
            return s;
        };
        Segment cur = fresh();
        cur.line = 1;
        bool ended = false;
        std::string line;
        long lineno = 0;
        long declared_end = -1;
        while (std::getline(f, line)) {
            lineno++;
            if (line.empty() || line[0] == '#') continue;
            std::istringstream is(line);
            std::string cmd;
            is >> cmd;
            std::vector<std::string> tok;
            for (std::string t; is >> t;) tok.push_back(t);
            auto stream_of = [&](const std::string& c, const char* kind,
                                 const std::vector<std::string>& names) -> int {
                std::string n = c.size() > strlen(kind) ? c.substr(strlen(kind) + 1) : "";
                int i = stream_index(names, n);
                if (i < 0) {
                    fprintf(stderr, "FAIL: %s line %ld: unknown stream '%s'\n", golden_path.c_str(),
                            lineno, c.c_str());
                }
                return i;
            };
            if (cmd == "fields") {
                // `fields in: a b c` / `fields out: y`: every stream of that side must carry
                // exactly these fields, in this order.
                // `fields in.<stream>: ...` names the fields of one stream only (blocks whose
                // streams carry different fields).
                std::string side = tok.empty() ? "" : tok[0];
                std::vector<std::string> names(tok.begin() + (tok.empty() ? 0 : 1), tok.end());
                std::string only;
                bool named = false;
                for (const char* pre : {"in.", "out."}) {
                    size_t n = strlen(pre);
                    if (side.size() > n + 1 && side.compare(0, n, pre) == 0 && side.back() == ':') {
                        only = side.substr(n, side.size() - n - 1);
                        side = std::string(pre).substr(0, n - 1) + ":";
                        named = true;
                    }
                }
                bool in = side == "in:";
                if (!in && side != "out:") {
                    fprintf(stderr, "FAIL: %s line %ld: bad fields line\n", golden_path.c_str(), lineno);
                    return false;
                }
                (in ? seen_in_fields : seen_out_fields) = true;
                auto check = [&](const std::string& stream, const std::vector<std::string>& want) {
                    if (want == names) return true;
                    fail_now("golden file line " + std::to_string(lineno) + " names fields '" + join(names) +
                             "' but stream '" + stream + "' of the module has '" + join(want) + "'");
                    return false;
                };
                if (named && stream_index(in ? in_names : out_names, only) < 0) {
                    fail_now("golden file line " + std::to_string(lineno) + " names fields of stream '" + only +
                             "', which the module does not have");
                    return false;
                }
                for (auto& st : ins)
                    if (in && (!named || st.name == only) && !check(st.name, st.fields)) return false;
                for (auto& st : outs)
                    if (!in && (!named || st.name == only) && !check(st.name, st.fields)) return false;
                continue;
            }
            if (cmd == "cfg") {
                if (!cfg_write) {
                    fail_now("golden file writes cfg (line " + std::to_string(lineno) +
                             ") but the block has no cfg port");
                    return false;
                }
                size_t at = ins.empty() ? 0 : cur.in[0].size();
                cur.cfg.push_back({at, std::stoull(tok.at(0), nullptr, 16), Bits::from_hex(tok.at(1)), lineno});
            } else if (cmd.rfind("in", 0) == 0 && (cmd.size() == 2 || cmd[2] == '.')) {
                int i = stream_of(cmd, "in", in_names);
                if (i < 0) return false;
                Beat b{{}, lineno};
                for (auto& t : tok) b.f.push_back(Bits::from_hex(t));
                cur.in[i].push_back(b);
            } else if (cmd.rfind("out", 0) == 0 && (cmd.size() == 3 || cmd[3] == '.')) {
                int i = stream_of(cmd, "out", out_names);
                if (i < 0) return false;
                Beat b{{}, lineno};
                for (auto& t : tok) b.f.push_back(Bits::from_hex(t));
                cur.out[i].push_back(b);
                expected_total++;
            } else if (cmd == "timing") {
                cur.timing = std::stol(tok.at(0));
            } else if (cmd == "sync") {
                segments.push_back(cur);
                cur = fresh();
                cur.line = lineno + 1;
            } else if (cmd == "end") {
                declared_end = std::stol(tok.at(0));
                ended = true;
            } else {
                fprintf(stderr, "FAIL: %s line %ld: unknown command '%s'\n", golden_path.c_str(),
                        lineno, cmd.c_str());
                return false;
            }
        }
        segments.push_back(cur);
        if (!ended || declared_end != expected_total) {
            fail_now("golden file is truncated (no matching 'end' line)");
            return false;
        }
        if (!seen_in_fields || !seen_out_fields) {
            fail_now("golden file has no 'fields in:' and 'fields out:' lines");
            return false;
        }
        if (expected_total == 0) {
            fail_now("golden file has no expected output: it could not fail");
            return false;
        }
        for (uint64_t p : predicted) {
            bool found = false;
            for (auto& sg : segments) found |= sg.timing == (long)p;
            if (timed && !found) {
                fail_now("the manifest predicts a timed workload of " + std::to_string(p) +
                         " cycles that the golden file does not contain");
                return false;
            }
        }
        return true;
    }
    bool seen_in_fields = false, seen_out_fields = false;

    void eval_half(int clk) {
        top->clk = clk;
        top->eval();
#if VM_TRACE
        if (tfp) tfp->dump(ctx->time());
#endif
        ctx->timeInc(1);
    }

    // cfg_we low; address and data random (a block that writes without cfg_we fails).
    void quiet_cfg() {
        cfg_idle();
        if (cfg_junk) cfg_junk(rng);
    }

    void reset() {
        for (auto& s : ins) *s.valid = 0;
        for (auto& s : outs) *s.ready = 0;
        quiet_cfg();
        top->rst = 1;
        for (int i = 0; i < 5; i++) {
            eval_half(0);
            eval_half(1);
        }
        top->rst = 0;
    }

    bool chance(long pct) { return (long)(rng() % 100) < pct; }

    void note(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        if (reported++ >= 10) return;
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }

    // Compares one output beat; false if no output was expected (then it is not progress).
    bool compare(OutStream& o, std::deque<Beat>& exp, const Fields& got, long& seg_checked,
                 long& seg_mismatches) {
        if (exp.empty()) {
            unexpected++;
            note("  unexpected output on stream '%s' at cycle %" PRIu64 "\n", o.name.c_str(), cycle);
            return false;
        }
        Beat e = exp.front();
        exp.pop_front();
        checked++;
        seg_checked++;
        bool same = e.f.size() == got.size();
        for (size_t i = 0; same && i < got.size(); i++) same = e.f[i] == got[i];
        if (!same) {
            mismatches++;
            seg_mismatches++;
            if (reported++ < 10) {
                printf("  mismatch on stream '%s' (golden line %ld, cycle %" PRIu64 "):", o.name.c_str(),
                       e.line, cycle);
                for (size_t i = 0; i < got.size() && i < e.f.size(); i++)
                    printf(" [%zu] expected %s got %s", i, e.f[i].hex().c_str(), got[i].hex().c_str());
                printf("\n");
            }
        }
        return true;
    }

    // Waits (inputs quiet, outputs ready) until the block says it is idle.
    void wait_idle() {
        for (auto& s : ins) *s.valid = 0;
        for (auto& o : outs) *o.ready = 1;
        for (long waited = 0; idle && !idle(); waited++) {
            if (waited > timeout) {
                printf("  watchdog: the block did not become idle within %ld cycles at cycle %" PRIu64 "\n",
                       timeout, cycle);
                aborted = watchdog = true;
                return;
            }
            quiet_cfg();
            eval_half(0);
            for (auto& o : outs)
                if (*o.valid) {
                    unexpected++;
                    note("  unexpected output on stream '%s' while waiting for idle\n", o.name.c_str());
                }
            eval_half(1);
            cycle++;
        }
    }

    // One table write, in a cycle of its own with every input quiet and every output stalled;
    // `idle` must be high. A write from the golden file becomes what a reset reloads.
    void write_cfg(const CfgWrite& c, bool from_golden) {
        for (auto& s : ins) *s.valid = 0;
        for (auto& o : outs) *o.ready = 0;
        cfg_write(c.addr, c.data);
        eval_half(0);
        if (idle && !idle() && busy_lines.insert(c.line).second) {
            cfg_busy++;
            note("  cfg write while busy (idle low) at cycle %" PRIu64 ", golden line %ld\n", cycle, c.line);
        }
        eval_half(1);
        cycle++;
        quiet_cfg();
        if (from_golden) {
            if (!table.count(c.addr)) table_addrs.push_back(c.addr);
            table[c.addr] = c;
        }
    }

    // A reset with work in flight, then the tables reloaded: the block must come back clean.
    // In about half of the resets every source keeps offering beats while rst is high (beats of
    // the segment's own input, so every field is in range, `last` included): a beat handshaken
    // then must be discarded, i.e. no output results from it and it leaves nothing behind (the
    // checks below, then the rerun of the segment, which must match the golden file exactly).
    void mid_reset(const Segment& orig, bool one_cycle) {
        resets++;
        bool offer = reset_beats_on && resets % 2 == 1;
        for (auto& s : ins) *s.valid = 0;
        for (auto& o : outs) *o.ready = 0;
        quiet_cfg();
        top->rst = 1;
        // Half of the resets last the one cycle the contract promises is enough (a valid bit
        // whose own reset is missing is cleared by its reset predecessor only from the 2nd cycle).
        int n = (one_cycle || chance(50)) ? 1 : 2 + (int)(rng() % 3);
        for (int i = 0; i <= n; i++) {
            if (i == n) top->rst = 0;
            for (size_t s = 0; s < ins.size(); s++) {
                bool v = offer && i < n && !orig.in[s].empty();
                if (v) ins[s].drive(orig.in[s][rng() % orig.in[s].size()].f);
                *ins[s].valid = v;
            }
            eval_half(0);
            // Handshakes on an edge with rst high: dropped beats.
            for (auto& s : ins)
                if (i < n && *s.valid && *s.ready) reset_beats++;
            // The first edge with rst high clears the block: from then on (and in the first cycle
            // after rst falls) no output may be valid, and the block has nothing in flight.
            if (i > 0) {
                for (auto& o : outs)
                    if (*o.valid) {
                        reset_errors++;
                        note("  reset: stream '%s' valid %s at cycle %" PRIu64 "\n", o.name.c_str(),
                             i < n ? "while rst is high" : "in the first cycle after reset", cycle);
                    }
                if (i == n && idle && !idle()) {
                    reset_errors++;
                    note("  reset: idle low in the first cycle after reset (cycle %" PRIu64 ")\n", cycle);
                }
            }
            eval_half(1);
            cycle++;
        }
        for (auto& s : ins) *s.valid = 0;
        // cfg reload: every address written so far gets its latest value again (a table write
        // only stores: the blocks have no write side effects).
        for (auto& kv : table) write_cfg(kv.second, false);
    }

    // One traffic phase of an untimed segment.
    struct Phase {
        long gap, stall;
        bool ready_low;
        long left;
    };
    Phase next_phase() {
        long r = (long)(rng() % 100);
        long len = 16 + (long)(rng() % 300);
        if (!phases || r < 40) return {gap_pct, stall_pct, false, len};
        if (r < 60) {
            bursts++;
            return {0, 0, false, len};
        }
        if (r < 70) {
            long_stalls++;
            long stall = std::min<long>(100 + (long)(rng() % 901), timeout / 4);
            return {0, 0, true, stall};
        }
        if (r < 85) return {0, 90, false, len};
        return {90, 0, false, len};
    }

    void run_segment(const Segment& orig) {
        // Up to 3 resets in the middle of an untimed segment, each after `reset_at` accepted
        // beats of input stream 0 and `delay` more cycles; after each one the segment runs again
        // from its first beat, and its last run has no reset. Where input stream 0 has a `last`
        // field, resets 2 and 3 of every 4 come 0-15 cycles after a beat with last = 1 was taken,
        // while that vector's result is being computed (deep in the pipeline, past the input
        // stages that a reset at a random beat mostly catches).
        size_t n0 = ins.empty() ? 0 : orig.in[0].size();
        size_t window = std::min<size_t>(n0, 256);
        std::vector<long> after_last;  // beat counts right after a last beat, within the window
        auto f = ins.empty() ? ins.end() : ins.begin();
        long li = -1;
        if (f != ins.end())
            for (size_t k = 0; k < f->fields.size(); k++)
                if (f->fields[k] == "last") li = (long)k;
        if (li >= 0)
            for (size_t b = 0; b < window; b++)
                if (!(orig.in[0][b].f.at(li) == Bits::from_u64(0))) after_last.push_back((long)b + 1);
        // Where the segment's first vector is short (at most 1/8 of its beats, so the reruns cost
        // little), 4 more resets of one cycle each come right after that vector's last beat, at
        // delays that walk the 16 cycles after it over the run (0, 2, .. 14, then 1, 3, .. 15): a
        // pipeline stage that holds the finished vector at a given cycle is hit by one of them.
        int sweeps = (!after_last.empty() && (size_t)after_last[0] * 8 <= n0) ? 4 : 0;
        for (int tries = 0;; tries++) {
            long reset_at = -1, delay = 0;
            bool one_cycle = false;
            if (orig.timing < 0 && n0 > 0 && tries < 3 + sweeps && (resets_max < 0 || resets < resets_max)) {
                if (tries >= 3) {
                    reset_at = after_last[0];
                    delay = (2 * sweep_resets + (sweep_resets / 8) % 2) % 16;
                    sweep_resets++;
                    one_cycle = true;
                } else if (resets % 4 >= 1 && resets % 4 <= 2 && !after_last.empty()) {
                    reset_at = after_last[rng() % after_last.size()];
                    delay = (long)(rng() % 16);
                } else {
                    reset_at = 1 + (long)(rng() % window);
                    delay = (long)(rng() % 8);
                }
            }
            Segment seg = orig;
            if (!attempt(orig, seg, reset_at, delay, one_cycle) || aborted) return;
        }
    }

    // Runs a segment; true if it was cut short by a reset (the caller runs it again).
    bool attempt(const Segment& orig, Segment& seg, long reset_at, long delay, bool one_cycle) {
        size_t next_cfg = 0;
        if (!seg.cfg.empty() && seg.cfg[0].at == 0) wait_idle();
        if (aborted) return false;
        while (next_cfg < seg.cfg.size() && seg.cfg[next_cfg].at == 0) write_cfg(seg.cfg[next_cfg++], true);
        quiet_cfg();
        size_t sent0 = 0;  // beats of input stream 0 taken in this segment
        bool timed = seg.timing >= 0;
        std::vector<bool> holding(ins.size(), false);
        long quiet = 0, seg_checked = 0, seg_mismatches = 0, seg_rewrites = 0;
        int64_t first_in = -1, last_out = -1;
        bool after_in = false;
        Phase ph{gap_pct, stall_pct, false, 0};
        auto pending = [&]() {
            for (auto& q : seg.in)
                if (!q.empty()) return true;
            for (auto& q : seg.out)
                if (!q.empty()) return true;
            return false;
        };
        while (pending()) {
            // A write the golden file places after some of this segment's beats happens now,
            // while the block is busy: the bench must report it.
            while (next_cfg < seg.cfg.size() && seg.cfg[next_cfg].at <= sent0)
                write_cfg(seg.cfg[next_cfg++], true);
            bool offering = false;
            for (size_t i = 0; i < ins.size(); i++) offering |= holding[i];
            if (!timed) {
                if (--ph.left <= 0) ph = next_phase();
                // Between vectors (idle, no beat offered) an entry is re-written with its value.
                if (rewrites_on && cfg_write && idle && !offering && !after_in && !table_addrs.empty() &&
                    seg_rewrites < 4 && chance(2) && idle()) {
                    write_cfg(table[table_addrs[rng() % table_addrs.size()]], false);
                    rewrites++;
                    seg_rewrites++;
                }
            }
            for (size_t i = 0; i < ins.size(); i++) {
                bool v = false;
                if (!seg.in[i].empty()) {
                    // A source keeps valid up once raised, until the beat is taken.
                    v = timed || holding[i] || !chance(ph.gap);
                    if (v) ins[i].drive(seg.in[i].front().f);
                }
                *ins[i].valid = v;
                holding[i] = v;
            }
            for (auto& o : outs) *o.ready = timed || (!ph.ready_low && !chance(ph.stall));
            quiet_cfg();
            eval_half(0);
            // A beat accepted on the last edge is in flight: the block must not claim idle.
            if (after_in && idle) {
                idle_checks++;
                if (idle()) {
                    idle_errors++;
                    note("  idle is high at cycle %" PRIu64 ", the cycle after an input beat was accepted\n", cycle);
                }
            }
            std::vector<bool> in_fire(ins.size()), out_fire(outs.size());
            std::vector<Fields> got(outs.size());
            for (size_t i = 0; i < ins.size(); i++) in_fire[i] = *ins[i].valid && *ins[i].ready;
            for (size_t j = 0; j < outs.size(); j++) {
                out_fire[j] = *outs[j].valid && *outs[j].ready;
                if (out_fire[j]) got[j] = outs[j].sample();
            }
            eval_half(1);
            bool progress = false;
            after_in = false;
            for (size_t i = 0; i < ins.size(); i++)
                if (in_fire[i]) {
                    seg.in[i].pop_front();
                    holding[i] = false;
                    if (i == 0) sent0++;
                    progress = after_in = true;
                    if (first_in < 0) first_in = (int64_t)cycle;
                }
            for (size_t j = 0; j < outs.size(); j++)
                if (out_fire[j]) {
                    if (dump) dump_out(outs[j], got[j]);
                    // Only an expected output is progress: repeats beyond them are not.
                    progress |= compare(outs[j], seg.out[j], got[j], seg_checked, seg_mismatches);
                    last_out = (int64_t)cycle;
                }
            cycle++;
            quiet = progress ? 0 : quiet + 1;
            if (quiet > timeout || unexpected > 1000) {
                size_t beats = 0;
                long outs_left = 0;
                for (auto& q : seg.in) beats += q.size();
                for (auto& q : seg.out) outs_left += (long)q.size();
                missing += outs_left;
                if (quiet > timeout)
                    printf("  watchdog: no new transfer (input beat or expected output) for %ld cycles, at "
                           "cycle %" PRIu64 " in the segment from golden line %ld: %zu input beats not "
                           "taken, %ld expected outputs not seen\n",
                           timeout, cycle, seg.line, beats, outs_left);
                else
                    printf("  watchdog: more than 1000 unexpected outputs, at cycle %" PRIu64
                           " in the segment from golden line %ld\n", cycle, seg.line);
                aborted = watchdog = true;
                return false;
            }
            if (reset_at >= 0 && (long)sent0 >= reset_at && delay-- <= 0) {
                // Outputs compared so far stay compared (a mismatch still fails) but count apart:
                // the whole segment runs again.
                checked -= seg_checked;
                pre_reset_checked += seg_checked;
                mismatches -= seg_mismatches;
                pre_reset_mismatches += seg_mismatches;
                dump_flush(false);
                for (auto& s : ins) *s.valid = 0;
                mid_reset(orig, one_cycle);
                return true;
            }
        }
        for (auto& s : ins) *s.valid = 0;
        dump_flush(true);
        if (timed) {
            long measured = (first_in >= 0 && last_out >= 0) ? (long)(last_out - first_in + 1) : -1;
            if (measured == seg.timing) {
                timing_ok++;
            } else {
                timing_bad++;
            }
            printf("  timing: predicted %ld cycles, measured %ld%s\n", seg.timing, measured,
                   measured == seg.timing ? "" : "  <-- MISMATCH");
        }
        return false;
    }

    // After the last segment nothing more may come out, and the block must say it is idle.
    void drain_check() {
        for (auto& o : outs) *o.ready = 1;
        for (auto& s : ins) *s.valid = 0;
        for (int i = 0; i < 200; i++) {
            quiet_cfg();
            eval_half(0);
            for (auto& o : outs)
                if (*o.valid) {
                    unexpected++;
                    note("  unexpected output on stream '%s' after the last vector\n", o.name.c_str());
                }
            if (i == 199 && idle) {
                idle_checks++;
                if (!idle()) {
                    idle_errors++;
                    note("  idle is low 200 cycles after the last output\n");
                }
            }
            eval_half(1);
            cycle++;
        }
    }
};
