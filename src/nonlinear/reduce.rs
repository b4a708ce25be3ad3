//! `kllm_nl_reduce`: Σ over an index vector of TABLE[idx], computed by counting (SPEC: the
//! softmax denominator Σ count[q]·exp_table[q], the RMSNorm Σ count[q]·ca[q]²).
//!
//! It instantiates the counting-and-weighing core the PE line uses (`crate::count_weigh`) with
//! its own core config (`in_bits`-bit indices, `n_max`, `entry_bits`, `sum_bits`): per-bin
//! popcount across lanes, two count banks (one counts while the other is weighed),
//! `reduce_width` multipliers weighing `2^in_bits / reduce_width` steps, adder tree,
//! credit-guarded result FIFO. The core's cycle model (`count_weigh::timing`) predicts it; the
//! bench's timed segments hold it to that.
//!
//! ```text
//!  s_idx/s_keep ──► S1 regs ──► S2 per-bin popcount regs ──► count bank 0/1
//!        weigh: A (count, table) regs ──► B product regs ──► C tree + accumulate ──► FIFO ──► m_sum
//! ```
//! Initiation interval per vector: max(beats, weigh_steps) cycles.

use serde::Serialize;

use super::float;
use super::tables::{self, Out};
use super::{AnyAccuracy, MapSpec, NlReduceConfig};
use crate::fp::FloatFormat;
use crate::pe_fp::{FloatDerived, Style};
use crate::golden::{hex_lanes, hex_signed, GoldenWriter};
use crate::count_weigh::{self, timing, CountWeigh};
use crate::reference;
use crate::rng::Rng;
use crate::verilog::{Design, Handle, Module};

pub const TOP: &str = "kllm_nl_reduce";

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NlReduceDerived {
    pub lanes: u32,
    pub in_bits: u32,
    pub bins: u32,
    /// Width of a table entry on `cfg_wdata`: signed fixed point (integer mode) or an F pattern.
    pub entry_bits: u32,
    pub popcount_bits: u32,
    pub count_bits: u32,
    /// Width of `m_sum`. Integer mode: the exact result, entry_bits + ceil(log2 n_max) bits, the
    /// fewest that hold both n_max·(−2^(entry_bits−1)) and n_max·(2^(entry_bits−1)−1). Float
    /// mode: 32, a binary32 pattern (the exact sum is `float.acc_bits` wide inside).
    pub sum_bits: u32,
    pub reduce_width: u32,
    pub weigh_steps: u32,
    pub fifo_depth: u32,
    pub n_max: u32,
    /// Cycles from a vector's first input transfer to its result transfer on an idle unit:
    /// `beats + latency_extra`.
    pub latency_extra: u32,
    /// Table register bits (float mode: each entry held as its exact fixed point, `float.fixed_bits`).
    pub table_bits: u32,
    pub predicted: ReducePredicted,
    /// The configured function's table (value mode, entry_bits) over the Gaussian codebook.
    pub accuracy: AnyAccuracy,
    /// Float mode's widths (absent in integer mode), with `acc_bits` the exact sum for n_max terms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float: Option<FloatDerived>,
    /// The counting core it instantiates.
    #[serde(skip)]
    pub core: CountWeigh,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReducePredicted {
    /// One vector of n_max elements on an idle unit.
    pub single_nmax_cycles: u64,
    /// 64 vectors of n_max elements back to back (e.g. 64 softmax rows).
    pub batch64_nmax_cycles: u64,
    /// 64 vectors of one beat each: the weighing-bound case.
    pub batch64_one_beat_cycles: u64,
}

impl NlReduceDerived {
    pub fn new(s: &MapSpec, c: &NlReduceConfig) -> Self {
        let accuracy = super::accuracy(s).expect("validated config");
        let core = c.core(s.in_bits[0], s.float).expect("a validated [nl_reduce] gives a valid counting core");
        // In float mode FloatDerived's k_max is n_max: its acc_bits holds any sum of n_max entries.
        let q = crate::config::QuantConfig { numerics: s.float.map_or("int".into(), |f| f.name()), ..Default::default() };
        let float = s.float.map(|f| FloatDerived::new(f, &q, c.n_max));
        let beats = c.n_max.div_ceil(c.lanes);
        NlReduceDerived {
            lanes: c.lanes,
            in_bits: s.in_bits[0],
            bins: core.bins,
            entry_bits: s.out_bits,
            popcount_bits: core.popcount_bits,
            count_bits: core.count_bits,
            sum_bits: if float.is_some() { 32 } else { core.y_bits },
            reduce_width: c.reduce_width,
            weigh_steps: core.weigh_steps,
            fifo_depth: core.fifo_depth,
            n_max: c.n_max,
            latency_extra: core.latency_extra,
            table_bits: core.bins * core.table_bits,
            predicted: ReducePredicted {
                single_nmax_cycles: timing::cycles(&core, &[beats]),
                batch64_nmax_cycles: timing::cycles(&core, &[beats; 64]),
                batch64_one_beat_cycles: timing::cycles(&core, &[1; 64]),
            },
            accuracy,
            float,
            core,
        }
    }
}

pub fn generate(d: &mut Design, spec: &MapSpec, c: &NlReduceConfig, module: &str) -> Handle {
    let g = NlReduceDerived::new(spec, c);
    if let (Some(f), Some(fd)) = (spec.float, &g.float) {
        return generate_float(d, f, fd, &g, c, module);
    }

    let (l, b, pb, lb, yb, r) = (g.lanes, g.bins, g.in_bits, g.entry_bits, g.sum_bits, g.reduce_width);
    let mut m = Module::new(module);
    m.doc(format!(
        "Centroid-table reduction by counting: {l} indices per cycle, {b} bins (in_bits={pb}), \
         {r} multipliers, N <= {}.",
        c.n_max
    ));
    m.doc("SUM = sum over bins q of count[q] * TABLE[q] = sum over the vector of TABLE[idx_j], exact.");
    m.doc("TABLE = exp in fixed point gives a softmax denominator, TABLE = ca^2 an RMSNorm sum of squares.");
    m.doc("Write the table through cfg_* only while `idle` is high; N must not exceed N_MAX.");
    m.clock_reset();
    m.input("cfg_we", 1, "table write enable")
        .input("cfg_addr", pb, "table entry = input index")
        .input_signed("cfg_wdata", lb, "table value, signed")
        .input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready")
        .input("s_idx", l * pb, "index of lane i at [i*IDX_W +: IDX_W]")
        .input("s_keep", l, "lane i holds a vector element")
        .input("s_last", 1, "last beat of this vector")
        .output("m_valid", 1, "result valid")
        .input("m_ready", 1, "result taken when valid && ready")
        .output_signed("m_sum", yb, "sum of TABLE[idx] over the vector, signed")
        .output("idle", 1, "nothing in flight: table writes are safe");

    count_weigh::instantiate(d, &mut m, &g.core, "s_idx", "m_sum");
    d.add(m);
    Handle::of(d, module, serde_json::to_value(&g).unwrap())
}

/// The float-mode unit (SPEC: "nl_reduce sums count[q]·table[q] exactly and rounds once with
/// RNE_32, like the PE line"): the same counting core, an F-to-fixed converter on the table's
/// write port and the `RNE_32` rounder on the result, as in the float PE line.
fn generate_float(d: &mut Design, f: FloatFormat, fd: &FloatDerived, g: &NlReduceDerived, c: &NlReduceConfig, module: &str) -> Handle {
    let (l, b, pb, r) = (g.lanes, g.bins, g.in_bits, g.reduce_width);
    let fname = &fd.numerics;
    let mut m = Module::new(module);
    m.doc(format!(
        "Centroid-table reduction by counting, float mode ({fname}: E{}M{}): {l} indices per cycle, {b} bins \
         (in_bits={pb}), {r} multipliers, N <= {}.",
        fd.e, fd.m, c.n_max
    ));
    m.doc("SUM = RNE_32(sum over bins q of count[q] * TABLE[q]), the sum exact; TABLE holds finite F values.");
    m.doc("TABLE = RNE_F(exp(ca)) gives a softmax denominator, TABLE = RNE_F(ca^2) an RMSNorm sum of squares.");
    m.doc("Write the table through cfg_* only while `idle` is high; N must not exceed N_MAX.");
    m.clock_reset();
    m.input("cfg_we", 1, "table write enable")
        .input("cfg_addr", pb, "table entry = input index")
        .input("cfg_wdata", fd.f_bits, &format!("table value, a finite {fname} bit pattern"))
        .input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready")
        .input("s_idx", l * pb, "index of lane i at [i*IDX_W +: IDX_W]")
        .input("s_keep", l, "lane i holds a vector element")
        .input("s_last", 1, "last beat of this vector")
        .output("m_valid", 1, "result valid")
        .input("m_ready", 1, "result taken when valid && ready")
        .output("m_sum", 32, "RNE_32 of the exact sum of TABLE[idx] over the vector, binary32 bit pattern (0 gives +0)")
        .output("idle", 1, "nothing in flight: table writes are safe");
    m.comment(format!(
        "Each entry is converted once, on its way into the table, to its exact value in units of\n\
         2^-{}: the counting core then weighs plain {}-bit integers and sums them exactly.",
        fd.fixed_frac, fd.fixed_bits
    ));
    let to_fixed = crate::pe_fp::to_fixed_unit(d, f);
    m.wire_signed("cfg_fixed", fd.fixed_bits);
    m.instance(&to_fixed, "u_cfg_to_fixed", &[("f", "cfg_wdata".into()), ("q", "cfg_fixed".into())]);
    m.comment(format!(
        "Counting and weighing, exact: |S| <= {} * {} units < 2^{}, so the {}-bit sum never overflows.",
        c.n_max,
        f.to_fixed(f.max_finite()).unwrap(),
        fd.acc_bits - 1,
        fd.acc_bits
    ));
    m.wire_signed("sum_exact", fd.acc_bits);
    crate::pe_fp::instantiate_core(d, &mut m, &g.core, &[("cfg_wdata", "cfg_fixed"), ("m_y", "sum_exact")]);
    m.comment("The one rounding of the sum, on the result's way out.");
    let round = crate::pe_fp::round_unit(d, fd);
    m.instance(&round, "u_round_f32", &[("s", "sum_exact".into()), ("y", "m_sum".into())]);
    d.add(m);
    Handle::of(d, module, serde_json::to_value(g).unwrap())
}
// ---------------------------------------------------------------------------------------------
// Golden vectors

/// A table for one segment: the configured function on the report codebook, exp or square on
/// random codebooks (scale fitted to entry_bits), or random entries over the full range.
fn segment_table(rng: &mut Rng, s: &MapSpec, seg: u32) -> Vec<i64> {
    let n = 1usize << s.in_bits[0];
    let eb = s.out_bits;
    let (lo, hi) = (-(1i64 << (eb - 1)), (1i64 << (eb - 1)) - 1);
    match seg % 4 {
        0 => {
            let ca = super::report_in_codebook(s.section, s.in_bits[0], s.ac_bits, s.in_scale).unwrap();
            let out = Out::Value { bits: eb, scale: s.value_scale() };
            tables::table(s.func, &[&ca], s.in_scale, &out).unwrap()
        }
        1 => {
            // RMSNorm: exact ca² when it fits, otherwise exp.
            let ca = reference::random_codebook(rng, n, s.ac_bits);
            let sq = tables::table(tables::Func::Square, &[&ca], 1.0, &Out::Value { bits: eb, scale: 1.0 });
            sq.unwrap_or_else(|_| super::map::random_reference_table(rng, s, Some(tables::Func::Exp)))
        }
        2 => super::map::random_reference_table(rng, s, Some(tables::Func::Exp)),
        _ => (0..n)
            .map(|_| match rng.below(4) {
                0 => lo,
                1 => hi,
                _ => rng.range(lo, hi),
            })
            .collect(),
    }
}

fn load(w: &mut GoldenWriter, t: &[i64], bits: u32) {
    for (a, &v) in t.iter().enumerate() {
        w.cfg(a as u64, &hex_signed(v, bits));
    }
}

/// `vectors` random reductions in segments of 200 with a table reload before each, then timed
/// segments (the manifest's workloads, dense beats).
pub fn golden(s: &MapSpec, c: &NlReduceConfig, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    if let Some(f) = s.float {
        return golden_float(f, s, c, vectors, seed, w);
    }
    let d = NlReduceDerived::new(s, c);
    let mut rng = Rng::new(seed);
    w.header("nl_reduce", &["idx", "keep", "last"], &["sum"]);
    let (mut done, mut seg) = (0u32, 0u32);
    while done < vectors {
        let t = segment_table(&mut rng, s, seg);
        load(w, &t, d.entry_bits);
        let n = 200.min(vectors - done);
        for _ in 0..n {
            let k = random_n(&mut rng, c.n_max);
            let idx = random_indices(&mut rng, k, d.in_bits);
            write_vector(w, &mut rng, &d, &idx, seg % 3 != 0);
            w.out(&[hex_signed(direct_sum(&t, &idx), d.sum_bits)]);
        }
        w.sync();
        done += n;
        seg += 1;
    }
    let t = segment_table(&mut rng, s, 3);
    load(w, &t, d.entry_bits);
    let mut timed: Vec<(usize, u32)> = vec![(1, c.n_max), (64, c.n_max), (64, c.lanes.min(c.n_max))];
    // Every vector length from 1 to 3 weigh steps back to back (see the PE line's golden file).
    let lengths = crate::pe_line::back_to_back_lengths(d.weigh_steps, c.lanes, c.n_max);
    timed.extend(lengths.into_iter().map(|k| (crate::pe_line::BACK_TO_BACK, k)));
    for (count, k) in timed {
        let beats = vec![k.div_ceil(c.lanes); count];
        w.timing(timing::cycles(&d.core, &beats));
        for _ in 0..count {
            let idx = random_indices(&mut rng, k as usize, d.in_bits);
            write_vector(w, &mut rng, &d, &idx, false);
            w.out(&[hex_signed(direct_sum(&t, &idx), d.sum_bits)]);
        }
        w.sync();
    }
}

// ---------------------------------------------------------------------------------------------
// Float mode's golden vectors

/// The table of one float segment, in turn: the configured function on the report codebook,
/// RMSNorm's `RNE_F(ca²)` on a random codebook, `exp` on a random codebook (redrawn where an
/// entry would be infinite; +0 after 20 draws), and random finite entries of every shape (±0,
/// subnormals, the top binades and ±largest finite included).
fn float_segment_table(rng: &mut Rng, f: FloatFormat, s: &MapSpec, seg: u32) -> Vec<u64> {
    let n = 1usize << s.in_bits[0];
    let styles = [Style::Typical, Style::Any, Style::Tiny, Style::Huge, Style::Unit];
    let of = |rng: &mut Rng, func: tables::Func| {
        for _ in 0..20 {
            let st = styles[rng.below(5) as usize];
            let ca = float::random_codebook(rng, f, n, st);
            if let Ok(t) = float::table(f, func, &[&ca], &float::FOut::Value) {
                return t;
            }
        }
        vec![0; n]
    };
    match seg % 4 {
        0 => {
            let (ins, out) = float::report_codebooks(f, s.func, &s.in_bits, true, s.out_bits).expect("validated config");
            float::table(f, s.func, &[&ins[0]], &out).expect("validated config")
        }
        1 => of(rng, tables::Func::Square),
        2 => of(rng, tables::Func::Exp),
        _ => (0..n)
            .map(|_| {
                let st = styles[rng.below(5) as usize];
                crate::pe_fp::random_f(rng, f, st)
            })
            .collect(),
    }
}

/// The float edge cases as (table, vectors of indices): each case is a multiset of F terms; cases
/// are packed into tables of 2^in_bits entries. The largest sums of either sign (n_max copies of
/// ±largest finite: the accumulator bound), +max and −max alternately (an exact zero: +0), sums
/// of −0 and of +0 (+0), subnormal-only sums, a huge and a tiny term (sticky bit), and binary32
/// ties (`T + 2` units rounds to even downwards, `T + 6` upwards, `T + 1`/`T + 3` below and above
/// a tie, both signs, `T = 2^(unit+25)`, as several copies of F's largest power of two where F
/// cannot hold T).
pub fn float_edge_cases(f: FloatFormat, in_bits: u32, n_max: u32) -> Vec<(Vec<u64>, Vec<Vec<u32>>)> {
    let k = n_max as usize;
    let neg = |v: u64| v | 1 << (f.e() + f.m());
    let max = f.max_finite();
    let max_sub = (1u64 << f.m()) - 1;
    let mut cases: Vec<Vec<u64>> = vec![
        vec![max; k],
        vec![neg(max); k],
        (0..k - k % 2).map(|i| if i % 2 == 0 { max } else { neg(max) }).collect(),
        vec![neg(0); k],
        vec![neg(0)],
        vec![0; k],
        vec![1; k],
        vec![1],
        vec![neg(1)],
        vec![max_sub; k],
        vec![neg(max_sub); k],
        vec![max, 1],
        vec![neg(max), neg(1), neg(0)],
    ];
    let top_exp = f.unit_exp() + 25;
    let (t_exp, copies) = if top_exp <= f.emax() { (top_exp, 1usize) } else { (f.emax(), 1usize << (top_exp - f.emax())) };
    if copies + 2 <= k {
        let t = ((t_exp + f.bias()) as u64) << f.m();
        for sign in [false, true] {
            let sg = |v: u64| if sign { neg(v) } else { v };
            for tail in [&[2u64][..], &[3, 3], &[1], &[2, 1]] {
                let mut c = vec![sg(t); copies];
                c.extend(tail.iter().map(|&v| sg(v)));
                cases.push(c);
            }
        }
    }
    // Pack the cases into tables: a case goes into the current table if its distinct terms fit.
    let bins = 1usize << in_bits;
    let mut out: Vec<(Vec<u64>, Vec<Vec<u32>>)> = vec![];
    let mut table: Vec<u64> = vec![];
    let mut vecs: Vec<Vec<u32>> = vec![];
    for c in cases {
        let mut distinct: Vec<u64> = c.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() > bins {
            continue; // (only with 1-bit indices: a case of three distinct terms)
        }
        let missing = distinct.iter().filter(|v| !table.contains(v)).count();
        if table.len() + missing > bins {
            out.push((std::mem::take(&mut table), std::mem::take(&mut vecs)));
        }
        for v in distinct {
            if !table.contains(&v) {
                table.push(v);
            }
        }
        vecs.push(c.iter().map(|v| table.iter().position(|t| t == v).unwrap() as u32).collect());
    }
    out.push((table, vecs));
    for (t, _) in out.iter_mut() {
        t.resize(bins, 0);
    }
    out
}

/// Float-mode golden file: random vectors in segments of 200 with a table reload before each
/// ([`float_segment_table`]), the edge cases ([`float_edge_cases`]), then the integer mode's timed
/// segments. Expected results are `RNE_32` of the exact element-by-element sum.
fn golden_float(f: FloatFormat, s: &MapSpec, c: &NlReduceConfig, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let d = NlReduceDerived::new(s, c);
    let mut rng = Rng::new(seed);
    w.header("nl_reduce", &["idx", "keep", "last"], &["sum"]);
    let load = |w: &mut GoldenWriter, t: &[u64]| {
        for (a, &v) in t.iter().enumerate() {
            w.cfg(a as u64, &hex_lanes(&[v], d.entry_bits));
        }
    };
    let expect = |w: &mut GoldenWriter, t: &[u64], idx: &[u32]| {
        let y = float::reduce(f, t, idx).expect("finite entries, at most n_max of them: the sum fits binary32");
        w.out(&[format!("{y:08x}")]);
    };
    let (mut done, mut seg) = (0u32, 0u32);
    while done < vectors {
        let t = float_segment_table(&mut rng, f, s, seg);
        load(w, &t);
        let n = 200.min(vectors - done);
        for _ in 0..n {
            let k = random_n(&mut rng, c.n_max);
            let idx = random_indices(&mut rng, k, d.in_bits);
            write_vector(w, &mut rng, &d, &idx, seg % 3 != 0);
            expect(w, &t, &idx);
        }
        w.sync();
        done += n;
        seg += 1;
    }
    for (t, vecs) in float_edge_cases(f, d.in_bits, c.n_max) {
        load(w, &t);
        for idx in vecs {
            write_vector(w, &mut rng, &d, &idx, false);
            expect(w, &t, &idx);
        }
        w.sync();
    }
    let t = float_segment_table(&mut rng, f, s, 0);
    load(w, &t);
    let mut timed: Vec<(usize, u32)> = vec![(1, c.n_max), (64, c.n_max), (64, c.lanes.min(c.n_max))];
    let lengths = crate::pe_line::back_to_back_lengths(d.weigh_steps, c.lanes, c.n_max);
    timed.extend(lengths.into_iter().map(|k| (crate::pe_line::BACK_TO_BACK, k)));
    for (count, k) in timed {
        let beats = vec![k.div_ceil(c.lanes); count];
        w.timing(timing::cycles(&d.core, &beats));
        for _ in 0..count {
            let idx = random_indices(&mut rng, k as usize, d.in_bits);
            write_vector(w, &mut rng, &d, &idx, false);
            expect(w, &t, &idx);
        }
        w.sync();
    }
}

/// The reference: Σ_j TABLE[idx_j], element by element (the hardware counts instead).
pub fn direct_sum(t: &[i64], idx: &[u32]) -> i64 {
    idx.iter().map(|&i| t[i as usize]).sum()
}

fn random_n(rng: &mut Rng, n_max: u32) -> usize {
    let k = match rng.below(20) {
        0 => 1,
        1 => n_max as u64,
        2..=4 => rng.range(1, n_max as i64) as u64,
        _ => ((rng.unit() * (n_max as f64).ln()).exp() as u64).clamp(1, n_max as u64),
    };
    k as usize
}

fn random_indices(rng: &mut Rng, k: usize, bits: u32) -> Vec<u32> {
    if rng.chance(1, 16) {
        let a = rng.below(1 << bits) as u32;
        return vec![a; k];
    }
    (0..k).map(|_| rng.below(1 << bits) as u32).collect()
}

/// Packs a vector into beats; with `holes` some lanes are empty (keep = 0, junk index).
fn write_vector(w: &mut GoldenWriter, rng: &mut Rng, d: &NlReduceDerived, idx: &[u32], holes: bool) {
    let lanes = d.lanes as usize;
    let mut pos = 0;
    loop {
        let mut a = vec![0u64; lanes];
        let mut keep = vec![0u64; lanes];
        for lane in 0..lanes {
            if pos >= idx.len() || (holes && rng.chance(1, 4)) {
                a[lane] = rng.below(1 << d.in_bits);
                continue;
            }
            a[lane] = idx[pos] as u64;
            keep[lane] = 1;
            pos += 1;
        }
        let last = pos >= idx.len();
        w.input(&[hex_lanes(&a, d.in_bits), hex_lanes(&keep, 1), (last as u8).to_string()]);
        if last {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuantConfig;

    #[test]
    fn result_width_holds_the_extremes() {
        let q = QuantConfig::default();
        let c = NlReduceConfig::default();
        let s = c.spec(&q).unwrap();
        let d = NlReduceDerived::new(&s, &c);
        assert_eq!((d.count_bits, d.sum_bits, d.weigh_steps, d.bins), (11, 26, 2, 16));
        for n_max in [1u32, 2, 3, 1000, 1024, 1025, 1 << 20] {
            let c = NlReduceConfig { n_max, ..NlReduceConfig::default() };
            let d = NlReduceDerived::new(&c.spec(&q).unwrap(), &c);
            let lo = -(1i64 << (c.entry_bits - 1));
            let hi = (1i64 << (c.entry_bits - 1)) - 1;
            let fits = |v: i64, w: u32| v >= -(1i64 << (w - 1)) && v < (1i64 << (w - 1));
            let (a, b) = (n_max as i64 * lo, n_max as i64 * hi);
            assert!(fits(a, d.sum_bits) && fits(b, d.sum_bits), "n_max={n_max}");
            // Exact: one bit less fails for one of the extremes.
            assert!(!fits(a, d.sum_bits - 1) || !fits(b, d.sum_bits - 1), "n_max={n_max}");
        }
    }

    /// The float edge cases contain what they claim, for fp16 with 16 and 4 bins and for fp8
    /// E4M3 (whose T needs 512 copies): both accumulator bounds, zero sums giving +0, binary32
    /// ties rounding down and up (to even), and subnormal-only sums.
    #[test]
    fn float_edge_cases_reach_the_bounds_and_the_ties() {
        for (f, in_bits, n_max, ties_expected) in [
            (FloatFormat::FP16, 4, 1024, 4),
            (FloatFormat::FP16, 2, 1024, 4),
            (FloatFormat::FP8_E4M3, 3, 1024, 4),
            (FloatFormat::FP16, 1, 7, 4),
        ] {
            let cases = float_edge_cases(f, in_bits, n_max);
            let bound = num_bigint::BigInt::from(n_max) * f.to_fixed(f.max_finite()).unwrap();
            let (mut extremes, mut zeros, mut ties, mut downs, mut ups, mut subs) = (0, 0, 0, 0, 0, 0);
            for (t, vecs) in &cases {
                assert_eq!(t.len(), 1 << in_bits);
                for idx in vecs {
                    assert!(!idx.is_empty() && idx.len() <= n_max as usize);
                    let s = f.sum_exact(idx.iter().map(|&i| t[i as usize])).unwrap();
                    let y = float::reduce(f, t, idx).unwrap();
                    if s == bound || s == -bound.clone() {
                        extremes += 1;
                    }
                    if s == num_bigint::BigInt::from(0) {
                        zeros += 1;
                        assert_eq!(y, 0, "a zero sum is +0");
                    }
                    if idx.iter().all(|&i| t[i as usize] & ((1 << (f.e() + f.m())) - 1) < 1 << f.m()) && s != 0.into() {
                        subs += 1;
                    }
                    if crate::pe_fp::is_b32_tie(f, &s) {
                        ties += 1;
                        assert_eq!(y & 1, 0, "ties to even");
                        let exact: f64 = s.magnitude().to_string().parse::<f64>().unwrap() * 2f64.powi(f.unit_exp());
                        if (f32::from_bits(y) as f64).abs() < exact { downs += 1 } else { ups += 1 }
                    }
                }
            }
            let what = format!("{} in_bits={in_bits} n_max={n_max}", f.name());
            assert_eq!(extremes, 2, "{what}");
            assert!(zeros >= 3, "{what}: {zeros}");
            assert!(subs >= 4, "{what}: {subs}");
            assert_eq!((ties, downs, ups), (ties_expected, ties_expected / 2, ties_expected / 2), "{what}");
        }
    }

    /// Float segment tables hold the shapes the golden file claims (fp16, the nl_fp16_na4 unit):
    /// the report table is exp over the Gaussian codebook, the fully random ones include zeros,
    /// subnormals and the largest finite value over 40 segments.
    #[test]
    fn float_segment_tables_cover_zeros_subnormals_and_extremes() {
        let q = QuantConfig { numerics: "fp16".into(), ..QuantConfig::default() };
        let c = NlReduceConfig::default();
        let s = c.spec(&q).unwrap();
        let f = FloatFormat::FP16;
        let mut rng = Rng::new(1);
        // Segment 0: exp over the Gaussian codebook, every entry within half an fp16 step of e^x.
        let (ins, _) = float::report_codebooks(f, tables::Func::Exp, &[4], true, 16).unwrap();
        for (&x, &e) in ins[0].iter().zip(&float_segment_table(&mut rng, f, &s, 0)) {
            let want = f.to_f64(x).unwrap().exp();
            assert!((f.to_f64(e).unwrap() - want).abs() <= float::ulp(f, want) / 2.0, "{x:#x} -> {e:#x}");
        }
        let (mut zeros, mut subs, mut maxes) = (0, 0, 0);
        for seg in 0..40 {
            for v in float_segment_table(&mut rng, f, &s, seg) {
                let mag = v & 0x7fff;
                zeros += (mag == 0) as u32;
                subs += (mag != 0 && mag < 0x400) as u32;
                maxes += (mag == 0x7bff) as u32;
            }
        }
        assert!(zeros > 0 && subs > 0 && maxes > 0, "{zeros} {subs} {maxes}");
    }

    #[test]
    fn counting_equals_direct_sum() {
        let mut rng = Rng::new(11);
        for _ in 0..100 {
            let t: Vec<i64> = (0..16).map(|_| rng.range(-32768, 32767)).collect();
            let n = random_n(&mut rng, 1024);
            let idx = random_indices(&mut rng, n, 4);
            let mut count = [0i64; 16];
            for &i in &idx {
                count[i as usize] += 1;
            }
            let by_count: i64 = count.iter().zip(&t).map(|(c, v)| c * v).sum();
            assert_eq!(by_count, direct_sum(&t, &idx));
        }
    }
}
