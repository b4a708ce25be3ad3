//! Parameter sweeps: a base config plus axes of values. Every point is generated, linted,
//! synthesized (Yosys generic gates and iCE40 LUTs, nextpnr-ice40 Fmax where it fits),
//! simulated against golden vectors with its cycle counts checked against the manifest, and
//! scored for accuracy on the reference decoder layer; the rows go to `results.csv`,
//! `results.md` and SVG plots.
//!
//! `spec` reads and checks the sweep file, `flow` runs the tools for one (point, block) job and
//! caches its row, `report` writes the tables, `plot` the SVGs.

pub mod asic;
pub mod ecp5;
pub mod flow;
pub mod plot;
pub mod report;
pub mod slurm;
pub mod spec;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub use spec::Sweep;

/// One measured (point, block): what every column of the result table holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub point: usize,
    /// (axis label, value), in axis order.
    pub axes: Vec<(String, String)>,
    pub block: String,
    pub top: String,
    pub config_hash: String,
    /// Empty when every step passed; otherwise why the row FAILED (first failing step).
    pub failure: String,
    pub cells: Option<u64>,
    pub ffs: Option<u64>,
    pub transistors: Option<u64>,
    pub ice40_lut4: Option<u64>,
    pub ice40_dff: Option<u64>,
    pub ice40_carry: Option<u64>,
    pub ice40_bram: Option<u64>,
    /// Where the block fits ("HX8K, 41 % of LCs") or why not; empty if not measured.
    pub ice40_fit: String,
    pub fmax_mhz: Option<f64>,
    pub comparators: Option<u64>,
    pub multipliers: Option<u64>,
    pub register_bits: Option<u64>,
    /// The timed workload the cycle columns refer to ("GEMV 64 x K=1024").
    pub workload: String,
    pub cycles_predicted: Option<u64>,
    pub cycles_measured: Option<u64>,
    /// Work done per cycle in `throughput_unit` (MAC-equivalents for PE lines).
    pub throughput: Option<f64>,
    pub throughput_unit: String,
    /// The branch that bounds the timed workload, from the block's cycle model (tiles: the
    /// activation input, counting, weighing or compensation); empty for other blocks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bottleneck: String,
    pub sim_outputs: Option<u64>,
    /// Relative L2 error of the reference decoder layer's contribution, K-Means and uniform
    /// INT at the point's bits (with k/N outliers per side for Orizuru blocks).
    pub layer_err_kmeans: Option<f64>,
    pub layer_err_int: Option<f64>,
    /// Tool wall time of the job when it ran (a cached row keeps it).
    pub seconds: f64,
    /// Standard-cell area (µm², Σ instances × module area) and OpenSTA Fmax (`run.asic`).
    #[serde(default)]
    pub asic_area_um2: Option<f64>,
    #[serde(default)]
    pub asic_fmax_mhz: Option<f64>,
    /// ECP5 LUT4 (carry cells as two), flip-flops, 18x18 multipliers, Fmax, fit (`run.ecp5`).
    #[serde(default)]
    pub ecp5_lut4: Option<u64>,
    #[serde(default)]
    pub ecp5_ff: Option<u64>,
    #[serde(default)]
    pub ecp5_dsp: Option<u64>,
    #[serde(default)]
    pub ecp5_fmax_mhz: Option<f64>,
    #[serde(default)]
    pub ecp5_fit: String,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.failure.is_empty()
    }

    pub fn fail(&mut self, why: impl Into<String>) {
        if self.failure.is_empty() {
            self.failure = why.into().replace('\n', " ");
        }
    }
}

/// How a sweep is run (command-line options, not part of the sweep file).
pub struct RunArgs {
    /// Report folder (default `reports/<sweep name>`).
    pub out: PathBuf,
    /// Work folder for designs, tool logs and the row cache.
    pub work: PathBuf,
    /// Folder with `kllm_tb.h` and `tb_<block>.cpp`.
    pub testbenches: PathBuf,
    pub jobs: usize,
    /// Ignore cached rows.
    pub fresh: bool,
}

pub struct Outcome {
    pub rows: Vec<Row>,
    pub ran: usize,
    pub cached: usize,
}

/// Runs every job of the sweep (cached rows are reused) and writes the reports. Returns an
/// error after writing them if any row FAILED.
pub fn run(sweep: &Sweep, args: &RunArgs) -> Result<Outcome> {
    // The optional flows' tools first: their messages name the one thing to set.
    let extra_tools = probe_extra(&sweep.run)?;
    let tools = flow::Tools::probe(&sweep.run)?;
    let jobs = flow::prepare(sweep, args, &tools)?;
    let total = jobs.len();
    if total == 0 {
        bail!("no point of the sweep selects a block listed in `run.blocks`");
    }
    let mut rows = vec![];
    let mut todo = vec![];
    for job in jobs {
        match (!args.fresh).then(|| flow::cached(&job)).flatten() {
            Some(row) => rows.push(row),
            None => todo.push(job),
        }
    }
    let cached = rows.len();
    let ran = todo.len();
    // Longest first, so a big point does not start last and leave a core idle at the end.
    todo.sort_by_key(|j| std::cmp::Reverse(j.weight));
    let queue = Mutex::new(VecDeque::from(todo));
    let results = Mutex::new(vec![]);
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} jobs  {elapsed_precise}  {msg}")
            .expect("template is valid"),
    );
    bar.set_position(cached as u64);
    let say = {
        let bar = bar.clone();
        move |line: String| {
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    };
    let workers = if ran > 0 { format!(" on {} workers", args.jobs.min(ran)) } else { String::new() };
    say(format!(
        "sweep {}: {} points, {total} jobs ({cached} cached, {ran} to run{workers})",
        sweep.name,
        sweep.points.len(),
    ));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(ran) {
            let (queue, results, bar, tools, say) = (&queue, &results, bar.clone(), &tools, say.clone());
            s.spawn(move || loop {
                let Some(job) = queue.lock().unwrap().pop_front() else { break };
                bar.set_message(format!("{} {}", job.point_name, job.block));
                let row = flow::run_job(&job, tools, &sweep.run);
                flow::store(&job, &row);
                let verdict = if row.ok() { "ok".to_string() } else { format!("FAILED: {}", row.failure) };
                bar.inc(1);
                say(format!(
                    "[{}/{total}] {} {} ({}): {verdict} ({:.0} s)",
                    bar.position(),
                    job.point_name,
                    job.block,
                    job.describe,
                    row.seconds
                ));
                results.lock().unwrap().push(row);
            });
        }
    });
    bar.finish_and_clear();
    rows.extend(results.into_inner().unwrap());
    finish(sweep, args, rows, &tools, &extra_tools, (ran, cached), start)
}

/// Orders the rows, adds the accuracy columns, writes the reports (local run and Slurm
/// collection alike). Returns an error after writing them if any row FAILED.
pub(crate) fn finish(
    sweep: &Sweep,
    args: &RunArgs,
    mut rows: Vec<Row>,
    tools: &flow::Tools,
    extra_tools: &[String],
    (ran, cached): (usize, usize),
    start: Instant,
) -> Result<Outcome> {
    let order: BTreeMap<&str, usize> =
        crate::registry::names().into_iter().enumerate().map(|(i, b)| (b, i)).collect();
    rows.sort_by_key(|r| (r.point, order.get(r.block.as_str()).copied().unwrap_or(usize::MAX)));
    flow::add_accuracy(sweep, &mut rows);
    let mut files = report::files(sweep, &rows, tools);
    let flows = asic::section(&rows, &crate::registry::baseline_pairs(), extra_tools);
    if let Some((_, md)) = files.iter_mut().find(|(n, _)| n == "results.md") {
        md.push_str(&flows);
    }
    // The summary (what the README embeds) gets the flows' ratios too, with their tools.
    let flow_ratios = asic::ratio_table(&rows, &crate::registry::baseline_pairs());
    if let Some((_, md)) = files.iter_mut().find(|(n, _)| n == "summary.md") {
        if !flow_ratios.is_empty() {
            md.push_str(&format!("{flow_ratios}\nStandard cells and ECP5: {}.\n", extra_tools.join("; ")));
        }
    }
    crate::design::write_dir_atomic(&args.out, &files)?;
    let failed = rows.iter().filter(|r| !r.ok()).count();
    eprintln!(
        "sweep {}: {} rows ({ran} run, {cached} cached) in {:.0} s -> {}/results.{{csv,md}} and {} plots",
        sweep.name,
        rows.len(),
        start.elapsed().as_secs_f64(),
        args.out.display(),
        files.iter().filter(|(n, _)| n.ends_with(".svg")).count()
    );
    if failed > 0 {
        bail!("{failed} of {} rows FAILED (reasons in {})", rows.len(), args.out.join("results.md").display());
    }
    Ok(Outcome { rows, ran, cached })
}

/// Versions of the tools of the optional flows (`run.asic`, `run.ecp5`) that are on; a missing
/// tool is an error before anything runs.
pub fn probe_extra(run: &spec::RunOptions) -> Result<Vec<String>> {
    let mut v = vec![];
    if run.asic {
        v.push(format!("{} with {}", asic::probe(run)?, asic::liberty(run)));
    }
    if run.ecp5 {
        v.push(ecp5::probe(run)?);
    }
    Ok(v)
}

/// Default report folder of a sweep.
pub fn default_out(sweep: &Sweep) -> PathBuf {
    Path::new("reports").join(&sweep.name)
}
