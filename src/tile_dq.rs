//! The dequantize-multiply tile: `kllm_tile` with its P PE lines replaced by the baseline line
//! of `src/pe_baseline.rs` (`lanes` codebook lookups and multipliers per line, a pipelined adder
//! tree, an accumulator) at the same lanes, so the same beats per row. Everything else — the
//! encoder, Orizuru, the outlier slots, the compensation units, the join, the weight buffer —
//! is the tile's own, unchanged.
//!
//! Two ways to get it:
//! - `[tile] line = "dequant"`: the design's `kllm_tile` has dequantize-multiply lines (the
//!   `tile` block, checked by `tb_tile.cpp` like any tile);
//! - `[tile] baseline = true`: the design also gets `kllm_dq_tile`, the same tile with
//!   dequantize-multiply lines, as the `dq_tile` block, registered as the tile's baseline
//!   (`baseline_of`), so sweeps print index / baseline ratios for tiles as they do for lines.
//!
//! The results are the same integers bit for bit (the baseline line's `Y` equals the PE line's
//! with `LUT = ca·cw`, SPEC's "Dequantize-multiply baseline"), so the golden file's stimulus and
//! expected results are the index tile's; only its timed segments' predicted cycles differ,
//! from the baseline line's own model (`pe_baseline::timing::Line`) stepped inside the tile's
//! control model. The baseline lines take their codebooks from the tile's ca and cw cfg
//! regions (which the tile loads anyway for the residuals and the compensation); LUT writes
//! (region 0) have no table to go to and are ignored.

use serde::{Deserialize, Serialize};

use crate::config::{Config, QuantConfig};
use crate::golden::GoldenWriter;
use crate::pe_line::PeLineConfig;
use crate::registry::{BlockKind, Workload};
use crate::tile::{TileConfig, TileDerived, REGION_CA, REGION_CW};
use crate::verilog::{lit, Design, Handle, Module};

/// The kind of a tile's PE lines.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// `kllm_pe_line`: index counting and weighing (KLLM).
    #[default]
    Index,
    /// `kllm_dq_pe_line`: dequantize-multiply baseline at the same lanes.
    Dequant,
}

impl LineKind {
    pub fn is_index(&self) -> bool {
        *self == LineKind::Index
    }
}

pub fn is_false(b: &bool) -> bool {
    !*b
}

/// The keys of `[tile]` this file adds; one line naming the key and the allowed values.
pub fn validate(c: &TileConfig, q: &QuantConfig) -> Result<(), String> {
    if (c.baseline || c.line == LineKind::Dequant) && q.float().is_some() {
        let key = if c.baseline { "`tile.baseline` = true" } else { "`tile.line` = \"dequant\"" };
        return Err(format!(
            "{key}: the tile's dequantize-multiply lines are built for integer mode only (allowed with quant.numerics = \"int\"; in float mode use line = \"index\" and baseline = false)"
        ));
    }
    if c.baseline && c.line == LineKind::Dequant {
        return Err(
            "`tile.baseline` = true needs `tile.line` = \"index\" (allowed: baseline = true with index lines, \
             or line = \"dequant\" alone: the baseline is the tile with dequantize-multiply lines)"
                .into(),
        );
    }
    Ok(())
}

/// The same tile with dequantize-multiply lines (and no baseline of its own).
pub fn dequant(c: &TileConfig) -> TileConfig {
    TileConfig { line: LineKind::Dequant, baseline: false, ..c.clone() }
}

/// `cfg` with its tile's lines made dequantize-multiply (what `dq_tile` is built and checked
/// from).
pub fn dequant_config(cfg: &Config) -> Config {
    let mut c = cfg.clone();
    c.tile = cfg.tile.as_ref().map(dequant);
    c
}

/// A tile's dequantize-multiply line module, named by every parameter of its body.
pub fn line_module(d: &mut Design, q: &QuantConfig, pc: &PeLineConfig) -> Handle {
    let name = format!("kllm_dq_pe_line_a{}w{}_c{}x{}_l{}_k{}", q.na, q.nw, q.ac_bits, q.wc_bits, pc.lanes, pc.k_max);
    crate::pe_baseline::generate(d, q, pc, &name)
}

/// The wires a tile's baseline lines take as their `cfg_we`, `cfg_addr`, `cfg_wdata`.
pub const CFG_WIRES: (&str, &str, &str) = ("cfg_dq_we", "cfg_dq_addr", "cfg_dq_wdata");

/// Declares `CFG_WIRES` in the tile: writes to the tile's ca and cw regions also go to every
/// line's codebooks (address MSB 0: ca, 1: cw, as `kllm_dq_pe_line` decodes it).
pub fn cfg_wires(m: &mut Module, q: &QuantConfig, pc: &PeLineConfig, offset_bits: u32) {
    let d = crate::pe_baseline::PeBaselineDerived::new(q, pc);
    let (aw, dw) = (d.cfg_addr_bits, d.cfg_data_bits);
    assert!(aw - 1 <= offset_bits, "the codebook index fits the tile's cfg offset");
    assert_eq!(REGION_CW, REGION_CA | 1, "ca and cw regions differ in the region's low bit");
    m.comment(
        "Dequantize-multiply lines: the ca and cw regions also load every line's codebooks (the\n\
         line's address MSB picks cw); LUT writes have no table here and are ignored.",
    );
    let (we, addr, data) = CFG_WIRES;
    m.wire_eq(we, 1, format!("cfg_we & (cfg_region[2:1] == {})", lit(2, REGION_CA >> 1)));
    m.wire_eq(addr, aw, format!("{{cfg_region[0], cfg_off[{}:0]}}", aw - 2));
    m.wire_signed_eq(data, dw, format!("cfg_wdata[{}:0]", dw - 1));
    // The cfg port is the index tile's (a LUT entry is wider than a centroid, its offset longer
    // than a codebook index), so the same golden file drives both tiles; the bits only LUT
    // writes use go to a sink (Verilator's lint ignores signals named *unused*).
    let tile_dw = q.lut_bits();
    let mut spare = vec![format!("cfg_off[{}:{}]", offset_bits - 1, aw - 1)];
    if tile_dw > dw {
        spare.insert(0, format!("cfg_wdata[{}:{dw}]", tile_dw - 1));
    }
    let spare_w = (offset_bits - (aw - 1)) + tile_dw.saturating_sub(dw);
    m.wire_eq("cfg_lut_bits_unused", spare_w, format!("{{{}}}", spare.join(", ")));
}

/// One line of the tile's cycle model: the index line's counting core or the baseline line,
/// each stepped by its own model.
pub enum LineModel {
    Index(crate::count_weigh::timing::Core),
    Dequant(crate::pe_baseline::timing::Line),
}

impl LineModel {
    pub fn new(d: &TileDerived) -> Self {
        match &d.dq {
            None => LineModel::Index(crate::count_weigh::timing::Core::new(&d.line.core)),
            Some(b) => LineModel::Dequant(crate::pe_baseline::timing::Line::new(b)),
        }
    }
    pub fn s_ready(&self) -> bool {
        match self {
            LineModel::Index(c) => c.s_ready(),
            LineModel::Dequant(l) => l.s_ready(),
        }
    }
    pub fn m_valid(&self) -> bool {
        match self {
            LineModel::Index(c) => c.m_valid(),
            LineModel::Dequant(l) => l.m_valid(),
        }
    }
    pub fn edge(&mut self, in_fire: bool, in_last: bool, pop: bool) {
        match self {
            LineModel::Index(c) => c.edge(in_fire, in_last, pop),
            LineModel::Dequant(l) => l.edge(in_fire, in_last, pop),
        }
    }
}

/// A doc line for the tile module with dequantize-multiply lines.
pub fn doc(m: &mut Module, c: &TileConfig) {
    if c.line == LineKind::Dequant {
        m.doc(format!(
            "PE lines: dequantize-multiply (kllm_dq_pe_line: {} codebook lookups and multipliers per line), \
             the same results as index lines.",
            c.lanes
        ));
    }
}

pub const TOP: &str = "kllm_dq_tile";

/// Registry entry: the tile with dequantize-multiply lines, selected by `[tile] baseline = true`.
pub struct DqTileBlock;

impl BlockKind for DqTileBlock {
    fn name(&self) -> &'static str {
        "dq_tile"
    }
    fn top(&self) -> &'static str {
        TOP
    }
    fn section(&self) -> &'static str {
        "tile"
    }
    fn selected(&self, cfg: &Config) -> bool {
        cfg.tile.as_ref().is_some_and(|c| c.baseline)
    }
    fn derived(&self, cfg: &Config) -> serde_json::Value {
        serde_json::to_value(TileDerived::new(&cfg.quant, &dequant(crate::tile::section(cfg)))).unwrap()
    }
    fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle {
        crate::tile::generate(d, &cfg.quant, &dequant(crate::tile::section(cfg)), module)
    }
    fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
        crate::tile::golden_block("dq_tile", &dequant_config(cfg), vectors, seed, w)
    }
    fn workload(&self) -> Option<Workload> {
        crate::tile::TileBlock.workload()
    }
    fn baseline_of(&self) -> Option<&'static str> {
        Some("tile")
    }
    fn bottleneck(&self, derived: &serde_json::Value) -> Option<String> {
        crate::tile::TileBlock.bottleneck(derived)
    }
    fn multipliers(&self, derived: &serde_json::Value) -> Option<u64> {
        crate::tile::TileBlock.multipliers(derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuantConfig;
    use crate::tile::timing;

    const SMALL: &str = "[quant]\nnw = 2\nna = 2\n[tile]\nlines = 2\nlanes = 4\nreduce_width = 4\ncomp_macs = 2\nk_max = 256\nk = 8\nradix = 4\n";

    /// Back to back, a dequantize-multiply tile's groups leave one every max(beats, comp_steps)
    /// cycles: no weighing branch, so one-beat rows are not held to the index line's weigh
    /// steps. Stepped through the tile's control with the baseline line's own model.
    #[test]
    fn dequant_groups_leave_every_max_of_beats_and_compensation() {
        let shapes = [
            (QuantConfig::default(), TileConfig::default()),
            (QuantConfig { na: 2, nw: 2, ..QuantConfig::default() }, TileConfig { lines: 2, lanes: 4, reduce_width: 4, comp_macs: 2, k_max: 256, k: 8, radix: 4, ..TileConfig::default() }),
            (QuantConfig { na: 3, nw: 4, ..QuantConfig::default() }, TileConfig { lines: 4, lanes: 64, reduce_width: 16, comp_macs: 8, k_max: 4096, k: 20, radix: 16, ..TileConfig::default() }),
            (QuantConfig::default(), TileConfig { lines: 3, lanes: 8, reduce_width: 256, comp_macs: 6, k_max: 64, k: 3, ..TileConfig::default() }),
        ];
        for (q, c) in shapes {
            let c = dequant(&c);
            c.validate(&q).unwrap();
            let d = TileDerived::new(&q, &c);
            assert_eq!(d.weigh_steps, 1);
            for n in 1..=3 * d.line.weigh_steps.max(d.comp_steps) {
                if n * c.lanes > c.k_max {
                    break;
                }
                let (_, outs) = timing::schedule(&d, &[(n * c.lanes, 40 * c.lines)]);
                let want = n.max(d.comp_steps) as u64;
                for i in 20..40 {
                    assert_eq!(outs[i] - outs[i - 1], want, "{c:?} n={n}");
                }
            }
        }
    }

    /// The default tile is weigh-bound on one-beat rows (32 weigh steps per row): its
    /// dequantize-multiply twin runs them compensation-bound (2 steps), 16 times as fast back to
    /// back; on K = k_max (64 beats per row) both run one group per 64 cycles.
    #[test]
    fn dequant_tile_skips_the_weighing_bound_of_short_rows() {
        let q = QuantConfig::default();
        let idx = TileDerived::new(&q, &TileConfig::default());
        let dq = TileDerived::new(&q, &dequant(&TileConfig::default()));
        assert_eq!((idx.group_interval_one_beat, dq.group_interval_one_beat), (32, 2));
        assert_eq!((idx.group_interval_kmax, dq.group_interval_kmax), (64, 64));
        // 16 groups of one-beat rows: the index tile waits 32 weigh steps per group, the
        // dequantize-multiply tile's vector phase (under 100 cycles) dominates.
        let (bi, bd) = (timing::back_to_back(&idx, 16, 64), timing::back_to_back(&dq, 16, 64));
        assert!(bi >= 16 * 32 && bd < 120, "{bi} {bd}");
        // Counting-bound rows (64 beats): the same cycles back to back.
        assert_eq!(timing::back_to_back(&idx, 1024, 64), timing::back_to_back(&dq, 1024, 64));
        assert!(dq.bottleneck_one_beat_rows64.starts_with("activation input"), "{}", dq.bottleneck_one_beat_rows64);
        assert!(idx.bottleneck_one_beat_rows64.starts_with("weighing"), "{}", idx.bottleneck_one_beat_rows64);
    }

    /// `dq_tile`'s golden file is the tile's with its own name and its own predicted cycles:
    /// the same stimulus and expected results, line for line.
    #[test]
    fn dq_tile_golden_is_the_tiles_but_for_name_and_cycles() {
        let cfg = Config::parse(&format!("{SMALL}baseline = true\n")).unwrap();
        let blocks = crate::design::blocks(&cfg);
        let names: Vec<&str> = blocks.iter().map(|b| b.name).collect();
        assert_eq!(names, ["tile", "dq_tile"]);
        let text = |b: &crate::design::Block| crate::design::golden_text(&cfg, "t", b, 30, 7);
        let (a, b) = (text(&blocks[0]), text(&blocks[1]));
        let body = |t: &str| t.lines().filter(|l| !l.starts_with('#') && !l.starts_with("timing")).map(String::from).collect::<Vec<_>>();
        assert!(body(&a).len() > 1000);
        assert_eq!(body(&a), body(&b));
        let timings = |t: &str| t.lines().filter(|l| l.starts_with("timing")).count();
        assert_eq!(timings(&a), timings(&b));
        assert!(b.starts_with("# kllm-gen golden v1 block=dq_tile "), "{}", &b[..60]);
        // tile_small's dequantize-multiply lines have a shorter latency (5 cycles against 14):
        // every timed segment predicts 2 cycles fewer for the same compensation-bound groups.
        let cycles = |t: &str| t.lines().filter_map(|l| l.strip_prefix("timing ")?.parse::<u64>().ok()).collect::<Vec<_>>();
        let (ca, cb) = (cycles(&a), cycles(&b));
        assert_eq!(ca.len(), 27);
        assert!(ca.iter().zip(&cb).all(|(x, y)| x == &(y + 2)), "{ca:?} vs {cb:?}");
    }

    /// The baseline tile's top uses dequantize-multiply lines only; the index tile's only PE lines;
    /// both pass the design check; the registry pairs them; the multipliers count lanes.
    #[test]
    fn baseline_design_has_both_tiles_and_the_registry_pairs_them() {
        assert!(crate::registry::baseline_pairs().contains(&("tile", "dq_tile")));
        let cfg = Config::parse(&format!("{SMALL}baseline = true\n")).unwrap();
        let r = crate::design::render(&cfg, "t").unwrap();
        let file = |n: &str| &r.files.iter().find(|(f, _)| f == n).unwrap_or_else(|| panic!("no {n}")).1;
        let dq = file("kllm_dq_tile.v");
        assert!(dq.contains("kllm_dq_pe_line_a2w2_c8x8_l4_k256 u_line"), "dequant line instance");
        assert!(!dq.contains("kllm_pe_line_"));
        let idx = file("kllm_tile.v");
        assert!(idx.contains("kllm_pe_line_a2w2_c8x8_l4_r4_k256_p2 u_line") && !idx.contains("kllm_dq_pe_line"));
        let der = DqTileBlock.derived(&cfg);
        assert_eq!(der["line"], "dequant");
        assert_eq!(DqTileBlock.multipliers(&der), Some(2 * (4 + 2)));
        assert_eq!(crate::tile::TileBlock.multipliers(&crate::tile::TileBlock.derived(&cfg)), Some(2 * (4 + 2)));
    }

    /// The new keys are left out of a config's serialization at their defaults, so every
    /// existing config keeps its hash (and its generated files).
    #[test]
    fn default_line_and_baseline_keep_config_hashes() {
        let a = Config::parse(SMALL).unwrap();
        let b = Config::parse(&format!("{SMALL}line = \"index\"\nbaseline = false\n")).unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = Config::parse(&format!("{SMALL}line = \"dequant\"\n")).unwrap();
        assert_ne!(a.hash(), c.hash());
    }
}
