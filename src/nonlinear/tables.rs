//! The reference for the centroid-table nonlinear units: which function a table holds, how its
//! entries are computed from codebooks and scales, and how accurate the table is against f64.
//!
//! Numbers: an input index `i` stands for the real value `ca[i] * in_scale` (integer centroid
//! times the layer's scale). The table entry is
//! - index mode: `encode(round(f(x) / out_scale), midpoints(co))` — f in f64, rounded (half away
//!   from zero) to the output codebook's integer units, then SPEC's encoder rule (nearest
//!   centroid, ties to the lower index). This is exactly what `kllm_act_encoder` would output if
//!   it were fed the rounded value, so a table and an encoder agree bit for bit.
//! - value mode: `round(f(x) / out_scale)` as a signed `out_bits` integer; a value that does not
//!   fit is an error (never saturated).
//!
//! Binary tables (map2) are addressed by `(ia << nb) | ib`.

use crate::reference;

/// A function a table can hold. The hardware does not know which one it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Silu,
    Gelu,
    Exp,
    Relu,
    Neg,
    Square,
    Rsqrt,
    Identity,
    Mul,
    SiluMul,
    Add,
}

pub const UNARY: &[&str] = &["silu", "gelu", "exp", "relu", "neg", "square", "rsqrt", "identity"];
pub const BINARY: &[&str] = &["mul", "silu_mul", "add"];

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

impl Func {
    pub fn parse(name: &str) -> Option<Func> {
        Some(match name {
            "silu" => Func::Silu,
            "gelu" => Func::Gelu,
            "exp" => Func::Exp,
            "relu" => Func::Relu,
            "neg" => Func::Neg,
            "square" => Func::Square,
            "rsqrt" => Func::Rsqrt,
            "identity" => Func::Identity,
            "mul" => Func::Mul,
            "silu_mul" => Func::SiluMul,
            "add" => Func::Add,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::Silu => "silu",
            Func::Gelu => "gelu",
            Func::Exp => "exp",
            Func::Relu => "relu",
            Func::Neg => "neg",
            Func::Square => "square",
            Func::Rsqrt => "rsqrt",
            Func::Identity => "identity",
            Func::Mul => "mul",
            Func::SiluMul => "silu_mul",
            Func::Add => "add",
        }
    }

    pub fn arity(self) -> usize {
        if matches!(self, Func::Mul | Func::SiluMul | Func::Add) { 2 } else { 1 }
    }

    /// f in f64. `x[1]` is used only by binary functions. `in_scale` is the value of one input
    /// unit: rsqrt treats inputs below one unit as one unit (it has no finite value at x <= 0).
    pub fn eval(self, x: &[f64], in_scale: f64) -> f64 {
        let a = x[0];
        match self {
            Func::Silu => silu(a),
            // The tanh form (GPT-2, BERT reference code), stated so the table is reproducible.
            Func::Gelu => {
                0.5 * a * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (a + 0.044715 * a * a * a)).tanh())
            }
            Func::Exp => a.exp(),
            Func::Relu => a.max(0.0),
            Func::Neg => -a,
            Func::Square => a * a,
            Func::Rsqrt => 1.0 / a.max(in_scale).sqrt(),
            Func::Identity => a,
            Func::Mul => a * x[1],
            Func::SiluMul => silu(a) * x[1],
            Func::Add => a + x[1],
        }
    }
}

/// `round(y / scale)` to integer units, half away from zero, clamped far outside any codebook
/// (so `exp` of a large input stays an ordinary number for the encoder).
pub fn round_units(y: f64, scale: f64) -> i64 {
    let v = (y / scale).round();
    let lim = (1i64 << 50) as f64;
    if v.is_nan() { 0 } else { v.clamp(-lim, lim) as i64 }
}

/// Where a table's entries go.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// Requantize to the index of the nearest centroid of `codebook` (sorted, distinct, in
    /// units of `scale`).
    Index { codebook: Vec<i64>, scale: f64 },
    /// Signed fixed point: `bits` wide, one LSB = `scale`.
    Value { bits: u32, scale: f64 },
}

impl Out {
    pub fn scale(&self) -> f64 {
        match self {
            Out::Index { scale, .. } | Out::Value { scale, .. } => *scale,
        }
    }
}

/// Every input combination of a table in address order: unary `[i]`, binary `[ia, ib]` with
/// address `(ia << nb) | ib`.
pub fn addresses(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &n in sizes {
        out = out.into_iter().flat_map(|p| (0..n).map(move |i| [p.clone(), vec![i]].concat())).collect();
    }
    out
}

fn real_inputs(ins: &[&[i64]], addr: &[usize], in_scale: f64) -> Vec<f64> {
    addr.iter().zip(ins).map(|(&i, c)| c[i] as f64 * in_scale).collect()
}

/// The table: one entry per input combination (address order). Index entries are indices,
/// value entries are signed integers. A value that does not fit `bits` is an error naming it.
pub fn table(f: Func, ins: &[&[i64]], in_scale: f64, out: &Out) -> Result<Vec<i64>, String> {
    assert_eq!(ins.len(), f.arity());
    let sizes: Vec<usize> = ins.iter().map(|c| c.len()).collect();
    let mids = match out {
        Out::Index { codebook, .. } => reference::midpoints(codebook),
        Out::Value { .. } => vec![],
    };
    addresses(&sizes)
        .iter()
        .map(|addr| {
            let x = real_inputs(ins, addr, in_scale);
            let y = f.eval(&x, in_scale);
            let u = round_units(y, out.scale());
            match out {
                Out::Index { .. } => Ok(reference::encode(u, &mids) as i64),
                Out::Value { bits, .. } => {
                    let (lo, hi) = (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1);
                    if u < lo || u > hi {
                        Err(format!(
                            "{}({}) = {y:.6} is {u} output units, outside {bits}-bit signed ({lo}..={hi})",
                            f.name(),
                            x.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(", ")
                        ))
                    } else {
                        Ok(u)
                    }
                }
            }
        })
        .collect()
}

/// Largest |round(f(x)/out_scale)| over every representable input (all `ac_bits` integers for
/// each operand): what a value-mode output must hold for any codebook. Unary: a full scan.
/// Binary (a·b, silu(a)·b, a+b): monotone in each factor, so the extremes lie at the corners
/// of [min g(a), max g(a)] × [min b, max b] (g = silu or identity); those 4 points are exact.
pub fn max_units_over_range(f: Func, ac_bits: u32, in_scale: f64, out_scale: f64) -> i64 {
    let lo = -(1i64 << (ac_bits - 1));
    let hi = (1i64 << (ac_bits - 1)) - 1;
    let units = |x: &[f64]| round_units(f.eval(x, in_scale), out_scale).abs();
    if f.arity() == 1 {
        return (lo..=hi).map(|a| units(&[a as f64 * in_scale])).max().unwrap_or(0);
    }
    let g = |a: i64| {
        let x = a as f64 * in_scale;
        if f == Func::SiluMul { silu(x) } else { x }
    };
    let amin = (lo..=hi).min_by(|&p, &q| g(p).total_cmp(&g(q))).unwrap();
    let amax = (lo..=hi).max_by(|&p, &q| g(p).total_cmp(&g(q))).unwrap();
    let mut m = 0;
    for a in [amin, amax] {
        for b in [lo, hi] {
            m = m.max(units(&[a as f64 * in_scale, b as f64 * in_scale]));
        }
    }
    m
}

/// Signed bits that hold `-m..=m`.
pub fn signed_bits_for(m: i64) -> u32 {
    crate::verilog::ubits(m as u64) + 1
}

/// Table accuracy against f64 over every table entry (uniform over entries).
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct Accuracy {
    pub function: &'static str,
    /// Input codebook(s) used for the report (integer units) and their scale.
    pub in_codebook: Vec<i64>,
    pub in_scale: f64,
    /// Output codebook (index mode; empty in value mode) and the output scale.
    pub out_codebook: Vec<i64>,
    pub out_scale: f64,
    pub entries: u32,
    pub max_abs_err: f64,
    pub mean_abs_err: f64,
    /// Error divided by the output spacing around the chosen entry (the codebook gap on the
    /// side of the exact value; one LSB in value mode). <= 0.5 unless f leaves the codebook's
    /// range (clipping) or integer rounding of y moves it across a midpoint.
    pub max_err_spacings: f64,
    pub mean_err_spacings: f64,
}

/// Accuracy of `table` (from [`table`]) against f64.
pub fn accuracy(f: Func, ins: &[&[i64]], in_scale: f64, out: &Out, table: &[i64]) -> Accuracy {
    let sizes: Vec<usize> = ins.iter().map(|c| c.len()).collect();
    let (mut max, mut sum, mut maxs, mut sums) = (0f64, 0f64, 0f64, 0f64);
    let addrs = addresses(&sizes);
    for (addr, &t) in addrs.iter().zip(table) {
        let y = f.eval(&real_inputs(ins, addr, in_scale), in_scale);
        let (got, spacing) = match out {
            Out::Index { codebook: co, scale } => {
                let k = t as usize;
                let got = co[k] as f64 * scale;
                let gap = if (y >= got && k + 1 < co.len()) || k == 0 {
                    co[(k + 1).min(co.len() - 1)] - co[k]
                } else {
                    co[k] - co[k - 1]
                };
                (got, (gap.max(1)) as f64 * scale)
            }
            Out::Value { scale, .. } => (t as f64 * scale, *scale),
        };
        let e = (got - y).abs();
        max = max.max(e);
        sum += e;
        maxs = maxs.max(e / spacing);
        sums += e / spacing;
    }
    let n = addrs.len() as f64;
    Accuracy {
        function: f.name(),
        in_codebook: ins[0].to_vec(),
        in_scale,
        out_codebook: match out {
            Out::Index { codebook, .. } => codebook.clone(),
            Out::Value { .. } => vec![],
        },
        out_scale: out.scale(),
        entries: addrs.len() as u32,
        max_abs_err: max,
        mean_abs_err: sum / n,
        max_err_spacings: maxs,
        mean_err_spacings: sums / n,
    }
}

// ---------------------------------------------------------------------------------------------
// Gaussian-like codebooks (what offline K-Means calibration learns on bell-shaped activations)

/// Weighted 1-D Lloyd-Max (= 1-D K-Means) on `(value, weight)` samples: `n` sorted centroids.
/// Deterministic: quantile start, fixed iteration cap, f64 only.
pub fn lloyd_max(samples: &[(f64, f64)], n: usize) -> Vec<f64> {
    let mut s: Vec<(f64, f64)> = samples.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = s.iter().map(|p| p.1).sum();
    // Start at the weighted quantiles (k + 1/2) / n.
    let mut c = vec![0f64; n];
    let (mut acc, mut k) = (0f64, 0usize);
    for &(v, w) in &s {
        acc += w;
        while k < n && acc >= (k as f64 + 0.5) / n as f64 * total {
            c[k] = v;
            k += 1;
        }
    }
    // On samples, Lloyd stops once no sample changes cell (a fixed point of the sampled problem).
    for _ in 0..500 {
        let b: Vec<f64> = c.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        let mut sw = vec![0f64; n];
        let mut swy = vec![0f64; n];
        let mut cell = 0;
        for &(v, w) in &s {
            while cell < n - 1 && v > b[cell] {
                cell += 1;
            }
            sw[cell] += w;
            swy[cell] += w * v;
        }
        let mut change = 0f64;
        for k in 0..n {
            if sw[k] > 0.0 {
                let new = swy[k] / sw[k];
                change = change.max((new - c[k]).abs());
                c[k] = new;
            }
        }
        if change < 1e-12 {
            break;
        }
    }
    c
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Samples of X ~ N(0,1) (for unary) or of independent (X, Y) (binary) on a grid over ±6σ.
fn gaussian_grid(arity: usize) -> Vec<(Vec<f64>, f64)> {
    let step = if arity == 1 { 1.0 / 256.0 } else { 1.0 / 16.0 };
    let n = (12.0 / step) as i64;
    let xs: Vec<(f64, f64)> = (0..=n).map(|i| -6.0 + i as f64 * step).map(|x| (x, normal_pdf(x))).collect();
    if arity == 1 {
        xs.iter().map(|&(x, w)| (vec![x], w)).collect()
    } else {
        xs.iter().flat_map(|&(a, wa)| xs.iter().map(move |&(b, wb)| (vec![a, b], wa * wb))).collect()
    }
}

/// erfc(x), Numerical Recipes' Chebyshev fit (fractional error < 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let ans = t * p.exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

/// P(a < X <= b) for X ~ N(0,1), from the tail nearer zero to avoid cancellation.
fn normal_mass(a: f64, b: f64) -> f64 {
    let q = |x: f64| 0.5 * erfc(x / std::f64::consts::SQRT_2);
    if a >= 0.0 {
        q(a) - q(b)
    } else if b <= 0.0 {
        q(-b) - q(-a)
    } else {
        1.0 - q(-a) - q(b)
    }
}

/// The Lloyd-Max quantizer of N(0,1) with `n` levels (Max 1960; 16 levels: ±0.1284 … ±2.733),
/// iterated on the exact density: the centroid of cell (a, b] is (φ(a) − φ(b)) / P(a < X <= b).
pub fn gaussian_codebook(n: usize) -> Vec<f64> {
    let mut c: Vec<f64> = (0..n).map(|k| -3.0 + 6.0 * (k as f64 + 0.5) / n as f64).collect();
    for _ in 0..200_000 {
        let mut b = vec![f64::NEG_INFINITY];
        b.extend(c.windows(2).map(|w| 0.5 * (w[0] + w[1])));
        b.push(f64::INFINITY);
        let mut change = 0f64;
        for k in 0..n {
            let pdf = |x: f64| if x.is_infinite() { 0.0 } else { normal_pdf(x) };
            let new = (pdf(b[k]) - pdf(b[k + 1])) / normal_mass(b[k], b[k + 1]);
            change = change.max((new - c[k]).abs());
            c[k] = new;
        }
        if change < 1e-13 {
            break;
        }
    }
    // Exact symmetry (the iteration is symmetric up to rounding).
    for k in 0..n / 2 {
        let m = 0.5 * (c[n - 1 - k] - c[k]);
        c[k] = -m;
        c[n - 1 - k] = m;
    }
    if n % 2 == 1 {
        c[n / 2] = 0.0;
    }
    c
}

/// The Lloyd-Max codebook of f(X) for Gaussian input(s): the output codebook a calibration
/// would learn for the next layer.
pub fn output_codebook(f: Func, n: usize, in_scale: f64) -> Vec<f64> {
    let s: Vec<(f64, f64)> =
        gaussian_grid(f.arity()).into_iter().map(|(x, w)| (f.eval(&x, in_scale), w)).collect();
    lloyd_max(&s, n)
}

/// Real centroids to sorted, distinct integers in `bits`-bit signed range at `scale`.
pub fn to_integer_codebook(c: &[f64], scale: f64, bits: u32) -> Vec<i64> {
    let lo = -(1i64 << (bits - 1));
    let hi = (1i64 << (bits - 1)) - 1;
    let n = c.len();
    let mut v: Vec<i64> = c.iter().map(|&x| round_units(x, scale).clamp(lo, hi)).collect();
    v.sort();
    for k in 0..n {
        let floor = if k == 0 { lo } else { v[k - 1] + 1 };
        v[k] = v[k].max(floor);
    }
    for k in (0..n).rev() {
        let ceil = if k + 1 == n { hi } else { v[k + 1] - 1 };
        v[k] = v[k].min(ceil).min(hi - (n - 1 - k) as i64);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lloyd_max_matches_max_1960() {
        // J. Max, "Quantizing for minimum distortion" (1960), outermost output levels.
        let c16 = gaussian_codebook(16);
        assert!((c16[15] - 2.733).abs() < 1e-3 && (c16[8] - 0.1284).abs() < 1e-3, "{c16:?}");
        assert!((c16[12] - 1.256).abs() < 1e-3, "{c16:?}");
        let c8 = gaussian_codebook(8);
        assert!((c8[7] - 2.152).abs() < 1e-3 && (c8[4] - 0.2451).abs() < 1e-3, "{c8:?}");
        for (a, b) in c16.iter().zip(c16.iter().rev()) {
            assert!((a + b).abs() < 1e-6, "symmetric");
        }
    }

    #[test]
    fn integer_codebook_is_sorted_distinct_in_range() {
        let v = to_integer_codebook(&[0.0, 0.0, 0.01, 5.0, 5.0, 9.0], 1.0, 4);
        assert_eq!(v, vec![0, 1, 2, 5, 6, 7]);
        let v = to_integer_codebook(&[-100.0, -100.0, -100.0], 1.0, 3);
        assert_eq!(v, vec![-4, -3, -2]);
    }

    #[test]
    fn index_table_is_nearest_centroid_of_rounded_value() {
        let ca = [-64, -20, 0, 20, 64];
        let co = [-10, 0, 3, 40];
        let t = table(Func::Identity, &[&ca], 0.5, &Out::Index { codebook: co.to_vec(), scale: 1.0 }).unwrap();
        // identity(x)/1.0 = ca*0.5 = -32, -10, 0, 10, 32
        assert_eq!(t, vec![0, 0, 1, 2, 3]);
    }

    #[test]
    fn value_table_rejects_what_does_not_fit() {
        let ca = [-128, 0, 127];
        let e = table(Func::Exp, &[&ca], 1.0 / 32.0, &Out::Value { bits: 8, scale: 1.0 / 32.0 }).unwrap_err();
        assert!(e.contains("outside 8-bit signed"), "{e}");
        let t = table(Func::Square, &[&ca], 1.0, &Out::Value { bits: 16, scale: 1.0 }).unwrap();
        assert_eq!(t, vec![16384, 0, 16129]);
    }

    #[test]
    fn binary_addresses_put_a_high() {
        let a = [1, 2];
        let b = [10, 20, 30, 40];
        let t = table(Func::Add, &[&a, &b], 1.0, &Out::Value { bits: 8, scale: 1.0 }).unwrap();
        assert_eq!(t, vec![11, 21, 31, 41, 12, 22, 32, 42]);
    }
}
