//! Float mode of the centroid-table units (SPEC.md, "Float mode": tables hold F values or
//! indices; `nl_reduce` sums `count[q]·table[q]` exactly and rounds once with `RNE_32`).
//!
//! An input index `i` stands for the F centroid `ca[i]` itself (a real value; per-token scales
//! stay outside the contract, so `in_scale`/`out_scale` are not used). A table entry is
//! - value mode: `RNE_F(f(ca[i]))` (map2: `RNE_F(f(ca[ia], cb[ib]))`), rounded once. The functions
//!   that are exact on F values are computed exactly with the helpers of `crate::fp`: `identity`
//!   (the pattern), `neg` (the sign flipped: −(+0) = −0), `relu` (x if x > 0, else +0),
//!   `square` and `mul` (`mul_rne`), `add` (`sub_rne` of the negated operand). The others
//!   (`silu`, `gelu`, `exp`, `rsqrt`, `silu_mul`) are evaluated in f64 on the exact input values
//!   and that f64 is rounded once to F; `rsqrt` treats inputs below F's smallest subnormal as that
//!   subnormal (it has no finite value at x ≤ 0), as integer mode does with one input unit.
//! - index mode: the requantization of that F value to the output codebook `co` (F values,
//!   strictly ascending) by the encoder's exact rule `#{i : y > (co[i] + co[i+1]) / 2}`, ties to
//!   the lower index — what `kllm_act_encoder` in float mode outputs for the value `y`.
//!
//! An entry that would be NaN or infinity (`exp` of a large centroid, a product beyond F's
//! range) is refused with the function, its inputs and the value; the hardware never sees one.
//!
//! The reduction's reference is `RNE_32(Σ_j table[idx_j])`, the sum exact (element by element;
//! the hardware counts instead), S = 0 giving +0.

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::tables::{self, Func};
use crate::fp::FloatFormat;
use crate::pe_fp::{random_f, Style};
use crate::rng::Rng;

/// `fmt` of an F pattern for messages: `0x3c00 = 1`.
pub fn show(f: FloatFormat, p: u64) -> String {
    match f.to_f64(p) {
        Ok(v) => format!("{p:#x} = {v}"),
        Err(_) => format!("{p:#x}"),
    }
}

fn neg(f: FloatFormat, p: u64) -> u64 {
    p ^ (1 << (f.e() + f.m()))
}

/// The value of `f` at the F inputs `x` (one pattern per operand), rounded once to F.
pub fn entry(f: FloatFormat, func: Func, x: &[u64]) -> Result<u64> {
    let value = |p: u64| f.to_f64(p);
    let r = match func {
        Func::Identity => f.decode(x[0]).map(|_| x[0]),
        Func::Neg => f.decode(x[0]).map(|_| neg(f, x[0])),
        Func::Relu => value(x[0]).map(|v| if v > 0.0 { x[0] } else { 0 }),
        Func::Square => f.mul_rne(x[0], x[0]),
        Func::Mul => f.mul_rne(x[0], x[1]),
        Func::Add => f.decode(x[1]).and_then(|_| f.sub_rne(x[0], neg(f, x[1]))),
        _ => {
            let xs: Vec<f64> = x.iter().map(|&p| value(p)).collect::<Result<_>>()?;
            let unit = 2f64.powi(f.unit_exp());
            let y = func.eval(&xs, unit);
            f.from_f64(y)
        }
    };
    r.map_err(|e| {
        let args: Vec<String> = x.iter().map(|&p| show(f, p)).collect();
        anyhow!("{}({}): {e}", func.name(), args.join(", "))
    })
}

/// Where a float table's entries go.
#[derive(Clone, Debug, PartialEq)]
pub enum FOut {
    /// Requantize to the index of the nearest centroid of this F codebook (strictly ascending).
    Index(Vec<u64>),
    /// The F pattern itself.
    Value,
}

/// The table in address order (`(ia << nb) | ib` for two operands): F patterns (value) or
/// indices (index). An entry that would be NaN/infinity is an error naming it.
pub fn table(f: FloatFormat, func: Func, ins: &[&[u64]], out: &FOut) -> Result<Vec<u64>> {
    assert_eq!(ins.len(), func.arity());
    let mids = match out {
        FOut::Index(co) => Some(f.midpoints(co)?),
        FOut::Value => None,
    };
    let sizes: Vec<usize> = ins.iter().map(|c| c.len()).collect();
    tables::addresses(&sizes)
        .iter()
        .enumerate()
        .map(|(a, addr)| {
            let x: Vec<u64> = addr.iter().zip(ins).map(|(&i, c)| c[i]).collect();
            let y = entry(f, func, &x).map_err(|e| anyhow!("table entry {a}: {e}"))?;
            match &mids {
                Some(m) => Ok(f.encode(y, m)? as u64),
                None => Ok(y),
            }
        })
        .collect()
}

/// The reduction `RNE_32(Σ_j table[idx_j])`, the sum exact, as a binary32 pattern.
pub fn reduce(f: FloatFormat, t: &[u64], idx: &[u32]) -> Result<u32> {
    f.rne32(&f.sum_exact(idx.iter().map(|&i| t[i as usize]))?)
}

/// Real centroids rounded to F, made strictly ascending: a value that rounds onto (or below)
/// its predecessor moves to the next F value up.
pub fn f_codebook(f: FloatFormat, c: &[f64]) -> Result<Vec<u64>> {
    let mut keys: Vec<i64> = vec![];
    for &v in c {
        let mut k = f.order_key(f.from_f64(v)?)?;
        if let Some(&last) = keys.last() {
            k = k.max(last + 1);
        }
        keys.push(k);
    }
    keys.iter()
        .map(|&k| f.from_key(k).ok_or_else(|| anyhow!("{}: {} centroids do not fit below the largest finite value", f.name(), c.len())))
        .collect()
}

/// A random strictly ascending F codebook of `n` values of `style` (the shapes of
/// `pe_fp::random_f`; topped up with typical values when the style has too few distinct values).
pub fn random_codebook(rng: &mut Rng, f: FloatFormat, n: usize, style: Style) -> Vec<u64> {
    let mut keys = std::collections::BTreeSet::new();
    let mut tries = 0;
    while keys.len() < n {
        let s = if tries < 40 * n { style } else { Style::Typical };
        keys.insert(f.order_key(random_f(rng, f, s)).expect("finite"));
        tries += 1;
    }
    keys.into_iter().map(|k| f.from_key(k).expect("finite")).collect()
}

/// Distinct finite values of F (a codebook of 2^in_bits needs that many).
pub fn distinct_values(f: FloatFormat) -> u64 {
    2 * f.max_finite() + 1
}

/// The float table's accuracy against f64 over every entry (uniform over entries): the report
/// codebooks are the integer mode's Lloyd-Max codebooks of N(0,1), in real units, rounded to F.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FloatAccuracy {
    pub function: &'static str,
    pub numerics: String,
    /// The input codebook (real values of its F patterns).
    pub in_codebook: Vec<f64>,
    /// Index mode: the output codebook (real values); empty in value mode.
    pub out_codebook: Vec<f64>,
    pub entries: u32,
    pub max_abs_err: f64,
    pub mean_abs_err: f64,
    /// Error over the spacing around the chosen entry: the output codebook's gap (index mode) or
    /// one unit in the last place of F at f(x) (value mode, so ≤ 0.5 means correctly rounded).
    pub max_err_spacings: f64,
    pub mean_err_spacings: f64,
}

/// One unit in the last place of F at the real value `y` (the F spacing there).
pub fn ulp(f: FloatFormat, y: f64) -> f64 {
    let e = if y == 0.0 { f.emin() } else { (y.abs().log2().floor() as i32).max(f.emin()) };
    2f64.powi(e - f.m() as i32)
}

/// The report's F codebooks and output: Gaussian input codebook(s) of 2^bits levels; index
/// mode's output codebook is the Lloyd-Max codebook of f(X), X ~ N(0,1).
pub fn report_codebooks(f: FloatFormat, func: Func, in_bits: &[u32], value: bool, out_bits: u32) -> Result<(Vec<Vec<u64>>, FOut)> {
    let ins = in_bits.iter().map(|&b| f_codebook(f, &tables::gaussian_codebook(1 << b))).collect::<Result<Vec<_>>>()?;
    let out = if value {
        FOut::Value
    } else {
        FOut::Index(f_codebook(f, &tables::output_codebook(func, 1 << out_bits, 2f64.powi(f.unit_exp())))?)
    };
    Ok((ins, out))
}

/// The accuracy of the configured function's table over the report codebooks (an entry beyond
/// F's range is an error naming it).
pub fn report(f: FloatFormat, func: Func, in_bits: &[u32], value: bool, out_bits: u32) -> Result<FloatAccuracy> {
    let (ins, out) = report_codebooks(f, func, in_bits, value, out_bits)?;
    let refs: Vec<&[u64]> = ins.iter().map(|v| v.as_slice()).collect();
    let t = table(f, func, &refs, &out)?;
    let sizes: Vec<usize> = refs.iter().map(|c| c.len()).collect();
    let val = |p: u64| f.to_f64(p).expect("finite");
    let (mut max, mut sum, mut maxs, mut sums) = (0f64, 0f64, 0f64, 0f64);
    let addrs = tables::addresses(&sizes);
    for (addr, &e) in addrs.iter().zip(&t) {
        let x: Vec<f64> = addr.iter().zip(&refs).map(|(&i, c)| val(c[i])).collect();
        let y = func.eval(&x, 2f64.powi(f.unit_exp()));
        let (got, spacing) = match &out {
            FOut::Value => (val(e), ulp(f, y)),
            FOut::Index(co) => {
                let k = e as usize;
                let got = val(co[k]);
                let gap = if (y >= got && k + 1 < co.len()) || k == 0 {
                    val(co[(k + 1).min(co.len() - 1)]) - got
                } else {
                    got - val(co[k - 1])
                };
                (got, gap)
            }
        };
        let err = (got - y).abs();
        max = max.max(err);
        sum += err;
        maxs = maxs.max(err / spacing);
        sums += err / spacing;
    }
    let n = addrs.len() as f64;
    Ok(FloatAccuracy {
        function: func.name(),
        numerics: f.name(),
        in_codebook: ins[0].iter().map(|&p| val(p)).collect(),
        out_codebook: match &out {
            FOut::Index(co) => co.iter().map(|&p| val(p)).collect(),
            FOut::Value => vec![],
        },
        entries: addrs.len() as u32,
        max_abs_err: max,
        mean_abs_err: sum / n,
        max_err_spacings: maxs,
        mean_err_spacings: sums / n,
    })
}

/// Edge entries of a value table: both zeros, the smallest and largest subnormals, the smallest
/// normal, one, and the largest finite value, each of both signs.
pub fn edge_values(f: FloatFormat) -> Vec<u64> {
    let one = (f.bias() as u64) << f.m();
    let min_normal = 1u64 << f.m();
    let mut v = vec![];
    for p in [0, 1, min_normal - 1, min_normal, one, f.max_finite()] {
        v.push(p);
        v.push(neg(f, p));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: FloatFormat = FloatFormat::FP16;

    /// Exact functions against `half` (f32 arithmetic rounded once to f16 is correctly rounded
    /// for one product or sum of two f16 values) on every pair of a seeded random sample, and the
    /// zero signs of IEEE 754.
    #[test]
    fn exact_functions_match_an_ieee_fp16_unit() {
        let seed: u64 = std::env::var("FP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
        println!("nl float exact functions: seed {seed}");
        let mut rng = Rng::new(seed);
        let h = |p: u64| half::f16::from_bits(p as u16).to_f32();
        let back = |v: f32| half::f16::from_f32(v).to_bits() as u64;
        for _ in 0..200_000 {
            let styles = [Style::Typical, Style::Any, Style::Tiny, Style::Huge, Style::Unit];
            let (sa, sb) = (styles[rng.below(5) as usize], styles[rng.below(5) as usize]);
            let a = random_f(&mut rng, F, sa);
            let b = random_f(&mut rng, F, sb);
            let (fa, fb) = (h(a), h(b));
            for (func, want) in [(Func::Mul, fa * fb), (Func::Add, fa + fb), (Func::Square, fa * fa)] {
                let got = entry(F, func, &[a, b][..func.arity()]);
                if want.is_finite() && half::f16::from_f32(want).is_finite() {
                    assert_eq!(got.unwrap(), back(want), "{}({a:#x}, {b:#x})", func.name());
                } else {
                    assert!(got.is_err(), "{}({a:#x}, {b:#x}) overflows and must be refused", func.name());
                }
            }
            assert_eq!(entry(F, Func::Neg, &[a]).unwrap(), back(-fa));
            assert_eq!(entry(F, Func::Identity, &[a]).unwrap(), a);
            assert_eq!(entry(F, Func::Relu, &[a]).unwrap(), if fa > 0.0 { a } else { 0 });
        }
        // Zero signs: -(+0) = -0; (-0) + (-0) = -0; (-0) + (+0) = +0; relu(-0) = +0; (-0)^2 = +0.
        assert_eq!(entry(F, Func::Neg, &[0]).unwrap(), 0x8000);
        assert_eq!(entry(F, Func::Add, &[0x8000, 0x8000]).unwrap(), 0x8000);
        assert_eq!(entry(F, Func::Add, &[0x8000, 0]).unwrap(), 0);
        assert_eq!(entry(F, Func::Relu, &[0x8000]).unwrap(), 0);
        assert_eq!(entry(F, Func::Square, &[0x8000]).unwrap(), 0);
        assert_eq!(entry(F, Func::Mul, &[0x8000, 0x3c00]).unwrap(), 0x8000);
        // 1 + 2^-11 (0x3c00 + 0x1000) is a tie: to even (1); 1 + 3·2^-11 goes up.
        assert_eq!(entry(F, Func::Add, &[0x3c00, 0x1000]).unwrap(), 0x3c00);
        assert_eq!(entry(F, Func::Add, &[0x3c01, 0x1000]).unwrap(), 0x3c02);
    }

    /// f64-evaluated functions: one rounding of the f64 value (against `half` on f32-exact
    /// values), refusals of infinity and NaN naming the function and its input, and `rsqrt`'s
    /// floor at the smallest subnormal.
    #[test]
    fn transcendental_entries_round_once_and_refuse_overflow() {
        // exp(0) = 1, silu(-0) = -0, rsqrt(-1) = rsqrt(2^-24) = 4096.
        assert_eq!(entry(F, Func::Exp, &[0x8000]).unwrap(), 0x3c00);
        assert_eq!(entry(F, Func::Silu, &[0x8000]).unwrap(), 0x8000);
        assert_eq!(entry(F, Func::Rsqrt, &[0xbc00]).unwrap(), 0x6c00);
        assert_eq!(entry(F, Func::Rsqrt, &[0x4400]).unwrap(), 0x3800); // rsqrt(4) = 0.5
        // exp(11.09375) = 65758.6 is beyond 65504 (rounds to infinity): refused with the value.
        let e = entry(F, Func::Exp, &[0x498c]).unwrap_err().to_string();
        assert!(e.starts_with("exp(0x498c = 11.09375): fp16: the exact value 65"), "{e}");
        assert!(e.contains("(it would be infinity)") && !e.contains('\n'), "{e}");
        // exp(11.0859375) = 65245.9 stays finite.
        assert_eq!(entry(F, Func::Exp, &[0x498b]).unwrap(), half::f16::from_f32(11.0859375f64.exp() as f32).to_bits() as u64);
        // Infinity and NaN inputs are refused by their pattern.
        let e = entry(F, Func::Silu, &[0x7c00]).unwrap_err().to_string();
        assert!(e.contains("0x7c00 is +infinity"), "{e}");
        let e = entry(F, Func::Mul, &[0x3c00, 0xfe00]).unwrap_err().to_string();
        assert!(e.contains("0xfe00 is NaN"), "{e}");
        // A table with one bad entry names the entry.
        let e = table(F, Func::Exp, &[&[0x3c00, 0x7bff]], &FOut::Value).unwrap_err().to_string();
        assert!(e.starts_with("table entry 1: exp(0x7bff = 65504)"), "{e}");
    }

    /// Index mode requantizes like the float encoder: a value equal to an output midpoint goes
    /// to the lower index, one F step above it to the upper.
    #[test]
    fn index_entries_use_the_exact_midpoint_rule() {
        // co = [-1, 0, 1]: midpoints -0.5 and 0.5. Inputs exactly on and next to them.
        let co = vec![0xbc00, 0x0000, 0x3c00];
        let ins = [0xb800u64, 0xb7ff, 0x3800, 0x3801, 0x8000, 0x7bff, 0xfbff];
        let t = table(F, Func::Identity, &[&ins], &FOut::Index(co.clone())).unwrap();
        assert_eq!(t, vec![0, 1, 1, 2, 1, 2, 0]);
        // neg moves 0.5 to -0.5 (a tie, lower index).
        let t = table(F, Func::Neg, &[&[0x3800]], &FOut::Index(co)).unwrap();
        assert_eq!(t, vec![0]);
    }

    #[test]
    fn reduction_is_exact_then_rounded_once() {
        // 65504 + 2^-24: binary32 keeps 65504 (the tiny term is below its last place).
        assert_eq!(reduce(F, &[0x7bff, 0x0001], &[0, 1]).unwrap(), 65504f32.to_bits());
        // +max, -max cancel to exactly zero: +0; -0 alone: +0.
        assert_eq!(reduce(F, &[0x7bff, 0xfbff, 0x8000], &[0, 1]).unwrap(), 0);
        assert_eq!(reduce(F, &[0x8000], &[0, 0, 0]).unwrap(), 0);
        // 1024 copies of the smallest subnormal: 2^-14 exactly.
        assert_eq!(reduce(F, &[1], &[0; 1024]).unwrap(), 2f32.powi(-14).to_bits());
        // Against an f64 sum (exact for fp16 sums of up to 2^12 terms), converted by the FPU.
        let mut rng = Rng::new(5);
        for _ in 0..2000 {
            let t: Vec<u64> = (0..16).map(|_| random_f(&mut rng, F, Style::Any)).collect();
            let idx: Vec<u32> = (0..rng.range(1, 300)).map(|_| rng.below(16) as u32).collect();
            let s: f64 = idx.iter().map(|&i| F.to_f64(t[i as usize]).unwrap()).sum();
            let want = if s == 0.0 { 0 } else { (s as f32).to_bits() };
            assert_eq!(reduce(F, &t, &idx).unwrap(), want);
        }
    }

    /// The float report: value-mode entries are correctly rounded (≤ 0.5 ulp, from the f64 value),
    /// and the codebooks are the Gaussian ones in F.
    #[test]
    fn float_report_is_within_half_an_ulp_in_value_mode() {
        let a = report(F, Func::Exp, &[4], true, 16).unwrap();
        assert_eq!(a.entries, 16);
        assert!(a.max_err_spacings <= 0.5, "{a:?}");
        assert!((a.in_codebook[15] - 2.733).abs() < 2e-3 && a.in_codebook[0] == -a.in_codebook[15], "{a:?}");
        let a = report(F, Func::Silu, &[4], false, 4).unwrap();
        assert_eq!(a.out_codebook.len(), 16);
        assert!(a.out_codebook.windows(2).all(|w| w[0] < w[1]));
        let a = report(F, Func::Mul, &[3, 3], true, 16).unwrap();
        assert_eq!(a.entries, 64);
        assert!(a.max_err_spacings <= 0.5, "{a:?}");
    }

    #[test]
    fn codebooks_are_strictly_ascending() {
        let c = f_codebook(FloatFormat::FP8_E4M3, &[0.0, 0.001, 0.002, 1.0, 1.01]).unwrap();
        let v: Vec<f64> = c.iter().map(|&p| FloatFormat::FP8_E4M3.to_f64(p).unwrap()).collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
        let mut rng = Rng::new(2);
        for style in [Style::Typical, Style::Any, Style::Tiny, Style::Huge, Style::Unit] {
            let c = random_codebook(&mut rng, F, 16, style);
            assert!(F.midpoints(&c).is_ok(), "{style:?}");
        }
    }
}
