//! Activation encoder (`kllm_act_encoder`): raw activation → K-Means index, online.
//!
//! SPEC: `ia(x) = #{ i : x > b_i }` with midpoints `b_i = (ca[i] + ca[i+1]) >>> 1`. Because the
//! midpoints are sorted, the count is found by binary search: stage `s` decides index bit
//! `na-1-s` with one comparison per value, so each value costs `na` comparators and the
//! pipeline is `na + 1` registers deep (an input register, then one per comparison).
//!
//! Float mode (SPEC "Float mode"): inputs are F patterns and the rule is the exact midpoint rule
//! `ia(x) = #{ i : x > m_i }`, `m_i = (ca[i] + ca[i+1]) / 2` never rounded. The block loads, for
//! each midpoint, the F value `t_i` = the largest F value not above `m_i`
//! ([`FloatFormat::encoder_thresholds`](crate::fp::FloatFormat::encoder_thresholds)); for an F
//! value `x`, `x > m_i` exactly when `x > t_i`, so each comparison is a real-value compare of two
//! F patterns (`kllm_fp_lt_w{W}`: sign-magnitude, −0 equal to +0), as wide as an F pattern. The
//! golden file's expected indices come from the exact rule itself ([`FloatFormat::encode`]),
//! not from the thresholds, so the bench checks that the two agree. Same pipeline, same cycles.

use serde::{Deserialize, Serialize};

use crate::config::{in_range, Config, QuantConfig};
use crate::fp::FloatFormat;
use crate::fp_rtl;
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
    /// Float mode only: the format (`x_bits` is then its pattern width and `midpoint_bits` that
    /// of a threshold `t_i`, also an F pattern).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerics: Option<String>,
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
            x_bits: q.value_bits(),
            midpoint_bits: q.float().map_or(q.ac_bits, |f| f.width()),
            midpoints: (1 << q.na) - 1,
            comparators: c.lanes * q.na,
            latency,
            predicted: EncPredicted { stream1024_cycles: stream_cycles(latency, 1024) },
            numerics: q.float().map(|_| q.numerics.clone()),
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
    let float = q.float();
    let (l, na, xb, ab) = (c.lanes, q.na, g.x_bits, g.midpoint_bits);
    // Float mode: the real-value comparator of two F patterns.
    let lt_unit = float.map(|f| {
        let u = fp_rtl::fp_compare(f.width(), false);
        let name = u.name.clone();
        if d.get(&name).is_none() {
            d.add(u);
        }
        name
    });
    let mut m = Module::new(module);
    match float {
        None => {
            m.doc(format!(
                "Activation encoder: {l} values of {xb} bits per cycle to {na}-bit indices by a \
                 binary-search comparator tree over {} midpoints.",
                g.midpoints
            ));
            m.doc("ia(x) = #{ i : x > b_i }: the nearest centroid, ties to the lower index.");
        }
        Some(f) => {
            m.doc(format!(
                "Activation encoder, float mode ({}): {l} {xb}-bit F values per cycle to {na}-bit indices by a \
                 binary-search comparator tree over {} thresholds.",
                f.name(),
                g.midpoints
            ));
            m.doc("ia(x) = #{ i : x > m_i }, m_i = (ca[i] + ca[i+1]) / 2 exact: the nearest centroid, ties to the lower index.");
            m.doc("Threshold t_i is the largest F value not above m_i, so for F values x > m_i exactly when x > t_i;");
            m.doc("values are compared as reals (-0 == +0) by kllm_fp_lt units.");
        }
    }
    m.doc("Write midpoints through cfg_* only while no value is in flight.");
    m.clock_reset();
    m.input("cfg_we", 1, "midpoint write enable").input("cfg_addr", na, "midpoint i (0 .. 2^NA-2)");
    if float.is_some() {
        m.input("cfg_wdata", ab, "t_i: the largest F value not above (ca[i] + ca[i+1]) / 2, an F pattern");
    } else {
        m.input_signed("cfg_wdata", ab, "b_i = (ca[i] + ca[i+1]) >>> 1, signed");
    }
    let x_doc = if float.is_some() { "F pattern of lane i at [i*X_W +: X_W]" } else { "value of lane i at [i*X_W +: X_W], signed" };
    m.input("s_valid", 1, "")
        .output("s_ready", 1, "")
        .input("s_x", l * xb, x_doc)
        .input("s_last", 1, "passed through with the beat")
        .output("m_valid", 1, "")
        .input("m_ready", 1, "")
        .output("m_idx", l * na, "index of lane i at [i*NA +: NA]")
        .output("m_last", 1, "")
        .output("idle", 1, "nothing in flight: midpoint writes are safe");
    m.localparam("X_W", 0, xb as i64);

    m.comment("Midpoints, loaded at run time; sorted ascending because the centroids are.");
    m.push(Item::Reg { name: "mid_q".into(), width: ab, signed: float.is_none(), depth: Some(g.midpoints) });
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
        let select = Item::Assign { lhs: format!("idx{}_next[lane*{} +: {}]", k + 1, k + 1, k + 1), rhs: next };
        let wire = |name: &str, width: u32, init: Option<String>| Item::Wire {
            name: name.into(),
            width,
            signed: false,
            depth: None,
            init,
        };
        if let Some(unit) = &lt_unit {
            // Float: above = (t < value) as real values.
            let lane_body = vec![
                wire("threshold", ab, Some(format!("mid_q[{thr_addr}]"))),
                wire("value", xb, Some(format!("x{k}_q[lane*X_W +: X_W]"))),
                wire("above", 1, None),
                Item::Instance {
                    module: unit.clone(),
                    name: "u_above".into(),
                    conns: vec![
                        ("a".into(), "threshold".into()),
                        ("b".into(), "value".into()),
                        ("lt".into(), "above".into()),
                    ],
                },
                select,
            ];
            m.push(Item::GenFor { label: format!("g_compare{}", k + 1), var: "lane".into(), count: l, body: lane_body });
            continue;
        }
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
            select,
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
        match cfg.quant.float() {
            Some(f) => golden_fp(f, &cfg.quant, Self::section(cfg), vectors, seed, w),
            None => golden(&cfg.quant, Self::section(cfg), vectors, seed, w),
        }
    }
    fn float_mode(&self) -> bool {
        true
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
        // The first codebook spreads evenly over the whole centroid range, so the midpoints
        // reach the top and bottom quarters of it and a wrong sign extension of a midpoint is
        // seen even in a short run (a random first codebook can keep every midpoint small:
        // the mutant that extends bit ac_bits-2 instead of the sign bit survived 300 vectors).
        let ca = if done == 0 { spread_codebook(1 << q.na, q.ac_bits) } else { reference::random_codebook(&mut rng, 1 << q.na, q.ac_bits) };
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

/// `n` centroids evenly spread from the smallest to the largest value of `bits` signed bits.
fn spread_codebook(n: usize, bits: u32) -> Vec<i64> {
    let lo = -(1i64 << (bits - 1));
    let hi = (1i64 << (bits - 1)) - 1;
    (0..n as i64).map(|i| lo + (hi - lo) * i / (n as i64 - 1).max(1)).collect()
}

fn write_beat(w: &mut GoldenWriter, q: &QuantConfig, xs: &[i64], b: &[i64], last: bool) {
    let idx: Vec<u64> = xs.iter().map(|&x| reference::encode(x, b) as u64).collect();
    let raw: Vec<u64> = xs.iter().map(|&x| x as u64).collect();
    let last = (last as u8).to_string();
    w.input(&[hex_lanes(&raw, q.x_bits), last.clone()]);
    w.out(&[hex_lanes(&idx, q.na), last]);
}

// ---------------------------------------------------------------------------------------------
// Float mode: golden vectors

/// Shapes of the random F codebooks of the float golden file, in turn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FpShape {
    /// Magnitudes near 1, both signs.
    Typical,
    /// Any finite patterns, over the whole exponent range.
    Any,
    /// Subnormals, the smallest normals and zero.
    Tiny,
    /// The top binades, the largest finite values included.
    Huge,
    /// One binade, fractions of equal parity: every midpoint is itself an F value, so values
    /// equal to a midpoint (exact ties, which go to the lower index) are driven.
    Ties,
}

pub const FP_SHAPES: [FpShape; 5] = [FpShape::Typical, FpShape::Any, FpShape::Tiny, FpShape::Huge, FpShape::Ties];

/// A strictly ascending F codebook of `n` values of `shape` (distinct as real values: at most
/// one zero). Falls back to any finite values if the shape has too few distinct values.
pub fn fp_codebook(rng: &mut Rng, f: FloatFormat, n: usize, shape: FpShape) -> Vec<u64> {
    use crate::pe_fp::{random_f, Style};
    let binade = rng.range(1, (1i64 << f.e()) - 2) as u64;
    let draw = |rng: &mut Rng, tries: u32| -> u64 {
        if tries > 200 {
            return random_f(rng, f, Style::Any);
        }
        match shape {
            FpShape::Typical => random_f(rng, f, Style::Typical),
            FpShape::Any => random_f(rng, f, Style::Any),
            FpShape::Tiny => random_f(rng, f, Style::Tiny),
            FpShape::Huge => random_f(rng, f, Style::Huge),
            FpShape::Ties => {
                // Fractions of one parity (even, or all odd), one binade, both signs.
                let frac = (rng.below(1 << f.m()) & !1) | (binade & 1 & (f.m() > 1) as u64);
                let frac = frac & ((1 << f.m()) - 1);
                (rng.below(2) << (f.e() + f.m())) | binade << f.m() | frac
            }
        }
    };
    let mut keys: Vec<i64> = vec![];
    let mut tries = 0;
    while keys.len() < n {
        let k = f.order_key(draw(rng, tries)).expect("finite");
        if !keys.contains(&k) {
            keys.push(k);
        }
        tries += 1;
    }
    keys.sort();
    keys.iter().map(|&k| f.from_key(k).expect("finite")).collect()
}

/// One random raw value for a codebook with thresholds `t`: ±0, ±the largest finite value,
/// ±the smallest subnormal, a threshold or its F neighbours (the decision boundary; with a
/// [`FpShape::Ties`] codebook the threshold *is* the midpoint), a centroid, any finite value
/// (mostly far outside the codebook), or a value of the codebook's own shape.
pub fn fp_value(rng: &mut Rng, f: FloatFormat, ca: &[u64], t: &[u64], shape: FpShape) -> u64 {
    use crate::pe_fp::{random_f, Style};
    let sign = rng.below(2) << (f.e() + f.m());
    match rng.below(12) {
        0 => sign,
        1 => sign | f.max_finite(),
        2 => sign | 1,
        3..=6 => {
            let key = f.order_key(t[rng.below(t.len() as u64) as usize]).expect("finite") + rng.range(-1, 1);
            f.from_key(key).unwrap_or(f.max_finite())
        }
        7 => ca[rng.below(ca.len() as u64) as usize],
        8 => random_f(rng, f, Style::Any),
        _ => fp_codebook(rng, f, 1, shape)[0],
    }
}

/// The float golden file's stimulus: segments of (codebook, beats of `lanes` raw values), each
/// with a fresh codebook of the next [`FP_SHAPES`] shape, `vectors` beats in all; then the timed
/// segment's codebook and its 1024 beats.
pub fn fp_stimulus(f: FloatFormat, q: &QuantConfig, c: &EncoderConfig, vectors: u32, seed: u64) -> Vec<(Vec<u64>, Vec<Vec<u64>>)> {
    let mut rng = Rng::new(seed);
    let n = 1usize << q.na;
    let mut segs = vec![];
    let (mut done, mut s) = (0u32, 0usize);
    while done < vectors {
        let shape = FP_SHAPES[s % FP_SHAPES.len()];
        let ca = fp_codebook(&mut rng, f, n, shape);
        let t = f.encoder_thresholds(&ca).expect("an ascending finite codebook");
        let beats = 500.min(vectors - done);
        let xs = (0..beats).map(|_| (0..c.lanes).map(|_| fp_value(&mut rng, f, &ca, &t, shape)).collect()).collect();
        segs.push((ca, xs));
        done += beats;
        s += 1;
    }
    let ca = fp_codebook(&mut rng, f, n, FpShape::Typical);
    let t = f.encoder_thresholds(&ca).expect("an ascending finite codebook");
    let xs = (0..1024).map(|_| (0..c.lanes).map(|_| fp_value(&mut rng, f, &ca, &t, FpShape::Typical)).collect()).collect();
    segs.push((ca, xs));
    segs
}

/// Float-mode golden file: the thresholds `t_i` of each codebook on cfg, the raw F patterns in,
/// and the indices of the exact midpoint rule ([`FloatFormat::encode`]) out; the last segment
/// is timed (1024 beats back to back).
pub fn golden_fp(f: FloatFormat, q: &QuantConfig, c: &EncoderConfig, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let g = EncoderDerived::new(q, c);
    w.header("act_encoder", &["x", "last"], &["idx", "last"]);
    let segs = fp_stimulus(f, q, c, vectors, seed);
    let timed = segs.len() - 1;
    for (s, (ca, beats)) in segs.iter().enumerate() {
        let mids = f.midpoints(ca).expect("an ascending finite codebook");
        for (i, t) in f.encoder_thresholds(ca).expect("ascending").iter().enumerate() {
            w.cfg(i as u64, &hex_lanes(&[*t], f.width()));
        }
        if s == timed {
            w.timing(g.predicted.stream1024_cycles);
        }
        for (v, xs) in beats.iter().enumerate() {
            let idx: Vec<u64> = xs.iter().map(|&x| f.encode(x, &mids).expect("finite") as u64).collect();
            let last = if s == timed { v + 1 == beats.len() } else { v % 7 == 6 };
            let last = (last as u8).to_string();
            w.input(&[hex_lanes(xs, f.width()), last.clone()]);
            w.out(&[hex_lanes(&idx, q.na), last]);
        }
        w.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The float stimulus holds what the golden file claims: exact ties (a value equal to a
    /// midpoint), both zeros, the largest finite values, subnormals, and values beyond both
    /// ends of their codebook; and every codebook is strictly ascending.
    #[test]
    fn float_stimulus_covers_the_edge_cases() {
        let f = FloatFormat::FP16;
        let q = QuantConfig { numerics: "fp16".into(), ..QuantConfig::default() };
        let c = EncoderConfig { lanes: 4 };
        let segs = fp_stimulus(f, &q, &c, 20_000, 1);
        let (mut ties, mut zeros, mut negzeros, mut maxes, mut subs, mut below, mut above) = (0, 0, 0, 0, 0, 0, 0);
        for (ca, beats) in &segs {
            let mids = f.midpoints(ca).unwrap();
            for &x in beats.iter().flatten() {
                let x2 = f.to_fixed(x).unwrap() << 1u32;
                ties += mids.iter().filter(|m| **m == x2).count();
                zeros += (x == 0) as u32;
                negzeros += (x == 0x8000) as u32;
                maxes += (x & 0x7fff == 0x7bff) as u32;
                subs += (x & 0x7c00 == 0 && x & 0x3ff != 0) as u32;
                below += (x2 < f.to_fixed(ca[0]).unwrap() << 1u32) as u32;
                above += (x2 > f.to_fixed(*ca.last().unwrap()).unwrap() << 1u32) as u32;
            }
        }
        eprintln!("ties {ties}, +0 {zeros}, -0 {negzeros}, max {maxes}, subnormal {subs}, below {below}, above {above}");
        for (what, n) in [("ties", ties as u32), ("+0", zeros), ("-0", negzeros), ("max", maxes), ("sub", subs), ("below", below), ("above", above)] {
            assert!(n >= 500, "only {n} {what} in 20 000 beats");
        }
    }
}
