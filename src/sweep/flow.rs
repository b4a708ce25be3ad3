//! One sweep job = one block of one point: lint, Yosys generic synthesis, iCE40 mapping and
//! place-and-route, the Verilator bench. Every tool runs under `timeout` in the job's folder and
//! leaves its log there; a failing step makes the row FAILED with the step and the tool's first
//! error line, and the remaining measurements are still taken where they do not depend on it.
//!
//! A finished row is cached under a key of everything that can change it: the generated RTL,
//! the golden vectors, the bench sources, the run options and the tool versions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::spec::{RunOptions, Sweep};
use super::{Row, RunArgs};
use crate::config::Config;
use crate::registry::Workload;
use crate::design;
use crate::verilog::{nb, Design, Dir, Module};

/// Bump when a step's commands or parsing change, so cached rows are not reused.
const FLOW_VERSION: &str = "sweep-flow-2";

/// The largest iCE40 (HX8K): logic cells and 4 kbit block RAMs.
pub const ICE40_LCS: u64 = 7680;
pub const ICE40_BRAMS: u64 = 32;

/// Versions of the tools the enabled steps need (also part of the cache key).
pub struct Tools {
    pub yosys: String,
    pub verilator: String,
    pub nextpnr: String,
}

fn version(cmd: &str, arg: &str) -> Option<String> {
    let out = Command::new(cmd).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string())
}

impl Tools {
    /// Finds the tools the enabled steps need; a missing one is an error before anything runs.
    pub fn probe(run: &RunOptions) -> Result<Tools> {
        let need = |on: bool, cmd: &str, arg: &str, key: &str| -> Result<String> {
            if !on {
                return Ok(String::new());
            }
            version(cmd, arg).ok_or_else(|| {
                anyhow!("`{cmd}` not found: `make tools` installs it (or set {key} = false in [run])")
            })
        };
        // Place and route first: of the tools a fresh machine may lack, it is the one a user is
        // most likely to have to install separately.
        let nextpnr = need(run.ice40, "nextpnr-ice40", "--version", "ice40")?;
        let yosys = need(run.synth || run.ice40, "yosys", "-V", "synth and ice40")?;
        let verilator = need(run.lint || run.sim, "verilator", "--version", "lint and sim")?;
        if version("timeout", "--version").is_none() {
            bail!("`timeout` (GNU coreutils) not found: the sweep needs it to bound tool run times");
        }
        Ok(Tools { yosys, verilator, nextpnr })
    }
}

/// Everything one job needs, prepared before any tool runs.
pub struct Job {
    pub point: usize,
    pub point_name: String,
    pub describe: String,
    pub axes: Vec<(String, String)>,
    pub block: String,
    pub top: String,
    pub config: Config,
    pub derived: Value,
    pub files: Vec<PathBuf>,
    pub dir: PathBuf,
    pub tb_dir: PathBuf,
    pub golden: PathBuf,
    /// The iCE40 Fmax wrapper around `top` (see `fmax_wrapper`).
    pub wrapper: String,
    /// Rough size for scheduling: register bits of the block.
    pub weight: u64,
    pub key: String,
    pub cache: PathBuf,
}

/// Generates every point's design (once per distinct config), its golden files and wrappers,
/// and computes each job's cache key.
pub fn prepare(sweep: &Sweep, args: &RunArgs, tools: &Tools) -> Result<Vec<Job>> {
    let work = std::path::absolute(&args.work)?;
    let tb_dir = std::path::absolute(&args.testbenches)?;
    let cache_dir = work.join("cache");
    std::fs::create_dir_all(&cache_dir).with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let mut jobs = vec![];
    for p in &sweep.points {
        let cfg = &p.config;
        let hash = cfg.hash();
        let name = format!("sweep_{hash}");
        let rendered = design::render(cfg, &name)?;
        let design_dir = work.join("designs").join(&hash);
        let rtl = design_dir.join("rtl");
        if !same_files(&rtl, &rendered.files) {
            design::write_dir_atomic(&rtl, &rendered.files)?;
        }
        let mut d = Design::default();
        let blocks = design::blocks(cfg);
        for b in &blocks {
            b.kind.generate(&mut d, cfg, b.top);
        }
        let mut rtl_hash = Sha256::new();
        for (f, text) in &rendered.files {
            rtl_hash.update(f.as_bytes());
            rtl_hash.update(text.as_bytes());
        }
        let rtl_hash = hex(&rtl_hash.finalize());
        for b in &blocks {
            if !sweep.run.blocks.is_empty() && !sweep.run.blocks.iter().any(|x| x == b.name) {
                continue;
            }
            let tb = [tb_dir.join("kllm_tb.h"), tb_dir.join(format!("tb_{}.cpp", b.name))];
            if sweep.run.sim {
                for f in &tb {
                    if !f.exists() {
                        bail!("{} not found: run the sweep from the repository root or pass --testbenches", f.display());
                    }
                }
            }
            let dir = design_dir.join(b.name);
            std::fs::create_dir_all(&dir)?;
            let golden = dir.join("golden.txt");
            let golden_text = if sweep.run.sim {
                let g = design::golden_text(cfg, &name, b, sweep.run.vectors, sweep.run.seed);
                if std::fs::read_to_string(&golden).ok().as_deref() != Some(g.as_str()) {
                    std::fs::write(&golden, &g)?;
                }
                g
            } else {
                String::new()
            };
            let top_module = d.get(b.top).ok_or_else(|| anyhow!("block {} has no top {}", b.name, b.top))?;
            let wrapper = fmax_wrapper(top_module)?;
            // Every Verilog file of the design, in dependency order; synthesis keeps what the
            // top uses.
            let files: Vec<PathBuf> = rendered
                .files
                .iter()
                .filter(|(f, _)| f.ends_with(".v"))
                .map(|(f, _)| rtl.join(f))
                .collect();
            let mut h = Sha256::new();
            for part in [FLOW_VERSION, b.name, b.top, &rtl_hash, &golden_text, &wrapper, &tools.yosys, &tools.verilator, &tools.nextpnr] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.update(serde_json::to_string(&sweep.run)?.as_bytes());
            if sweep.run.asic || sweep.run.ecp5 {
                h.update(super::asic::STEP_VERSION.as_bytes());
            }
            if sweep.run.sim {
                for f in &tb {
                    h.update(std::fs::read(f)?);
                }
            }
            let key = hex(&h.finalize())[..32].to_string();
            jobs.push(Job {
                point: p.index,
                point_name: p.name(),
                describe: p.describe(),
                axes: p.values.clone(),
                block: b.name.to_string(),
                top: b.top.to_string(),
                config: cfg.clone(),
                derived: b.derived.clone(),
                files,
                dir,
                tb_dir: tb_dir.clone(),
                golden,
                wrapper,
                weight: b.derived.get("register_bits").and_then(Value::as_u64).unwrap_or(0),
                cache: cache_dir.join(format!("{key}.json")),
                key,
            });
        }
    }
    Ok(jobs)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn same_files(dir: &Path, files: &[(String, String)]) -> bool {
    files.iter().all(|(f, text)| std::fs::read_to_string(dir.join(f)).ok().as_deref() == Some(text.as_str()))
}

/// A cached row for this job, with this sweep's point number and axis labels.
pub fn cached(job: &Job) -> Option<Row> {
    let text = std::fs::read_to_string(&job.cache).ok()?;
    let mut row: Row = serde_json::from_str(&text).ok()?;
    row.point = job.point;
    row.axes = job.axes.clone();
    row.bottleneck = bottleneck(&job.block, &job.derived);
    Some(row)
}

/// Caches a row that passed; a FAILED row is run again next time.
pub fn store(job: &Job, row: &Row) {
    if row.ok() {
        if let Ok(text) = serde_json::to_string_pretty(row) {
            let _ = std::fs::write(&job.cache, text);
        }
    }
}

/// The result of one tool invocation.
pub(super) struct Ran {
    pub ok: bool,
    pub output: String,
}

/// Runs `cmd args` in `dir` under `timeout`, output to `dir/<log>`.
pub(super) fn tool(dir: &Path, log: &str, timeout_s: u64, cmd: &str, args: &[String]) -> Ran {
    let start = Instant::now();
    let out = Command::new("timeout")
        .arg("--kill-after=10")
        .arg(timeout_s.to_string())
        .arg(cmd)
        .args(args)
        .current_dir(dir)
        .output();
    match out {
        Ok(o) => {
            let output = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
            let _ = std::fs::write(dir.join(log), &output);
            // Where a job's time goes, for whoever sizes the next sweep.
            let line = format!("{log} {:.1} s\n", start.elapsed().as_secs_f64());
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("step_seconds.txt"))
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
            let code = o.status.code();
            let mut output = output;
            if code == Some(124) || code == Some(137) {
                output = format!("timed out after {timeout_s} s\n{output}");
            }
            Ran { ok: o.status.success(), output }
        }
        Err(e) => Ran { ok: false, output: format!("cannot run {cmd}: {e}") },
    }
}

/// The first line that says what went wrong, for the FAILED reason.
pub(super) fn first_error(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("timed out") || l.starts_with("%warning") || l.contains("fail")
        })
        .or_else(|| output.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no output");
    let line = line.trim();
    if line.len() > 200 { format!("{}...", &line[..200]) } else { line.to_string() }
}

pub(super) fn paths(files: &[PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

/// Runs every enabled step of one job.
pub fn run_job(job: &Job, tools: &Tools, run: &RunOptions) -> Row {
    let start = Instant::now();
    let mut row = Row {
        point: job.point,
        axes: job.axes.clone(),
        block: job.block.clone(),
        top: job.top.clone(),
        config_hash: job.config.hash(),
        ..Row::default()
    };
    let d = &job.derived;
    row.comparators = d.get("comparators").and_then(Value::as_u64);
    row.multipliers = crate::registry::find(&job.block).and_then(|k| k.multipliers(d));
    row.register_bits = d.get("register_bits").and_then(Value::as_u64);
    row.bottleneck = bottleneck(&job.block, d);
    if run.lint {
        lint(job, run, &mut row);
    }
    if run.synth {
        synth_generic(job, run, &mut row);
    }
    if run.ice40 {
        ice40(job, run, &mut row);
    }
    if run.asic {
        super::asic::run(job, run, &mut row);
    }
    if run.ecp5 {
        super::ecp5::run(job, run, &mut row);
    }
    if run.sim {
        simulate(job, run, tools, &mut row);
    }
    row.seconds = start.elapsed().as_secs_f64().round();
    row
}

fn lint(job: &Job, run: &RunOptions, row: &mut Row) {
    let mut args = vec!["--lint-only".into(), "-Wall".into(), "--top-module".into(), job.top.clone()];
    args.extend(paths(&job.files));
    let r = tool(&job.dir, "lint.log", run.timeout_s, "verilator", &args);
    if !r.ok || r.output.contains("%Warning") {
        row.fail(format!("lint: {}", first_error(&r.output)));
    }
}

/// The cells of the one module left after `synth -flatten` (or `synth_ice40`).
pub(super) fn stat_cells(path: &Path, top: &str) -> Option<(u64, BTreeMap<String, u64>)> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let m = v.get("modules")?.get(format!("\\{top}"))?;
    let n = m.get("num_cells")?.as_u64()?;
    let by = m
        .get("num_cells_by_type")?
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
        .collect();
    Some((n, by))
}

fn synth_generic(job: &Job, run: &RunOptions, row: &mut Row) {
    // dffunmap before the transistor estimate: `stat -tech cmos` knows plain DFFs but not
    // enable/reset variants, which it would silently leave out (its "+" suffix). Without
    // `-flatten` every distinct module is synthesized once and `stat -top` adds the hierarchy
    // up (Σ instances × module counts) in its "design" section.
    let (synth, stat, stat_top) = if run.flatten {
        ("synth -flatten", "generic_stat.json stat -json".to_string(), String::new())
    } else {
        ("synth", format!("generic_stat.txt stat -top {}", job.top), format!(" -top {}", job.top))
    };
    let script = format!(
        "read_verilog {files}\n\
         {synth} -top {top}\n\
         check -assert\n\
         select -assert-none t:$_DLATCH* t:$_SR_* t:$dlatch*\n\
         tee -q -o {stat}\n\
         dffunmap\n\
         tee -q -o cmos_stat.txt stat -tech cmos{stat_top}\n",
        files = paths(&job.files).join(" "),
        top = job.top
    );
    if let Err(e) = std::fs::write(job.dir.join("synth.ys"), script) {
        row.fail(format!("synth: {e}"));
        return;
    }
    let r = tool(&job.dir, "synth.log", run.timeout_s, "yosys", &["-q".into(), "-l".into(), "synth.yosys.log".into(), "-s".into(), "synth.ys".into()]);
    if !r.ok {
        row.fail(format!("synth: {}", first_error(&r.output)));
        return;
    }
    let counts = if run.flatten {
        stat_cells(&job.dir.join("generic_stat.json"), &job.top).map(|(n, by)| (n, ff_bits(&by))).ok_or_else(|| "no statistics for the top module in generic_stat.json".to_string())
    } else {
        hier_totals(&std::fs::read_to_string(job.dir.join("generic_stat.txt")).unwrap_or_default(), &job.top)
    };
    match counts {
        Ok((cells, ffs)) => {
            row.cells = Some(cells);
            row.ffs = Some(ffs);
        }
        Err(e) => row.fail(format!("synth: {e}")),
    }
    let cmos = std::fs::read_to_string(job.dir.join("cmos_stat.txt")).unwrap_or_default();
    row.transistors = if run.flatten { parse_transistors(&cmos) } else { hier_transistors(&cmos) };
    if row.transistors.is_none() {
        row.fail("synth: no complete transistor estimate in cmos_stat.txt");
    }
}

/// Flip-flop bits among cells by type: Yosys's internal `$_*DFF*_` cells are one bit each.
fn ff_bits(by: &BTreeMap<String, u64>) -> u64 {
    by.iter().filter(|(k, _)| k.contains("DFF")).map(|(_, v)| v).sum()
}

/// Cells and flip-flop bits of `top` with its hierarchy, from the text of `stat -top top`
/// (Yosys 0.23's `stat -json -top` writes the hierarchy tree into its JSON when modules nest,
/// which then does not parse): every module's own cells (its cells by type minus the instances
/// of other modules) times the number of times it occurs under `top`, summed. The sum must
/// equal Yosys's own total (the "design hierarchy" section), or the reading is refused: a
/// module the walk missed, or counted twice, would otherwise go unnoticed.
pub(super) fn hier_totals(text: &str, top: &str) -> Result<(u64, u64), String> {
    // Module → (cells, cells by type); the design section's first cell count.
    let mut modules: BTreeMap<String, (u64, Vec<(String, u64)>)> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut design_total = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("=== ").and_then(|r| r.strip_suffix(" ===")) {
            section = Some(name.to_string());
            continue;
        }
        let Some(sec) = &section else { continue };
        let cells = t.strip_prefix("Number of cells:").and_then(|n| n.trim().parse::<u64>().ok());
        if sec == "design hierarchy" {
            design_total = design_total.or(cells);
            continue;
        }
        let entry = modules.entry(sec.clone()).or_default();
        if let Some(n) = cells {
            entry.0 = n;
        } else if let [ty, n] = t.split_whitespace().collect::<Vec<_>>()[..] {
            if let Ok(n) = n.parse::<u64>() {
                entry.1.push((ty.to_string(), n));
            }
        }
    }
    if !modules.contains_key(top) {
        return Err(format!("generic_stat.txt has no module {top}"));
    }
    // Instances of every module under `top` (a module instanced at several depths adds up).
    let mut instances: BTreeMap<&str, u64> = BTreeMap::new();
    let mut stack = vec![(top, 1u64)];
    while let Some((m, n)) = stack.pop() {
        *instances.entry(m).or_default() += n;
        for (ty, k) in &modules[m].1 {
            if let Some((sub, _)) = modules.get_key_value(ty) {
                stack.push((sub.as_str(), n * k));
            }
        }
    }
    let (mut cells, mut ffs) = (0, 0);
    for (m, n) in &instances {
        let (all, types) = &modules[*m];
        let subs: u64 = types.iter().filter(|(ty, _)| modules.contains_key(ty)).map(|(_, k)| k).sum();
        let own: BTreeMap<String, u64> = types.iter().filter(|(ty, _)| !modules.contains_key(ty)).cloned().collect();
        cells += n * (all - subs);
        ffs += n * ff_bits(&own);
    }
    // Without submodules `stat -top` prints no hierarchy section: the top's own count is the total.
    let total = match design_total {
        Some(t) => t,
        None if instances.len() == 1 => modules[top].0,
        None => return Err("generic_stat.txt has no design hierarchy total (stat -top)".into()),
    };
    if total != cells {
        return Err(format!("Σ instances × module cells under {top} = {cells}, Yosys's stat -top total = {total}"));
    }
    Ok((cells, ffs))
}

/// The transistor estimate of the whole hierarchy: the "design hierarchy" section's line of
/// `stat -tech cmos -top` (a design without submodules has none: its one module's line).
fn hier_transistors(text: &str) -> Option<u64> {
    match text.split_once("=== design hierarchy ===") {
        Some((_, hier)) => parse_transistors(hier),
        None if text.matches("Estimated number of transistors:").count() == 1 => parse_transistors(text),
        None => None,
    }
}

/// `Estimated number of transistors: 299462` (a trailing `+` means some cells were not
/// counted: not a number we report).
fn parse_transistors(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.contains("Estimated number of transistors:"))?;
    let v = line.split(':').nth(1)?.trim();
    if v.ends_with('+') { None } else { v.parse().ok() }
}

fn ice40(job: &Job, run: &RunOptions, row: &mut Row) {
    if let Some(ffs) = row.ffs.filter(|&f| f > ICE40_LCS) {
        // Every flip-flop needs a logic cell: no mapping can make this fit.
        row.ice40_fit = format!("no: {ffs} FFs > {ICE40_LCS} LCs of the largest iCE40 (HX8K)");
        return;
    }
    if let Some(cells) = row.cells.filter(|&c| c > run.ice40_max_cells) {
        row.ice40_fit = format!(
            "not mapped: {cells} generic cells > run.ice40_max_cells = {} (the largest iCE40, HX8K, has {ICE40_LCS} LCs)",
            run.ice40_max_cells
        );
        return;
    }
    // One Yosys session: the block alone (its LUT4/DFF counts), then the Fmax harness around
    // the already mapped block, so place-and-route sees exactly the netlist that was counted.
    // The harness feeds every input from a shift register and captures every output into one:
    // pins do not limit the design and every timed path is register to register.
    let wrap = job.dir.join("fmax_wrap.v");
    let script = format!(
        "read_verilog {files}\n\
         synth_ice40 -top {top}\n\
         tee -q -o ice40_stat.json stat -json\n\
         read_verilog {wrap}\n\
         synth_ice40 -top kllm_fmax_wrap -json pnr_in.json\n",
        files = paths(&job.files).join(" "),
        top = job.top,
        wrap = wrap.display()
    );
    if std::fs::write(&wrap, &job.wrapper).and_then(|_| std::fs::write(job.dir.join("ice40.ys"), script)).is_err() {
        row.fail("ice40: cannot write the Yosys script");
        return;
    }
    let r = tool(&job.dir, "ice40.log", run.timeout_s, "yosys", &["-q".into(), "-l".into(), "ice40.yosys.log".into(), "-s".into(), "ice40.ys".into()]);
    if !r.ok {
        row.fail(format!("ice40 synth: {}", first_error(&r.output)));
        return;
    }
    let Some((_, by)) = stat_cells(&job.dir.join("ice40_stat.json"), &job.top) else {
        row.fail("ice40 synth: no statistics for the top module");
        return;
    };
    let count = |pred: &dyn Fn(&str) -> bool| by.iter().filter(|(k, _)| pred(k)).map(|(_, v)| v).sum::<u64>();
    let (lut, dff) = (count(&|k| k == "SB_LUT4"), count(&|k| k.starts_with("SB_DFF")));
    let (carry, bram) = (count(&|k| k == "SB_CARRY"), count(&|k| k.starts_with("SB_RAM40")));
    (row.ice40_lut4, row.ice40_dff, row.ice40_carry, row.ice40_bram) = (Some(lut), Some(dff), Some(carry), Some(bram));
    if lut > ICE40_LCS || dff > ICE40_LCS || bram > ICE40_BRAMS {
        row.ice40_fit = format!(
            "no: {lut} LUT4, {dff} DFF, {bram} BRAM > {ICE40_LCS} LCs / {ICE40_BRAMS} BRAMs of the largest iCE40 (HX8K)"
        );
        return;
    }
    let args: Vec<String> = [
        "--hx8k", "--package", "ct256", "--json", "pnr_in.json", "--freq", "12", "--timing-allow-fail",
        "--seed", "1", "--threads", "1", "--report", "pnr_report.json", "-q", "-l", "pnr.log",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = tool(&job.dir, "pnr.out", run.timeout_s, "nextpnr-ice40", &args);
    let log = std::fs::read_to_string(job.dir.join("pnr.log")).unwrap_or_default() + &r.output;
    if !r.ok {
        if let Some((res, used, avail)) = over_utilised(&log) {
            row.ice40_fit = format!("no: {used} {res} with the Fmax harness > {avail} on HX8K after packing");
        } else {
            row.fail(format!("nextpnr: {}", first_error(&log)));
        }
        return;
    }
    let report: Value = std::fs::read_to_string(job.dir.join("pnr_report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    row.fmax_mhz = report
        .get("fmax")
        .and_then(Value::as_object)
        .and_then(|m| m.values().filter_map(|c| c.get("achieved").and_then(Value::as_f64)).reduce(f64::min))
        .map(|f| (f * 10.0).round() / 10.0);
    let lc = report.pointer("/utilization/ICESTORM_LC/used").and_then(Value::as_u64);
    row.ice40_fit = match lc {
        Some(lc) => format!("HX8K, {lc} LCs with wrapper ({:.0} %)", 100.0 * lc as f64 / ICE40_LCS as f64),
        None => "HX8K".into(),
    };
    if row.fmax_mhz.is_none() {
        row.fail("nextpnr: no Fmax in pnr_report.json");
    }
}

/// The first resource nextpnr reports above 100 % (`ICESTORM_LC:  9150/ 7680   119%`).
pub(super) fn over_utilised(log: &str) -> Option<(String, u64, u64)> {
    log.lines().find_map(|l| {
        let (res, rest) = l.trim_start_matches("Info:").trim().split_once(':')?;
        let (used, rest) = rest.trim().split_once('/')?;
        let avail = rest.split_whitespace().next()?;
        let (used, avail) = (used.trim().parse::<u64>().ok()?, avail.parse::<u64>().ok()?);
        (used > avail).then(|| (res.trim().to_string(), used, avail))
    })
}

/// `kllm_fmax_wrap`: every input of `top` but the clock comes from one long shift register fed
/// by `pin_si`, every output is captured (parallel load) into another shifted out on `pin_so`.
/// Four pins whatever the block's width, nothing the block computes can be optimized away, and
/// the wrapper adds one LUT level at most on either side.
pub fn fmax_wrapper(top: &Module) -> Result<String> {
    let ins: Vec<_> = top.ports.iter().filter(|p| p.dir == Dir::Input && p.name != "clk").collect();
    let outs: Vec<_> = top.ports.iter().filter(|p| p.dir == Dir::Output).collect();
    let in_w: u32 = ins.iter().map(|p| p.width).sum();
    let out_w: u32 = outs.iter().map(|p| p.width).sum();
    if top.port_named("clk").is_none() || in_w < 2 || out_w < 2 {
        bail!("{} needs a clk and at least two input and output bits for the Fmax wrapper", top.name);
    }
    let mut m = Module::new("kllm_fmax_wrap");
    m.doc(format!("Fmax harness for {}: inputs from a shift register, outputs into one (4 pins).", top.name));
    m.input("clk", 1, "").input("pin_si", 1, "serial input").input("pin_load", 1, "capture outputs").output("pin_so", 1, "serial output");
    m.reg("in_chain_q", in_w).reg("out_chain_q", out_w).wire("dut_out", out_w);
    m.clocked("shift_in", vec![nb("in_chain_q", format!("{{in_chain_q[{}:0], pin_si}}", in_w - 2))]);
    let mut conns = vec![("clk".to_string(), "clk".to_string())];
    let mut lo = 0;
    for p in &ins {
        conns.push((p.name.clone(), format!("in_chain_q[{}:{}]", lo + p.width - 1, lo)));
        lo += p.width;
    }
    let mut lo = 0;
    for p in &outs {
        conns.push((p.name.clone(), format!("dut_out[{}:{}]", lo + p.width - 1, lo)));
        lo += p.width;
    }
    let conns: Vec<(&str, String)> = conns.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
    m.instance(&top.name, "u_dut", &conns);
    m.clocked(
        "capture",
        vec![nb("out_chain_q", format!("pin_load ? dut_out : {{out_chain_q[{}:0], 1'b0}}", out_w - 2))],
    );
    m.assign("pin_so", format!("out_chain_q[{}]", out_w - 1));
    Ok(format!("`default_nettype none\n\n{}\n`default_nettype wire\n", crate::verilog::emit_module(&m)))
}

/// The bottleneck branch of a block's timed workload, empty for blocks without one.
fn bottleneck(block: &str, derived: &Value) -> String {
    crate::registry::find(block).and_then(|k| k.bottleneck(derived)).unwrap_or_default()
}

/// The workload of a block, `None` for blocks without one (their cycle columns stay empty).
pub fn workload(block: &str) -> Option<Workload> {
    crate::registry::find(block)?.workload()
}

/// `(predicted, measured)` of every `timing:` line of a bench log.
fn timing_lines(log: &str) -> Vec<(u64, u64)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("timing: predicted ")?;
            let (p, rest) = rest.split_once(" cycles, measured ")?;
            let m: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            Some((p.parse().ok()?, m.parse().ok()?))
        })
        .collect()
}

fn simulate(job: &Job, run: &RunOptions, tools: &Tools, row: &mut Row) {
    let obj = job.dir.join("obj");
    let bin = obj.join(format!("V{}", job.top));
    let tb = job.tb_dir.join(format!("tb_{}.cpp", job.block));
    let mut h = Sha256::new();
    h.update(tools.verilator.as_bytes());
    for f in job.files.iter().chain([&job.tb_dir.join("kllm_tb.h"), &tb]) {
        h.update(std::fs::read(f).unwrap_or_default());
    }
    let stamp = hex(&h.finalize());
    let stamp_file = job.dir.join("obj.stamp");
    if !bin.exists() || std::fs::read_to_string(&stamp_file).ok().as_deref() != Some(stamp.as_str()) {
        let _ = std::fs::remove_dir_all(&obj);
        let rtl = job.files[0].parent().unwrap().display().to_string();
        let mut args: Vec<String> = [
            "--cc", "--exe", "--build", "-j", "1", "--x-assign", "unique", "--x-initial", "unique",
            "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", &job.top, "-Mdir", "obj",
            // The sweep's runs are short: compile time dominates, so no C++ optimization.
            "-MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("-CFLAGS".into());
        args.push(format!("-O0 -I{rtl} -I{}", job.tb_dir.display()));
        args.extend(paths(&job.files));
        args.push(tb.display().to_string());
        let r = tool(&job.dir, "verilator_build.log", run.timeout_s, "verilator", &args);
        if !r.ok {
            row.fail(format!("sim build: {}", first_error(&r.output)));
            return;
        }
        let _ = std::fs::write(&stamp_file, &stamp);
    }
    let args = vec![
        "+verilator+rand+reset+2".to_string(),
        format!("+verilator+seed+{}", run.seed),
        format!("+golden={}", job.golden.display()),
        format!("+seed={}", run.seed),
    ];
    let r = tool(&job.dir, "sim.log", run.timeout_s, &bin.display().to_string(), &args);
    let verdict = r.output.lines().find(|l| l.starts_with("PASS") || l.starts_with("FAIL")).unwrap_or("");
    row.sim_outputs = verdict
        .split_whitespace()
        .find_map(|w| w.strip_prefix("outputs="))
        .and_then(|v| v.split('/').next()?.parse().ok());
    if !r.ok || !verdict.starts_with("PASS") {
        row.fail(format!("sim: {}", if verdict.is_empty() { first_error(&r.output) } else { verdict.to_string() }));
    }
    cycle_columns(row, &job.block, &job.config, &job.derived, &r.output);
}

/// The cycle columns of a row from its bench log: the workload's timing line (measured, and
/// the golden file's prediction) against the manifest's prediction; a difference or a missing
/// line makes the row FAILED.
pub(super) fn cycle_columns(row: &mut Row, block: &str, config: &Config, derived: &Value, log: &str) {
    let Some(w) = workload(block) else { return };
    let Some(per_item) = (w.per_item)(config) else { return };
    row.workload = format!("{}{per_item}", w.size);
    row.throughput_unit = w.unit.to_string();
    row.cycles_predicted = derived.pointer(w.predicted).and_then(Value::as_u64);
    let timings = timing_lines(log);
    let Some(&(golden_pred, measured)) = timings.get(w.segment) else {
        row.fail(format!("sim: the bench printed no timing line for segment {}", w.segment + 1));
        return;
    };
    row.cycles_measured = Some(measured);
    row.throughput = Some((w.items * per_item) as f64 / measured.max(1) as f64);
    if Some(measured) != row.cycles_predicted || Some(golden_pred) != row.cycles_predicted {
        row.fail(format!(
            "cycles: measured {measured}, manifest predicts {:?} (golden file {golden_pred})",
            row.cycles_predicted
        ));
    }
}

/// Fills the accuracy columns from the reference decoder layer: K-Means and uniform INT at the
/// point's bits; Orizuru blocks with k/N outliers per side (what the detector would supply).
/// Rows of other blocks stay empty.
pub fn add_accuracy(sweep: &Sweep, rows: &mut [Row]) {
    use crate::reference::layer::{self, Codebook, Layer, QBits, SYNTH_OUTLIER_CHANNELS, SYNTH_TOKENS};
    if !sweep.run.accuracy {
        return;
    }
    let seed = sweep.run.seed;
    let l = Layer::default_synthetic(seed);
    let calib = layer::synthetic_tokens(seed.wrapping_add(1), l.d(), SYNTH_TOKENS, SYNTH_OUTLIER_CHANNELS);
    let toks = layer::synthetic_tokens(seed.wrapping_add(2), l.d(), SYNTH_TOKENS, SYNTH_OUTLIER_CHANNELS);
    let mut memo: BTreeMap<(u32, u32, u32, u32, u32, u64), Option<(f64, f64)>> = BTreeMap::new();
    for row in rows.iter_mut() {
        let Some(p) = sweep.points.get(row.point) else { continue };
        let q = &p.config.quant;
        let Some(frac) = crate::registry::find(&row.block).and_then(|k| k.accuracy_outliers(&p.config)) else {
            continue;
        };
        let key = (q.nw, q.na, q.wc_bits, q.ac_bits, q.x_bits, frac.to_bits());
        let v = *memo.entry(key).or_insert_with(|| {
            crate::reference::commands::check_quant(q).ok()?;
            let rows = layer::evaluate(&l, &calib, &toks, QBits::from(q), frac, seed).ok()?;
            let pick = |cb: Codebook| {
                rows.iter()
                    .filter_map(|r| r.scheme.map(|s| (s, r.err.rel_l2_delta)))
                    .find(|(s, _)| s.codebook == cb && s.outlier_fraction == frac)
                    .map(|(_, e)| e)
            };
            Some((pick(Codebook::KMeans)?, pick(Codebook::Uniform)?))
        });
        if let Some((km, int)) = v {
            row.layer_err_kmeans = Some(km);
            row.layer_err_int = Some(int);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transistors_and_refuses_partial_counts() {
        assert_eq!(parse_transistors("   Estimated number of transistors:     299462\n"), Some(299462));
        assert_eq!(parse_transistors("   Estimated number of transistors:     225298+\n"), None);
        assert_eq!(parse_transistors("nothing"), None);
    }

    /// Real Yosys 0.23 output (testdata/hier_stat_design.v: `sub`, 25 cells of which 5
    /// flip-flops, twice in `mid` (4 cells of its own), `mid` twice and `sub` once more in
    /// `top` (6 of its own, 1 a flip-flop)). The hierarchy totals are 5 × 25 + 2 × 4 + 6 = 139
    /// cells and 5 × 5 + 1 = 26 flip-flops, and the transistors are the design hierarchy's
    /// 1 302, not a module's own line (`mid`'s `48+` comes first).
    #[test]
    fn hierarchical_stat_is_instances_times_module_counts() {
        let stat = include_str!("testdata/hier_stat.txt");
        assert_eq!(hier_totals(stat, "top"), Ok((139, 26)));
        // The totals belong to the top `stat` was given: read for another module they disagree.
        assert_eq!(hier_totals(stat, "mid"), Err("Σ instances × module cells under mid = 54, Yosys's stat -top total = 139".into()));
        let cmos = include_str!("testdata/hier_cmos_stat.txt");
        assert_eq!(hier_transistors(cmos), Some(1302));
        assert_eq!(parse_transistors(cmos), None, "the first line is mid's partial 48+");
        // A total that disagrees with the walk (a module missed or counted twice) is refused.
        let off = stat.replacen("Number of cells:                139", "Number of cells:                140", 1);
        assert_ne!(off, stat);
        assert_eq!(hier_totals(&off, "top"), Err("Σ instances × module cells under top = 139, Yosys's stat -top total = 140".into()));
        // `sub` counted once per module that holds it (not per instance) is not what we report.
        let once = stat.replacen("     mid                             2\n", "     mid                             1\n", 1);
        assert_ne!(once, stat);
        assert!(hier_totals(&once, "top").is_err());
        assert_eq!(hier_totals(stat, "nope"), Err("generic_stat.txt has no module nope".into()));
        // Without submodules there is no hierarchy section: the one module's figures.
        let one = "=== sub ===\n   Number of cells:                 25\n     $_DFF_P_                        5\n     $_XOR_                         20\n   Estimated number of transistors:        236\n";
        assert_eq!(hier_totals(one, "sub"), Ok((25, 5)));
        assert_eq!(hier_transistors(one), Some(236));
        assert_eq!(hier_transistors("=== a ===\n Estimated number of transistors: 3\n=== b ===\n Estimated number of transistors: 4\n"), None);
        let partial = cmos.replace("transistors:       1302", "transistors:       1302+");
        assert_ne!(partial, cmos);
        assert_eq!(hier_transistors(&partial), None);
    }

    #[test]
    fn reads_timing_lines_of_a_bench_log() {
        let log = "  timing: predicted 54 cycles, measured 54\n  timing: predicted 2070 cycles, measured 2071  <-- MISMATCH\nPASS: x\n";
        assert_eq!(timing_lines(log), vec![(54, 54), (2070, 2071)]);
    }

    /// A tile row's cycle columns: the first timing line is the K = k_max, 64-row GEMV; a
    /// measured count other than the manifest's, or a golden file that predicted another one,
    /// or no timing line at all, makes the row FAILED.
    #[test]
    fn tile_cycle_columns_fail_the_row_on_any_mismatch() {
        use crate::registry::BlockKind;
        let cfg = Config::parse("[quant]\nnw = 2\nna = 2\n[tile]\nlines = 2\nlanes = 4\nreduce_width = 4\ncomp_macs = 2\nk_max = 256\nk = 8\nradix = 4\n").unwrap();
        let d = crate::tile::TileBlock.derived(&cfg);
        let p = d["predicted"]["gemv_kmax_rows64_cycles"].as_u64().unwrap();
        let run = |log: String| {
            let mut row = Row::default();
            cycle_columns(&mut row, "tile", &cfg, &d, &log);
            row
        };
        let ok = run(format!("  timing: predicted {p} cycles, measured {p}\n  timing: predicted 9 cycles, measured 9\nPASS: tile\n"));
        assert!(ok.ok(), "{}", ok.failure);
        assert_eq!((ok.cycles_predicted, ok.cycles_measured), (Some(p), Some(p)));
        assert_eq!(ok.workload, "GEMV 64 x K=256");
        assert_eq!(ok.throughput, Some(64.0 * 256.0 / p as f64));
        let late = run(format!("  timing: predicted {p} cycles, measured {}  <-- MISMATCH\n", p + 1));
        assert_eq!(late.failure, format!("cycles: measured {}, manifest predicts Some({p}) (golden file {p})", p + 1));
        let stale = run(format!("  timing: predicted {} cycles, measured {p}\n", p + 2));
        assert!(stale.failure.starts_with("cycles: measured"), "{}", stale.failure);
        let none = run("PASS: tile\n".into());
        assert_eq!(none.failure, "sim: the bench printed no timing line for segment 1");
        // The baseline tile's row reads its own manifest (dequantize-multiply lines: 2 cycles
        // less on tile_small) and fails against the index tile's count.
        let dq = crate::tile_dq::DqTileBlock.derived(&cfg);
        let pd = dq["predicted"]["gemv_kmax_rows64_cycles"].as_u64().unwrap();
        assert_eq!(pd + 2, p);
        let mut row = Row::default();
        cycle_columns(&mut row, "dq_tile", &cfg, &dq, &format!("  timing: predicted {p} cycles, measured {p}\n"));
        assert!(!row.ok());
    }

    #[test]
    fn over_utilisation_is_read_from_the_nextpnr_log() {
        let log = "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:  9150/ 7680   119%\nInfo: \t        ICESTORM_RAM:     0/   32     0%\n";
        assert_eq!(over_utilised(log), Some(("ICESTORM_LC".into(), 9150, 7680)));
        assert_eq!(over_utilised("Info: \t         ICESTORM_LC:  4921/ 7680    64%\n"), None);
    }

    #[test]
    fn first_error_prefers_the_error_line() {
        assert_eq!(first_error("a\nERROR: Module `x' not found\nb\n"), "ERROR: Module `x' not found");
        assert_eq!(first_error("a\nlast words\n\n"), "last words");
    }

    #[test]
    fn wrapper_feeds_every_input_bit_and_captures_every_output_bit() {
        let mut top = Module::new("blk");
        top.clock_reset();
        top.input("a", 5, "").output("y", 3, "");
        let v = fmax_wrapper(&top).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        // rst (1) + a (5) inputs, y (3) outputs.
        assert!(v.contains("reg [5:0] in_chain_q;"), "{v}");
        assert!(v.contains("reg [2:0] out_chain_q;"), "{v}");
        assert!(v.contains(".a (in_chain_q[5:1])") && v.contains(".rst (in_chain_q[0:0])"), "{v}");
        assert!(v.contains(".y (dut_out[2:0])") && v.contains(".clk (clk)"), "{v}");
    }
}
