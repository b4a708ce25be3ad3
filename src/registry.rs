//! The block registry: the one list of block kinds kllm-gen knows.
//!
//! Every block kind (an index-domain block or its baseline) implements [`BlockKind`] in its own
//! module file, and [`BLOCKS`] lists them in the order designs, manifests and reports use.
//! Everything that needs to know which blocks exist — config validation, `design`, `explain`,
//! the manifest and params header, the CLI's `blocks` and `golden`, the sweep's known blocks,
//! baseline pairs and timed workloads — iterates over [`BLOCKS`]; no other file lists block
//! names. `docs/adding_a_block.md` walks through adding one.

use serde_json::Value;

use crate::config::Config;
use crate::golden::GoldenWriter;
use crate::verilog::{Design, Handle};

/// The timed workload whose cycles a sweep row reports: which timing segment of the block's
/// golden file, which manifest prediction, how many results it produces and how much work each
/// result is.
pub struct Workload {
    /// Index of the `timing` segment in the golden file (0-based).
    pub segment: usize,
    /// JSON pointer into the block's derived numbers.
    pub predicted: &'static str,
    pub items: u64,
    /// Work of one result (MACs of a dot product, values of a vector) from the config.
    pub per_item: fn(&Config) -> Option<u64>,
    pub unit: &'static str,
    /// The workload in words, for the report.
    pub kind: &'static str,
    /// Prefix of the row's workload text, followed by the per-item size.
    pub size: &'static str,
}

/// One kind of block. Implemented once per block, next to its generator.
pub trait BlockKind: Sync {
    /// Short name used by the golden file, the bench (`tb_<name>.cpp`), sweeps and reports.
    fn name(&self) -> &'static str;
    /// Module name of the block when it is a design's own top.
    fn top(&self) -> &'static str;
    /// The config section that parameterizes it (a baseline shares its index block's).
    fn section(&self) -> &'static str;
    /// Whether the config asks for this block.
    fn selected(&self, cfg: &Config) -> bool;
    /// Checks the block's section; called once, by `Config::validate`, when `selected`.
    /// Baselines have nothing of their own to check.
    fn validate(&self, _cfg: &Config) -> Result<(), String> {
        Ok(())
    }
    /// Every derived number (manifest, `kllm_params.h`, `explain`). Only called when selected.
    fn derived(&self, cfg: &Config) -> Value;
    /// Builds the block (and its sub-modules) into `d` under the module name `module`, and
    /// returns the handle another generator instantiates it by.
    fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle;
    /// Stimulus and expected outputs from the reference, with timed segments.
    fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter);
    /// The timed workload a sweep reports cycles and throughput for.
    fn workload(&self) -> Option<Workload> {
        None
    }
    /// The index-domain block this one is the conventional baseline of.
    fn baseline_of(&self) -> Option<&'static str> {
        None
    }
    /// Outlier fraction of the reference layer a sweep scores this block's point with (none:
    /// the block does not change the layer's numerics).
    fn accuracy_outliers(&self, _cfg: &Config) -> Option<f64> {
        None
    }
    /// Whether the block implements float mode (`quant.numerics` other than `"int"`); a float
    /// config that selects a block without it is refused by `Config::validate`.
    fn float_mode(&self) -> bool {
        false
    }
    /// The branch that bounds the timed workload (`workload`), for the sweep's table.
    fn bottleneck(&self, _derived: &Value) -> Option<String> {
        None
    }
    /// Multipliers in the datapath, for the sweep's table.
    fn multipliers(&self, derived: &Value) -> Option<u64> {
        derived.get("multipliers").and_then(Value::as_u64)
    }
}

/// Every block kind, in design order.
pub static BLOCKS: &[&dyn BlockKind] = &[
    &crate::pe_line::PeLineBlock,
    &crate::pe_baseline::DqPeLineBlock,
    &crate::encoder::EncoderBlock,
    &crate::orizuru::OrizuruBlock,
    &crate::orizuru::SorterBlock,
    &crate::nonlinear::NlMapBlock,
    &crate::nonlinear::NlMap2Block,
    &crate::nonlinear::NlReduceBlock,
    &crate::tile::TileBlock,
    &crate::tile_dq::DqTileBlock,
];

/// The block kind called `name`.
pub fn find(name: &str) -> Option<&'static dyn BlockKind> {
    BLOCKS.iter().copied().find(|b| b.name() == name)
}

/// Every block name, in registry order.
pub fn names() -> Vec<&'static str> {
    BLOCKS.iter().map(|b| b.name()).collect()
}

/// Every config section that selects a block, without repeats, in registry order.
pub fn sections() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = vec![];
    for b in BLOCKS {
        if !out.contains(&b.section()) {
            out.push(b.section());
        }
    }
    out
}

/// `(index block, baseline)` pairs the sweep compares.
pub fn baseline_pairs() -> Vec<(&'static str, &'static str)> {
    BLOCKS.iter().filter_map(|b| Some((b.baseline_of()?, b.name()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_baselines_name_a_registered_block() {
        let names = names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[i + 1..].contains(n), "{n} is registered twice");
        }
        for (idx, base) in baseline_pairs() {
            assert!(find(idx).is_some(), "{base} is the baseline of unknown block {idx}");
            assert_eq!(find(idx).unwrap().section(), find(base).unwrap().section());
        }
    }
}
