//! The decoder layer in float mode (SPEC.md, "Float mode"), for `kllm-gen eval`: every
//! projection computed the way a float-mode tile would, in plain F arithmetic.
//!
//! Per projection (one [`FpLinear`]), from the K-Means quantization of integer mode:
//! - the codebooks in F: `cw_F[i] = RNE_F(cw[i] / 2^(wc_bits−1))`, `ca_F[i] = RNE_F(ca[i] / 2^(ac_bits−1))`
//!   (exact for the 8-bit centroids: every integer of up to 11 bits is an fp16 value, so the float
//!   rows use the *same* K-Means centroids as the integer rows);
//! - the table `LUT[j] = RNE_F(ca_F · cw_F)` ([`pe_fp::lut`]);
//! - per token: the raw activations in F, `x_F = RNE_F(x / (unit_t · 2^(ac_bits−1)))` with the
//!   same per-token scale as integer mode (scales are outside the contract, applied in f64/f32);
//!   the indices by the exact midpoint rule ([`FloatFormat::encode`]); the outlier set from
//!   Orizuru's float reference (k largest ∪ k smallest by real value, ties by position);
//! - per output row: `Y = RNE_32(Σ_j LUT[p_j] + Σ_{o∈O} RNE_F(RNE_F(x_o − ca_F[ia_o]) · cw_F[iw_o]))`,
//!   the sum exact (as `i128` in units of F's smallest subnormal: the widths are checked), then
//!   `y = Y · scale_r · 2^(wc_bits−1) · unit_t · 2^(ac_bits−1)` rounded to f32.
//!
//! Data that would produce infinity (an activation or a compensation term beyond F's range) is
//! refused with the projection, the token and the value.

use std::sync::Mutex;

use super::gemv::{outlier_set_fp, FpCodebooks};
use super::layer::{self, error, quantize_weights, Codebook, EvalRow, Layer, Proj, QBits, QuantLayer, Scheme};
use super::quant::QLinear;
use crate::fp::FloatFormat;

/// One projection in float mode.
pub struct FpLinear<'a> {
    q: &'a QLinear,
    /// The F codebooks, the table and the midpoints: `gemv::FpCodebooks` computes every row, the
    /// one implementation the tile's float reference uses too.
    cb: FpCodebooks,
    /// 2^(ac_bits−1) and 2^(wc_bits−1): the codebooks' normalisation.
    an: f64,
    wn: f64,
}

impl<'a> FpLinear<'a> {
    pub fn new(q: &'a QLinear, f: FloatFormat, bits: QBits) -> anyhow::Result<Self> {
        let (an, wn) = (2f64.powi(bits.ac_bits as i32 - 1), 2f64.powi(bits.wc_bits as i32 - 1));
        let ca: Vec<u64> = q.a.ca.iter().map(|&c| f.from_f64(c as f64 / an)).collect::<anyhow::Result<_>>()?;
        let cw: Vec<u64> = q.w.cw.iter().map(|&c| f.from_f64(c as f64 / wn)).collect::<anyhow::Result<_>>()?;
        let cb = FpCodebooks::new(f, &ca, &cw, bits.nw)?;
        Ok(FpLinear { q, cb, an, wn })
    }

    /// `y = W x` for one token, every row through SPEC's float-mode dot product.
    pub fn forward(&self, x: &[f32]) -> anyhow::Result<Vec<f32>> {
        let (ys, norm) = self.dots(x)?;
        Ok(ys.iter().enumerate().map(|(r, &y)| (f32::from_bits(y) as f64 * self.q.w.scale[r] * self.wn * norm) as f32).collect())
    }

    /// The token in F (`x_F`), its indices and its outlier set, and the real value of one F
    /// unit of `x_F` (`unit_t · 2^(ac_bits−1)`).
    pub fn token(&self, x: &[f32]) -> anyhow::Result<(Vec<u64>, Vec<usize>, Vec<usize>, f64)> {
        let f = self.cb.f;
        let t = self.q.a.token(x); // the per-token scale (unit_t) of integer mode
        let norm = t.unit * self.an;
        let xf: Vec<u64> = x
            .iter()
            .enumerate()
            .map(|(j, &v)| f.from_f64(v as f64 / norm).map_err(|e| anyhow::anyhow!("activation {j} ({v}): {e}")))
            .collect::<anyhow::Result<_>>()?;
        let ia = self.cb.ia(&xf)?;
        let o = outlier_set_fp(f, &xf, self.q.a.k);
        Ok((xf, ia, o, norm))
    }

    /// Every row's `Y` (a binary32 pattern) for one token, and the token's unit.
    pub fn dots(&self, x: &[f32]) -> anyhow::Result<(Vec<u32>, f64)> {
        let (xf, ia, o, norm) = self.token(x)?;
        let out = (0..self.q.w.rows)
            .map(|r| self.cb.row(&xf, &ia, &o, self.q.w.row_idx(r)).map_err(|e| anyhow::anyhow!("row {r}: {e}")))
            .collect::<anyhow::Result<_>>()?;
        Ok((out, norm))
    }
}

/// The float rows of `eval`: K-Means W/A codebooks in F, without and with `outlier_fraction`
/// outliers per side, on `eval` tokens (codebooks calibrated on `calib`), scored against f32.
pub fn evaluate_fp(
    layer: &Layer,
    calib: &[Vec<f32>],
    eval: &[Vec<f32>],
    q: QBits,
    f: FloatFormat,
    outlier_fraction: f64,
    seed: u64,
) -> Result<Vec<EvalRow>, String> {
    let (_, calib_inputs) = layer.forward_f32(calib);
    let (reference, _) = layer.forward_f32(eval);
    // The exact sums are i128 (gemv::FpCodebooks): F's fixed point plus the bits of the longest sum must fit.
    let longest = layer.w.iter().map(|m| m.cols).max().unwrap_or(0) as u64;
    let need = f.acc_width(2 * longest, 0);
    if need > 127 {
        return Err(format!(
            "float eval in {}: exact sums of up to {} terms need {need} bits; the reference's accumulator has 127 (fp16 and fp8 fit)",
            f.name(),
            2 * longest
        ));
    }
    let w = quantize_weights(layer, Codebook::KMeans, q, seed)?;
    let mut rows = vec![];
    for frac in [0.0, outlier_fraction] {
        let s = Scheme { codebook: Codebook::KMeans, outlier_fraction: frac, q };
        let ql = QuantLayer::with_weights(layer, w.clone(), &calib_inputs, &s, seed)?;
        let lin: Vec<FpLinear> = Proj::ALL
            .iter()
            .zip(&ql.lin)
            .map(|(p, l)| FpLinear::new(l, f, q).map_err(|e| format!("{}: {e}", p.name())))
            .collect::<Result<_, String>>()?;
        let fail: Mutex<Option<String>> = Mutex::new(None);
        let y = layer.forward(eval, &mut |p, x| match lin[p as usize].forward(x) {
            Ok(v) => v,
            Err(e) => {
                fail.lock().unwrap().get_or_insert(format!("{}: {e}", p.name()));
                vec![0.0; layer.w[p as usize].rows]
            }
        });
        if let Some(e) = fail.into_inner().unwrap() {
            return Err(format!("float eval ({}): {e}", f.name()));
        }
        let name = format!("{} in {}", layer::scheme_name(&s), f.name());
        rows.push(EvalRow { name, scheme: None, err: error(eval, &reference, &y), stats: vec![] });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pe_fp;
    use crate::reference::pair_index;
    use crate::reference::layer::{evaluate, synthetic_tokens, SYNTH_D, SYNTH_OUTLIER_CHANNELS, SYNTH_TOKENS};

    /// The fast path (i128 sums of precomputed fixed-point entries) gives, for every row of the
    /// Q projection and two tokens, exactly `FloatFormat::dot` over the F table and the F
    /// compensation terms (arbitrary precision), with and without outliers.
    #[test]
    fn float_projection_equals_the_reference_dot_product() {
        let q = QBits { nw: 4, na: 4, wc_bits: 8, ac_bits: 8, x_bits: 16 };
        let f = FloatFormat::FP16;
        let layer = Layer::default_synthetic(1);
        let calib = synthetic_tokens(2, SYNTH_D, SYNTH_TOKENS, SYNTH_OUTLIER_CHANNELS);
        let eval = synthetic_tokens(3, SYNTH_D, 2, SYNTH_OUTLIER_CHANNELS);
        let (_, calib_inputs) = layer.forward_f32(&calib);
        let (_, eval_inputs) = layer.forward_f32(&eval);
        let w = quantize_weights(&layer, Codebook::KMeans, q, 1).unwrap();
        let mut with_outliers = 0;
        for frac in [0.0, 0.005] {
            let s = Scheme { codebook: Codebook::KMeans, outlier_fraction: frac, q };
            let ql = QuantLayer::with_weights(&layer, w.clone(), &calib_inputs, &s, 1).unwrap();
            let lin = FpLinear::new(&ql.lin[Proj::Q as usize], f, q).unwrap();
            let (ca, cw) = (&lin.cb.ca, &lin.cb.cw);
            let table = pe_fp::lut(f, ca, cw, q.nw).unwrap();
            for x in &eval_inputs[Proj::Q as usize] {
                let (xf, ia, o, _) = lin.token(x).unwrap();
                with_outliers += o.len();
                let (ys, _) = lin.dots(x).unwrap();
                for (r, &y) in ys.iter().enumerate() {
                    let iw = lin.q.w.row_idx(r);
                    let p: Vec<usize> = (0..xf.len()).map(|j| pair_index(ia[j] as u32, iw[j], q.nw)).collect();
                    let t: Vec<u64> = o.iter().map(|&j| f.comp_term(xf[j], ca[ia[j]], cw[iw[j] as usize]).unwrap()).collect();
                    assert_eq!(y, f.dot(&table, &p, &t).unwrap(), "row {r} frac {frac}");
                }
            }
        }
        assert!(with_outliers >= 4, "the outlier case had no outliers");
    }

    /// Issue 12's acceptance on the default synthetic layer (seed 1, W4A4, 0.5 % + 0.5 %):
    /// K-Means in fp16 with outliers is closer to f32 than uniform INT4 with outliers.
    #[test]
    fn fp16_kmeans_with_outliers_beats_uniform_int_with_outliers() {
        let q = QBits { nw: 4, na: 4, wc_bits: 8, ac_bits: 8, x_bits: 16 };
        let layer = Layer::default_synthetic(1);
        let calib = synthetic_tokens(2, SYNTH_D, SYNTH_TOKENS, SYNTH_OUTLIER_CHANNELS);
        let eval = synthetic_tokens(3, SYNTH_D, SYNTH_TOKENS, SYNTH_OUTLIER_CHANNELS);
        let mut rows = evaluate(&layer, &calib, &eval, q, 0.005, 1).unwrap();
        rows.extend(evaluate_fp(&layer, &calib, &eval, q, FloatFormat::FP16, 0.005, 1).unwrap());
        let table = layer::format_table(&rows);
        eprintln!("{table}");
        let err = |name: &str| rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name}\n{table}")).err;
        let kf = err("K-Means W4A4 + 0.5%+0.5% outliers in fp16");
        let u = err("uniform INT W4A4 + 0.5%+0.5% outliers");
        assert!(kf.rel_l2 < u.rel_l2 && kf.rel_l2_delta < u.rel_l2_delta, "{table}");
        assert!(kf.rel_l2 < err("K-Means W4A4 in fp16").rel_l2, "outliers must help in fp16 too:\n{table}");
    }
}
