//! Sweeps on a Slurm cluster: `kllm-gen sweep FILE --slurm` submits ONE job array (`sbatch
//! --array`), one task per job of the grid that the cache does not hold yet. Every task runs the
//! same per-job flow as a local run (`flow::run_job`) and writes its row into the sweep's work
//! folder, which must be on a directory every node sees: a passing row into the cache, every
//! row (FAILED ones too) into `slurm/rows/<key>.json`. The submitting process polls `squeue`,
//! printing where the array is, and writes the reports when no task is left; `--collect` does
//! the waiting and collecting later (from the record in `slurm/<sweep>.json`). A task that left
//! no row (killed, over its time limit, node lost) becomes a FAILED row with the state Slurm
//! gives it. Submitting again runs only what the cache lacks.
//!
//! The scheduler is Slurm itself: nothing here queues or retries work.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::flow::{self, Job};
use super::{Outcome, Row, RunArgs, Sweep};

/// The Slurm options of `kllm-gen sweep --slurm`.
#[derive(Clone, Debug, Default)]
pub struct SlurmArgs {
    pub partition: Option<String>,
    /// Per-task time limit, in any form sbatch takes (`30`, `1:00:00`, `1-0`).
    pub time: Option<String>,
    pub account: Option<String>,
    /// Only wait for the last submission and collect its rows.
    pub collect: bool,
    /// Seconds between two `squeue` polls.
    pub poll_s: u64,
}

/// What a submission leaves in `<work>/slurm/<sweep>.json`, for `--collect`.
#[derive(Serialize, Deserialize)]
struct Record {
    job_id: String,
    /// Cache key of each array task, by task index.
    keys: Vec<String>,
}

fn slurm_dir(args: &RunArgs) -> PathBuf {
    args.work.join("slurm")
}

fn row_file(args: &RunArgs, key: &str) -> PathBuf {
    slurm_dir(args).join("rows").join(format!("{key}.json"))
}

/// Submits the missing jobs as one array, waits for it and writes the reports.
pub fn run(sweep: &Sweep, sweep_file: &Path, args: &RunArgs, s: &SlurmArgs) -> Result<Outcome> {
    // Before anything is generated or written: the cluster answers and has the partition.
    check_cluster(s.partition.as_deref())?;
    let extra_tools = super::probe_extra(&sweep.run)?;
    let tools = flow::Tools::probe(&sweep.run)?;
    let jobs = flow::prepare(sweep, args, &tools)?;
    if jobs.is_empty() {
        bail!("no point of the sweep selects a block listed in `run.blocks`");
    }
    let record_path = slurm_dir(args).join(format!("{}.json", sweep.name));
    let start = Instant::now();
    let record = if s.collect {
        let text = std::fs::read_to_string(&record_path).map_err(|_| {
            anyhow!("no Slurm submission of sweep {} recorded in {}: run with --slurm first", sweep.name, record_path.display())
        })?;
        Some(serde_json::from_str::<Record>(&text).with_context(|| format!("{} is not a submission record", record_path.display()))?)
    } else {
        let todo: Vec<&Job> = jobs.iter().filter(|j| args.fresh || flow::cached(j).is_none()).collect();
        eprintln!(
            "sweep {}: {} points, {} jobs ({} cached, {} to submit to Slurm)",
            sweep.name,
            sweep.points.len(),
            jobs.len(),
            jobs.len() - todo.len(),
            todo.len()
        );
        if todo.is_empty() {
            None
        } else {
            let r = submit(sweep_file, args, s, &todo)?;
            std::fs::write(&record_path, serde_json::to_string_pretty(&r)?)?;
            Some(r)
        }
    };
    if let Some(r) = &record {
        wait(&r.job_id, r.keys.len(), s.poll_s)?;
    }
    // Collect: the cache first (rows that passed, now or before), then the task's own row,
    // else a FAILED row saying what Slurm knows about the task.
    let mut rows = vec![];
    let (mut ran, mut cached) = (0, 0);
    for job in &jobs {
        let task = record.as_ref().and_then(|r| r.keys.iter().position(|k| *k == job.key));
        let from_task = task.and_then(|_| read_row(&row_file(args, &job.key), job));
        match (from_task, flow::cached(job)) {
            (Some(row), _) => {
                ran += 1;
                rows.push(row)
            }
            (None, Some(row)) => {
                cached += 1;
                rows.push(row)
            }
            (None, None) => {
                let mut row = Row {
                    point: job.point,
                    axes: job.axes.clone(),
                    block: job.block.clone(),
                    top: job.top.clone(),
                    config_hash: job.config.hash(),
                    ..Row::default()
                };
                row.fail(match (record.as_ref(), task) {
                    (Some(r), Some(i)) => format!(
                        "slurm: task {}_{i} left no row ({}; log {})",
                        r.job_id,
                        task_state(&r.job_id, i),
                        slurm_dir(args).join("logs").join(format!("{}_{i}.out", r.job_id)).display()
                    ),
                    _ => "slurm: not submitted (collect after a submission that included it)".into(),
                });
                rows.push(row);
            }
        }
    }
    super::finish(sweep, args, rows, &tools, &extra_tools, (ran, cached), start)
}

fn read_row(path: &Path, job: &Job) -> Option<Row> {
    let mut row: Row = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    row.point = job.point;
    row.axes = job.axes.clone();
    Some(row)
}

/// Runs a Slurm command; a missing binary is one line naming the package.
fn slurm_cmd(cmd: &str, args: &[String]) -> Result<std::process::Output> {
    Command::new(cmd).args(args).output().map_err(|e| {
        anyhow!("`{cmd}` cannot be run ({e}): install the Slurm client (Debian slurm-client) or run where Slurm is, or drop --slurm")
    })
}

/// Asks the controller for its partitions (`sinfo`): an unreachable controller or a partition
/// it does not have is one line naming what to set, before the sweep writes anything.
fn check_cluster(partition: Option<&str>) -> Result<()> {
    let out = slurm_cmd("sinfo", &["-h".into(), "-o".into(), "%P".into()])?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no output");
        bail!(
            "Slurm is not reachable (sinfo: {first}): start slurmctld, or set SLURM_CONF to your cluster's slurm.conf, \
             or drop --slurm"
        );
    }
    let names = partitions(&String::from_utf8_lossy(&out.stdout));
    if let Some(p) = partition {
        if !names.iter().any(|n| n == p) {
            bail!(
                "Slurm partition `{p}` does not exist (this cluster has: {}): set --partition to one of them, or leave it out \
                 for the default",
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// Partition names from `sinfo -h -o %P` (one per line; the default one is marked with `*`).
fn partitions(sinfo: &str) -> Vec<String> {
    // sinfo prints a partition once per group of node states: keep the first of each.
    let mut v: Vec<String> = vec![];
    for name in sinfo.lines().map(|l| l.trim().trim_end_matches('*')).filter(|l| !l.is_empty()) {
        if !v.iter().any(|n| n == name) {
            v.push(name.to_string());
        }
    }
    v
}

fn submit(sweep_file: &Path, args: &RunArgs, s: &SlurmArgs, todo: &[&Job]) -> Result<Record> {
    let dir = slurm_dir(args);
    std::fs::create_dir_all(dir.join("rows"))?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let keys: Vec<String> = todo.iter().map(|j| j.key.clone()).collect();
    for k in &keys {
        let _ = std::fs::remove_file(row_file(args, k));
    }
    // The task list is named by its content, so a later submission never changes the list a
    // running array reads.
    let list = keys.join("\n") + "\n";
    let tasks = dir.join(format!("tasks_{}.txt", &flow_hash(&list)[..16]));
    std::fs::write(&tasks, &list)?;
    let exe = std::env::current_exe().context("cannot find the kllm-gen executable")?;
    let abs = |p: &Path| std::path::absolute(p).map(|p| p.display().to_string());
    let wrap = format!(
        "{} sweep {} --work {} --testbenches {} --jobs 1 --slurm-task {}",
        exe.display(),
        abs(sweep_file)?,
        abs(&args.work)?,
        abs(&args.testbenches)?,
        abs(&tasks)?
    );
    let mut a: Vec<String> = vec![
        "--parsable".into(),
        format!("--array=0-{}", keys.len() - 1),
        format!("--job-name=kllm-{}", crate::design::design_name(sweep_file)),
        format!("--output={}", abs(&dir.join("logs").join("%A_%a.out"))?),
        format!("--chdir={}", abs(Path::new("."))?),
        "--ntasks=1".into(),
        "--cpus-per-task=1".into(),
    ];
    if let Some(p) = &s.partition {
        a.push(format!("--partition={p}"));
    }
    if let Some(t) = &s.time {
        a.push(format!("--time={t}"));
    }
    if let Some(acc) = &s.account {
        a.push(format!("--account={acc}"));
    }
    a.push(format!("--wrap={wrap}"));
    let out = slurm_cmd("sbatch", &a)?;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        let first = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string();
        let low = err.to_ascii_lowercase();
        if low.contains("partition") {
            bail!(
                "Slurm partition {} does not exist or is not usable ({first}): `sinfo -s` lists the partitions, set --partition",
                s.partition.as_deref().unwrap_or("(default)")
            );
        }
        if low.contains("unable to contact") || low.contains("connect") {
            bail!("Slurm is not reachable ({first}): is slurmctld running and SLURM_CONF set for this cluster?");
        }
        bail!("sbatch refused the job array: {first}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let job_id = text.trim().split(';').next().unwrap_or("").to_string();
    if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id (stdout: {:?}, stderr: {:?})", text.trim(), err.trim());
    }
    eprintln!("slurm: submitted job array {job_id} ({} tasks); logs in {}", keys.len(), dir.join("logs").display());
    Ok(Record { job_id, keys })
}

fn flow_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Polls `squeue` until no task of the array is left, printing the counts by state whenever they
/// change (and at least every minute, so a queue that does not move is visible).
fn wait(job_id: &str, tasks: usize, poll_s: u64) -> Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    let mut last_print = Instant::now();
    let mut failures = 0;
    loop {
        let out = slurm_cmd("squeue", &["-h".into(), "-r".into(), "-j".into(), job_id.into(), "-o".into(), "%T".into()])?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            // An array that has left the controller's memory is "Invalid job id": finished.
            if err.contains("Invalid job id") {
                break;
            }
            failures += 1;
            if failures * poll_s.max(1) >= 600 {
                bail!(
                    "Slurm is not reachable while waiting for job array {job_id} ({}): collect later with --collect",
                    err.trim()
                );
            }
            eprintln!("slurm: squeue failed ({}), retrying", err.trim());
        } else {
            failures = 0;
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            for state in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                *counts.entry(state.to_lowercase()).or_default() += 1;
            }
            let left: usize = counts.values().sum();
            let status = counts.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ");
            let line = format!("slurm: job array {job_id}: {} of {tasks} tasks finished{}{status}", tasks.saturating_sub(left), if status.is_empty() { "" } else { "; " });
            if line != last || last_print.elapsed() >= Duration::from_secs(60) {
                eprintln!("{line} ({:.0} s)", start.elapsed().as_secs_f64());
                last = line;
                last_print = Instant::now();
            }
            if left == 0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(poll_s.max(1)));
    }
    Ok(())
}

/// What Slurm says about one finished task: `sacct` where accounting is on, else `scontrol`
/// (which remembers a job for MinJobAge seconds).
fn task_state(job_id: &str, index: usize) -> String {
    let id = format!("{job_id}_{index}");
    if let Ok(o) = slurm_cmd("sacct", &["-n".into(), "-X".into(), "-P".into(), "-j".into(), id.clone(), "-o".into(), "State,ExitCode".into()]) {
        let t = String::from_utf8_lossy(&o.stdout);
        if o.status.success() && !t.trim().is_empty() {
            return format!("sacct: {}", t.trim().replace('|', " exit "));
        }
    }
    if let Ok(o) = slurm_cmd("scontrol", &["-o".into(), "show".into(), "job".into(), id]) {
        let t = String::from_utf8_lossy(&o.stdout);
        let field = |k: &str| t.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string);
        if let Some(state) = field("JobState=") {
            return format!("{state}, exit {}", field("ExitCode=").unwrap_or_default());
        }
    }
    "state unknown to sacct and scontrol".into()
}

/// Inside one array task: runs the job at `SLURM_ARRAY_TASK_ID` of the task list and writes its
/// row (and, if it passed, the cache entry).
pub fn task(sweep: &Sweep, args: &RunArgs, tasks: &Path) -> Result<()> {
    let index: usize = std::env::var("SLURM_ARRAY_TASK_ID")
        .map_err(|_| anyhow!("--slurm-task runs inside a Slurm array task (SLURM_ARRAY_TASK_ID is not set)"))?
        .parse()
        .context("SLURM_ARRAY_TASK_ID is not a number")?;
    let list = std::fs::read_to_string(tasks).with_context(|| format!("cannot read the task list {}", tasks.display()))?;
    let key = list.lines().nth(index).ok_or_else(|| anyhow!("task {index} is beyond the task list {}", tasks.display()))?;
    super::probe_extra(&sweep.run)?;
    let tools = flow::Tools::probe(&sweep.run)?;
    let jobs = flow::prepare(sweep, args, &tools)?;
    let job = jobs
        .iter()
        .find(|j| j.key == key)
        .ok_or_else(|| anyhow!("task {index}: job {key} is not in the sweep any more (file or tools changed since submission)"))?;
    eprintln!("slurm task {index}: {} {} ({})", job.point_name, job.block, job.describe);
    let row = flow::run_job(job, &tools, &sweep.run);
    flow::store(job, &row);
    let path = row_file(args, key);
    let tmp = path.with_extension("tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(serde_json::to_string_pretty(&row)?.as_bytes()))
        .and_then(|_| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let verdict = if row.ok() { "ok".to_string() } else { format!("FAILED: {}", row.failure) };
    eprintln!("slurm task {index}: {verdict} ({:.0} s)", row.seconds);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::partitions;

    #[test]
    fn partitions_drop_the_default_mark() {
        assert_eq!(partitions("local*\ngpu\nlocal*\n\n"), ["local", "gpu"]);
        assert_eq!(partitions(""), Vec::<String>::new());
    }
}
