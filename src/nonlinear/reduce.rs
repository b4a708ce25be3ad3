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

use super::tables::{self, Accuracy, Out};
use super::{MapSpec, NlReduceConfig};
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
    pub entry_bits: u32,
    pub popcount_bits: u32,
    pub count_bits: u32,
    /// Exact result width: entry_bits + ceil(log2 n_max), the fewest bits that hold both
    /// n_max·(−2^(entry_bits−1)) and n_max·(2^(entry_bits−1)−1).
    pub sum_bits: u32,
    pub reduce_width: u32,
    pub weigh_steps: u32,
    pub fifo_depth: u32,
    pub n_max: u32,
    /// Cycles from a vector's first input transfer to its result transfer on an idle unit:
    /// `beats + latency_extra`.
    pub latency_extra: u32,
    /// Table register bits.
    pub table_bits: u32,
    pub predicted: ReducePredicted,
    /// The configured function's table (value mode, entry_bits) over the Gaussian codebook.
    pub accuracy: Accuracy,
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
        let (accuracy, _) = super::report(s).expect("validated config");
        let core = c.core(s.in_bits[0]).expect("a validated [nl_reduce] gives a valid counting core");
        let beats = c.n_max.div_ceil(c.lanes);
        NlReduceDerived {
            lanes: c.lanes,
            in_bits: s.in_bits[0],
            bins: core.bins,
            entry_bits: c.entry_bits,
            popcount_bits: core.popcount_bits,
            count_bits: core.count_bits,
            sum_bits: core.y_bits,
            reduce_width: c.reduce_width,
            weigh_steps: core.weigh_steps,
            fifo_depth: core.fifo_depth,
            n_max: c.n_max,
            latency_extra: core.latency_extra,
            table_bits: core.bins * c.entry_bits,
            predicted: ReducePredicted {
                single_nmax_cycles: timing::cycles(&core, &[beats]),
                batch64_nmax_cycles: timing::cycles(&core, &[beats; 64]),
                batch64_one_beat_cycles: timing::cycles(&core, &[1; 64]),
            },
            accuracy,
            core,
        }
    }
}

pub fn generate(d: &mut Design, spec: &MapSpec, c: &NlReduceConfig, module: &str) -> Handle {
    let g = NlReduceDerived::new(spec, c);

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
