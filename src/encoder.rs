//! Activation encoder (`kllm_act_encoder`): raw activation → K-Means index, online.
//!
//! SPEC: `ia(x) = #{ i : x > b_i }` with midpoints `b_i = (ca[i] + ca[i+1]) >>> 1`. Because the
//! midpoints are sorted, the count is found by binary search: stage `s` decides index bit
//! `na-1-s` with one comparison per value, so each value costs `na` comparators and the
//! pipeline is `na + 1` registers deep (an input register, then one per comparison).

use serde::{Deserialize, Serialize};

use crate::config::{in_range, Config, QuantConfig};
use crate::registry::BlockKind;
use crate::golden::{hex_lanes, hex_signed, GoldenWriter};
use crate::reference;
use crate::rng::Rng;
use crate::verilog::{if_, if_else, nb, sext, Design, Handle, Item, Module};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    /// Values encoded per cycle.
    pub lanes: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig { lanes: 16 }
    }
}

impl EncoderConfig {
    pub fn validate(&self, _q: &QuantConfig) -> Result<(), String> {
        in_range("encoder.lanes", self.lanes, 1, 512)
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EncoderDerived {
    pub lanes: u32,
    pub na: u32,
    pub x_bits: u32,
    pub midpoint_bits: u32,
    pub midpoints: u32,
    pub comparators: u32,
    /// Register stages; a value leaves `latency` cycles after it enters.
    pub latency: u32,
    pub predicted: EncPredicted,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EncPredicted {
    /// 1024 beats streamed back to back: first input to last output, inclusive.
    pub stream1024_cycles: u64,
}

impl EncoderDerived {
    pub fn new(q: &QuantConfig, c: &EncoderConfig) -> Self {
        let latency = q.na + 1;
        EncoderDerived {
            lanes: c.lanes,
            na: q.na,
            x_bits: q.x_bits,
            midpoint_bits: q.ac_bits,
            midpoints: (1 << q.na) - 1,
            comparators: c.lanes * q.na,
            latency,
            predicted: EncPredicted { stream1024_cycles: stream_cycles(latency, 1024) },
        }
    }
}

/// Cycles from the first input transfer to the last output transfer, inclusive, for `beats`
/// beats with an always-valid source and an always-ready sink.
pub fn stream_cycles(latency: u32, beats: u64) -> u64 {
    beats + latency as u64
}

pub const TOP: &str = "kllm_act_encoder";

pub fn generate(d: &mut Design, q: &QuantConfig, c: &EncoderConfig, module: &str) -> Handle {
    let g = EncoderDerived::new(q, c);
    let (l, na, xb, ab) = (c.lanes, q.na, q.x_bits, q.ac_bits);
    let mut m = Module::new(module);
    m.doc(format!(
        "Activation encoder: {l} values of {xb} bits per cycle to {na}-bit indices by a \
         binary-search comparator tree over {} midpoints.",
        g.midpoints
    ));
    m.doc("ia(x) = #{ i : x > b_i }: the nearest centroid, ties to the lower index.");
    m.doc("Write midpoints through cfg_* only while no value is in flight.");
    m.clock_reset();
    m.input("cfg_we", 1, "midpoint write enable")
        .input("cfg_addr", na, "midpoint i (0 .. 2^NA-2)")
        .input_signed("cfg_wdata", ab, "b_i = (ca[i] + ca[i+1]) >>> 1, signed")
        .input("s_valid", 1, "")
        .output("s_ready", 1, "")
        .input("s_x", l * xb, "value of lane i at [i*X_W +: X_W], signed")
        .input("s_last", 1, "passed through with the beat")
        .output("m_valid", 1, "")
        .input("m_ready", 1, "")
        .output("m_idx", l * na, "index of lane i at [i*NA +: NA]")
        .output("m_last", 1, "")
        .output("idle", 1, "nothing in flight: midpoint writes are safe");
    m.localparam("X_W", 0, xb as i64);

    m.comment("Midpoints, loaded at run time; sorted ascending because the centroids are.");
    m.push(Item::Reg { name: "mid_q".into(), width: ab, signed: true, depth: Some(g.midpoints) });
    m.clocked("midpoint_write", vec![if_("cfg_we", vec![nb("mid_q[cfg_addr]", "cfg_wdata")])]);

    // Stage k holds the value and the k index bits decided so far (the high bits).
    for k in 0..=na {
        m.reg(&format!("v{k}_q"), 1).reg(&format!("last{k}_q"), 1);
        if k < na {
            m.reg(&format!("x{k}_q"), l * xb);
        }
        if k > 0 {
            m.reg(&format!("idx{k}_q"), l * k);
        }
    }
    m.comment("The whole pipeline advances together when its output is free or being taken.");
    m.wire_eq("advance", 1, format!("~v{na}_q | m_ready"));
    m.assign("s_ready", "advance");
    let mut body = vec![
        nb("v0_q", "s_valid"),
        nb("last0_q", "s_last"),
        nb("x0_q", "s_x"),
    ];
    for k in 1..=na {
        body.push(nb(format!("v{k}_q"), format!("v{}_q", k - 1)));
        body.push(nb(format!("last{k}_q"), format!("last{}_q", k - 1)));
        if k < na {
            body.push(nb(format!("x{k}_q"), format!("x{}_q", k - 1)));
        }
        body.push(nb(format!("idx{k}_q"), format!("idx{k}_next")));
    }
    // Valid bits reset; data registers need no reset.
    let mut reset = vec![];
    for k in 0..=na {
        reset.push(nb(format!("v{k}_q"), "1'b0"));
    }
    for k in 0..na {
        // Stage k decides bit p = na-1-k: cand = idx | 1<<p; threshold b[cand-1].
        let p = na - 1 - k;
        m.comment(format!("Comparison {}: decides index bit {p}.", k + 1));
        m.wire(&format!("idx{}_next", k + 1), l * (k + 1));
        // Threshold index cand-1 = {decided bits, 0, ones below p}.
        let decided = format!("idx{k}_q[lane*{k} +: {k}]");
        let mut parts = vec![];
        if k > 0 {
            parts.push(decided.clone());
        }
        parts.push("1'b0".to_string());
        if p > 0 {
            parts.push(if p == 1 { "1'b1".to_string() } else { format!("{{{p}{{1'b1}}}}") });
        }
        let thr_addr = format!("{{{}}}", parts.join(", "));
        let next = if k > 0 { format!("{{{decided}, above}}") } else { "above".to_string() };
        let lane_body = vec![
            Item::Wire {
                name: "midpoint".into(),
                width: ab,
                signed: true,
                depth: None,
                init: Some(format!("mid_q[{thr_addr}]")),
            },
            Item::Wire {
                name: "threshold".into(),
                width: xb,
                signed: true,
                depth: None,
                init: Some(sext("midpoint", ab, xb)),
            },
            Item::Wire {
                name: "value".into(),
                width: xb,
                signed: true,
                depth: None,
                init: Some(format!("x{k}_q[lane*X_W +: X_W]")),
            },
            Item::Wire {
                name: "above".into(),
                width: 1,
                signed: false,
                depth: None,
                init: Some("value > threshold".into()),
            },
            Item::Assign { lhs: format!("idx{}_next[lane*{} +: {}]", k + 1, k + 1, k + 1), rhs: next },
        ];
        m.push(Item::GenFor { label: format!("g_compare{}", k + 1), var: "lane".into(), count: l, body: lane_body });
    }
    m.clocked(
        "pipeline",
        vec![if_else("rst", reset, vec![if_("advance", body)])],
    );
    m.assign("m_valid", format!("v{na}_q"));
    m.assign("m_idx", format!("idx{na}_q"));
    m.assign("m_last", format!("last{na}_q"));
    let stages: Vec<String> = (0..=na).map(|k| format!("~v{k}_q")).collect();
    m.assign("idle", stages.join(" & "));
    d.add(m);
    Handle::of(d, module, serde_json::to_value(EncoderDerived::new(q, c)).unwrap())
}

/// Registry entry.
pub struct EncoderBlock;

impl EncoderBlock {
    fn section(cfg: &Config) -> &EncoderConfig {
        cfg.encoder.as_ref().expect("block selected only when [encoder] is present")
    }
}

impl BlockKind for EncoderBlock {
    fn name(&self) -> &'static str {
        "act_encoder"
    }
    fn top(&self) -> &'static str {
        TOP
    }
    fn section(&self) -> &'static str {
        "encoder"
    }
    fn selected(&self, cfg: &Config) -> bool {
        cfg.encoder.is_some()
    }
    fn validate(&self, cfg: &Config) -> Result<(), String> {
        Self::section(cfg).validate(&cfg.quant)
    }
    fn derived(&self, cfg: &Config) -> serde_json::Value {
        serde_json::to_value(EncoderDerived::new(&cfg.quant, Self::section(cfg))).unwrap()
    }
    fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle {
        generate(d, &cfg.quant, Self::section(cfg), module)
    }
    fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
        golden(&cfg.quant, Self::section(cfg), vectors, seed, w)
    }
}

/// Random segments, each with a new codebook: values near and on every midpoint (ties decide
/// there), the extremes of `x_bits`, and uniform values; then one timed dense stream.
pub fn golden(q: &QuantConfig, c: &EncoderConfig, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let g = EncoderDerived::new(q, c);
    let mut rng = Rng::new(seed);
    w.header("act_encoder", &["x", "last"], &["idx", "last"]);
    let xmin = -(1i64 << (q.x_bits - 1));
    let xmax = (1i64 << (q.x_bits - 1)) - 1;
    let beats_per_vector = 1u32;
    let mut done = 0;
    while done < vectors {
        let ca = reference::random_codebook(&mut rng, 1 << q.na, q.ac_bits);
        let b = reference::midpoints(&ca);
        for (i, bi) in b.iter().enumerate() {
            w.cfg(i as u64, &hex_signed(*bi, q.ac_bits));
        }
        let n = 500.min(vectors - done);
        for v in 0..n * beats_per_vector {
            let xs: Vec<i64> = (0..c.lanes)
                .map(|_| match rng.below(8) {
                    0 => xmin,
                    1 => xmax,
                    2..=4 => b[rng.below(b.len() as u64) as usize] + rng.range(-1, 1),
                    _ => rng.range(xmin, xmax),
                })
                .map(|x| x.clamp(xmin, xmax))
                .collect();
            write_beat(w, q, &xs, &b, v % 7 == 6);
        }
        w.sync();
        done += n;
    }
    let ca = reference::random_codebook(&mut rng, 1 << q.na, q.ac_bits);
    let b = reference::midpoints(&ca);
    for (i, bi) in b.iter().enumerate() {
        w.cfg(i as u64, &hex_signed(*bi, q.ac_bits));
    }
    w.timing(g.predicted.stream1024_cycles);
    for v in 0..1024 {
        let xs: Vec<i64> = (0..c.lanes).map(|_| rng.range(xmin, xmax)).collect();
        write_beat(w, q, &xs, &b, v == 1023);
    }
    w.sync();
}

fn write_beat(w: &mut GoldenWriter, q: &QuantConfig, xs: &[i64], b: &[i64], last: bool) {
    let idx: Vec<u64> = xs.iter().map(|&x| reference::encode(x, b) as u64).collect();
    let raw: Vec<u64> = xs.iter().map(|&x| x as u64).collect();
    let last = (last as u8).to_string();
    w.input(&[hex_lanes(&raw, q.x_bits), last.clone()]);
    w.out(&[hex_lanes(&idx, q.na), last]);
}
