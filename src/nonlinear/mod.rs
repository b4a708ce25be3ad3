//! Centroid-table nonlinear units (SPEC: "Centroid-table nonlinear units").
//!
//! Because a K-Means-quantized value is one of 2^nA centroids, any f(x) followed by
//! requantization is a table of 2^nA entries. Three generated blocks, all with tables loaded at
//! run time through `cfg_*` (so one block serves every layer and every function):
//! - `kllm_nl_map` (`[nl_map]`): elementwise index → index (or → signed fixed-point value).
//! - `kllm_nl_map2` (`[nl_map2]`): index pair → index/value, e.g. SwiGLU silu(gate)·up.
//! - `kllm_nl_reduce` (`[nl_reduce]`): Σ over a vector of table[idx] by counting:
//!   softmax denominator (table = exp) and RMSNorm Σ ca² (table = square), exact integers.
//!
//! `function`, `in_scale` and `out_scale` in a section do not change the hardware: they choose
//! the table the golden vectors and the accuracy report (`explain`, manifest) use, and they are
//! validated (a value-mode output too narrow for the function is a config error).

pub mod float;
pub mod map;
pub mod reduce;
pub mod tables;

use serde::{Deserialize, Serialize};

use crate::config::{in_range, Config, QuantConfig};
use crate::fp::FloatFormat;
use crate::golden::GoldenWriter;
use crate::registry::BlockKind;
use crate::verilog::{Design, Handle};
use tables::{Accuracy, Func, Out};

fn default_in_scale() -> f64 {
    1.0 / 32.0
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NlMapConfig {
    /// Values mapped per cycle.
    pub lanes: u32,
    /// Input index width (default: quant.na).
    pub in_bits: Option<u32>,
    /// "index" (requantize to the next codebook) or "value" (signed fixed point).
    pub output: String,
    /// Output index width (index mode, default quant.na) or signed value width (value, default 16).
    pub out_bits: Option<u32>,
    /// Function of the golden vectors and the accuracy report.
    pub function: String,
    /// Real value of one input integer unit.
    pub in_scale: f64,
    /// Real value of one output unit (default: fitted to ac_bits in index mode, in_scale in value
    /// mode, in_scale² for `square`).
    pub out_scale: Option<f64>,
}

impl Default for NlMapConfig {
    fn default() -> Self {
        NlMapConfig {
            lanes: 16,
            in_bits: None,
            output: "index".into(),
            out_bits: None,
            function: "silu".into(),
            in_scale: default_in_scale(),
            out_scale: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NlMap2Config {
    pub lanes: u32,
    /// Index width of operand a (default quant.na).
    pub in_bits_a: Option<u32>,
    /// Index width of operand b (default quant.na).
    pub in_bits_b: Option<u32>,
    pub output: String,
    pub out_bits: Option<u32>,
    pub function: String,
    /// Real value of one input unit (both operands).
    pub in_scale: f64,
    pub out_scale: Option<f64>,
}

impl Default for NlMap2Config {
    fn default() -> Self {
        NlMap2Config {
            lanes: 8,
            in_bits_a: None,
            in_bits_b: None,
            output: "index".into(),
            out_bits: None,
            function: "silu_mul".into(),
            in_scale: default_in_scale(),
            out_scale: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NlReduceConfig {
    /// Indices counted per cycle.
    pub lanes: u32,
    pub in_bits: Option<u32>,
    /// Longest vector the counters are sized for.
    pub n_max: u32,
    /// Signed width of a table entry.
    pub entry_bits: u32,
    /// Multipliers of the weighted sum (bins weighed per cycle).
    pub reduce_width: u32,
    /// Table of the golden vectors and the report: "exp" (softmax), "square" (RMSNorm), ...
    pub function: String,
    pub in_scale: f64,
    pub out_scale: Option<f64>,
}

impl Default for NlReduceConfig {
    fn default() -> Self {
        NlReduceConfig {
            lanes: 16,
            in_bits: None,
            n_max: 1024,
            entry_bits: 16,
            reduce_width: 8,
            function: "exp".into(),
            in_scale: default_in_scale(),
            out_scale: None,
        }
    }
}

/// A map unit's resolved parameters (nl_map and nl_map2 share the generator).
#[derive(Clone, Debug, PartialEq)]
pub struct MapSpec {
    pub section: &'static str,
    pub lanes: u32,
    pub in_bits: Vec<u32>,
    pub value: bool,
    pub out_bits: u32,
    pub func: Func,
    pub in_scale: f64,
    pub out_scale: Option<f64>,
    pub ac_bits: u32,
    /// Float mode's format (`None` in integer mode): value entries are F patterns.
    pub float: Option<FloatFormat>,
}

impl MapSpec {
    pub fn addr_bits(&self) -> u32 {
        self.in_bits.iter().sum()
    }
    pub fn entries(&self) -> u32 {
        1 << self.addr_bits()
    }
}

fn check_function(section: &str, name: &str, allowed: &[&str]) -> Result<Func, String> {
    match Func::parse(name) {
        Some(f) if allowed.contains(&f.name()) => Ok(f),
        _ => Err(format!(
            "`{section}.function` = \"{name}\" is not a known function for this unit (allowed: {})",
            allowed.join(", ")
        )),
    }
}

fn check_scale(key: &str, v: f64) -> Result<(), String> {
    if !v.is_finite() {
        return Err(format!("`{key}` = {v} is out of range (allowed 1e-9..=1e9)"));
    }
    in_range(key, v, 1e-9, 1e9)
}

fn check_in_bits(key: &str, b: u32, q: &QuantConfig) -> Result<(), String> {
    in_range(key, b, 1, 8)?;
    if let Some(f) = q.float() {
        // Float mode: ac_bits is not used; the codebook's 2^b centroids must be distinct F values.
        let n = float::distinct_values(f);
        if 1u64 << b > n {
            return Err(format!(
                "`{key}` = {b} needs 2^{b} distinct centroids; {} has {n} distinct finite values (allowed {key} <= {})",
                f.name(),
                n.ilog2()
            ));
        }
        return Ok(());
    }
    if b > q.ac_bits {
        return Err(format!(
            "`{key}` = {b} needs 2^{b} distinct centroids, which do not fit in ac_bits = {} (allowed {key} <= ac_bits)",
            q.ac_bits
        ));
    }
    Ok(())
}

/// Default output scale: `square` in units of in_scale², other value tables in in_scale; index
/// mode fits the report's output codebook to ac_bits (None here).
fn default_value_scale(f: Func, in_scale: f64) -> f64 {
    if f == Func::Square { in_scale * in_scale } else { in_scale }
}

#[allow(clippy::too_many_arguments)]
fn map_spec(
    section: &'static str,
    q: &QuantConfig,
    lanes: u32,
    in_bits: Vec<u32>,
    output: &str,
    out_bits: Option<u32>,
    function: &str,
    in_scale: f64,
    out_scale: Option<f64>,
) -> Result<MapSpec, String> {
    in_range(&format!("{section}.lanes"), lanes, 1, 512)?;
    let value = match output {
        "index" => false,
        "value" => true,
        other => {
            return Err(format!("`{section}.output` = \"{other}\" is not one of: index, value"));
        }
    };
    let key = format!("{section}.out_bits");
    let float = q.float();
    if let Some(f) = float {
        if let Some(s) = out_scale {
            return Err(format!(
                "`{section}.out_scale` = {s} has no meaning in float mode (quant.numerics = \"{}\"): entries are \
                 F values in the inputs' real units; leave it out",
                q.numerics
            ));
        }
        if let (true, Some(b)) = (value, out_bits) {
            if b != f.width() {
                return Err(format!(
                    "`{key}` = {b}: in float mode ({}) a value entry is an F bit pattern of {} bits (allowed {key} = {} or left out)",
                    f.name(),
                    f.width(),
                    f.width()
                ));
            }
        }
    }
    let out_bits = if let (true, Some(f)) = (value, float) {
        f.width()
    } else if value {
        let b = out_bits.unwrap_or(16);
        in_range(&key, b, 2, 32)?;
        b
    } else {
        let b = out_bits.unwrap_or(q.na);
        check_in_bits(&key, b, q)?;
        b
    };
    let allowed = if in_bits.len() == 1 { tables::UNARY } else { tables::BINARY };
    let func = check_function(section, function, allowed)?;
    check_scale(&format!("{section}.in_scale"), in_scale)?;
    if let Some(s) = out_scale {
        check_scale(&format!("{section}.out_scale"), s)?;
    }
    let spec = MapSpec { section, lanes, in_bits, value, out_bits, func, in_scale, out_scale, ac_bits: q.ac_bits, float };
    if value && float.is_none() {
        check_value_width(section, &key, func, q.ac_bits, in_scale, spec.value_scale(), out_bits)?;
    }
    accuracy(&spec)?;
    Ok(spec)
}

fn check_value_width(
    section: &str,
    key: &str,
    f: Func,
    ac_bits: u32,
    in_scale: f64,
    out_scale: f64,
    bits: u32,
) -> Result<(), String> {
    let m = tables::max_units_over_range(f, ac_bits, in_scale, out_scale);
    let need = tables::signed_bits_for(m);
    if need > bits {
        return Err(format!(
            "`{key}` = {bits} is too small: {} over every {ac_bits}-bit input at {section}.in_scale = {in_scale} \
             reaches ±{m} units of out_scale = {out_scale} (allowed {key} >= {need})",
            f.name()
        ));
    }
    Ok(())
}

impl MapSpec {
    /// Output scale in value mode.
    pub fn value_scale(&self) -> f64 {
        self.out_scale.unwrap_or_else(|| default_value_scale(self.func, self.in_scale))
    }
}

/// The report's input codebooks: the Lloyd-Max quantizer of N(0,1) with 2^bits levels, in
/// integer units of `in_scale`. Errors if it does not fit ac_bits at that scale.
pub fn report_in_codebook(section: &str, bits: u32, ac_bits: u32, in_scale: f64) -> Result<Vec<i64>, String> {
    let c = tables::gaussian_codebook(1 << bits);
    let top = c.iter().fold(0f64, |m, v| m.max(v.abs()));
    let hi = ((1i64 << (ac_bits - 1)) - 1) as f64;
    if top / in_scale > hi + 0.5 {
        return Err(format!(
            "`{section}.in_scale` = {in_scale} puts the report codebook's largest centroid ({top:.4}) at \
             {:.0} units, outside ac_bits = {ac_bits} (allowed {section}.in_scale >= {:.6})",
            top / in_scale,
            top / (hi + 0.5)
        ));
    }
    Ok(tables::to_integer_codebook(&c, in_scale, ac_bits))
}

/// The accuracy report of a map spec over the Gaussian-like codebooks, and the output it used.
pub fn report(s: &MapSpec) -> Result<(Accuracy, Out), String> {
    let ins: Vec<Vec<i64>> = s
        .in_bits
        .iter()
        .map(|&b| report_in_codebook(s.section, b, s.ac_bits, s.in_scale))
        .collect::<Result<_, _>>()?;
    let out = if s.value {
        Out::Value { bits: s.out_bits, scale: s.value_scale() }
    } else {
        let c = tables::output_codebook(s.func, 1 << s.out_bits, s.in_scale);
        let top = c.iter().fold(0f64, |m, v| m.max(v.abs()));
        let hi = ((1i64 << (s.ac_bits - 1)) - 1) as f64;
        let scale = match s.out_scale {
            Some(os) => {
                if top / os > hi + 0.5 {
                    return Err(format!(
                        "`{}.out_scale` = {os} puts the report's output codebook ({} of N(0,1), largest {top:.4}) \
                         outside ac_bits = {} (allowed {}.out_scale >= {:.6})",
                        s.section, s.func.name(), s.ac_bits, s.section, top / (hi + 0.5)
                    ));
                }
                os
            }
            None if top > 0.0 => top / hi,
            None => 1.0,
        };
        Out::Index { codebook: tables::to_integer_codebook(&c, scale, s.ac_bits), scale }
    };
    let refs: Vec<&[i64]> = ins.iter().map(|v| v.as_slice()).collect();
    let t = tables::table(s.func, &refs, s.in_scale, &out).map_err(|e| format!("{}: {e}", s.section))?;
    Ok((tables::accuracy(s.func, &refs, s.in_scale, &out, &t), out))
}

/// A table's accuracy report: integer mode's ([`Accuracy`]) or float mode's.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
#[serde(untagged)]
pub enum AnyAccuracy {
    Int(Accuracy),
    Float(float::FloatAccuracy),
}

/// The accuracy report of a spec in its numerics; in float mode a report table entry beyond F's
/// range is an error naming it (e.g. `exp` in an 8-bit format whose largest value is below e^2.7).
pub fn accuracy(s: &MapSpec) -> Result<AnyAccuracy, String> {
    match s.float {
        None => report(s).map(|(a, _)| AnyAccuracy::Int(a)),
        Some(f) => float::report(f, s.func, &s.in_bits, s.value, s.out_bits)
            .map(AnyAccuracy::Float)
            .map_err(|e| format!("{}: the report table of {} over the Gaussian codebook: {e}", s.section, s.func.name())),
    }
}

impl NlMapConfig {
    pub fn spec(&self, q: &QuantConfig) -> Result<MapSpec, String> {
        let b = self.in_bits.unwrap_or(q.na);
        check_in_bits("nl_map.in_bits", b, q)?;
        map_spec("nl_map", q, self.lanes, vec![b], &self.output, self.out_bits, &self.function, self.in_scale, self.out_scale)
    }
    pub fn validate(&self, q: &QuantConfig) -> Result<(), String> {
        self.spec(q).map(|_| ())
    }
}

/// Largest map2 table: 2^10 entries (an L-lane read of a bigger register table is a big mux).
pub const MAP2_MAX_ADDR_BITS: u32 = 10;

impl NlMap2Config {
    pub fn spec(&self, q: &QuantConfig) -> Result<MapSpec, String> {
        let a = self.in_bits_a.unwrap_or(q.na);
        let b = self.in_bits_b.unwrap_or(q.na);
        check_in_bits("nl_map2.in_bits_a", a, q)?;
        check_in_bits("nl_map2.in_bits_b", b, q)?;
        if a + b > MAP2_MAX_ADDR_BITS {
            return Err(format!(
                "`nl_map2.in_bits_a` + `nl_map2.in_bits_b` = {} gives a {}-entry table; allowed <= {MAP2_MAX_ADDR_BITS} ({} entries)",
                a + b,
                1u64 << (a + b),
                1 << MAP2_MAX_ADDR_BITS
            ));
        }
        map_spec("nl_map2", q, self.lanes, vec![a, b], &self.output, self.out_bits, &self.function, self.in_scale, self.out_scale)
    }
    pub fn validate(&self, q: &QuantConfig) -> Result<(), String> {
        self.spec(q).map(|_| ())
    }
}

/// The reduce unit's table as a value-mode map spec (for the report and the golden tables).
impl NlReduceConfig {
    /// The counting core of a unit counting `in_bits`-bit indices: results are exact at
    /// `entry_bits + ceil(log2 n_max)` bits.
    /// In float mode the core's table holds each entry's exact fixed-point value and sums at
    /// the exact accumulator width ([`FloatFormat::acc_width`]).
    pub fn core(&self, in_bits: u32, float: Option<FloatFormat>) -> Result<crate::count_weigh::CountWeigh, String> {
        let (entry_bits, sum_bits) = match float {
            None => (self.entry_bits, self.entry_bits + crate::verilog::clog2(self.n_max as u64)),
            Some(f) => (f.fixed_width(), f.acc_width(self.n_max as u64, 0)),
        };
        crate::count_weigh::CountWeigh::new(self.lanes, in_bits, self.n_max, entry_bits, sum_bits, self.reduce_width, 0, 1)
    }
    pub fn in_bits(&self, q: &QuantConfig) -> u32 {
        self.in_bits.unwrap_or(q.na)
    }
    pub fn spec(&self, q: &QuantConfig) -> Result<MapSpec, String> {
        let b = self.in_bits(q);
        check_in_bits("nl_reduce.in_bits", b, q)?;
        in_range("nl_reduce.lanes", self.lanes, 1, 512)?;
        in_range("nl_reduce.n_max", self.n_max, 1, 1 << 20)?;
        if q.float().is_none() {
            in_range("nl_reduce.entry_bits", self.entry_bits, 2, 32)?;
        }
        in_range("nl_reduce.reduce_width", self.reduce_width, 1, 1 << b)
            .map_err(|e| format!("{e}; there are 2^in_bits = {} bins to weigh", 1 << b))?;
        crate::config::power_of_two("nl_reduce.reduce_width", self.reduce_width)?;
        let func = check_function("nl_reduce", &self.function, tables::UNARY)?;
        check_scale("nl_reduce.in_scale", self.in_scale)?;
        if let Some(s) = self.out_scale {
            check_scale("nl_reduce.out_scale", s)?;
        }
        let float = q.float();
        if let (Some(f), Some(s)) = (float, self.out_scale) {
            return Err(format!(
                "`nl_reduce.out_scale` = {s} has no meaning in float mode (quant.numerics = \"{}\"): entries are \
                 {} values in the inputs' real units; leave it out",
                q.numerics,
                f.name()
            ));
        }
        if let Some(f) = float {
            let (fx, acc) = (f.fixed_width(), f.acc_width(self.n_max as u64, 0));
            if fx > crate::pe_fp::MAX_FIXED_BITS || acc > crate::pe_fp::MAX_ACC_BITS {
                return Err(format!(
                    "`quant.numerics` = \"{}\": nl_reduce's exact table entries need {fx} bits and its sum {acc} bits \
                     for nl_reduce.n_max = {}; the counting core allows entries up to {} bits and sums up to {} bits \
                     (2^E + M - 1 <= {}: fp16, fp8_e4m3 and fp8_e5m2 fit)",
                    q.numerics,
                    self.n_max,
                    crate::pe_fp::MAX_FIXED_BITS,
                    crate::pe_fp::MAX_ACC_BITS,
                    crate::pe_fp::MAX_FIXED_BITS
                ));
            }
        }
        let spec = MapSpec {
            section: "nl_reduce",
            lanes: self.lanes,
            in_bits: vec![b],
            value: true,
            out_bits: float.map_or(self.entry_bits, |f| f.width()),
            func,
            in_scale: self.in_scale,
            out_scale: self.out_scale,
            ac_bits: q.ac_bits,
            float,
        };
        if float.is_none() {
            check_value_width("nl_reduce", "nl_reduce.entry_bits", func, q.ac_bits, self.in_scale, spec.value_scale(), self.entry_bits)?;
        }
        // The counting core has its own config; a shape it cannot build is this section's error.
        self.core(b, float)
            .map_err(|e| format!("[nl_reduce] lanes = {}, n_max = {}, entry_bits = {}: {e}", self.lanes, self.n_max, self.entry_bits))?;
        accuracy(&spec)?;
        Ok(spec)
    }
    pub fn validate(&self, q: &QuantConfig) -> Result<(), String> {
        self.spec(q).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The acceptance check: the reported SiLU and exp table errors over the Gaussian 16-centroid
    /// codebook equal a computation written here from scratch in f64.
    #[test]
    fn silu_and_exp_reports_match_an_independent_f64_computation() {
        let q = QuantConfig { na: 4, ..QuantConfig::default() };
        // SiLU, index mode: the table entry is the nearest output centroid of round(y/os).
        let c = NlMapConfig { function: "silu".into(), ..NlMapConfig::default() };
        let s = c.spec(&q).unwrap();
        let (acc, out) = report(&s).unwrap();
        let Out::Index { codebook: co, scale: os } = out else { panic!() };
        assert_eq!(acc.entries, 16);
        let (mut max, mut sum) = (0f64, 0f64);
        for &ci in &acc.in_codebook {
            let x = ci as f64 / 32.0;
            let y = x / (1.0 + (-x).exp());
            let u = (y / os).round() as i64;
            // Linear scan, strict < keeps the lower index on a tie.
            let mut best = 0;
            for k in 0..co.len() {
                if (u - co[k]).abs() < (u - co[best]).abs() {
                    best = k;
                }
            }
            let e = (co[best] as f64 * os - y).abs();
            max = max.max(e);
            sum += e;
        }
        assert_eq!(acc.max_abs_err, max);
        assert!((acc.mean_abs_err - sum / 16.0).abs() < 1e-15);
        assert!(acc.max_err_spacings <= 0.5 + 1e-9, "{acc:?}");
        // Input codebook is the 16-level Gaussian one at 1/32: ±2.733 → ±87 units.
        assert_eq!(acc.in_codebook[15], 87);
        assert_eq!(acc.in_codebook[0], -87);

        // exp, value mode, 12-bit fixed point at 1/32.
        let c = NlReduceConfig::default();
        let s = c.spec(&q).unwrap();
        let (acc, _) = report(&s).unwrap();
        let (mut max, mut sum, mut maxl) = (0f64, 0f64, 0f64);
        for &ci in &acc.in_codebook {
            let y = (ci as f64 / 32.0).exp();
            let e = ((y * 32.0).round() / 32.0 - y).abs();
            max = max.max(e);
            sum += e;
            maxl = maxl.max(e * 32.0);
        }
        assert_eq!(acc.max_abs_err, max);
        assert!((acc.mean_abs_err - sum / 16.0).abs() < 1e-15);
        assert!((acc.max_err_spacings - maxl).abs() < 1e-12 && maxl <= 0.5);
    }

    #[test]
    fn bad_sections_name_the_key() {
        let q = QuantConfig::default();
        let e = NlMapConfig { function: "tanhh".into(), ..Default::default() }.validate(&q).unwrap_err();
        assert!(e.starts_with("`nl_map.function` = \"tanhh\" is not a known function"), "{e}");
        let e = NlMap2Config { function: "silu".into(), ..Default::default() }.validate(&q).unwrap_err();
        assert!(e.contains("allowed: mul, silu_mul, add"), "{e}");
        let e = NlMapConfig { output: "value".into(), function: "exp".into(), out_bits: Some(8), ..Default::default() }
            .validate(&q)
            .unwrap_err();
        assert!(e.starts_with("`nl_map.out_bits` = 8 is too small") && e.contains(">= 12"), "{e}");
        let q8 = QuantConfig { na: 8, ..QuantConfig::default() };
        let e = NlMap2Config::default().validate(&q8).unwrap_err();
        assert!(e.contains("16-entry") || e.contains("65536-entry"), "{e}");
    }
}

/// Registry entry of `kllm_nl_map` (index → index or value through a run-time table).
pub struct NlMapBlock;
/// Registry entry of `kllm_nl_map2` (index pair → index through a run-time table).
pub struct NlMap2Block;
/// Registry entry of `kllm_nl_reduce` (Σ table[idx] over a vector, by counting).
pub struct NlReduceBlock;

fn map_spec_of(cfg: &crate::config::Config, binary: bool) -> MapSpec {
    let q = &cfg.quant;
    let spec = if binary {
        cfg.nl_map2.as_ref().map(|c| c.spec(q))
    } else {
        cfg.nl_map.as_ref().map(|c| c.spec(q))
    };
    spec.expect("block selected only when its section is present").expect("validated config")
}

fn reduce_of(cfg: &crate::config::Config) -> (MapSpec, &NlReduceConfig) {
    let c = cfg.nl_reduce.as_ref().expect("block selected only when [nl_reduce] is present");
    (c.spec(&cfg.quant).expect("validated config"), c)
}

/// `nl_map` and `nl_map2` share one generator and golden writer; the last argument picks the
/// section (`nl_map2` when true).
macro_rules! map_block {
    ($kind:ty, $name:literal, $top:literal, $field:ident, $binary:literal) => {
        impl BlockKind for $kind {
            fn name(&self) -> &'static str {
                $name
            }
            fn top(&self) -> &'static str {
                $top
            }
            fn section(&self) -> &'static str {
                $name
            }
            fn selected(&self, cfg: &Config) -> bool {
                cfg.$field.is_some()
            }
            fn validate(&self, cfg: &Config) -> Result<(), String> {
                cfg.$field.as_ref().map_or(Ok(()), |c| c.validate(&cfg.quant))
            }
            fn derived(&self, cfg: &Config) -> serde_json::Value {
                serde_json::to_value(map::NlMapDerived::new(&map_spec_of(cfg, $binary))).unwrap()
            }
            fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle {
                map::generate(d, &map_spec_of(cfg, $binary), module)
            }
            fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
                map::golden(&map_spec_of(cfg, $binary), $name, vectors, seed, w)
            }
            fn float_mode(&self) -> bool {
                true
            }
        }
    };
}
map_block!(NlMapBlock, "nl_map", "kllm_nl_map", nl_map, false);
map_block!(NlMap2Block, "nl_map2", "kllm_nl_map2", nl_map2, true);

impl BlockKind for NlReduceBlock {
    fn name(&self) -> &'static str {
        "nl_reduce"
    }
    fn top(&self) -> &'static str {
        reduce::TOP
    }
    fn section(&self) -> &'static str {
        "nl_reduce"
    }
    fn selected(&self, cfg: &Config) -> bool {
        cfg.nl_reduce.is_some()
    }
    fn validate(&self, cfg: &Config) -> Result<(), String> {
        cfg.nl_reduce.as_ref().map_or(Ok(()), |c| c.validate(&cfg.quant))
    }
    fn derived(&self, cfg: &Config) -> serde_json::Value {
        let (spec, c) = reduce_of(cfg);
        serde_json::to_value(reduce::NlReduceDerived::new(&spec, c)).unwrap()
    }
    fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle {
        let (spec, c) = reduce_of(cfg);
        reduce::generate(d, &spec, c, module)
    }
    fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
        let (spec, c) = reduce_of(cfg);
        reduce::golden(&spec, c, vectors, seed, w)
    }
    fn float_mode(&self) -> bool {
        true
    }
}
