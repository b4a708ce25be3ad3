// Shared Verilator testbench driver for kllm-gen blocks.
//
// A bench binds its streams, fields and cfg/idle ports with the `kllm_bind_<block>` function
// that kllm-gen generates from the module's ports (kllm_bench.h in the design folder); this
// header reads the golden file that `kllm-gen golden` wrote (format: src/golden.rs), drives every
// input stream with random gaps, every output stream with random back-pressure, compares each
// output beat with the next expected one, checks `timing` segments cycle-exactly, and prints one
// PASS or FAIL line. It fails on any mismatch, a missing or unexpected output, a timeout, a
// timing difference, a golden file whose `fields` lines differ from the ports, a golden file with
// no expected output, a cycle count the manifest predicts that no timed segment checks, and a
// cfg write while the block's `idle` is low. The process exits non-zero then, so a missing PASS
// line always means failure.
//
// Plusargs: +golden=FILE (required) +seed=N +gap=PCT +stall=PCT +timeout=CYCLES +waves=FILE.fst
//           +timed=0 (a golden file that is not a regression file, e.g. a layer's MatMuls, need
//           not contain the manifest's timed workloads)
//           +dump=FILE (every output transfer of the segments, in the golden file's `out` line
//           format, for tools that use the RTL's results, e.g. `kllm-gen eval --rtl-results`;
//           written to FILE.tmp and renamed when the run ends, whatever its verdict)
#pragma once

#include <verilated.h>
#if VM_TRACE
#include <verilated_fst_c.h>
#endif

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
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
        seed = std::stoull(plusarg(ctx.get(), "seed", "1"));
        gap_pct = std::stoi(plusarg(ctx.get(), "gap", "30"));
        stall_pct = std::stoi(plusarg(ctx.get(), "stall", "30"));
        timeout = std::stol(plusarg(ctx.get(), "timeout", "20000"));
        timed = plusarg(ctx.get(), "timed", "1") != "0";
        if (golden_path.empty()) return fail_now("no +golden=FILE given");
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
        bool ok = !aborted && mismatches == 0 && missing == 0 && unexpected == 0 &&
                  timing_bad == 0 && cfg_busy == 0 && checked == expected_total;
        std::string extra;
        if (cfg_busy) extra += " cfg_writes_while_busy=" + std::to_string(cfg_busy);
        if (aborted) extra += " (aborted)";
        printf("%s: %s golden=%s seed=%" PRIu64 " outputs=%ld/%ld mismatches=%ld unexpected=%ld "
               "missing=%ld cycles=%" PRIu64 " timing_segments=%ld timing_mismatches=%ld%s\n",
               ok ? "PASS" : "FAIL", block.c_str(), golden_path.c_str(), seed, checked,
               expected_total, mismatches, unexpected, missing, cycle, timing_ok + timing_bad,
               timing_bad, extra.c_str());
        return ok ? 0 : 1;
    }

  private:
    std::string golden_path;
    uint64_t seed = 1;
    int gap_pct = 30, stall_pct = 30;
    long timeout = 20000;
    std::mt19937_64 rng;
    std::vector<Segment> segments;
    uint64_t cycle = 0;
    long checked = 0, expected_total = 0, mismatches = 0, unexpected = 0, missing = 0;
    long timing_ok = 0, timing_bad = 0, reported = 0, cfg_busy = 0;
    bool aborted = false, timed = true;
    FILE* dump = nullptr;
    std::string dump_name;
#if VM_TRACE
    std::unique_ptr<VerilatedFstC> tfp;
#endif

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
        fprintf(dump, "out%s%s", o.name.empty() ? "" : ".", o.name.c_str());
        for (auto& f : got) fprintf(dump, " %s", f.hex().c_str());
        fputc('\n', dump);
    }
    bool close_dump() {
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
                std::string side = tok.empty() ? "" : tok[0];
                std::vector<std::string> names(tok.begin() + (tok.empty() ? 0 : 1), tok.end());
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
                for (auto& st : ins)
                    if (in && !check(st.name, st.fields)) return false;
                for (auto& st : outs)
                    if (!in && !check(st.name, st.fields)) return false;
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

    void reset() {
        for (auto& s : ins) *s.valid = 0;
        for (auto& s : outs) *s.ready = 0;
        cfg_idle();
        top->rst = 1;
        for (int i = 0; i < 5; i++) {
            eval_half(0);
            eval_half(1);
        }
        top->rst = 0;
    }

    bool chance(int pct) { return (int)(rng() % 100) < pct; }

    void compare(OutStream& o, std::deque<Beat>& exp, const Fields& got) {
        if (exp.empty()) {
            unexpected++;
            if (reported++ < 10)
                printf("  unexpected output on stream '%s' at cycle %" PRIu64 "\n", o.name.c_str(),
                       cycle);
            return;
        }
        Beat e = exp.front();
        exp.pop_front();
        checked++;
        bool same = e.f.size() == got.size();
        for (size_t i = 0; same && i < got.size(); i++) same = e.f[i] == got[i];
        if (!same) {
            mismatches++;
            if (reported++ < 10) {
                printf("  mismatch on stream '%s' (golden line %ld, cycle %" PRIu64 "):",
                       o.name.c_str(), e.line, cycle);
                for (size_t i = 0; i < got.size() && i < e.f.size(); i++)
                    printf(" [%zu] expected %s got %s", i, e.f[i].hex().c_str(),
                           got[i].hex().c_str());
                printf("\n");
            }
        }
    }

    // Waits (inputs quiet, outputs ready) until the block says it is idle.
    void wait_idle() {
        for (auto& s : ins) *s.valid = 0;
        for (auto& o : outs) *o.ready = 1;
        for (long waited = 0; idle && !idle(); waited++) {
            if (waited > timeout) {
                printf("  timeout: the block did not become idle within %ld cycles at cycle %" PRIu64 "\n",
                       timeout, cycle);
                aborted = true;
                return;
            }
            eval_half(0);
            for (auto& o : outs)
                if (*o.valid) {
                    unexpected++;
                    if (reported++ < 10) printf("  unexpected output on stream '%s' while waiting for idle\n", o.name.c_str());
                }
            eval_half(1);
            cycle++;
        }
    }

    // One table write, in a cycle of its own with every input quiet; `idle` must be high.
    void write_cfg(const CfgWrite& c) {
        for (auto& s : ins) *s.valid = 0;
        cfg_write(c.addr, c.data);
        eval_half(0);
        if (idle && !idle()) {
            cfg_busy++;
            if (reported++ < 10)
                printf("  cfg write while busy (idle low) at cycle %" PRIu64 ", golden line %ld\n", cycle, c.line);
        }
        eval_half(1);
        cycle++;
        cfg_idle();
    }

    void run_segment(Segment& seg) {
        size_t next_cfg = 0;
        if (!seg.cfg.empty() && seg.cfg[0].at == 0) wait_idle();
        if (aborted) return;
        while (next_cfg < seg.cfg.size() && seg.cfg[next_cfg].at == 0) write_cfg(seg.cfg[next_cfg++]);
        cfg_idle();
        size_t sent0 = 0;  // beats of input stream 0 taken in this segment
        bool timed = seg.timing >= 0;
        std::vector<bool> holding(ins.size(), false);
        long idle = 0;
        int64_t first_in = -1, last_out = -1;
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
            while (next_cfg < seg.cfg.size() && seg.cfg[next_cfg].at <= sent0) write_cfg(seg.cfg[next_cfg++]);
            for (size_t i = 0; i < ins.size(); i++) {
                bool v = false;
                if (!seg.in[i].empty()) {
                    // A source keeps valid up once raised, until the beat is taken.
                    v = timed || holding[i] || !chance(gap_pct);
                    if (v) ins[i].drive(seg.in[i].front().f);
                }
                *ins[i].valid = v;
                holding[i] = v;
            }
            for (auto& o : outs) *o.ready = timed || !chance(stall_pct);
            eval_half(0);
            std::vector<bool> in_fire(ins.size()), out_fire(outs.size());
            std::vector<Fields> got(outs.size());
            for (size_t i = 0; i < ins.size(); i++) in_fire[i] = *ins[i].valid && *ins[i].ready;
            for (size_t j = 0; j < outs.size(); j++) {
                out_fire[j] = *outs[j].valid && *outs[j].ready;
                if (out_fire[j]) got[j] = outs[j].sample();
            }
            eval_half(1);
            bool progress = false;
            for (size_t i = 0; i < ins.size(); i++)
                if (in_fire[i]) {
                    seg.in[i].pop_front();
                    holding[i] = false;
                    if (i == 0) sent0++;
                    progress = true;
                    if (first_in < 0) first_in = (int64_t)cycle;
                }
            for (size_t j = 0; j < outs.size(); j++)
                if (out_fire[j]) {
                    if (dump) dump_out(outs[j], got[j]);
                    compare(outs[j], seg.out[j], got[j]);
                    progress = true;
                    last_out = (int64_t)cycle;
                }
            cycle++;
            idle = progress ? 0 : idle + 1;
            if (idle > timeout) {
                for (auto& q : seg.out) missing += (long)q.size();
                printf("  timeout: no transfer for %ld cycles at cycle %" PRIu64
                       "; %ld expected outputs never came\n",
                       timeout, cycle, missing);
                aborted = true;
                return;
            }
        }
        for (auto& s : ins) *s.valid = 0;
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
    }

    // After the last segment nothing more may come out.
    void drain_check() {
        for (auto& o : outs) *o.ready = 1;
        for (int i = 0; i < 200; i++) {
            eval_half(0);
            for (auto& o : outs)
                if (*o.valid) {
                    unexpected++;
                    if (reported++ < 10)
                        printf("  unexpected output on stream '%s' after the last vector\n",
                               o.name.c_str());
                }
            eval_half(1);
            cycle++;
        }
    }
};
