//! kllm-gen: an RTL generator for K-Means-quantized LLM inference accelerators (KLLM).
//!
//! `config` reads the TOML description; each hardware family has its own module (`pe_line`,
//! `encoder`) with its config section, derived parameters, generator and golden vectors;
//! `reference` states SPEC.md's arithmetic in plain Rust; `verilog` is the typed IR and emitter;
//! `design` turns a config into a design directory; `cli` is the command line.

pub mod benchgen;
pub mod cli;
pub mod common;
pub mod compose;
pub mod config;
pub mod count_weigh;
pub mod design;
pub mod encoder;
pub mod fp;
pub mod fp_rtl;
pub mod golden;
pub mod nonlinear;
pub mod orizuru;
pub mod pe_baseline;
pub mod pe_fp;
pub mod pe_line;
pub mod reference;
pub mod registry;
pub mod rng;
pub mod sweep;
pub mod tile;
pub mod tile_dq;
pub mod tile_fp;
pub mod verilog;
