#!/usr/bin/env python3
"""RTL mutation testing: does each block family's regression notice a wrong Verilog?

For every block family, the generated design folder is copied once per mutant and one small
change is made to one line of a module in that block's hierarchy:

  arith   `a + b` <-> `a - b`
  rel     `<` <-> `<=`, `>` <-> `>=`, `==` <-> `!=`
  logic   `a & b` <-> `a | b`
  const   a sized constant off by one (`4'd3` -> `4'd4`, wrapping at the width)
  slice   a part-select or bit-select shifted by one bit (`x[7:4]` -> `x[6:3]`, `x[3]` -> `x[2]`,
          `x[e +: W]` -> `x[(e) + 1 +: W]`)
  enable  a register's enable (an `if` condition) inverted
  invert  a signal inverted: a `~` removed, or added to a right-hand side that is one signal
  reset   a register's reset removed: one assignment in an `if (rst) begin ... end` block
          deleted, or `r <= rst ? 0 : x` made `r <= x` (drawn apart: --resets-per-family, with
          their own random stream, so adding them leaves the other mutants of a seed unchanged)

Only expressions are mutated (right-hand sides, conditions, port connections), never
declarations, parameters or generate-loop headers, so a mutant is a design that could have
been emitted by a buggy generator. Sites are found deterministically, and the mutants are drawn
from them with `random.Random(seed)`, round-robin over the six kinds so each kind is present.

Each mutant runs the family's own Verilator bench (testbenches/run_block.sh) against a short
golden file from `kllm-gen golden`. A mutant is
  killed     the bench failed (FAIL line or non-zero exit, including its watchdog),
  invalid    Verilator could not build it (not counted: the generator's lint would reject it),
  survived   the bench passed.
A mutant the Verilator bench passes gets a second opinion from the Icarus bench
(testbenches/icarus/), which also checks the `idle` output and drives junk on cfg_* between
table writes, run once as usual and once with 90 % back-pressure and no input gaps; if either
fails, the mutant is killed (by Icarus). A survivor of both must be listed in scripts/mutants_equivalent.txt with the sentence that shows it is
equivalent; any other survivor fails the run. The report goes to reports/mutants.md.

usage: scripts/mutants.py [--families a,b] [--per-family N] [--seed S] [--vectors V] [--jobs J] [--resume]
Families can run in separate processes (--families); the report gathers every family's
results.json in the work folder that used the same seed, count and vectors. The run is
resumable: each mutant's verdict is kept in its folder (m000/result.json) and --resume reuses
the verdicts of a family whose design, benches and settings are unchanged, so an interrupted run
(or one cut into chunks of families on a busy machine) continues where it stopped.

The one-off models are compiled without C++ optimisation (CXX_OPT=-O0: about half the build
time, the bench then runs a few times slower, still seconds at 300 vectors) and through ccache
when it is installed (the Verilator runtime and the bench, identical in every mutant, are then
compiled once).
"""

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import random
import resource
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# family -> the config whose design is mutated (the smallest config that has the block)
FAMILIES = {
    "pe_line": "generators/tiny.toml",
    "dq_pe_line": "generators/tiny.toml",
    "act_encoder": "generators/tiny.toml",
    "orizuru": "generators/orizuru_n16_k2.toml",
    "topk_sorter": "generators/orizuru_n16_k2.toml",
    "nl_map": "generators/nl_na3.toml",
    "nl_map2": "generators/nl_na3.toml",
    "nl_reduce": "generators/nl_na3.toml",
    "tile": "generators/tile_small.toml",
}
# Vectors of the Icarus second opinion where Icarus is too slow for --vectors (the tile simulates
# ~100x slower per vector than a PE line under Icarus: 300 GEMVs are ~10 minutes of CPU per run).
ICARUS_VECTORS = {"tile": 30}
KINDS = ["arith", "rel", "logic", "const", "slice", "enable", "invert"]
REPORT_KINDS = KINDS + ["reset"]
RST_IF = re.compile(r"^\s*if \(rst\) begin\s*$")
RST_TERNARY = re.compile(r"^(\s*)([A-Za-z_]\w*(?:\[[^\]]*\])*) <= rst \? [^:;]+ : (.+);\s*$")

SKIP_START = re.compile(
    r"^(input|output|inout|module|endmodule|localparam|parameter|genvar|integer|for\s*\(|`|generate|endgenerate|"
    r"end\b|begin\b|always\b|initial\b|case\b|endcase\b|default\b|\)|\);)"
)
DECL = re.compile(r"^(wire|reg)\b")
NBA = re.compile(r"^[A-Za-z_]\w*(\[[^\]]*\])*\s*<=\s")
BLOCKING = re.compile(r"^[A-Za-z_]\w*(\[[^\]]*\])*\s*=\s")
IF = re.compile(r"^(end\s+else\s+)?if\s*\((.*)\)\s*begin\s*$")
INST = re.compile(r"^\s*(kllm_\w+)\s+(?:#\s*\(.*?\)\s*)?(\w+)\s*\(")


def hierarchy(design, top):
    """Files of `top` and every module it instantiates, in a stable order."""
    seen, order, todo = set(), [], [top]
    while todo:
        m = todo.pop(0)
        f = design / f"{m}.v"
        if m in seen or not f.exists():
            continue
        seen.add(m)
        order.append(f.name)
        for line in f.read_text().splitlines():
            mm = INST.match(line)
            if mm and mm.group(1) != m:
                todo.append(mm.group(1))
    return order


def region(code):
    """(start, end) of the part of a code line that may be mutated, or None."""
    s = code.strip()
    off = len(code) - len(code.lstrip())
    if not s or s.startswith("//"):
        return None
    m = IF.match(s)
    if m:
        return (off, len(code))
    if s.startswith("assign "):
        i = code.find(" = ")
        return (i + 3, len(code)) if i >= 0 else None
    if DECL.match(s):
        i = code.find(" = ")
        return (i + 3, len(code)) if i >= 0 else None
    if SKIP_START.match(s):
        return None
    m = NBA.match(s) or BLOCKING.match(s)
    if m:
        return (off + m.end(), len(code))
    if s.startswith("."):  # port connection of an instance
        i = code.find("(")
        return (i, len(code)) if i >= 0 else None
    if re.match(r"^\d+'[dbh][0-9a-fA-F_]+\s*:", s):  # case label
        return (off, len(code))
    return None


def const_off_by_one(m):
    w, base, digits = int(m.group(1)), m.group(2), m.group(3).replace("_", "")
    v = int(digits, {"d": 10, "b": 2, "h": 16}[base])
    nv = v + 1 if v + 1 < (1 << w) else v - 1
    if nv < 0:
        return None
    txt = {"d": str(nv), "b": format(nv, "b"), "h": format(nv, "x")}[base]
    return f"{w}'{base}{txt}"


def sites_in_line(code):
    """Every (kind, start, end, replacement) in one line's mutable region."""
    r = region(code)
    if r is None:
        return []
    a, b = r
    part = code[a:b]
    out = []

    def add(kind, m, rep, group=0):
        if rep is not None:
            out.append((kind, a + m.start(group), a + m.end(group), rep))

    for m in re.finditer(r"(?<=\s)([+-])(?=\s)", part):
        add("arith", m, "-" if m.group(1) == "+" else "+")
    for m in re.finditer(r"(?<=\s)(<=|>=|==|!=|<|>)(?=\s)", part):
        add("rel", m, {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}[m.group(1)])
    for m in re.finditer(r"(?<=\s)([&|])(?=\s)", part):
        add("logic", m, "|" if m.group(1) == "&" else "&")
    for m in re.finditer(r"(\d+)'([dbh])([0-9a-fA-F_]+)", part):
        if int(m.group(1)) <= 64:
            add("const", m, const_off_by_one(m))
    for m in re.finditer(r"\[(\d+):(\d+)\]", part):
        hi, lo = int(m.group(1)), int(m.group(2))
        add("slice", m, f"[{hi - 1}:{lo - 1}]" if lo > 0 else f"[{hi + 1}:{lo + 1}]")
    for m in re.finditer(r"(?<=\w)\[(\d+)\]", part):
        i = int(m.group(1))
        add("slice", m, f"[{i - 1}]" if i > 0 else f"[{i + 1}]")
    for m in re.finditer(r"\[([^\[\]]+?) \+: ", part):
        add("slice", m, f"[({m.group(1)}) + 1 +: ")
    # A memory or mux index (`table_q[cfg_addr]`), also as the target of a write.
    for m in re.finditer(r"(?<=\w)\[([A-Za-z_]\w*)\]", code[: b]):
        out.append(("slice", m.start(), m.end(), f"[{m.group(1)} + 1'b1]"))
    for m in re.finditer(r"~(?=[A-Za-z_(])", part):
        add("invert", m, "")
    m = re.match(r"^\s*([A-Za-z_]\w*(\[[^\]]*\])?)\s*;", part)
    if m:
        add("invert", m, f"~({m.group(1)})", 1)
    m = IF.match(code.strip())
    if m and m.group(2).strip() != "rst":
        cond = m.group(2)
        i = code.index("(" + cond + ")")
        out.append(("enable", i, i + len(cond) + 2, f"(!({cond}))"))
    return out


def find_sites(design, files):
    sites = []
    for f in files:
        for n, line in enumerate((design / f).read_text().splitlines(), 1):
            code = line.split("//")[0]
            for kind, s, e, rep in sites_in_line(code):
                sites.append({"file": f, "line": n, "col": s, "end": e, "kind": kind, "orig": code[s:e], "rep": rep})
    return sites


def reset_sites(design, files):
    """Every register reset in the files: a line of an `if (rst) begin` block, or `<= rst ? :`."""
    sites = []
    for f in files:
        in_rst = False
        for n, line in enumerate((design / f).read_text().splitlines(), 1):
            code = line.split("//")[0].rstrip()
            s = code.strip()
            if RST_IF.match(code):
                in_rst = True
                continue
            m = RST_TERNARY.match(code)
            if m:
                start = len(m.group(1))
                sites.append({"file": f, "line": n, "col": start, "end": len(code), "kind": "reset",
                              "orig": code[start:], "rep": f"{m.group(2)} <= {m.group(3)};"})
                continue
            if not in_rst:
                continue
            if s.startswith("end"):
                in_rst = False
                continue
            m = NBA.match(s)
            if m:
                start = len(code) - len(code.lstrip())
                name = s.split("<=")[0].strip()
                sites.append({"file": f, "line": n, "col": start, "end": len(code), "kind": "reset",
                              "orig": code[start:], "rep": f"/* reset of {name} removed */"})
    return sites


def pick(sites, n, seed):
    rng = random.Random(seed)
    by_kind = {k: [s for s in sites if s["kind"] == k] for k in KINDS}
    for k in KINDS:
        rng.shuffle(by_kind[k])
    chosen = []
    while len(chosen) < n and any(by_kind.values()):
        for k in KINDS:
            if by_kind[k] and len(chosen) < n:
                chosen.append(by_kind[k].pop())
    return chosen


def mutant_id(s):
    return f"{s['file']}:{s['line']}:{s['col']}:{s['kind']}"


def own_cpu_seconds(pid):
    """User + system CPU seconds of process `pid` itself (not of its children), None once gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # fields 3.. of proc(5); utime, stime are 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_group(cmd, out, timeout, cpu_limit=None, **kw):
    """Run `cmd` in its own process group with its output in the file `out`.

    Returns (exit code or None if stopped, CPU seconds of the process itself). It is stopped,
    with every process it started, after `timeout` s of wall time, or once the process itself
    (not its children) has used `cpu_limit` CPU seconds: testbenches/run_block.sh builds the
    model in child processes and then `exec`s the simulator, so that is the simulation's CPU
    time, whatever the Verilator build took and whatever the machine's load."""
    with open(out, "w") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)
        t0, cpu = time.time(), 0.0
        while p.poll() is None:
            c = own_cpu_seconds(p.pid)
            cpu = c if c is not None else cpu
            if time.time() - t0 > timeout or (cpu_limit is not None and cpu > cpu_limit):
                # The whole group: a timed-out build or simulator must not run on unseen.
                try:
                    os.killpg(p.pid, 9)
                except ProcessLookupError:
                    pass
                p.wait()
                return None, cpu
            time.sleep(0.5)
    return p.returncode, cpu


def run_bench(design, block, golden, build, seed, limit=None):
    """(verdict, log, simulation CPU s) of the Verilator bench on a design.

    `limit`: CPU seconds the simulation may use (the Verilator build is not counted, and the
    wall-time backstop is generous), so a loaded machine or a niced run cannot turn a slow
    build into a "hung" verdict."""
    cmd = [str(ROOT / "testbenches/run_block.sh"), str(design), block, str(golden), str(build), f"+seed={seed}"]
    env = dict(os.environ, JOBS="1", SEED=str(seed), CXX_OPT=os.environ.get("CXX_OPT", "-O0"))
    if shutil.which("ccache"):
        env.setdefault("OBJCACHE", "ccache")
        env.setdefault("CCACHE_BASEDIR", str(ROOT))  # mutant folders differ; relative paths hit
    wall = 7200 if limit is None else max(7200, 40 * limit)
    code, cpu = run_group(cmd, build / "bench.log", wall, limit, cwd=ROOT, env=env)
    if code is None:
        (build / "bench.log").write_text(f"HUNG: no verdict after {cpu:.0f} CPU-s of simulation (limit {limit or 0:.0f})\n")
        return "hung", "", cpu
    log = (build / "bench.log").read_text()
    if "verilator build failed" in log:
        return "invalid", log, cpu
    if code == 0 and re.search(r"^PASS", log, re.M):
        return "survived", log, cpu
    return "killed", log, cpu


def load_equivalent(path):
    eq = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, why = line.partition(" # ")
                fam, mid = key.split()
                eq[(fam, mid)] = why.strip()
    return eq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--per-family", type=int, default=20)
    ap.add_argument("--resets-per-family", type=int, default=4, help="reset-removal mutants, on top of --per-family")
    ap.add_argument("--verilator-only", action="store_true", help="no Icarus second opinion on survivors")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vectors", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", default="build/mutants")
    ap.add_argument("--report", default="reports/mutants.md")
    ap.add_argument("--equivalent", default="scripts/mutants_equivalent.txt")
    ap.add_argument("--also", action="append", default=[], help="another work folder whose results join the report")
    ap.add_argument("--report-only", action="store_true", help="only rewrite the report from the work folders' results")
    ap.add_argument("--resume", action="store_true", help="keep the verdicts already in the work folder if nothing changed")
    args = ap.parse_args()
    kllm = os.environ.get("KLLM", "target/release/kllm-gen")
    work = ROOT / args.work
    eq = load_equivalent(ROOT / args.equivalent)
    print(f"mutants: seed {args.seed}, {args.per_family} per family, {args.vectors} vectors, {args.jobs} jobs")
    t0 = time.time()
    results = {}
    for fam in [] if args.report_only else args.families.split(","):
        config = FAMILIES[fam]
        name = Path(config).stem
        design = ROOT / "verilog_out" / name
        fw = work / fam
        # What the verdicts depend on: the design, the benches, the settings.
        h = hashlib.sha256(json.dumps([args.seed, args.per_family, args.resets_per_family, args.vectors,
                                       args.verilator_only]).encode())
        for f in sorted(design.iterdir()) + [ROOT / "testbenches/kllm_tb.h", ROOT / f"testbenches/tb_{fam}.cpp",
                                             ROOT / "testbenches/icarus/gen_bench.py",
                                             ROOT / "testbenches/run_block.sh"]:
            if f.is_file():
                h.update(f.name.encode() + f.read_bytes())
        inputs = h.hexdigest()[:16]
        stamp = fw / "inputs.txt"
        if not (args.resume and stamp.exists() and stamp.read_text() == inputs):
            shutil.rmtree(fw, ignore_errors=True)
            fw.mkdir(parents=True)
            stamp.write_text(inputs)
        elif (fw / "results.json").exists():
            print(f"[{fam}] unchanged since its last run: verdicts reused", flush=True)
            continue
        # The family's cost: CPU of this process and of every process it waited for (builds,
        # simulations, Icarus), and wall time; verdicts reused from an interrupted run are not in it.
        t_fam = time.time()
        cpu0 = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for f in ("ru_utime", "ru_stime"))
        reused = []
        blocks = subprocess.run([kllm, "blocks", "--config", config], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        top = dict(l.split() for l in blocks.splitlines())[fam]
        subprocess.run([kllm, "golden", "--config", config, "--out", str(fw), "--block", fam, "--vectors", str(args.vectors),
                        "--seed", str(args.seed)], cwd=ROOT, check=True, capture_output=True)
        golden = fw / f"golden_{fam}.txt"
        golden_icarus = golden
        if ICARUS_VECTORS.get(fam, args.vectors) < args.vectors:
            (fw / "icarus").mkdir(exist_ok=True)
            subprocess.run([kllm, "golden", "--config", config, "--out", str(fw / "icarus"), "--block", fam, "--vectors",
                            str(ICARUS_VECTORS[fam]), "--seed", str(args.seed)], cwd=ROOT, check=True, capture_output=True)
            golden_icarus = fw / "icarus" / f"golden_{fam}.txt"
        files = hierarchy(design, top)
        sites = find_sites(design, files)
        chosen = pick(sites, args.per_family, args.seed)
        rsites = reset_sites(design, files)
        chosen += random.Random(args.seed + 1000).sample(rsites, min(args.resets_per_family, len(rsites)))
        sites += rsites

        # The unmutated design must pass, or every "kill" below would mean nothing.
        base = fw / "original"
        if (base / "limit_cpu.txt").exists():
            limit = float((base / "limit_cpu.txt").read_text())
        else:
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir()
            (base / "blocks.txt").write_text(blocks)
            verdict, log, cpu = run_bench(design, fam, golden, base, args.seed)
            # A mutant that makes the design repeat one output forever keeps the bench's
            # no-transfer watchdog quiet; such a run is stopped here and counted as hung. The
            # limit is CPU time of the simulation alone (a wall-time limit that included the
            # Verilator build turned slow builds on a loaded machine into "hung" verdicts).
            limit = max(90.0, 5 * cpu)
            if verdict != "survived":
                print(f"[{fam}] FAIL: the unmutated design does not pass its bench:\n{log[-2000:]}")
                sys.exit(1)
            for o in base.glob(f"obj_{fam}*"):
                shutil.rmtree(o, ignore_errors=True)
            (base / "limit_cpu.txt").write_text(f"{limit:.0f}")

        def run_icarus(design_dir, build_dir, extra):
            """("passed" | "killed" | "no verdict", log) of the Icarus bench on a design."""
            log = build_dir / "icarus_run.log"
            code, _ = run_group([str(ROOT / "testbenches/icarus/run_block.sh"), str(design_dir), fam, str(golden_icarus), str(build_dir)] + extra,
                                log, 20 * limit, cwd=ROOT, env=dict(os.environ, SEED=str(args.seed)))
            if code is None:
                return "no verdict", f"no Icarus verdict after {20 * limit:.0f} s: not a kill\n"
            out = log.read_text()
            if code == 0:
                return "passed", out
            # Only the bench's own FAIL verdict is a kill, not a bench that could not be built.
            built = "iverilog build failed" not in out and "gen_bench:" not in out
            return ("killed" if built and re.search(r"^FAIL", out, re.M) else "no verdict"), out

        icarus_base = {}
        icarus_lock = __import__("threading").Lock()

        def icarus_passes_original():
            """The Icarus bench passes the unmutated design (asked once, when a mutant survives)."""
            with icarus_lock:
                if "ok" not in icarus_base:
                    v, out = run_icarus(design, base, [])
                    (base / "icarus.log").write_text(out)
                    icarus_base["ok"] = v == "passed"
                    if not icarus_base["ok"]:
                        print(f"  [{fam}] no Icarus second opinion: its bench does not pass the unmutated design "
                              f"({(out.strip().splitlines() or ['no output'])[-1]})", flush=True)
                return icarus_base["ok"]

        def one(i_s):
            i, s = i_s
            d = fw / f"m{i:03d}"
            done = d / "result.json"
            if done.exists():
                r = json.loads(done.read_text())
                if r["id"] == mutant_id(s):
                    reused.append(i)
                    return r
            shutil.rmtree(d, ignore_errors=True)
            (d / "design").mkdir(parents=True)
            for f in design.iterdir():
                if f.is_file():
                    shutil.copy(f, d / "design" / f.name)
            (d / "blocks.txt").write_text(blocks)
            path = d / "design" / s["file"]
            lines = path.read_text().split("\n")
            ln = lines[s["line"] - 1]
            assert ln[s["col"]:s["end"]] == s["orig"], (s, ln)
            lines[s["line"] - 1] = ln[: s["col"]] + s["rep"] + ln[s["end"]:]
            path.write_text("\n".join(lines))
            verdict, log, _ = run_bench(d / "design", fam, golden, d, args.seed, limit)
            if verdict == "survived" and not args.verilator_only and icarus_passes_original():
                # Second opinion: the Icarus bench, which also checks `idle` and drives junk on
                # cfg_* between writes; once as usual, once with long back-pressure and no gaps.
                for extra in ([], ["+stall=90", "+gap=0"]):
                    v, out = run_icarus(d / "design", d, extra)
                    (d / "icarus.log").write_text(out)
                    if v == "killed":
                        verdict, log = "killed_icarus", out
                        break
            if verdict != "survived":
                for o in d.glob(f"obj_{fam}*"):
                    shutil.rmtree(o, ignore_errors=True)
            fail = next((l for l in log.splitlines() if l.startswith("FAIL")), "")
            r = dict(s, id=mutant_id(s), verdict=verdict, before=ln.strip(), after=lines[s["line"] - 1].strip(), fail=fail)
            done.write_text(json.dumps(r))
            print(f"  [{fam}] m{i:03d} {r['kind']:6} {verdict}", flush=True)
            return r

        with cf.ThreadPoolExecutor(args.jobs) as ex:
            rs = list(ex.map(one, enumerate(chosen)))
        cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime")) - cpu0
        cost = {"cpu_s": round(cpu), "wall_s": round(time.time() - t_fam), "reused": len(reused)}
        results[fam] = (len(sites), rs, cost)
        (fw / "results.json").write_text(json.dumps({"seed": args.seed, "per_family": args.per_family,
                                                      "resets_per_family": args.resets_per_family,
                                                      "vectors": args.vectors, "sites": len(sites), "mutants": rs,
                                                      "cost": cost}))
        k = sum(r["verdict"] == "killed" for r in rs)
        ki = sum(r["verdict"] == "killed_icarus" for r in rs)
        h = sum(r["verdict"] == "hung" for r in rs)
        inv = sum(r["verdict"] == "invalid" for r in rs)
        sv = [r for r in rs if r["verdict"] == "survived"]
        print(f"[{fam}] {len(sites)} sites, {len(rs)} mutants: {k} killed, {ki} killed by Icarus only, {h} hung, "
              f"{len(sv)} survived, {inv} invalid", flush=True)
        for r in sv:
            tag = "equivalent" if (fam, r["id"]) in eq else "NOT EXPLAINED"
            print(f"    survived ({tag}) {r['id']}: {r['before']}  ->  {r['after']}", flush=True)
        # The report covers every family with results in the work folder under the same settings
        # (so families can run in separate processes), and is rewritten after each family.
        write_report(ROOT / args.report, collect(work, args), eq, args)

    # The verdict covers every requested family, run now or reused: a reused family's survivor
    # must still be on the equivalence list (which is not part of the verdicts' inputs).
    results = collect(work, args)
    if not args.report_only:
        results = {f: v for f, v in results.items() if f in args.families.split(",")}
    write_report(ROOT / args.report, collect(work, args), eq, args)
    bad = [(f, r) for f, (_, rs, _cost) in results.items() for r in rs if r["verdict"] == "survived" and (f, r["id"]) not in eq]
    for f, r in bad:
        print(f"    survived (NOT EXPLAINED) {f} {r['id']}: {r['before']}  ->  {r['after']}")
    if bad:
        print(f"FAIL: {len(bad)} surviving mutant(s) not shown equivalent ({args.equivalent})")
        sys.exit(1)
    print(f"PASS: every surviving mutant of {len(results)} families is on the equivalence list "
          f"({time.time() - t0:.0f} s); report {args.report}")


def collect(work, args):
    """Results of every family in `work` that ran with this seed, count and vector number."""
    results = {}
    for fam in FAMILIES:
        f = next((w / fam / "results.json" for w in [work] + [ROOT / a for a in args.also] if (w / fam / "results.json").exists()), None)
        if f:
            r = json.loads(f.read_text())
            if (r["seed"], r["per_family"], r.get("resets_per_family", 0), r["vectors"]) == (
                    args.seed, args.per_family, args.resets_per_family, args.vectors):
                results[fam] = (r["sites"], r["mutants"], r.get("cost"))
    return results


def write_report(path, results, eq, args):
    out = [
        "# RTL mutation testing",
        "",
        "Generated by `make test-mutants` (scripts/mutants.py); do not edit by hand.",
        f"Seed {args.seed}, up to {args.per_family} mutants per block family plus up to {args.resets_per_family} "
        f"reset-removal mutants, {args.vectors} golden vectors per bench run. "
        f"Families not listed have not been run with these settings.",
        "",
        "Not in this report (no finished run with these settings): "
        + (", ".join(f"`{f}`" for f in FAMILIES if f not in results) or "none") + ".",
        "",
        "A mutant is one changed expression in one module of the block's hierarchy (see the script for the eight kinds; "
        "`reset` removes one register's reset). "
        "Killed: the Verilator bench (testbenches/kllm_tb.h: random gaps and back-pressure, bursts, long stalls, "
        "resets in the middle of a vector with a cfg reload, table re-writes between vectors, junk on cfg_*, "
        "`idle` checks) failed on it. Icarus: the Verilator bench passed it, the Icarus bench "
        "(testbenches/icarus/, run as usual and with 90 % back-pressure and no gaps, on the same golden "
        f"file, or for the tile on {ICARUS_VECTORS.get('tile')} GEMVs; only where it passes the unmutated design) failed it. "
        "Hung: the bench gave no verdict within the runner's limit "
        "(5x the unmutated simulation's CPU time, at least 90 CPU-s; the Verilator build is not counted); this is a kill for CI, but the bench's own watchdog missed it "
        "(see below). Invalid: Verilator could not build it (not counted). "
        "Kill rate = (killed + Icarus + hung) / (valid mutants - equivalent ones). "
        "CPU s: user + system seconds of the family's run (the runner and every process it waited for: "
        "Verilator builds through ccache, so they depend on the cache's state, simulations, Icarus second "
        "opinions); wall s: its wall time (2 jobs; depends on the machine's load); - where the run predates this count.",
        "",
        "| family | sites | mutants | invalid | killed | Icarus | hung | survived | equivalent | kill rate | CPU s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for fam, (nsites, rs, cost) in results.items():
        k = sum(r["verdict"] == "killed" for r in rs)
        ki = sum(r["verdict"] == "killed_icarus" for r in rs)
        h = sum(r["verdict"] == "hung" for r in rs)
        inv = sum(r["verdict"] == "invalid" for r in rs)
        sv = [r for r in rs if r["verdict"] == "survived"]
        e = sum((fam, r["id"]) in eq for r in sv)
        denom = len(rs) - inv - e
        rate = f"{100 * (k + ki + h) / denom:.0f} %" if denom else "-"
        if cost is None:
            spent = "- | -"
        else:
            part = f" ({cost['reused']} verdicts reused, not counted)" if cost["reused"] else ""
            spent = f"{cost['cpu_s']}{part} | {cost['wall_s']}"
        out.append(f"| {fam} | {nsites} | {len(rs)} | {inv} | {k} | {ki} | {h} | {len(sv)} | {e} | {rate} | {spent} |")
    out += ["", "## Kinds", "", "| family | " + " | ".join(REPORT_KINDS) + " |", "|---|" + "---|" * len(REPORT_KINDS)]
    for fam, (_, rs, _cost) in results.items():
        cells = []
        for kind in REPORT_KINDS:
            ks = [r for r in rs if r["kind"] == kind and r["verdict"] != "invalid"]
            cells.append(f"{sum(r['verdict'] in ('killed', 'killed_icarus', 'hung') for r in ks)}/{len(ks)}")
        out.append(f"| {fam} | " + " | ".join(cells) + " |")
    out += ["", "Cells: killed or hung / valid mutants of that kind.", "", "## Hung mutants", ""]
    hung = [(fam, r) for fam, (_, rs, _cost) in results.items() for r in rs if r["verdict"] == "hung"]
    for fam, r in hung:
        out.append(f"- {fam} `{r['id']}`: `{r['before']}` → `{r['after']}`")
    if not hung:
        out.append("None.")
    out += ["", "## Killed only by the Icarus bench", "",
            "Mutants the Verilator bench passed and the Icarus bench (four-state: X reaches a compared output) failed.", ""]
    ic = [(fam, r) for fam, (_, rs, _cost) in results.items() for r in rs if r["verdict"] == "killed_icarus"]
    for fam, r in ic:
        out.append(f"- {fam} `{r['id']}`: `{r['before']}` → `{r['after']}`")
    if not ic:
        out.append("None.")
    out += ["", "## Survivors", ""]
    any_sv = False
    for fam, (_, rs, _cost) in results.items():
        for r in rs:
            if r["verdict"] == "survived":
                any_sv = True
                why = eq.get((fam, r["id"]), "**not explained: needs a test that kills it**")
                out.append(f"- {fam} `{r['id']}`: `{r['before']}` → `{r['after']}` — {why}")
    if not any_sv:
        out.append("None.")
    out.append("")
    path.write_text("\n".join(out))


if __name__ == "__main__":
    main()
