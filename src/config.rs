//! The accelerator description: one TOML file, parsed with serde, validated once.
//!
//! Every key has a default, unknown keys are errors, and each block family owns its section's
//! struct (`pe_line::PeLineConfig`, ...). A section that is present selects that block for
//! generation; `[quant]` (the shared number formats) is always there, with defaults.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::encoder::EncoderConfig;
use crate::fp::FloatFormat;
use crate::orizuru::OrizuruConfig;
use crate::pe_line::PeLineConfig;

/// Shared number formats of SPEC.md "Integer mode".
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuantConfig {
    /// Weight index bits (codebook of 2^nw centroids).
    pub nw: u32,
    /// Activation index bits.
    pub na: u32,
    /// Signed width of a weight centroid.
    pub wc_bits: u32,
    /// Signed width of an activation centroid.
    pub ac_bits: u32,
    /// Signed width of a raw activation.
    pub x_bits: u32,
    /// Number system (SPEC.md): `"int"` (integer mode, the default: `wc_bits`, `ac_bits` and
    /// `x_bits` give the formats) or a float format for float mode, by name (`"fp16"`, `"bf16"`,
    /// `"fp8_e4m3"`, `"fp8_e5m2"`, `"fp32"`) or as `"e<E>m<M>"`; in float mode centroids, table
    /// entries and raw activations are that format and the integer widths are not used.
    /// Not serialized in integer mode, so integer configs keep their hash.
    #[serde(skip_serializing_if = "is_int")]
    pub numerics: String,
}

/// The value of `quant.numerics` that selects integer mode.
pub const INT: &str = "int";

fn is_int(s: &str) -> bool {
    s == INT
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig { nw: 4, na: 4, wc_bits: 8, ac_bits: 8, x_bits: 16, numerics: INT.into() }
    }
}

impl QuantConfig {
    pub fn validate(&self) -> Result<(), String> {
        numerics_format(&self.numerics)?;
        in_range("quant.nw", self.nw, 1, 8)?;
        in_range("quant.na", self.na, 1, 8)?;
        in_range("quant.wc_bits", self.wc_bits, 2, 16)?;
        in_range("quant.ac_bits", self.ac_bits, 2, 16)?;
        in_range("quant.x_bits", self.x_bits, self.ac_bits, 32).map_err(|e| {
            format!("{e}; x_bits must be at least ac_bits because centroids are activation values")
        })?;
        // 2^na distinct sorted centroids must fit in ac_bits signed.
        if self.na > self.ac_bits {
            return Err(format!(
                "`quant.na` = {} needs 2^{} distinct centroids, which do not fit in ac_bits = {} \
                 (allowed na <= ac_bits)",
                self.na, self.na, self.ac_bits
            ));
        }
        Ok(())
    }

    /// The float format of float mode, `None` in integer mode. Only call on a validated config.
    pub fn float(&self) -> Option<FloatFormat> {
        numerics_format(&self.numerics).expect("validated quant.numerics")
    }

    /// Width of a raw activation on a port: `x_bits` in integer mode, an F pattern (1 + E + M
    /// bits) in float mode. Only call on a validated config.
    pub fn value_bits(&self) -> u32 {
        self.float().map_or(self.x_bits, |f| f.width())
    }

    /// Number of (activation index, weight index) pairs, i.e. counting bins.
    pub fn bins(&self) -> u32 {
        1 << (self.na + self.nw)
    }

    /// Signed width of a LUT entry `ca * cw`.
    pub fn lut_bits(&self) -> u32 {
        self.wc_bits + self.ac_bits
    }
}

/// `quant.numerics` as a float format (`None` for `"int"`), or one line naming the key, the
/// value and what is allowed.
pub fn numerics_format(name: &str) -> Result<Option<FloatFormat>, String> {
    if name == INT {
        return Ok(None);
    }
    FloatFormat::by_name(name).map(Some).map_err(|e| {
        let e = e.to_string();
        // "float format 'x' is unknown (allowed: ...)" or "float format: <what is out of range>"
        match e.split_once("(allowed: ") {
            Some((_, allowed)) => format!(
                "`quant.numerics` = \"{name}\" is not a number system (allowed: \"int\" or a float format: {}",
                allowed
            ),
            None => format!(
                "`quant.numerics` = \"{name}\": {}",
                e.trim_start_matches("float format: ")
            ),
        }
    })
}

/// How much random stimulus `kllm-gen golden` writes by default.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TestConfig {
    pub seed: u64,
    /// Random dot products (PE line) or vectors (other blocks) per regression run.
    pub vectors: u32,
    /// A config whose simulation is too long for `make sim` (the Makefile's LONG_CONFIGS skips
    /// it there; it has its own target). Left out of the hash when false, so setting it on one
    /// config changes no other config's hash.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub long: bool,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig { seed: 1, vectors: 20_000, long: false }
    }
}

impl TestConfig {
    pub fn validate(&self) -> Result<(), String> {
        in_range("test.vectors", self.vectors, 1, 10_000_000)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub quant: QuantConfig,
    #[serde(default)]
    pub pe_line: Option<PeLineConfig>,
    #[serde(default)]
    pub encoder: Option<EncoderConfig>,
    /// Skipped when absent so configs without it keep their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orizuru: Option<OrizuruConfig>,
    #[serde(default)]
    pub test: TestConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nl_map: Option<crate::nonlinear::NlMapConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nl_map2: Option<crate::nonlinear::NlMap2Config>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nl_reduce: Option<crate::nonlinear::NlReduceConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<crate::tile::TileConfig>,
}

/// A TOML parse error as one line, `line N: message`.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let line = e
        .span()
        .map(|s| format!("line {}: ", text[..s.start.min(text.len())].matches('\n').count() + 1))
        .unwrap_or_default();
    format!("{line}{}", e.message().replace('\n', " "))
}

/// `key = value is out of range (allowed lo..=hi)`.
pub fn in_range<T: PartialOrd + std::fmt::Display>(key: &str, v: T, lo: T, hi: T) -> Result<(), String> {
    if v < lo || v > hi {
        Err(format!("`{key}` = {v} is out of range (allowed {lo}..={hi})"))
    } else {
        Ok(())
    }
}

pub fn power_of_two(key: &str, v: u32) -> Result<(), String> {
    if v.is_power_of_two() {
        Ok(())
    } else {
        Err(format!("`{key}` = {v} must be a power of two"))
    }
}

impl Config {
    /// Reads, parses and validates a config file. Errors are one line naming the file and key.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.quant.validate()?;
        self.test.validate()?;
        let mut any = false;
        for b in crate::registry::BLOCKS.iter().filter(|b| b.selected(self)) {
            if self.quant.float().is_some() && !b.float_mode() {
                let covered: Vec<&str> =
                    crate::registry::BLOCKS.iter().filter(|b| b.float_mode()).map(|b| b.name()).collect();
                return Err(format!(
                    "`quant.numerics` = \"{}\": block {} ([{}]) has no float mode yet (float mode covers {}); \
                     use numerics = \"int\" or drop the section",
                    self.quant.numerics,
                    b.name(),
                    b.section(),
                    covered.join(", ")
                ));
            }
            b.validate(self)?;
            any = true;
        }
        if !any {
            let sections: Vec<String> =
                crate::registry::sections().iter().map(|s| format!("[{s}]")).collect();
            return Err(format!("the config selects no block: add at least one of {}", sections.join(", ")));
        }
        Ok(())
    }

    /// A stable hash of the validated config (all defaults filled in), for file headers and
    /// caches: two files that mean the same design hash the same.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::to_string(self).expect("config serializes");
        let digest = Sha256::digest(canonical.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_every_key() {
        let c = Config::parse("[pe_line]\n").unwrap();
        assert_eq!(c.quant, QuantConfig::default());
        assert_eq!(c.pe_line, Some(PeLineConfig::default()));
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = Config::parse("[pe_line]\nlanes = 4\nlanez = 3\n").unwrap_err();
        assert!(e.contains("lanez") && e.contains("line 3"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn out_of_range_names_key_value_and_range() {
        let e = Config::parse("[quant]\nnw = 9\n[pe_line]\n").unwrap_err();
        assert_eq!(e, "`quant.nw` = 9 is out of range (allowed 1..=8)");
    }

    #[test]
    fn wrong_type_is_one_line() {
        let e = Config::parse("[pe_line]\nlanes = \"four\"\n").unwrap_err();
        assert!(e.contains("line 2") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn numerics_is_int_by_default_and_names_bad_values() {
        let c = Config::parse("[pe_line]\n").unwrap();
        assert_eq!((c.quant.numerics.as_str(), c.quant.float()), ("int", None));
        let c = Config::parse("[quant]\nnumerics = \"fp16\"\n[pe_line]\n").unwrap();
        assert_eq!(c.quant.float(), Some(FloatFormat::FP16));
        let c = Config::parse("[quant]\nnumerics = \"e4m3\"\n[pe_line]\n").unwrap();
        assert_eq!(c.quant.float(), Some(FloatFormat::FP8_E4M3));
        for (v, want) in [
            ("fp64", "`quant.numerics` = \"fp64\" is not a number system (allowed: \"int\" or a float format: fp16, bf16, fp8_e4m3, fp8_e5m2, fp32, or e<E>m<M> with E in 2..=8 and M in 1..=23)"),
            ("e9m7", "`quant.numerics` = \"e9m7\": exponent width E = 9 is outside the supported range 2..=8"),
            ("e5m0", "`quant.numerics` = \"e5m0\": fraction width M = 0 is outside the supported range 1..=23"),
        ] {
            let e = Config::parse(&format!("[quant]\nnumerics = \"{v}\"\n[pe_line]\n")).unwrap_err();
            assert_eq!(e, want);
        }
        // Every block has a float mode now, the tile's weight buffer too; its size rule is the
        // integer tile's (4 lines: 4, 8, 16, … rows).
        assert!(Config::parse("[quant]\nnumerics = \"fp16\"\n[pe_line]\n[tile]\n").is_ok());
        assert!(Config::parse("[quant]\nnumerics = \"fp16\"\n[tile]\nweight_buffer_rows = 4\n").is_ok());
        let e = Config::parse("[quant]\nnumerics = \"fp16\"\n[tile]\nweight_buffer_rows = 6\n").unwrap_err();
        assert!(e.starts_with("`tile.weight_buffer_rows` = 6 is out of range (allowed 0 = no buffer"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn integer_configs_keep_their_hash() {
        // The numerics key is not serialized in integer mode: spelling it out changes nothing.
        let a = Config::parse("[pe_line]\n").unwrap();
        let b = Config::parse("[quant]\nnumerics = \"int\"\n[pe_line]\n").unwrap();
        assert_eq!(a.hash(), b.hash());
        assert!(!serde_json::to_string(&a).unwrap().contains("numerics"));
        let f = Config::parse("[quant]\nnumerics = \"fp16\"\n[pe_line]\n").unwrap();
        assert_ne!(a.hash(), f.hash());
    }

    #[test]
    fn hash_ignores_spelling_of_defaults() {
        let a = Config::parse("[pe_line]\n").unwrap();
        let b = Config::parse("[quant]\nnw = 4\n[pe_line]\nlanes = 16\n").unwrap();
        assert_eq!(a.hash(), b.hash());
    }
}
