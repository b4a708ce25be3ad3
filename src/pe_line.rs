//! Index-accumulation PE line (`kllm_pe_line`): a MatMul on K-Means indices by counting pairs.
//!
//! For every reduction element the line concatenates `idx_a ∥ idx_w`, one-hot decodes it and
//! counts per pair ("bin") how often it occurred; at the end of a dot product the counts meet a
//! run-time-loaded table of centroid products, `Y = Σ count[j]·LUT[j]`, on `reduce_width`
//! multipliers. Two count banks let the next dot product be counted while the previous one is
//! being weighed.
//!
//! Pipeline (one row per register stage, see `timing` for the cycle model that mirrors it):
//! ```text
//!  s_* ──► S1 input regs ──► S2 per-bin popcount regs ──► count bank 0/1 (accumulate)
//!                                                               │ bank full
//!                                       weighted-sum issue (one step = reduce_width bins/cycle)
//!                                  A operand regs ──► B product regs ──► C tree + accumulate ──► FIFO ──► m_*
//! ```

use serde::{Deserialize, Serialize};

use crate::config::{in_range, power_of_two, Config, QuantConfig};
use crate::registry::{BlockKind, Workload};
use crate::golden::{hex_lanes, hex_signed, GoldenWriter};
use crate::reference;
use crate::rng::Rng;
use crate::verilog::{
    bl, clog2, if_, if_else, lit, nb, sext, ubits, zext, Design, Handle, Item, Module, Stmt,
};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PeLineConfig {
    /// Index pairs accepted per cycle.
    pub lanes: u32,
    /// Multipliers in the weighted-sum tree (bins weighed per cycle).
    pub reduce_width: u32,
    /// Longest reduction (dot-product length) the counters are sized for.
    pub k_max: u32,
    /// Also generate the dequantize-multiply baseline `kllm_dq_pe_line`
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
}

impl Default for PeLineConfig {
    fn default() -> Self {
        PeLineConfig { lanes: 16, reduce_width: 8, k_max: 4096, baseline: false }
    }
}

impl PeLineConfig {
    pub fn validate(&self, q: &QuantConfig) -> Result<(), String> {
        // One lane would leave the popcount and the lane buses one bit wide, a degenerate line
        // that is just a counter; a beat holding more elements than k_max is outside the
        // counters' range.
        in_range("pe_line.lanes", self.lanes, 2, 512)?;
        in_range("pe_line.k_max", self.k_max, self.lanes, 1 << 20)
            .map_err(|e| format!("{e}; one beat of `pe_line.lanes` = {} elements must fit the counters", self.lanes))?;
        in_range("pe_line.reduce_width", self.reduce_width, 1, q.bins()).map_err(|e| {
            format!("{e}; there are 2^(na+nw) = {} bins to weigh", q.bins())
        })?;
        power_of_two("pe_line.reduce_width", self.reduce_width)?;
        if q.na + q.nw > 12 {
            return Err(format!(
                "`quant.na` + `quant.nw` = {} gives {} counting bins per PE line; the PE line \
                 allows na + nw <= 12 (4096 bins)",
                q.na + q.nw,
                q.bins()
            ));
        }
        Ok(())
    }
}

/// Every derived quantity of a PE line; the manifest and `explain` print this.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PeLineDerived {
    pub lanes: u32,
    pub na: u32,
    pub nw: u32,
    pub bins: u32,
    pub pair_bits: u32,
    pub lut_bits: u32,
    pub popcount_bits: u32,
    pub count_bits: u32,
    pub y_bits: u32,
    pub reduce_width: u32,
    pub weigh_steps: u32,
    pub fifo_depth: u32,
    pub k_max: u32,
    /// Cycles from the first input beat's transfer to the result's transfer, inclusive, for one
    /// dot product of `n` beats on an idle line: `n + latency_extra`.
    pub latency_extra: u32,
    /// Register bits in the RTL as written (synthesis may add a few, e.g. when it turns the
    /// FIFO's read into a registered memory port).
    pub register_bits: u64,
    pub predicted: PePredicted,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PePredicted {
    /// One dot product of K = k_max on an idle line (cycles, inclusive).
    pub single_kmax_cycles: u64,
    /// A GEMV: 64 dot products of K = k_max streamed back to back.
    pub gemv64_kmax_cycles: u64,
    /// 64 dot products of K = lanes (one beat each): the weighing-bound case.
    pub gemv64_one_beat_cycles: u64,
}

impl PePredicted {
    /// The manifest's three workloads, timed by a line's cycle model (`cycles(beats)`), so the
    /// PE line and its baseline predict the same workloads.
    pub fn from_model(k_max: u32, lanes: u32, cycles: impl Fn(&[u32]) -> u64) -> Self {
        let kbeats = k_max.div_ceil(lanes);
        PePredicted {
            single_kmax_cycles: cycles(&[kbeats]),
            gemv64_kmax_cycles: cycles(&[kbeats; 64]),
            gemv64_one_beat_cycles: cycles(&[1; 64]),
        }
    }
}

/// Fixed pipeline cycles between the last input beat and the result, beyond the weigh steps.
const PIPE_EXTRA: u32 = 6;

impl PeLineDerived {
    pub fn new(q: &QuantConfig, c: &PeLineConfig) -> Self {
        let bins = q.bins();
        let steps = bins / c.reduce_width;
        let count_bits = ubits(c.k_max as u64);
        let lut_bits = q.lut_bits();
        let y_bits = lut_bits - 1 + count_bits;
        let pc_bits = ubits(c.lanes as u64);
        let pair_bits = q.na + q.nw;
        let fifo_depth = fifo_depth(steps);
        let (l, b, r) = (c.lanes as u64, bins as u64, c.reduce_width as u64);
        let (cw, lb, yb, pcw) = (count_bits as u64, lut_bits as u64, y_bits as u64, pc_bits as u64);
        let step_bits = clog2(steps as u64) as u64;
        let register_bits = (2 + l * (pair_bits as u64 + 1)) // S1: valid, last, pairs, keep
            + (2 + b * pcw) // S2: valid, last, per-bin popcounts
            + 2 * b * cw // two count banks
            + 4 // bank_full[2], fill_bank, fill_fresh
            + 3 + step_bits + ubits(fifo_depth as u64) as u64 // weigh control, credits
            + b * lb // LUT
            + 3 + r * (cw + lb) // stage A
            + 3 + r * yb // stage B
            + yb // accumulator
            + fifo_depth as u64 * yb + 2 * (clog2(fifo_depth as u64) as u64 + 1); // result FIFO
        let mut d = PeLineDerived {
            lanes: c.lanes,
            na: q.na,
            nw: q.nw,
            bins,
            pair_bits,
            lut_bits,
            popcount_bits: pc_bits,
            count_bits,
            y_bits,
            reduce_width: c.reduce_width,
            weigh_steps: steps,
            fifo_depth,
            k_max: c.k_max,
            latency_extra: steps + PIPE_EXTRA,
            register_bits,
            predicted: PePredicted::default(),
        };
        d.predicted = PePredicted::from_model(c.k_max, c.lanes, |beats| timing::cycles(&d, beats));
        d
    }
}

/// Output FIFO depth so that, with a ready sink, results never wait for a slot: a result holds
/// its credit from weigh start to pop, `steps + 3` cycles, while new starts come every `steps`.
fn fifo_depth(steps: u32) -> u32 {
    let outstanding = (steps + 2) / steps + 1;
    outstanding.next_power_of_two().max(2)
}

pub const TOP: &str = "kllm_pe_line";

/// Builds the PE line as module `module` (`kllm_pe_line` as a design's top) and its sub-modules
/// into `d`.
pub fn generate(d: &mut Design, q: &QuantConfig, c: &PeLineConfig, module: &str) -> Handle {
    let g = PeLineDerived::new(q, c);

    let (l, b, pb, pcw, cw, lb, yb, r) = (
        g.lanes, g.bins, g.pair_bits, g.popcount_bits, g.count_bits, g.lut_bits, g.y_bits,
        g.reduce_width,
    );
    let mut m = Module::new(module);
    m.doc(format!(
        "Index-accumulation PE line: {l} index pairs per cycle, {b} bins (na={}, nw={}), \
         {r} multipliers, K <= {}.",
        q.na, q.nw, c.k_max
    ));
    m.doc("Y = sum over bins j of count[j] * LUT[j], LUT[j] = ca[j >> nw] * cw[j & (2^nw-1)].");
    m.doc("Write the LUT through cfg_* only while `idle` is high; K must not exceed K_MAX.");
    m.clock_reset();
    m.input("cfg_we", 1, "LUT write enable")
        .input("cfg_addr", pb, "LUT entry: pair index (idx_a << nw) | idx_w")
        .input_signed("cfg_wdata", lb, "LUT value ca*cw, signed")
        .input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready")
        .input("s_idx_a", l * q.na, "activation index of lane i at [i*NA +: NA]")
        .input("s_idx_w", l * q.nw, "weight index of lane i at [i*NW +: NW]")
        .input("s_keep", l, "lane i holds a reduction element")
        .input("s_last", 1, "last beat of this dot product")
        .output("m_valid", 1, "result valid")
        .input("m_ready", 1, "result taken when valid && ready")
        .output_signed("m_y", yb, "dot product, signed")
        .output("idle", 1, "nothing in flight: LUT writes are safe");

    for (name, value) in [
        ("LANES", l), ("NA", q.na), ("NW", q.nw), ("PAIR_W", pb), ("PCNT_W", pcw), ("CNT_W", cw),
        ("LUT_W", lb), ("Y_W", yb), ("R", r),
    ] {
        m.localparam(name, 0, value as i64);
    }

    // The pair index of every lane, {idx_a, idx_w}: what the bins count.
    m.wire("in_pairs", l * pb);
    m.push(Item::GenFor {
        label: "g_in_lane".into(),
        var: "lane".into(),
        count: l,
        body: vec![Item::Assign {
            lhs: "in_pairs[lane*PAIR_W +: PAIR_W]".into(),
            rhs: "{s_idx_a[lane*NA +: NA], s_idx_w[lane*NW +: NW]}".into(),
        }],
    });
    count_and_weigh(
        &mut m,
        d,
        &WeighShape {
            lanes: l,
            idx_bits: pb,
            bins: b,
            popcount_bits: pcw,
            count_bits: cw,
            table_bits: lb,
            y_bits: yb,
            reduce_width: r,
            fifo_depth: g.fifo_depth,
        },
        &WeighText {
            item: "dot product",
            table: "Centroid-product table, loaded at run time.",
            bound: "Products at Y_W bits: |count * LUT| <= K_MAX * 2^(LUT_W-2) < 2^(Y_W-1).",
            out_port: "m_y",
            element: "pair",
            idx_reg: "s1_pairs_q",
            idx_param: "PAIR_W",
            idx_source: "in_pairs",
        },
    );
    d.add(m);
    Handle::of(d, module, serde_json::to_value(&g).unwrap())
}

/// The module name of a PE line that must coexist with differently parameterized lines in one
/// design: every parameter that changes its body is in the name.
pub fn module_name(q: &QuantConfig, c: &PeLineConfig) -> String {
    format!(
        "kllm_pe_line_a{}w{}_c{}x{}_l{}_r{}_k{}",
        q.na, q.nw, q.ac_bits, q.wc_bits, c.lanes, c.reduce_width, c.k_max
    )
}

/// Registry entry.
pub struct PeLineBlock;

impl BlockKind for PeLineBlock {
    fn name(&self) -> &'static str {
        "pe_line"
    }
    fn top(&self) -> &'static str {
        TOP
    }
    fn section(&self) -> &'static str {
        "pe_line"
    }
    fn selected(&self, cfg: &Config) -> bool {
        cfg.pe_line.is_some()
    }
    fn validate(&self, cfg: &Config) -> Result<(), String> {
        cfg.pe_line.as_ref().map_or(Ok(()), |c| c.validate(&cfg.quant))
    }
    fn derived(&self, cfg: &Config) -> serde_json::Value {
        serde_json::to_value(PeLineDerived::new(&cfg.quant, section(cfg))).unwrap()
    }
    fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle {
        generate(d, &cfg.quant, section(cfg), module)
    }
    fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
        golden(&cfg.quant, section(cfg), vectors, seed, w)
    }
    fn workload(&self) -> Option<Workload> {
        Some(gemv_workload())
    }
    fn multipliers(&self, derived: &serde_json::Value) -> Option<u64> {
        derived.get("reduce_width").and_then(serde_json::Value::as_u64)
    }
    fn accuracy_outliers(&self, _cfg: &Config) -> Option<f64> {
        Some(0.0)
    }
}

/// The `[pe_line]` section of a config that selects a PE line (or its baseline).
pub fn section(cfg: &Config) -> &PeLineConfig {
    cfg.pe_line.as_ref().expect("block selected only when [pe_line] is present")
}

/// The timed workload of a PE line and its baseline: a GEMV of 64 dot products of K = k_max.
pub fn gemv_workload() -> Workload {
    Workload {
        segment: 1,
        predicted: "/predicted/gemv64_kmax_cycles",
        items: 64,
        per_item: |c| Some(c.pe_line.as_ref()?.k_max as u64),
        unit: "MAC/cycle",
        kind: "a GEMV of 64 dot products of K = k_max, back to back",
        size: "GEMV 64 x K=",
    }
}

/// What differs between the users of the count-and-weigh back end: generated comments and the
/// result port's name.
pub(crate) struct WeighText<'a> {
    /// What one result is of ("dot product", "vector").
    pub item: &'a str,
    /// Comment on the run-time table.
    pub table: &'a str,
    /// Comment stating why the products cannot overflow Y_W.
    pub bound: &'a str,
    pub out_port: &'a str,
    /// What a lane carries ("pair", "index").
    pub element: &'a str,
    /// The S1 register holding the lanes' indices, the localparam of its lane width, and the
    /// expression it is loaded from.
    pub idx_reg: &'a str,
    pub idx_param: &'a str,
    pub idx_source: &'a str,
}

/// The numbers the back end is built from.
pub(crate) struct WeighShape {
    pub lanes: u32,
    /// Bits of what one lane carries into the one-hot decode (a pair index, or an index).
    pub idx_bits: u32,
    pub bins: u32,
    pub popcount_bits: u32,
    pub count_bits: u32,
    pub table_bits: u32,
    pub y_bits: u32,
    pub reduce_width: u32,
    pub fifo_depth: u32,
}

/// Everything from the input registers on: handshake, one-hot decode and per-bin popcount,
/// count banks, weighing issue, operand/product/accumulate stages, the result FIFO, credits and
/// `idle`; shared by `kllm_pe_line` and `kllm_nl_reduce`. The caller declares the ports
/// (`s_valid`, `s_ready`, `s_keep`, `s_last`, `cfg_*`, `m_valid`, `m_ready`, `idle`, the result
/// port), the localparams LANES, PCNT_W, CNT_W, LUT_W, Y_W, R and `idx_param`, and whatever
/// `idx_source` names.
pub(crate) fn count_and_weigh(m: &mut Module, d: &mut Design, g: &WeighShape, t: &WeighText) {
    let (b, pcw, cw, lb, yb, r) =
        (g.bins, g.popcount_bits, g.count_bits, g.table_bits, g.y_bits, g.reduce_width);
    let s = b / r;
    let sb = clog2(s as u64);
    let rb = clog2(r as u64);
    let ob = ubits(g.fifo_depth as u64);
    let tree = add_tree_module(d, r, yb);
    let fifo = crate::common::fifo_module(d, yb, g.fifo_depth);
    let (l, pb, popcount) = (g.lanes, g.idx_bits, popcount_module(d, g.lanes));
    // ---------------------------------------------------------------- S1: input registers
    m.comment(format!(
        "Input handshake. A beat is accepted only if the bank it will count into is free:\n\
         at most one finished-but-unweighed {} may exist besides the one streaming.",
        t.item
    ));
    m.reg("s1_valid_q", 1).reg("s1_last_q", 1).reg(t.idx_reg, l * pb).reg("s1_keep_q", l);
    m.reg("s2_valid_q", 1).reg("s2_last_q", 1).reg("s2_count_q", b * pcw);
    m.reg("bank_full_q", 2).reg("fill_bank_q", 1).reg("fill_fresh_q", 1);
    m.wire_eq(
        "pending",
        2,
        "{1'b0, bank_full_q[0]} + {1'b0, bank_full_q[1]} + {1'b0, s1_valid_q & s1_last_q} \
         + {1'b0, s2_valid_q & s2_last_q}",
    );
    m.assign("s_ready", "(pending < 2'd2)");
    m.wire_eq("in_fire", 1, "s_valid & s_ready");
    m.clocked(
        "stage1",
        vec![
            nb("s1_valid_q", "rst ? 1'b0 : in_fire"),
            if_(
                "in_fire",
                vec![nb("s1_last_q", "s_last"), nb(t.idx_reg, t.idx_source), nb("s1_keep_q", "s_keep")],
            ),
        ],
    );

    // ---------------------------------------------------------------- S2: decode + popcount
    m.comment(format!(
        "One-hot decode of every lane's {}, transposed so each bin sees one bit per lane.",
        t.element
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
                    t.idx_reg,
                    t.idx_param,
                    t.idx_param
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
        t.item
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
        item = t.item
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
    m.wire_eq(
        "ws_start",
        1,
        format!(
            "bank_full_q[drain_bank_q] & (~ws_busy_q | ws_final) & (outstanding_q < {})",
            lit(ob, g.fifo_depth as u64)
        ),
    );
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
    m.comment(t.table);
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
    m.comment(t.bound);
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
    m.comment(format!("Sum of the step's products, accumulated over the steps of one {}.", t.item));
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
    m.assign(t.out_port, "fifo_data");
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

}

/// `kllm_popcount_w{n}`: number of set bits, as a balanced tree of smaller popcounts.
pub fn popcount_module(d: &mut Design, n: u32) -> String {
    let name = format!("kllm_popcount_w{n}");
    if d.get(&name).is_some() {
        return name;
    }
    let ow = ubits(n as u64);
    let mut m = Module::new(&name);
    m.doc(format!("Population count of {n} bits."));
    m.input("i_bits", n, "").output("o_count", ow, "number of ones in i_bits");
    if n <= 4 {
        m.reg("sum", ow).push(Item::Integer("i".into()));
        m.comb(
            "count_ones",
            vec![
                bl("sum", lit(ow, 0)),
                Stmt::For {
                    var: "i".into(),
                    count: n,
                    body: vec![bl("sum", format!("sum + {}", zext("i_bits[i]", 1, ow)))],
                },
            ],
        );
        m.assign("o_count", "sum");
    } else {
        let lo = n / 2;
        let hi = n - lo;
        let (lw, hw) = (ubits(lo as u64), ubits(hi as u64));
        let lo_m = popcount_module(d, lo);
        let hi_m = popcount_module(d, hi);
        m.wire("count_lo", lw).wire("count_hi", hw);
        m.instance(&lo_m, "u_lo", &[("i_bits", format!("i_bits[{}:0]", lo - 1)), ("o_count", "count_lo".into())]);
        m.instance(&hi_m, "u_hi", &[("i_bits", format!("i_bits[{}:{lo}]", n - 1)), ("o_count", "count_hi".into())]);
        m.assign("o_count", format!("{} + {}", zext("count_lo", lw, ow), zext("count_hi", hw, ow)));
    }
    d.add(m);
    name
}

/// `kllm_add_tree_n{n}_w{w}`: sum of `n` two's-complement terms at width `w` (callers size `w`
/// so the sum cannot overflow), as a balanced binary tree.
pub fn add_tree_module(d: &mut Design, n: u32, w: u32) -> String {
    let name = format!("kllm_add_tree_n{n}_w{w}");
    if d.get(&name).is_some() {
        return name;
    }
    let mut m = Module::new(&name);
    m.doc(format!("Sum of {n} terms of {w} bits (balanced tree; the caller rules out overflow)."));
    m.input("i_terms", n * w, "term t at [t*W +: W]").output("o_sum", w, "");
    if n == 1 {
        m.assign("o_sum", "i_terms");
    } else {
        let lo = n / 2;
        let hi = n - lo;
        let lo_m = add_tree_module(d, lo, w);
        let hi_m = add_tree_module(d, hi, w);
        m.wire("sum_lo", w).wire("sum_hi", w);
        m.instance(&lo_m, "u_lo", &[("i_terms", format!("i_terms[{}:0]", lo * w - 1)), ("o_sum", "sum_lo".into())]);
        m.instance(
            &hi_m,
            "u_hi",
            &[("i_terms", format!("i_terms[{}:{}]", n * w - 1, lo * w)), ("o_sum", "sum_hi".into())],
        );
        m.assign("o_sum", "sum_lo + sum_hi");
    }
    d.add(m);
    name
}

/// Cycle model of the line's control, register for register, with an always-valid source and
/// an always-ready sink. It predicts what the testbench measures.
pub mod timing {
    use super::PeLineDerived;

    /// Cycles from the first input transfer to the last result transfer, inclusive, for dot
    /// products of `beats[i]` beats streamed back to back.
    pub fn cycles(d: &PeLineDerived, beats: &[u32]) -> u64 {
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
    pub fn schedule(d: &PeLineDerived, beats: &[u32]) -> (Option<u64>, Vec<u64>) {
        let steps = d.weigh_steps;
        let (mut s1v, mut s1l, mut s2v, mut s2l) = (false, false, false, false);
        let mut full = [false; 2];
        let mut fill_bank = 0usize;
        let (mut busy, mut step, mut ws_bank, mut drain) = (false, 0u32, 0usize, 0usize);
        let (mut av, mut al, mut bv, mut bl) = (false, false, false, false);
        let (mut outstanding, mut fifo) = (0u32, 0u32);
        let (mut dot, mut beat) = (0usize, 0u32);
        let mut first = None;
        let mut outs = vec![];
        let mut edge = 0u64;
        let total_beats: u64 = beats.iter().map(|&b| b.max(1) as u64).sum();
        let limit = 100 + total_beats * 4 + beats.len() as u64 * (steps as u64 + 10) * 2;
        while outs.len() < beats.len() {
            assert!(edge < limit, "timing model did not finish");
            // Combinational values before the edge.
            let pending = full[0] as u32 + full[1] as u32 + (s1v && s1l) as u32 + (s2v && s2l) as u32;
            let have = dot < beats.len();
            let in_fire = have && pending < 2;
            let final_ = busy && step == steps - 1;
            let start = full[drain] && (!busy || final_) && outstanding < d.fifo_depth;
            let pop = fifo > 0;
            let push = bv && bl;
            // The edge.
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
            let set = s2v && s2l;
            let set_bank = fill_bank;
            if s2v && s2l {
                fill_bank ^= 1;
            }
            (s2v, s2l) = (s1v, s1l);
            (s1v, s1l) = (in_fire, in_last);
            (bv, bl) = (av, al);
            (av, al) = (busy, final_);
            if final_ {
                full[ws_bank] = false;
            }
            if set {
                full[set_bank] = true;
            }
            if start {
                ws_bank = drain;
                drain ^= 1;
                step = 0;
            } else if busy {
                step += 1;
            }
            busy = start || (busy && !final_);
            outstanding = outstanding + start as u32 - pop as u32;
            fifo = fifo + push as u32 - pop as u32;
            if pop {
                outs.push(edge);
            }
            edge += 1;
        }
        (first, outs)
    }
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

/// Writes the stimulus and expected results for `vectors` random dot products, in segments
/// that each load a fresh random codebook pair, followed by timed segments whose cycle counts
/// come from the cycle model.
pub fn golden(q: &QuantConfig, c: &PeLineConfig, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let d = PeLineDerived::new(q, c);
    golden_dots(
        q,
        c,
        vectors,
        seed,
        w,
        &DotGolden {
            block: "pe_line",
            load: &|w, ca, cw| load_lut(w, &reference::lut(ca, cw, q.nw), q),
            cycles: &|beats| timing::cycles(&d, beats),
            extra: &|_, _, _| {},
        },
    );
}

/// What differs between the golden files of the PE line and of its dequantize-multiply
/// baseline, which share stimulus and expectations: how a codebook pair reaches the block, the
/// cycle model, and segments to insert before the timed ones (`extra(w, rng, dot)`, where
/// `dot(w, rng, ca, cw, ia, iw)` writes one dense dot product and its result).
pub(crate) struct DotGolden<'a> {
    pub block: &'a str,
    pub load: &'a dyn Fn(&mut GoldenWriter, &[i64], &[i64]),
    pub cycles: &'a dyn Fn(&[u32]) -> u64,
    #[allow(clippy::type_complexity)]
    pub extra: &'a dyn Fn(&mut GoldenWriter, &mut Rng, &dyn Fn(&mut GoldenWriter, &mut Rng, &[i64], &[i64], &[u32], &[u32])),
}

/// Random dot products in segments of fresh random codebooks (a third of them dense, the rest
/// with holes), then `extra`, then the three timed workloads of `PePredicted`.
pub(crate) fn golden_dots(q: &QuantConfig, c: &PeLineConfig, vectors: u32, seed: u64, w: &mut GoldenWriter, g: &DotGolden) {
    let d = PeLineDerived::new(q, c);
    let mut rng = Rng::new(seed);
    let (na, nw) = (q.na, q.nw);
    w.header(g.block, &["idx_a", "idx_w", "keep", "last"], &["y"]);
    let dot = |w: &mut GoldenWriter, rng: &mut Rng, ca: &[i64], cw: &[i64], ia: &[u32], iw: &[u32], holes: bool| {
        write_dot(w, rng, &d, ia, iw, holes);
        w.out(&[hex_signed(reference::dot(ca, cw, ia, iw), d.y_bits)]);
    };
    let codebooks = |rng: &mut Rng| {
        (reference::random_codebook(rng, 1 << na, q.ac_bits), reference::random_codebook(rng, 1 << nw, q.wc_bits))
    };
    let per_segment = 200u32;
    let mut done = 0u32;
    let mut seg = 0u32;
    while done < vectors {
        let n = per_segment.min(vectors - done);
        let (ca, cw) = codebooks(&mut rng);
        (g.load)(w, &ca, &cw);
        for _ in 0..n {
            let k = random_k(&mut rng, c.k_max);
            let (ia, iw) = random_indices(&mut rng, k, na, nw);
            dot(w, &mut rng, &ca, &cw, &ia, &iw, seg % 3 != 0);
        }
        w.sync();
        done += n;
        seg += 1;
    }
    (g.extra)(w, &mut rng, &|w, rng, ca, cw, ia, iw| dot(w, rng, ca, cw, ia, iw, false));
    // Timed segments: the manifest's workloads, dense beats, no gaps.
    let (ca, cw) = codebooks(&mut rng);
    (g.load)(w, &ca, &cw);
    for (count, k) in [(1usize, c.k_max), (64, c.k_max), (64, c.lanes.min(c.k_max))] {
        w.timing((g.cycles)(&vec![k.div_ceil(c.lanes); count]));
        for _ in 0..count {
            let (ia, iw) = random_indices(&mut rng, k as usize, na, nw);
            dot(w, &mut rng, &ca, &cw, &ia, &iw, false);
        }
        w.sync();
    }
}

pub(crate) fn load_lut(w: &mut GoldenWriter, lut: &[i64], q: &QuantConfig) {
    for (j, v) in lut.iter().enumerate() {
        w.cfg(j as u64, &hex_signed(*v, q.lut_bits()));
    }
}

/// A dot-product length: mostly short (log-uniform), some uniform over the range, and the
/// edges K = 1 and K = k_max.
fn random_k(rng: &mut Rng, k_max: u32) -> usize {
    let k = match rng.below(20) {
        0 => 1,
        1 => k_max as u64,
        2..=4 => rng.range(1, k_max as i64) as u64,
        _ => {
            let e = rng.unit() * (k_max as f64).ln();
            (e.exp() as u64).clamp(1, k_max as u64)
        }
    };
    k as usize
}

fn random_indices(rng: &mut Rng, k: usize, na: u32, nw: u32) -> (Vec<u32>, Vec<u32>) {
    // Some dot products use a single pair everywhere (all-same index: one bin counts to K).
    if rng.chance(1, 16) {
        let (a, b) = (rng.below(1 << na) as u32, rng.below(1 << nw) as u32);
        return (vec![a; k], vec![b; k]);
    }
    let ia = (0..k).map(|_| rng.below(1 << na) as u32).collect();
    let iw = (0..k).map(|_| rng.below(1 << nw) as u32).collect();
    (ia, iw)
}

/// Packs one dot product into beats. With `holes`, lanes are left empty at random (keep = 0),
/// so the element count of a beat varies; otherwise beats are dense and only the last is short.
pub(crate) fn write_dot(w: &mut GoldenWriter, rng: &mut Rng, d: &PeLineDerived, ia: &[u32], iw: &[u32], holes: bool) {
    let lanes = d.lanes as usize;
    let mut pos = 0;
    while pos < ia.len() || pos == 0 {
        let mut a = vec![0u64; lanes];
        let mut b = vec![0u64; lanes];
        let mut keep = vec![0u64; lanes];
        for lane in 0..lanes {
            if pos >= ia.len() || (holes && rng.chance(1, 4)) {
                // Junk in dropped lanes must not count.
                a[lane] = rng.below(1 << d.na);
                b[lane] = rng.below(1 << d.nw);
                continue;
            }
            a[lane] = ia[pos] as u64;
            b[lane] = iw[pos] as u64;
            keep[lane] = 1;
            pos += 1;
        }
        let last = pos >= ia.len();
        w.input(&[
            hex_lanes(&a, d.na),
            hex_lanes(&b, d.nw),
            hex_lanes(&keep, 1),
            (last as u8).to_string(),
        ]);
        if last {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derived(lanes: u32, r: u32, kmax: u32) -> PeLineDerived {
        let q = QuantConfig::default();
        PeLineDerived::new(&q, &PeLineConfig { lanes, reduce_width: r, k_max: kmax, baseline: false })
    }

    #[test]
    fn single_dot_latency_is_beats_plus_extra() {
        for (lanes, r) in [(16, 8), (4, 256), (64, 1), (16, 32)] {
            let d = derived(lanes, r, 4096);
            for n in [1, 2, 7, 256] {
                assert_eq!(timing::cycles(&d, &[n]), (n + d.latency_extra) as u64);
            }
        }
    }

    #[test]
    fn steady_state_interval_is_max_of_beats_and_steps() {
        for (lanes, r) in [(16, 8), (4, 256), (64, 1), (16, 32)] {
            let d = derived(lanes, r, 4096);
            for n in [1, 3, 32, 100] {
                let (_, outs) = timing::schedule(&d, &[n; 40]);
                let interval = outs[39] - outs[38];
                assert_eq!(interval, n.max(d.weigh_steps) as u64, "lanes={lanes} r={r} n={n}");
            }
        }
    }

    #[test]
    fn widths_follow_the_overflow_bound() {
        let d = derived(16, 8, 4096);
        assert_eq!((d.count_bits, d.y_bits, d.popcount_bits, d.weigh_steps), (13, 28, 5, 32));
        // By hand: S1 146 + S2 1282 + banks 6656 + 4 + control 10 + LUT 4096 + A 235 + B 227 + acc 28 + FIFO 60.
        assert_eq!(d.register_bits, 12744);
        // Worst case: K_MAX times the largest |LUT| = (-128)*(-128) must fit Y_W signed.
        assert!(4096i64 * 16384 < 1 << (d.y_bits - 1));
    }

    #[test]
    fn bad_reduce_width_is_rejected() {
        let q = QuantConfig { na: 2, nw: 2, ..QuantConfig::default() };
        let c = PeLineConfig { reduce_width: 32, ..PeLineConfig::default() };
        let e = c.validate(&q).unwrap_err();
        assert!(e.starts_with("`pe_line.reduce_width` = 32 is out of range (allowed 1..=16)"), "{e}");
        let c = PeLineConfig { reduce_width: 6, ..PeLineConfig::default() };
        assert!(c.validate(&q).unwrap_err().contains("power of two"));
    }
}
