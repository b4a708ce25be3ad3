//! Whole checkpoints: every decoder layer of a LLaMA-family or GPT-2 `.safetensors` file, fed with real
//! activations.
//!
//! Inputs are a seeded sequence of token ids looked up in the checkpoint's own embedding
//! (`model.embed_tokens.weight`) and carried through the f32 layers, so layer `l` is evaluated on
//! what the f32 model gives it, not on synthetic vectors; each layer's error is its own (the
//! quantized layer gets the exact f32 input). The ids are split in two sequences: a calibration
//! split (activation codebooks are fitted on the f32 projection inputs of that split only) and an
//! evaluation split (every figure). Layers are loaded one at a time and their pages released, so
//! memory stays near one layer in f32 plus the embedding rows of the tokens.

use std::path::Path;

use anyhow::{bail, Result};

use super::layer::{self, EvalRow, Layer, Proj, QBits};
use super::tensors::{write, Tensor};
use super::quant::Rows;
use super::tensors::Weights;
use crate::rng::Rng;

/// A sequence of token vectors.
pub type Tokens = Vec<Vec<f32>>;

/// Sees layer `l` with its calibration and evaluation inputs.
pub type LayerVisit<'a> = dyn FnMut(usize, &Layer, &[Vec<f32>], &[Vec<f32>]) -> Result<()> + 'a;

/// The embedding of a LLaMA-family checkpoint.
pub const EMBED: &str = "model.embed_tokens.weight";

/// The naming (and block) family of a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Style {
    /// `model.layers.{l}.self_attn.q_proj` …, embedding `model.embed_tokens`.
    Llama,
    /// `{prefix}h.{l}.attn.c_attn` …, embeddings `{prefix}wte` and `{prefix}wpe`.
    Gpt2 { prefix: String },
}

/// An open checkpoint: its decoder layers `0..layers`.
pub struct Checkpoint {
    pub w: Weights,
    pub layers: usize,
    pub head_dim: usize,
    pub style: Style,
}

impl Checkpoint {
    /// Opens `path` and counts its decoder layers (`model.layers.{l}.` names for the LLaMA family,
    /// `h.{l}.` or `transformer.h.{l}.` for GPT-2). A BERT checkpoint gets one line saying why it
    /// does not fit.
    pub fn open(path: &Path, head_dim: usize) -> Result<Checkpoint> {
        let w = Weights::open(path)?;
        let names = w.names();
        let count = |prefix: &str| {
            names.iter().filter_map(|n| n.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok()).max().map_or(0, |m| m + 1)
        };
        let (layers, style) = match count("model.layers.") {
            0 => {
                let gpt2 = ["", "transformer."].into_iter().find(|p| names.iter().any(|n| n.starts_with(&format!("{p}h.0.attn.c_attn."))));
                match gpt2 {
                    Some(p) => (count(&format!("{p}h.")), Style::Gpt2 { prefix: p.to_string() }),
                    None if names.iter().any(|n| n.contains(".attention.self.query.")) => bail!(
                        "{} is a BERT-style checkpoint (encoder.layer.{{l}}.attention.self.query): eval runs causal decoder layers (LLaMA family or GPT-2); `kllm-gen quantize` reads any checkpoint",
                        path.display()
                    ),
                    None => bail!("{} has no decoder layers (no tensor named model.layers.{{l}}.… or h.{{l}}.attn.c_attn.…)", path.display()),
                }
            }
            n => (n, Style::Llama),
        };
        Ok(Checkpoint { w, layers, head_dim, style })
    }

    /// Decoder layer `l`, or one line naming the allowed range.
    pub fn layer(&self, l: usize) -> Result<Layer> {
        if l >= self.layers {
            bail!("`--layer` = {l} is out of range: {} has decoder layers 0..={}", self.w.path().display(), self.layers - 1);
        }
        match &self.style {
            Style::Llama => Layer::from_weights(&self.w, l, self.head_dim),
            Style::Gpt2 { prefix } => Layer::from_gpt2(&self.w, prefix, l, self.head_dim),
        }
    }

    /// Tensor-name prefix of layer `l`.
    fn layer_prefix(&self, l: usize) -> String {
        match &self.style {
            Style::Llama => format!("model.layers.{l}."),
            Style::Gpt2 { prefix } => format!("{prefix}h.{l}."),
        }
    }

    /// Hands the pages of layer `l`'s tensors back (see [`Weights::release`]).
    pub fn release(&self, l: usize) {
        for n in self.w.names().iter().filter(|n| n.starts_with(&self.layer_prefix(l))) {
            self.w.release(n);
        }
    }

    /// `n` seeded token ids, uniform over the vocabulary, looked up in the embedding (only those
    /// rows are read; GPT-2 adds its learned position embedding for positions `0..n`). Errors if
    /// an embedding is missing, its width is not `d`, or the sequence is longer than GPT-2's
    /// positions.
    pub fn embed(&self, n: usize, seed: u64, d: usize) -> Result<Tokens> {
        let (tok, pos) = match &self.style {
            Style::Llama => (EMBED.to_string(), None),
            Style::Gpt2 { prefix } => (format!("{prefix}wte.weight"), Some(format!("{prefix}wpe.weight"))),
        };
        let e = self.w.rows(&tok)?;
        let (vocab, width) = e.shape();
        if width != d || vocab == 0 {
            bail!("tensor '{tok}' in {} has shape {:?}, expected [vocab, {d}] (d_model of layer 0)", self.w.path().display(), e.shape);
        }
        let mut rng = Rng::new(seed);
        let mut buf = Vec::new();
        let mut out: Tokens = (0..n).map(|_| e.row(rng.below(vocab as u64) as usize, &mut buf).to_vec()).collect();
        self.w.release(&tok);
        if let Some(pos) = pos {
            let p = self.w.rows(&pos)?;
            if p.shape().1 != d || p.shape().0 < n {
                bail!(
                    "tensor '{pos}' in {} has shape {:?}: {n} tokens need [>= {n}, {d}] (lower --tokens)",
                    self.w.path().display(),
                    p.shape
                );
            }
            for (i, x) in out.iter_mut().enumerate() {
                x.iter_mut().zip(p.row(i, &mut buf)).for_each(|(a, b)| *a += b);
            }
            self.w.release(&pos);
        }
        Ok(out)
    }

    /// The f32 inputs of layer `l` for the calibration and the evaluation sequences (`tokens`
    /// each, seeds `seed` and `seed + 1`), and the layer itself. `visit` sees every layer
    /// before `l` with its inputs (for a whole-checkpoint report) as it goes.
    pub fn inputs_of(
        &self,
        l: usize,
        tokens: usize,
        seed: u64,
        visit: &mut LayerVisit<'_>,
    ) -> Result<(Layer, Tokens, Tokens)> {
        if l >= self.layers {
            self.layer(l)?;
        }
        let first = self.layer(0)?;
        let d = first.d();
        let mut calib = self.embed(tokens, seed, d)?;
        let mut eval = self.embed(tokens, seed.wrapping_add(1), d)?;
        let mut cur = first;
        for i in 0..l {
            visit(i, &cur, &calib, &eval)?;
            calib = cur.forward_f32(&calib).0;
            eval = cur.forward_f32(&eval).0;
            self.release(i);
            cur = self.layer(i + 1)?;
            if cur.d() != d {
                bail!("{}: layer {} has d_model {}, layer 0 has {d}", self.w.path().display(), i + 1, cur.d());
            }
        }
        Ok((cur, calib, eval))
    }
}

/// One layer's rows of the whole-checkpoint report.
pub struct LayerRows {
    pub layer: usize,
    pub rows: Vec<EvalRow>,
}

/// Evaluates layer `only` (or every layer) of a checkpoint: the variants of
/// [`layer::evaluate`] on each layer's own f32 inputs.
pub fn evaluate(ck: &Checkpoint, only: Option<usize>, tokens: usize, q: QBits, outlier_fraction: f64, seed: u64) -> Result<Vec<LayerRows>> {
    let mut out = Vec::new();
    let last = only.unwrap_or(ck.layers.saturating_sub(1));
    // Layers walked (the f32 ones before `only` included); hidden unless stderr is a terminal.
    let bar = indicatif::ProgressBar::new(last as u64 + 1);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} layer {pos}/{len}, {elapsed} ({eta} left)").expect("valid template"));
    let mut visit = |l: usize, layer: &Layer, calib: &[Vec<f32>], eval: &[Vec<f32>]| -> Result<()> {
        bar.inc(1);
        if only.is_none_or(|o| o == l) {
            let rows = layer::evaluate(layer, calib, eval, q, outlier_fraction, seed).map_err(|e| anyhow::anyhow!("layer {l}: {e}"))?;
            out.push(LayerRows { layer: l, rows });
        }
        Ok(())
    };
    let (layer, calib, eval) = ck.inputs_of(last, tokens, seed, &mut visit)?;
    visit(last, &layer, &calib, &eval)?;
    bar.finish_and_clear();
    Ok(out)
}

/// The per-layer report as a Markdown table (one row per layer; relative L2 and cosine of the
/// layer's contribution `out − x` for each quantized variant) and as CSV (one row per layer and
/// variant, every figure).
pub fn report(layers: &[LayerRows]) -> (String, String) {
    let variants: Vec<&EvalRow> = layers.first().map(|l| l.rows.iter().filter(|r| r.scheme.is_some()).collect()).unwrap_or_default();
    let mut md = String::from("| layer |");
    let mut rule = String::from("|---:|");
    for v in &variants {
        md += &format!(" {} rel L2 | cos |", v.name);
        rule += "---:|---:|";
    }
    md += " K-Means/uniform rel L2 (with outliers) |\n";
    rule += "---:|\n";
    md += &rule;
    let mut csv = String::from("layer,variant,rel_l2_out,rel_l2_delta,cos_delta\n");
    for l in layers {
        md += &format!("| {} |", l.layer);
        for r in l.rows.iter().filter(|r| r.scheme.is_some()) {
            md += &format!(" {:.6} | {:.6} |", r.err.rel_l2_delta, r.err.cos_delta);
        }
        // K-Means vs uniform at the same outlier budget (the last two variants carry outliers).
        let pick = |cb: layer::Codebook, o: bool| {
            l.rows.iter().find(|r| r.scheme.is_some_and(|s| s.codebook == cb && (s.outlier_fraction > 0.0) == o))
        };
        let ratio = match (pick(layer::Codebook::KMeans, true), pick(layer::Codebook::Uniform, true)) {
            (Some(k), Some(u)) if u.err.rel_l2_delta > 0.0 => format!("{:.3}", k.err.rel_l2_delta / u.err.rel_l2_delta),
            _ => "-".into(),
        };
        md += &format!(" {ratio} |\n");
        for r in &l.rows {
            csv += &format!("{},{},{:.9},{:.9},{:.9}\n", l.layer, r.name, r.err.rel_l2, r.err.rel_l2_delta, r.err.cos_delta);
        }
    }
    (md, csv)
}

/// Shape of a random LLaMA-style checkpoint (for tests, examples and timing; not a trained model).
#[derive(Clone, Copy, Debug)]
pub struct RandomLlama {
    pub layers: usize,
    pub d: usize,
    pub ffn: usize,
    /// Rows of k_proj and v_proj (key/value heads × head size).
    pub kv: usize,
    pub vocab: usize,
}

impl RandomLlama {
    /// Writes it as bf16: Gaussian projections scaled by 1/sqrt(fan-in), norm gains near 1, a
    /// unit-variance embedding.
    pub fn write(&self, path: &Path, seed: u64) -> Result<()> {
        let &RandomLlama { layers, d, ffn, kv, vocab } = self;
        let mut rng = Rng::new(seed);
        let mut m = |name: String, r: usize, c: usize, s: f64| Tensor {
            name,
            shape: if c == 0 { vec![r] } else { vec![r, c] },
            data: (0..r * c.max(1)).map(|_| if c == 0 { (1.0 + 0.1 * rng.normal()) as f32 } else { (rng.normal() * s) as f32 }).collect(),
        };
        let mut ts = vec![m(EMBED.into(), vocab, d, 1.0)];
        for l in 0..layers {
            for p in Proj::ALL {
                let (r, c) = match p {
                    Proj::K | Proj::V => (kv, d),
                    Proj::Gate | Proj::Up => (ffn, d),
                    Proj::Down => (d, ffn),
                    _ => (d, d),
                };
                ts.push(m(p.tensor_name(l), r, c, 1.0 / (c as f64).sqrt()));
            }
            ts.push(m(format!("model.layers.{l}.input_layernorm.weight"), d, 0, 0.0));
            ts.push(m(format!("model.layers.{l}.post_attention_layernorm.weight"), d, 0, 0.0));
        }
        ts.push(m("model.norm.weight".into(), d, 0, 0.0));
        write(path, &ts, safetensors::Dtype::BF16)
    }
}

/// The tests' checkpoint: `layers` decoder layers of d = 32 (4 heads of 8, grouped-query with 2
/// key/value heads), ffn 48, a 50-token embedding.
pub fn write_tiny_llama(path: &Path, layers: usize, seed: u64) -> Result<()> {
    RandomLlama { layers, d: 32, ffn: 48, kv: 16, vocab: 50 }.write(path, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W4A4: QBits = QBits { nw: 4, na: 4, wc_bits: 8, ac_bits: 8, x_bits: 16 };

    #[test]
    fn every_layer_is_evaluated_on_its_own_f32_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tiny.safetensors");
        write_tiny_llama(&p, 3, 5).unwrap();
        let ck = Checkpoint::open(&p, 8).unwrap();
        assert_eq!(ck.layers, 3);
        let all = evaluate(&ck, None, 6, W4A4, 0.05, 1).unwrap();
        assert_eq!(all.iter().map(|l| l.layer).collect::<Vec<_>>(), vec![0, 1, 2]);
        // Layer 2 alone gives the same figures as layer 2 of the whole run (same inputs).
        let two = evaluate(&ck, Some(2), 6, W4A4, 0.05, 1).unwrap();
        let fig = |r: &[EvalRow]| r.iter().map(|r| r.err.rel_l2_delta).collect::<Vec<_>>();
        assert_eq!(fig(&two[0].rows), fig(&all[2].rows));
        // Layer 1's inputs are layer 0's f32 outputs of the embedded tokens.
        let (_, c1, _) = ck.inputs_of(1, 6, 1, &mut |_, _, _, _| Ok(())).unwrap();
        let l0 = ck.layer(0).unwrap();
        assert_eq!(c1, l0.forward_f32(&ck.embed(6, 1, 32).unwrap()).0);
        let (md, csv) = report(&all);
        assert_eq!(md.lines().count(), 2 + 3, "{md}");
        assert!(md.starts_with("| layer | K-Means W4A4 rel L2 | cos |"), "{md}");
        assert_eq!(csv.lines().count(), 1 + 3 * 5, "{csv}");
        assert!(csv.lines().nth(1).unwrap().starts_with("0,f32,0.000000000,0.000000000,"), "{csv}");
        for l in &all {
            // Every quantized variant is an error, and a small one, on every layer.
            for r in l.rows.iter().filter(|r| r.scheme.is_some()) {
                assert!(r.err.rel_l2_delta > 0.0 && r.err.cos_delta > 0.5, "layer {} {}: {:?}", l.layer, r.name, r.err);
            }
        }
    }

    /// A GPT-2 checkpoint written from known matrices: Conv1D weights are `[in, out]` and Q, K, V
    /// share one fused `c_attn`.
    #[test]
    fn gpt2_blocks_load_transposed_and_split_and_are_evaluated() {
        let (d, ffn, vocab, layers) = (16, 40, 30, 2);
        let mut rng = Rng::new(3);
        let mut v = |n: usize| (0..n).map(|_| rng.normal() as f32 * 0.3).collect::<Vec<f32>>();
        let mut ts = vec![
            Tensor { name: "transformer.wte.weight".into(), shape: vec![vocab, d], data: v(vocab * d) },
            Tensor { name: "transformer.wpe.weight".into(), shape: vec![8, d], data: v(8 * d) },
        ];
        let t = |name: String, shape: Vec<usize>, data: Vec<f32>| Tensor { name, shape, data };
        for l in 0..layers {
            let h = |n: &str| format!("transformer.h.{l}.{n}");
            ts.push(t(h("attn.c_attn.weight"), vec![d, 3 * d], v(3 * d * d)));
            ts.push(t(h("attn.c_attn.bias"), vec![3 * d], v(3 * d)));
            ts.push(t(h("attn.c_proj.weight"), vec![d, d], v(d * d)));
            ts.push(t(h("attn.c_proj.bias"), vec![d], v(d)));
            ts.push(t(h("mlp.c_fc.weight"), vec![d, ffn], v(d * ffn)));
            ts.push(t(h("mlp.c_fc.bias"), vec![ffn], v(ffn)));
            ts.push(t(h("mlp.c_proj.weight"), vec![ffn, d], v(ffn * d)));
            ts.push(t(h("mlp.c_proj.bias"), vec![d], v(d)));
            for n in ["ln_1", "ln_2"] {
                ts.push(t(h(&format!("{n}.weight")), vec![d], v(d).iter().map(|x| 1.0 + x).collect()));
                ts.push(t(h(&format!("{n}.bias")), vec![d], v(d)));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gpt2.safetensors");
        write(&p, &ts, safetensors::Dtype::F32).unwrap();
        let ck = Checkpoint::open(&p, 4).unwrap();
        assert_eq!((ck.layers, ck.style.clone()), (2, Style::Gpt2 { prefix: "transformer.".into() }));
        let l1 = ck.layer(1).unwrap();
        let get = |n: &str| ts.iter().find(|t| t.name == n).unwrap();
        let qkv = get("transformer.h.1.attn.c_attn.weight");
        // K[r][c] = c_attn[c][d + r]; Up[r][c] = c_fc[c][r].
        let k = &l1.w[Proj::K as usize];
        assert_eq!((k.rows, k.cols), (d, d));
        for (r, c) in [(0, 0), (3, 7), (15, 2)] {
            assert_eq!(k.data[r * d + c], qkv.data[c * 3 * d + d + r]);
            assert_eq!(l1.w[Proj::Up as usize].data[r * d + c], get("transformer.h.1.mlp.c_fc.weight").data[c * ffn + r]);
        }
        assert_eq!(l1.gpt2.as_ref().unwrap().bias[Proj::V as usize], get("transformer.h.1.attn.c_attn.bias").data[2 * d..]);
        assert_eq!(l1.w[Proj::Gate as usize].rows, 0);
        // Embedding: token row + position row.
        let x = ck.embed(3, 1, d).unwrap();
        let wte = &get("transformer.wte.weight").data;
        let wpe = &get("transformer.wpe.weight").data;
        let id = (0..vocab).find(|&i| (0..d).all(|c| x[2][c] == wte[i * d + c] + wpe[2 * d + c])).expect("token 2 = wte[id] + wpe[2]");
        assert!(id < vocab);
        let rows = evaluate(&ck, None, 6, W4A4, 0.1, 1).unwrap();
        assert_eq!(rows.len(), 2);
        for r in rows.iter().flat_map(|l| l.rows.iter().filter(|r| r.scheme.is_some())) {
            assert!(r.err.rel_l2_delta > 0.0 && r.err.cos_delta > 0.5, "{}: {:?}", r.name, r.err);
        }
        let msg = format!("{:#}", evaluate(&ck, None, 9, W4A4, 0.1, 1).err().unwrap());
        assert!(msg.ends_with("has shape [8, 16]: 9 tokens need [>= 9, 16] (lower --tokens)"), "{msg}");
    }

    #[test]
    fn bad_checkpoints_get_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tiny.safetensors");
        write_tiny_llama(&p, 2, 6).unwrap();
        let ck = Checkpoint::open(&p, 8).unwrap();
        let e = |r: Result<Vec<LayerRows>>| format!("{:#}", r.err().unwrap());
        let msg = e(evaluate(&ck, Some(2), 4, W4A4, 0.0, 1));
        assert!(msg.starts_with("`--layer` = 2 is out of range:") && msg.ends_with("has decoder layers 0..=1"), "{msg}");
        let msg = e(evaluate(&Checkpoint::open(&p, 7).unwrap(), None, 4, W4A4, 0.0, 1));
        assert!(msg.contains("with head_dim 7 the query heads"), "{msg}");

        // A missing tensor, a wrong shape, a missing embedding, a BERT file.
        let w = Weights::open(&p).unwrap();
        let all: Vec<Tensor> = w.names().iter().map(|n| w.tensor(n).unwrap()).collect();
        let variant = |name: &str, f: &dyn Fn(&mut Vec<Tensor>)| {
            let q = dir.path().join(name);
            let mut ts = all.clone();
            f(&mut ts);
            write(&q, &ts, safetensors::Dtype::F32).unwrap();
            q
        };
        let q = variant("missing.safetensors", &|ts| ts.retain(|t| t.name != "model.layers.1.mlp.up_proj.weight"));
        let msg = e(evaluate(&Checkpoint::open(&q, 8).unwrap(), None, 4, W4A4, 0.0, 1));
        assert!(msg.starts_with("tensor 'model.layers.1.mlp.up_proj.weight' not found in"), "{msg}");
        let q = variant("shape.safetensors", &|ts| {
            let t = ts.iter_mut().find(|t| t.name == "model.layers.0.mlp.down_proj.weight").unwrap();
            t.shape = vec![48, 32];
        });
        let msg = e(evaluate(&Checkpoint::open(&q, 8).unwrap(), None, 4, W4A4, 0.0, 1));
        assert!(msg.ends_with("layer 0: model.layers.0.mlp.down_proj.weight has [48, 32], expected [32, 48] (d_model 32 from q_proj, ffn 48 from up_proj)"), "{msg}");
        let q = variant("noembed.safetensors", &|ts| ts.retain(|t| t.name != EMBED));
        let msg = e(evaluate(&Checkpoint::open(&q, 8).unwrap(), None, 4, W4A4, 0.0, 1));
        assert!(msg.starts_with("tensor 'model.embed_tokens.weight' not found in"), "{msg}");
        let q = variant("bert.safetensors", &|ts| {
            ts.retain(|t| t.name == EMBED);
            ts[0].name = "encoder.layer.0.attention.self.query.weight".into();
        });
        let msg = format!("{:#}", Checkpoint::open(&q, 8).err().unwrap());
        assert!(msg.contains("is a BERT-style checkpoint (encoder.layer.{l}.attention.self.query): eval runs causal decoder layers"), "{msg}");
        assert!(!msg.contains('\n'));
    }
}
