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
//! With `weigh_pipeline` = P > 0, B is preceded by P stages M0 .. M(P-1) (the count split into
//! 2^P parts: partial products, then pairwise sums) and C is split by the registered adder tree
//! (`tree_stages` registers T0 ..), so the accumulator's add is a cycle of its own.
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
    /// Parts of a beat's per-bin popcount registered at S2 (1, 2 or 4): with S > 1 each bin's
    /// lanes are counted in S groups of lanes/S, the S partial counts are registered, and the
    /// count banks add their sum. The decode-and-popcount stage is the line's longest path at 16+
    /// lanes; splitting it moves one adder level per halving into the accumulate stage, at no
    /// cycle cost (the latency and the cycle model do not change).
    #[serde(skip_serializing_if = "is_one")]
    pub popcount_split: u32,
    pub count_bits: u32,
    /// Signed width of a table entry.
    pub table_bits: u32,
    /// Signed width of a result; the instantiating block rules out overflow.
    pub y_bits: u32,
    pub reduce_width: u32,
    pub weigh_steps: u32,
    /// Extra register stages in the weighing multiply (`count × table entry`): 0 multiplies in
    /// one stage; P > 0 splits each count into 2^P parts whose partial products are registered
    /// and then summed over P registered adder levels.
    pub weigh_pipeline: u32,
    /// Register stages of the adder tree over the products (the baseline's registered tree)
    /// when `weigh_pipeline` > 0 and there are 2+ multipliers; 0 otherwise (one-cycle tree).
    pub tree_stages: u32,
    pub fifo_depth: u32,
    /// A result of `n` beats on an idle core takes `n + latency_extra` cycles, first input
    /// transfer to result transfer, inclusive.
    pub latency_extra: u32,
}

/// serde's `skip_serializing_if` for knobs whose value 1 means "off" (this core's and the PE
/// line's `popcount_split`), so configs that leave them at 1 keep their manifests and hashes.
pub(crate) fn is_one(v: &u32) -> bool {
    *v == 1
}

/// Allowed `popcount_split` values.
pub const POPCOUNT_SPLITS: [u32; 3] = [1, 2, 4];

/// Checks a `popcount_split` against the lanes it divides; `key` names the config key.
pub fn validate_popcount_split(key: &str, split: u32, lanes: u32) -> Result<(), String> {
    if !POPCOUNT_SPLITS.contains(&split) || lanes % split != 0 || (split > 1 && lanes / split < 2) {
        return Err(format!(
            "`{key}` = {split}: allowed 1, 2 or 4, dividing the {lanes} lanes into groups of at least 2"
        ));
    }
    Ok(())
}

/// Fixed pipeline cycles between the last input beat and the result, beyond the weigh steps
/// and the multiply's extra stages.
const PIPE_EXTRA: u32 = 5;

/// Largest `weigh_pipeline`: a count split into 4 parts already multiplies in a few LUT levels.
pub const MAX_WEIGH_PIPELINE: u32 = 2;

impl CountWeigh {
    pub fn new(
        lanes: u32,
        idx_bits: u32,
        k_max: u32,
        table_bits: u32,
        y_bits: u32,
        reduce_width: u32,
        weigh_pipeline: u32,
        popcount_split: u32,
    ) -> Result<Self, String> {
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
        in_range("count_weigh.weigh_pipeline", weigh_pipeline, 0, MAX_WEIGH_PIPELINE)?;
        validate_popcount_split("count_weigh.popcount_split", popcount_split, lanes)?;
        if count_bits < 1 << weigh_pipeline {
            return Err(format!(
                "`weigh_pipeline` = {weigh_pipeline} splits each count into {} parts but a count has \
                 only {count_bits} bits; allowed 0..={}",
                1 << weigh_pipeline,
                count_bits.ilog2()
            ));
        }
        let bins = 1 << idx_bits;
        let steps = bins / reduce_width;
        let tree_stages = if weigh_pipeline > 0 && reduce_width >= 2 {
            crate::pe_baseline::tree_shape(reduce_width, y_bits, y_bits).iter().filter(|l| l.registered).count() as u32
        } else {
            0
        };
        let extra = weigh_pipeline + tree_stages;
        Ok(CountWeigh {
            lanes,
            idx_bits,
            bins,
            k_max,
            popcount_bits: ubits(lanes as u64),
            popcount_split,
            count_bits,
            table_bits,
            y_bits,
            reduce_width,
            weigh_steps: steps,
            weigh_pipeline,
            tree_stages,
            fifo_depth: fifo_depth(steps, extra),
            latency_extra: steps + PIPE_EXTRA + extra,
        })
    }

    /// The parts a count is split into for a pipelined multiply, low part first, as
    /// `(bit offset, width)`: 2^weigh_pipeline parts, the wider ones at the bottom.
    pub fn count_parts(&self) -> Vec<(u32, u32)> {
        let n = 1u32 << self.weigh_pipeline;
        let (base, extra) = (self.count_bits / n, self.count_bits % n);
        let mut off = 0;
        (0..n)
            .map(|k| {
                let w = base + (k < extra) as u32;
                off += w;
                (off - w, w)
            })
            .collect()
    }

    /// Bits of one registered partial popcount (a group of lanes / popcount_split lanes).
    pub fn part_bits(&self) -> u32 {
        ubits((self.lanes / self.popcount_split) as u64)
    }

    /// Register bits the pipelining adds: the multiply stages before the product registers
    /// (partial products, intermediate sums), the registered tree, and their valid/first/last
    /// flags; 0 without pipelining.
    pub fn pipeline_register_bits(&self) -> u64 {
        let p = self.weigh_pipeline;
        if p == 0 {
            return 0;
        }
        let r = self.reduce_width as u64;
        let partials: u64 = self.count_parts().iter().map(|&(_, w)| (w + 1 + self.table_bits) as u64).sum();
        let sums: u64 = (1..p).map(|level| (1u64 << (p - level)) * self.y_bits as u64).sum();
        let tree: u64 = if self.tree_stages > 0 {
            crate::pe_baseline::tree_shape(r as u32, self.y_bits, self.y_bits)
                .iter()
                .filter(|l| l.registered)
                .map(|l| l.nodes as u64 * l.width as u64)
                .sum()
        } else {
            0
        };
        3 * (p + self.tree_stages) as u64 + r * (partials + sums) + tree
    }

    /// The module name: every parameter that changes the body is in it, so cores of different
    /// shapes coexist in one design and equal shapes share one module.
    pub fn module_name(&self) -> String {
        let mut pipe = if self.weigh_pipeline > 0 { format!("_p{}", self.weigh_pipeline) } else { String::new() };
        if self.popcount_split > 1 {
            pipe += &format!("_s{}", self.popcount_split);
        }
        format!(
            "kllm_count_weigh_l{}_i{}_c{}_t{}_y{}_r{}{pipe}",
            self.lanes, self.idx_bits, self.count_bits, self.table_bits, self.y_bits, self.reduce_width
        )
    }
}

/// Output FIFO depth so that, with a ready sink, results never wait for a slot: a result's
/// credit is taken at its weigh start (cycle X) and returned by its pop at the edge of cycle
/// X + steps + 3 + pipeline, while new starts come every `steps` cycles; so
/// floor((steps + 3 + pipeline) / steps) credits are still out when the next start asks, and
/// it needs one more.
fn fifo_depth(steps: u32, pipeline: u32) -> u32 {
    let outstanding = (steps + 3 + pipeline) / steps + 1;
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
    instantiate_with(d, m, g, &[("s_idx", s_idx), ("m_y", m_y)]);
}

/// [`instantiate`] with any core port connected to a name of the caller's choosing (`renames`:
/// core port, connected to); the other ports go to the caller's signals of the same name.
pub fn instantiate_with(d: &mut Design, m: &mut Module, g: &CountWeigh, renames: &[(&str, &str)]) {
    let core = generate(d, g);
    let conns: Vec<(&str, String)> = core
        .ports
        .iter()
        .map(|p| {
            let name = p.name.as_str();
            let to = renames.iter().find(|(port, _)| *port == name).map_or(name, |(_, to)| *to);
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
    let fifo = crate::common::fifo_module(d, yb, g.fifo_depth);
    let (l, pb, popcount) = (g.lanes, g.idx_bits, crate::pe_line::popcount_module(d, g.lanes / g.popcount_split));
    // ---------------------------------------------------------------- S1: input registers
    m.comment(
        "Input handshake (s_ready is derived below, with the weighing control it depends on).",
    );
    m.reg("s1_valid_q", 1).reg("s1_last_q", 1).reg("s1_idx_q", l * pb).reg("s1_keep_q", l);
    // With a split popcount S2 holds each bin's partial counts; the banks add their sum.
    let (split, ppw) = (g.popcount_split, g.part_bits());
    let s2_reg = if split > 1 { "s2_part_q" } else { "s2_count_q" };
    m.reg("s2_valid_q", 1).reg("s2_last_q", 1).reg(s2_reg, b * split * ppw);
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
    // Bin-major decode with whole-vector operations: bit p of every lane's index forms a plane
    // (LANES bits), two predecoders turn the high and the low index bits into one lane mask per
    // value, and bin j's lanes are keep & high[j >> lo] & low[j & mask]. The obvious lane-major
    // form (a one-hot per lane, then LANES x bins single-bit assigns to transpose it: 131 072 of
    // them at 512 lanes and 256 bins) costs Verilator and Yosys many minutes and gigabytes.
    let lo = pb / 2;
    let hi = pb - lo;
    m.comment(format!(
        "One-hot decode, bin-major: index bit planes, predecoders of the high {hi} and low {lo} index\n\
         bits (one lane mask per value), and each bin's lanes = keep & high mask & low mask."
    ));
    m.wire("bin_hits", b * l).wire("bin_count", b * split * ppw);
    for p in 0..pb {
        m.wire(&format!("idx_bit{p}"), l);
    }
    m.push(Item::GenFor {
        label: "g_planes".into(),
        var: "lane".into(),
        count: l,
        body: (0..pb)
            .map(|p| Item::Assign { lhs: format!("idx_bit{p}[lane]"), rhs: format!("s1_idx_q[lane*IDX_W + {p}]") })
            .collect(),
    });
    let predecode = |m: &mut Module, name: &str, bits: std::ops::Range<u32>| {
        let n = bits.len() as u32;
        m.wire(name, (1 << n) * l);
        for v in 0..1u32 << n {
            let terms: Vec<String> = bits
                .clone()
                .rev()
                .map(|p| if v >> (p - bits.start) & 1 == 1 { format!("idx_bit{p}") } else { format!("~idx_bit{p}") })
                .collect();
            m.assign(format!("{name}[{v}*LANES +: LANES]"), terms.join(" & "));
        }
    };
    predecode(&mut m, "dec_high", lo..pb);
    let bin_lanes = if lo > 0 {
        predecode(&mut m, "dec_low", 0..lo);
        format!("s1_keep_q & dec_high[(bin >> {lo})*LANES +: LANES] & dec_low[(bin % {})*LANES +: LANES]", 1 << lo)
    } else {
        "s1_keep_q & dec_high[bin*LANES +: LANES]".to_string()
    };
    m.push(Item::GenFor {
        label: "g_bin_lanes".into(),
        var: "bin".into(),
        count: b,
        body: vec![Item::Assign { lhs: "bin_hits[bin*LANES +: LANES]".into(), rhs: bin_lanes }],
    });
    let (group, group_lanes, group_bits) = if split > 1 {
        m.comment(format!(
            "Each bin's lanes are counted in {split} groups of {} (group g of bin j is bin_hits[(j*{split} + g)*{} +: {}]);\n\
             the partial counts are registered and summed where the banks add them.",
            l / split,
            l / split,
            l / split
        ));
        ("grp", format!("{}", l / split), format!("{ppw}"))
    } else {
        ("bin", "LANES".to_string(), "PCNT_W".to_string())
    };
    m.push(Item::GenFor {
        label: "g_popcount".into(),
        var: group.into(),
        count: b * split,
        body: vec![Item::Instance {
            module: popcount.clone(),
            name: "u_popcount".into(),
            conns: vec![
                ("i_bits".into(), format!("bin_hits[{group}*{group_lanes} +: {group_lanes}]")),
                ("o_count".into(), format!("bin_count[{group}*{group_bits} +: {group_bits}]")),
            ],
        }],
    });
    m.clocked(
        "stage2",
        vec![
            nb("s2_valid_q", "rst ? 1'b0 : s1_valid_q"),
            nb("s2_last_q", "s1_last_q"),
            nb(s2_reg, "bin_count"),
        ],
    );
    let beat_count = if split > 1 {
        m.wire("s2_count", b * pcw);
        let parts: Vec<String> = (0..split)
            .map(|k| zext(&format!("s2_part_q[(bin*{split} + {k})*{ppw} +: {ppw}]"), ppw, pcw))
            .collect();
        m.push(Item::GenFor {
            label: "g_part_sum".into(),
            var: "bin".into(),
            count: b,
            body: vec![Item::Assign { lhs: "s2_count[bin*PCNT_W +: PCNT_W]".into(), rhs: parts.join(" + ") }],
        });
        "s2_count"
    } else {
        "s2_count_q"
    };

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
                zext(&format!("{beat_count}[i*PCNT_W +: PCNT_W]"), pcw, cw)
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
    // "The weighing is in its last two steps" (busy and step >= steps-2) is kept in a register
    // for 3+ steps: decoded from the step counter, it put the counter's compare, the ready logic
    // and the input stage's enable in one cycle, the line's longest control path.
    let weigh_ending = if s > 2 {
        m.reg("ws_ending_q", 1);
        "ws_ending_q".to_string()
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
    if s > 2 {
        // Next cycle's (busy & step >= steps-2): a start begins at step 0 (< steps-2), a busy
        // non-final step moves to step+1.
        let next = if s == 3 {
            "ws_busy_q & ~ws_final".to_string()
        } else {
            format!("ws_busy_q & ~ws_final & (ws_step_q >= {})", lit(sb, (s - 3) as u64))
        };
        issue.push(nb("ws_ending_q", format!("~ws_start & {next}")));
    }
    m.clocked(
        "weigh_control",
        vec![if_else(
            "rst",
            [
                vec![
                    nb("ws_busy_q", "1'b0"),
                    nb("ws_bank_q", "1'b0"),
                    nb("drain_bank_q", "1'b0"),
                    nb("bank_full_q", "2'b00"),
                ],
                if s > 2 { vec![nb("ws_ending_q", "1'b0")] } else { vec![] },
            ]
            .concat(),
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

    if g.weigh_pipeline == 0 {
        stage_b_single(&mut m, g);
    } else {
        stage_b_pipelined(&mut m, g);
    }

    // Stage C: adder tree + accumulate; the last step's sum goes straight into the FIFO.
    let c_in = if g.tree_stages == 0 {
        m.comment(format!("Sum of the step's products, accumulated over the steps of one {}.", "result"));
        m.wire("step_sum", yb).reg("acc_q", yb);
        let tree = crate::pe_line::add_tree_module(d, r, yb);
        m.instance(&tree, "u_add_tree", &[("i_terms", "b_prod_q".into()), ("o_sum", "step_sum".into())]);
        "b".to_string()
    } else {
        m.comment(format!(
            "Sum of the step's products in a registered adder tree ({} {}, the dequantize baseline's\n\
             tree), so the accumulator's add is a cycle of its own; flags follow the tree's stages.",
            g.tree_stages,
            if g.tree_stages == 1 { "stage" } else { "stages" }
        ));
        m.wire("step_sum", yb).reg("acc_q", yb);
        let (tree, _) = crate::pe_baseline::add_tree_pipe_module(d, r, yb, yb);
        m.instance(
            &tree,
            "u_add_tree",
            &[("clk", "clk".into()), ("i_terms", "b_prod_q".into()), ("o_sum", "step_sum".into())],
        );
        let mut prev = "b".to_string();
        for stage in 0..g.tree_stages {
            let cur = format!("t{stage}");
            m.reg(&format!("{cur}_valid_q"), 1).reg(&format!("{cur}_first_q"), 1).reg(&format!("{cur}_last_q"), 1);
            m.clocked(
                &format!("stage_t{stage}"),
                vec![
                    nb(format!("{cur}_valid_q"), format!("rst ? 1'b0 : {prev}_valid_q")),
                    nb(format!("{cur}_first_q"), format!("{prev}_first_q")),
                    nb(format!("{cur}_last_q"), format!("{prev}_last_q")),
                ],
            );
            prev = cur;
        }
        prev
    };
    m.wire_eq("acc_next", yb, format!("({c_in}_first_q ? {{Y_W{{1'b0}}}} : acc_q) + step_sum"));
    m.clocked("stage_c", vec![if_(format!("{c_in}_valid_q"), vec![nb("acc_q", "acc_next")])]);

    m.comment("Results wait here for the sink; credits guarantee a free slot for every push.");
    m.wire_eq("push", 1, format!("{c_in}_valid_q & {c_in}_last_q"));
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
    let multiply_busy: String = (0..g.weigh_pipeline)
        .map(|level| format!(" & ~m{level}_valid_q"))
        .chain((0..g.tree_stages).map(|stage| format!(" & ~t{stage}_valid_q")))
        .collect();
    m.assign(
        "idle",
        format!(
            "~s1_valid_q & ~s2_valid_q & fill_fresh_q & (bank_full_q == 2'b00) & ~ws_busy_q \
             & ~a_valid_q{multiply_busy} & ~b_valid_q & (outstanding_q == {})",
            lit(ob, 0)
        ),
    );
    m
}

/// Stage B in one cycle: the whole `count × table entry` multiply between the operand registers
/// and the product registers.
fn stage_b_single(m: &mut Module, g: &CountWeigh) {
    let (cw, lb, yb, r) = (g.count_bits, g.table_bits, g.y_bits, g.reduce_width);
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
}

/// Stage B over `1 + weigh_pipeline` cycles, so that no cycle holds a whole multiply: stage M0
/// multiplies each of the count's 2^P parts by the table entry (a few-bit by LUT_W-bit product
/// each), stages M1 .. M(P-1) and B sum them pairwise, each part shifted to its bit offset.
/// The sums are taken modulo 2^Y_W, which is exact: the full product fits Y_W bits.
fn stage_b_pipelined(m: &mut Module, g: &CountWeigh) {
    let (lb, yb, r, p) = (g.table_bits, g.y_bits, g.reduce_width, g.weigh_pipeline);
    let parts = g.count_parts();
    m.comment(format!(
        "Products over {} stages: a {}-bit count times a table entry in one cycle is the line's\n\
         longest path, so the count is split into {} parts of {} bits (M0: one short multiply\n\
         each), then summed pairwise at their bit offsets ({}). Counts are non-negative: each part\n\
         is zero-extended and multiplied signed. Sums are modulo 2^Y_W, exact because the\n\
         instantiating block sizes Y_W so that |count * TABLE| < 2^(Y_W-1).",
        p + 1,
        g.count_bits,
        parts.len(),
        parts.iter().map(|&(_, w)| w.to_string()).collect::<Vec<_>>().join(", "),
        (1..=p).map(|l| if l == p { "B".to_string() } else { format!("M{l}") }).collect::<Vec<_>>().join(", ")
    ));
    let pw: Vec<u32> = parts.iter().map(|&(_, w)| w + 1 + lb).collect();
    for level in 0..p {
        m.reg(&format!("m{level}_valid_q"), 1).reg(&format!("m{level}_first_q"), 1).reg(&format!("m{level}_last_q"), 1);
    }
    for (k, &w) in pw.iter().enumerate() {
        m.reg(&format!("m0_part{k}_q"), r * w);
    }
    for level in 1..p {
        for i in 0..(1u32 << (p - level)) {
            m.reg(&format!("m{level}_sum{i}_q"), r * yb);
        }
    }
    m.reg("b_valid_q", 1).reg("b_first_q", 1).reg("b_last_q", 1).reg("b_prod_q", r * yb);
    let mut body = vec![Item::Wire {
        name: "lut_entry".into(),
        width: lb,
        signed: true,
        depth: None,
        init: Some("a_lut_q[mul*LUT_W +: LUT_W]".into()),
    }];
    let mut partials = vec![];
    for (k, &(off, w)) in parts.iter().enumerate() {
        body.push(Item::Wire {
            name: format!("count_part{k}"),
            width: w + 1,
            signed: true,
            depth: None,
            init: Some(zext(&if off == 0 { format!("a_count_q[mul*CNT_W +: {w}]") } else { format!("a_count_q[mul*CNT_W + {off} +: {w}]") }, w, w + 1)),
        });
        partials.push(nb(format!("m0_part{k}_q[mul*{} +: {}]", pw[k], pw[k]), format!("count_part{k} * lut_entry")));
    }
    body.push(Item::Clocked { label: "partial_products".into(), body: partials });
    // Nodes of the previous level: (register slice, width, bit offset).
    let mut nodes: Vec<(String, u32, u32)> = parts
        .iter()
        .enumerate()
        .map(|(k, &(off, _))| (format!("m0_part{k}_q[mul*{} +: {}]", pw[k], pw[k]), pw[k], off))
        .collect();
    for level in 1..=p {
        let mut next = vec![];
        let mut sums = vec![];
        for (i, pair) in nodes.chunks(2).enumerate() {
            let mut terms = vec![];
            for (j, (slice, w, off)) in pair.iter().enumerate() {
                let name = format!("l{level}_term{}", 2 * i + j);
                body.push(Item::Wire { name: format!("{name}_raw"), width: *w, signed: true, depth: None, init: Some(slice.clone()) });
                let ext = if *w >= yb {
                    format!("{name}_raw[{}:0]", yb - 1)
                } else {
                    sext(&format!("{name}_raw"), *w, yb)
                };
                body.push(Item::Wire { name: name.clone(), width: yb, signed: true, depth: None, init: Some(ext) });
                let shift = off - pair[0].2;
                terms.push(if shift == 0 { name } else { format!("({name} << {shift})") });
            }
            let target = if level == p { "b_prod_q".to_string() } else { format!("m{level}_sum{i}_q") };
            let slice = format!("{target}[mul*Y_W +: Y_W]");
            sums.push(nb(slice.clone(), terms.join(" + ")));
            next.push((slice, yb, pair[0].2));
        }
        let label = if level == p { "product".to_string() } else { format!("partial_sums{level}") };
        body.push(Item::Clocked { label, body: sums });
        nodes = next;
    }
    m.push(Item::GenFor { label: "g_multiply".into(), var: "mul".into(), count: r, body });
    let mut prev = "a".to_string();
    for level in 0..=p {
        let cur = if level == p { "b".to_string() } else { format!("m{level}") };
        let label = if level == p { "stage_b".to_string() } else { format!("stage_m{level}") };
        m.clocked(
            &label,
            vec![
                nb(format!("{cur}_valid_q"), format!("rst ? 1'b0 : {prev}_valid_q")),
                nb(format!("{cur}_first_q"), format!("{prev}_first_q")),
                nb(format!("{cur}_last_q"), format!("{prev}_last_q")),
            ],
        );
        prev = cur;
    }
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
        let limit = 100 + total_beats * 4 + beats.len() as u64 * (d.weigh_steps as u64 + 10 + (d.weigh_pipeline + d.tree_stages) as u64) * 2;
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
        /// The multiply's extra stages M0 .. M(P-1) between A and B: (valid, last) each.
        mul_stages: Vec<(bool, bool)>,
        /// The registered tree's stages T0 .. T(n-1) between B and the accumulator.
        tree_stages: Vec<(bool, bool)>,
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
                mul_stages: vec![(false, false); d.weigh_pipeline as usize],
                tree_stages: vec![(false, false); d.tree_stages as usize],
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
            // The accumulator's input stage: B, or the tree's last stage.
            let (cv, cl) = self.tree_stages.last().copied().unwrap_or((self.bv, self.bl));
            let push = cv && cl;
            let set = self.s2v && self.s2l;
            let set_bank = self.fill_bank;
            if set {
                self.fill_bank ^= 1;
            }
            (self.s2v, self.s2l) = (self.s1v, self.s1l);
            (self.s1v, self.s1l) = (in_fire, in_fire && in_last);
            if !self.tree_stages.is_empty() {
                self.tree_stages.insert(0, (self.bv, self.bl));
                self.tree_stages.pop();
            }
            self.mul_stages.insert(0, (self.av, self.al));
            (self.bv, self.bl) = self.mul_stages.pop().expect("the stage list holds A's pair at least");
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
