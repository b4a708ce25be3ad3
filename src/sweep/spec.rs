//! The sweep file: a base config, axes of values, run options and plots. Everything is checked
//! here, before any tool runs: an unknown axis, an empty list or a point whose config does not
//! validate is one line naming the axis (and the point), and nothing is started.
//!
//! ```toml
//! title = "PE line vs dequantize-multiply baseline"
//! [run]                      # every key optional
//! vectors = 200              # random vectors per block besides the timed segments
//! [base]                     # a config, exactly as in generators/*.toml
//! pe_line = { reduce_width = 8, k_max = 1024, baseline = true }
//! [axes]                     # the sweep is the cartesian product, first axis outermost
//! "quant.nw+quant.na" = [3, 4]   # `a+b`: both keys take the same value
//! "pe_line.lanes" = [16, 64]
//! ```
//!
//! With `grid = "one_at_a_time"` (top level) the points are instead the base point (every
//! axis at its first value) and, axis by axis, each further value with every other axis at its
//! first: 1 + Σ (values − 1) points, for axes too expensive to cross.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use crate::config::{in_range, Config};

/// Largest number of points a sweep may expand to: beyond it the file is almost certainly a
/// mistake (an extra axis), and hours of tool time would start.
pub const MAX_POINTS: usize = 256;

/// What is measured at every point; every step is on unless switched off.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunOptions {
    /// `verilator --lint-only -Wall` of every measured top.
    pub lint: bool,
    /// Yosys generic `synth`: cells, flip-flops, transistor estimate.
    pub synth: bool,
    /// `synth -flatten` (the default). `false`: `synth` keeps the hierarchy, each distinct
    /// module is synthesized once, and cells, flip-flops and transistors are the top's
    /// hierarchy totals (Σ instances × module counts, as `stat -top` reports them): minutes
    /// instead of hours for lines of hundreds of identical popcount units, at the price of no
    /// optimization across module boundaries. Left out of the serialized options (the cache
    /// key) while true, so existing caches stay valid.
    #[serde(skip_serializing_if = "is_true")]
    pub flatten: bool,
    /// Yosys `synth_ice40` (LUT4/DFF/carry/BRAM) and, where it fits, nextpnr-ice40 Fmax.
    pub ice40: bool,
    /// The Verilator bench against golden vectors, with the timed segments.
    pub sim: bool,
    /// The reference decoder layer's output error for the point's quantization.
    pub accuracy: bool,
    /// Random vectors per block besides the timed segments.
    pub vectors: u32,
    pub seed: u64,
    /// Wall-clock limit of one tool invocation, seconds.
    pub timeout_s: u64,
    /// Skip the iCE40 mapping of blocks with more generic cells than this: far beyond the
    /// 7680 logic cells of the largest iCE40, and `synth_ice40` of them takes many minutes.
    pub ice40_max_cells: u64,
    /// Only these blocks (default: every block a point's config selects).
    pub blocks: Vec<String>,
    // Flows added for larger designs (see `sweep::asic` and `sweep::ecp5`); off by default, and
    // left out of the serialized options (the cache key) while off, so existing caches stay valid.
    /// Standard cells: Yosys + ABC onto `liberty`, µm² and OpenSTA Fmax (needs opensta).
    #[serde(skip_serializing_if = "is_false")]
    pub asic: bool,
    /// The Liberty file of `asic` (default: the OSU 0.18 µm library of Debian qflow-tech-osu018).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub liberty: String,
    /// The clock of `asic`, ns (ABC's delay target and the OpenSTA clock; default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_period_ns: Option<f64>,
    /// ECP5 (LFE5U-85F) mapping and nextpnr-ecp5 Fmax with the same harness as iCE40.
    #[serde(skip_serializing_if = "is_false")]
    pub ecp5: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            lint: true,
            synth: true,
            flatten: true,
            ice40: true,
            sim: true,
            accuracy: true,
            vectors: 200,
            seed: 1,
            timeout_s: 1200,
            ice40_max_cells: 40_000,
            blocks: vec![],
            asic: false,
            liberty: String::new(),
            clock_period_ns: None,
            ecp5: false,
        }
    }
}

/// An extra plot: any two numeric result columns.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    pub x: String,
    pub y: String,
    #[serde(default)]
    pub log_x: bool,
    #[serde(default)]
    pub log_y: bool,
    /// Draw the Pareto front: smallest x for the largest y.
    #[serde(default)]
    pub pareto: bool,
    /// Output file stem (default `<y>_vs_<x>`).
    #[serde(default)]
    pub name: Option<String>,
}

/// How the axes expand to points.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Grid {
    /// Every combination of the axes' values (the default).
    #[default]
    Product,
    /// The base point (every axis at its first value), then each axis's further values alone.
    OneAtATime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    grid: Grid,
    #[serde(default)]
    run: RunOptions,
    #[serde(default)]
    base: toml::Table,
    #[serde(default)]
    axes: toml::Table,
    #[serde(default)]
    plot: Vec<PlotSpec>,
}

/// One axis: the keys it sets (one, or several tied together) and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// As written in the file, e.g. `quant.nw+quant.na`; also the result column's name.
    pub label: String,
    pub keys: Vec<(String, String)>,
    pub values: Vec<toml::Value>,
}

/// One point of the grid: a validated config and the axis values that made it.
#[derive(Clone, Debug)]
pub struct Point {
    pub index: usize,
    /// (axis label, value as written), in axis order.
    pub values: Vec<(String, String)>,
    pub config: Config,
}

impl Point {
    /// `p03`: stable within a sweep file, used in logs and tables.
    pub fn name(&self) -> String {
        format!("p{:02}", self.index)
    }

    /// `pe_line.lanes=16 quant.nw+quant.na=3`.
    pub fn describe(&self) -> String {
        self.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }
}

#[derive(Clone, Debug)]
pub struct Sweep {
    /// The file stem: reports go to `reports/<name>/`.
    pub name: String,
    pub path: PathBuf,
    pub title: String,
    pub run: RunOptions,
    pub axes: Vec<Axis>,
    pub grid: Grid,
    pub points: Vec<Point>,
    pub plots: Vec<PlotSpec>,
}

impl Sweep {
    /// Reads and checks a sweep file; errors are one line starting with the file's path.
    pub fn load(path: &Path) -> Result<Sweep> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read sweep file {}: {e}", path.display()))?;
        let name = crate::design::design_name(path);
        Sweep::parse(&text, &name, path).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, name: &str, path: &Path) -> Result<Sweep, String> {
        let file: SweepFile = toml::from_str(text).map_err(|e| crate::config::toml_error(text, &e))?;
        let run = file.run;
        in_range("run.vectors", run.vectors, 1, 100_000)?;
        in_range("run.timeout_s", run.timeout_s, 10, 24 * 3600)?;
        if let Some(p) = run.clock_period_ns.filter(|p| !(*p > 0.0 && *p <= 1000.0)) {
            return Err(format!("run.clock_period_ns = {p} is out of range: a clock period in ns in (0, 1000]"));
        }
        for b in &run.blocks {
            if crate::registry::find(b).is_none() {
                let known = crate::registry::names().join(", ");
                return Err(format!("`run.blocks` names unknown block `{b}` (allowed: {known})"));
            }
        }
        if file.axes.is_empty() {
            return Err("`[axes]` is empty: give at least one axis, e.g. \"pe_line.lanes\" = [16, 64]".into());
        }
        let mut axes = vec![];
        for (label, v) in &file.axes {
            axes.push(parse_axis(label, v, &file.base)?);
        }
        let picks = expand(&axes, file.grid)?;
        let mut points = vec![];
        for (index, picks) in picks.into_iter().enumerate() {
            let mut table = file.base.clone();
            let mut values = vec![];
            for (a, &p) in axes.iter().zip(&picks) {
                let v = &a.values[p];
                for (i, (section, key)) in a.keys.iter().enumerate() {
                    set(&mut table, section, key, part(v, i))?;
                }
                values.push((a.label.clone(), show(v)));
            }
            let config: Config = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| format!("point {}: {}", describe(&values), e.message().replace('\n', " ")))?;
            config.validate().map_err(|e| format!("point {}: {e}", describe(&values)))?;
            points.push(Point { index, values, config });
        }
        for p in &file.plot {
            for col in [&p.x, &p.y] {
                if !super::report::NUMERIC_COLUMNS.contains(&col.as_str()) {
                    return Err(format!(
                        "`plot` column `{col}` is not a numeric result column (allowed: {})",
                        super::report::NUMERIC_COLUMNS.join(", ")
                    ));
                }
            }
        }
        Ok(Sweep {
            name: name.to_string(),
            path: path.to_path_buf(),
            title: file.title.unwrap_or_else(|| format!("sweep {name}")),
            run,
            axes,
            grid: file.grid,
            points,
            plots: file.plot,
        })
    }
}

/// Every point as the index of its value on each axis, in point order.
fn expand(axes: &[Axis], grid: Grid) -> Result<Vec<Vec<usize>>, String> {
    let total = match grid {
        // Checked: 64 two-value axes would wrap a plain product to 0 points.
        Grid::Product => axes.iter().try_fold(1usize, |t, a| t.checked_mul(a.values.len())),
        Grid::OneAtATime => Some(1 + axes.iter().map(|a| a.values.len() - 1).sum::<usize>()),
    };
    let Some(total) = total else {
        return Err(format!("the axes expand to more than {} points (allowed 1..={MAX_POINTS}); split the sweep", usize::MAX));
    };
    if total > MAX_POINTS {
        return Err(format!("the axes expand to {total} points (allowed 1..={MAX_POINTS}); split the sweep"));
    }
    let base = vec![0; axes.len()];
    Ok(match grid {
        Grid::Product => (0..total)
            .map(|index| {
                // Last axis varies fastest.
                let mut picks = base.clone();
                let mut rest = index;
                for (i, a) in axes.iter().enumerate().rev() {
                    picks[i] = rest % a.values.len();
                    rest /= a.values.len();
                }
                picks
            })
            .collect(),
        Grid::OneAtATime => std::iter::once(base.clone())
            .chain(axes.iter().enumerate().flat_map(|(i, a)| {
                let base = base.clone();
                (1..a.values.len()).map(move |j| {
                    let mut picks = base.clone();
                    picks[i] = j;
                    picks
                })
            }))
            .collect(),
    })
}

fn describe(values: &[(String, String)]) -> String {
    values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// A value as the tables show it; a tuple of a tied axis as its elements joined by `/`
/// (`256/16` for `pe_line.lanes+pe_line.reduce_width`).
fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join("/"),
        other => other.to_string(),
    }
}

/// The value the `i`-th key of an axis takes: a tuple's `i`-th element, or the one value all
/// tied keys share.
fn part(v: &toml::Value, i: usize) -> toml::Value {
    match v {
        toml::Value::Array(a) => a[i].clone(),
        other => other.clone(),
    }
}

/// Checks one axis on its own: keys are `section.key`, the list is non-empty without repeats,
/// and every value deserializes into the base config at that key (so an unknown key or a wrong
/// type is reported against the axis, not against some point).
fn parse_axis(label: &str, v: &toml::Value, base: &toml::Table) -> Result<Axis, String> {
    let mut keys = vec![];
    for k in label.split('+') {
        let parts: Vec<&str> = k.trim().split('.').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "axis `{label}`: `{k}` must name a config key as section.key (e.g. pe_line.lanes)"
            ));
        }
        keys.push((parts[0].to_string(), parts[1].to_string()));
    }
    let toml::Value::Array(values) = v else {
        return Err(format!("axis `{label}` must be a list of values, e.g. [16, 64]"));
    };
    if values.is_empty() {
        return Err(format!("axis `{label}` has an empty list of values (give at least one)"));
    }
    for (i, a) in values.iter().enumerate() {
        if values[..i].contains(a) {
            return Err(format!("axis `{label}` lists {} twice", show(a)));
        }
        let scalar = |x: &toml::Value| !matches!(x, toml::Value::Array(_) | toml::Value::Table(_));
        match a {
            // A tuple gives each tied key its own value, in the label's order.
            toml::Value::Array(t) if keys.len() > 1 && t.len() == keys.len() && t.iter().all(scalar) => {}
            toml::Value::Array(_) if keys.len() > 1 => {
                return Err(format!(
                    "axis `{label}`: value {a} must be one value for all {n} keys or a list of {n} numbers, strings or booleans, one per key",
                    n = keys.len()
                ))
            }
            _ if !scalar(a) => return Err(format!("axis `{label}`: value {a} must be a number, string or boolean")),
            _ => {}
        }
    }
    for (i, (section, key)) in keys.iter().enumerate() {
        for a in values {
            let a = &part(a, i);
            let mut t = base.clone();
            set(&mut t, section, key, a.clone()).map_err(|e| format!("axis `{label}`: {e}"))?;
            let r: Result<Config, _> = toml::Value::Table(t).try_into();
            if let Err(e) = r {
                let msg = e.message().replace('\n', " ");
                return Err(if msg.contains("unknown field") {
                    format!("axis `{label}` is not a config key: {msg}")
                } else {
                    format!("axis `{label}` value {}: {msg}", show(a))
                });
            }
        }
    }
    Ok(Axis { label: label.to_string(), keys, values: values.clone() })
}

fn set(t: &mut toml::Table, section: &str, key: &str, v: toml::Value) -> Result<(), String> {
    let s = t.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match s {
        toml::Value::Table(st) => {
            st.insert(key.to_string(), v);
            Ok(())
        }
        _ => Err(format!("`{section}` in [base] is not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Sweep, String> {
        Sweep::parse(text, "t", Path::new("t.toml"))
    }

    const BASE: &str = "[base]\npe_line = { k_max = 256 }\n";

    #[test]
    fn cartesian_product_last_axis_fastest_and_tied_keys() {
        let s = parse(&format!("{BASE}[axes]\n\"quant.nw+quant.na\" = [3, 4]\n\"pe_line.lanes\" = [8, 16, 32]\n")).unwrap();
        assert_eq!(s.points.len(), 6);
        let p = &s.points[4];
        assert_eq!(p.describe(), "quant.nw+quant.na=4 pe_line.lanes=16");
        assert_eq!((p.config.quant.nw, p.config.quant.na), (4, 4));
        assert_eq!(p.config.pe_line.as_ref().unwrap().lanes, 16);
        assert_eq!(p.config.pe_line.as_ref().unwrap().k_max, 256);
        assert_eq!(p.name(), "p04");
    }

    /// `grid = "one_at_a_time"`: the base point (first values), then each axis's further
    /// values alone, axis by axis; 1 + 2 + 1 + 0 = 4 points where the product would be 12.
    #[test]
    fn one_at_a_time_grid_varies_one_axis_from_the_base_point() {
        let s = parse(&format!(
            "grid = \"one_at_a_time\"\n{BASE}[axes]\n\"pe_line.lanes\" = [8, 4, 16]\n\"quant.nw+quant.na\" = [3, 4]\n\"pe_line.reduce_width\" = [4]\n"
        ))
        .unwrap();
        assert_eq!(s.grid, Grid::OneAtATime);
        let got: Vec<String> = s.points.iter().map(|p| p.describe()).collect();
        assert_eq!(
            got,
            [
                "pe_line.lanes=8 quant.nw+quant.na=3 pe_line.reduce_width=4",
                "pe_line.lanes=4 quant.nw+quant.na=3 pe_line.reduce_width=4",
                "pe_line.lanes=16 quant.nw+quant.na=3 pe_line.reduce_width=4",
                "pe_line.lanes=8 quant.nw+quant.na=4 pe_line.reduce_width=4",
            ]
        );
        let p = &s.points[3];
        assert_eq!((p.config.quant.nw, p.config.quant.na, p.config.pe_line.as_ref().unwrap().lanes), (4, 4, 8));
        assert_eq!(p.name(), "p03");
        // The default (and `grid = "product"`) is still every combination.
        let axes = "[axes]\n\"pe_line.lanes\" = [8, 4, 16]\n\"quant.nw+quant.na\" = [3, 4]\n";
        assert_eq!(parse(&format!("{BASE}{axes}")).unwrap().points.len(), 6);
        assert_eq!(parse(&format!("grid = \"product\"\n{BASE}{axes}")).unwrap().points.len(), 6);
        // A point the config rejects is named, as in a product grid.
        let e = parse(&format!("grid = \"one_at_a_time\"\n{BASE}[axes]\n\"pe_line.lanes\" = [8, 1000]\n")).unwrap_err();
        assert_eq!(e, "point pe_line.lanes=1000: `pe_line.lanes` = 1000 is out of range (allowed 2..=512)");
        let e = parse(&format!("grid = \"diagonal\"\n{BASE}{axes}")).unwrap_err();
        assert!(e.starts_with("line 1") && e.contains("unknown variant `diagonal`, expected `product` or `one_at_a_time`"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    /// A tied axis may give each key its own value: `[lanes, reduce_width]` tuples, shown as
    /// `256/16`; a tuple of the wrong length, or on a one-key axis, is one line.
    #[test]
    fn tuple_values_give_each_tied_key_its_own_value() {
        let s = parse(&format!(
            "{BASE}[axes]\n\"quant.nw+quant.na\" = [3, 4]\n\"pe_line.lanes+pe_line.reduce_width\" = [[16, 8], [64, 8], [128, 16]]\n"
        ))
        .unwrap();
        assert_eq!(s.points.len(), 6);
        let p = &s.points[5];
        assert_eq!(p.describe(), "quant.nw+quant.na=4 pe_line.lanes+pe_line.reduce_width=128/16");
        let pe = p.config.pe_line.as_ref().unwrap();
        assert_eq!((p.config.quant.nw, p.config.quant.na, pe.lanes, pe.reduce_width), (4, 4, 128, 16));
        assert_eq!(s.points[1].config.pe_line.as_ref().unwrap().reduce_width, 8);
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes+pe_line.reduce_width\" = [[16, 8, 4]]\n")).unwrap_err();
        assert_eq!(e, "axis `pe_line.lanes+pe_line.reduce_width`: value [16, 8, 4] must be one value for all 2 keys or a list of 2 numbers, strings or booleans, one per key");
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes\" = [[16, 8]]\n")).unwrap_err();
        assert_eq!(e, "axis `pe_line.lanes`: value [16, 8] must be a number, string or boolean");
        // Each element is checked against its own key.
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes+pe_line.reduce_width\" = [[16, \"x\"]]\n")).unwrap_err();
        assert!(e.starts_with("axis `pe_line.lanes+pe_line.reduce_width` value x: invalid type"), "{e}");
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes+pe_line.reduce_width\" = [[16, 8], [16, 8]]\n")).unwrap_err();
        assert_eq!(e, "axis `pe_line.lanes+pe_line.reduce_width` lists 16/8 twice");
    }

    /// `run.flatten` is true unless set, and left out of the serialized options (the row
    /// cache's key) while true, so flat sweeps keep their cached rows; false is in the key.
    #[test]
    fn flatten_defaults_to_true_and_stays_out_of_the_cache_key_while_true() {
        let axes = "[axes]\n\"pe_line.lanes\" = [8]\n";
        let flat = parse(&format!("{BASE}{axes}")).unwrap();
        assert!(flat.run.flatten);
        let key = serde_json::to_string(&flat.run).unwrap();
        assert!(!key.contains("flatten"), "{key}");
        let hier = parse(&format!("[run]\nflatten = false\n{BASE}{axes}")).unwrap();
        assert!(!hier.run.flatten);
        assert!(serde_json::to_string(&hier.run).unwrap().contains("\"flatten\":false"));
        let e = parse(&format!("[run]\nflatten = \"no\"\n{BASE}{axes}")).unwrap_err();
        assert!(e.starts_with("line 2") && e.contains("invalid type: string \"no\", expected a boolean"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn unknown_axis_is_one_line_naming_it() {
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanez\" = [8]\n")).unwrap_err();
        assert!(e.starts_with("axis `pe_line.lanez` is not a config key: unknown field `lanez`"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse(&format!("{BASE}[axes]\n\"pe_lin.lanes\" = [8]\n")).unwrap_err();
        assert!(e.starts_with("axis `pe_lin.lanes` is not a config key"), "{e}");
        let e = parse(&format!("{BASE}[axes]\nlanes = [8]\n")).unwrap_err();
        assert!(e.contains("must name a config key as section.key"), "{e}");
    }

    #[test]
    fn empty_list_repeats_and_no_axes_are_rejected() {
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes\" = []\n")).unwrap_err();
        assert_eq!(e, "axis `pe_line.lanes` has an empty list of values (give at least one)");
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes\" = [8, 8]\n")).unwrap_err();
        assert_eq!(e, "axis `pe_line.lanes` lists 8 twice");
        let e = parse(BASE).unwrap_err();
        assert!(e.starts_with("`[axes]` is empty"), "{e}");
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes\" = 8\n")).unwrap_err();
        assert!(e.contains("must be a list"), "{e}");
    }

    #[test]
    fn out_of_range_value_names_the_point_and_the_range() {
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes\" = [8, 1000]\n")).unwrap_err();
        assert_eq!(e, "point pe_line.lanes=1000: `pe_line.lanes` = 1000 is out of range (allowed 2..=512)");
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes\" = [\"x\"]\n")).unwrap_err();
        assert!(e.starts_with("axis `pe_line.lanes` value x: invalid type"), "{e}");
    }

    #[test]
    fn run_options_are_checked() {
        let e = parse(&format!("[run]\nvectorz = 3\n{BASE}[axes]\n\"pe_line.lanes\" = [8]\n")).unwrap_err();
        assert!(e.contains("unknown field `vectorz`") && e.starts_with("line 2"), "{e}");
        let e = parse(&format!("[run]\nblocks = [\"pe\"]\n{BASE}[axes]\n\"pe_line.lanes\" = [8]\n")).unwrap_err();
        assert!(e.starts_with("`run.blocks` names unknown block `pe`"), "{e}");
        let e = parse(&format!("{BASE}[axes]\n\"pe_line.lanes\" = [8]\n[[plot]]\nx = \"cells\"\ny = \"speed\"\n")).unwrap_err();
        assert!(e.starts_with("`plot` column `speed` is not a numeric result column"), "{e}");
    }

    #[test]
    fn too_many_points_is_rejected() {
        let many: Vec<String> = (1..=20).map(|v| v.to_string()).collect();
        let e = parse(&format!(
            "{BASE}[axes]\n\"pe_line.lanes\" = [{}]\n\"pe_line.k_max\" = [{}]\n",
            many.join(","),
            many.iter().map(|v| format!("{}", v.parse::<u32>().unwrap() * 64)).collect::<Vec<_>>().join(",")
        ))
        .unwrap_err();
        assert!(e.starts_with("the axes expand to 400 points"), "{e}");
        // One at a time, 300 values on one axis are 300 points: still too many.
        let many: Vec<String> = (1..=300).map(|v| (v * 64).to_string()).collect();
        let e = parse(&format!("grid = \"one_at_a_time\"\n{BASE}[axes]\n\"pe_line.k_max\" = [{}]\n", many.join(","))).unwrap_err();
        assert!(e.starts_with("the axes expand to 300 points (allowed 1..=256)"), "{e}");
    }
}
