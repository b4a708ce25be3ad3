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
//! With `weigh_pipeline` = P > 0, B is preceded by P stages M0 .. M(P-1) (the count split into
//! 2^P parts: partial products, then pairwise sums) and C is split by the registered adder tree
//! (`tree_stages` registers T0 ..), so the accumulator's add is a cycle of its own.

use serde::{Deserialize, Serialize};

use crate::config::{in_range, power_of_two, Config, QuantConfig};
use crate::registry::{BlockKind, Workload};
use crate::golden::{hex_lanes, hex_signed, GoldenWriter};
use crate::reference;
use crate::rng::Rng;
use crate::count_weigh::{self, CountWeigh};
use crate::verilog::{clog2, ubits, zext, Design, Handle, Item, Module};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PeLineConfig {
    /// Index pairs accepted per cycle.
    pub lanes: u32,
    /// Multipliers in the weighted-sum tree (bins weighed per cycle).
    pub reduce_width: u32,
    /// Longest reduction (dot-product length) the counters are sized for.
    pub k_max: u32,
    /// Extra register stages in the weighing multiply (count × LUT entry), 0..=2: 0 multiplies
    /// in one cycle; P splits each count into 2^P parts whose products are summed over P more
    /// registered levels. Each stage adds one cycle of latency, never a bubble.
    pub weigh_pipeline: u32,
    /// Registered parts of each bin's per-beat popcount (1, 2 or 4; 1 = the whole count):
    /// 2 or 4 shorten the decode-and-popcount stage, the line's longest path at 16+ lanes, at no
    /// cycle cost (the banks add the parts); see `count_weigh::CountWeigh::popcount_split`.
    #[serde(skip_serializing_if = "count_weigh::is_one")]
    pub popcount_split: u32,
    /// Also generate the dequantize-multiply baseline `kllm_dq_pe_line`
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
}

/// The default `weigh_pipeline`: on an iCE40 a W2A2 4-lane line runs at 76 MHz with 0, 88 MHz
/// with 1 and 110 MHz with 2 (the baseline: 110 MHz), in fewer LUT4s; see docs/flows.md.
pub const DEFAULT_WEIGH_PIPELINE: u32 = 2;

impl Default for PeLineConfig {
    fn default() -> Self {
        PeLineConfig {
            lanes: 16,
            reduce_width: 8,
            k_max: 4096,
            weigh_pipeline: DEFAULT_WEIGH_PIPELINE,
            popcount_split: 1,
            baseline: false,
        }
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
        in_range("pe_line.weigh_pipeline", self.weigh_pipeline, 0, count_weigh::MAX_WEIGH_PIPELINE)?;
        let count_bits = ubits(self.k_max as u64);
        if count_bits < 1 << self.weigh_pipeline {
            return Err(format!(
                "`pe_line.weigh_pipeline` = {} splits each {count_bits}-bit count (k_max = {}) into {} parts; \
                 allowed 0..={} at this k_max",
                self.weigh_pipeline,
                self.k_max,
                1 << self.weigh_pipeline,
                count_bits.ilog2()
            ));
        }
        count_weigh::validate_popcount_split("pe_line.popcount_split", self.popcount_split, self.lanes)?;
        crate::pe_fp::validate(q, self)?;
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
    /// Width of a LUT entry on `cfg_wdata`: signed ca*cw in integer mode, an F pattern in float
    /// mode.
    pub lut_bits: u32,
    pub popcount_bits: u32,
    pub count_bits: u32,
    /// Width of `m_y`: the signed dot product in integer mode, a binary32 pattern in float mode.
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
    /// Float mode's widths (absent in integer mode): the core's table holds `fixed_bits`-bit
    /// exact values and sums at `acc_bits`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float: Option<crate::pe_fp::FloatDerived>,
    /// The counting core the line instantiates (its numbers are the fields above).
    #[serde(skip)]
    pub core: CountWeigh,
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

impl PeLineDerived {
    pub fn new(q: &QuantConfig, c: &PeLineConfig) -> Self {
        let float = q.float().map(|f| crate::pe_fp::FloatDerived::new(f, q, c.k_max));
        // The table entry and the result on the ports, and the core's table and sum widths:
        // the same in integer mode; in float mode the core holds exact fixed-point values.
        let (lut_bits, y_bits, table_bits, acc_bits) = match &float {
            None => {
                let y = q.lut_bits() - 1 + ubits(c.k_max as u64);
                (q.lut_bits(), y, q.lut_bits(), y)
            }
            Some(f) => (f.f_bits, f.y_bits, f.fixed_bits, f.acc_bits),
        };
        let pair_bits = q.na + q.nw;
        let core = CountWeigh::new(c.lanes, pair_bits, c.k_max, table_bits, acc_bits, c.reduce_width, c.weigh_pipeline, c.popcount_split)
            .expect("a validated [pe_line] gives a valid counting core");
        let (l, b, r) = (c.lanes as u64, core.bins as u64, c.reduce_width as u64);
        let (cw, lb, yb) = (core.count_bits as u64, table_bits as u64, acc_bits as u64);
        let fifo_depth = core.fifo_depth;
        let step_bits = clog2(core.weigh_steps as u64) as u64;
        let register_bits = (2 + l * (pair_bits as u64 + 1)) // S1: valid, last, pairs, keep
            + (2 + b * (core.popcount_split * core.part_bits()) as u64) // S2: valid, last, per-bin (partial) popcounts
            + 2 * b * cw // two count banks
            + 4 // bank_full[2], fill_bank, fill_fresh
            + 3 + step_bits + (core.weigh_steps > 2) as u64 + ubits(fifo_depth as u64) as u64 // weigh control, credits
            + b * lb // LUT
            + 3 + r * (cw + lb) // stage A
            + core.pipeline_register_bits() // multiply stages M0 .. M(P-1)
            + 3 + r * yb // stage B
            + yb // accumulator
            + fifo_depth as u64 * yb + 2 * (clog2(fifo_depth as u64) as u64 + 1); // result FIFO
        let mut d = PeLineDerived {
            lanes: c.lanes,
            na: q.na,
            nw: q.nw,
            bins: core.bins,
            pair_bits,
            lut_bits,
            popcount_bits: core.popcount_bits,
            count_bits: core.count_bits,
            y_bits,
            reduce_width: c.reduce_width,
            weigh_steps: core.weigh_steps,
            fifo_depth,
            k_max: c.k_max,
            latency_extra: core.latency_extra,
            register_bits,
            predicted: PePredicted::default(),
            float,
            core,
        };
        d.predicted = PePredicted::from_model(c.k_max, c.lanes, |beats| timing::cycles(&d.core, beats));
        d
    }
}

pub const TOP: &str = "kllm_pe_line";

/// Builds the PE line as module `module` (`kllm_pe_line` as a design's top) and its sub-modules
/// into `d`.
pub fn generate(d: &mut Design, q: &QuantConfig, c: &PeLineConfig, module: &str) -> Handle {
    let g = PeLineDerived::new(q, c);
    if let (Some(f), Some(fd)) = (q.float(), &g.float) {
        return generate_float(d, q, c, f, fd, &g, module, false);
    }

    let (l, b, pb, lb, yb, r) = (g.lanes, g.bins, g.pair_bits, g.lut_bits, g.y_bits, g.reduce_width);
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
        .input("cfg_wdata", lb, "LUT value ca*cw, two's complement")
        .input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready")
        .input("s_idx_a", l * q.na, "activation index of lane i at [i*NA +: NA]")
        .input("s_idx_w", l * q.nw, "weight index of lane i at [i*NW +: NW]")
        .input("s_keep", l, "lane i holds a reduction element")
        .input("s_last", 1, "last beat of this dot product")
        .output("m_valid", 1, "result valid")
        .input("m_ready", 1, "result taken when valid && ready")
        .output("m_y", yb, "dot product, two's complement")
        .output("idle", 1, "nothing in flight: LUT writes are safe");
    // `make sim-paper` compiles one line for all 16 as a Verilator hierarchical block.
    m.comment(
        "Signed values cross the ports as plain bit patterns (a signed port of a Verilator\n\
         hierarchical block does not compile in Verilator 5.006); inside they are signed again.",
    );
    m.wire_signed_eq("cfg_lut", lb, "cfg_wdata");
    m.wire_signed("y_core", yb);
    m.assign("m_y", "y_core");

    for (name, value) in [("NA", q.na), ("NW", q.nw), ("PAIR_W", pb)] {
        m.localparam(name, 0, value as i64);
    }

    // The pair index of every lane, {idx_a, idx_w}: what the bins count.
    lane_pairs(&mut m, l, pb);
    m.comment(format!(
        "Counting and weighing. The table is LUT[j] = ca[j >> nw] * cw[j & (2^nw-1)] and\n\
         |count * LUT| <= {} * 2^{} < 2^{}, so no product or sum overflows the {yb}-bit result.",
        c.k_max,
        lb - 2,
        yb - 1
    ));
    count_weigh::instantiate_with(d, &mut m, &g.core, &[("s_idx", "in_pairs"), ("cfg_wdata", "cfg_lut"), ("m_y", "y_core")]);
    d.add(m);
    Handle::of(d, module, serde_json::to_value(&g).unwrap())
}

/// The float-mode line without its rounder, for the tile: `m_s` is the exact sum
/// (`float.acc_bits`, signed, in units of F's smallest subnormal), which the tile adds to the
/// exact compensation sum before its one rounding. Same ports otherwise, same cycles.
pub fn generate_float_exact(d: &mut Design, q: &QuantConfig, c: &PeLineConfig, module: &str) -> Handle {
    let g = PeLineDerived::new(q, c);
    let (f, fd) = (q.float().expect("float mode"), g.float.clone().expect("float mode"));
    generate_float(d, q, c, f, &fd, &g, module, true)
}

/// The float-mode line: the same counting core, with an F-to-fixed converter on the table's
/// write port and `RNE_32` on the result (module docs of `pe_fp`); with `exact`, no rounder and
/// the exact sum on `m_s` instead of `m_y` ([`generate_float_exact`]).
#[allow(clippy::too_many_arguments)]
fn generate_float(
    d: &mut Design,
    q: &QuantConfig,
    c: &PeLineConfig,
    f: crate::fp::FloatFormat,
    fd: &crate::pe_fp::FloatDerived,
    g: &PeLineDerived,
    module: &str,
    exact: bool,
) -> Handle {
    let (l, b, pb, r) = (g.lanes, g.bins, g.pair_bits, g.reduce_width);
    let fname = &fd.numerics;
    let mut m = Module::new(module);
    m.doc(format!(
        "Index-accumulation PE line, float mode ({fname}: E{}M{}): {l} index pairs per cycle, {b} bins \
         (na={}, nw={}), {r} multipliers, K <= {}.",
        fd.e, fd.m, q.na, q.nw, c.k_max
    ));
    if exact {
        m.doc("S = sum over bins j of count[j] * LUT[j], exact (no rounding here: the tile adds its compensation");
        m.doc("sum and rounds once); LUT[j] = RNE_F(ca[j >> nw] * cw[j & (2^nw-1)]).");
    } else {
        m.doc("Y = RNE_32(sum over bins j of count[j] * LUT[j]), the sum exact; LUT[j] = RNE_F(ca[j >> nw] * cw[j & (2^nw-1)]).");
    }
    m.doc("Write the LUT through cfg_* only while `idle` is high; K must not exceed K_MAX. LUT entries are finite.");
    m.clock_reset();
    m.input("cfg_we", 1, "LUT write enable")
        .input("cfg_addr", pb, "LUT entry: pair index (idx_a << nw) | idx_w")
        .input("cfg_wdata", fd.f_bits, &format!("LUT value RNE_F(ca*cw), a finite {fname} bit pattern"))
        .input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready")
        .input("s_idx_a", l * q.na, "activation index of lane i at [i*NA +: NA]")
        .input("s_idx_w", l * q.nw, "weight index of lane i at [i*NW +: NW]")
        .input("s_keep", l, "lane i holds a reduction element")
        .input("s_last", 1, "last beat of this dot product")
        .output("m_valid", 1, "result valid")
        .input("m_ready", 1, "result taken when valid && ready");
    if exact {
        m.output_signed("m_s", fd.acc_bits, &format!("dot product S exactly, in units of 2^-{}", fd.fixed_frac));
    } else {
        m.output("m_y", 32, "dot product RNE_32(S), binary32 bit pattern (S = 0 gives +0)");
    }
    m.output("idle", 1, "nothing in flight: LUT writes are safe");
    for (name, value) in [("NA", q.na), ("NW", q.nw), ("PAIR_W", pb)] {
        m.localparam(name, 0, value as i64);
    }
    lane_pairs(&mut m, l, pb);
    m.comment(format!(
        "Each LUT entry is converted once, on its way into the table, to its exact value in units of\n\
         2^-{}: the counting core then weighs plain {}-bit integers and sums them exactly.",
        fd.fixed_frac, fd.fixed_bits
    ));
    let to_fixed = crate::pe_fp::to_fixed_unit(d, f);
    m.wire_signed("cfg_fixed", fd.fixed_bits);
    m.instance(&to_fixed, "u_cfg_to_fixed", &[("f", "cfg_wdata".into()), ("q", "cfg_fixed".into())]);
    m.comment(format!(
        "Counting and weighing, exact: |S| <= {} * {} units < 2^{}, so the {}-bit sum never overflows.",
        c.k_max,
        f.to_fixed(f.max_finite()).unwrap(),
        fd.acc_bits - 1,
        fd.acc_bits
    ));
    if exact {
        crate::pe_fp::instantiate_core(d, &mut m, &g.core, &[("s_idx", "in_pairs"), ("cfg_wdata", "cfg_fixed"), ("m_y", "m_s")]);
        d.add(m);
        return Handle::of(d, module, serde_json::to_value(g).unwrap());
    }
    m.wire_signed("sum_exact", fd.acc_bits);
    crate::pe_fp::instantiate_core(d, &mut m, &g.core, &[("s_idx", "in_pairs"), ("cfg_wdata", "cfg_fixed"), ("m_y", "sum_exact")]);
    m.comment("The one rounding of the dot product, on the result's way out.");
    let round = crate::pe_fp::round_unit(d, fd);
    m.instance(&round, "u_round_f32", &[("s", "sum_exact".into()), ("y", "m_y".into())]);
    d.add(m);
    Handle::of(d, module, serde_json::to_value(g).unwrap())
}

/// `in_pairs`: the pair index {idx_a, idx_w} of every lane, what the bins count (both numerics).
fn lane_pairs(m: &mut Module, l: u32, pb: u32) {
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
}

/// The module name of a PE line that must coexist with differently parameterized lines in one
/// design: every parameter that changes its body is in the name.
pub fn module_name(q: &QuantConfig, c: &PeLineConfig) -> String {
    match q.float() {
        None => format!(
            "kllm_pe_line_a{}w{}_c{}x{}_l{}_r{}_k{}_p{}",
            q.na, q.nw, q.ac_bits, q.wc_bits, c.lanes, c.reduce_width, c.k_max, c.weigh_pipeline
        ),
        Some(f) => format!(
            "kllm_pe_line_a{}w{}_e{}m{}_l{}_r{}_k{}_p{}",
            q.na, q.nw, f.e(), f.m(), c.lanes, c.reduce_width, c.k_max, c.weigh_pipeline
        ),
    }
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
    fn float_mode(&self) -> bool {
        true
    }
    fn multipliers(&self, derived: &serde_json::Value) -> Option<u64> {
        derived.get("reduce_width").and_then(serde_json::Value::as_u64)
    }
    fn accuracy_outliers(&self, cfg: &Config) -> Option<f64> {
        // The sweep scores a point on the integer-mode reference layer; float mode has none yet.
        cfg.quant.float().is_none().then_some(0.0)
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

/// `kllm_popcount_w{n}`: number of set bits, as a balanced tree of pairwise sums inside one
/// module. Level l holds ceil(n / 2^l) partial counts of ubits(min(2^l, n)) bits; level 0 is the
/// input. One module per width, not a recursive hierarchy of smaller popcounts: the paper tile
/// has 256 popcounts of 512 bits per line, and the recursive form (about 1 000 instances each,
/// 130 000 per tile) made Verilator's lint and Yosys's hierarchy pass take minutes.
pub fn popcount_module(d: &mut Design, n: u32) -> String {
    let name = format!("kllm_popcount_w{n}");
    if d.get(&name).is_some() {
        return name;
    }
    let ow = ubits(n as u64);
    let mut m = Module::new(&name);
    m.doc(format!("Population count of {n} bits (balanced adder tree, one level per generate block)."));
    m.input("i_bits", n, "").output("o_count", ow, "number of ones in i_bits");
    let (mut prev, mut prev_count, mut prev_w) = ("i_bits".to_string(), n, 1u32);
    let mut level = 0;
    while prev_count > 1 {
        level += 1;
        let count = prev_count.div_ceil(2);
        let covers = (1u64 << level).min(n as u64);
        let w = ubits(covers);
        let cur = format!("sum_l{level}");
        m.comment(if count == 1 {
            format!("Level {level}: the count of all {n} bits.")
        } else {
            format!("Level {level}: {count} partial counts, each of up to {covers} input bits.")
        });
        m.wire(&cur, count * w);
        let operand = |k: &str| {
            let bits = if prev_w == 1 { format!("{prev}[{k}]") } else { format!("{prev}[({k})*{prev_w} +: {prev_w}]") };
            zext(&bits, prev_w, w)
        };
        m.push(Item::GenFor {
            label: format!("g_level{level}"),
            var: "pair".into(),
            count: prev_count / 2,
            body: vec![Item::Assign {
                lhs: format!("{cur}[pair*{w} +: {w}]"),
                rhs: format!("{} + {}", operand("2*pair"), operand("2*pair + 1")),
            }],
        });
        if prev_count % 2 == 1 {
            // An odd element has no partner at this level: it moves up unchanged.
            m.assign(
                format!("{cur}[{} +: {w}]", (count - 1) * w),
                zext(&format!("{prev}[{}]", if prev_w == 1 { format!("{}", prev_count - 1) } else { format!("{} +: {prev_w}", (prev_count - 1) * prev_w) }), prev_w, w),
            );
        }
        (prev, prev_count, prev_w) = (cur, count, w);
    }
    m.assign("o_count", prev);
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

pub use crate::count_weigh::timing;

// ---------------------------------------------------------------------------------------------
// Golden vectors

/// Writes the stimulus and expected results for `vectors` random dot products, in segments
/// that each load a fresh random codebook pair, followed by timed segments whose cycle counts
/// come from the cycle model.
pub fn golden(q: &QuantConfig, c: &PeLineConfig, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let d = PeLineDerived::new(q, c);
    if let Some(f) = q.float() {
        let load = |w: &mut GoldenWriter, ca: &[u64], cw: &[u64]| {
            for (j, v) in crate::pe_fp::lut(f, ca, cw, q.nw).expect("finite table").iter().enumerate() {
                w.cfg(j as u64, &hex_lanes(&[*v], f.width()));
            }
        };
        let g = crate::pe_fp::FpGolden { block: "pe_line", load: &load, cycles: &|beats| timing::cycles(&d.core, beats) };
        return crate::pe_fp::golden(q, c, vectors, seed, w, &g);
    }
    golden_dots(
        q,
        c,
        vectors,
        seed,
        w,
        &DotGolden {
            block: "pe_line",
            load: &|w, ca, cw| load_lut(w, &reference::lut(ca, cw, q.nw), q),
            cycles: &|beats| timing::cycles(&d.core, beats),
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
    let mut timed: Vec<(usize, u32)> = vec![(1, c.k_max), (64, c.k_max), (64, c.lanes.min(c.k_max))];
    // Then every dot-product length from 1 to 3 weigh steps (as far as k_max allows), back to
    // back, so a cycle model that is right at a few lengths and wrong in between cannot pass.
    timed.extend(back_to_back_lengths(d.weigh_steps, c.lanes, c.k_max).into_iter().map(|k| (BACK_TO_BACK, k)));
    for (count, k) in timed {
        w.timing((g.cycles)(&vec![k.div_ceil(c.lanes); count]));
        for _ in 0..count {
            let (ia, iw) = random_indices(&mut rng, k as usize, na, nw);
            dot(w, &mut rng, &ca, &cw, &ia, &iw, false);
        }
        w.sync();
    }
}

/// Dot products per timed segment of the length sweep.
pub const BACK_TO_BACK: usize = 6;

/// Element counts of the timed length sweep: n = 1 ..= 3 * weigh_steps beats of `lanes`
/// elements, while n beats fit in `k_max`.
pub fn back_to_back_lengths(weigh_steps: u32, lanes: u32, k_max: u32) -> Vec<u32> {
    (1..=3 * weigh_steps).map(|n| n * lanes).take_while(|&k| k <= k_max).collect()
}

pub(crate) fn load_lut(w: &mut GoldenWriter, lut: &[i64], q: &QuantConfig) {
    for (j, v) in lut.iter().enumerate() {
        w.cfg(j as u64, &hex_signed(*v, q.lut_bits()));
    }
}

/// A dot-product length: mostly short (log-uniform), some uniform over the range, and the
/// edges K = 1 and K = k_max.
pub(crate) fn random_k(rng: &mut Rng, k_max: u32) -> usize {
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

pub(crate) fn random_indices(rng: &mut Rng, k: usize, na: u32, nw: u32) -> (Vec<u32>, Vec<u32>) {
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

    /// The contract the docs state: back to back, one result every max(n, weigh_steps) cycles,
    /// for every n from 1 to 3 weigh steps and for weigh steps 1, 2, 3 (the edge cases of the
    /// early bank release) and larger. The RTL is held to this model by the timed segments.
    #[test]
    fn back_to_back_interval_is_max_of_beats_and_steps_for_every_length() {
        for p in 0..=count_weigh::MAX_WEIGH_PIPELINE {
            for (na, nw, lanes, r) in [(2, 2, 4, 16), (2, 2, 4, 8), (3, 4, 16, 16), (2, 2, 4, 4), (4, 4, 16, 8), (4, 4, 64, 1)] {
                let q = QuantConfig { na, nw, ..QuantConfig::default() };
                let c = PeLineConfig { lanes, reduce_width: r, k_max: 1 << 16, weigh_pipeline: p, ..PeLineConfig::default() };
                let d = PeLineDerived::new(&q, &c);
                // A registered tree has a register after every 3 adder levels and after the last.
                let tree = if p > 0 { clog2(r as u64).div_ceil(3) } else { 0 };
                assert_eq!(d.core.tree_stages, tree, "p={p} r={r}");
                assert_eq!(d.latency_extra, d.weigh_steps + 5 + p + tree);
                for n in 1..=3 * d.weigh_steps {
                    let (_, outs) = timing::schedule(&d.core, &[n; 40]);
                    for i in 20..40 {
                        assert_eq!(outs[i] - outs[i - 1], n.max(d.weigh_steps) as u64, "p={p} steps={} n={n}", d.weigh_steps);
                    }
                    assert_eq!(timing::cycles(&d.core, &[n]), (n + d.latency_extra) as u64);
                }
            }
        }
    }

    /// The manifest's register count (a formula over the config) equals the flip-flop bits
    /// counted by walking the generated modules, for lines of many shapes.
    #[test]
    fn manifest_register_bits_equal_the_flops_of_the_generated_line() {
        for (na, nw, lanes, r, kmax, numerics, p, s) in [
            (4, 4, 16, 8, 4096, "int", 0, 1),
            (4, 4, 16, 8, 4096, "int", 1, 2),
            (2, 2, 4, 4, 256, "int", 2, 2),
            (3, 4, 64, 16, 4096, "int", 1, 4),
            (1, 1, 2, 1, 2, "int", 0, 1),
            (1, 1, 2, 1, 2, "int", 1, 1),
            (3, 3, 32, 64, 1000, "int", 2, 1),
            (2, 2, 4, 4, 256, "fp16", 2, 1),
            (4, 4, 16, 8, 4096, "fp16", 0, 4),
            (3, 2, 8, 2, 100, "fp8_e4m3", 1, 2),
            (1, 1, 2, 1, 2, "fp8_e5m2", 1, 1),
        ] {
            let q = QuantConfig { na, nw, numerics: numerics.into(), ..QuantConfig::default() };
            let c = PeLineConfig { lanes, reduce_width: r, k_max: kmax, weigh_pipeline: p, popcount_split: s, baseline: false };
            let mut d = Design::default();
            let h = generate(&mut d, &q, &c, TOP);
            let g = PeLineDerived::new(&q, &c);
            assert_eq!(d.flop_bits(&h.module), g.register_bits, "na={na} nw={nw} lanes={lanes} r={r} k_max={kmax} {numerics} p={p} s={s}");
            d.check().unwrap();
            let b = crate::pe_baseline::generate(&mut d, &q, &c, crate::pe_baseline::TOP);
            let gb = crate::pe_baseline::PeBaselineDerived::new(&q, &c);
            assert_eq!(d.flop_bits(&b.module), gb.register_bits, "baseline na={na} nw={nw} lanes={lanes} k_max={kmax} {numerics}");
        }
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

    #[test]
    fn weigh_pipeline_is_range_checked_against_the_count_width() {
        let q = QuantConfig::default();
        let c = PeLineConfig { weigh_pipeline: 3, ..PeLineConfig::default() };
        assert_eq!(c.validate(&q).unwrap_err(), "`pe_line.weigh_pipeline` = 3 is out of range (allowed 0..=2)");
        // k_max = 2: a 2-bit count splits into 2 parts, not 4.
        let c = PeLineConfig { lanes: 2, k_max: 2, weigh_pipeline: 2, ..PeLineConfig::default() };
        assert_eq!(
            c.validate(&q).unwrap_err(),
            "`pe_line.weigh_pipeline` = 2 splits each 2-bit count (k_max = 2) into 4 parts; allowed 0..=1 at this k_max"
        );
        assert!(PeLineConfig { weigh_pipeline: 1, ..c }.validate(&q).is_ok());
    }

    /// The count parts tile the count exactly, low part first.
    #[test]
    fn count_parts_tile_the_count() {
        let q = QuantConfig::default();
        for (k_max, p, want) in [
            (4096, 0, vec![(0, 13)]),
            (4096, 1, vec![(0, 7), (7, 6)]),
            (1024, 2, vec![(0, 3), (3, 3), (6, 3), (9, 2)]),
            (2, 1, vec![(0, 1), (1, 1)]),
        ] {
            let d = PeLineDerived::new(&q, &PeLineConfig { k_max, lanes: 2, weigh_pipeline: p, ..PeLineConfig::default() });
            assert_eq!(d.core.count_parts(), want, "k_max={k_max} p={p}");
        }
    }
}
