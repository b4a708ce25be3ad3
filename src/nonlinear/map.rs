//! `kllm_nl_map` / `kllm_nl_map2`: `lanes` table look-ups per cycle.
//!
//! ```text
//!  s_idx (s_idx_a ∥ s_idx_b) ──► S0 address regs ──► table read (one port per lane) ──► S1 output regs ──► m_*
//!                                      ▲
//!  cfg_we/cfg_addr/cfg_wdata ──► table (2^ADDR_W registers of OUT_W bits)
//! ```
//! Both stages advance together (`advance = ~v1 | m_ready`), so a beat leaves 2 cycles after it
//! enters and the unit takes one beat per cycle with a ready sink. The table is a register
//! array: at 2^nA ≤ 1024 entries an L-port read is an L-fold mux, cheaper than banking.

use serde::Serialize;

use super::float::{self, FOut};
use super::tables::{self, Func, Out};
use super::{AnyAccuracy, MapSpec};
use crate::fp::FloatFormat;
use crate::golden::{hex_lanes, GoldenWriter};
use crate::pe_fp::Style;
use crate::reference;
use crate::rng::Rng;
use crate::verilog::{if_, if_else, nb, Design, Handle, Item, Module};

/// Register stages from input to output.
pub const LATENCY: u32 = 2;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NlMapDerived {
    pub lanes: u32,
    /// Index width of each operand (one for nl_map, two for nl_map2: a then b).
    pub operand_bits: Vec<u32>,
    /// Table address width: the operands concatenated, a in the high bits.
    pub addr_bits: u32,
    pub table_entries: u32,
    /// "index" or "value".
    pub output: &'static str,
    /// Float mode's format (absent in integer mode): value entries are its bit patterns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerics: Option<String>,
    pub out_bits: u32,
    /// Register bits of the table.
    pub table_bits: u32,
    /// Table reads per cycle (one per lane).
    pub read_ports: u32,
    /// Register stages; a beat leaves `latency` cycles after it enters, one beat per cycle.
    pub latency: u32,
    pub predicted: MapPredicted,
    /// The configured function's table over the Gaussian-like codebook(s), against f64.
    pub accuracy: AnyAccuracy,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MapPredicted {
    /// 1024 beats back to back: first input to last output transfer, inclusive.
    pub stream1024_cycles: u64,
}

pub fn stream_cycles(beats: u64) -> u64 {
    beats + LATENCY as u64
}

impl NlMapDerived {
    pub fn new(s: &MapSpec) -> Self {
        let accuracy = super::accuracy(s).expect("validated config");
        NlMapDerived {
            lanes: s.lanes,
            operand_bits: s.in_bits.clone(),
            addr_bits: s.addr_bits(),
            table_entries: s.entries(),
            output: if s.value { "value" } else { "index" },
            numerics: s.float.map(|f| f.name()),
            out_bits: s.out_bits,
            table_bits: s.entries() * s.out_bits,
            read_ports: s.lanes,
            latency: LATENCY,
            predicted: MapPredicted { stream1024_cycles: stream_cycles(1024) },
            accuracy,
        }
    }
}

fn operand_ports(s: &MapSpec) -> Vec<String> {
    if s.in_bits.len() == 1 { vec!["s_idx".into()] } else { vec!["s_idx_a".into(), "s_idx_b".into()] }
}

pub fn generate(d: &mut Design, s: &MapSpec, module: &str) -> Handle {
    let (l, aw, ow) = (s.lanes, s.addr_bits(), s.out_bits);
    let ports = operand_ports(s);
    let mut m = Module::new(module);
    let what = if s.in_bits.len() == 1 { "index" } else { "index pair" };
    m.doc(format!(
        "Centroid-table map: {l} lanes per cycle, {what} ({} bits) -> {} of {ow} bits through a \
         {}-entry table loaded at run time.",
        aw,
        match (s.value, s.float) {
            (false, _) => "output index".to_string(),
            (true, None) => "signed fixed-point value".to_string(),
            (true, Some(f)) => format!("{} value (bit pattern)", f.name()),
        },
        s.entries()
    ));
    if let Some(f) = s.float {
        m.doc(format!(
            "Float mode ({}): the table holds RNE_F(f(centroid)) or its requantized index, computed by the reference;",
            f.name()
        ));
        m.doc("the unit only looks entries up, so it is the integer unit with F-wide entries.");
    } else {
        m.doc("The table holds f(centroid) requantized (kllm-gen's reference computes it per layer);");
    }
    m.doc("write it through cfg_* only while `idle` is high. Latency 2 cycles, 1 beat per cycle.");
    m.clock_reset();
    m.input("cfg_we", 1, "table write enable")
        .input("cfg_addr", aw, if s.in_bits.len() == 1 { "table entry = input index" } else { "table entry = (idx_a << NB) | idx_b" })
        .input(
            "cfg_wdata",
            ow,
            match (s.value, s.float) {
                (false, _) => "entry: output index",
                (true, None) => "entry: signed value",
                (true, Some(_)) => "entry: F bit pattern (finite)",
            },
        )
        .input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready");
    for (p, &b) in ports.iter().zip(&s.in_bits) {
        let c = format!("lane i's {b}-bit index at [i*{b} +: {b}]");
        m.input(p, l * b, &c);
    }
    m.input("s_last", 1, "passed through with the beat")
        .output("m_valid", 1, "output beat valid")
        .input("m_ready", 1, "output beat taken when valid && ready")
        .output("m_out", l * ow, "lane i's table entry at [i*OUT_W +: OUT_W]")
        .output("m_last", 1, "")
        .output("idle", 1, "no beat in flight: table writes are safe");
    m.localparam("ADDR_W", 0, aw as i64).localparam("OUT_W", 0, ow as i64);

    m.comment("The table, loaded at run time; every lane reads it (one read port per lane).");
    m.push(Item::Reg { name: "table_q".into(), width: ow, signed: false, depth: Some(s.entries()) });
    m.clocked("table_write", vec![if_("cfg_we", vec![nb("table_q[cfg_addr]", "cfg_wdata")])]);

    m.comment("Table address of each lane: the operand indices concatenated, a in the high bits.");
    m.wire("in_addr", l * aw);
    let rhs = if ports.len() == 1 {
        format!("{}[lane*ADDR_W +: ADDR_W]", ports[0])
    } else {
        let (a, b) = (s.in_bits[0], s.in_bits[1]);
        format!("{{{}[lane*{a} +: {a}], {}[lane*{b} +: {b}]}}", ports[0], ports[1])
    };
    m.push(Item::GenFor {
        label: "g_addr".into(),
        var: "lane".into(),
        count: l,
        body: vec![Item::Assign { lhs: "in_addr[lane*ADDR_W +: ADDR_W]".into(), rhs }],
    });
    m.reg("v0_q", 1).reg("last0_q", 1).reg("addr0_q", l * aw);
    m.reg("v1_q", 1).reg("last1_q", 1).reg("out1_q", l * ow);
    m.wire("lookup", l * ow);
    m.push(Item::GenFor {
        label: "g_read".into(),
        var: "lane".into(),
        count: l,
        body: vec![Item::Assign {
            lhs: "lookup[lane*OUT_W +: OUT_W]".into(),
            rhs: "table_q[addr0_q[lane*ADDR_W +: ADDR_W]]".into(),
        }],
    });
    m.comment("Both stages advance together when the output register is free or being taken.");
    m.wire_eq("advance", 1, "~v1_q | m_ready");
    m.assign("s_ready", "advance");
    m.clocked(
        "pipeline",
        vec![if_else(
            "rst",
            vec![nb("v0_q", "1'b0"), nb("v1_q", "1'b0")],
            vec![if_(
                "advance",
                vec![
                    nb("v0_q", "s_valid"),
                    nb("last0_q", "s_last"),
                    nb("addr0_q", "in_addr"),
                    nb("v1_q", "v0_q"),
                    nb("last1_q", "last0_q"),
                    nb("out1_q", "lookup"),
                ],
            )],
        )],
    );
    m.assign("m_valid", "v1_q");
    m.assign("m_out", "out1_q");
    m.assign("m_last", "last1_q");
    m.assign("idle", "~v0_q & ~v1_q");
    d.add(m);
    Handle::of(d, module, serde_json::to_value(NlMapDerived::new(s)).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

/// Functions of the unit's arity, for random reference tables.
fn functions(arity: usize) -> Vec<Func> {
    let names = if arity == 1 { tables::UNARY } else { tables::BINARY };
    names.iter().map(|n| Func::parse(n).unwrap()).collect()
}

/// A random reference table: random input codebook(s) and scale, a random function, and a
/// random output codebook (index) or an output scale that fits `out_bits` (value).
pub fn random_reference_table(rng: &mut Rng, s: &MapSpec, func: Option<Func>) -> Vec<i64> {
    let fs = functions(s.in_bits.len());
    let f = func.unwrap_or_else(|| fs[rng.below(fs.len() as u64) as usize]);
    let ins: Vec<Vec<i64>> = s.in_bits.iter().map(|&b| reference::random_codebook(rng, 1 << b, s.ac_bits)).collect();
    let refs: Vec<&[i64]> = ins.iter().map(|v| v.as_slice()).collect();
    // Input codebook span ±2..±16 real units.
    let in_scale = (2.0 + rng.unit() * 14.0) / (1u64 << (s.ac_bits - 1)) as f64;
    let out = if s.value {
        let sizes: Vec<usize> = refs.iter().map(|c| c.len()).collect();
        let top = tables::addresses(&sizes)
            .iter()
            .map(|a| {
                let x: Vec<f64> = a.iter().zip(&refs).map(|(&i, c)| c[i] as f64 * in_scale).collect();
                f.eval(&x, in_scale).abs()
            })
            .fold(0f64, f64::max);
        let max_units = ((1u64 << (s.out_bits - 1)) - 1) as f64;
        let scale = if top > 0.0 { top / max_units * (1.0 + 3.0 * rng.unit()) } else { 1.0 };
        Out::Value { bits: s.out_bits, scale }
    } else {
        let co = reference::random_codebook(rng, 1 << s.out_bits, s.ac_bits);
        let scale = (1.0 + rng.unit() * 15.0) / (1u64 << (s.ac_bits - 1)) as f64;
        Out::Index { codebook: co, scale }
    };
    tables::table(f, &refs, in_scale, &out).expect("output scale fits")
}

fn load(w: &mut GoldenWriter, t: &[i64], bits: u32) {
    let mask = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
    for (a, &v) in t.iter().enumerate() {
        w.cfg(a as u64, &hex_lanes(&[v as u64 & mask], bits));
    }
}

/// Random beats in segments, each after a table reload (reference tables of random functions
/// and codebooks, the configured function on the report codebook, and fully random tables);
/// then a timed dense stream.
pub fn golden(s: &MapSpec, block: &str, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let mut rng = Rng::new(seed);
    let mut fields: Vec<&str> = if s.in_bits.len() == 1 { vec!["idx"] } else { vec!["idx_a", "idx_b"] };
    fields.push("last");
    w.header(block, &fields, &["out", "last"]);
    let per_segment = if s.in_bits.len() == 1 { 250 } else { 500 };
    let (mut done, mut seg) = (0u32, 0u32);
    let full = |bits: u32| if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
    while done < vectors {
        let t: Vec<i64> = if let Some(f) = s.float {
            float_segment_table(&mut rng, f, s, seg).into_iter().map(|v| v as i64).collect()
        } else {
            match seg % 4 {
            0 => {
                // The configured function over the report codebooks.
                let (_, out) = super::report(s).unwrap();
                let ins: Vec<Vec<i64>> = s
                    .in_bits
                    .iter()
                    .map(|&b| super::report_in_codebook(s.section, b, s.ac_bits, s.in_scale).unwrap())
                    .collect();
                let refs: Vec<&[i64]> = ins.iter().map(|v| v.as_slice()).collect();
                tables::table(s.func, &refs, s.in_scale, &out).unwrap()
            }
            3 => (0..s.entries()).map(|_| rng.next_u64() as i64 & full(s.out_bits) as i64).collect(),
            _ => random_reference_table(&mut rng, s, None),
            }
        };
        load(w, &t, s.out_bits);
        let n = per_segment.min(vectors - done);
        for v in 0..n {
            let last = v + 1 == n || rng.chance(1, 8);
            write_beat(w, &mut rng, s, &t, last);
        }
        w.sync();
        done += n;
        seg += 1;
    }
    let t = match s.float {
        Some(f) => random_float_table(&mut rng, f, s, None).into_iter().map(|v| v as i64).collect(),
        None => random_reference_table(&mut rng, s, None),
    };
    load(w, &t, s.out_bits);
    w.timing(stream_cycles(1024));
    for v in 0..1024 {
        write_beat(w, &mut rng, s, &t, v == 1023);
    }
    w.sync();
}

fn write_beat(w: &mut GoldenWriter, rng: &mut Rng, s: &MapSpec, t: &[i64], last: bool) {
    let lanes = s.lanes as usize;
    // Sometimes every lane reads the same entry; otherwise uniform.
    let same = rng.chance(1, 16);
    let pick = |rng: &mut Rng, b: u32| rng.below(1 << b);
    let first: Vec<u64> = s.in_bits.iter().map(|&b| pick(rng, b)).collect();
    let mut ops: Vec<Vec<u64>> = vec![vec![]; s.in_bits.len()];
    let mut outs = vec![];
    for _ in 0..lanes {
        let mut addr = 0u64;
        for (k, &b) in s.in_bits.iter().enumerate() {
            let v = if same { first[k] } else { pick(rng, b) };
            ops[k].push(v);
            addr = (addr << b) | v;
        }
        outs.push(t[addr as usize] as u64);
    }
    let mut fields: Vec<String> = ops.iter().zip(&s.in_bits).map(|(o, &b)| hex_lanes(o, b)).collect();
    let last = (last as u8).to_string();
    fields.push(last.clone());
    w.input(&fields);
    w.out(&[hex_lanes(&outs, s.out_bits), last]);
}

// ---------------------------------------------------------------------------------------------
// Float mode's golden tables (module docs of `super::float`)

const FLOAT_STYLES: [Style; 5] = [Style::Typical, Style::Any, Style::Tiny, Style::Huge, Style::Unit];

/// A random float table: a random function of the unit's arity on random strictly ascending F
/// codebooks of random shapes (and, in index mode, a random output codebook). A draw whose table
/// would hold an infinity (exp or a product beyond F's range) is redrawn; after 20 draws the
/// identity (unary) or the sum (binary) on typical values, which are always finite.
pub fn random_float_table(rng: &mut Rng, f: FloatFormat, s: &MapSpec, func: Option<Func>) -> Vec<u64> {
    let fs = functions(s.in_bits.len());
    let out = |rng: &mut Rng| {
        if s.value {
            FOut::Value
        } else {
            let st = if rng.chance(1, 2) { Style::Typical } else { Style::Any };
            FOut::Index(float::random_codebook(rng, f, 1 << s.out_bits, st))
        }
    };
    for _ in 0..20 {
        let fun = func.unwrap_or_else(|| fs[rng.below(fs.len() as u64) as usize]);
        let ins: Vec<Vec<u64>> = s
            .in_bits
            .iter()
            .map(|&b| {
                let st = FLOAT_STYLES[rng.below(5) as usize];
                float::random_codebook(rng, f, 1 << b, st)
            })
            .collect();
        let refs: Vec<&[u64]> = ins.iter().map(|v| v.as_slice()).collect();
        let o = out(rng);
        if let Ok(t) = float::table(f, fun, &refs, &o) {
            return t;
        }
    }
    let fun = if s.in_bits.len() == 1 { Func::Identity } else { Func::Add };
    let ins: Vec<Vec<u64>> = s.in_bits.iter().map(|&b| float::random_codebook(rng, f, 1 << b, Style::Typical)).collect();
    let refs: Vec<&[u64]> = ins.iter().map(|v| v.as_slice()).collect();
    let o = out(rng);
    float::table(f, fun, &refs, &o).expect("identity and sums of typical F values are finite")
}

/// The table of one float segment, in turn: the configured function on the report codebooks,
/// two random tables, fully random entries (any finite F pattern of every shape, or any index),
/// and an edge table (value mode: ±0, both subnormal extremes, the smallest normal, ±1 and
/// ±largest finite in every entry position; map2: products that are all exact RNE_F ties;
/// index mode: the identity onto the input codebook itself, every centroid exactly).
pub fn float_segment_table(rng: &mut Rng, f: FloatFormat, s: &MapSpec, seg: u32) -> Vec<u64> {
    let n = s.entries() as usize;
    match seg % 5 {
        0 => {
            let (ins, out) = float::report_codebooks(f, s.func, &s.in_bits, s.value, s.out_bits).expect("validated config");
            let refs: Vec<&[u64]> = ins.iter().map(|v| v.as_slice()).collect();
            float::table(f, s.func, &refs, &out).expect("validated config")
        }
        1 | 2 => random_float_table(rng, f, s, None),
        3 if s.value => (0..n)
            .map(|_| {
                let st = FLOAT_STYLES[rng.below(5) as usize];
                crate::pe_fp::random_f(rng, f, st)
            })
            .collect(),
        3 => (0..n).map(|_| rng.below(1 << s.out_bits)).collect(),
        _ if !s.value => {
            let bits = s.in_bits[0].min(s.out_bits);
            let co = float::random_codebook(rng, f, 1 << s.out_bits, Style::Typical);
            let ca: Vec<u64> = co.iter().take(1 << bits).copied().collect();
            let t1 = float::table(f, Func::Identity, &[&ca], &FOut::Index(co)).expect("identity is finite");
            // Operand a's index (map2: the high address bits) picks the entry.
            (0..n).map(|a| t1[(a >> (s.addr_bits() - s.in_bits[0])) % t1.len()]).collect()
        }
        _ if s.in_bits.len() == 2 => {
            let q = crate::config::QuantConfig { na: s.in_bits[0], nw: s.in_bits[1], ..Default::default() };
            let (ca, cw) = crate::pe_fp::tie_codebooks(rng, f, &q);
            float::table(f, Func::Mul, &[&ca, &cw], &FOut::Value).expect("tie codebooks have finite products")
        }
        _ => {
            let e = float::edge_values(f);
            let off = rng.below(e.len() as u64) as usize;
            (0..n).map(|a| e[(a + off) % e.len()]).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuantConfig;

    /// Float segment tables hold what the golden file claims: the edge table of a unary value
    /// unit has every edge value (±0, subnormal extremes, smallest normal, ±1, ±65504); map2's
    /// edge table is products that are all exact RNE_F ties; index tables are valid indices.
    #[test]
    fn float_tables_hold_the_edge_values_and_ties() {
        let q = QuantConfig { numerics: "fp16".into(), na: 4, ..QuantConfig::default() };
        let f = FloatFormat::FP16;
        let mut rng = Rng::new(3);
        let unary = super::super::NlMapConfig { output: "value".into(), function: "exp".into(), ..Default::default() };
        let s = unary.spec(&q).unwrap();
        let t = float_segment_table(&mut rng, f, &s, 4);
        for e in float::edge_values(f) {
            assert!(t.contains(&e), "edge value {e:#x} missing");
        }
        let binary = super::super::NlMap2Config { output: "value".into(), function: "mul".into(), ..Default::default() };
        let s2 = binary.spec(&q).unwrap();
        // Rebuild the tie codebooks with the same draws and check every exact product is a tie.
        let mut r1 = Rng::new(9);
        let t = float_segment_table(&mut r1, f, &s2, 4);
        let mut r2 = Rng::new(9);
        let (ca, cw) = crate::pe_fp::tie_codebooks(&mut r2, f, &QuantConfig { na: 4, nw: 4, ..Default::default() });
        assert_eq!(t.len(), 256);
        for (a, &e) in t.iter().enumerate() {
            let (x, y) = (f.to_f64(ca[a >> 4]).unwrap(), f.to_f64(cw[a & 15]).unwrap());
            let p = x * y; // exact in f64
            let (lo, hi) = (f.to_f64(e).unwrap().min(p), f.to_f64(e).unwrap().max(p));
            // A tie: the entry is exactly half an fp16 step from the exact product.
            assert_eq!(hi - lo, float::ulp(f, p) / 2.0, "entry {a}: {x} * {y}");
        }
        let idx = super::super::NlMapConfig::default().spec(&q).unwrap();
        for seg in 0..10 {
            assert!(float_segment_table(&mut rng, f, &idx, seg).iter().all(|&v| v < 16));
        }
    }
}
