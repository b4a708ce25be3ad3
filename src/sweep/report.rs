//! The sweep's outputs: `results.csv` (every column, one row per point and block, FAILED rows
//! included), `results.md` (the same for reading, the index/baseline ratios, the failures and
//! the plots), `summary.md` (the paper-style ratio table the README embeds) and the SVG plots.

use super::flow::Tools;
use super::spec::Sweep;
use super::Row;

/// Columns a `[[plot]]` may use.
pub const NUMERIC_COLUMNS: &[&str] = &[
    "cells", "ffs", "transistors", "ice40_lut4", "ice40_dff", "ice40_carry", "ice40_bram", "fmax_mhz",
    "comparators", "multipliers", "register_bits", "cycles_predicted", "cycles_measured", "cycles_per_item", "throughput",
    "throughput_per_kcell", "throughput_per_mtransistor", "layer_err_kmeans", "layer_err_int", "seconds",
    "asic_area_um2", "asic_fmax_mhz", "throughput_per_mm2", "ecp5_lut4", "ecp5_ff", "ecp5_fmax_mhz",
];

/// The value of a numeric column, derived columns included.
pub fn numeric(r: &Row, col: &str) -> Option<f64> {
    let f = |v: Option<u64>| v.map(|x| x as f64);
    match col {
        "cells" => f(r.cells),
        "ffs" => f(r.ffs),
        "transistors" => f(r.transistors),
        "ice40_lut4" => f(r.ice40_lut4),
        "ice40_dff" => f(r.ice40_dff),
        "ice40_carry" => f(r.ice40_carry),
        "ice40_bram" => f(r.ice40_bram),
        "fmax_mhz" => r.fmax_mhz,
        "comparators" => f(r.comparators),
        "multipliers" => f(r.multipliers),
        "register_bits" => f(r.register_bits),
        "cycles_predicted" => f(r.cycles_predicted),
        "cycles_measured" => f(r.cycles_measured),
        "cycles_per_item" => Some(r.cycles_measured? as f64 / super::flow::workload(&r.block)?.items as f64),
        "throughput" => r.throughput,
        "throughput_per_kcell" => Some(r.throughput? * 1e3 / r.cells? as f64),
        "throughput_per_mtransistor" => Some(r.throughput? * 1e6 / r.transistors? as f64),
        "layer_err_kmeans" => r.layer_err_kmeans,
        "layer_err_int" => r.layer_err_int,
        "seconds" => Some(r.seconds),
        "asic_area_um2" => r.asic_area_um2,
        "asic_fmax_mhz" => r.asic_fmax_mhz,
        "throughput_per_mm2" => super::asic::throughput_per_mm2(r),
        "ecp5_lut4" => f(r.ecp5_lut4),
        "ecp5_ff" => f(r.ecp5_ff),
        "ecp5_fmax_mhz" => r.ecp5_fmax_mhz,
        _ => None,
    }
}


fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_default()
}

pub fn csv(sweep: &Sweep, rows: &[Row]) -> String {
    let mut w = csv::Writer::from_writer(vec![]);
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(sweep.axes.iter().map(|a| a.label.clone()));
    header.extend(
        [
            "block", "top", "status", "reason", "cells", "ffs", "transistors", "ice40_lut4", "ice40_dff",
            "ice40_carry", "ice40_bram", "ice40_fit", "fmax_mhz", "comparators", "multipliers", "register_bits",
            "workload", "cycles_predicted", "cycles_measured", "cycles_match", "cycles_per_item", "throughput",
            "throughput_unit",
            "throughput_per_kcell", "throughput_per_mtransistor", "sim_outputs", "layer_err_kmeans",
            "layer_err_int", "config_hash", "seconds",
        ]
        .map(String::from),
    );
    // The bottleneck branch (tiles) and the optional flows' columns (standard cells, ECP5):
    // only those some row fills, so other sweeps' CSVs keep their columns.
    let with_bottleneck = rows.iter().any(|r| !r.bottleneck.is_empty());
    if with_bottleneck {
        header.push("bottleneck".into());
    }
    let (extra_header, extra) = super::asic::csv_columns(rows);
    header.extend(extra_header);
    w.write_record(&header).expect("in-memory write");
    for (r, extra) in rows.iter().zip(extra) {
        let mut rec = vec![format!("p{:02}", r.point)];
        rec.extend(r.axes.iter().map(|(_, v)| v.clone()));
        let matched = match (r.cycles_measured, r.cycles_predicted) {
            (Some(m), Some(p)) => (m == p).to_string(),
            _ => String::new(),
        };
        rec.extend([
            r.block.clone(),
            r.top.clone(),
            if r.ok() { "ok".into() } else { "FAILED".into() },
            r.failure.clone(),
            opt(r.cells),
            opt(r.ffs),
            opt(r.transistors),
            opt(r.ice40_lut4),
            opt(r.ice40_dff),
            opt(r.ice40_carry),
            opt(r.ice40_bram),
            r.ice40_fit.clone(),
            opt(r.fmax_mhz),
            opt(r.comparators),
            opt(r.multipliers),
            opt(r.register_bits),
            r.workload.clone(),
            opt(r.cycles_predicted),
            opt(r.cycles_measured),
            matched,
            fixed(numeric(r, "cycles_per_item"), 2),
            fixed(r.throughput, 4),
            r.throughput_unit.clone(),
            fixed(numeric(r, "throughput_per_kcell"), 4),
            fixed(numeric(r, "throughput_per_mtransistor"), 4),
            opt(r.sim_outputs),
            fixed(r.layer_err_kmeans, 6),
            fixed(r.layer_err_int, 6),
            r.config_hash.clone(),
            format!("{:.0}", r.seconds),
        ]);
        if with_bottleneck {
            rec.push(r.bottleneck.clone());
        }
        rec.extend(extra);
        w.write_record(&rec).expect("in-memory write");
    }
    String::from_utf8(w.into_inner().expect("in-memory flush")).expect("utf-8")
}

fn md_row(cells: &[String]) -> String {
    format!("| {} |\n", cells.iter().map(|c| c.replace('|', "/")).collect::<Vec<_>>().join(" | "))
}

fn md_header(cols: &[&str], right_from: usize) -> String {
    let mut s = md_row(&cols.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    let rule: Vec<String> =
        (0..cols.len()).map(|i| if i >= right_from { "---:".into() } else { "---".into() }).collect();
    s.push_str(&format!("|{}|\n", rule.join("|")));
    s
}

/// A Markdown table whose columns from `optional_from` on are left out when no row fills them
/// (iCE40 columns when nothing was mapped, comparators in a PE sweep).
fn md_table(cols: &[&str], rows: &[Vec<String>], right_from: usize, optional_from: usize) -> String {
    let keep: Vec<usize> =
        (0..cols.len()).filter(|&i| i < optional_from || rows.iter().any(|row| !row[i].is_empty())).collect();
    let kept: Vec<&str> = keep.iter().map(|&i| cols[i]).collect();
    let right = keep.iter().filter(|&&i| i < right_from).count();
    let mut s = md_header(&kept, right);
    for row in rows {
        s.push_str(&md_row(&keep.iter().map(|&i| row[i].clone()).collect::<Vec<_>>()));
    }
    s
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// The ratio table: one line per point that has both an index block and its baseline.
fn ratios(sweep: &Sweep, rows: &[Row]) -> String {
    let mut s = String::new();
    for (idx, base) in crate::registry::baseline_pairs() {
        let pairs: Vec<(&Row, &Row)> = rows
            .iter()
            .filter(|r| r.block == idx)
            .filter_map(|a| rows.iter().find(|b| b.block == base && b.point == a.point).map(|b| (a, b)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let unit = pairs.iter().map(|(a, _)| a.throughput_unit.clone()).find(|u| !u.is_empty()).unwrap_or_default();
        s.push_str(&format!(
            "\n`{idx}` vs baseline `{base}` (ratio = index / baseline; below 1 means the index design is \
             smaller, above 1 that it does more per unit of area or runs at a higher iCE40 clock; throughput \
             in {unit}):\n\n"
        ));
        let mut cols: Vec<&str> = sweep.axes.iter().map(|a| a.label.as_str()).collect();
        let axes_n = cols.len();
        cols.extend([
            "cells index", "cells base", "cells ratio", "FFs ratio", "transistors ratio", "LUT4 ratio",
            "cycles index", "cycles base", "throughput index", "throughput base", "throughput/cell ratio",
            "throughput/transistor ratio", "Fmax ratio", "bottleneck index", "bottleneck base", "status",
        ]);
        // Blocks with a bottleneck branch (tiles) also show their cycles and branches here: their
        // cycles differ by more than the pipeline fill once one tile is bound by a branch the
        // other does not have. Other sweeps' tables keep their columns.
        let with_neck = pairs.iter().any(|(a, b)| !a.bottleneck.is_empty() || !b.bottleneck.is_empty());
        let mut table: Vec<Vec<String>> = vec![];
        for (a, b) in pairs {
            let mut c: Vec<String> = a.axes.iter().map(|(_, v)| v.clone()).collect();
            let r = |col: &str| fixed(ratio(numeric(a, col), numeric(b, col)), 2);
            let if_neck = |v: String| if with_neck { v } else { String::new() };
            c.extend([
                opt(a.cells),
                opt(b.cells),
                r("cells"),
                r("ffs"),
                r("transistors"),
                r("ice40_lut4"),
                if_neck(opt(a.cycles_measured)),
                if_neck(opt(b.cycles_measured)),
                fixed(a.throughput, 2),
                fixed(b.throughput, 2),
                r("throughput_per_kcell"),
                r("throughput_per_mtransistor"),
                r("fmax_mhz"),
                short_neck(&a.bottleneck),
                short_neck(&b.bottleneck),
            ]);
            c.push(if a.ok() && b.ok() { "ok".into() } else { "a row FAILED".into() });
            table.push(c);
        }
        // A measure no pair has (LUT4 or Fmax when nothing fits an iCE40) is left out.
        s.push_str(&md_table(&cols, &table, axes_n, axes_n));
    }
    s
}

/// The branch of a bottleneck text with its cycles per group, without the explanation:
/// "compensation (16 cycles per group of 2 rows; vector phase 60)" -> "compensation, 16/group";
/// "activation input (…)" -> "activation input".
fn short_neck(neck: &str) -> String {
    let Some((name, rest)) = neck.split_once(" (") else { return neck.to_string() };
    match rest.split_once(" cycles per group") {
        Some((n, _)) if n.chars().all(|c| c.is_ascii_digit()) => format!("{name}, {n}/group"),
        _ => name.to_string(),
    }
}

/// Every output file of a sweep, in memory.
pub fn files(sweep: &Sweep, rows: &[Row], tools: &Tools) -> Vec<(String, String)> {
    let plots = super::plot::plots(sweep, rows);
    let mut md = format!("# {}\n\n", sweep.title);
    let failed = rows.iter().filter(|r| !r.ok()).count();
    md.push_str(&format!(
        "Generated by `kllm-gen sweep {}`: {} points, {} rows, {} FAILED. Tools: {}; {}; {}.\n\n",
        sweep.path.display(),
        sweep.points.len(),
        rows.len(),
        failed,
        or_off(&tools.yosys),
        or_off(&tools.verilator),
        or_off(&tools.nextpnr)
    ));
    md.push_str(&column_notes(&sweep.run));
    md.push_str("\n## Results\n\n");
    let mut cols = vec!["point"];
    cols.extend(sweep.axes.iter().map(|a| a.label.as_str()));
    let first_num = cols.len() + 1;
    cols.extend([
        "block", "status", "cells", "FFs", "transistors", "LUT4", "DFF", "Fmax MHz", "comparators", "cycles",
        "predicted", "cycles/item", "throughput", "per kcell", "layer err K-Means", "layer err INT",
    ]);
    let mut table = vec![];
    for r in rows {
        let mut c = vec![format!("p{:02}", r.point)];
        c.extend(r.axes.iter().map(|(_, v)| v.clone()));
        let fmax = match r.fmax_mhz {
            Some(f) => format!("{f:.1}"),
            None if r.ice40_fit.starts_with("no:") => "does not fit".into(),
            None if r.ice40_fit.starts_with("not mapped") => "not mapped".into(),
            None => String::new(),
        };
        c.extend([
            r.block.clone(),
            if r.ok() { "ok".into() } else { "FAILED".into() },
            opt(r.cells),
            opt(r.ffs),
            opt(r.transistors),
            opt(r.ice40_lut4),
            opt(r.ice40_dff),
            fmax,
            opt(r.comparators),
            opt(r.cycles_measured),
            opt(r.cycles_predicted),
            fixed(numeric(r, "cycles_per_item"), 1),
            fixed(r.throughput, 2),
            fixed(numeric(r, "throughput_per_kcell"), 3),
            fixed(r.layer_err_kmeans, 4),
            fixed(r.layer_err_int, 4),
        ]);
        table.push(c);
    }
    // Everything after the block and status may be empty for a whole sweep (steps switched off).
    md.push_str(&md_table(&cols, &table, first_num + 1, first_num + 1));
    let mut workloads: Vec<String> = rows
        .iter()
        .filter(|r| !r.workload.is_empty())
        .filter_map(|r| Some(format!("`{}`: {} ({})", r.block, super::flow::workload(&r.block)?.kind, r.throughput_unit)))
        .collect();
    workloads.sort();
    workloads.dedup();
    if !workloads.is_empty() {
        md.push_str(&format!("\nCycles are for each block's timed workload: {}.\n", workloads.join("; ")));
    }
    let necks: Vec<String> = rows
        .iter()
        .filter(|r| !r.bottleneck.is_empty())
        .map(|r| format!("- p{:02} `{}`: {}", r.point, r.block, r.bottleneck))
        .collect();
    if !necks.is_empty() {
        md.push_str(&format!("\nBottleneck branch of the timed workload (from the cycle model the timed segments check):\n\n{}\n", necks.join("\n")));
    }
    let fits: Vec<String> =
        rows.iter().filter(|r| !r.ice40_fit.is_empty()).map(|r| format!("- p{:02} `{}`: {}", r.point, r.block, r.ice40_fit)).collect();
    if !fits.is_empty() {
        md.push_str(&format!("\niCE40 placement:\n\n{}\n", fits.join("\n")));
    }
    let summary = ratios(sweep, rows);
    if !summary.is_empty() {
        md.push_str("\n## Index design vs baseline\n");
        md.push_str(&summary);
    }
    if failed > 0 {
        md.push_str("\n## FAILED rows\n\n");
        for r in rows.iter().filter(|r| !r.ok()) {
            md.push_str(&format!("- p{:02} `{}`: {}\n", r.point, r.block, r.failure));
        }
    }
    if !plots.is_empty() {
        md.push_str("\n## Plots\n\n");
        for (name, _) in &plots {
            md.push_str(&format!("![{name}]({name})\n\n"));
        }
    }
    let mut out = vec![("results.csv".to_string(), csv(sweep, rows)), ("results.md".to_string(), md)];
    out.push((
        "summary.md".into(),
        format!(
            "{}{}",
            format_args!(
                "Measured by `make sweep SWEEP={}`{}{}.\n",
                sweep.path.display(),
                if tools.yosys.is_empty() { String::new() } else { format!(" ({})", tools.yosys) },
                if sweep.run.flatten { "" } else { HIER_NOTE }
            ),
            if summary.is_empty() { "\n(no index/baseline pair in this sweep)\n".to_string() } else { summary }
        ),
    ));
    out.extend(plots);
    out
}

fn or_off(v: &str) -> &str {
    if v.is_empty() { "(step off)" } else { v }
}

/// Said after "Measured by ..." in `summary.md` (the README's copy) when the sweep kept the
/// hierarchy; flat sweeps keep their line unchanged.
const HIER_NOTE: &str = ", **hierarchical synthesis** (`synth` without `-flatten`, `run.flatten = false`: cells, FFs and \
transistors are the top's hierarchy totals, Σ instances × module counts as `stat -top` reports them; no optimization across \
module boundaries)";

fn column_notes(run: &super::spec::RunOptions) -> String {
    let synth = if run.flatten {
        "- **cells**, **FFs**: Yosys `synth -flatten` generic gate cells and flip-flop bits (`stat -json`).\n".to_string()
    } else {
        "- **cells**, **FFs**: Yosys `synth` with the hierarchy kept (`run.flatten = false`): every distinct module is \
synthesized once, and the figures are the top's hierarchy totals, Σ instances × module cells and flip-flop bits \
(`stat -json -top`, checked against Yosys's own total); no optimization across module boundaries, so usually more \
cells than a flat run of the same design. **transistors** likewise (`stat -tech cmos -top`).\n"
            .to_string()
    };
    synth + COLUMN_NOTES
}

const COLUMN_NOTES: &str = "\
- **transistors**: Yosys `stat -tech cmos` after `dffunmap` (so enable/reset flip-flops are counted as a DFF plus gates).
- **LUT4**, **DFF**: Yosys `synth_ice40` of the block alone. **Fmax**: nextpnr-ice40 on an HX8K (ct256, seed 1) with the \
block inside a 4-pin shift-register harness, so pins do not limit it; blank when the step is off, \
\"does not fit\" when the block exceeds the largest iCE40, \"not mapped\" when its generic cell count is beyond \
`run.ice40_max_cells` (the reason is listed below the table).
- **cycles**: measured by the Verilator bench (first input to last output, inclusive) for the block's timed workload; \
**predicted** is the manifest's number; a row whose two differ is FAILED.
- **throughput**: work per cycle on that workload (MAC-equivalents for PE lines: 64 x K / cycles); **per kcell**: per 1000 cells.
- **layer err**: relative L2 error of the reference decoder layer's contribution (y - x) against f32, with K-Means and with \
uniform INT codebooks at the point's bits (Orizuru rows: with k/N outliers per side kept exact).
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sweep() -> Sweep {
        Sweep::parse(
            "[base]\npe_line = { k_max = 64, baseline = true }\n[axes]\n\"pe_line.lanes\" = [4, 8]\n",
            "t",
            Path::new("t.toml"),
        )
        .unwrap()
    }

    fn row(point: usize, block: &str, cells: u64, tput: f64) -> Row {
        Row {
            point,
            axes: vec![("pe_line.lanes".into(), ["4", "8"][point].into())],
            block: block.into(),
            cells: Some(cells),
            transistors: Some(cells * 6),
            throughput: Some(tput),
            throughput_unit: "MAC/cycle".into(),
            cycles_measured: Some(100),
            cycles_predicted: Some(100),
            ..Row::default()
        }
    }

    #[test]
    fn short_bottleneck_keeps_the_branch_and_its_cycles_per_group() {
        assert_eq!(short_neck("counting and weight streaming (64 cycles per group of 2 rows; vector phase 100)"), "counting and weight streaming, 64/group");
        assert_eq!(short_neck("activation input (74 cycles of vector phase > 4 groups x 8)"), "activation input");
        assert_eq!(short_neck(""), "");
    }

    #[test]
    fn csv_keeps_failed_rows_with_their_reason() {
        let mut bad = row(1, "pe_line", 10, 1.0);
        bad.fail("sim: FAIL: pe_line outputs=3/4 mismatches=1");
        bad.cycles_measured = Some(101);
        let text = csv(&sweep(), &[row(0, "pe_line", 10, 1.0), bad]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("point,pe_line.lanes,block,top,status,reason,cells"), "{}", lines[0]);
        assert!(lines[1].starts_with("p00,4,pe_line,,ok,,10,"), "{}", lines[1]);
        assert!(lines[2].starts_with("p01,8,pe_line,,FAILED,sim: FAIL: pe_line outputs=3/4 mismatches=1,10"), "{}", lines[2]);
        assert!(lines[1].contains(",100,100,true,") && lines[2].contains(",100,101,false,"), "{text}");
    }

    #[test]
    fn ratio_table_divides_index_by_baseline() {
        let rows = vec![row(0, "pe_line", 200, 4.0), row(0, "dq_pe_line", 100, 4.0)];
        let t = ratios(&sweep(), &rows);
        // cells 2.00, throughput per cell 0.50.
        assert!(t.contains("| 4 | 200 | 100 | 2.00 |"), "{t}");
        assert!(t.contains("| 4.00 | 4.00 | 0.50 | 0.50 | ok |"), "{t}");
        assert!(!t.contains("Fmax ratio") && !t.contains("LUT4 ratio"), "empty measures are left out: {t}");
        // Without a bottleneck branch (not a tile) the cycles and branch columns stay out.
        assert!(!t.contains("cycles index") && !t.contains("bottleneck"), "{t}");
    }

    /// A sweep whose points are tiles: the TileConfig keys as axes, the tile paired with its
    /// dequantize-multiply baseline in the ratio table, the bottleneck branch as a CSV column
    /// (only when a row has one) and as a list in results.md.
    #[test]
    fn tile_sweep_pairs_tile_with_dq_tile_and_reports_the_bottleneck() {
        let s = Sweep::parse(
            "[base]\nquant = { nw = 2, na = 2 }\ntile = { lanes = 4, reduce_width = 4, k_max = 64, k = 4, baseline = true }\n\
             [axes]\n\"tile.lines\" = [2, 4]\n\"tile.comp_macs\" = [2, 8]\n\"tile.lanes+tile.k\" = [4]\n",
            "t",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(s.points.len(), 4);
        let c = s.points[3].config.tile.as_ref().unwrap();
        assert_eq!((c.lines, c.comp_macs, c.lanes, c.k, c.baseline), (4, 8, 4, 4, true));
        let blocks: Vec<&str> = crate::design::blocks(&s.points[0].config).iter().map(|b| b.name).collect();
        assert_eq!(blocks, ["tile", "dq_tile"]);
        let tile_row = |point: usize, block: &str, cells: u64, tput: f64, neck: &str| Row {
            point,
            axes: s.points[point].values.clone(),
            block: block.into(),
            cells: Some(cells),
            throughput: Some(tput),
            throughput_unit: "MAC/cycle".into(),
            bottleneck: neck.into(),
            ..Row::default()
        };
        let mut rows = vec![
            tile_row(0, "tile", 30_000, 3.0, "compensation (4 cycles per group of 2 rows; vector phase 40)"),
            tile_row(0, "dq_tile", 25_000, 3.0, "compensation (4 cycles per group of 2 rows; vector phase 35)"),
        ];
        (rows[0].cycles_measured, rows[1].cycles_measured) = (Some(170), Some(165));
        let t = ratios(&s, &rows);
        assert!(t.contains("`tile` vs baseline `dq_tile`"), "{t}");
        assert!(t.contains("| 2 | 2 | 4 | 30000 | 25000 | 1.20 |"), "{t}");
        // Tiles: both cycle counts and both branches, short, in the ratio table.
        assert!(t.contains("| cycles index | cycles base | throughput index |"), "{t}");
        assert!(t.contains("| 170 | 165 | 3.00 | 3.00 | 0.83 |"), "{t}");
        assert!(t.contains("| compensation, 4/group | compensation, 4/group | ok |"), "{t}");
        let text = csv(&s, &rows);
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        assert_eq!(header.iter().filter(|h| **h == "bottleneck").count(), 1);
        assert!(text.lines().nth(1).unwrap().ends_with(",compensation (4 cycles per group of 2 rows; vector phase 40)"), "{text}");
        let tools = Tools { yosys: "y".into(), verilator: "v".into(), nextpnr: String::new() };
        let md = files(&s, &rows, &tools).into_iter().find(|(n, _)| n == "results.md").unwrap().1;
        assert!(md.contains("- p00 `dq_tile`: compensation (4 cycles per group of 2 rows; vector phase 35)"), "{md}");
        // A PE-line sweep has no bottleneck column.
        assert!(!csv(&sweep(), &[row(0, "pe_line", 10, 1.0)]).contains("bottleneck"));
    }
}
