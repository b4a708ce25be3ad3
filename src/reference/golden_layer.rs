//! `kllm-gen golden --from-layer`: the MatMuls of a real (K-Means W·A· + outliers) decoder
//! layer as PE-line golden vectors, so the RTL is checked on layer data, not only on random
//! index streams.
//!
//! The file has exactly the format of `pe_line::golden` (same header, `cfg` LUT writes, `in`
//! beats packed by lanes with keep/last, `out` = the main-path integer dot product
//! `Σ ca[ia]·cw[iw]` at `y_bits`), one segment (`sync`) per projection because each projection
//! has its own LUT, and no `timing` segments. A reduction longer than `pe_line.k_max` is cut into
//! chunks of at most `k_max` elements, each its own dot product (the partial sums the hardware
//! would accumulate). The PE line has no compensation path yet, so the outlier compensation
//! `Σ_{j∈O} (x_j − ca[ia_j])·cw[iw_j]` is not in the file; [`LayerGolden::summary`] reports it.

use anyhow::{anyhow, Result};

use super::layer::{Proj, QBits, SYNTH_TOKENS};
use super::layer_gemv::LayerProblem;
use super::quant;
use crate::config::Config;
use crate::golden::{hex_signed, GoldenWriter};
use crate::pe_line::{self, PeLineDerived};
use crate::rng::Rng;

/// Per-projection figures for the summary.
#[derive(Clone, Debug, Default)]
pub struct ProjFigures {
    pub name: &'static str,
    pub k: usize,
    pub chunks_per_dot: usize,
    pub dots: u64,
    pub outliers_per_token: usize,
    pub mean_abs_main: f64,
    pub mean_abs_comp: f64,
    pub max_abs_comp: i64,
}

pub struct LayerGolden {
    pub text: String,
    pub figures: Vec<ProjFigures>,
}

impl LayerGolden {
    /// One aligned line per projection: sizes and the compensation term the RTL does not add.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{:<10} {:>6} {:>7} {:>7} {:>9} {:>14} {:>14} {:>11} {:>12}\n",
            "matmul", "K", "chunks", "dots", "outliers", "mean |main Y|", "mean |comp|", "comp/main", "max |comp|"
        );
        for f in &self.figures {
            let ratio = if f.mean_abs_main > 0.0 { f.mean_abs_comp / f.mean_abs_main } else { 0.0 };
            s += &format!(
                "{:<10} {:>6} {:>7} {:>7} {:>9} {:>14.1} {:>14.1} {:>11.4} {:>12}\n",
                f.name, f.k, f.chunks_per_dot, f.dots, f.outliers_per_token, f.mean_abs_main, f.mean_abs_comp, ratio, f.max_abs_comp
            );
        }
        s
    }
}

pub use super::layer_gemv::LayerSource;

/// Builds the golden text for a layer (seeded) quantized K-Means W(nw)A(na) with 0.5 %+0.5 %
/// outliers; about `vectors` dot products (chunks) in all, spread evenly over the seven
/// projections, tokens in order and all output channels of a token.
pub fn pe_line_golden(cfg: &Config, name: &str, seed: u64, vectors: u32, src: LayerSource) -> Result<LayerGolden> {
    let pe = cfg
        .pe_line
        .as_ref()
        .ok_or_else(|| anyhow!("config '{name}' has no [pe_line] section; --from-layer writes PE-line vectors"))?;
    let q = &cfg.quant;
    let d = PeLineDerived::new(q, pe);
    let lp = LayerProblem::new(QBits::from(q), seed, SYNTH_TOKENS, 0.005, src)?;
    let ql = &lp.ql;
    // Each projection's inputs as the quantized layer sees them (O and Down get the quantized
    // upstream results, as in real inference).
    let mut inputs: Vec<Vec<Vec<f32>>> = vec![vec![]; 7];
    for (p, x) in lp.calls() {
        inputs[p as usize].push(x);
    }

    let mut w = GoldenWriter::new(name, seed);
    w.header("pe_line", &["idx_a", "idx_w", "keep", "last"], &["y"]);
    let mut rng = Rng::new(seed);
    let budget = (vectors as u64).div_ceil(7).max(1);
    let k_max = pe.k_max as usize;
    let mut figures = Vec::new();
    for p in Proj::ALL.into_iter().filter(|&p| ql.lin[p as usize].w.rows > 0) {
        let lin = &ql.lin[p as usize];
        let lut = super::lut(&lin.a.ca, &lin.w.cw, q.nw);
        pe_line::load_lut(&mut w, &lut, q);
        let k = lin.w.cols;
        let mut f = ProjFigures {
            name: p.name(),
            k,
            chunks_per_dot: k.div_ceil(k_max),
            outliers_per_token: 0,
            ..Default::default()
        };
        let (mut sum_main, mut sum_comp, mut full_dots) = (0.0f64, 0.0f64, 0u64);
        'tokens: for x in &inputs[p as usize] {
            let t = lin.a.token(x);
            f.outliers_per_token = f.outliers_per_token.max(t.outliers.len());
            for r in 0..lin.w.rows {
                if f.dots >= budget {
                    break 'tokens;
                }
                let iw = lin.w.row_idx(r);
                let mut main = 0i64;
                for start in (0..k).step_by(k_max) {
                    let end = (start + k_max).min(k);
                    let y = super::dot(&lin.a.ca, &lin.w.cw, &t.ia[start..end], &iw[start..end]);
                    pe_line::write_dot(&mut w, &mut rng, &d, &t.ia[start..end], &iw[start..end], false);
                    w.out(&[hex_signed(y, d.y_bits)]);
                    main += y;
                    f.dots += 1;
                }
                let comp = quant::compensation(&lin.a.ca, &lin.w.cw, &t, iw);
                sum_main += main.abs() as f64;
                sum_comp += comp.abs() as f64;
                f.max_abs_comp = f.max_abs_comp.max(comp.abs());
                full_dots += 1;
            }
        }
        w.sync();
        f.mean_abs_main = sum_main / full_dots.max(1) as f64;
        f.mean_abs_comp = sum_comp / full_dots.max(1) as f64;
        figures.push(f);
    }
    Ok(LayerGolden { text: w.finish(), figures })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the file: LUT from `cfg` lines, indices from `in` beats, and checks every `out`
    /// against the pair-counting dot product (the PE line's method).
    #[test]
    fn layer_golden_replays_by_counting() {
        let cfg = Config::parse("[quant]\nnw = 4\nna = 3\n[pe_line]\nlanes = 8\nk_max = 300\n").unwrap();
        let g = pe_line_golden(&cfg, "t", 3, 60, LayerSource::Synthetic).unwrap();
        let q = &cfg.quant;
        let d = PeLineDerived::new(q, cfg.pe_line.as_ref().unwrap());
        let (mut lut, mut ia, mut iw) = (vec![0i64; q.bins() as usize], vec![], vec![]);
        let (mut outs, mut syncs) = (0, 0);
        let sext = |v: u64, bits: u32| ((v << (64 - bits)) as i64) >> (64 - bits);
        for line in g.text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.first().copied() {
                Some("cfg") => {
                    let a = usize::from_str_radix(f[1], 16).unwrap();
                    lut[a] = sext(u64::from_str_radix(f[2], 16).unwrap(), q.lut_bits());
                }
                Some("in") => {
                    let (a, b, keep) = (
                        u128::from_str_radix(f[1], 16).unwrap(),
                        u128::from_str_radix(f[2], 16).unwrap(),
                        u128::from_str_radix(f[3], 16).unwrap(),
                    );
                    for lane in 0..d.lanes {
                        if keep >> lane & 1 == 1 {
                            ia.push((a >> (lane * q.na) & ((1 << q.na) - 1)) as u32);
                            iw.push((b >> (lane * q.nw) & ((1 << q.nw) - 1)) as u32);
                        }
                    }
                }
                Some("out") => {
                    assert!(ia.len() <= 300);
                    let y = sext(u64::from_str_radix(f[1], 16).unwrap(), d.y_bits);
                    assert_eq!(y, crate::reference::dot_by_counting(&lut, q.nw, &ia, &iw), "line {line}");
                    ia.clear();
                    iw.clear();
                    outs += 1;
                }
                Some("sync") => syncs += 1,
                Some("timing") => panic!("no timing segments expected"),
                _ => {}
            }
        }
        assert_eq!(syncs, 7);
        assert!(outs >= 60, "{outs}");
        assert!(g.text.ends_with(&format!("end {outs}\n")));
        // K = 1024 (down_proj) is cut into chunks of at most k_max = 300.
        assert_eq!(g.figures[6].chunks_per_dot, 4);
        assert!(g.summary().contains("down_proj"));
    }

    #[test]
    fn a_checkpoint_layer_replaces_the_synthetic_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tiny.safetensors");
        crate::reference::checkpoint::write_tiny_llama(&p, 2, 3).unwrap();
        let cfg = Config::parse("[quant]\nnw = 4\nna = 3\n[pe_line]\nlanes = 8\nk_max = 300\n").unwrap();
        let src = |layer| LayerSource::Checkpoint { path: &p, layer, head_dim: 8 };
        let g1 = pe_line_golden(&cfg, "t", 3, 60, src(1)).unwrap();
        // The checkpoint's shapes (d = 32, ffn = 48), not the synthetic layer's.
        assert_eq!(g1.figures.iter().map(|f| f.k).collect::<Vec<_>>(), vec![32, 32, 32, 32, 32, 32, 48]);
        assert_ne!(g1.text, pe_line_golden(&cfg, "t", 3, 60, src(0)).unwrap().text);
        let e = pe_line_golden(&cfg, "t", 3, 60, src(2)).err().unwrap().to_string();
        assert!(e.starts_with("`--layer` = 2 is out of range") && e.ends_with("has decoder layers 0..=1"), "{e}");
    }

    #[test]
    fn from_layer_needs_a_pe_line_section() {
        let cfg = Config::parse("[encoder]\n").unwrap();
        let e = pe_line_golden(&cfg, "enc", 1, 10, LayerSource::Synthetic).err().unwrap().to_string();
        assert_eq!(e, "config 'enc' has no [pe_line] section; --from-layer writes PE-line vectors");
    }
}
