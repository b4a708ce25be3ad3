//! Float mode of the PE line and of its dequantize-multiply baseline (SPEC.md, "Float mode"):
//! the derived widths, the table of centroid products, the RTL glue both lines share, and the
//! golden vectors (random F codebooks of several shapes, plus the edge cases).
//!
//! Both lines compute `Y = RNE_32(S)`, `S = Σ_j LUT[p_j]` summed **exactly** in fixed point
//! (units of F's smallest subnormal), `LUT[j] = RNE_F(ca[ia]·cw[iw])`:
//! - `kllm_pe_line` loads the F table entries through cfg; each is converted once, on its way into
//!   the table, to its exact fixed-point value, so the counting core (`count_weigh`) weighs exact
//!   integers unchanged; `RNE_32` rounds the core's result on its way out.
//! - `kllm_dq_pe_line` loads the two F codebooks; an F multiplier per lane forms the table entry
//!   `RNE_F(ca·cw)` itself, which is converted to fixed point, summed exactly by the lane tree and
//!   the accumulator, and rounded once by the same `RNE_32` unit: bit-identical to the PE line.

use anyhow::{Result, bail};
use num_bigint::BigInt;
use serde::Serialize;

use crate::config::QuantConfig;
use crate::fp::FloatFormat;
use crate::fp_rtl;
use crate::golden::GoldenWriter;
use crate::pe_line::{self, PeLineConfig};
use crate::reference::pair_index;
use crate::rng::Rng;
use crate::verilog::{Design, Handle, Module};

/// The widths float mode derives from (E, M) and the config; the manifest and `explain` print
/// them under `float.*`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FloatDerived {
    /// `quant.numerics`.
    pub numerics: String,
    pub e: u32,
    pub m: u32,
    pub bias: i32,
    /// Storage width of an F value: 1 + E + M.
    pub f_bits: u32,
    /// Signed width of an F value's exact fixed-point form, 2^E + M − 1.
    pub fixed_bits: u32,
    /// Fraction bits of the fixed point: bit 0 weighs 2^−fixed_frac (F's smallest subnormal).
    pub fixed_frac: u32,
    /// Signed width of the exact accumulator: any sum of k_max F values fits
    /// ([`FloatFormat::acc_width`]).
    pub acc_bits: u32,
    /// Width of the result: a binary32 bit pattern.
    pub y_bits: u32,
}

impl FloatDerived {
    pub fn new(f: FloatFormat, q: &QuantConfig, k_max: u32) -> Self {
        FloatDerived {
            numerics: q.numerics.clone(),
            e: f.e(),
            m: f.m(),
            bias: f.bias(),
            f_bits: f.width(),
            fixed_bits: f.fixed_width(),
            fixed_frac: (-f.unit_exp()) as u32,
            acc_bits: f.acc_width(k_max as u64, 0),
            y_bits: 32,
        }
    }
}

/// Widest exact table entry and accumulator the counting core supports (its multipliers and
/// adders are plain two's-complement integers; see `count_weigh::CountWeigh::new`).
pub const MAX_FIXED_BITS: u32 = 64;
pub const MAX_ACC_BITS: u32 = 128;

/// Float-mode checks of a `[pe_line]` section: the format's exact widths must fit the core.
pub fn validate(q: &QuantConfig, c: &PeLineConfig) -> Result<(), String> {
    let Some(f) = q.float() else { return Ok(()) };
    let (fx, acc) = (f.fixed_width(), f.acc_width(c.k_max as u64, 0));
    if fx > MAX_FIXED_BITS || acc > MAX_ACC_BITS {
        return Err(format!(
            "`quant.numerics` = \"{}\": the PE line's exact table entries need {fx} bits and its \
             accumulator {acc} bits for pe_line.k_max = {}; the counting core allows table entries \
             up to {MAX_FIXED_BITS} bits and sums up to {MAX_ACC_BITS} bits (2^E + M - 1 <= {MAX_FIXED_BITS}: \
             fp16, fp8_e4m3 and fp8_e5m2 fit)",
            q.numerics, c.k_max
        ));
    }
    Ok(())
}

/// The table `LUT[(ia << nw) | iw] = RNE_F(ca[ia] · cw[iw])`. An entry that would be infinity
/// (or a NaN/infinity centroid) is refused with the entry, both centroids and the exact value.
pub fn lut(f: FloatFormat, ca: &[u64], cw: &[u64], nw: u32) -> Result<Vec<u64>> {
    let mut t = vec![0; ca.len() * cw.len()];
    for (ia, &a) in ca.iter().enumerate() {
        for (iw, &w) in cw.iter().enumerate() {
            let j = pair_index(ia as u32, iw as u32, nw);
            t[j] = f.mul_rne(a, w).map_err(|e| {
                anyhow::anyhow!("table entry LUT[{j}] = RNE(ca[{ia}] ({a:#x}) * cw[{iw}] ({w:#x})): {e}")
            })?;
        }
    }
    Ok(t)
}

/// The dot product `RNE_32(Σ_k LUT[(ia_k << nw) | iw_k])`, exactly summed, as a binary32 pattern.
pub fn dot(f: FloatFormat, lut: &[u64], nw: u32, ia: &[u32], iw: &[u32]) -> Result<u32> {
    let p: Vec<usize> = ia.iter().zip(iw).map(|(&a, &w)| pair_index(a, w, nw)).collect();
    f.dot(lut, &p, &[])
}

// ---------------------------------------------------------------------------------------------
// RTL glue

/// Adds a float RTL unit to the design once and returns its name.
fn unit(d: &mut Design, m: Module) -> String {
    let name = m.name.clone();
    if d.get(&name).is_none() {
        d.add(m);
    }
    name
}

/// `kllm_fp_to_fixed_e{E}m{M}`, added once.
pub fn to_fixed_unit(d: &mut Design, f: FloatFormat) -> String {
    unit(d, fp_rtl::fp_to_fixed(f))
}

/// `kllm_fp_mul_e{E}m{M}`, added once.
pub fn mul_unit(d: &mut Design, f: FloatFormat) -> String {
    unit(d, fp_rtl::fp_mul(f))
}

/// `kllm_fixed_to_f32_w{acc}_f{frac}`, added once: the one rounding of a dot product.
pub fn round_unit(d: &mut Design, g: &FloatDerived) -> String {
    unit(d, fp_rtl::fixed_to_f32(g.acc_bits, g.fixed_frac).expect("validated float widths fit the rounder"))
}

/// Instantiates the counting core in `m` as `u_count_weigh`, every port wired to the same-named
/// port of `m` except those in `to` (core port, signal).
pub fn instantiate_core(d: &mut Design, m: &mut Module, core: &crate::count_weigh::CountWeigh, to: &[(&str, &str)]) {
    let h: Handle = crate::count_weigh::generate(d, core);
    let conns: Vec<(&str, String)> = h
        .ports
        .iter()
        .map(|p| {
            let sig = to.iter().find(|(n, _)| *n == p.name).map_or(p.name.as_str(), |(_, s)| *s);
            (p.name.as_str(), sig.to_string())
        })
        .collect();
    m.instantiate(&h, "u_count_weigh", &conns);
}

// ---------------------------------------------------------------------------------------------
// Random F values and codebooks

/// How a random F value is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    /// Magnitudes near 1 (2^−6 ..= 2^3, clamped to the format), random sign and fraction.
    Typical,
    /// Any finite pattern, uniformly over the exponent field.
    Any,
    /// Subnormals and the smallest normals (±0 included).
    Tiny,
    /// The top binades, the largest finite value included.
    Huge,
    /// ±1, ±0.5, ±2, ±0: keeps the partner's values (and its extremes) in the table.
    Unit,
}

fn pattern(f: FloatFormat, neg: bool, expf: u64, frac: u64) -> u64 {
    (neg as u64) << (f.e() + f.m()) | expf << f.m() | frac
}

/// A random finite F pattern of `style`.
pub fn random_f(rng: &mut Rng, f: FloatFormat, style: Style) -> u64 {
    let top = (1u64 << f.e()) - 2; // largest finite exponent field
    let neg = rng.chance(1, 2);
    let frac = rng.below(1 << f.m());
    let bias = f.bias() as i64;
    let expf = match style {
        Style::Typical => rng.range((bias - 6).max(1), (bias + 3).min(top as i64)) as u64,
        Style::Any => rng.below(top + 1),
        Style::Tiny => {
            if rng.chance(1, 8) {
                return pattern(f, neg, 0, 0); // ±0
            }
            rng.below(3.min(top + 1))
        }
        Style::Huge => {
            if rng.chance(1, 4) {
                return pattern(f, neg, 0, 0) | f.max_finite();
            }
            top - rng.below(3.min(top))
        }
        Style::Unit => {
            return match rng.below(4) {
                0 => pattern(f, neg, 0, 0),
                k => pattern(f, neg, (bias + k as i64 - 2) as u64, 0), // 0.5, 1, 2
            };
        }
    };
    pattern(f, neg, expf, frac)
}

/// A codebook pair whose table is finite: values of the two styles, then any weight centroid
/// whose products would overflow is redrawn (typical values, then +0 as the last resort).
pub fn random_codebooks(rng: &mut Rng, f: FloatFormat, q: &QuantConfig, sa: Style, sw: Style) -> (Vec<u64>, Vec<u64>) {
    let mut ca: Vec<u64> = (0..1usize << q.na).map(|_| random_f(rng, f, sa)).collect();
    let mut cw: Vec<u64> = (0..1usize << q.nw).map(|_| random_f(rng, f, sw)).collect();
    // Sometimes both zeros and the largest finite values of either sign.
    if ca.len() >= 4 && rng.chance(1, 4) {
        ca[0] = 0;
        ca[1] = pattern(f, true, 0, 0);
    }
    if cw.len() >= 2 && sa == Style::Unit && rng.chance(1, 2) {
        cw[0] = f.max_finite();
        cw[1] = pattern(f, true, 0, 0) | f.max_finite();
    }
    for iw in 0..cw.len() {
        let mut tries = 0;
        while ca.iter().any(|&a| f.mul_rne(a, cw[iw]).is_err()) {
            tries += 1;
            cw[iw] = if tries < 50 { random_f(rng, f, Style::Typical) } else { 0 };
        }
    }
    (ca, cw)
}

/// Codebook shapes of the random segments, in turn.
const STYLES: [(Style, Style); 7] = [
    (Style::Typical, Style::Typical),
    (Style::Any, Style::Any),
    (Style::Tiny, Style::Typical),
    (Style::Huge, Style::Unit),
    (Style::Unit, Style::Huge),
    (Style::Tiny, Style::Tiny),
    (Style::Typical, Style::Any),
];

/// A codebook pair whose products are RNE_F ties: activation centroids with an odd significand
/// s < 2^(M+2)/3 times 1.5 · 2^k give 3s, M + 2 bits with a one at the bottom, exactly halfway
/// between two F values. Exercises the baseline's multiplier rounding (ties to even, up and down).
pub fn tie_codebooks(rng: &mut Rng, f: FloatFormat, q: &QuantConfig) -> (Vec<u64>, Vec<u64>) {
    let (m, bias) = (f.m(), f.bias() as i64);
    let lo = (1u64 << m) + 1;
    let hi = ((1u64 << (m + 2)) - 1) / 3; // 3s < 2^(M+2)
    let ca: Vec<u64> = (0..1usize << q.na)
        .map(|_| {
            if hi < lo {
                return random_f(rng, f, Style::Typical);
            }
            let mut s = rng.range(lo as i64, hi as i64) as u64 | 1;
            if s > hi {
                s -= 2;
            }
            let expf = rng.range((bias - 2).max(1), bias + 1) as u64;
            pattern(f, rng.chance(1, 2), expf, s - (1 << m))
        })
        .collect();
    let cw: Vec<u64> = (0..1usize << q.nw)
        .map(|_| {
            let expf = rng.range((bias - 2).max(1), bias) as u64;
            pattern(f, rng.chance(1, 2), expf, 1 << (m - 1)) // 1.5 · 2^k
        })
        .collect();
    let cw = cw.into_iter().map(|w| if ca.iter().any(|&a| f.mul_rne(a, w).is_err()) { 0 } else { w }).collect();
    (ca, cw)
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

/// What differs between the PE line's and the baseline's float golden files: how a codebook
/// pair reaches the block and the cycle model.
pub struct FpGolden<'a> {
    pub block: &'a str,
    pub load: &'a dyn Fn(&mut GoldenWriter, &[u64], &[u64]),
    pub cycles: &'a dyn Fn(&[u32]) -> u64,
}

/// Float-mode golden file of a PE line or its baseline: random dot products in segments of
/// fresh random F codebooks of the [`STYLES`] shapes and the RNE_F-tie shape (a third dense, the
/// rest with holes), then the edge cases ([`edge_segments`]), then the same timed workloads as
/// integer mode.
pub fn golden(q: &QuantConfig, c: &PeLineConfig, vectors: u32, seed: u64, w: &mut GoldenWriter, g: &FpGolden) {
    let f = q.float().expect("float mode");
    let d = pe_line::PeLineDerived::new(q, c);
    let mut rng = Rng::new(seed);
    let (na, nw) = (q.na, q.nw);
    w.header(g.block, &["idx_a", "idx_w", "keep", "last"], &["y"]);
    let dot_out = |w: &mut GoldenWriter, rng: &mut Rng, lut: &[u64], ia: &[u32], iw: &[u32], holes: bool| {
        pe_line::write_dot(w, rng, &d, ia, iw, holes);
        let y = dot(f, lut, nw, ia, iw).expect("a finite table's exact sum of at most k_max terms fits binary32");
        w.out(&[format!("{y:08x}")]);
    };
    let per_segment = 200u32;
    let (mut done, mut seg) = (0u32, 0usize);
    while done < vectors {
        let n = per_segment.min(vectors - done);
        let (ca, cw) = if seg % (STYLES.len() + 1) == STYLES.len() {
            tie_codebooks(&mut rng, f, q)
        } else {
            let (sa, sw) = STYLES[seg % (STYLES.len() + 1)];
            random_codebooks(&mut rng, f, q, sa, sw)
        };
        let table = lut(f, &ca, &cw, nw).expect("random codebooks have finite tables");
        (g.load)(w, &ca, &cw);
        for _ in 0..n {
            let k = pe_line::random_k(&mut rng, c.k_max);
            let (ia, iw) = pe_line::random_indices(&mut rng, k, na, nw);
            dot_out(w, &mut rng, &table, &ia, &iw, seg % 3 != 0);
        }
        w.sync();
        done += n;
        seg += 1;
    }
    for (ca, cw, dots) in edge_segments(f, q, c.k_max) {
        let table = lut(f, &ca, &cw, nw).expect("edge codebooks have finite tables");
        (g.load)(w, &ca, &cw);
        for (ia, iw) in dots {
            dot_out(w, &mut rng, &table, &ia, &iw, false);
        }
        w.sync();
    }
    // Timed segments: the manifest's workloads and every length 1 ..= 3 weigh steps.
    let (ca, cw) = random_codebooks(&mut rng, f, q, Style::Typical, Style::Typical);
    let table = lut(f, &ca, &cw, nw).unwrap();
    (g.load)(w, &ca, &cw);
    let mut timed: Vec<(usize, u32)> = vec![(1, c.k_max), (64, c.k_max), (64, c.lanes.min(c.k_max))];
    timed.extend(
        pe_line::back_to_back_lengths(d.weigh_steps, c.lanes, c.k_max).into_iter().map(|k| (pe_line::BACK_TO_BACK, k)),
    );
    for (count, k) in timed {
        w.timing((g.cycles)(&vec![k.div_ceil(c.lanes); count]));
        for _ in 0..count {
            let (ia, iw) = pe_line::random_indices(&mut rng, k as usize, na, nw);
            dot_out(w, &mut rng, &table, &ia, &iw, false);
        }
        w.sync();
    }
}

type Dots = Vec<(Vec<u32>, Vec<u32>)>;

/// The edge cases, as (ca, cw, dot products): the largest sums of either sign (k_max copies of
/// the largest finite value), sums that cancel to exactly zero (+0) and sums of signed zeros,
/// subnormal-only sums, and binary32 rounding ties (ties to even, down and up, and just above).
pub fn edge_segments(f: FloatFormat, q: &QuantConfig, k_max: u32) -> Vec<(Vec<u64>, Vec<u64>, Dots)> {
    let (na, nw) = (1usize << q.na, 1usize << q.nw);
    let k = k_max as usize;
    let neg = |v: u64| v | 1 << (f.e() + f.m());
    let one = pattern(f, false, f.bias() as u64, 0);
    let max = f.max_finite();
    let all = |a: u32, w: u32, n: usize| (vec![a; n], vec![w; n]);
    let mut out = vec![];

    // 1. Extremes: ca[0] = +max, ca[1] = -max (when it exists), cw[0] = +1, cw[1] = -1.
    let mut ca = vec![one; na];
    let mut cw = vec![one; nw];
    ca[0] = max;
    if na > 1 {
        ca[1] = neg(max);
    }
    if nw > 1 {
        cw[1] = neg(one);
    }
    let mut dots = vec![all(0, 0, k), all(0, 0, 1)];
    if nw > 1 {
        dots.push(all(0, 1, k));
        // +max and -max alternately: the sum cancels to exactly zero, which is +0.
        let ia = vec![0; k - k % 2];
        let iw: Vec<u32> = (0..ia.len()).map(|i| (i % 2) as u32).collect();
        if !ia.is_empty() {
            dots.push((ia, iw));
        }
    }
    out.push((ca, cw, dots));

    // 2. Zeros and subnormals: ca = [+0, -0, smallest subnormal, largest subnormal, ...],
    //    cw = [+1, -1, ...]: sums of -0 alone give +0; subnormal sums cross into the normals.
    let mut ca = vec![one; na];
    let mut cw = vec![one; nw];
    let sub = [0u64, neg(0), 1, (1 << f.m()) - 1];
    for (i, v) in sub.iter().enumerate().take(na) {
        ca[i] = *v;
    }
    if nw > 1 {
        cw[1] = neg(one);
    }
    let mut dots: Dots = vec![all(1 % na as u32, 0, k), all(0, 0, k)];
    if na > 2 {
        dots.push(all(2, 0, k));
        dots.push(all(2, 0, 1));
    }
    if na > 3 {
        dots.push(all(3, 0, k));
        if nw > 1 {
            dots.push(all(3, 1, k));
        }
    }
    out.push((ca, cw, dots));

    // 3. binary32 ties: with T = 2^(unit + 25), binary32's last place in T's binade is 4 units,
    //    so T + 2 units is exactly halfway (ties to even: down to T), T + 6 units too (up to
    //    T + 8), while T + 1 and T + 3 are below and above a tie. T is one table entry when F can
    //    hold it, else several copies of F's largest power of two.
    if na >= 4 && nw >= 2 {
        let top_exp = f.unit_exp() + 25;
        let emax = f.emax();
        let (t_exp, copies) = if top_exp <= emax { (top_exp, 1usize) } else { (emax, 1usize << (top_exp - emax)) };
        if copies + 2 <= k {
            let t = pattern(f, false, (t_exp + f.bias()) as u64, 0);
            let mut ca = vec![one; na];
            ca[0] = t;
            ca[1] = 1; // 1 unit (the smallest subnormal)
            ca[2] = 2; // 2 units
            ca[3] = 3; // 3 units
            let mut cw = vec![one; nw];
            cw[1] = neg(one);
            let mut dots = vec![];
            for sign in [0u32, 1] {
                for tail in [&[2u32][..], &[3, 3], &[1], &[2, 1]] {
                    let mut ia = vec![0u32; copies];
                    ia.extend_from_slice(tail);
                    let iw = vec![sign; ia.len()];
                    dots.push((ia, iw));
                }
            }
            out.push((ca, cw, dots));
        }
    }
    out
}

/// Whether `S` (units of 2^unit_exp) is exactly halfway between two binary32 values.
pub fn is_b32_tie(f: FloatFormat, s: &BigInt) -> bool {
    let mag = s.magnitude();
    let n = mag.bits() as i64;
    // Bits below binary32's 24 significant bits (or below 2^-149 for subnormal results).
    let lsb = (f.unit_exp() as i64 + n - 24).max(-149);
    let drop = lsb - f.unit_exp() as i64;
    if drop <= 0 {
        return false;
    }
    let rest = mag & ((num_bigint::BigUint::from(1u8) << drop as u64) - 1u8);
    rest == num_bigint::BigUint::from(1u8) << (drop - 1) as u64
}

/// Checks that an F pattern of a config is finite, naming the key when it is not (for data a
/// user hands the golden writer).
pub fn check_finite(f: FloatFormat, what: &str, bits: u64) -> Result<()> {
    if let Err(e) = f.decode(bits) {
        bail!("{what}: {e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q16() -> QuantConfig {
        QuantConfig { numerics: "fp16".into(), ..QuantConfig::default() }
    }

    #[test]
    fn an_overflowing_table_entry_is_refused_with_the_entry_and_value() {
        let f = FloatFormat::FP16;
        // ca[1] = 65504, cw[2] = 2: 131008 is beyond fp16.
        let err = lut(f, &[0x3c00, 0x7bff], &[0x3c00, 0x3c00, 0x4000, 0x0], 2).unwrap_err().to_string();
        assert!(err.starts_with("table entry LUT[6] = RNE(ca[1] (0x7bff) * cw[2] (0x4000)): fp16: the exact value 131008"), "{err}");
        assert!(!err.contains('\n'));
        let err = lut(f, &[0x7c00], &[0x3c00], 0).unwrap_err().to_string();
        assert!(err.contains("0x7c00 is +infinity"), "{err}");
    }

    #[test]
    fn random_codebooks_have_finite_tables_in_every_style() {
        let q = q16();
        let mut rng = Rng::new(7);
        for f in [FloatFormat::FP16, FloatFormat::FP8_E4M3, FloatFormat::FP8_E5M2] {
            for (sa, sw) in STYLES {
                for _ in 0..50 {
                    let (ca, cw) = random_codebooks(&mut rng, f, &q, sa, sw);
                    lut(f, &ca, &cw, q.nw).unwrap();
                }
            }
            for _ in 0..50 {
                let (ca, cw) = tie_codebooks(&mut rng, f, &q);
                lut(f, &ca, &cw, q.nw).unwrap();
            }
        }
    }

    /// The tie codebooks really produce RNE_F ties (exact products halfway between F values).
    #[test]
    fn tie_codebooks_make_table_ties() {
        let f = FloatFormat::FP16;
        let mut rng = Rng::new(3);
        let (ca, cw) = tie_codebooks(&mut rng, f, &q16());
        let mut ties = 0;
        for &a in &ca {
            for &w in &cw {
                let (da, dw) = (f.decode(a).unwrap(), f.decode(w).unwrap());
                let p = da.sig * dw.sig; // exact significand product
                let kept = p >> (p.ilog2() - f.m()); // M + 1 significant bits
                let dropped = p - (kept << (p.ilog2() - f.m()));
                ties += (dropped == 1 << (p.ilog2() - f.m() - 1)) as u32;
            }
        }
        assert_eq!(ties, (ca.len() * cw.len()) as u32);
    }

    /// The edge segments contain what they claim: both extreme sums, zero sums giving +0, and
    /// binary32 ties that round down and up.
    #[test]
    fn edge_segments_reach_the_bounds_and_the_ties() {
        let f = FloatFormat::FP16;
        let q = q16();
        let segs = edge_segments(f, &q, 4096);
        let (mut ties, mut zeros, mut extremes, mut downs, mut ups) = (0, 0, 0, 0, 0);
        let bound = BigInt::from(4096u32) * f.to_fixed(f.max_finite()).unwrap();
        for (ca, cw, dots) in &segs {
            let table = lut(f, ca, cw, q.nw).unwrap();
            for (ia, iw) in dots {
                let terms: Vec<u64> = ia.iter().zip(iw).map(|(&a, &w)| table[pair_index(a, w, q.nw)]).collect();
                let s = f.sum_exact(terms).unwrap();
                let y = dot(f, &table, q.nw, ia, iw).unwrap();
                if is_b32_tie(f, &s) {
                    ties += 1;
                    // Ties to even: the result's last fraction bit is 0.
                    assert_eq!(y & 1, 0);
                    let exact = f64::from(f32::from_bits(y)).abs();
                    let sv = s.magnitude().to_string().parse::<f64>().unwrap() * 2f64.powi(f.unit_exp());
                    if exact < sv { downs += 1 } else { ups += 1 }
                }
                if s == BigInt::from(0) {
                    zeros += 1;
                    assert_eq!(y, 0, "a zero sum is +0");
                }
                if s == bound || s == -bound.clone() {
                    extremes += 1;
                }
            }
        }
        assert_eq!(extremes, 2);
        assert!(zeros >= 3, "{zeros}");
        assert_eq!((ties, downs, ups), (4, 2, 2));
        // The accumulator is exactly wide enough for the extreme sum.
        assert_eq!(f.acc_width(4096, 0), bound.bits() as u32 + 1);
    }
}
