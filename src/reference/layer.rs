//! A LLaMA-style decoder layer in f32, and the same layer with quantized MatMuls.
//!
//! `x → h = x + O·attn(Q,K,V of rmsnorm(x)) → out = h + Down·(silu(Gate·n) ⊙ Up·n), n = rmsnorm(h)`.
//! Attention is causal softmax attention over the given tokens (grouped-query when K/V have
//! fewer rows than Q); positional encoding is left out because it does not touch the MatMuls
//! this layer exists to compare. The seven projections are the quantized MatMuls; attention's
//! score and value products stay f32, as in the paper's linear-layer quantization.
//!
//! A GPT-2 block is the same skeleton with LayerNorm (with bias) for RMSNorm, a bias after every
//! projection, and `Down·gelu(Up·n)` for the gated MLP (six MatMuls; the gate is absent).
//!
//! The quantized variants run every projection through [`QLinear`], i.e. through the integer
//! index path of SPEC.md (`reference::dot_with_outliers`).

use std::path::Path;

use anyhow::{bail, Result};

use super::quant::{self, ActQuant, Fit, MatMulStats, QLinear, WeightQuant};
use super::tensors::Weights;
use crate::rng::Rng;

/// The seven projection MatMuls of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proj {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Proj {
    pub const ALL: [Proj; 7] = [Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down];

    pub fn name(self) -> &'static str {
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"][self as usize]
    }

    /// The LLaMA-family tensor name of this projection in layer `l`.
    pub fn tensor_name(self, l: usize) -> String {
        let part = if (self as usize) < 4 { "self_attn" } else { "mlp" };
        format!("model.layers.{l}.{part}.{}.weight", self.name())
    }
}

/// A row-major matrix: `rows` outputs by `cols` inputs.
#[derive(Clone, Debug)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Mat {
    /// `W x`, rows in parallel (each row's sum in order, so the result is the same on any
    /// number of threads).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        use rayon::prelude::*;
        let dot = |r: &[f32]| r.iter().zip(x).map(|(a, b)| a * b).sum();
        if self.data.len() < 1 << 16 {
            return self.data.chunks_exact(self.cols).map(dot).collect();
        }
        self.data.par_chunks_exact(self.cols).with_min_len(16).map(dot).collect()
    }
}

/// Weights of one decoder layer.
#[derive(Clone, Debug)]
pub struct Layer {
    pub head_dim: usize,
    /// Indexed by `Proj as usize`. A GPT-2 block has no gate: its `Gate` matrix has 0 rows.
    pub w: Vec<Mat>,
    pub norm_attn: Vec<f32>,
    pub norm_mlp: Vec<f32>,
    /// `Some` for a GPT-2 block (LayerNorm with bias, biased projections, ungated GELU MLP);
    /// `None` for the LLaMA block (RMSNorm, no biases, SiLU-gated MLP).
    pub gpt2: Option<Gpt2>,
}

/// What a GPT-2 block adds to the projections. Biases are f32 and added after the MatMul,
/// outside SPEC's integer contract, like the scales.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gpt2 {
    /// Bias of each projection, indexed by `Proj as usize` (the gate's is empty).
    pub bias: Vec<Vec<f32>>,
    /// LayerNorm biases before attention and before the MLP.
    pub ln_bias: (Vec<f32>, Vec<f32>),
}

/// Shape of the default synthetic layer: small enough for debug-mode tests, large enough that
/// 0.5 % outliers per side (2 of 384, 5 of 1024) covers the outlier channels.
pub const SYNTH_D: usize = 384;
pub const SYNTH_HEADS: usize = 6;
pub const SYNTH_FFN: usize = 1024;
pub const SYNTH_TOKENS: usize = 16;

impl Layer {
    pub fn d(&self) -> usize {
        self.w[Proj::Q as usize].cols
    }

    fn mat(&self, p: Proj) -> &Mat {
        &self.w[p as usize]
    }

    /// A seeded synthetic layer: Gaussian weights with a slightly heavy tail (1 % of weights
    /// three times wider, as trained matrices have), scaled by 1/sqrt(fan-in).
    pub fn synthetic(seed: u64, d: usize, heads: usize, ffn: usize) -> Layer {
        let mut rng = Rng::new(seed);
        let mut mat = |rows: usize, cols: usize| {
            let s = 1.0 / (cols as f64).sqrt();
            let data = (0..rows * cols)
                .map(|_| {
                    let tail = if rng.chance(1, 100) { 3.0 } else { 1.0 };
                    (rng.normal() * s * tail) as f32
                })
                .collect();
            Mat { rows, cols, data }
        };
        let w = vec![mat(d, d), mat(d, d), mat(d, d), mat(d, d), mat(ffn, d), mat(ffn, d), mat(d, ffn)];
        let mut gain = |n: usize| (0..n).map(|_| (1.0 + 0.1 * rng.normal()) as f32).collect();
        let (norm_attn, norm_mlp) = (gain(d), gain(d));
        Layer { head_dim: d / heads, w, norm_attn, norm_mlp, gpt2: None }
    }

    /// The default synthetic layer of `eval` and the tests.
    pub fn default_synthetic(seed: u64) -> Layer {
        Layer::synthetic(seed, SYNTH_D, SYNTH_HEADS, SYNTH_FFN)
    }

    /// Layer `l` of a LLaMA-family checkpoint (`model.layers.{l}.…` tensor names).
    pub fn from_safetensors(path: &Path, l: usize, head_dim: usize) -> Result<Layer> {
        Layer::from_weights(&Weights::open(path)?, l, head_dim)
    }

    /// Layer `l` of an open LLaMA-family checkpoint. Errors are one line naming the file, the
    /// tensor and the shape that does not fit.
    pub fn from_weights(wf: &Weights, l: usize, head_dim: usize) -> Result<Layer> {
        let path = wf.path();
        let mut w = Vec::new();
        for p in Proj::ALL {
            let t = wf.tensor(&p.tensor_name(l))?;
            if t.shape.len() != 2 {
                bail!("tensor '{}' in {} has shape {:?}, expected a matrix", t.name, path.display(), t.shape);
            }
            w.push(Mat { rows: t.shape[0], cols: t.shape[1], data: t.data });
        }
        let norm = |n: &str| -> Result<Vec<f32>> { Ok(wf.tensor(&format!("model.layers.{l}.{n}.weight"))?.data) };
        let layer = Layer { head_dim, w, norm_attn: norm("input_layernorm")?, norm_mlp: norm("post_attention_layernorm")?, gpt2: None };
        layer.check_shapes(l).map_err(|e| anyhow::anyhow!("{}: layer {l}: {e}", path.display()))?;
        Ok(layer)
    }

    /// Block `l` of a GPT-2 checkpoint (`{prefix}h.{l}.…` names, `prefix` "" or "transformer.").
    /// GPT-2 stores its projections as Conv1D weights `[in, out]`; they are transposed to
    /// `[out, in]`, and the fused `c_attn` is cut into Q, K and V.
    pub fn from_gpt2(wf: &Weights, prefix: &str, l: usize, head_dim: usize) -> Result<Layer> {
        let path = wf.path();
        let name = |n: &str| format!("{prefix}h.{l}.{n}");
        let conv = |n: &str| -> Result<(Mat, Vec<f32>)> {
            let t = wf.tensor(&name(&format!("{n}.weight")))?;
            if t.shape.len() != 2 {
                bail!("tensor '{}' in {} has shape {:?}, expected a matrix", t.name, path.display(), t.shape);
            }
            let (i, o) = (t.shape[0], t.shape[1]);
            let data = (0..o).flat_map(|r| (0..i).map(move |c| (r, c))).map(|(r, c)| t.data[c * o + r]).collect();
            let b = wf.tensor(&name(&format!("{n}.bias")))?.data;
            if b.len() != o {
                bail!("tensor '{}' in {} has {} elements, expected {o}", name(&format!("{n}.bias")), path.display(), b.len());
            }
            Ok((Mat { rows: o, cols: i, data }, b))
        };
        let (qkv, qkv_b) = conv("attn.c_attn")?;
        let d = qkv.cols;
        if qkv.rows != 3 * d {
            bail!("tensor '{}' in {} has shape [{d}, {}], expected [{d}, {}] (q, k, v of d_model {d})", name("attn.c_attn.weight"), path.display(), qkv.rows, 3 * d);
        }
        let part = |i: usize| Mat { rows: d, cols: d, data: qkv.data[i * d * d..(i + 1) * d * d].to_vec() };
        let (o, o_b) = conv("attn.c_proj")?;
        let (up, up_b) = conv("mlp.c_fc")?;
        let (down, down_b) = conv("mlp.c_proj")?;
        let gate = Mat { rows: 0, cols: d, data: vec![] };
        let w = vec![part(0), part(1), part(2), o, gate, up, down];
        let bias = vec![qkv_b[..d].to_vec(), qkv_b[d..2 * d].to_vec(), qkv_b[2 * d..].to_vec(), o_b, vec![], up_b, down_b];
        let t = |n: &str| -> Result<Vec<f32>> { Ok(wf.tensor(&name(n))?.data) };
        let layer = Layer {
            head_dim,
            w,
            norm_attn: t("ln_1.weight")?,
            norm_mlp: t("ln_2.weight")?,
            gpt2: Some(Gpt2 { bias, ln_bias: (t("ln_1.bias")?, t("ln_2.bias")?) }),
        };
        layer.check_shapes(l).map_err(|e| anyhow::anyhow!("{}: layer {l}: {e}", path.display()))?;
        Ok(layer)
    }

    /// The first shape that does not fit a decoder layer, as `tensor has [r, c], expected …`.
    fn check_shapes(&self, l: usize) -> Result<(), String> {
        let d = self.d();
        let hd = self.head_dim;
        let shape = |p: Proj| format!("{} has [{}, {}]", p.tensor_name(l), self.mat(p).rows, self.mat(p).cols);
        let ffn = self.mat(Proj::Up).rows;
        let (q, kv) = (self.mat(Proj::Q).rows, self.mat(Proj::K).rows);
        // A zero-sized dimension cannot be applied (and a zero-row Q makes O zero-width).
        if d == 0 || ffn == 0 || q == 0 {
            return Err(format!("{} and {}: a dimension is 0 (d_model {d}, ffn {ffn}, q rows {q})", shape(Proj::Q), shape(Proj::Up)));
        }
        if hd == 0 || !q.is_multiple_of(hd) || kv == 0 || !kv.is_multiple_of(hd) || !(q / hd).is_multiple_of(kv / hd) {
            return Err(format!(
                "{} and {}: with head_dim {hd} the query heads must be a multiple of the key/value heads (check --head-dim)",
                shape(Proj::Q),
                shape(Proj::K)
            ));
        }
        let expect = [
            (Proj::K, kv, d),
            (Proj::V, kv, d),
            (Proj::O, d, q),
            (Proj::Gate, if self.gpt2.is_some() { 0 } else { ffn }, d),
            (Proj::Up, ffn, d),
            (Proj::Down, d, ffn),
        ];
        for (p, r, c) in expect {
            if (self.mat(p).rows, self.mat(p).cols) != (r, c) {
                return Err(format!("{}, expected [{r}, {c}] (d_model {d} from q_proj, ffn {ffn} from up_proj)", shape(p)));
            }
        }
        for (n, g) in [("input_layernorm", &self.norm_attn), ("post_attention_layernorm", &self.norm_mlp)] {
            if g.len() != d {
                return Err(format!("model.layers.{l}.{n}.weight has {} elements, expected d_model = {d}", g.len()));
            }
        }
        Ok(())
    }

    /// Runs the layer on `tokens`, computing every projection with `lin` (a GPT-2 block adds
    /// its biases to what `lin` returns).
    pub fn forward(&self, tokens: &[Vec<f32>], lin: &mut dyn FnMut(Proj, &[f32]) -> Vec<f32>) -> Vec<Vec<f32>> {
        let hd = self.head_dim;
        let mut proj = |p: Proj, x: &[f32]| {
            let mut y = lin(p, x);
            if let Some(g) = &self.gpt2 {
                y.iter_mut().zip(&g.bias[p as usize]).for_each(|(a, b)| *a += b);
            }
            y
        };
        let norm = |x: &[f32], mlp: bool| match &self.gpt2 {
            None => rmsnorm(x, if mlp { &self.norm_mlp } else { &self.norm_attn }),
            Some(g) => layernorm(x, if mlp { &self.norm_mlp } else { &self.norm_attn }, if mlp { &g.ln_bias.1 } else { &g.ln_bias.0 }),
        };
        let n1: Vec<Vec<f32>> = tokens.iter().map(|x| norm(x, false)).collect();
        let q: Vec<Vec<f32>> = n1.iter().map(|x| proj(Proj::Q, x)).collect();
        let k: Vec<Vec<f32>> = n1.iter().map(|x| proj(Proj::K, x)).collect();
        let v: Vec<Vec<f32>> = n1.iter().map(|x| proj(Proj::V, x)).collect();
        let heads = q[0].len() / hd;
        let group = heads / (k[0].len() / hd);
        let scale = 1.0 / (hd as f32).sqrt();
        let mut h = Vec::with_capacity(tokens.len());
        for t in 0..tokens.len() {
            let mut attn = vec![0.0f32; q[0].len()];
            for hh in 0..heads {
                let kv = hh / group;
                let qh = &q[t][hh * hd..(hh + 1) * hd];
                let scores: Vec<f32> = (0..=t)
                    .map(|s| qh.iter().zip(&k[s][kv * hd..(kv + 1) * hd]).map(|(a, b)| a * b).sum::<f32>() * scale)
                    .collect();
                let p = softmax(&scores);
                for (s, ps) in p.iter().enumerate() {
                    for (o, vv) in attn[hh * hd..(hh + 1) * hd].iter_mut().zip(&v[s][kv * hd..(kv + 1) * hd]) {
                        *o += ps * vv;
                    }
                }
            }
            let o = proj(Proj::O, &attn);
            h.push(tokens[t].iter().zip(&o).map(|(a, b)| a + b).collect::<Vec<f32>>());
        }
        h.iter()
            .map(|ht| {
                let n = norm(ht, true);
                let a: Vec<f32> = if self.gpt2.is_some() {
                    proj(Proj::Up, &n).iter().map(|&u| gelu(u)).collect()
                } else {
                    let g = proj(Proj::Gate, &n);
                    let u = proj(Proj::Up, &n);
                    g.iter().zip(&u).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect()
                };
                let dn = proj(Proj::Down, &a);
                ht.iter().zip(&dn).map(|(a, b)| a + b).collect()
            })
            .collect()
    }

    /// The f32 reference output, and every projection's inputs (for calibration).
    pub fn forward_f32(&self, tokens: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
        let mut inputs: Vec<Vec<Vec<f32>>> = vec![vec![]; 7];
        let out = self.forward(tokens, &mut |p, x| {
            inputs[p as usize].push(x.to_vec());
            self.mat(p).apply(x)
        });
        (out, inputs)
    }
}

pub fn rmsnorm(x: &[f32], g: &[f32]) -> Vec<f32> {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + 1e-6).sqrt();
    x.iter().zip(g).map(|(v, g)| v * r * g).collect()
}

/// LayerNorm (GPT-2's, eps 1e-5): `(x − mean) / sqrt(var + eps) · g + b`.
pub fn layernorm(x: &[f32], g: &[f32], b: &[f32]) -> Vec<f32> {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let r = 1.0 / (var + 1e-5).sqrt();
    x.iter().zip(g).zip(b).map(|((v, g), b)| (v - mean) * r * g + b).collect()
}

/// GPT-2's GELU (the tanh approximation).
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh())
}

fn softmax(s: &[f32]) -> Vec<f32> {
    let m = s.iter().fold(f32::NEG_INFINITY, |a, b| a.max(*b));
    let e: Vec<f32> = s.iter().map(|v| (v - m).exp()).collect();
    let z: f32 = e.iter().sum();
    e.iter().map(|v| v / z).collect()
}

/// Residual-stream tokens with a few large-magnitude outlier channels, as real LLM activations
/// have: channel values are N(0,1); `outlier_channels` fixed channels (alternately positive
/// and negative) carry a value of magnitude 20..60 (±20 % noise) in every token.
pub fn synthetic_tokens(seed: u64, d: usize, tokens: usize, outlier_channels: usize) -> Vec<Vec<f32>> {
    // The outlier channels and their magnitudes belong to the model, not to the batch: they come
    // from a fixed stream so calibration and evaluation batches share them.
    let mut model = Rng::new(0x6f75746c);
    let mut chans: Vec<usize> = (0..d).collect();
    model.shuffle(&mut chans);
    let spikes: Vec<(usize, f64)> = chans
        .iter()
        .take(outlier_channels)
        .enumerate()
        .map(|(i, &c)| (c, (20.0 + 40.0 * model.unit()) * if i % 2 == 0 { 1.0 } else { -1.0 }))
        .collect();
    let mut rng = Rng::new(seed);
    (0..tokens)
        .map(|_| {
            let mut x: Vec<f32> = (0..d).map(|_| rng.normal() as f32).collect();
            for &(c, m) in &spikes {
                x[c] = (m * (1.0 + 0.2 * rng.normal())) as f32;
            }
            x
        })
        .collect()
}

/// Outlier channels in the default synthetic activations.
pub const SYNTH_OUTLIER_CHANNELS: usize = 4;

/// How the projections of a quantized variant are computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Codebook {
    KMeans,
    Uniform,
}

/// One quantized variant of the layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scheme {
    pub codebook: Codebook,
    /// Outliers per side as a fraction of the reduction length (0.005 = the paper's 0.5 %).
    pub outlier_fraction: f64,
    pub q: QBits,
}

/// Bit widths of SPEC's integer mode (a copy of `config::QuantConfig`'s fields).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QBits {
    pub nw: u32,
    pub na: u32,
    pub wc_bits: u32,
    pub ac_bits: u32,
    pub x_bits: u32,
}

impl From<&crate::config::QuantConfig> for QBits {
    fn from(q: &crate::config::QuantConfig) -> Self {
        QBits { nw: q.nw, na: q.na, wc_bits: q.wc_bits, ac_bits: q.ac_bits, x_bits: q.x_bits }
    }
}

/// Every projection's weights, quantized with `codebook` (one codebook per matrix, per-row scale).
pub fn quantize_weights(layer: &Layer, codebook: Codebook, q: QBits, seed: u64) -> Result<Vec<WeightQuant>, String> {
    Proj::ALL
        .iter()
        .map(|&p| {
            let m = layer.mat(p);
            match codebook {
                Codebook::KMeans => quant::kmeans_weights(&m.data, m.rows, m.cols, q.nw, q.wc_bits, Fit::Lloyd { seed }),
                Codebook::Uniform => quant::uniform_weights(&m.data, m.rows, m.cols, q.nw, q.wc_bits),
            }
            .map_err(|e| format!("{}: {e}", p.name()))
        })
        .collect()
}

/// The layer with every projection quantized under one scheme.
pub struct QuantLayer {
    pub lin: Vec<QLinear>,
}

impl QuantLayer {
    /// Quantizes the weights and calibrates the activation codebooks on `calib_inputs` (each
    /// projection's inputs from an f32 run over calibration tokens).
    pub fn new(layer: &Layer, calib_inputs: &[Vec<Vec<f32>>], s: &Scheme, seed: u64) -> Result<QuantLayer, String> {
        let w = quantize_weights(layer, s.codebook, s.q, seed)?;
        QuantLayer::with_weights(layer, w, calib_inputs, s, seed)
    }

    /// As `new`, with weights already quantized by [`quantize_weights`] for the same codebook
    /// kind (the weights do not depend on the outlier budget, and they are the slow part).
    pub fn with_weights(layer: &Layer, w: Vec<WeightQuant>, calib_inputs: &[Vec<Vec<f32>>], s: &Scheme, seed: u64) -> Result<QuantLayer, String> {
        let mut lin = Vec::new();
        for (p, w) in Proj::ALL.into_iter().zip(w) {
            let k = quant::outliers_per_side(layer.mat(p).cols, s.outlier_fraction);
            // A projection the block does not have (GPT-2's gate) never runs: any codebook does.
            let absent = layer.mat(p).rows == 0;
            let a = match s.codebook {
                _ if absent => ActQuant::uniform(s.q.na, s.q.ac_bits, s.q.x_bits, k)?,
                Codebook::KMeans => {
                    ActQuant::kmeans(&calib_inputs[p as usize], s.q.na, s.q.ac_bits, s.q.x_bits, k, Fit::Lloyd { seed })
                        .map_err(|e| format!("{}: {e}", p.name()))?
                }
                Codebook::Uniform => ActQuant::uniform(s.q.na, s.q.ac_bits, s.q.x_bits, k)?,
            };
            lin.push(QLinear { w, a });
        }
        Ok(QuantLayer { lin })
    }

    /// Runs the layer with quantized projections; returns the output and per-projection stats.
    pub fn forward(&self, layer: &Layer, tokens: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<MatMulStats>) {
        let mut stats = vec![MatMulStats::default(); 7];
        let out = layer.forward(tokens, &mut |p, x| self.lin[p as usize].forward(x, &mut stats[p as usize]));
        (out, stats)
    }
}

/// Output error of a variant against the f32 reference.
#[derive(Clone, Copy, Debug)]
pub struct Error {
    /// ‖y − y_ref‖ / ‖y_ref‖ over all tokens of the layer output.
    pub rel_l2: f64,
    /// The same for the layer's contribution `y − x` (the residual input is exact in every
    /// variant, so this is the error that quantization makes, undiluted).
    pub rel_l2_delta: f64,
    /// Cosine similarity of the contributions `y − x`.
    pub cos_delta: f64,
}

pub fn error(x: &[Vec<f32>], reference: &[Vec<f32>], y: &[Vec<f32>]) -> Error {
    let (mut e, mut r, mut ed, mut rd, mut dot, mut yd) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for ((xt, rt), yt) in x.iter().zip(reference).zip(y) {
        for ((&xv, &rv), &yv) in xt.iter().zip(rt).zip(yt) {
            let (xv, rv, yv) = (xv as f64, rv as f64, yv as f64);
            e += (yv - rv).powi(2);
            r += rv * rv;
            let (a, b) = (rv - xv, yv - xv);
            ed += (b - a).powi(2);
            rd += a * a;
            yd += b * b;
            dot += a * b;
        }
    }
    Error { rel_l2: (e / r).sqrt(), rel_l2_delta: (ed / rd).sqrt(), cos_delta: dot / (rd.sqrt() * yd.sqrt()) }
}

/// One row of `kllm-gen eval`.
pub struct EvalRow {
    pub name: String,
    pub scheme: Option<Scheme>,
    pub err: Error,
    pub stats: Vec<MatMulStats>,
}

/// Evaluates f32 and the four quantized variants (K-Means / uniform, each without and with
/// `outlier_fraction` per side) on `eval` tokens, codebooks calibrated on `calib` tokens.
pub fn evaluate(layer: &Layer, calib: &[Vec<f32>], eval: &[Vec<f32>], q: QBits, outlier_fraction: f64, seed: u64) -> Result<Vec<EvalRow>, String> {
    let (_, calib_inputs) = layer.forward_f32(calib);
    let (reference, _) = layer.forward_f32(eval);
    let mut rows = vec![EvalRow {
        name: "f32".into(),
        scheme: None,
        err: error(eval, &reference, &reference),
        stats: vec![],
    }];
    for codebook in [Codebook::KMeans, Codebook::Uniform] {
        let w = quantize_weights(layer, codebook, q, seed)?;
        for frac in [0.0, outlier_fraction] {
            let s = Scheme { codebook, outlier_fraction: frac, q };
            let ql = QuantLayer::with_weights(layer, w.clone(), &calib_inputs, &s, seed)?;
            let (y, stats) = ql.forward(layer, eval);
            rows.push(EvalRow { name: scheme_name(&s), scheme: Some(s), err: error(eval, &reference, &y), stats });
        }
    }
    Ok(rows)
}

pub fn scheme_name(s: &Scheme) -> String {
    let cb = match s.codebook {
        Codebook::KMeans => "K-Means",
        Codebook::Uniform => "uniform INT",
    };
    let o = if s.outlier_fraction > 0.0 {
        let pct = s.outlier_fraction * 100.0;
        format!(" + {pct}%+{pct}% outliers")
    } else {
        String::new()
    };
    format!("{cb} W{}A{}{o}", s.q.nw, s.q.na)
}

/// The eval table, columns aligned.
pub fn format_table(rows: &[EvalRow]) -> String {
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max("variant".len());
    let mut s = format!("{:<w$}  {:>12}  {:>14}  {:>14}\n", "variant", "rel L2 (out)", "rel L2 (out-x)", "cos (out-x)");
    for r in rows {
        s += &format!("{:<w$}  {:>12.6}  {:>14.6}  {:>14.6}\n", r.name, r.err.rel_l2, r.err.rel_l2_delta, r.err.cos_delta);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const W4A4: QBits = QBits { nw: 4, na: 4, wc_bits: 8, ac_bits: 8, x_bits: 16 };

    #[test]
    fn kmeans_with_outliers_beats_uniform_with_outliers_on_default_layer() {
        let layer = Layer::default_synthetic(1);
        let calib = synthetic_tokens(2, SYNTH_D, SYNTH_TOKENS, SYNTH_OUTLIER_CHANNELS);
        let eval = synthetic_tokens(3, SYNTH_D, SYNTH_TOKENS, SYNTH_OUTLIER_CHANNELS);
        let rows = evaluate(&layer, &calib, &eval, W4A4, 0.005, 1).unwrap();
        let table = format_table(&rows);
        let find = |cb: Codebook, o: bool| {
            rows.iter()
                .find(|r| r.scheme.is_some_and(|s| s.codebook == cb && (s.outlier_fraction > 0.0) == o))
                .unwrap()
                .err
        };
        let (k, u) = (find(Codebook::KMeans, true), find(Codebook::Uniform, true));
        assert!(k.rel_l2 < u.rel_l2 && k.rel_l2_delta < u.rel_l2_delta, "seed 1:\n{table}");
        // Outlier compensation must help both codebooks.
        assert!(k.rel_l2 < find(Codebook::KMeans, false).rel_l2, "{table}");
        assert!(u.rel_l2 < find(Codebook::Uniform, false).rel_l2, "{table}");
        assert_eq!(rows[0].err.rel_l2, 0.0);
    }

    #[test]
    fn quantized_layer_uses_the_integer_path_exactly() {
        // Tiny layer: y of a QLinear equals the dequantized f64 sum of its terms.
        let layer = Layer::synthetic(5, 32, 2, 48);
        let toks = synthetic_tokens(6, 32, 4, 1);
        let (_, inputs) = layer.forward_f32(&toks);
        let s = Scheme { codebook: Codebook::KMeans, outlier_fraction: 0.05, q: W4A4 };
        let ql = QuantLayer::new(&layer, &inputs, &s, 1).unwrap();
        let lin = &ql.lin[Proj::Up as usize];
        let x = &inputs[Proj::Up as usize][0];
        let t = lin.a.token(x);
        let y = lin.forward(x, &mut MatMulStats::default());
        for (r, &yr) in y.iter().enumerate() {
            let mut sum = 0.0f64;
            for j in 0..lin.w.cols {
                let a = if t.outliers.contains(&j) { t.x[j] } else { lin.a.ca[t.ia[j] as usize] };
                sum += (a * lin.w.cw[lin.w.row_idx(r)[j] as usize]) as f64;
            }
            let expect = (sum * t.unit * lin.w.scale[r]) as f32;
            assert_eq!(yr, expect, "row {r}");
        }
    }

    #[test]
    fn layer_loads_from_safetensors() {
        use super::super::tensors::{write, Tensor};
        let layer = Layer::synthetic(7, 16, 2, 24);
        let mut ts: Vec<Tensor> = Proj::ALL
            .iter()
            .map(|&p| {
                let m = &layer.w[p as usize];
                Tensor { name: p.tensor_name(3), shape: vec![m.rows, m.cols], data: m.data.clone() }
            })
            .collect();
        ts.push(Tensor { name: "model.layers.3.input_layernorm.weight".into(), shape: vec![16], data: layer.norm_attn.clone() });
        ts.push(Tensor { name: "model.layers.3.post_attention_layernorm.weight".into(), shape: vec![16], data: layer.norm_mlp.clone() });
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("layer.safetensors");
        write(&p, &ts, safetensors::Dtype::F32).unwrap();
        let back = Layer::from_safetensors(&p, 3, 8).unwrap();
        let toks = synthetic_tokens(1, 16, 3, 1);
        assert_eq!(back.forward_f32(&toks).0, layer.forward_f32(&toks).0);
        let e = format!("{:#}", Layer::from_safetensors(&p, 4, 8).unwrap_err());
        assert!(e.contains("tensor 'model.layers.4.self_attn.q_proj.weight' not found"), "{e}");
        let e = format!("{:#}", Layer::from_safetensors(&p, 3, 5).unwrap_err());
        assert!(e.ends_with("layer 3: model.layers.3.self_attn.q_proj.weight has [16, 16] and model.layers.3.self_attn.k_proj.weight has [16, 16]: with head_dim 5 the query heads must be a multiple of the key/value heads (check --head-dim)"), "{e}");
    }
}
