//! The work behind `kllm-gen quantize`, `eval` and `bench-kmeans`; `cli` only parses arguments.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use super::kmeans::{self, Histogram};
use super::layer::{self, Layer, QBits, SYNTH_OUTLIER_CHANNELS, SYNTH_TOKENS};
use super::quant::{self, Fit};
use super::tensors::Weights;
use crate::config::{in_range, QuantConfig};
use crate::rng::Rng;

/// Validates bits the way `[quant]` in a config is validated (one line naming the key).
pub fn check_quant(q: &QuantConfig) -> Result<()> {
    q.validate().map_err(anyhow::Error::msg)?;
    if q.nw > q.wc_bits {
        bail!("`quant.nw` = {} needs 2^{} distinct weight centroids, which do not fit in wc_bits = {}", q.nw, q.nw, q.wc_bits);
    }
    Ok(())
}

/// Per tensor: MSE and SQNR of uniform INT (per-channel RTN) and K-Means (Lloyd and the exact
/// optimum), each with SPEC's integer centroids. Without `tensor`, every float tensor of rank
/// >= 2 in the file; 1-D tensors (norm gains, biases) are not MatMul weights and are skipped.
pub fn quantize(path: &Path, tensor: Option<&str>, nw: u32, wc_bits: u32, seed: u64) -> Result<String> {
    in_range("--nw", nw, 1, 8).map_err(anyhow::Error::msg)?;
    in_range("--wc-bits", wc_bits, nw.max(2), 16).map_err(anyhow::Error::msg)?;
    let w = Weights::open(path)?;
    let names: Vec<String> = match tensor {
        Some(t) => vec![t.to_string()],
        None => w.names().into_iter().filter(|n| w.is_float(n)).collect(),
    };
    let mut rows = vec![];
    for n in &names {
        let t = w.tensor(n)?;
        if tensor.is_none() && t.shape.len() < 2 {
            continue;
        }
        let (r, c) = t.matrix_dims();
        let u = quant::uniform_weights(&t.data, r, c, nw, wc_bits).map_err(|e| anyhow!("{n}: {e}"))?;
        let l = quant::kmeans_weights(&t.data, r, c, nw, wc_bits, Fit::Lloyd { seed }).map_err(|e| anyhow!("{n}: {e}"))?;
        let o = quant::kmeans_weights(&t.data, r, c, nw, wc_bits, Fit::Optimal).map_err(|e| anyhow!("{n}: {e}"))?;
        let m = |q: &quant::WeightQuant| quant::mse_sqnr(&t.data, &q.dequant());
        let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        rows.push((n.clone(), shape.join("x"), m(&u), m(&l), m(&o)));
    }
    if rows.is_empty() {
        bail!("{} has no float tensor of rank >= 2 to quantize", path.display());
    }
    let nwid = rows.iter().map(|r| r.0.len()).max().unwrap_or(6).max(6);
    let swid = rows.iter().map(|r| r.1.len()).max().unwrap_or(5).max(5);
    let mut s = format!(
        "W{nw} (centroids {wc_bits}-bit), one codebook per matrix, per-output-channel scale\n{:<nwid$}  {:<swid$}  {:>11} {:>8}  {:>11} {:>8}  {:>11} {:>8}\n",
        "tensor", "shape", "INT MSE", "SQNR dB", "KM MSE", "SQNR dB", "KM-opt MSE", "SQNR dB"
    );
    for (n, sh, u, l, o) in rows {
        s += &format!(
            "{n:<nwid$}  {sh:<swid$}  {:>11.4e} {:>8.2}  {:>11.4e} {:>8.2}  {:>11.4e} {:>8.2}\n",
            u.0, u.1, l.0, l.1, o.0, o.1
        );
    }
    Ok(s)
}

/// `kllm-gen eval`: the decoder layer's output error for every variant, as a table.
pub fn eval(q: &QuantConfig, seed: u64, weights: Option<(&Path, usize, usize)>, tokens: usize, outlier_pct: f64) -> Result<String> {
    check_quant(q)?;
    in_range("--tokens", tokens, 1, 4096).map_err(anyhow::Error::msg)?;
    if !(0.0..=50.0).contains(&outlier_pct) {
        bail!("`--outliers` = {outlier_pct} is out of range (allowed 0..=50 percent per side)");
    }
    let (layer, what) = match weights {
        Some((p, l, hd)) => (Layer::from_safetensors(p, l, hd)?, format!("layer {l} of {}", p.display())),
        None => (Layer::default_synthetic(seed), format!("synthetic layer (seed {seed})")),
    };
    let d = layer.d();
    let calib = layer::synthetic_tokens(seed.wrapping_add(1), d, tokens, SYNTH_OUTLIER_CHANNELS);
    let toks = layer::synthetic_tokens(seed.wrapping_add(2), d, tokens, SYNTH_OUTLIER_CHANNELS);
    let rows = layer::evaluate(&layer, &calib, &toks, QBits::from(q), outlier_pct / 100.0, seed).map_err(anyhow::Error::msg)?;
    Ok(format!(
        "{what}: d={d}, ffn={}, {tokens} tokens ({} calibration tokens), {SYNTH_OUTLIER_CHANNELS} outlier channels; \
         centroids wc={} ac={} bits, x={} bits\n{}",
        layer.w[layer::Proj::Gate as usize].rows,
        tokens,
        q.wc_bits,
        q.ac_bits,
        q.x_bits,
        layer::format_table(&rows)
    ))
}

/// Default token count of `eval`.
pub const EVAL_TOKENS: usize = SYNTH_TOKENS;

/// `kllm-gen bench-kmeans`: times the histogram, Lloyd and the exact solver on `n` seeded
/// Gaussian weights, as f32 and rounded to bf16 (how checkpoints store them).
pub fn bench_kmeans(n: usize, k: usize, seed: u64) -> Result<String> {
    in_range("--n", n, 1, 200_000_000).map_err(anyhow::Error::msg)?;
    in_range("--k", k, 1, 256).map_err(anyhow::Error::msg)?;
    let mut rng = Rng::new(seed);
    let f32s: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    let bf16s: Vec<f32> = f32s.iter().map(|&v| half::bf16::from_f32(v).to_f32()).collect();
    let mut s = format!("{n} Gaussian weights, k = {k}, seed {seed}\n");
    s += &format!("{:<6} {:>10} {:>10} {:>10} {:>14} {:>10} {:>14}\n", "values", "distinct", "hist s", "Lloyd s", "Lloyd SSE", "optimal s", "optimal SSE");
    for (label, v) in [("f32", &f32s), ("bf16", &bf16s)] {
        let t = Instant::now();
        let h = Histogram::new(v, None).map_err(anyhow::Error::msg)?;
        let th = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let l = kmeans::lloyd(&h, k, seed);
        let tl = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let o = kmeans::optimal(&h, k);
        let to = t.elapsed().as_secs_f64();
        s += &format!(
            "{label:<6} {:>10} {th:>10.3} {tl:>10.3} {:>14.6e} {to:>10.3} {:>14.6e}\n",
            h.len(),
            h.sse(&l),
            h.sse(&o)
        );
    }
    s += "(Lloyd s and optimal s exclude the histogram; a full quantization costs hist + one solver)\n";
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::tensors::{write, Tensor};

    #[test]
    fn quantize_reports_every_matrix_and_kmeans_wins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        let mut rng = Rng::new(4);
        let t = |name: &str, shape: Vec<usize>, rng: &mut Rng| {
            let n = shape.iter().product();
            Tensor { name: name.into(), shape, data: (0..n).map(|_| rng.normal() as f32).collect() }
        };
        let ts = vec![t("a.weight", vec![16, 64], &mut rng), t("b.weight", vec![8, 32], &mut rng), t("norm", vec![64], &mut rng)];
        write(&p, &ts, safetensors::Dtype::BF16).unwrap();
        let out = quantize(&p, None, 4, 8, 1).unwrap();
        assert!(out.contains("a.weight") && out.contains("b.weight") && !out.contains("norm "), "{out}");
        let line = out.lines().find(|l| l.starts_with("a.weight")).unwrap();
        let f: Vec<f64> = line.split_whitespace().skip(2).map(|x| x.parse().unwrap()).collect();
        // SQNR: uniform < K-Means Lloyd <= K-Means optimal (up to integer rounding of centroids).
        assert!(f[1] < f[3] && f[3] <= f[5] + 0.05, "{line}");
        let e = quantize(&p, Some("c.weight"), 4, 8, 1).unwrap_err().to_string();
        assert!(e.starts_with("tensor 'c.weight' not found in"), "{e}");
        let e = quantize(&p, None, 9, 8, 1).unwrap_err().to_string();
        assert_eq!(e, "`--nw` = 9 is out of range (allowed 1..=8)");
    }

    #[test]
    fn eval_rejects_bad_bits_in_one_line() {
        let q = QuantConfig { na: 0, ..QuantConfig::default() };
        assert_eq!(eval(&q, 1, None, 4, 0.5).unwrap_err().to_string(), "`quant.na` = 0 is out of range (allowed 1..=8)");
        let q = QuantConfig { nw: 6, wc_bits: 5, ..QuantConfig::default() };
        assert!(eval(&q, 1, None, 4, 0.5).unwrap_err().to_string().contains("do not fit in wc_bits = 5"));
    }
}
