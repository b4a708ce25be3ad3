//! Bounded fuzzing of every input the tool parses: config files, sweep files and safetensors
//! weights. The property is the project's rule for bad input: never a panic, and every rejection
//! is one non-empty line. Accepted inputs are pushed one step further (block list, `explain`,
//! a serialize/parse round trip, the sweep's points, the weights' tensors, `quantize`, `eval`),
//! because a validator that lets a bad value through shows up as a panic there.
//!
//! Inputs come from small grammars (sections and keys harvested from the parser's own "expected
//! one of" messages, so a new key is fuzzed without editing this file) plus byte-level damage.
//! Runs are deterministic: `FUZZ_SEED` (default 1) seeds proptest's ChaCha generator and
//! `FUZZ_CASES` scales the case counts (default 1.0 = the `make test` budget, a few seconds
//! each); `FUZZ_DEBUG=1` prints every rejection, to see which checks the inputs reach. Every test prints its seed and execution count (`make fuzz` shows them); a failure
//! prints the shrunk input.

use std::cell::Cell;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use kllm_gen::config::Config;
use kllm_gen::design;
use kllm_gen::reference::commands;
use kllm_gen::sweep::spec::{Sweep, MAX_POINTS};

fn seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// `base` cases scaled by `FUZZ_CASES` (a factor, e.g. 10 for a longer run).
fn cases(base: u32) -> u32 {
    let f: f64 = std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((base as f64 * f).round() as u32).max(1)
}

fn runner(base_cases: u32, salt: u64) -> TestRunner {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed().to_le_bytes());
    key[8..16].copy_from_slice(&salt.to_le_bytes());
    let cfg = PtConfig { cases: cases(base_cases), failure_persistence: None, max_shrink_iters: 4096, ..PtConfig::default() };
    TestRunner::new_with_rng(cfg, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// Runs `prop` over `strategy`, counting executions (shrinking included); panics on a failure
/// with the seed, so the run can be repeated.
fn fuzz<S: Strategy>(name: &str, base_cases: u32, salt: u64, strategy: S, prop: impl Fn(S::Value) -> Result<bool, TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let (runs, accepted) = (Cell::new(0u64), Cell::new(0u64));
    let mut r = runner(base_cases, salt);
    let result = r.run(&strategy, |v| {
        runs.set(runs.get() + 1);
        if prop(v)? {
            accepted.set(accepted.get() + 1);
        }
        Ok(())
    });
    eprintln!(
        "fuzz {name}: seed {} executions {} accepted {} rejected {} panics {}",
        seed(),
        runs.get(),
        accepted.get(),
        runs.get() - accepted.get(),
        if result.is_ok() { 0 } else { 1 }
    );
    if let Err(e) = result {
        panic!("fuzz {name} (FUZZ_SEED={}): {e}", seed());
    }
}

/// The project's rule for a rejection: one non-empty line.
fn one_line(what: &str, e: &str) -> Result<(), TestCaseError> {
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("rejected ({what}): {e}");
    }
    if e.trim().is_empty() || e.contains('\n') || e.contains('\r') {
        return Err(TestCaseError::fail(format!("{what}: rejection is not one non-empty line: {e:?}")));
    }
    Ok(())
}

// ------------------------------------------------------------------ grammar of TOML inputs

/// The backticked names after "expected" in a serde unknown-field message ("expected `a`",
/// "expected `a` or `b`", "expected one of `a`, `b`, ...").
fn expected_names(msg: &str) -> Vec<String> {
    let tail = msg.split(", expected ").nth(1).unwrap_or_else(|| panic!("no field list in {msg:?}"));
    tail.split('`').skip(1).step_by(2).map(String::from).collect()
}

/// (section, key) of every config key, asked of the parser itself.
fn config_keys() -> Vec<(String, String)> {
    let sections = expected_names(&Config::parse("[zz_not_a_section]\n").unwrap_err());
    let mut keys = vec![];
    for s in sections {
        for k in expected_names(&Config::parse(&format!("[{s}]\nzz_not_a_key = 1\n")).unwrap_err()) {
            keys.push((s.clone(), k));
        }
    }
    assert!(keys.len() > 30, "too few config keys harvested: {keys:?}");
    keys
}

fn run_keys() -> Vec<String> {
    let e = Sweep::parse("[run]\nzz_not_a_key = 1\n", "f", Path::new("f.toml")).unwrap_err();
    expected_names(&e)
}

/// Values near the edges of every range the validators use, other types, and odd floats.
fn value() -> impl Strategy<Value = toml::Value> {
    const EDGES: &[i64] = &[
        -1, 0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 24, 31, 32, 33, 63, 64, 100, 255, 256, 257, 511, 512, 513,
        1024, 4096, 4097, 8192, 65536, 1 << 20, (1 << 20) + 1, 10_000_000, 10_000_001, (1 << 31) - 1, 1 << 31, 1 << 32,
        i64::MAX, i64::MIN,
    ];
    const WORDS: &[&str] = &[
        "index", "value", "silu", "exp", "gelu", "tanh", "square", "sigmoid", "relu", "mul", "silu_mul", "add", "pe_line",
        "orizuru", "", "x", "\u{e9}", "nan",
    ];
    prop_oneof![
        6 => proptest::sample::select(EDGES).prop_map(toml::Value::Integer),
        2 => any::<i64>().prop_map(toml::Value::Integer),
        2 => any::<bool>().prop_map(toml::Value::Boolean),
        2 => proptest::sample::select(WORDS).prop_map(|s| toml::Value::String(s.to_string())),
        2 => prop_oneof![
            Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(0.0), Just(-0.0), Just(1e-300),
            Just(1e300), Just(0.03125), Just(-1.0), Just(1e-3), any::<f64>()
        ]
        .prop_map(toml::Value::Float),
        1 => proptest::collection::vec(proptest::sample::select(EDGES), 0..3)
            .prop_map(|v| toml::Value::Array(v.into_iter().map(toml::Value::Integer).collect())),
    ]
}

/// A config as a TOML table: a few sections, each with a few keys (mostly known ones).
fn config_table(keys: std::sync::Arc<Vec<(String, String)>>) -> impl Strategy<Value = toml::Table> {
    let n = keys.len();
    proptest::collection::vec((0..n + 2, value()), 0..7).prop_map(move |kv| {
        let mut t = toml::Table::new();
        for (i, v) in kv {
            let (s, k) = match keys.get(i) {
                Some((s, k)) => (s.clone(), k.clone()),
                None if i == n => ("pe_line".to_string(), "zz_unknown".to_string()),
                None => ("zz_section".to_string(), "lanes".to_string()),
            };
            let sec = t.entry(s).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(st) = sec {
                st.insert(k, v);
            }
        }
        t
    })
}

/// TOML text of a table, or (when the serializer refuses, e.g. an empty key) nothing.
fn render(t: &toml::Table) -> String {
    toml::to_string(t).unwrap_or_default()
}

/// Byte-level damage that keeps the text UTF-8: inserted syntax characters, a deleted range,
/// a duplicated line (a repeated key or section), or a truncation.
fn damage(text: String, ops: Vec<(u8, usize, usize)>) -> String {
    const JUNK: &[&str] = &["[", "]", "=", "\"", "\n", "#", ".", "{", "}", ",", "'''", "\u{0}", "\u{1F600}", "[[", " = 1", "0x", "-"];
    let mut s = text;
    for (op, a, b) in ops {
        let cut = |s: &str, i: usize| {
            let mut i = if s.is_empty() { 0 } else { i % (s.len() + 1) };
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match op % 4 {
            0 => {
                let i = cut(&s, a);
                s.insert_str(i, JUNK[b % JUNK.len()]);
            }
            1 => {
                let i = cut(&s, a);
                let j = cut(&s, i + b % 8);
                s.replace_range(i..j.max(i), "");
            }
            2 => {
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let l = lines[a % lines.len()].to_string();
                    s = format!("{s}\n{l}\n");
                }
            }
            _ => {
                let i = cut(&s, a);
                s.truncate(i);
            }
        }
    }
    s
}

fn damaged(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (text, proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 0..3))
        .prop_map(|(t, ops)| damage(t, ops))
}

// ------------------------------------------------------------------ config files

fn check_config(text: &str) -> Result<bool, TestCaseError> {
    match Config::parse(text) {
        Err(e) => {
            one_line("config", &e)?;
            Ok(false)
        }
        Ok(cfg) => {
            let blocks = design::blocks(&cfg);
            prop_assert!(!blocks.is_empty(), "accepted config selects no block: {text}");
            let _ = design::explain(&cfg, "fuzz");
            // What the tool prints back (hash, manifest) must describe the same design.
            let again = toml::to_string(&cfg).map_err(|e| TestCaseError::fail(format!("serialize: {e}")))?;
            let back = Config::parse(&again).map_err(|e| TestCaseError::fail(format!("round trip rejected: {e}\n{again}")))?;
            prop_assert_eq!(back.hash(), cfg.hash());
            Ok(true)
        }
    }
}

#[test]
fn fuzz_config_parser_and_validator() {
    let keys = std::sync::Arc::new(config_keys());
    let grammar = damaged(config_table(keys).prop_map(|t| render(&t)));
    let committed: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("generators"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "toml").then(|| std::fs::read_to_string(p).unwrap())
        })
        .collect();
    let mutated = damaged(proptest::sample::select(committed));
    let strategy = prop_oneof![6 => grammar, 3 => mutated, 1 => "\\PC{0,200}"];
    fuzz("config", 2500, 1, strategy, |text| check_config(&text));
}

// ------------------------------------------------------------------ sweep files

fn sweep_text(keys: std::sync::Arc<Vec<(String, String)>>, run: Vec<String>) -> impl Strategy<Value = String> {
    let n = keys.len();
    let cols = kllm_gen::sweep::report::NUMERIC_COLUMNS;
    let label = proptest::collection::vec(0..n + 1, 1..3).prop_map({
        let keys = keys.clone();
        move |ix| {
            ix.iter()
                .map(|&i| keys.get(i).map(|(s, k)| format!("{s}.{k}")).unwrap_or_else(|| "lanes".to_string()))
                .collect::<Vec<_>>()
                .join("+")
        }
    });
    let axis = (label, prop_oneof![9 => proptest::collection::vec(value(), 0..5).prop_map(toml::Value::Array), 1 => value()]);
    let plot = (proptest::sample::select(cols), proptest::sample::select(cols), any::<bool>(), any::<bool>());
    (
        proptest::collection::vec((proptest::sample::select(run), value()), 0..3),
        config_table(keys),
        proptest::collection::vec(axis, 0..4),
        proptest::collection::vec(plot, 0..2),
    )
        .prop_map(|(run, base, axes, plots)| {
            let mut t = toml::Table::new();
            if !run.is_empty() {
                t.insert("run".into(), toml::Value::Table(run.into_iter().collect()));
            }
            t.insert("base".into(), toml::Value::Table(base));
            t.insert("axes".into(), toml::Value::Table(axes.into_iter().collect()));
            let plots: Vec<toml::Value> = plots
                .into_iter()
                .map(|(x, y, lx, bogus)| {
                    let mut p = toml::Table::new();
                    p.insert("x".into(), toml::Value::String(x.into()));
                    p.insert("y".into(), toml::Value::String(if bogus { "speed".into() } else { y.into() }));
                    p.insert("log_x".into(), toml::Value::Boolean(lx));
                    toml::Value::Table(p)
                })
                .collect();
            if !plots.is_empty() {
                t.insert("plot".into(), toml::Value::Array(plots));
            }
            render(&t)
        })
}

fn check_sweep(text: &str) -> Result<bool, TestCaseError> {
    match Sweep::parse(text, "fuzz", Path::new("fuzz.toml")) {
        Err(e) => {
            one_line("sweep", &e)?;
            Ok(false)
        }
        Ok(s) => {
            prop_assert!((1..=MAX_POINTS).contains(&s.points.len()), "accepted sweep has {} points", s.points.len());
            for p in &s.points {
                prop_assert!(p.config.validate().is_ok());
                prop_assert!(!design::blocks(&p.config).is_empty());
            }
            Ok(true)
        }
    }
}

#[test]
fn fuzz_sweep_parser() {
    let keys = std::sync::Arc::new(config_keys());
    let grammar = damaged(sweep_text(keys, run_keys()));
    let committed: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("generators/sweeps"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let mutated = damaged(proptest::sample::select(committed));
    let strategy = prop_oneof![7 => grammar, 3 => mutated];
    fuzz("sweep", 3000, 2, strategy, |text| check_sweep(&text));
}

/// Found while writing the sweep grammar: 64 two-value axes multiply to 2^64 points, which
/// wrapped to 0 in a release build (a sweep of no points was accepted) and overflowed (a panic)
/// in a debug build.
#[test]
fn sweep_with_more_points_than_a_usize_is_rejected_in_one_line() {
    // Distinct labels (trailing spaces) for the same key, so every axis deserializes.
    let axes: String = (0..70).map(|i| format!("\"test.seed+test.seed{}\" = [{}, {}]\n", " ".repeat(i), 2 * i, 2 * i + 1)).collect();
    let text = format!("[base]\npe_line = {{}}\n[axes]\n{axes}");
    let e = Sweep::parse(&text, "wide", Path::new("wide.toml")).map(|s| s.points.len()).unwrap_err();
    assert_eq!(e, format!("the axes expand to more than {} points (allowed 1..={MAX_POINTS}); split the sweep", usize::MAX));
}

// ------------------------------------------------------------------ safetensors weights

#[derive(Clone, Debug)]
struct FakeTensor {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    values: Vec<f32>,
}

const DTYPES: &[&str] = &["F32", "F16", "BF16", "F64", "I32", "U8", "BOOL", "I64", "F8_E4M3", "X9"];

fn dtype_size(d: &str) -> usize {
    match d {
        "F64" | "I64" => 8,
        "F32" | "I32" => 4,
        "F16" | "BF16" => 2,
        _ => 1,
    }
}

fn float_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        400 => -2.0f32..2.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(0.0f32),
        1 => any::<f32>(),
    ]
}

/// Tensors shaped like layer 0 of a LLaMA decoder (so `eval --weights` gets past the names),
/// each dimension sometimes off, plus odd extra tensors.
fn layer_tensors() -> impl Strategy<Value = Vec<FakeTensor>> {
    use kllm_gen::reference::layer::Proj;
    let dims = (0usize..9, 1usize..3, 1usize..3, 0usize..9);
    let perturb = prop_oneof![
        Just(vec![]),
        proptest::collection::vec((0usize..9, 0usize..3, 0usize..6), 1..3),
    ];
    let dtype = prop_oneof![8 => Just("F32"), 2 => Just("BF16"), 1 => proptest::sample::select(DTYPES)];
    (dims, perturb, dtype, proptest::collection::vec(float_value(), 64)).prop_map(|((d, hd, kvh, ffn), perturb, dtype, pool)| {
        let heads = kvh * 2;
        let mut shapes: Vec<(String, Vec<usize>)> = Proj::ALL
            .iter()
            .map(|&p| {
                let shape = match p {
                    Proj::Q => vec![heads * hd, d],
                    Proj::K | Proj::V => vec![kvh * hd, d],
                    Proj::O => vec![d, heads * hd],
                    Proj::Gate | Proj::Up => vec![ffn, d],
                    Proj::Down => vec![d, ffn],
                };
                (p.tensor_name(0), shape)
            })
            .collect();
        shapes.push(("model.layers.0.input_layernorm.weight".into(), vec![d]));
        shapes.push(("model.layers.0.post_attention_layernorm.weight".into(), vec![d]));
        for (t, what, v) in perturb {
            let s = &mut shapes[t % 9].1;
            match what {
                0 if !s.is_empty() => {
                    let i = v % s.len();
                    s[i] = v;
                }
                1 => s.push(v),
                _ => {
                    s.pop();
                }
            }
        }
        shapes
            .into_iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                FakeTensor { name, dtype, values: (0..n).map(|i| pool[i % pool.len()]).collect(), shape }
            })
            .collect()
    })
}

fn odd_tensors() -> impl Strategy<Value = Vec<FakeTensor>> {
    let one = (
        prop_oneof![Just("w".to_string()), Just("model.layers.0.self_attn.q_proj.weight".to_string()), "\\PC{0,12}"],
        proptest::sample::select(DTYPES),
        proptest::collection::vec(0usize..5, 0..4),
        proptest::collection::vec(float_value(), 16),
    )
        .prop_map(|(name, dtype, shape, pool)| {
            let n: usize = shape.iter().product();
            FakeTensor { name, dtype, values: (0..n).map(|i| pool[i % pool.len()]).collect(), shape }
        });
    proptest::collection::vec(one, 0..4)
}

/// The bytes of a safetensors file: 8-byte little-endian header length, JSON header, data.
fn encode(ts: &[FakeTensor]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = vec![];
    for t in ts {
        let start = data.len();
        for &v in &t.values {
            match t.dtype {
                "F32" => data.extend(v.to_le_bytes()),
                "F16" => data.extend(half::f16::from_f32(v).to_le_bytes()),
                "BF16" => data.extend(half::bf16::from_f32(v).to_le_bytes()),
                d => data.extend(std::iter::repeat_n(0x3c, dtype_size(d))),
            }
        }
        header.insert(
            t.name.clone(),
            serde_json::json!({ "dtype": t.dtype, "shape": t.shape, "data_offsets": [start, data.len()] }),
        );
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// Damage to a file: a flipped byte, a truncation, a rewritten header length, or a byte
/// overwritten inside the JSON with a character that changes its meaning.
fn damage_bytes(mut b: Vec<u8>, ops: Vec<(u8, usize, u64)>) -> Vec<u8> {
    for (op, at, v) in ops {
        if b.is_empty() {
            break;
        }
        let i = at % b.len();
        match op % 5 {
            0 => b[i] ^= 1 << (v % 8),
            1 => b.truncate(i),
            2 if b.len() >= 8 => b[..8].copy_from_slice(&[v, v % 64, v >> 1, 0, 1, u64::MAX, 7][(v % 7) as usize].to_le_bytes()),
            3 => b[i] = b"{}[],:\"0123456789-e"[(v % 19) as usize],
            _ => b.insert(i, v as u8),
        }
    }
    b
}

fn check_weights(path: &Path, hd: usize, nw: u32) -> Result<bool, TestCaseError> {
    use kllm_gen::reference::tensors::Weights;
    let w = match Weights::open(path) {
        Err(e) => {
            one_line("open", &format!("{e:#}"))?;
            return Ok(false);
        }
        Ok(w) => w,
    };
    for n in w.names() {
        let _ = w.is_float(&n);
        if let Err(e) = w.tensor(&n) {
            one_line("tensor", &format!("{e:#}"))?;
        }
    }
    if let Err(e) = w.tensor("no such tensor") {
        one_line("missing tensor", &format!("{e:#}"))?;
    }
    let mut ok = true;
    match commands::quantize(path, None, nw, 8, 1, commands::Solver::Lloyd) {
        Err(e) => {
            ok = false;
            one_line("quantize", &format!("{e:#}"))?;
        }
        Ok(table) => prop_assert!(table.lines().count() >= 2),
    }
    let q = kllm_gen::config::QuantConfig { nw, na: nw, ..Default::default() };
    match commands::eval(&q, 1, Some((path, Some(0), hd)), 2, 0.5, None) {
        Err(e) => {
            ok = false;
            one_line("eval", &format!("{e:#}"))?;
        }
        Ok(table) => prop_assert!(table.contains("layer 0 of")),
    }
    Ok(ok)
}

#[test]
fn fuzz_safetensors_headers_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let files = prop_oneof![6 => layer_tensors(), 3 => odd_tensors()].prop_map(|ts| encode(&ts));
    let ops = prop_oneof![Just(vec![]), proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u64>()), 1..3)];
    let strategy = prop_oneof![
        8 => (files, ops).prop_map(|(b, ops)| damage_bytes(b, ops)),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ];
    let strategy = (strategy, 1usize..4, 1u32..5);
    fuzz("safetensors", 1500, 3, strategy, |(bytes, hd, nw)| {
        std::fs::write(&path, &bytes).unwrap();
        check_weights(&path, hd, nw)
    });
}

/// Found by `fuzz_safetensors_headers_and_shapes`: a layer whose FFN width (or model width, or
/// Q rows) is 0 passed the shape check and `eval --weights` panicked in `Mat::apply`
/// ("chunk size must be non-zero"); now it is the shape error.
#[test]
fn layer_with_an_empty_dimension_is_a_shape_error_not_a_panic() {
    use kllm_gen::reference::layer::Proj;
    use kllm_gen::reference::tensors::{write, Tensor};
    let dir = tempfile::tempdir().unwrap();
    for (d, q_rows, ffn) in [(4, 4, 0), (0, 4, 3), (4, 0, 3)] {
        let mut ts: Vec<Tensor> = Proj::ALL
            .iter()
            .map(|&p| {
                let shape = match p {
                    Proj::Q => vec![q_rows, d],
                    Proj::K | Proj::V => vec![2, d],
                    Proj::O => vec![d, q_rows],
                    Proj::Gate | Proj::Up => vec![ffn, d],
                    Proj::Down => vec![d, ffn],
                };
                Tensor { name: p.tensor_name(0), data: vec![0.5; shape.iter().product()], shape }
            })
            .collect();
        for n in ["input_layernorm", "post_attention_layernorm"] {
            ts.push(Tensor { name: format!("model.layers.0.{n}.weight"), shape: vec![d], data: vec![1.0; d] });
        }
        let p = dir.path().join("empty_dim.safetensors");
        write(&p, &ts, safetensors::Dtype::F32).unwrap();
        let q = kllm_gen::config::QuantConfig::default();
        let e = format!("{:#}", commands::eval(&q, 1, Some((&p, Some(0), 2)), 2, 0.5, None).unwrap_err());
        assert!(e.contains("layer 0: ") && !e.contains('\n'), "{d} {q_rows} {ffn}: {e}");
    }
}
