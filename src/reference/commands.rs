//! The work behind `kllm-gen quantize`, `eval` and `bench-kmeans`; `cli` only parses arguments.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use super::checkpoint::{self, Checkpoint};
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

/// Which K-Means solvers `quantize` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Solver {
    /// k-means++ + Lloyd on the fine histogram, centroids rounded to the integer grid.
    Lloyd,
    /// The exact optimum over integer codebooks.
    Exact,
    /// Both, with a column of the exact solver's SQNR gain over Lloyd.
    Both,
}

/// One matrix of `quantize`.
struct QRow {
    name: String,
    shape: String,
    uniform: quant::Sse,
    lloyd: Option<quant::Sse>,
    exact: Option<quant::Sse>,
}

/// Per matrix: MSE and SQNR of uniform INT (per-channel RTN) and K-Means (Lloyd and/or the exact
/// optimum), each with SPEC's integer centroids, measured in the original units. Without
/// `tensor`, every float tensor of rank >= 2 in the file (1-D tensors, norm gains and biases,
/// are not MatMul weights). Tensors are processed one at a time from the memory map, each on
/// every core, with a progress bar on stderr when it is a terminal.
pub fn quantize(path: &Path, tensor: Option<&str>, nw: u32, wc_bits: u32, seed: u64, solver: Solver) -> Result<String> {
    in_range("--nw", nw, 1, 8).map_err(anyhow::Error::msg)?;
    in_range("--wc-bits", wc_bits, nw.max(2), 16).map_err(anyhow::Error::msg)?;
    let w = Weights::open(path)?;
    let names: Vec<String> = match tensor {
        Some(t) => vec![t.to_string()],
        None => w.names().into_iter().filter(|n| w.is_float(n) && w.shape(n).is_some_and(|s| s.len() >= 2)).collect(),
    };
    if names.is_empty() {
        bail!("{} has no float tensor of rank >= 2 to quantize", path.display());
    }
    let total: u64 = names.iter().filter_map(|n| w.shape(n)).map(|s| s.iter().product::<usize>() as u64).sum();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {human_pos}/{human_len} weights, {elapsed} ({eta} left) {msg}")
            .expect("valid template"),
    );
    let (mut t_hist, mut t_lloyd, mut t_exact, mut t_err) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut rows = vec![];
    let (run_l, run_e) = (solver != Solver::Exact, solver != Solver::Lloyd);
    for n in &names {
        bar.set_message(n.clone());
        let m = w.rows(n)?;
        let s = quant::row_max(&m).map_err(|e| anyhow!("tensor '{n}' in {}: {e}", path.display()))?;
        let t = Instant::now();
        let h = quant::weight_hist(&m, &s, wc_bits);
        t_hist += t.elapsed().as_secs_f64();
        let mut books = vec![];
        if run_l {
            let t = Instant::now();
            books.push(quant::fit_int(&h, 1 << nw, Fit::Lloyd { seed }));
            t_lloyd += t.elapsed().as_secs_f64();
        }
        if run_e {
            let t = Instant::now();
            books.push(quant::fit_int(&h, 1 << nw, Fit::Optimal));
            t_exact += t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        let (u, k) = quant::weight_errors(&m, &s, nw, wc_bits, &books);
        t_err += t.elapsed().as_secs_f64();
        let mut k = k.into_iter();
        let shape: Vec<String> = m.shape.iter().map(|d| d.to_string()).collect();
        rows.push(QRow {
            name: n.clone(),
            shape: shape.join("x"),
            uniform: u,
            lloyd: if run_l { k.next() } else { None },
            exact: if run_e { k.next() } else { None },
        });
        bar.inc(m.shape.iter().product::<usize>() as u64);
        w.release(n);
    }
    bar.finish_and_clear();
    let nwid = rows.iter().map(|r| r.name.len()).max().unwrap_or(6).max(6);
    let swid = rows.iter().map(|r| r.shape.len()).max().unwrap_or(5).max(5);
    let mut s = format!(
        "W{nw} (centroids {wc_bits}-bit), one codebook per matrix, per-output-channel scale; error in the original units\n\
         {:<nwid$}  {:<swid$}  {:>11} {:>8}",
        "tensor", "shape", "INT MSE", "SQNR dB"
    );
    if run_l {
        s += &format!("  {:>11} {:>8}", "KM MSE", "SQNR dB");
    }
    if run_e {
        s += &format!("  {:>11} {:>8}", "KM-opt MSE", "SQNR dB");
    }
    if run_l && run_e {
        s += &format!("  {:>13}", "opt-Lloyd dB");
    }
    s += "\n";
    for r in &rows {
        s += &format!("{:<nwid$}  {:<swid$}  {:>11.4e} {:>8.2}", r.name, r.shape, r.uniform.mse(), r.uniform.sqnr_db());
        for e in [r.lloyd, r.exact].into_iter().flatten() {
            s += &format!("  {:>11.4e} {:>8.2}", e.mse(), e.sqnr_db());
        }
        if let (Some(l), Some(e)) = (r.lloyd, r.exact) {
            s += &format!("  {:>13.4}", e.sqnr_db() - l.sqnr_db());
        }
        s += "\n";
    }
    let rate = |t: f64| if t > 0.0 { format!("{:.3e} weights/s", total as f64 / t) } else { "-".into() };
    s += &format!(
        "{total} weights in {} matrices: histograms {t_hist:.3} s, error pass {t_err:.3} s{}{}\n",
        rows.len(),
        if run_l { format!(", Lloyd {t_lloyd:.3} s (histogram + Lloyd: {})", rate(t_hist + t_lloyd)) } else { String::new() },
        if run_e { format!(", exact {t_exact:.3} s (histogram + exact: {})", rate(t_hist + t_exact)) } else { String::new() },
    );
    Ok(s)
}

/// `kllm-gen eval`: the decoder layer's output error for every variant, as a table. With a
/// checkpoint: every decoder layer (or `layer`), on seeded tokens through the checkpoint's own
/// embedding, as a per-layer Markdown table; `csv` also gets every figure as CSV.
pub fn eval(
    q: &QuantConfig,
    seed: u64,
    weights: Option<(&Path, Option<usize>, usize)>,
    tokens: usize,
    outlier_pct: f64,
    csv: Option<&Path>,
) -> Result<String> {
    check_quant(q)?;
    in_range("--tokens", tokens, 1, 4096).map_err(anyhow::Error::msg)?;
    if !(0.0..=50.0).contains(&outlier_pct) {
        bail!("`--outliers` = {outlier_pct} is out of range (allowed 0..=50 percent per side)");
    }
    if let Some((p, only, hd)) = weights {
        in_range("--head-dim", hd, 1, 1 << 16).map_err(anyhow::Error::msg)?;
        let ck = Checkpoint::open(p, hd)?;
        if let Some(l) = only {
            ck.layer(l)?; // the range check first, before any work
        }
        let layers = checkpoint::evaluate(&ck, only, tokens, QBits::from(q), outlier_pct / 100.0, seed)?;
        let (md, table) = checkpoint::report(&layers);
        if let Some(c) = csv {
            write_atomic(c, &table)?;
        }
        return Ok(format!(
            "{}: {} of {} decoder layers, head_dim {hd}; {tokens} evaluation + {tokens} calibration tokens (seeds {seed}, {}) \
             through the checkpoint's embedding; centroids wc={} ac={} bits, x={} bits; outliers {outlier_pct}%+{outlier_pct}%\n\
             Relative L2 and cosine of each layer's contribution (out - x) against f32:\n\n{md}",
            p.display(),
            layers.len(),
            ck.layers,
            seed.wrapping_add(1),
            q.wc_bits,
            q.ac_bits,
            q.x_bits,
        ));
    }
    if csv.is_some() {
        bail!("`--csv` needs --weights (the per-layer table of a checkpoint)");
    }
    let layer = Layer::default_synthetic(seed);
    let what = format!("synthetic layer (seed {seed})");
    let d = layer.d();
    let calib = layer::synthetic_tokens(seed.wrapping_add(1), d, tokens, SYNTH_OUTLIER_CHANNELS);
    let toks = layer::synthetic_tokens(seed.wrapping_add(2), d, tokens, SYNTH_OUTLIER_CHANNELS);
    let mut rows = layer::evaluate(&layer, &calib, &toks, QBits::from(q), outlier_pct / 100.0, seed).map_err(anyhow::Error::msg)?;
    // Float mode: the K-Means rows again, every projection in SPEC's float arithmetic.
    if let Some(f) = q.float() {
        let fp = super::layer_fp::evaluate_fp(&layer, &calib, &toks, QBits::from(q), f, outlier_pct / 100.0, seed);
        rows.extend(fp.map_err(anyhow::Error::msg)?);
    }
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

/// The file `eval --rtl-results DIR` reads in DIR (what the layer regression's bench dumps).
pub const RTL_DUMP: &str = "rtl_tile_layer.txt";

/// How a bench dump carries the tile's results: the field, its lane width and the field
/// marking which lanes hold a result.
pub struct DumpFormat<'a> {
    pub field: &'a str,
    pub bits: u32,
    pub mask: Option<&'a str>,
}

/// `kllm-gen eval --rtl-results PATH`: the layer that `golden --from-layer` fed to the tile
/// (same seed, tokens, outliers and layer source), rebuilt from the RTL's integer results in
/// PATH (a bench dump, or a folder holding [`RTL_DUMP`]), scored like `eval`: `eval`'s table
/// with an "(RTL results)" row after the reference's K-Means + outliers row, how many integer
/// results differ from the reference, and whether the two rows are equal.
pub fn eval_rtl(
    q: &QuantConfig,
    fmt: &DumpFormat,
    seed: u64,
    weights: Option<(&Path, usize, usize)>,
    tokens: usize,
    outlier_pct: f64,
    rtl: &Path,
) -> Result<String> {
    use super::layer_gemv::{self, LayerProblem, LayerSource};
    check_quant(q)?;
    in_range("--tokens", tokens, 1, 4096).map_err(anyhow::Error::msg)?;
    if !(0.0..=50.0).contains(&outlier_pct) {
        bail!("`--outliers` = {outlier_pct} is out of range (allowed 0..=50 percent per side)");
    }
    let file = if rtl.is_dir() { rtl.join(RTL_DUMP) } else { rtl.to_path_buf() };
    let flat = layer_gemv::read_dump(&file, fmt.field, fmt.bits, fmt.mask)?;
    let (src, what) = match weights {
        Some((path, layer, head_dim)) => (LayerSource::Checkpoint { path, layer, head_dim }, format!("{} layer {layer}", path.display())),
        None => (LayerSource::Synthetic, format!("synthetic layer (seed {seed})")),
    };
    let lp = LayerProblem::new(QBits::from(q), seed, tokens, outlier_pct / 100.0, src)?;
    let r = layer_gemv::eval_rtl(&lp, &flat, seed).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let name = layer::scheme_name(&lp.scheme);
    Ok(format!(
        "{what}: {tokens} tokens; RTL results {}: {} of {} integer results differ from the reference\n{}\
         {name}: the row from RTL results {} the reference row\n",
        file.display(),
        r.mismatches,
        r.results,
        layer::format_table(&r.rows),
        if r.same_as_reference { "equals" } else { "DIFFERS from" },
    ))
}

/// Writes `text` to `path` through a temporary sibling, so a failed run leaves no half file.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, text).map_err(|e| anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}

/// Default token count of `eval`.
pub const EVAL_TOKENS: usize = SYNTH_TOKENS;

/// `kllm-gen bench-kmeans`: times the steps of one matrix's quantization (`quantize`'s path) on
/// `n` seeded Gaussian weights, rounded to bf16 as checkpoints store them, in rows of 4096 whose
/// scales spread over two decades (as real rows do), on every core.
pub fn bench_kmeans(n: usize, k: usize, seed: u64) -> Result<String> {
    in_range("--n", n, 1, 200_000_000).map_err(anyhow::Error::msg)?;
    in_range("--k", k, 2, 256).map_err(anyhow::Error::msg)?;
    let cols = n.min(4096);
    let rows = n / cols;
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let scale = 10f64.powf(-2.0 + 2.0 * rng.unit());
        data.extend((0..cols).map(|_| half::bf16::from_f64(rng.normal() * scale).to_f32()));
    }
    let m = quant::Dense { data: &data, rows, cols };
    let bits = 8;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let mut s = Vec::new();
    let t_max = time(&mut || s = quant::row_max(&m).unwrap());
    let mut h = None;
    let t_hist = time(&mut || h = Some(quant::weight_hist(&m, &s, bits)));
    let h = h.unwrap();
    let (mut l, mut o) = (vec![], vec![]);
    let t_l = time(&mut || l = quant::fit_int(&h, k, Fit::Lloyd { seed }));
    let t_o = time(&mut || o = quant::fit_int(&h, k, Fit::Optimal));
    let mut errs = vec![];
    let t_err = time(&mut || errs = quant::weight_errors(&m, &s, 4, bits, &[l.clone(), o.clone()]).1);
    let n = (rows * cols) as f64;
    let mut out = format!(
        "{rows}x{cols} bf16 Gaussian weights (row scales over two decades), k = {k}, 8-bit centroids, seed {seed}, {} threads\n",
        rayon::current_num_threads()
    );
    out += &format!("row max {t_max:.3} s, histogram {t_hist:.3} s ({} fine bins, {} grid bins), error pass (2 codebooks) {t_err:.3} s\n", h.fine().len(), h.grid().len());
    for (name, t, e) in [("Lloyd", t_l, errs[0]), ("exact", t_o, errs[1])] {
        let total = t_max + t_hist + t;
        out += &format!(
            "{name:<6} solve {t:.4} s; row max + histogram + solve {total:.3} s = {:.3e} weights/s; SQNR {:.4} dB\n",
            n / total,
            e.sqnr_db()
        );
    }
    Ok(out)
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
        let out = quantize(&p, None, 4, 8, 1, Solver::Both).unwrap();
        assert!(out.contains("a.weight") && out.contains("b.weight") && !out.contains("norm "), "{out}");
        let line = out.lines().find(|l| l.starts_with("a.weight")).unwrap();
        let f: Vec<f64> = line.split_whitespace().skip(2).map(|x| x.parse().unwrap()).collect();
        // SQNR: uniform < K-Means Lloyd <= K-Means exact, and the last column is their difference.
        assert!(f[1] < f[3] && f[3] <= f[5], "{line}");
        assert!((f[6] - (f[5] - f[3])).abs() <= 0.0101 && f[6] >= 0.0, "{line}"); // SQNRs print to 0.01 dB
        // One solver: one K-Means column pair, the same figures.
        let only = quantize(&p, Some("a.weight"), 4, 8, 1, Solver::Exact).unwrap();
        let g: Vec<f64> = only.lines().nth(2).unwrap().split_whitespace().skip(2).map(|x| x.parse().unwrap()).collect();
        assert_eq!(g, f[..2].iter().chain(&f[4..6]).copied().collect::<Vec<_>>(), "{only}");
        let e = quantize(&p, Some("c.weight"), 4, 8, 1, Solver::Both).unwrap_err().to_string();
        assert!(e.starts_with("tensor 'c.weight' not found in"), "{e}");
        let e = quantize(&p, Some("norm"), 4, 8, 1, Solver::Both).unwrap_err().to_string();
        assert!(e.starts_with("tensor 'norm' in") && e.ends_with("has shape [64], expected a matrix (rank >= 2)"), "{e}");
        let nan = dir.path().join("nan.safetensors");
        let mut bad = ts[1].clone();
        bad.data[37] = f32::NAN;
        write(&nan, &[bad], safetensors::Dtype::F32).unwrap();
        let e = quantize(&nan, None, 4, 8, 1, Solver::Lloyd).unwrap_err().to_string();
        assert!(e.starts_with("tensor 'b.weight' in") && e.ends_with("nan.safetensors: row 1, column 5 is not finite (NaN)"), "{e}");
        let e = quantize(&p, None, 9, 8, 1, Solver::Both).unwrap_err().to_string();
        assert_eq!(e, "`--nw` = 9 is out of range (allowed 1..=8)");
    }

    #[test]
    fn eval_rejects_bad_bits_in_one_line() {
        let q = QuantConfig { na: 0, ..QuantConfig::default() };
        assert_eq!(eval(&q, 1, None, 4, 0.5, None).unwrap_err().to_string(), "`quant.na` = 0 is out of range (allowed 1..=8)");
        let q = QuantConfig { nw: 6, wc_bits: 5, ..QuantConfig::default() };
        assert!(eval(&q, 1, None, 4, 0.5, None).unwrap_err().to_string().contains("do not fit in wc_bits = 5"));
    }
}
