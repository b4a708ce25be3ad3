//! The counting-and-weighing core (`kllm_count_weigh_*`) that the PE line and `nl_reduce` both
//! instantiate: `lanes` indices per cycle are one-hot decoded and counted per bin into one of
//! two count banks, and at the end of a result the counts meet a run-time table,
//! `Y = Σ_bins count[bin]·TABLE[bin]`, on `reduce_width` multipliers.
//!
//! Pipeline (one row per register stage; `timing` is the cycle model that mirrors it):
//! ```text
//!  s_* ──► S1 input regs ──► S2 per-bin popcount regs ──► count bank 0/1 (accumulate)
//!                                                               │ bank full
//!                                       weighted-sum issue (one step = reduce_width bins/cycle)
//!                                  A operand regs ──► B product regs ──► C tree + accumulate ──► FIFO ──► m_*
//! ```
//! The core has its own config ([`CountWeigh`]), validated when it is built: a PE line counts
//! `na + nw`-bit pair indices, `nl_reduce` counts `in_bits`-bit indices.

use serde::Serialize;

use crate::config::{in_range, power_of_two};
use crate::verilog::{bl, clog2, if_, if_else, lit, nb, sext, ubits, zext, Design, Handle, Item, Module, Stmt};

/// The core's parameters and every number derived from them.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CountWeigh {
    /// Indices accepted per cycle.
    pub lanes: u32,
    /// Bits of one index; there are 2^idx_bits bins.
    pub idx_bits: u32,
    pub bins: u32,
    /// Longest result (indices counted into one bank).
    pub k_max: u32,
    pub popcount_bits: u32,
    pub count_bits: u32,
    /// Signed width of a table entry.
    pub table_bits: u32,
    /// Signed width of a result; the instantiating block rules out overflow.
    pub y_bits: u32,
    pub reduce_width: u32,
    pub weigh_steps: u32,
    pub fifo_depth: u32,
    /// A result of `n` beats on an idle core takes `n + latency_extra` cycles, first input
    /// transfer to result transfer, inclusive.
    pub latency_extra: u32,
}

/// Fixed pipeline cycles between the last input beat and the result, beyond the weigh steps.
const PIPE_EXTRA: u32 = 5;

impl CountWeigh {
    pub fn new(lanes: u32, idx_bits: u32, k_max: u32, table_bits: u32, y_bits: u32, reduce_width: u32) -> Result<Self, String> {
        in_range("count_weigh.lanes", lanes, 1, 4096)?;
        in_range("count_weigh.idx_bits", idx_bits, 1, 12)?;
        in_range("count_weigh.k_max", k_max, 1, 1 << 24)?;
        in_range("count_weigh.table_bits", table_bits, 2, 64)?;
        in_range("count_weigh.reduce_width", reduce_width, 1, 1 << idx_bits)?;
        power_of_two("count_weigh.reduce_width", reduce_width)?;
        // A bank counter also holds one beat's popcount, even when k_max < lanes.
        let count_bits = ubits(k_max.max(lanes) as u64);
        in_range("count_weigh.y_bits", y_bits, table_bits.max(count_bits + 1), 128)
            .map_err(|e| format!("{e}: the result must hold a count and a table entry"))?;
        let bins = 1 << idx_bits;
        let steps = bins / reduce_width;
        Ok(CountWeigh {
            lanes,
            idx_bits,
            bins,
            k_max,
            popcount_bits: ubits(lanes as u64),
            count_bits,
            table_bits,
            y_bits,
            reduce_width,
            weigh_steps: steps,
            fifo_depth: fifo_depth(steps),
            latency_extra: steps + PIPE_EXTRA,
        })
    }

    /// The module name: every parameter that changes the body is in it, so cores of different
    /// shapes coexist in one design and equal shapes share one module.
    pub fn module_name(&self) -> String {
        format!(
            "kllm_count_weigh_l{}_i{}_c{}_t{}_y{}_r{}",
            self.lanes, self.idx_bits, self.count_bits, self.table_bits, self.y_bits, self.reduce_width
        )
    }
}

/// Output FIFO depth so that, with a ready sink, results never wait for a slot: a result's
/// credit is taken at its weigh start (cycle X) and returned by its pop at the edge of cycle
/// X + steps + 3, while new starts come every `steps` cycles; so floor((steps + 3) / steps)
/// credits are still out when the next start asks, and it needs one more.
fn fifo_depth(steps: u32) -> u32 {
    let outstanding = (steps + 3) / steps + 1;
    outstanding.next_power_of_two().max(2)
}

/// Builds the core (once per shape) and returns its handle.
pub fn generate(d: &mut Design, g: &CountWeigh) -> Handle {
    let name = g.module_name();
    if d.get(&name).is_none() {
        let m = build(d, g, &name);
        d.add(m);
    }
    Handle::of(d, &name, serde_json::to_value(g).unwrap())
}

/// Instantiates the core (built once per shape) in `m` as `u_count_weigh`, with every port wired
/// to the same-named port of `m` except the lanes' indices (`s_idx`) and the result (`m_y`).
pub fn instantiate(d: &mut Design, m: &mut Module, g: &CountWeigh, s_idx: &str, m_y: &str) {
    let core = generate(d, g);
    let conns: Vec<(&str, String)> = core
        .ports
        .iter()
        .map(|p| {
            let to = match p.name.as_str() {
                "s_idx" => s_idx,
                "m_y" => m_y,
                other => other,
            };
            (p.name.as_str(), to.to_string())
        })
        .collect();
    m.instantiate(&core, "u_count_weigh", &conns);
}

fn build(d: &mut Design, g: &CountWeigh, name: &str) -> Module {
    let mut m = Module::new(name);
    m.doc(format!(
        "Counting-and-weighing core: {} indices of {} bits per cycle, {} bins, {} multipliers, \
         at most {} indices per result.",
        g.lanes, g.idx_bits, g.bins, g.reduce_width, g.k_max
    ));
    m.doc("Y = sum over bins j of count[j] * TABLE[j]; shared by kllm_pe_line and kllm_nl_reduce.");
    m.doc("Write the table through cfg_* only while `idle` is high.");
    m.clock_reset();
    m.input("cfg_we", 1, "table write enable")
        .input("cfg_addr", g.idx_bits, "table entry = bin")
        .input_signed("cfg_wdata", g.table_bits, "table value, signed")
        .input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready")
        .input("s_idx", g.lanes * g.idx_bits, "index of lane i at [i*IDX_W +: IDX_W]")
        .input("s_keep", g.lanes, "lane i holds an element")
        .input("s_last", 1, "last beat of this result")
        .output("m_valid", 1, "result valid")
        .input("m_ready", 1, "result taken when valid && ready")
        .output_signed("m_y", g.y_bits, "sum of count * TABLE, signed")
        .output("idle", 1, "nothing in flight: table writes are safe");
    for (pname, value) in [
        ("LANES", g.lanes), ("IDX_W", g.idx_bits), ("PCNT_W", g.popcount_bits), ("CNT_W", g.count_bits),
        ("LUT_W", g.table_bits), ("Y_W", g.y_bits), ("R", g.reduce_width),
    ] {
        m.localparam(pname, 0, value as i64);
    }
    let (b, pcw, cw, lb, yb, r) =
        (g.bins, g.popcount_bits, g.count_bits, g.table_bits, g.y_bits, g.reduce_width);
    let s = b / r;
    let sb = clog2(s as u64);
    let rb = clog2(r as u64);
    let ob = ubits(g.fifo_depth as u64);
    let tree = crate::pe_line::add_tree_module(d, r, yb);
    let fifo = crate::common::fifo_module(d, yb, g.fifo_depth);
    let (l, pb, popcount) = (g.lanes, g.idx_bits, crate::pe_line::popcount_module(d, g.lanes));
    // ---------------------------------------------------------------- S1: input registers
    m.comment(
        "Input handshake (s_ready is derived below, with the weighing control it depends on).",
    );
    m.reg("s1_valid_q", 1).reg("s1_last_q", 1).reg("s1_idx_q", l * pb).reg("s1_keep_q", l);
    m.reg("s2_valid_q", 1).reg("s2_last_q", 1).reg("s2_count_q", b * pcw);
    m.reg("bank_full_q", 2).reg("fill_bank_q", 1).reg("fill_fresh_q", 1);
    m.wire_eq("in_fire", 1, "s_valid & s_ready");
    m.clocked(
        "stage1",
        vec![
            nb("s1_valid_q", "rst ? 1'b0 : in_fire"),
            if_(
                "in_fire",
                vec![nb("s1_last_q", "s_last"), nb("s1_idx_q", "s_idx"), nb("s1_keep_q", "s_keep")],
            ),
        ],
    );

    // ---------------------------------------------------------------- S2: decode + popcount
    m.comment(format!(
        "One-hot decode of every lane's {}, transposed so each bin sees one bit per lane.",
        "index"
    ));
    m.wire("bin_hits", b * l).wire("bin_count", b * pcw);
    m.push(Item::GenFor {
        label: "g_decode".into(),
        var: "lane".into(),
        count: l,
        body: vec![
            Item::Wire {
                name: "onehot".into(),
                width: b,
                signed: false,
                depth: None,
                init: Some(format!(
                    "{{{{{}{{1'b0}}}}, s1_keep_q[lane]}} << {}[lane*{} +: {}]",
                    b - 1,
                    "s1_idx_q",
                    "IDX_W",
                    "IDX_W"
                )),
            },
            Item::GenFor {
                label: "g_transpose".into(),
                var: "bin".into(),
                count: b,
                body: vec![Item::Assign {
                    lhs: "bin_hits[bin*LANES + lane]".into(),
                    rhs: "onehot[bin]".into(),
                }],
            },
        ],
    });
    m.push(Item::GenFor {
        label: "g_popcount".into(),
        var: "bin".into(),
        count: b,
        body: vec![Item::Instance {
            module: popcount.clone(),
            name: "u_popcount".into(),
            conns: vec![
                ("i_bits".into(), "bin_hits[bin*LANES +: LANES]".into()),
                ("o_count".into(), "bin_count[bin*PCNT_W +: PCNT_W]".into()),
            ],
        }],
    });
    m.clocked(
        "stage2",
        vec![
            nb("s2_valid_q", "rst ? 1'b0 : s1_valid_q"),
            nb("s2_last_q", "s1_last_q"),
            nb("s2_count_q", "bin_count"),
        ],
    );

    // ---------------------------------------------------------------- count banks
    m.comment(format!(
        "Two count banks: one counts while the other is weighed. The first beat of a {}\n\
         loads its bank instead of adding, so no clear cycle is needed.",
        "result"
    ));
    m.reg("bank0_q", b * cw).reg("bank1_q", b * cw);
    m.push(Item::Integer("i".into()));
    let add = |bank: &str| {
        nb(
            format!("{bank}[i*CNT_W +: CNT_W]"),
            format!(
                "(fill_fresh_q ? {} : {bank}[i*CNT_W +: CNT_W]) + {}",
                lit(cw, 0),
                zext("s2_count_q[i*PCNT_W +: PCNT_W]", pcw, cw)
            ),
        )
    };
    m.clocked(
        "accumulate",
        vec![if_(
            "s2_valid_q",
            vec![Stmt::For {
                var: "i".into(),
                count: b,
                body: vec![if_else("fill_bank_q", vec![add("bank1_q")], vec![add("bank0_q")])],
            }],
        )],
    );
    m.wire_eq("bank_set", 2, "{2{s2_valid_q & s2_last_q}} & (fill_bank_q ? 2'b10 : 2'b01)");
    m.clocked(
        "fill_control",
        vec![if_else(
            "rst",
            vec![nb("fill_bank_q", "1'b0"), nb("fill_fresh_q", "1'b1")],
            vec![if_(
                "s2_valid_q",
                vec![
                    nb("fill_fresh_q", "s2_last_q"),
                    nb("fill_bank_q", "fill_bank_q ^ s2_last_q"),
                ],
            )],
        )],
    );

    // ---------------------------------------------------------------- weigh issue
    m.comment(format!(
        "Weighing: step s multiplies bins s*R .. s*R+R-1 by their table entries; {s} steps per {item}.\n\
         A {item}'s weighing starts only with a free result-FIFO credit, so the pipeline never stalls.",
        item = "result"
    ));
    m.reg("ws_busy_q", 1).reg("ws_bank_q", 1).reg("drain_bank_q", 1);
    let step_expr = if s > 1 {
        m.reg("ws_step_q", sb);
        m.wire_eq("ws_final", 1, format!("ws_busy_q & (ws_step_q == {})", lit(sb, (s - 1) as u64)));
        "ws_step_q"
    } else {
        m.wire_eq("ws_final", 1, "ws_busy_q");
        ""
    };
    m.reg("outstanding_q", ob);
    m.comment(
        "A bank is weighed as soon as its last beat has been counted: the count stage's last beat\n\
         starts the weighing in the same cycle (its bank is written at this edge, first read at the next).",
    );
    m.wire_eq(
        "ws_start",
        1,
        format!(
            "(bank_full_q[drain_bank_q] | (s2_valid_q & s2_last_q & (fill_bank_q == drain_bank_q))) \
             & (~ws_busy_q | ws_final) & (outstanding_q < {})",
            lit(ob, g.fifo_depth as u64)
        ),
    );
    m.comment(
        "A beat accepted now writes its bank two edges later. Banks hold finished-but-unweighed\n\
         results (full, or last beat in S1/S2); a new result needs one that is free by then. The bank\n\
         being weighed is free once its last read is at most one edge away, so back-to-back results\n\
         run at one per max(beats, weigh steps) cycles.",
    );
    m.wire_eq(
        "occupied",
        3,
        "{2'b0, bank_full_q[0]} + {2'b0, bank_full_q[1]} + {2'b0, s1_valid_q & s1_last_q} \
         + {2'b0, s2_valid_q & s2_last_q}",
    );
    let weigh_ending = if s > 2 {
        format!("ws_busy_q & (ws_step_q >= {})", lit(sb, (s - 2) as u64))
    } else {
        "ws_busy_q".to_string()
    };
    let starting = if s == 1 { "ws_start" } else { "1'b0" };
    m.wire_eq("releasing", 2, format!("{{1'b0, {weigh_ending}}} + {{1'b0, {starting}}}"));
    m.assign("s_ready", "(occupied - {1'b0, releasing}) < 3'd2");
    m.wire_eq("bank_clear", 2, "{2{ws_final}} & (ws_bank_q ? 2'b10 : 2'b01)");
    let mut issue = vec![
        nb("ws_busy_q", "ws_start | (ws_busy_q & ~ws_final)"),
        if_(
            "ws_start",
            vec![nb("ws_bank_q", "drain_bank_q"), nb("drain_bank_q", "~drain_bank_q")],
        ),
        nb("bank_full_q", "(bank_full_q | bank_set) & ~bank_clear"),
    ];
    if s > 1 {
        issue.push(if_else(
            "ws_start",
            vec![nb("ws_step_q", lit(sb, 0))],
            vec![if_("ws_busy_q", vec![nb("ws_step_q", format!("ws_step_q + {}", lit(sb, 1)))])],
        ));
    }
    m.clocked(
        "weigh_control",
        vec![if_else(
            "rst",
            vec![
                nb("ws_busy_q", "1'b0"),
                nb("ws_bank_q", "1'b0"),
                nb("drain_bank_q", "1'b0"),
                nb("bank_full_q", "2'b00"),
            ],
            issue,
        )],
    );

    // Table: written through cfg, read R entries per step.
    m.comment("Table, loaded at run time: a PE line's centroid products, nl_reduce's f(centroid).");
    m.push(Item::Reg { name: "lut_q".into(), width: lb, signed: true, depth: Some(b) });
    m.clocked("lut_write", vec![if_("cfg_we", vec![nb("lut_q[cfg_addr]", "cfg_wdata")])]);

    // Stage A: operand select per multiplier lane.
    m.reg("a_valid_q", 1).reg("a_first_q", 1).reg("a_last_q", 1);
    m.reg("a_count_q", r * cw).reg("a_lut_q", r * lb);
    let lut_index = match (sb, rb) {
        (0, _) => "MUL_LANE".to_string(),
        (_, 0) => step_expr.to_string(),
        _ => format!("{{{step_expr}, MUL_LANE}}"),
    };
    let mut lane_body = vec![];
    if rb > 0 {
        // The multiplier lane as a constant of the width the LUT address needs.
        lane_body.push(Item::GenParam { name: "MUL_LANE".into(), width: rb, expr: "mul".into() });
    }
    lane_body.push(Item::Reg { name: "op_count".into(), width: cw, signed: false, depth: None });
    let pick = |st: u32| {
        let idx = format!("({st} * R + mul) * CNT_W");
        bl("op_count", format!("ws_bank_q ? bank1_q[{idx} +: CNT_W] : bank0_q[{idx} +: CNT_W]"))
    };
    let select = if s > 1 {
        vec![Stmt::Case {
            sel: "ws_step_q".into(),
            arms: (0..s - 1).map(|st| (lit(sb, st as u64), vec![pick(st)])).collect(),
            default: vec![pick(s - 1)],
        }]
    } else {
        vec![pick(0)]
    };
    lane_body.push(Item::Comb { label: "select_count".into(), body: select });
    lane_body.push(Item::Clocked {
        label: "operands".into(),
        body: vec![
            nb("a_count_q[mul*CNT_W +: CNT_W]", "op_count"),
            nb("a_lut_q[mul*LUT_W +: LUT_W]", format!("lut_q[{lut_index}]")),
        ],
    });
    m.push(Item::GenFor { label: "g_operand".into(), var: "mul".into(), count: r, body: lane_body });
    m.clocked(
        "stage_a",
        vec![
            nb("a_valid_q", "rst ? 1'b0 : ws_busy_q"),
            nb("a_first_q", if s > 1 { format!("ws_step_q == {}", lit(sb, 0)) } else { "1'b1".into() }),
            nb("a_last_q", "ws_final"),
        ],
    );

    // Stage B: products. Counts are non-negative: zero-extend, then multiply signed at Y_W,
    // where the caller's width derivation rules out overflow.
    m.comment("Products at Y_W bits: the instantiating block sizes Y_W so that |count * TABLE| < 2^(Y_W-1).");
    m.reg("b_valid_q", 1).reg("b_first_q", 1).reg("b_last_q", 1).reg("b_prod_q", r * yb);
    m.push(Item::GenFor {
        label: "g_multiply".into(),
        var: "mul".into(),
        count: r,
        body: vec![
            Item::Wire {
                name: "count_ext".into(),
                width: yb,
                signed: true,
                depth: None,
                init: Some(zext("a_count_q[mul*CNT_W +: CNT_W]", cw, yb)),
            },
            Item::Wire {
                name: "lut_entry".into(),
                width: lb,
                signed: true,
                depth: None,
                init: Some("a_lut_q[mul*LUT_W +: LUT_W]".into()),
            },
            Item::Wire {
                name: "lut_ext".into(),
                width: yb,
                signed: true,
                depth: None,
                init: Some(sext("lut_entry", lb, yb)),
            },
            Item::Clocked {
                label: "product".into(),
                body: vec![nb("b_prod_q[mul*Y_W +: Y_W]", "count_ext * lut_ext")],
            },
        ],
    });
    m.clocked(
        "stage_b",
        vec![
            nb("b_valid_q", "rst ? 1'b0 : a_valid_q"),
            nb("b_first_q", "a_first_q"),
            nb("b_last_q", "a_last_q"),
        ],
    );

    // Stage C: adder tree + accumulate; the last step's sum goes straight into the FIFO.
    m.comment(format!("Sum of the step's products, accumulated over the steps of one {}.", "result"));
    m.wire("step_sum", yb).reg("acc_q", yb);
    m.instance(&tree, "u_add_tree", &[("i_terms", "b_prod_q".into()), ("o_sum", "step_sum".into())]);
    m.wire_eq("acc_next", yb, "(b_first_q ? {Y_W{1'b0}} : acc_q) + step_sum");
    m.clocked("stage_c", vec![if_("b_valid_q", vec![nb("acc_q", "acc_next")])]);

    m.comment("Results wait here for the sink; credits guarantee a free slot for every push.");
    m.wire_eq("push", 1, "b_valid_q & b_last_q");
    m.wire_eq("pop", 1, "m_valid & m_ready");
    m.wire("fifo_data", yb);
    m.instance(
        &fifo,
        "u_result_fifo",
        &[
            ("clk", "clk".into()),
            ("rst", "rst".into()),
            ("push", "push".into()),
            ("push_data", "acc_next".into()),
            ("pop", "pop".into()),
            ("m_valid", "m_valid".into()),
            ("m_data", "fifo_data".into()),
        ],
    );
    m.assign("m_y", "fifo_data");
    m.clocked(
        "credits",
        vec![if_else(
            "rst",
            vec![nb("outstanding_q", lit(ob, 0))],
            vec![nb(
                "outstanding_q",
                format!("outstanding_q + {{{}'d0, ws_start}} - {{{}'d0, pop}}", ob - 1, ob - 1),
            )],
        )],
    );
    m.assign(
        "idle",
        format!(
            "~s1_valid_q & ~s2_valid_q & fill_fresh_q & (bank_full_q == 2'b00) & ~ws_busy_q \
             & ~a_valid_q & ~b_valid_q & (outstanding_q == {})",
            lit(ob, 0)
        ),
    );
    m
}

/// Cycle model of the core's control, register for register, with an always-valid source and
/// an always-ready sink. It predicts what the testbench measures.
pub mod timing {
    use super::CountWeigh;

    /// Cycles from the first input transfer to the last result transfer, inclusive, for dot
    /// products of `beats[i]` beats streamed back to back.
    pub fn cycles(d: &CountWeigh, beats: &[u32]) -> u64 {
        let (first, outs) = schedule(d, beats);
        span(first, &outs)
    }

    /// Cycles from the first input edge to the last result edge, inclusive (0 if none).
    pub fn span(first: Option<u64>, outs: &[u64]) -> u64 {
        match (first, outs.last()) {
            (Some(f), Some(l)) => l - f + 1,
            _ => 0,
        }
    }

    /// Returns the edge of the first input transfer and the edge of each result transfer.
    pub fn schedule(d: &CountWeigh, beats: &[u32]) -> (Option<u64>, Vec<u64>) {
        let mut core = Core::new(d);
        let (mut dot, mut beat) = (0usize, 0u32);
        let mut first = None;
        let mut outs = vec![];
        let mut edge = 0u64;
        let total_beats: u64 = beats.iter().map(|&b| b.max(1) as u64).sum();
        let limit = 100 + total_beats * 4 + beats.len() as u64 * (d.weigh_steps as u64 + 10) * 2;
        while outs.len() < beats.len() {
            assert!(edge < limit, "timing model did not finish");
            let in_fire = dot < beats.len() && core.s_ready();
            let pop = core.m_valid();
            let mut in_last = false;
            if in_fire {
                first.get_or_insert(edge);
                beat += 1;
                in_last = beat >= beats[dot].max(1);
                if in_last {
                    dot += 1;
                    beat = 0;
                }
            }
            core.edge(in_fire, in_last, pop);
            if pop {
                outs.push(edge);
            }
            edge += 1;
        }
        (first, outs)
    }

    /// The core's control state, one clock edge at a time: what a block that instantiates the
    /// core (the tile, whose lines may see gaps and a sink that is not always ready) steps
    /// inside its own cycle model.
    #[derive(Clone, Debug)]
    pub struct Core {
        steps: u32,
        fifo_depth: u32,
        s1v: bool,
        s1l: bool,
        s2v: bool,
        s2l: bool,
        full: [bool; 2],
        fill_bank: usize,
        busy: bool,
        step: u32,
        ws_bank: usize,
        drain: usize,
        av: bool,
        al: bool,
        bv: bool,
        bl: bool,
        outstanding: u32,
        fifo: u32,
    }

    impl Core {
        pub fn new(d: &CountWeigh) -> Self {
            Core {
                steps: d.weigh_steps,
                fifo_depth: d.fifo_depth,
                s1v: false,
                s1l: false,
                s2v: false,
                s2l: false,
                full: [false; 2],
                fill_bank: 0,
                busy: false,
                step: 0,
                ws_bank: 0,
                drain: 0,
                av: false,
                al: false,
                bv: false,
                bl: false,
                outstanding: 0,
                fifo: 0,
            }
        }

        fn start(&self) -> bool {
            let final_ = self.busy && self.step == self.steps - 1;
            let ready_to_weigh = self.full[self.drain] || (self.s2v && self.s2l && self.fill_bank == self.drain);
            ready_to_weigh && (!self.busy || final_) && self.outstanding < self.fifo_depth
        }

        /// `s_ready` before the edge (it depends on state only, never on `s_valid`).
        pub fn s_ready(&self) -> bool {
            let occupied = self.full[0] as u32 + self.full[1] as u32 + (self.s1v && self.s1l) as u32 + (self.s2v && self.s2l) as u32;
            let releasing = (self.busy && self.step + 2 >= self.steps) as u32 + (self.steps == 1 && self.start()) as u32;
            occupied - releasing < 2
        }

        /// `m_valid` before the edge: a result waits in the FIFO.
        pub fn m_valid(&self) -> bool {
            self.fifo > 0
        }

        /// One clock edge: an input beat transfers (`in_fire`, the result's last beat if
        /// `in_last`) and/or the head result leaves (`pop`, only while `m_valid`).
        pub fn edge(&mut self, in_fire: bool, in_last: bool, pop: bool) {
            let final_ = self.busy && self.step == self.steps - 1;
            let start = self.start();
            let push = self.bv && self.bl;
            let set = self.s2v && self.s2l;
            let set_bank = self.fill_bank;
            if set {
                self.fill_bank ^= 1;
            }
            (self.s2v, self.s2l) = (self.s1v, self.s1l);
            (self.s1v, self.s1l) = (in_fire, in_fire && in_last);
            (self.bv, self.bl) = (self.av, self.al);
            (self.av, self.al) = (self.busy, final_);
            if final_ {
                self.full[self.ws_bank] = false;
            }
            if set {
                self.full[set_bank] = true;
            }
            if start {
                self.ws_bank = self.drain;
                self.drain ^= 1;
                self.step = 0;
            } else if self.busy {
                self.step += 1;
            }
            self.busy = start || (self.busy && !final_);
            self.outstanding = self.outstanding + start as u32 - pop as u32;
            self.fifo = self.fifo + push as u32 - pop as u32;
        }
    }
}
