//! The reference path's commands as a user meets them, on a small random LLaMA-style checkpoint
//! the test writes itself: `eval --weights` prints the per-layer table (and CSV), `quantize`
//! reports every matrix, `golden --from-layer --weights` takes a checkpoint layer, and bad inputs
//! fail with one line, a non-zero exit and no output file.

use std::path::{Path, PathBuf};
use std::process::Command;

use kllm_gen::reference::checkpoint::write_tiny_llama;

fn kllm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kllm-gen"))
}

/// (exit code, stdout, stderr)
fn run(args: &[&str], extra: &[&Path]) -> (i32, String, String) {
    let o = kllm().args(args).args(extra).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

fn checkpoint(dir: &Path, layers: usize) -> PathBuf {
    let p = dir.join("tiny.safetensors");
    write_tiny_llama(&p, layers, 9).unwrap();
    p
}

#[test]
fn eval_prints_a_per_layer_table_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let p = checkpoint(dir.path(), 3);
    let csv = dir.path().join("layers.csv");
    let args = ["eval", "--head-dim", "8", "--tokens", "8", "--outliers", "5", "--csv"];
    let (code, out, err) = run(&args, &[&csv, Path::new("--weights"), &p]);
    assert_eq!(code, 0, "{err}");
    let table: Vec<&str> = out.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 2 + 3, "{out}");
    assert!(table[0].contains("K-Means W4A4 rel L2") && table[0].contains("uniform INT W4A4 + 5%+5% outliers rel L2"), "{out}");
    for (l, row) in table[2..].iter().enumerate() {
        assert!(row.starts_with(&format!("| {l} |")), "{row}");
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 5, "{csv}");
    // One layer only: the same figures as that layer's row of the whole run.
    let (code, one, err) = run(&["eval", "--head-dim", "8", "--tokens", "8", "--outliers", "5", "--layer", "2", "--weights"], &[&p]);
    assert_eq!(code, 0, "{err}");
    let row = one.lines().find(|l| l.starts_with("| 2 |")).unwrap();
    assert_eq!(row, table[4]);
}

#[test]
fn bad_checkpoint_inputs_fail_in_one_line_and_write_no_csv() {
    let dir = tempfile::tempdir().unwrap();
    let p = checkpoint(dir.path(), 2);
    let csv = dir.path().join("out.csv");
    let cases: &[(&[&str], &str)] = &[
        (&["eval", "--head-dim", "8", "--layer", "2"], "error: `--layer` = 2 is out of range: "),
        (&["eval", "--head-dim", "6"], "with head_dim 6 the query heads must be a multiple of the key/value heads"),
        (&["eval", "--head-dim", "0"], "error: `--head-dim` = 0 is out of range (allowed 1..=65536)"),
        (&["quantize", "--tensor", "model.layers.0.mlp.up"], "error: tensor 'model.layers.0.mlp.up' not found in"),
        (&["quantize", "--tensor", "model.norm.weight"], "has shape [32], expected a matrix (rank >= 2)"),
    ];
    for (args, want) in cases {
        let mut a = args.to_vec();
        if a[0] == "eval" {
            a.push("--csv");
        }
        let extra: Vec<&Path> = if a[0] == "eval" { vec![&csv, Path::new("--weights"), &p] } else { vec![Path::new("--weights"), &p] };
        let (code, _, err) = run(&a, &extra);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!csv.exists() && !dir.path().join("out.csv.tmp").exists(), "{args:?} left a CSV behind");
    }
    // A file that is not a checkpoint, and a missing one.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    for f in [junk.as_path(), &dir.path().join("absent.safetensors")] {
        let (code, _, err) = run(&["eval", "--head-dim", "8", "--weights"], &[f]);
        assert_eq!(code, 1);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&*f.file_name().unwrap().to_string_lossy()), "{err}");
    }
}

#[test]
fn quantize_reports_every_matrix_of_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let p = checkpoint(dir.path(), 2);
    let (code, out, err) = run(&["quantize", "--weights"], &[&p]);
    assert_eq!(code, 0, "{err}");
    // 7 projections x 2 layers + the embedding; no 1-D norm gains.
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("model.")).collect();
    assert_eq!(rows.len(), 15, "{out}");
    assert!(!out.contains("layernorm"), "{out}");
    for r in rows {
        let gain: f64 = r.split_whitespace().last().unwrap().parse().unwrap();
        assert!(gain >= 0.0, "exact below Lloyd: {r}");
    }
}

#[test]
fn golden_from_a_checkpoint_layer() {
    let dir = tempfile::tempdir().unwrap();
    let p = checkpoint(dir.path(), 2);
    let cfg = dir.path().join("pe.toml");
    std::fs::write(&cfg, "[quant]\nnw = 4\nna = 3\n[pe_line]\nlanes = 8\nk_max = 64\n").unwrap();
    let out = dir.path().join("g");
    let args = ["golden", "--from-layer", "--head-dim", "8", "--layer", "1", "--vectors", "40", "--config"];
    let (code, stdout, err) = run(&args, &[&cfg, Path::new("--out"), &out, Path::new("--weights"), &p]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("golden_pe_line_layer.txt"), "{stdout}");
    assert!(std::fs::read_to_string(out.join("golden_pe_line_layer.txt")).unwrap().contains("\nout "));
    // --weights without --from-layer is refused by the argument parser.
    let (code, _, err) = run(&["golden", "--out", "x", "--config"], &[&cfg, Path::new("--weights"), &p]);
    assert_eq!(code, 2, "{err}");
}

/// A tile config: `golden --from-layer` writes every MatMul of the layer as tile GEMVs, and
/// `eval --rtl-results` on results equal to the golden file's expected ones (the golden file's
/// `fields out:` and `out` lines are a bench dump's format) prints eval's table with an RTL row
/// equal to the reference row; one result changed makes it differ and is counted. Runs on a
/// checkpoint layer (d = 32, ffn 48) so that it is quick.
#[test]
fn tile_layer_golden_and_eval_from_rtl_results() {
    let dir = tempfile::tempdir().unwrap();
    let p = checkpoint(dir.path(), 2);
    let cfg = dir.path().join("t.toml");
    std::fs::write(&cfg, "[quant]\nnw = 4\nna = 3\n[tile]\nlines = 2\nlanes = 4\nk_max = 64\nk = 2\ncomp_macs = 2\n").unwrap();
    let out = dir.path().join("g");
    let src = [Path::new("--weights"), &p, Path::new("--head-dim"), Path::new("8"), Path::new("--layer"), Path::new("1")];
    let base = ["--seed", "3", "--tokens", "3", "--config"];
    let (code, stdout, err) = run(&[&["golden", "--from-layer"][..], &base].concat(), &[&[cfg.as_path(), Path::new("--out"), &out][..], &src].concat());
    assert_eq!(code, 0, "{err}");
    // 7 projections x 3 tokens; k = 1 per side (0.5 % of 32 or 48, at least one).
    assert!(stdout.contains("golden_tile_layer.txt") && stdout.contains("down_proj      48     32   1      3        96"), "{stdout}");
    let golden = std::fs::read_to_string(out.join("golden_tile_layer.txt")).unwrap();
    let eval = |dump: &str| {
        let f = dir.path().join("rtl.txt");
        std::fs::write(&f, dump).unwrap();
        run(&[&["eval"][..], &base].concat(), &[&[cfg.as_path(), Path::new("--rtl-results"), &f][..], &src].concat())
    };
    let (code, table, err) = eval(&golden);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(": 0 of ") && table.contains("the row from RTL results equals the reference row"), "{table}");
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("outliers")).collect();
    fn figures(l: &str) -> Vec<&str> {
        l.split_whitespace().rev().take(3).collect()
    }
    assert!(rows[1].starts_with("K-Means W4A3 + 0.5%+0.5% outliers (RTL results)") && figures(rows[0]) == figures(rows[1]), "{table}");
    // One result wrong: the lowest bit of the last out line (down_proj of the last token, which
    // goes straight to the output; the first token's q, say, cannot change anything: a single
    // key's softmax is 1 whatever q is).
    let at = golden.rfind("\nout ").unwrap() + 5;
    let end = golden[at..].find(' ').unwrap() + at;
    let digit = u32::from_str_radix(&golden[end - 1..end], 16).unwrap() ^ 1;
    let bad = format!("{}{digit:x}{}", &golden[..end - 1], &golden[end..]);
    let (code, table, err) = eval(&bad);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(": 1 of ") && table.contains("DIFFERS from the reference row"), "{table}");
    // A layer longer than the tile: one line naming the projection and the key.
    std::fs::write(&cfg, "[quant]\nnw = 4\nna = 3\n[tile]\nlines = 2\nlanes = 4\nk_max = 32\nk = 2\ncomp_macs = 2\n").unwrap();
    let (code, _, err) = run(&[&["golden", "--from-layer"][..], &base].concat(), &[&[cfg.as_path(), Path::new("--out"), &out][..], &src].concat());
    assert_eq!((code, err.trim()), (1, "error: the layer's down_proj has K = 48, longer than `tile.k_max` = 32 of config 't'"));
}
