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
    },
    /// Write golden test vectors (stimulus + expected results) for each block of a config.
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
        /// Only this block.
        #[arg(long)]
        block: Option<String>,
    },
    /// List the blocks a config selects, one per line: `<name> <top module>`.
    Blocks {
        #[arg(long)]
        config: PathBuf,
    },
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => 0,
        Err(e) => {
            // One line: the cause chain joined by ": ".
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            1
        }
    }
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
        Cmd::Explain { config } => {
            let cfg = Config::load(&config)?;
            print!("{}", design::explain(&cfg, &design::design_name(&config)));
        }
        Cmd::Golden { config, out, seed, vectors, block } => {
            let cfg = Config::load(&config)?;
            let name = design::design_name(&config);
            let seed = seed.unwrap_or(cfg.test.seed);
            let vectors = vectors.unwrap_or(cfg.test.vectors);
            crate::config::in_range("--vectors", vectors, 1, 10_000_000).map_err(anyhow::Error::msg)?;
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
        Cmd::Blocks { config } => {
            let cfg = Config::load(&config)?;
            for b in design::blocks(&cfg) {
                println!("{} {}", b.name, b.top);
            }
        }
    }
    Ok(())
}
