//! The command line as a user meets it: bad configs fail with one line and leave nothing behind,
//! good configs generate byte-identical folders.

use std::path::Path;
use std::process::Command;

fn kllm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kllm-gen"))
}

/// Runs `generate` on `toml` in a fresh folder; returns (exit code, stderr, out folder exists).
fn generate(toml: &str) -> (i32, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, toml).unwrap();
    let out = dir.path().join("out");
    let o = kllm().args(["generate", "--config"]).arg(&cfg).arg("--out").arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let left = out.join("bad").exists() || std::fs::read_dir(&out).map(|d| d.count() > 0).unwrap_or(false);
    (o.status.code().unwrap_or(-1), stderr, left)
}

#[test]
fn bad_configs_fail_with_one_line_and_write_nothing() {
    let cases: &[(&str, &str)] = &[
        ("[pe_line]\nlanez = 4\n", "unknown field `lanez`"),
        ("[quant]\nnw = 0\n[pe_line]\n", "`quant.nw` = 0 is out of range (allowed 1..=8)"),
        ("[quant]\nnw = 9\n[pe_line]\n", "`quant.nw` = 9 is out of range (allowed 1..=8)"),
        ("[pe_line]\nlanes = 0\n", "`pe_line.lanes` = 0 is out of range (allowed 2..=512)"),
        ("[pe_line]\nk_max = 0\n", "`pe_line.k_max` = 0 is out of range"),
        ("[pe_line]\nlanes = 8\nk_max = 4\n", "`pe_line.k_max` = 4 is out of range (allowed 8..=1048576); one beat"),
        (
            "[quant]\nnw = 2\nna = 2\n[pe_line]\nreduce_width = 32\n",
            "`pe_line.reduce_width` = 32 is out of range (allowed 1..=16)",
        ),
        ("[pe_line]\nlanes = \"four\"\n", "invalid type"),
        ("[pe_line]\nlanes = 4.5\n", "invalid type"),
        ("[bogus]\n", "unknown field `bogus`"),
        ("", "selects no block"),
        ("[quant]\nx_bits = 4\n[pe_line]\n", "`quant.x_bits` = 4 is out of range (allowed 8..=32)"),
        ("[nl_map]\nfunction = \"tanhh\"\n", "`nl_map.function` = \"tanhh\" is not a known function"),
        ("[nl_map2]\nfunction = \"silu\"\n", "(allowed: mul, silu_mul, add)"),
        ("[nl_map]\noutput = \"both\"\n", "`nl_map.output` = \"both\" is not one of: index, value"),
        ("[nl_map]\nin_bits = 9\n", "`nl_map.in_bits` = 9 is out of range (allowed 1..=8)"),
        (
            "[nl_map]\noutput = \"value\"\nfunction = \"exp\"\nout_bits = 8\n",
            "`nl_map.out_bits` = 8 is too small: exp over every 8-bit input",
        ),
        ("[nl_reduce]\nentry_bits = 8\n", "`nl_reduce.entry_bits` = 8 is too small"),
        (
            "[quant]\nna = 6\n[nl_map2]\n",
            "`nl_map2.in_bits_a` + `nl_map2.in_bits_b` = 12 gives a 4096-entry table; allowed <= 10",
        ),
        (
            "[quant]\nna = 3\n[nl_reduce]\nreduce_width = 16\n",
            "`nl_reduce.reduce_width` = 16 is out of range (allowed 1..=8)",
        ),
        ("[nl_map]\nin_scale = 0.001\n", "`nl_map.in_scale` = 0.001 puts the report codebook"),
        ("[orizuru]\nn = 12\n", "`orizuru.n` = 12 must be a power of two"),
        ("[orizuru]\nn = 8192\n", "`orizuru.n` = 8192 is out of range (allowed 2..=4096)"),
        ("[orizuru]\nk = 0\n", "`orizuru.k` = 0 is out of range (allowed 1..=16)"),
        ("[orizuru]\nn = 16\nk = 17\n", "`orizuru.k` = 17 is out of range (allowed 1..=16)"),
        ("[orizuru]\nn = 64\nradix = 16\n", "`orizuru.radix` = 16 does not divide the tree: n = 64 must be a power of the radix (allowed 0, 2, 4, 8, 64; 0 = flat)"),
        ("[orizuru]\nn = 16\nlanes = 3\n", "`orizuru.lanes` = 3 must be a power of two"),
        ("[orizuru]\nn = 512\nlanes = 16\nbaseline = true\n", "`orizuru.baseline` = true needs n <= 256"),
    ];
    for (toml, want) in cases {
        let (code, err, left) = generate(toml);
        assert_ne!(code, 0, "config {toml:?} was accepted");
        assert!(err.contains(want), "config {toml:?}: stderr {err:?} does not contain {want:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "config {toml:?}: not one line: {err:?}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(!left, "config {toml:?} left output behind");
    }
}

#[test]
fn missing_config_file_is_one_line() {
    let o = kllm().args(["explain", "--config", "no/such/file.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("cannot read config no/such/file.toml"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1);
}

#[test]
fn one_bad_config_among_many_writes_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&good, "[pe_line]\nlanes = 2\nk_max = 8\n").unwrap();
    std::fs::write(&bad, "[pe_line]\nlanes = 0\n").unwrap();
    let out = dir.path().join("out");
    let o = kllm().arg("generate").arg("--config").arg(&good).arg(&bad).arg("--out").arg(&out).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(!out.join("good").exists() && !out.join("bad").exists());
}

fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn generation_is_deterministic_and_replaces_atomically() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = root.join("generators/default.toml");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b, &b] {
        let o = kllm().arg("generate").arg("--config").arg(&cfg).arg("--out").arg(out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (ta, tb) = (read_tree(&a.join("default")), read_tree(&b.join("default")));
    assert!(ta.len() > 5);
    assert_eq!(ta, tb, "same TOML gave different files");
    // Regenerating over an existing folder leaves no temporary folders behind.
    let names: Vec<_> = std::fs::read_dir(&b).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("default")]);
}

#[test]
fn explain_prints_derived_quantities() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = kllm().arg("explain").arg("--config").arg(root.join("generators/pe_default.toml")).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for want in ["bins", "= 256", "y_bits", "= 28", "latency_extra", "predicted.gemv64_kmax_cycles"] {
        assert!(s.contains(want), "explain lacks {want}:\n{s}");
    }
}

#[test]
fn golden_rejects_unknown_block() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let o = kllm()
        .arg("golden")
        .arg("--config")
        .arg(root.join("generators/tiny.toml"))
        .arg("--out")
        .arg(dir.path())
        .args(["--block", "nope"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("has no block 'nope' (it has: pe_line, dq_pe_line, act_encoder)"), "{err}");
}

#[test]
fn explain_shows_nonlinear_table_accuracy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = kllm().arg("explain").arg("--config").arg(root.join("generators/nl_na4.toml")).output().unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for want in [
        "[nl_map] top module kllm_nl_map",
        "accuracy.function           = \"silu\"",
        "accuracy.function                 = \"exp\"",
        "accuracy.max_abs_err",
        "accuracy.max_err_spacings",
        "accuracy.in_codebook        = [-87,-66,-52,-40,-30,-21,-12,-4,4,12,21,30,40,52,66,87]",
        "sum_bits                          = 26",
    ] {
        assert!(s.contains(want), "explain lacks {want}:\n{s}");
    }
}

/// Runs `sweep` on `toml`; returns (exit code, stderr, anything written to out or work).
fn sweep(toml: &str) -> (i32, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad_sweep.toml");
    std::fs::write(&file, toml).unwrap();
    let (out, work) = (dir.path().join("out"), dir.path().join("work"));
    let o = kllm().arg("sweep").arg(&file).arg("--out").arg(&out).arg("--work").arg(&work).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    (o.status.code().unwrap_or(-1), stderr, out.exists() || work.exists())
}

#[test]
fn malformed_sweeps_fail_in_one_line_before_anything_runs() {
    let base = "[base]\npe_line = { k_max = 256 }\n";
    let cases = [
        (format!("{base}[axes]\n\"pe_line.lanez\" = [8]\n"), "axis `pe_line.lanez` is not a config key: unknown field `lanez`"),
        (format!("{base}[axes]\n\"pe_line.lanes\" = []\n"), "axis `pe_line.lanes` has an empty list of values"),
        (
            format!("{base}[axes]\n\"pe_line.lanes\" = [16, 1024]\n"),
            "point pe_line.lanes=1024: `pe_line.lanes` = 1024 is out of range (allowed 2..=512)",
        ),
        (
            format!("{base}[axes]\n\"quant.nw+quant.na\" = [4, 9]\n"),
            "point quant.nw+quant.na=9: `quant.nw` = 9 is out of range (allowed 1..=8)",
        ),
        (format!("[run]\nvectors = 0\n{base}[axes]\n\"pe_line.lanes\" = [8]\n"), "`run.vectors` = 0 is out of range"),
        (format!("{base}[axis]\n\"pe_line.lanes\" = [8]\n"), "unknown field `axis`"),
    ];
    for (toml, want) in cases {
        let (code, err, wrote) = sweep(&toml);
        assert_eq!(code, 1, "{toml}: {err}");
        assert!(err.contains("bad_sweep.toml: ") && err.contains(want), "{toml}\nwant: {want}\ngot: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!wrote, "{toml}: a folder was written");
    }
    let o = kllm().args(["sweep", "/nonexistent/s.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.starts_with("error: cannot read sweep file /nonexistent/s.toml"), "{err}");
}

#[test]
fn committed_sweeps_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(root.join("generators/sweeps")).unwrap() {
        let p = e.unwrap().path();
        let o = kllm().arg("sweep").arg(&p).arg("--check").output().unwrap();
        assert!(o.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("p00 "));
        n += 1;
    }
    assert!(n >= 2, "expected the committed sweeps in generators/sweeps");
}

/// `explain --gemv K,ROWS` against the RTL: reports/tile_timing/<config>.log holds the `timing:`
/// lines a Verilator run of the config's timed segments printed (scripts/tile_timing.sh, `make
/// tile-timing`); every single-GEMV segment's *measured* cycles must equal the single-GEMV
/// figure `explain --gemv` prints for that shape. A log whose predictions differ from today's
/// model is stale (the RTL or the model changed): re-measure it.
#[test]
fn explain_gemv_equals_measured_timed_segments() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for e in std::fs::read_dir(root.join("reports/tile_timing")).unwrap() {
        let log_path = e.unwrap().path();
        if log_path.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let name = log_path.file_stem().unwrap().to_str().unwrap().to_string();
        let config = root.join("generators").join(format!("{name}.toml"));
        let cfg = kllm_gen::config::Config::load(&config).unwrap();
        let tc = cfg.tile.as_ref().unwrap();
        let d = kllm_gen::tile::TileDerived::new(&cfg.quant, tc);
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(log.lines().any(|l| l.starts_with("PASS:")), "{name}: the log has no PASS line");
        // "  timing: predicted P cycles, measured M"
        let measured: Vec<(u64, u64)> = log
            .lines()
            .filter_map(|l| l.trim().strip_prefix("timing: predicted "))
            .map(|r| {
                let (p, m) = r.split_once(" cycles, measured ").unwrap();
                (p.parse().unwrap(), m.trim().parse().unwrap())
            })
            .collect();
        let workloads = kllm_gen::tile::timed_workloads(tc, &d);
        assert_eq!(measured.len(), workloads.len(), "{name}: the log has {} timed segments, the golden file {}: re-run scripts/tile_timing.sh", measured.len(), workloads.len());
        for ((pred, meas), t) in measured.iter().zip(&workloads) {
            let (model, shapes) = (&t.cycles, &t.gemvs);
            assert_eq!(pred, model, "{name}: the log predicted {pred} where the model now says {model} for {shapes:?}: stale, re-run scripts/tile_timing.sh");
            if shapes.len() != 1 {
                continue;
            }
            let (k, rows) = shapes[0];
            let o = kllm().args(["explain", "--config"]).arg(&config).args(["--gemv", &format!("{k},{rows}")]).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let out = String::from_utf8_lossy(&o.stdout);
            let single: u64 = out
                .lines()
                .find_map(|l| l.trim().strip_prefix("single GEMV"))
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or_else(|| panic!("no 'single GEMV' line in:\n{out}"))
                .parse()
                .unwrap();
            assert_eq!(single, *meas, "{name}: explain --gemv {k},{rows} says {single} cycles, the RTL took {meas}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} measured segments compared");
}
