#!/usr/bin/env python3
"""Writes a Verilog-2005 bench for one block, for Icarus Verilog: the second simulator.

  testbenches/icarus/gen_bench.py <design dir> <top module> <golden file> <out.v>

The bench reads the same golden file as the Verilator bench (format: src/golden.rs) with
$fgets/$sscanf, one segment (up to `sync`) at a time, and follows testbenches/kllm_tb.h's
protocol: 5 reset cycles; a segment's cfg writes one per cycle; input beats with random gaps
and outputs with random back-pressure (+gap=PCT, +stall=PCT, default 30, from $random(+seed));
`timing` segments without gaps or stalls, whose cycles from the first input to the last output
must equal the golden count; a no-transfer watchdog (+timeout=CYCLES, default 20000); 200 drain
cycles in which no output may appear; the `end` count must match. Where the top has an `idle`
output, the bench also checks it, which the Verilator bench does not: it must be 0 in the cycle
after an input beat was accepted and 1 after the drain. Between table writes, cfg_addr and
cfg_wdata carry random junk (the Verilator bench leaves them at the last write), so a block that
writes its table without cfg_we fails.

Resets in the middle of a vector, as in kllm_tb.h: in every untimed segment, up to 3 times
(+resets=N caps the run's total; 0: none), after 1-256 accepted input beats (at most the
segment's) plus 0-7 cycles, rst is raised for 1-4 cycles with work in flight. From the first
edge with rst high until the first cycle after it falls no output may be valid, and `idle` must
be high in that cycle (reset_errors). In every other reset (the 1st, 3rd, ...) the sources keep
offering beats of the segment, picked at random, while rst is high: by the reset contract
(docs/reliability.md) a beat handshaken then is discarded (counted in reset_beats=). Half of the
resets last one cycle, the contract's minimum. Where input stream 0 has a `last` field, resets 2
and 3 of every 4 come 0-15 cycles after a beat with last = 1 (that vector's result in flight). Then every table address the golden file has written so
far is written again with its latest value (the cfg reload), the segment's own writes follow
and the segment runs again from its first beat; all its outputs must be right. Outputs compared
before a reset count apart (pre_reset_outputs, pre_reset_mismatches: a mismatch there fails
too), so `outputs=` counts each golden output once and stays comparable with Verilator's. The
random draws are $random's, not the Verilator bench's generator, so the two benches reset at
different places. The bench prints one PASS/FAIL line in the Verilator bench's format, so the
two can be compared count for count.

The port binding is the one every Verilator bench uses: input field f drives s_f (s_<stream>_f
for a block with named input streams, `in.<stream>` lines, e.g. the tile's x and w, each with its
own s_<stream>_valid/ready and random gaps), the output
fields of the default stream are m_f (handshake m_valid/m_ready), those of stream `max` are
m_max_f (m_max_valid/m_max_ready), table writes go to cfg_we/cfg_addr/cfg_wdata. What this
script needs to know of a block is read from its top's port list and the golden header, so
nothing here is specific to one block family. Memories are sized from the golden file's
largest segment.
"""

import re
import sys
from pathlib import Path

PORT = re.compile(r"^\s*(input|output)\s+wire\s+(signed\s+)?(\[(\d+):0\]\s+)?(\w+)")


def ports(top_file):
    out = {}
    for line in Path(top_file).read_text().splitlines():
        m = PORT.match(line.split("//")[0])
        if m:
            out[m.group(5)] = (m.group(1), int(m.group(4)) + 1 if m.group(4) else 1)
    return out


def scan(golden):
    """Input streams with their fields, output field names, output stream names, the largest
    cfg/in/out counts of a segment, the cfg addresses written."""
    ins, outs, streams = {}, [], []
    addrs = set()
    most = {"cfg": 1}
    cur = {}
    for line in Path(golden).read_text().splitlines():
        tok = line.split()
        if not tok or tok[0].startswith("#"):
            continue
        c = tok[0]
        if c == "fields":
            if tok[1].startswith("in"):  # `in:` or `in.<stream>:`
                ins[tok[1][3:-1]] = tok[2:]
            else:
                outs.extend(tok[2:])
        elif c == "sync":
            cur = {}
        elif c == "cfg" or c == "in" or c.startswith("in.") or c.startswith("out"):
            if c == "in" or c.startswith("in."):
                c = "in:" + c[3:]
            if c.startswith("out"):
                s = c[4:] if c.startswith("out.") else ""
                if s not in streams:
                    streams.append(s)
                c = "out:" + s
            cur[c] = cur.get(c, 0) + 1
            most[c] = max(most.get(c, 1), cur[c])
            if c == "cfg":
                addrs.add(int(tok[1], 16))
    return ins, outs, streams or [""], most, addrs


def main():
    design, top, golden, out = sys.argv[1:5]
    p = ports(Path(design) / f"{top}.v")
    ins, outs, streams, most, addrs = scan(golden)
    instreams = list(ins.items())  # [(stream name, fields)]; stream 0 counts beats for resets
    if any(len(f) > 8 for _, f in instreams) or len(outs) > 7:
        sys.exit("gen_bench: more fields than the bench reads")

    def w(name):
        if name not in p:
            sys.exit(f"gen_bench: {top} has no port {name} (needed by the golden file's fields)")
        return p[name][1]

    # The cfg reload after a reset needs every address written so far: a table indexed by the
    # address, and the list of written addresses in first-write order.
    has_cfg0 = "cfg_we" in p
    aw = w("cfg_addr") if has_cfg0 else 0
    if aw > 16:
        sys.exit(f"gen_bench: cfg_addr of {top} is {aw} bits: the reload table takes up to 16")
    n_addr = len(addrs) or 1

    def ip(s, f):  # port of an input field
        return f"s_{s}_{f}" if s else f"s_{f}"

    def ihs(s, what):  # handshake port of an input stream
        return f"s_{s}_{what}" if s else f"s_{what}"

    def sp(s, f):  # port of an output field
        return f"m_{s}_{f}" if s else f"m_{f}"

    def hs(s, what):  # handshake port of a stream
        return f"m_{s}_{what}" if s else f"m_{what}"

    has_cfg = "cfg_we" in p
    has_idle = "idle" in p
    v = []
    a = v.append
    a(f"// Generated by testbenches/icarus/gen_bench.py for {top} from {Path(golden).name}; do not edit.")
    a("`timescale 1ns/1ps")
    a("module tb;")
    a("  reg clk = 1'b0;")
    a("  reg rst = 1'b1;")
    # Every port of the top gets a signal of its own name.
    for n, (d, width) in p.items():
        if n in ("clk", "rst"):
            continue
        if d == "input":
            a(f"  reg [{width - 1}:0] {n} = {width}'d0;")
        else:
            a(f"  wire [{width - 1}:0] {n};")
    conns = ",\n".join(f"    .{n}({n})" for n in p)
    a(f"  {top} dut (\n{conns}\n  );")
    a("")
    ncfg = most["cfg"]
    if has_cfg:
        a(f"  reg [{w('cfg_addr') - 1}:0] cq_addr [0:{ncfg - 1}];")
        a(f"  reg [{w('cfg_wdata') - 1}:0] cq_data [0:{ncfg - 1}];")
        a("  // What a reset reloads: the latest value of every address written, and the addresses.")
        a(f"  reg [{w('cfg_wdata') - 1}:0] tbl [0:{(1 << aw) - 1}];")
        a(f"  reg tbl_set [0:{(1 << aw) - 1}];")
        a(f"  reg [{aw - 1}:0] tlist [0:{n_addr - 1}];")
        a("  integer n_tbl;")
    for k, (st, fields) in enumerate(instreams):
        for i, f in enumerate(fields):
            a(f"  reg [{w(ip(st, f)) - 1}:0] iq{k}_{i} [0:{most.get('in:' + st, 1) - 1}];")
        a(f"  integer n_in{k}, rd_in{k};")
        a(f"  reg holding{k}, in_fire{k};")
    for si, s in enumerate(streams):
        n = most.get("out:" + s, 1)
        for i, f in enumerate(outs):
            a(f"  reg [{w(sp(s, f)) - 1}:0] oq{si}_{i} [0:{n - 1}];")
        a(f"  integer oq{si}_line [0:{n - 1}];")
        a(f"  integer n_out{si}, rd_out{si};")
        a(f"  reg fire{si};")
        for i, f in enumerate(outs):
            a(f"  reg [{w(sp(s, f)) - 1}:0] got{si}_{i};")
    a("")
    a("  reg [8*8192-1:0] line;")
    a("  reg [8*16-1:0] cmd;")
    a("  reg [8*4096-1:0] t0, t1, t2, t3, t4, t5, t6, t7;")
    a("  reg [8*1024-1:0] golden;")
    a("  integer fd, r, lineno, n_cfg, timing, seed, gap, stall, timeout, i, declared;")
    a("  integer checked, expected_total, mismatches, unexpected, missing, timing_ok, timing_bad, reported;")
    a("  integer quiet, first_in, last_out, measured, cycle, seed0;")
    a("  reg eof, seg_end, ended, aborted, timed, progress, same, after_in;")
    a("  integer idle_checks, idle_errors;")
    a("  integer resets, resets_max, reset_at, delay, tries, pre_checked, pre_mismatches, reset_errors;")
    a("  integer seg_checked, seg_mismatches, rst_cycles, j, reset_beats, pick, n_last;")
    a("  reg offer;")
    a("  reg rerun;")
    a("")
    a("  function chance(input integer pct);")
    a("    begin")
    a("      chance = ({$random(seed)} % 100) < pct;")
    a("    end")
    a("  endfunction")
    a("")
    a("  task half_cycle;  // inputs settle with clk low, then the rising edge")
    a("    begin")
    a("      #1 clk = 1'b1;")
    a("      #1 clk = 1'b0;")
    a("    end")
    a("  endtask")
    a("")
    for k, (st, fields) in enumerate(instreams):
        a(f"  task drive_in{k};")
        a("    begin")
        for i, f in enumerate(fields):
            a(f"      {ip(st, f)} = iq{k}_{i}[rd_in{k}];")
        a("    end")
        a("  endtask")
        a("")
    # Reading one segment.
    a("  task read_segment;")
    a("    begin")
    a("      n_cfg = 0; timing = -1; seg_end = 1'b0;")
    for k, _ in enumerate(instreams):
        a(f"      n_in{k} = 0; rd_in{k} = 0;")
    for si, _ in enumerate(streams):
        a(f"      n_out{si} = 0; rd_out{si} = 0;")
    a("      while (!seg_end && !eof) begin")
    a("        line = 0;")
    a("        r = $fgets(line, fd);")
    a("        if (r == 0) begin")
    a("          eof = 1'b1;")
    a("        end else begin")
    a("          lineno = lineno + 1;")
    a("          cmd = 0;")
    a("          r = $sscanf(line, \"%s %h %h %h %h %h %h %h %h\", cmd, t0, t1, t2, t3, t4, t5, t6, t7);")
    a("          if (cmd == \"cfg\") begin")
    if has_cfg:
        a("            cq_addr[n_cfg] = t0; cq_data[n_cfg] = t1; n_cfg = n_cfg + 1;")
    for k, (st, fields) in enumerate(instreams):
        name = "in" + ("." + st if st else "")
        a(f"          end else if (cmd == \"{name}\") begin")
        for i, _ in enumerate(fields):
            a(f"            iq{k}_{i}[n_in{k}] = t{i};")
        a(f"            n_in{k} = n_in{k} + 1;")
    for si, s in enumerate(streams):
        name = "out" + ("." + s if s else "")
        a(f"          end else if (cmd == \"{name}\") begin")
        for i, _ in enumerate(outs):
            a(f"            oq{si}_{i}[n_out{si}] = t{i};")
        a(f"            oq{si}_line[n_out{si}] = lineno; n_out{si} = n_out{si} + 1;")
        a("            expected_total = expected_total + 1;")
    a("          end else if (cmd == \"timing\") begin")
    a("            timing = t0[31:0];")
    a("            r = $sscanf(line, \"%s %d\", cmd, timing);")
    a("          end else if (cmd == \"sync\") begin")
    a("            seg_end = 1'b1;")
    a("          end else if (cmd == \"end\") begin")
    a("            r = $sscanf(line, \"%s %d\", cmd, declared);")
    a("            ended = 1'b1;")
    a("          end else if (cmd != \"#\" && cmd != \"fields\" && cmd != 0) begin")
    a("            $display(\"FAIL: %0s line %0d: unknown command '%0s'\", golden, lineno, cmd);")
    a("            $finish;")
    a("          end")
    a("        end")
    a("      end")
    a("    end")
    a("  endtask")
    a("")
    # A reset with work in flight, then the tables reloaded: the block must come back clean.
    a("  task mid_reset;")
    a("    begin")
    a("      resets = resets + 1;")
    for st, _ in instreams:
        a(f"      {ihs(st, 'valid')} = 1'b0;")
    for s in streams:
        a(f"      {hs(s, 'ready')} = 1'b0;")
    if has_cfg:
        a("      cfg_we = 1'b0;")
    a("      rst = 1'b1;")
    a("      // Odd resets: the sources offer beats of the segment while rst is high (discarded).")
    a("      offer = resets % 2 == 1;")
    a("      rst_cycles = chance(50) ? 1 : 2 + {$random(seed)} % 3;")
    a("      for (j = 0; j <= rst_cycles; j = j + 1) begin")
    a("        if (j == rst_cycles) rst = 1'b0;")
    for k, (st, fields) in enumerate(instreams):
        a(f"        {ihs(st, 'valid')} = offer && j < rst_cycles && n_in{k} > 0;")
        a(f"        if ({ihs(st, 'valid')}) begin")
        a(f"          pick = {{$random(seed)}} % n_in{k};")
        for fi, f in enumerate(fields):
            a(f"          {ip(st, f)} = iq{k}_{fi}[pick];")
        a("        end")
    if has_cfg:
        a("        cfg_addr = $random(seed);")
        a("        cfg_wdata = {$random(seed), $random(seed)};")
    a("        #1;")
    a("        // From the first edge with rst high to the first cycle after it: nothing valid, idle.")
    a("        if (j > 0) begin")
    for s in streams:
        a(f"          if ({hs(s, 'valid')} !== 1'b0) begin")
        a("            reset_errors = reset_errors + 1;")
        a(f"            if (reported < 10) $display(\"  reset: stream '%0s' valid %0s at cycle %0d\", \"{s}\", j < rst_cycles ? \"while rst is high\" : \"in the first cycle after reset\", cycle);")
        a("            reported = reported + 1;")
        a("          end")
    if has_idle:
        a("          if (j == rst_cycles && idle !== 1'b1) begin")
        a("            reset_errors = reset_errors + 1;")
        a("            if (reported < 10) $display(\"  reset: idle is %b in the first cycle after reset (cycle %0d)\", idle, cycle);")
        a("            reported = reported + 1;")
        a("          end")
    a("        end")
    a("        // A handshake on an edge with rst high: a dropped beat.")
    for st, _ in instreams:
        a(f"        if ({ihs(st, 'valid')} && {ihs(st, 'ready')} === 1'b1) reset_beats = reset_beats + 1;")
    a("        #1 clk = 1'b1;")
    a("        #1 clk = 1'b0;")
    a("        cycle = cycle + 1;")
    a("      end")
    for st, _ in instreams:
        a(f"      {ihs(st, 'valid')} = 1'b0;")
    if has_cfg:
        a("      // cfg reload: every address written so far gets its latest value again.")
        a("      for (j = 0; j < n_tbl; j = j + 1) begin")
        a("        cfg_we = 1'b1; cfg_addr = tlist[j]; cfg_wdata = tbl[tlist[j]];")
        a("        half_cycle;")
        a("        cycle = cycle + 1;")
        a("      end")
        a("      cfg_we = 1'b0;")
    a("    end")
    a("  endtask")
    a("")
    pending = " || ".join([f"rd_in{k} < n_in{k}" for k, _ in enumerate(instreams)] + [f"rd_out{si} < n_out{si}" for si, _ in enumerate(streams)])
    a("  task run_segment;")
    a("    begin")
    a("      tries = 0;")
    a("      rerun = 1'b1;")
    a("      while (rerun && !aborted) begin")
    a("        rerun = 1'b0;")
    a("        reset_at = -1; delay = 0;")
    a("        if (timing < 0 && n_in0 > 0 && tries < 3 && (resets_max < 0 || resets < resets_max)) begin")
    a("          reset_at = 1 + {$random(seed)} % (n_in0 < 256 ? n_in0 : 256);")
    a("          delay = {$random(seed)} % 8;")
    li = instreams[0][1].index("last") if instreams and "last" in instreams[0][1] else -1
    if li >= 0:
        # As kllm_tb.h: resets 2 and 3 of every 4 come 0-15 cycles after a beat with last = 1.
        a("          if (resets % 4 >= 1 && resets % 4 <= 2) begin")
        a("            n_last = 0;")
        a(f"            for (j = 0; j < (n_in0 < 256 ? n_in0 : 256); j = j + 1) if (iq0_{li}[j] != 0) n_last = n_last + 1;")
        a("            if (n_last > 0) begin")
        a("              pick = {$random(seed)} % n_last;")
        a(f"              for (j = 0; j < (n_in0 < 256 ? n_in0 : 256); j = j + 1) if (iq0_{li}[j] != 0) begin")
        a("                if (pick == 0) reset_at = j + 1;")
        a("                pick = pick - 1;")
        a("              end")
        a("              delay = {$random(seed)} % 16;")
        a("            end")
        a("          end")
    a("        end")
    a("        tries = tries + 1;")
    a("        attempt;")
    a("      end")
    a("    end")
    a("  endtask")
    a("")
    a("  // One run of a segment from its first beat; sets `rerun` when a reset cut it short.")
    a("  task attempt;")
    a("    begin")
    a("      seg_checked = 0; seg_mismatches = 0;")
    for k, _ in enumerate(instreams):
        a(f"      rd_in{k} = 0; holding{k} = 1'b0;")
    for si, _ in enumerate(streams):
        a(f"      rd_out{si} = 0;")
    if has_cfg:
        a("      for (i = 0; i < n_cfg; i = i + 1) begin")
        a("        cfg_we = 1'b1; cfg_addr = cq_addr[i]; cfg_wdata = cq_data[i];")
        a("        if (!tbl_set[cq_addr[i]]) begin")
        a("          tbl_set[cq_addr[i]] = 1'b1; tlist[n_tbl] = cq_addr[i]; n_tbl = n_tbl + 1;")
        a("        end")
        a("        tbl[cq_addr[i]] = cq_data[i];")
        a("        half_cycle;")
        a("        cycle = cycle + 1;")
        a("      end")
        a("      cfg_we = 1'b0;")
    a("      timed = timing >= 0;")
    a("      quiet = 0; first_in = -1; last_out = -1;")
    a(f"      while (!aborted && !rerun && ({pending})) begin")
    for k, (st, _) in enumerate(instreams):
        sv = ihs(st, "valid")
        a("        // A source keeps valid up once raised, until the beat is taken.")
        a(f"        if (rd_in{k} < n_in{k}) begin")
        a(f"          {sv} = timed || holding{k} || !chance(gap);")
        a(f"          if ({sv}) drive_in{k};")
        a("        end else begin")
        a(f"          {sv} = 1'b0;")
        a("        end")
        a(f"        holding{k} = {sv};")
    if has_cfg:
        a("        // Without cfg_we, the table address and data carry junk: only cfg_we may write.")
        a("        cfg_addr = $random(seed);")
        a("        cfg_wdata = {$random(seed), $random(seed)};")
    for si, s in enumerate(streams):
        a(f"        {hs(s, 'ready')} = timed || !chance(stall);")
    a("        #1;")
    if has_idle:
        a("        // A beat accepted on the last edge is in flight now: the block must not claim idle.")
        a("        if (after_in) begin")
        a("          idle_checks = idle_checks + 1;")
        a("          if (idle !== 1'b0) begin")
        a("            idle_errors = idle_errors + 1;")
        a("            if (reported < 10) $display(\"  idle is %b at cycle %0d, the cycle after an input beat was accepted\", idle, cycle);")
        a("            reported = reported + 1;")
        a("          end")
        a("        end")
    for k, (st, _) in enumerate(instreams):
        a(f"        in_fire{k} = {ihs(st, 'valid')} && {ihs(st, 'ready')};")
    for si, s in enumerate(streams):
        a(f"        fire{si} = {hs(s, 'valid')} && {hs(s, 'ready')};")
        for i, f in enumerate(outs):
            a(f"        got{si}_{i} = {sp(s, f)};")
    a("        #1 clk = 1'b1;")
    a("        #1 clk = 1'b0;")
    a("        progress = 1'b0;")
    a("        after_in = " + " || ".join(f"in_fire{k}" for k, _ in enumerate(instreams)) + ";")
    for k, _ in enumerate(instreams):
        a(f"        if (in_fire{k}) begin")
        a(f"          rd_in{k} = rd_in{k} + 1; holding{k} = 1'b0; progress = 1'b1;")
        a("          if (first_in < 0) first_in = cycle;")
        a("        end")
    for si, s in enumerate(streams):
        a(f"        if (fire{si}) begin")
        a("          progress = 1'b1; last_out = cycle;")
        a(f"          if (rd_out{si} >= n_out{si}) begin")
        a("            unexpected = unexpected + 1;")
        a("            if (reported < 10) $display(\"  unexpected output on stream '%0s' at cycle %0d\", \"" + s + "\", cycle);")
        a("            reported = reported + 1;")
        a("          end else begin")
        a("            checked = checked + 1; seg_checked = seg_checked + 1;")
        same = " && ".join(f"oq{si}_{i}[rd_out{si}] === got{si}_{i}" for i, _ in enumerate(outs))
        a(f"            same = {same};")
        a("            if (!same) begin")
        a("              mismatches = mismatches + 1; seg_mismatches = seg_mismatches + 1;")
        a("              if (reported < 10)")
        fmt = " ".join(f"[{i}] expected %h got %h" for i, _ in enumerate(outs))
        args = ", ".join(f"oq{si}_{i}[rd_out{si}], got{si}_{i}" for i, _ in enumerate(outs))
        a(f"                $display(\"  mismatch on stream '%0s' (golden line %0d, cycle %0d): {fmt}\", \"{s}\", oq{si}_line[rd_out{si}], cycle, {args});")
        a("              reported = reported + 1;")
        a("            end")
        a(f"            rd_out{si} = rd_out{si} + 1;")
        a("          end")
        a("        end")
    a("        cycle = cycle + 1;")
    a("        quiet = progress ? 0 : quiet + 1;")
    a("        if (quiet > timeout) begin")
    for si, _ in enumerate(streams):
        a(f"          missing = missing + (n_out{si} - rd_out{si});")
    a("          $display(\"  timeout: no transfer for %0d cycles at cycle %0d; %0d expected outputs never came\", timeout, cycle, missing);")
    a("          aborted = 1'b1;")
    a("        end")
    a("        if (!aborted && reset_at >= 0 && rd_in0 >= reset_at) begin")
    a("          if (delay <= 0) begin")
    a("            // Outputs compared so far stay compared (a mismatch still fails) but count apart.")
    a("            checked = checked - seg_checked; pre_checked = pre_checked + seg_checked;")
    a("            mismatches = mismatches - seg_mismatches; pre_mismatches = pre_mismatches + seg_mismatches;")
    a("            after_in = 1'b0;")
    a("            mid_reset;")
    a("            rerun = 1'b1;")
    a("          end")
    a("          delay = delay - 1;")
    a("        end")
    a("      end")
    for st, _ in instreams:
        a(f"      {ihs(st, 'valid')} = 1'b0;")
    a("      after_in = 1'b0;")
    a("      if (timed && !aborted && !rerun) begin")
    a("        measured = (first_in >= 0 && last_out >= 0) ? last_out - first_in + 1 : -1;")
    a("        if (measured == timing) timing_ok = timing_ok + 1; else timing_bad = timing_bad + 1;")
    a("        $display(\"  timing: predicted %0d cycles, measured %0d%0s\", timing, measured, measured == timing ? \"\" : \"  <-- MISMATCH\");")
    a("      end")
    a("    end")
    a("  endtask")
    a("")
    a("  initial begin")
    a("    if (!$value$plusargs(\"golden=%s\", golden)) begin $display(\"FAIL: no +golden=FILE given\"); $finish; end")
    a("    if (!$value$plusargs(\"seed=%d\", seed)) seed = 1;")
    a("    seed0 = seed;")
    a("    if (!$value$plusargs(\"gap=%d\", gap)) gap = 30;")
    a("    if (!$value$plusargs(\"stall=%d\", stall)) stall = 30;")
    a("    if (!$value$plusargs(\"timeout=%d\", timeout)) timeout = 20000;")
    a("    if (!$value$plusargs(\"resets=%d\", resets_max)) resets_max = -1;")
    a("    resets = 0; reset_beats = 0; pre_checked = 0; pre_mismatches = 0; reset_errors = 0;")
    a("    fd = $fopen(golden, \"r\");")
    a("    if (fd == 0) begin $display(\"FAIL: cannot open golden file %0s\", golden); $finish; end")
    a("    lineno = 0; eof = 1'b0; ended = 1'b0; aborted = 1'b0; declared = -1; cycle = 0;")
    a("    checked = 0; expected_total = 0; mismatches = 0; unexpected = 0; missing = 0;")
    a("    timing_ok = 0; timing_bad = 0; reported = 0; idle_checks = 0; idle_errors = 0; after_in = 1'b0;")
    if has_cfg:
        a(f"    n_tbl = 0;")
        a(f"    for (j = 0; j < {1 << aw}; j = j + 1) tbl_set[j] = 1'b0;")
    a("    // Reset: 5 cycles, no valid, no ready, no table write.")
    a("    rst = 1'b1;")
    a("    repeat (5) half_cycle;")
    a("    rst = 1'b0;")
    a("    while (!eof && !aborted) begin")
    a("      read_segment;")
    a("      run_segment;")
    a("    end")
    a("    // After the last segment nothing more may come out.")
    for si, s in enumerate(streams):
        a(f"    {hs(s, 'ready')} = 1'b1;")
    a("    if (!aborted) repeat (200) begin")
    a("      #1;")
    for si, s in enumerate(streams):
        a(f"      if ({hs(s, 'valid')}) begin")
        a("        unexpected = unexpected + 1;")
        a("        if (reported < 10) $display(\"  unexpected output on stream '%0s' after the last vector\", \"" + s + "\");")
        a("        reported = reported + 1;")
        a("      end")
    a("      #1 clk = 1'b1;")
    a("      #1 clk = 1'b0;")
    a("      cycle = cycle + 1;")
    a("    end")
    if has_idle:
        a("    // 200 cycles after the last output nothing is in flight: the block must say so.")
        a("    idle_checks = idle_checks + 1;")
        a("    if (!aborted && idle !== 1'b1) begin")
        a("      idle_errors = idle_errors + 1;")
        a("      $display(\"  idle is %b after the drain cycles\", idle);")
        a("    end")
    a("    if (!ended || declared != expected_total) begin")
    a("      $display(\"FAIL: " + top[5:] + " golden file is truncated (no matching 'end' line)\");")
    a("      $finish;")
    a("    end")
    a("    $display(\"%0s: " + top[5:] + " golden=%0s seed=%0d outputs=%0d/%0d mismatches=%0d unexpected=%0d missing=%0d cycles=%0d timing_segments=%0d timing_mismatches=%0d resets=%0d reset_beats=%0d pre_reset_outputs=%0d pre_reset_mismatches=%0d reset_errors=%0d idle_checks=%0d idle_errors=%0d%0s\",")
    a("             (!aborted && mismatches == 0 && missing == 0 && unexpected == 0 && timing_bad == 0 && checked == expected_total && idle_errors == 0 && reset_errors == 0 && pre_mismatches == 0) ? \"PASS\" : \"FAIL\",")
    a("             golden, seed0, checked, expected_total, mismatches, unexpected, missing, cycle, timing_ok + timing_bad, timing_bad, resets, reset_beats, pre_checked, pre_mismatches, reset_errors, idle_checks, idle_errors,")
    a("             aborted ? \" (aborted)\" : \"\");")
    a("    $finish;")
    a("  end")
    a("endmodule")
    Path(out).write_text("\n".join(v) + "\n")


if __name__ == "__main__":
    main()
