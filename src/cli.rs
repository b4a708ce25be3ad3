//! The `kllm-gen` command line.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::design;

#[derive(Parser)]
#[command(name = "kllm-gen", version, about = "RTL generator for K-Means-quantized LLM accelerators")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate Verilog, file list, manifest and params header into OUT/<config name>/.
    Generate {
        /// Config TOML files (one design folder each).
        #[arg(long, required = true, num_args = 1..)]
        config: Vec<PathBuf>,
        #[arg(long, default_value = "verilog_out")]
        out: PathBuf,
    },
    /// Print every derived quantity (widths, bins, latencies, predicted cycles).
    Explain {
        #[arg(long)]
        config: PathBuf,
        /// A tile config only: the cycles of one GEMV of K elements and ROWS rows (vector
        /// phase, row phase, single and back to back), its bottleneck branch and for which k
        /// compensation hides behind counting; OUTLIERS (0..=2k) is checked and reported.
        #[arg(long, value_name = "K,ROWS[,OUTLIERS]")]
        gemv: Option<String>,
    },
    /// Write golden test vectors (stimulus + expected results) for each block of a config.
    /// With --from-layer: the MatMuls of a K-Means-quantized decoder layer, as tile GEMVs for a
    /// config with [tile] (OUT/golden_tile_layer.txt), else as PE-line vectors
    /// (OUT/golden_pe_line_layer.txt).
    Golden {
        #[arg(long)]
        config: PathBuf,
        /// Folder for golden_<block>.txt files.
        #[arg(long)]
        out: PathBuf,
        /// Random seed (default: the config's test.seed).
        #[arg(long)]
        seed: Option<u64>,
        /// Random vectors per block (default: the config's test.vectors).
        #[arg(long)]
        vectors: Option<u32>,
        /// Quick runs: divide the vector count (the config's or --vectors) by this, rounding up,
        /// so `make test` runs every config in minutes; the timed segments are kept whole.
        #[arg(long, default_value_t = 1)]
        vectors_divisor: u32,
        /// Only this block.
        #[arg(long)]
        block: Option<String>,
        /// Dump the default synthetic layer's MatMuls (K-Means W(nw)A(na), 0.5 %+0.5 %
        /// outliers) instead of random vectors: every MatMul on every token as a tile GEMV with
        /// compensation on (config with [tile]), or as PE-line dot products.
        #[arg(long)]
        from_layer: bool,
        /// With --from-layer and a tile: tokens run through the layer (eval's default).
        #[arg(long, default_value_t = crate::reference::commands::EVAL_TOKENS, requires = "from_layer")]
        tokens: usize,
        /// With --from-layer: take decoder layer --layer of this checkpoint (LLaMA family or
        /// GPT-2, fed with seeded tokens through its embedding) instead of the synthetic layer.
        #[arg(long, requires = "from_layer")]
        weights: Option<PathBuf>,
        #[arg(long, default_value_t = 0, requires = "weights")]
        layer: usize,
        /// Attention head size of the checkpoint.
        #[arg(long, default_value_t = 128, requires = "weights")]
        head_dim: usize,
    },
    /// Per tensor of a .safetensors file: MSE and SQNR of K-Means vs uniform INT weights.
    Quantize {
        #[arg(long)]
        weights: PathBuf,
        /// Only this tensor (default: every float tensor of rank >= 2).
        #[arg(long)]
        tensor: Option<String>,
        #[arg(long, default_value_t = 4)]
        nw: u32,
        /// Signed width of a weight centroid.
        #[arg(long, default_value_t = 8)]
        wc_bits: u32,
        /// Seed of k-means++.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// K-Means solver(s) to run and report.
        #[arg(long, value_enum, default_value_t = crate::reference::commands::Solver::Both)]
        solver: crate::reference::commands::Solver,
    },
    /// Decoder-layer output error vs f32 for K-Means and uniform INT, each with and without
    /// look-ahead outliers.
    Eval {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Take nw/na/centroid bits from this config's [quant] section.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Weight index bits (overrides the config).
        #[arg(long)]
        nw: Option<u32>,
        /// Activation index bits (overrides the config).
        #[arg(long)]
        na: Option<u32>,
        /// Evaluate this checkpoint (LLaMA family or GPT-2; every decoder layer, on seeded tokens
        /// through its embedding) instead of the synthetic layer.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Only this decoder layer of --weights (default: every layer).
        #[arg(long, requires = "weights")]
        layer: Option<usize>,
        /// Also write the per-layer figures of --weights as CSV to this file.
        #[arg(long, requires = "weights")]
        csv: Option<PathBuf>,
        /// Attention head size of the checkpoint.
        #[arg(long, default_value_t = 128)]
        head_dim: usize,
        /// Tokens evaluated (and as many calibration tokens).
        #[arg(long, default_value_t = crate::reference::commands::EVAL_TOKENS)]
        tokens: usize,
        /// Outliers per side per token, percent of the reduction length.
        #[arg(long, default_value_t = 0.5)]
        outliers: f64,
        /// Rebuild the K-Means + outliers row from the RTL's integer results: a bench dump of
        /// the tile fed by `golden --from-layer` (same --config, --seed, --tokens, --weights,
        /// --layer), or the folder holding its rtl_tile_layer.txt.
        #[arg(long, requires = "config", conflicts_with = "csv")]
        rtl_results: Option<PathBuf>,
    },
    /// Time Lloyd and the exact 1-D K-Means on N seeded Gaussian weights.
    BenchKmeans {
        #[arg(long, default_value_t = 10_000_000)]
        n: usize,
        #[arg(long, default_value_t = 16)]
        k: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run a parameter sweep: every point generated, linted, synthesized (Yosys generic and
    /// iCE40 + nextpnr), simulated and scored; writes results.csv, results.md and SVG plots.
    Sweep {
        /// The sweep file (generators/sweeps/*.toml).
        file: PathBuf,
        /// Report folder (default: reports/<sweep name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Work folder: generated designs, tool logs and the row cache.
        #[arg(long, default_value = "build/sweep")]
        work: PathBuf,
        /// Folder of the Verilator benches.
        #[arg(long, default_value = "testbenches")]
        testbenches: PathBuf,
        /// Jobs run in parallel (default: the number of cores).
        #[arg(short, long)]
        jobs: Option<usize>,
        /// Run every job again, ignoring cached rows.
        #[arg(long)]
        fresh: bool,
        /// Only check the sweep file and list its points.
        #[arg(long)]
        check: bool,
        /// Run the jobs as one Slurm job array (sbatch); --work must be a folder every node sees.
        #[arg(long)]
        slurm: bool,
        /// Slurm partition (default: the cluster's default partition).
        #[arg(long, requires = "slurm")]
        partition: Option<String>,
        /// Slurm time limit per task, as sbatch --time takes it (e.g. 1:00:00).
        #[arg(long, requires = "slurm")]
        time: Option<String>,
        /// Slurm account to charge.
        #[arg(long, requires = "slurm")]
        account: Option<String>,
        /// Do not submit: wait for the last submission of this sweep and collect its rows.
        #[arg(long, requires = "slurm")]
        collect: bool,
        /// Seconds between two squeue polls.
        #[arg(long, requires = "slurm", default_value_t = 10)]
        poll: u64,
        /// Internal: run one array task of a --slurm submission (the task list file).
        #[arg(long, hide = true, conflicts_with = "slurm")]
        slurm_task: Option<PathBuf>,
    },
    /// List the blocks a config selects, one per line: `<name> <top module>`.
    Blocks {
        #[arg(long)]
        config: PathBuf,
    },
    /// Put several blocks, each from its own config, into one top `kllm_NAME` (ports under each
    /// part's prefix) in OUT/NAME/, with bench bindings per part.
    Compose {
        /// PREFIX=CONFIG[:BLOCK], once per part (e.g. a=generators/tiny.toml:pe_line).
        #[arg(long = "part", required = true)]
        parts: Vec<String>,
        /// Design name: the top is kllm_NAME, the folder OUT/NAME.
        #[arg(long, default_value = "composed")]
        name: String,
        #[arg(long, default_value = "verilog_out")]
        out: PathBuf,
    },
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli.cmd) {
        Ok(()) => 0,
        Err(e) => {
            // One line: the cause chain joined by ": ".
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            1
        }
    }
}

/// A command-line mistake as one line (clap's first paragraph, without its usage block), exit
/// code 2; `--help` and `--version` print as usual.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        e.exit();
    }
    let text = e.render().to_string();
    let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    eprintln!("{} (see --help)", first.join(" "));
    2
}

fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Generate { config, out } => {
            // Validate every config before writing any folder.
            for c in &config {
                Config::load(c)?;
            }
            for c in &config {
                let dir = design::generate(c, &out)?;
                println!("generated {}", dir.display());
            }
        }
        Cmd::Explain { config, gemv } => {
            let cfg = Config::load(&config)?;
            let name = design::design_name(&config);
            match gemv {
                None => print!("{}", design::explain(&cfg, &name)),
                Some(text) => {
                    let Some(tc) = cfg.tile.as_ref() else {
                        bail!("`--gemv` needs a config with [tile]; config '{name}' has none");
                    };
                    let d = crate::tile::TileDerived::new(&cfg.quant, tc);
                    let g = crate::tile::parse_gemv(&text, &d).map_err(anyhow::Error::msg)?;
                    print!("{}", crate::tile::explain_gemv(&name, &cfg.quant, &d, g));
                }
            }
        }
        Cmd::Golden { config, out, seed, vectors, vectors_divisor, block, from_layer, tokens, weights, layer, head_dim } => {
            let cfg = Config::load(&config)?;
            let name = design::design_name(&config);
            let seed = seed.unwrap_or(cfg.test.seed);
            let vectors = vectors.unwrap_or(cfg.test.vectors);
            crate::config::in_range("--vectors", vectors, 1, 10_000_000).map_err(anyhow::Error::msg)?;
            crate::config::in_range("--vectors-divisor", vectors_divisor, 1, 10_000).map_err(anyhow::Error::msg)?;
            let vectors = vectors.div_ceil(vectors_divisor);
            if from_layer {
                let kind = if cfg.tile.is_some() { "tile" } else { "pe_line" };
                if block.as_deref().is_some_and(|b| b != kind) {
                    bail!("--from-layer writes {kind} vectors for config '{name}'; drop --block or use --block {kind}");
                }
                if cfg.quant.float().is_some() {
                    bail!(
                        "config '{name}': `quant.numerics` = \"{}\": --from-layer writes integer-mode vectors; \
                         the float-mode decoder layer is not built yet",
                        cfg.quant.numerics
                    );
                }
                crate::reference::commands::check_quant(&cfg.quant)?;
                use crate::reference::golden_layer::LayerSource;
                let src = match &weights {
                    Some(path) => LayerSource::Checkpoint { path, layer, head_dim },
                    None => LayerSource::Synthetic,
                };
                if cfg.tile.is_some() {
                    crate::config::in_range("--tokens", tokens, 1, 4096).map_err(anyhow::Error::msg)?;
                    let (text, summary) = crate::reference::golden_layer::tile_golden(&cfg, &name, seed, tokens, src)?;
                    std::fs::create_dir_all(&out)?;
                    let path = out.join("golden_tile_layer.txt");
                    let tmp = out.join(".golden_tile_layer.txt.tmp");
                    std::fs::write(&tmp, &text)?;
                    std::fs::rename(&tmp, &path)?;
                    println!("wrote {} (seed {seed}, {tokens} tokens, every MatMul of the layer as tile GEMVs, compensation on)", path.display());
                    print!("{summary}");
                    return Ok(());
                }
                let g = crate::reference::golden_layer::pe_line_golden(&cfg, &name, seed, vectors, src)?;
                std::fs::create_dir_all(&out)?;
                let path = out.join("golden_pe_line_layer.txt");
                let tmp = out.join(".golden_pe_line_layer.txt.tmp");
                std::fs::write(&tmp, &g.text)?;
                std::fs::rename(&tmp, &path)?;
                let dots: u64 = g.figures.iter().map(|f| f.dots).sum();
                println!("wrote {} (seed {seed}, {dots} dot products from the layer's 7 MatMuls)", path.display());
                println!("outlier compensation per SPEC (not in the file: the PE line has no compensation path yet):");
                print!("{}", g.summary());
                return Ok(());
            }
            let blocks = design::blocks(&cfg);
            if let Some(b) = &block {
                if !blocks.iter().any(|x| x.name == b) {
                    let names: Vec<_> = blocks.iter().map(|x| x.name).collect();
                    bail!("config '{name}' has no block '{b}' (it has: {})", names.join(", "));
                }
            }
            std::fs::create_dir_all(&out)?;
            for b in blocks.iter().filter(|b| block.as_deref().is_none_or(|n| n == b.name)) {
                let text = design::golden_text(&cfg, &name, b, vectors, seed);
                let path = out.join(format!("golden_{}.txt", b.name));
                let tmp = out.join(format!(".golden_{}.txt.tmp", b.name));
                std::fs::write(&tmp, text)?;
                std::fs::rename(&tmp, &path)?;
                println!("wrote {} (seed {seed}, {vectors} vectors)", path.display());
            }
        }
        Cmd::Quantize { weights, tensor, nw, wc_bits, seed, solver } => {
            print!("{}", crate::reference::commands::quantize(&weights, tensor.as_deref(), nw, wc_bits, seed, solver)?);
        }
        Cmd::Eval { seed, config, nw, na, weights, layer, csv, head_dim, tokens, outliers, rtl_results } => {
            let cfg = config.as_ref().map(|c| Config::load(c)).transpose()?;
            let mut q = cfg.as_ref().map(|c| c.quant.clone()).unwrap_or_default();
            q.nw = nw.unwrap_or(q.nw);
            q.na = na.unwrap_or(q.na);
            if let Some(rtl) = rtl_results {
                let (cfg, path) = (cfg.expect("clap requires --config"), config.expect("clap requires --config"));
                let Some(t) = &cfg.tile else {
                    bail!("--rtl-results reads a tile's results; config {} has no [tile] section", path.display());
                };
                if nw.is_some() || na.is_some() {
                    bail!("--rtl-results takes the bits of the tile's config; drop --nw/--na");
                }
                let w = match (&weights, layer) {
                    (Some(p), Some(l)) => Some((p.as_path(), l, head_dim)),
                    (Some(_), None) => bail!("--rtl-results with --weights needs --layer L (the layer `golden --from-layer` fed)"),
                    (None, _) => None,
                };
                let d = crate::tile::TileDerived::new(&cfg.quant, t);
                let fmt = crate::reference::commands::DumpFormat { field: "y", bits: d.y_bits, mask: Some("rows") };
                print!("{}", crate::reference::commands::eval_rtl(&q, &fmt, seed, w, tokens, outliers, &rtl)?);
                return Ok(());
            }
            let w = weights.as_deref().map(|p| (p, layer, head_dim));
            print!("{}", crate::reference::commands::eval(&q, seed, w, tokens, outliers, csv.as_deref())?);
        }
        Cmd::BenchKmeans { n, k, seed } => {
            print!("{}", crate::reference::commands::bench_kmeans(n, k, seed)?);
        }
        Cmd::Sweep { file, out, work, testbenches, jobs, fresh, check, slurm, partition, time, account, collect, poll, slurm_task } => {
            let sweep = crate::sweep::Sweep::load(&file)?;
            if check {
                for p in &sweep.points {
                    let blocks: Vec<_> = design::blocks(&p.config).iter().map(|b| b.name).collect();
                    println!("{} {} -> {}", p.name(), p.describe(), blocks.join(", "));
                }
                return Ok(());
            }
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            let jobs = jobs.unwrap_or(cores);
            crate::config::in_range("--jobs", jobs, 1, 256).map_err(anyhow::Error::msg)?;
            let out = out.unwrap_or_else(|| crate::sweep::default_out(&sweep));
            let args = crate::sweep::RunArgs { out, work, testbenches, jobs, fresh };
            if let Some(tasks) = slurm_task {
                return crate::sweep::slurm::task(&sweep, &args, &tasks);
            }
            if slurm {
                crate::config::in_range("--poll", poll, 1, 3600).map_err(anyhow::Error::msg)?;
                let s = crate::sweep::slurm::SlurmArgs { partition, time, account, collect, poll_s: poll };
                crate::sweep::slurm::run(&sweep, &file, &args, &s)?;
                return Ok(());
            }
            crate::sweep::run(&sweep, &args)?;
        }
        Cmd::Blocks { config } => {
            let cfg = Config::load(&config)?;
            for b in design::blocks(&cfg) {
                println!("{} {}", b.name, b.top);
            }
        }
        Cmd::Compose { parts, name, out } => {
            if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') || name.is_empty() {
                bail!("`--name` = {name:?} must be a lower-case identifier (a-z, 0-9, _)");
            }
            let parts = parts.iter().map(|p| crate::compose::parse_part(p)).collect::<Result<Vec<_>>>()?;
            let r = crate::compose::render(&name, &parts)?;
            let dir = out.join(&name);
            design::write_dir_atomic(&dir, &r.files)?;
            println!("{}", dir.display());
        }
    }
    Ok(())
}
