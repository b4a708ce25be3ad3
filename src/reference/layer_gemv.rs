//! The quantized decoder layer as the tile sees it: every MatMul (q, k, v, o, gate, up, down) on
//! every token is one GEMV of SPEC's tile contract ([`Gemv`]), and the layer's output can be
//! rebuilt from the integer results of those GEMVs, wherever they were computed (the reference,
//! or the RTL through a bench dump).
//!
//! The GEMVs are listed in the order the layer calls its projections (q, k, v of every token,
//! then o of each token, then gate, up, down of each token), which is the order a tile would
//! run them in; [`LayerProblem::rebuild`] takes results in the same order.

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::gemv::Gemv;
use super::layer::{self, synthetic_tokens, Codebook, Layer, Proj, QBits, QuantLayer, Scheme, SYNTH_OUTLIER_CHANNELS};

/// Where a layer comes from: the default synthetic layer, or decoder layer `layer` of a
/// LLaMA-family or GPT-2 checkpoint (head size `head_dim`), fed with seeded tokens through the
/// checkpoint's embedding and the f32 layers before it.
#[derive(Clone, Copy, Debug)]
pub enum LayerSource<'a> {
    Synthetic,
    Checkpoint { path: &'a std::path::Path, layer: usize, head_dim: usize },
}

/// One MatMul of the quantized layer on one token, as a tile GEMV.
#[derive(Clone, Debug)]
pub struct LayerGemv {
    pub proj: Proj,
    /// Token position in the evaluated sequence.
    pub token: usize,
    pub gemv: Gemv,
}

/// A layer quantized K-Means W(nw)A(na) with look-ahead outliers, and the tokens it runs on:
/// exactly what `eval` builds for its "K-Means + outliers" row (same seeds, same calibration).
pub struct LayerProblem {
    pub layer: Layer,
    pub ql: QuantLayer,
    pub scheme: Scheme,
    /// Calibration tokens (the layer's f32 inputs) the activation codebooks were fitted on.
    pub calib: Vec<Vec<f32>>,
    /// Evaluated tokens (the layer's f32 inputs).
    pub tokens: Vec<Vec<f32>>,
}

impl LayerProblem {
    /// `tokens` evaluation tokens (and as many calibration tokens), seeded like `eval`:
    /// synthetic layer `seed`, calibration tokens `seed + 1`, evaluation tokens `seed + 2`; a
    /// checkpoint layer gets `Checkpoint::inputs_of`'s tokens, as `eval --weights` does.
    pub fn new(q: QBits, seed: u64, tokens: usize, outlier_fraction: f64, src: LayerSource) -> Result<Self> {
        let (layer, calib, toks) = match src {
            LayerSource::Synthetic => {
                let layer = Layer::default_synthetic(seed);
                let d = layer.d();
                let calib = synthetic_tokens(seed.wrapping_add(1), d, tokens, SYNTH_OUTLIER_CHANNELS);
                let toks = synthetic_tokens(seed.wrapping_add(2), d, tokens, SYNTH_OUTLIER_CHANNELS);
                (layer, calib, toks)
            }
            LayerSource::Checkpoint { path, layer, head_dim } => {
                let ck = super::checkpoint::Checkpoint::open(path, head_dim)?;
                ck.inputs_of(layer, tokens, seed, &mut |_, _, _, _| Ok(()))?
            }
        };
        let (_, calib_inputs) = layer.forward_f32(&calib);
        let scheme = Scheme { codebook: Codebook::KMeans, outlier_fraction, q };
        let ql = QuantLayer::new(&layer, &calib_inputs, &scheme, seed).map_err(anyhow::Error::msg)?;
        Ok(LayerProblem { layer, ql, scheme, calib, tokens: toks })
    }

    /// Every MatMul call of the quantized layer, in call order: the projection and its f32
    /// input. The inputs of o and down are what the quantized layer computes upstream, as in
    /// real inference.
    pub fn calls(&self) -> Vec<(Proj, Vec<f32>)> {
        let mut out = Vec::new();
        self.layer.forward(&self.tokens, &mut |p, x| {
            out.push((p, x.to_vec()));
            self.ql.lin[p as usize].forward(x, &mut Default::default())
        });
        out
    }

    /// Every MatMul of the quantized layer on every token as a tile GEMV, in call order: the
    /// activation codebook, the matrix's weight codebook and all its index rows, the token's
    /// integer vector, and `k` = the layer's outliers per side for that reduction length.
    pub fn gemvs(&self) -> Vec<LayerGemv> {
        let mut seen = [0usize; 7];
        self.calls()
            .into_iter()
            .map(|(p, x)| {
                let lin = &self.ql.lin[p as usize];
                let t = lin.a.token(&x);
                let rows = (0..lin.w.rows).map(|r| lin.w.row_idx(r).to_vec()).collect();
                let gemv = Gemv { ca: lin.a.ca.clone(), cw: lin.w.cw.clone(), x: t.x, rows, k: lin.a.k };
                seen[p as usize] += 1;
                LayerGemv { proj: p, token: seen[p as usize] - 1, gemv }
            })
            .collect()
    }

    /// The reference's quantized layer output (what `eval`'s "K-Means + outliers" row measures).
    pub fn quantized(&self) -> Vec<Vec<f32>> {
        self.ql.forward(&self.layer, &self.tokens).0
    }

    /// The layer output rebuilt from integer GEMV results, one vector per GEMV in
    /// [`gemvs`](Self::gemvs) order: each projection's output is `scale[r] · unit_t · Y_r`
    /// with the token's scale from the reference, and everything between the MatMuls
    /// (norms, attention, SiLU, residuals) is the reference's f32.
    pub fn rebuild(&self, results: &[Vec<i64>]) -> Result<Vec<Vec<f32>>> {
        let mut next = 0usize;
        let mut err: Option<String> = None;
        let out = self.layer.forward(&self.tokens, &mut |p, x| {
            let lin = &self.ql.lin[p as usize];
            let i = next;
            next += 1;
            match results.get(i) {
                Some(ys) if ys.len() == lin.w.rows && err.is_none() => {
                    let t = lin.a.token(x);
                    ys.iter().enumerate().map(|(r, &y)| lin.dequant(&t, r, y)).collect()
                }
                got => {
                    if err.is_none() {
                        err = Some(match got {
                            None => format!("GEMV {i} ({}) has no results", p.name()),
                            Some(ys) => format!("GEMV {i} ({}) has {} results, its matrix has {} rows", p.name(), ys.len(), lin.w.rows),
                        });
                    }
                    vec![0.0; lin.w.rows]
                }
            }
        });
        if let Some(e) = err {
            bail!("{e}");
        }
        if next != results.len() {
            bail!("{} GEMV results given, the layer has {next} GEMVs", results.len());
        }
        Ok(out)
    }

    /// The f32 reference output.
    pub fn reference(&self) -> Vec<Vec<f32>> {
        self.layer.forward_f32(&self.tokens).0
    }

    /// `eval`'s error of `y` against the f32 layer.
    pub fn error(&self, y: &[Vec<f32>]) -> layer::Error {
        layer::error(&self.tokens, &self.reference(), y)
    }
}

/// Cuts a flat stream of results (rows of every GEMV, in order) into one vector per GEMV.
pub fn split_results(flat: &[i64], gemvs: &[LayerGemv]) -> Result<Vec<Vec<i64>>> {
    let need: usize = gemvs.iter().map(|g| g.gemv.rows.len()).sum();
    if flat.len() != need {
        return Err(anyhow!("{} results, the layer's {} GEMVs have {need} rows", flat.len(), gemvs.len()));
    }
    let mut at = 0;
    Ok(gemvs
        .iter()
        .map(|g| {
            let n = g.gemv.rows.len();
            at += n;
            flat[at - n..at].to_vec()
        })
        .collect())
}

/// Reads the results of a bench dump (`+dump=FILE` of testbenches/kllm_tb.h): its
/// `fields out:` line names the fields, each `out` line is one output transfer. `field` holds
/// lanes of `bits` bits (lane 0 lowest); with `mask`, the lanes whose bit is set in that field
/// are results (the tile's `rows`), without it the field is one result. Values are sign-extended,
/// in order.
pub fn read_dump(path: &Path, field: &str, bits: u32, mask: Option<&str>) -> Result<Vec<i64>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("cannot read RTL results {}: {e}", path.display()))?;
    let mut cols: Option<(usize, Option<usize>)> = None;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let at = |what: &str| format!("{}: line {}: {what}", path.display(), n + 1);
        match f.first().copied() {
            Some("fields") if f.get(1) == Some(&"out:") => {
                let names = &f[2..];
                let col = |x: &str| names.iter().position(|&y| y == x);
                cols = match (col(field), mask.map(col)) {
                    (Some(v), None) => Some((v, None)),
                    (Some(v), Some(Some(m))) => Some((v, Some(m))),
                    _ => None,
                };
            }
            Some(c) if c == "out" || c.starts_with("out.") => {
                let Some((v, m)) = cols else {
                    bail!("{}", at(&format!("no `fields out:` line naming `{field}`{} before the first result", mask.map(|m| format!(" and `{m}`")).unwrap_or_default())));
                };
                let hex = |i: usize| -> Result<Vec<u64>> {
                    let h = f.get(1 + i).copied().unwrap_or("");
                    hex_words(h).ok_or_else(|| anyhow!("{}", at(&format!("`{h}` is not a hex value"))))
                };
                let words = hex(v)?;
                let lanes: Vec<usize> = match m {
                    None => vec![0],
                    Some(m) => {
                        let mw = hex(m)?;
                        (0..mw.len() * 64).filter(|&i| mw[i / 64] >> (i % 64) & 1 == 1).collect()
                    }
                };
                let width = words.len() * 64;
                for lane in lanes {
                    let lo = lane * bits as usize;
                    let mut u: u64 = 0;
                    for b in 0..bits as usize {
                        let i = lo + b;
                        if i < width && words[i / 64] >> (i % 64) & 1 == 1 {
                            u |= 1 << b;
                        }
                    }
                    out.push(((u << (64 - bits)) as i64) >> (64 - bits));
                }
                // A one-value field has nothing above `bits`.
                if m.is_none() && (bits as usize..width).any(|i| words[i / 64] >> (i % 64) & 1 == 1) {
                    bail!("{}", at(&format!("`{}` is wider than {bits} bits", f[1 + v])));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A hex string as 64-bit words, least significant first; `None` if it is empty or not hex.
fn hex_words(h: &str) -> Option<Vec<u64>> {
    if h.is_empty() {
        return None;
    }
    let digits: Vec<u64> = h.chars().rev().map(|c| c.to_digit(16).map(u64::from)).collect::<Option<_>>()?;
    Some(digits.chunks(16).map(|c| c.iter().enumerate().fold(0u64, |a, (i, &d)| a | d << (4 * i))).collect())
}

/// What `eval --rtl-results` reports: `eval`'s rows for the layer, with a row rebuilt from the
/// RTL's integer results placed after the reference's K-Means + outliers row.
pub struct RtlEval {
    pub rows: Vec<layer::EvalRow>,
    /// Integer results that differ from `Gemv::expected()`, and how many there are.
    pub mismatches: usize,
    pub results: usize,
    /// The rebuilt row's figures are the reference row's, exactly.
    pub same_as_reference: bool,
}

/// Rebuilds the layer from `flat` (every GEMV's results in [`LayerProblem::gemvs`] order, as
/// the tile streams them) and scores it next to `eval`'s variants.
pub fn eval_rtl(lp: &LayerProblem, flat: &[i64], seed: u64) -> Result<RtlEval> {
    let gemvs = lp.gemvs();
    let results = split_results(flat, &gemvs)?;
    let mismatches = gemvs.iter().zip(&results).map(|(g, r)| g.gemv.expected().iter().zip(r).filter(|(a, b)| a != b).count()).sum();
    let y = lp.rebuild(&results)?;
    let err = lp.error(&y);
    let mut rows = layer::evaluate(&lp.layer, &lp.calib, &lp.tokens, lp.scheme.q, lp.scheme.outlier_fraction, seed).map_err(anyhow::Error::msg)?;
    let at = rows.iter().position(|r| r.scheme == Some(lp.scheme)).ok_or_else(|| anyhow!("eval has no row for {}", layer::scheme_name(&lp.scheme)))?;
    let r = &rows[at].err;
    let same_as_reference = (r.rel_l2, r.rel_l2_delta, r.cos_delta) == (err.rel_l2, err.rel_l2_delta, err.cos_delta);
    let name = format!("{} (RTL results)", rows[at].name);
    rows.insert(at + 1, layer::EvalRow { name, scheme: None, err, stats: vec![] });
    Ok(RtlEval { rows, mismatches, results: flat.len(), same_as_reference })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::layer::SYNTH_TOKENS;
    use crate::reference::quant;

    const W4A4: QBits = QBits { nw: 4, na: 4, wc_bits: 8, ac_bits: 8, x_bits: 16 };

    /// The acceptance check of the outlier rule: on the whole default synthetic layer (every
    /// MatMul, all 16 tokens, seed 1), the layer's integer results (`QLinear::integers`, the path
    /// `eval` measures, outliers chosen by `ActQuant::token`) equal `Gemv::expected()` (the
    /// tile's reference) bit for bit, and the layer output rebuilt from them is the reference's
    /// quantized output bit for bit. Shown to fail with the f32 outlier rule (see the count).
    #[test]
    fn layer_integers_equal_the_tile_reference_on_every_matmul() {
        let lp = LayerProblem::new(W4A4, 1, SYNTH_TOKENS, 0.005, LayerSource::Synthetic).unwrap();
        let calls = lp.calls();
        let gemvs = lp.gemvs();
        // q, k, v, o, gate, up, down on each of the 16 tokens.
        assert_eq!(gemvs.len(), 7 * SYNTH_TOKENS);
        let (mut rows, mut bad, mut f32_rule_differs) = (0usize, 0usize, 0usize);
        let mut results = vec![];
        for ((p, x), g) in calls.iter().zip(&gemvs) {
            assert_eq!(*p, g.proj);
            let lin = &lp.ql.lin[*p as usize];
            assert_eq!(g.gemv.k, quant::outliers_per_side(lin.w.cols, 0.005));
            let ys = lin.integers(x);
            let exp = g.gemv.expected();
            rows += exp.len();
            bad += ys.iter().zip(&exp).filter(|(a, b)| a != b).count();
            // How often the old rule (outliers picked on the f32 token) picks another set.
            f32_rule_differs += (quant::outliers(x, g.gemv.k) != g.gemv.outliers()) as usize;
            results.push(ys);
        }
        eprintln!("{f32_rule_differs} of {} GEMVs have another outlier set under the f32 rule", gemvs.len());
        assert_eq!((rows, bad), (16 * (4 * 384 + 2 * 1024 + 384), 0), "integer results that differ from Gemv::expected()");
        assert_eq!(lp.rebuild(&results).unwrap(), lp.quantized());
    }

    /// Where f32 values round to the same integer, the integer rule (ties by position) decides.
    #[test]
    fn token_outliers_are_chosen_on_the_integers() {
        // k = 1: the f32 maximum is at 2, but 10.0 and 10.004 both become 127 (the scale is 10.0,
        // the largest magnitude outside the f32 outliers {0, 2}), so the first 127 (position 1)
        // is the outlier the tile compensates.
        let a = quant::ActQuant::uniform(4, 8, 16, 1).unwrap();
        let x = [-0.2f32, 10.0, 10.004, 0.3];
        assert_eq!(quant::outliers(&x, 1), vec![0, 2]);
        let t = a.token(&x);
        assert_eq!(t.x[1], t.x[2]);
        assert_eq!(t.outliers, vec![0, 1]);
    }

    #[test]
    fn rebuild_refuses_results_of_the_wrong_shape() {
        let lp = LayerProblem::new(W4A4, 1, 2, 0.005, LayerSource::Synthetic).unwrap();
        let mut r: Vec<Vec<i64>> = lp.gemvs().iter().map(|g| g.gemv.expected()).collect();
        assert_eq!(lp.rebuild(&r).unwrap(), lp.quantized());
        r[3].pop();
        assert_eq!(lp.rebuild(&r).unwrap_err().to_string(), "GEMV 3 (k_proj) has 383 results, its matrix has 384 rows");
        r.truncate(3);
        assert_eq!(lp.rebuild(&r).unwrap_err().to_string(), "GEMV 3 (k_proj) has no results");
        let flat: Vec<i64> = vec![0; 10];
        assert!(split_results(&flat, &lp.gemvs()).unwrap_err().to_string().starts_with("10 results, the layer's 14 GEMVs have"));
    }

    /// The acceptance check of `eval --rtl-results`: results that are the reference's give a
    /// row equal to the reference's K-Means + outliers row, figure for figure; one result off by
    /// one gives another row and one counted mismatch.
    #[test]
    fn rtl_row_equals_the_reference_row_and_a_wrong_result_shows() {
        let dir = tempfile::tempdir().unwrap();
        let lp = LayerProblem::new(W4A4, 1, 4, 0.005, LayerSource::Synthetic).unwrap();
        let flat: Vec<i64> = lp.gemvs().iter().flat_map(|g| g.gemv.expected()).collect();
        // A dump as the bench writes it: unpadded hex, two's complement at 28 bits.
        let write = |v: &[i64]| {
            let p = dir.path().join("rtl.txt");
            let mut t = "# kllm-gen rtl dump block=tile\nfields out: y\n".to_string();
            for &y in v {
                t += &format!("out {:x}\n", (y as u64) & ((1 << 28) - 1));
            }
            std::fs::write(&p, t).unwrap();
            read_dump(&p, "y", 28, None).unwrap()
        };
        assert_eq!(write(&flat), flat);
        let r = eval_rtl(&lp, &write(&flat), 1).unwrap();
        assert!(r.same_as_reference && r.mismatches == 0 && r.results == flat.len());
        let table = layer::format_table(&r.rows);
        let at = r.rows.iter().position(|x| x.name.ends_with("(RTL results)")).unwrap();
        assert_eq!(r.rows[at - 1].name, "K-Means W4A4 + 0.5%+0.5% outliers", "{table}");
        let line = |i: usize| table.lines().nth(i + 1).unwrap().split_whitespace().rev().take(3).collect::<Vec<_>>();
        assert_eq!(line(at), line(at - 1), "{table}");
        let mut bad = flat.clone();
        bad[5000] += 1;
        let r = eval_rtl(&lp, &write(&bad), 1).unwrap();
        assert!(!r.same_as_reference && r.mismatches == 1);
    }

    #[test]
    fn bad_dumps_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.txt");
        let e = |t: &str| {
            std::fs::write(&p, t).unwrap();
            read_dump(&p, "y", 8, None).unwrap_err().to_string().replace(&p.display().to_string(), "F")
        };
        assert_eq!(e("out 1\n"), "F: line 1: no `fields out:` line naming `y` before the first result");
        assert_eq!(e("fields out: y\nout 1ff\n"), "F: line 2: `1ff` is wider than 8 bits");
        assert_eq!(e("fields out: y\nout\n"), "F: line 2: `` is not a hex value");
        assert_eq!(e("fields out: y\nout 1g\n"), "F: line 2: `1g` is not a hex value");
        std::fs::write(&p, "fields out: last y\nout 0 ff\nout 1 7f\n").unwrap();
        assert_eq!(read_dump(&p, "y", 8, None).unwrap(), vec![-1, 127]);
        // Lanes and a mask (the tile's `y rows`): lanes 0 and 2 of the first beat, lane 1 of the
        // second, across a 64-bit word boundary (3 lanes of 30 bits).
        let lanes = |v: [i64; 3]| {
            let mut words = [0u128; 1];
            for (i, x) in v.iter().enumerate() {
                words[0] |= ((*x as u128) & ((1 << 30) - 1)) << (30 * i);
            }
            format!("{:x}", words[0])
        };
        let t = format!("fields out: y rows\nout {} 5\nout {} 2\n", lanes([-5, 7, 1 << 28]), lanes([0, -(1 << 29), 3]));
        std::fs::write(&p, t).unwrap();
        assert_eq!(read_dump(&p, "y", 30, Some("rows")).unwrap(), vec![-5, 1 << 28, -(1 << 29)]);
        assert!(read_dump(&p, "y", 30, Some("keep")).unwrap_err().to_string().ends_with("no `fields out:` line naming `y` and `keep` before the first result"));
        assert!(read_dump(&dir.path().join("none"), "y", 8, None).unwrap_err().to_string().starts_with("cannot read RTL results"));
    }
}
